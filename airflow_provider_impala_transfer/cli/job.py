"""From resolved settings to a validated job: every check that needs no network happens here, so
``--validate-config`` and the real run refuse exactly the same input, before anything is written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import os
from dataclasses import dataclass, field
from typing import Any

from fsspec.registry import known_implementations, registry

from airflow_provider_impala_transfer.cli.settings import Resolved
from airflow_provider_impala_transfer.cli.temp_dir import check_temp_dir
from airflow_provider_impala_transfer.core.common import gssapi
from airflow_provider_impala_transfer.core.common.connection import SourceConnector
from airflow_provider_impala_transfer.core.common.sql import quote_table_name
from airflow_provider_impala_transfer.core.common.kerberos import KeytabLogin
from airflow_provider_impala_transfer.core.common.values import proxy_user_env
from airflow_provider_impala_transfer.core.common.uris import (
    check_component,
    check_hadoop_path,
    check_path_text,
    join,
    local_path,
    normalize_uri,
    run_key,
    scheme_of,
)
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.export import ExportPlan, plan_export
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec
from airflow_provider_impala_transfer.core.table.ddl import TableTarget
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.destinations import fsspec_destination, refuse_without_exclusive_create
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.lock import PublishLock
from airflow_provider_impala_transfer.core.transfer.distcp import DistcpOptions
from airflow_provider_impala_transfer.core.transfer.methods import chain_from
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget, check_key_file
from airflow_provider_impala_transfer.core.transfer.targets import TransferTargets
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata

HADOOP_SCHEMES = ("hdfs", "viewfs", "webhdfs", "swebhdfs", "file")
HADOOP_METHODS = ("distcp", "hdfs_put", "hdfs_cp")


@dataclass
class Job:
    settings: Resolved
    connector: SourceConnector
    spec: ExtractSpec
    target_table: str
    chain: list[str]
    targets: TransferTargets
    run: Run
    lock: PublishLock
    work_dir: str  # <temp-dir>/<run key>; the run makes <work_dir>-XXXXXXXX (cli.run.private_dir)
    default_temp_dir: bool = False  # no --temp-dir given: the stricter rule of cli.temp_dir applies
    table: TableTarget | None = None
    table_connector: SourceConnector | None = None
    export: ExportPlan | None = None  # server mode: what the source engine writes, and where
    source_webhdfs: WebHdfsMetadata | None = None
    notes: list[str] = field(default_factory=list)  # decisions a person should see (skipped steps)
    login: KeytabLogin | None = None  # --principal/--keytab: the run's own ticket (cli.main opens it)

    def table_at(self, published_dir: str) -> TableTarget:
        """The table step for a published run: a partitioned table keeps its root and gains the
        run's partition; an unpartitioned one follows each run's directory (SET LOCATION)."""
        assert self.table is not None
        return self.table if self.table.partition else dataclasses.replace(self.table, location=published_dir)

    @property
    def target_description(self) -> str:
        t = self.targets
        if t.fsspec is not None:
            return t.fsspec.describe(t.fsspec.root)
        return t.hdfs_root or (f"{t.scp.destination}:{t.scp.remote_path}" if t.scp else "(none)")


def build_job(settings: Resolved, password: str | None, *, now: dt.datetime | None = None) -> Job:
    s = settings
    if not s.source_host:
        raise ConfigError("--source-host", "is not set", "give the Impala host (or IMPALA_HOST)")
    query_sql = _query_text(s)
    spec = ExtractSpec.build(sql=query_sql, table=s.table, output_format=s.output_format,
                             compression=s.compression, chunk_size=s.chunk_size, split_by=s.split_by)
    connector = SourceConnector(host=s.source_host, port=s.source_port, connect_timeout=float(s.connect_timeout),
                                rpc_timeout=float(s.rpc_timeout),
                                options=_impala_options(s, password, database=s.source_database))
    target_table = s.target_table or (s.table.rsplit(".", 1)[-1] if s.table else "query_result")
    quote_table_name(target_table, field="--target-table")
    table_dir = check_component(target_table.rsplit(".", 1)[-1].strip("`"), "--target-table")
    run_id = s.run_id or "cli__" + (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H%M%S")
    run = Run(run_id=run_id, partition=_partition(s.partition))
    targets, notes = _targets(s, table_dir)
    if not s.split_by and s.max_workers > 1:
        notes.append("one chunk, one stream: give --split-by <column> to extract chunks in parallel")
    chain = _chain(s, targets, notes)
    temp_dir = os.path.abspath(check_path_text(s.temp_dir, "--temp-dir"))
    if set(chain) & set(HADOOP_METHODS):  # the chunk files' file:// URIs go to hdfs dfs -put / -cp
        check_hadoop_path(temp_dir, "--temp-dir")
    default_temp = not s.given("temp_dir")
    temp_dir = check_temp_dir(temp_dir, default=default_temp)  # links above it resolved; nothing is made yet
    if set(chain) & set(HADOOP_METHODS):
        check_hadoop_path(temp_dir, "--temp-dir")
    lock = PublishLock(mode=s.publish_lock, lease=s.publish_lock_lease)
    if targets.fsspec is not None:  # a store that can never take the lock: refused before anything runs
        refuse_without_exclusive_create(targets.fsspec.describe(targets.fsspec.root), lock.mode)
    login = KeytabLogin.from_settings(s.principal, s.keytab, "the command's settings")
    if login is not None:
        login.check_keytab()  # a missing or open keytab is refused before anything runs
    job = Job(settings=s, connector=connector, spec=spec, target_table=target_table, chain=chain, targets=targets,
              run=run, lock=lock, work_dir=os.path.join(temp_dir, run_key(run_id)), default_temp_dir=default_temp,
              notes=notes, login=login)
    _table_step(job, password)
    if s.extract_mode == "server":
        _export_step(job)
    return job


def _export_step(job: Job) -> None:
    """Server mode: the export's plan, and the source cluster's WebHDFS to read what it wrote."""
    s = job.settings
    job.export = plan_export(job.spec, job.run, source_hdfs_path=job.targets.source_hdfs_path,
                             staging_db=s.staging_db, dialect=s.export_dialect)
    if not s.source_webhdfs_url:
        raise ConfigError("--source-webhdfs-url", "the server-side export lists the exported files and reads "
                          "their Parquet footers over WebHDFS", "give http://<source-namenode>:9870 (SOURCE_WEBHDFS_URL)")
    url = s.source_webhdfs_url.rstrip("/")
    if scheme_of(url) not in ("http", "https"):
        raise ConfigError("--source-webhdfs-url", f"{url!r} is not an http(s):// URL",
                          "give http://<source-namenode>:9870")
    kerberos = (s.webhdfs_auth or ("kerberos" if job.login or s.auth_mechanism == "GSSAPI" else "simple")) == "kerberos"
    job.source_webhdfs = source_webhdfs(url, kerberos=kerberos, proxy_user=s.proxy_user)


def source_webhdfs(url: str, *, kerberos: bool = False, proxy_user: str | None = None) -> WebHdfsMetadata:
    """WebHDFS of the source cluster, connected when first used: with ``kerberos``, by SPNEGO with
    the run's ticket (``KRB5CCNAME``; a Kerberized NameNode answers 401 to anything else), acting
    for ``proxy_user`` (``doas``) if given; otherwise as the Hadoop client's user (HADOOP_USER_NAME,
    else the login), as on a cluster without Kerberos."""
    if kerberos:
        from hdfs.ext.kerberos import KerberosClient

        return WebHdfsMetadata(connect=lambda: KerberosClient(url, proxy=proxy_user),
                               name=f"WebHDFS {url} (Kerberos)")
    from hdfs import InsecureClient

    user = os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
    return WebHdfsMetadata(connect=lambda: InsecureClient(url, user=user, proxy=proxy_user), name=f"WebHDFS {url}")


def _query_text(s: Resolved) -> str | None:
    given = [name for name in ("table", "query", "query_file") if getattr(s, name)]
    if len(given) > 1:
        raise ConfigError("--" + "/--".join(n.replace("_", "-") for n in given), "are given together",
                          "give exactly one of --table, --query, --query-file")
    if not given:
        raise ConfigError("--table/--query/--query-file", "none is given", "say what to transfer")
    if s.query_file:
        try:
            with open(s.query_file, encoding="utf-8") as stream:
                return stream.read()
        except OSError as exc:
            raise ConfigError("--query-file", f"cannot read {s.query_file}: {exc.strerror}",
                              "give a readable file holding one SELECT") from None
    return s.query


def _impala_options(s: Resolved, password: str | None, *, database: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"auth_mechanism": s.auth_mechanism}
    if database:
        options["database"] = database
    if s.user:
        options["user"] = s.user
    if password:
        options["password"] = password
    if s.auth_mechanism in ("PLAIN", "LDAP") and not (s.user and password):
        raise ConfigError("--auth-mechanism", f"{s.auth_mechanism} needs a user and a password",
                          "set --user and the password (IMPALA_PASSWORD, --password-file or --ask-password)")
    if s.use_ssl:
        options["use_ssl"] = True
        if s.ca_cert:
            options["ca_cert"] = s.ca_cert
    if s.auth_mechanism == "GSSAPI":
        gssapi.check_installed()
        options["kerberos_service_name"] = s.kerberos_service_name
        if s.krb_host:
            options["krb_host"] = s.krb_host
    if s.use_http_transport:
        options["use_http_transport"] = True
        if s.http_path:
            options["http_path"] = s.http_path
    return options


def _partition(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    partition = {}
    for part in text.split(","):
        column, sep, value = part.partition("=")
        if not sep or not column.strip():
            raise ConfigError("--partition", f"{part!r} is not column=value", "write e.g. ds=2024-01-01")
        partition[column.strip()] = value.strip()
    return partition


def _hadoop_location(value: str, field: str, *, cluster: str | None = None) -> str:
    """A full URI, or the seed's bare absolute path, which ``hdfs dfs`` and distcp resolve on the
    client's ``fs.defaultFS`` (the cluster this command runs against)."""
    value = value.strip()
    if value.startswith("/") and not scheme_of(value) and not cluster:
        return check_hadoop_path(check_path_text(value, field), field)
    return check_hadoop_path(normalize_uri(value, field, cluster=cluster), field)


def _targets(s: Resolved, table_dir: str) -> tuple[TransferTargets, list[str]]:
    notes: list[str] = []
    targets = TransferTargets(
        source_hdfs_path=_hadoop_location(s.source_hdfs_path, "--source-hdfs-path") if s.source_hdfs_path else None,
        hadoop_bin=s.hadoop_bin, hdfs_bin=s.hdfs_bin, hadoop_env=proxy_user_env(s.proxy_user, "proxy_user") or None,
        distcp=DistcpOptions(maps=s.distcp_maps, bandwidth_mb=s.distcp_bandwidth_mb, strategy=s.distcp_strategy,
                            yarn_queue=s.yarn_queue, conf=s.distcp_conf or {}, resource_manager=s.yarn_rm_url),
        command_timeout=float(s.command_timeout),
        withhold=(s.password_env,),
    )
    raw = (s.target_hdfs_path or "").strip()
    scheme = scheme_of(raw)
    if raw and (not scheme or scheme in HADOOP_SCHEMES):
        root = _hadoop_location(raw, "--target-hdfs-path", cluster=s.target_cluster)
        targets.hdfs_root = join(root, table_dir)
        if not scheme_of(root):
            notes.append(f"target {raw} has no scheme: the Hadoop client's default filesystem is used")
    elif raw:
        if scheme not in known_implementations and scheme not in registry:
            raise ConfigError("--target-hdfs-path", f"{raw!r} uses {scheme}://, which neither Hadoop nor fsspec knows",
                              "give hdfs://, viewfs://, webhdfs://, file:// or an fsspec URL such as s3://, gs://, "
                              "abfs://, sftp://")
        url = join(normalize_uri(raw, "--target-hdfs-path"), table_dir)
        targets.fsspec = fsspec_destination(url, s.fsspec_options, field="--target-hdfs-path",
                                            options_name="--fsspec-options")
    if s.scp_target_host:
        remote = s.scp_target_path or (local_path(raw) if raw else None)  # a file:// or bare target's path
        if not remote:
            raise ConfigError("--scp-target-path", "is not set", "give the remote directory, e.g. /data/incoming")
        if not remote.startswith("/"):
            raise ConfigError("--scp-target-path", f"{remote!r} is not an absolute path",
                              "give the directory on the scp host, e.g. /data/incoming")
        check_path_text(remote, "--scp-target-path")
        key_file = check_key_file(s.scp_key_file, "--scp-key-file") if s.scp_key_file else None
        targets.scp = ScpTarget(host=s.scp_target_host, remote_path=join(remote, table_dir), user=s.scp_user,
                                port=s.scp_port, key_file=key_file, known_hosts=s.scp_known_hosts,
                                host_key_checking=s.scp_host_key_checking, bandwidth_kbit=s.scp_bandwidth_kbit)
    if targets.hdfs_root is None and targets.fsspec is None and targets.scp is None:
        raise ConfigError("--target-hdfs-path", "no target is set",
                          "give --target-hdfs-path (or TARGET_HDFS_PATH), or --scp-target-host with --scp-target-path")
    return targets, notes


def _chain(s: Resolved, targets: TransferTargets, notes: list[str]) -> list[str]:
    """The methods to try, first to last; the first must be fully configured (else exit 2)."""
    if s.method == "distcp" and s.given("use_distcp") and not s.use_distcp:
        raise ConfigError("--method distcp", f"conflicts with use_distcp=false ({s.origins['use_distcp']})",
                          "drop one of the two")
    method = s.method
    if method is None:
        if targets.fsspec is not None:
            method = "fsspec"
        elif targets.hdfs_root is None:
            method = "scp"
        elif s.use_distcp and not s.given("use_distcp") and not _distcp_ready(targets):
            method = "hdfs_put"  # distcp is the default, but this run gives it nowhere to go
            notes.append("distcp skipped: it needs --target-cluster (or an hdfs:// target) and --source-hdfs-path")
    chain = chain_from(method, use_distcp=bool(s.use_distcp))
    if targets.fsspec is not None and chain != ["fsspec"]:
        url = targets.fsspec.describe(targets.fsspec.root)
        raise ConfigError("--method", f"{chain[0]} cannot write {url}", "use --method fsspec")
    if chain == ["fsspec"] and targets.fsspec is None:
        raise ConfigError("--target-hdfs-path", "fsspec needs an fsspec URL (s3://, gs://, abfs://, sftp://, ...)",
                          "give one, or choose another --method")
    targets.method(chain[0], CommandRunner())  # builds nothing lasting; raises ConfigError naming what is missing
    if "scp" in chain and targets.scp is not None:  # a legacy scp would hand the path to the remote shell
        targets.scp.check_remote_dir(targets.scp.remote_path)
    if chain[0] == "distcp" and not targets.source_hdfs_path:
        raise ConfigError("--source-hdfs-path", "distcp runs on the cluster and cannot read this machine's "
                          "files", "give an hdfs:// staging directory on the source cluster (SOURCE_HDFS_PATH)")
    return chain


def _distcp_ready(targets: TransferTargets) -> bool:
    root = targets.hdfs_root or ""
    return bool(targets.source_hdfs_path) and "://" in root


def _table_step(job: Job, password: str | None) -> None:
    s = job.settings
    if s.skip_table:
        job.notes.append("target table: skipped (--skip-table)")
        return
    location = job.targets.hdfs_root
    if job.targets.fsspec is not None:
        location = job.targets.fsspec.describe(job.targets.fsspec.root)
    if not location:
        job.notes.append("target table: skipped (files go by scp to a host directory, which no table can read)")
        return
    if not scheme_of(location):
        job.notes.append(f"target table: skipped ({location} has no scheme, so its cluster is unknown; "
                         "give hdfs://<namenode>/path to create the table)")
        return
    host = s.target_impala_host or (None if s.target_cluster else s.source_host)
    if not host:
        job.notes.append("target table: skipped (set --target-impala-host, the Impala daemon of the target cluster)")
        return
    if s.output_format != "parquet":
        job.notes.append("target table: skipped (the table step needs parquet files)")
        return
    job.table = TableTarget(table=job.target_table, location=location, partition=job.run.partition,
                            dialect=s.table_dialect, file_format=s.output_format)
    # One set of credentials for both clusters, as the seed tool had.
    port = s.target_impala_port if s.given("target_impala_port") or s.target_impala_host else s.source_port
    job.table_connector = SourceConnector(host=host, port=port,
                                          connect_timeout=float(s.connect_timeout), rpc_timeout=float(s.rpc_timeout),
                                          options=_impala_options(s, password, database=s.source_database))
