"""An S3 endpoint on 127.0.0.1 for the fsspec/s3fs transfer tests: moto's server, over real HTTP.

The server runs in a thread of the calling process, so its buckets live in that process's memory
(every ``LocalS3`` of one process shares them) and vanish with it. The fake credentials are only
handed out through :meth:`LocalS3.storage_options` / :meth:`LocalS3.env`; nothing is put into
``os.environ``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

FAKE_KEY_ID = "testing"
FAKE_SECRET = "testing"  # moto accepts any credentials; these are not a secret
REGION = "us-east-1"


@dataclass
class LocalS3:
    """``with LocalS3() as s3:`` -> ``s3.endpoint_url``, ``s3.storage_options()``, ``s3.create_bucket()``."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = the OS picks a free port; the bound one is read back after start()
    _server: object | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalS3 is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]  # the real port when 0 was asked for
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def storage_options(self) -> dict:
        """For ``fsspec.filesystem("s3", **options)`` / s3fs."""
        return {"key": FAKE_KEY_ID, "secret": FAKE_SECRET,
                "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION}}

    def airflow_connection_json(self) -> str:
        """An Airflow ``fsspec`` connection (AIRFLOW_CONN_<ID>) for this endpoint."""
        options = self.storage_options()
        return json.dumps({"conn_type": "fsspec", "login": options["key"], "password": options["secret"],
                           "extra": {"protocol": "s3", "client_kwargs": options["client_kwargs"]}})

    def env(self) -> dict[str, str]:
        """For a subprocess (boto3/s3fs/aws-cli read these); merge into its env, not ``os.environ``."""
        return {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
                "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self):
        """A boto3 S3 client for this endpoint, for test setup and assertions."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
