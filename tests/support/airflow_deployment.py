"""A distributed Airflow 3 deployment on this machine, started and stopped by test code.

Every process is its own process group, listens on 127.0.0.1 only (free ports) and is stopped by
its PID, never by name:

* PostgreSQL 15 (Debian's binaries) as the metadata DB: a fresh cluster in a temp dir owned by the
  ``postgres`` system user and run as that user; TCP on 127.0.0.1 only (no unix socket), password
  auth (scram-sha-256).
* Redis as the Celery broker, with a password (given on its stdin config, not on its command line).
* ``airflow api-server`` (UI, REST API, execution API), ``airflow scheduler`` (CeleryExecutor),
  ``airflow dag-processor``.
* Two ``airflow celery worker --skip-serve-logs``, each in its own mount and UTS namespace
  (tests/support/isolated_worker.py): hostnames ``worker-1`` and ``worker-2``, and a private tmpfs
  over the same path, their ``TMPDIR``: a file one worker writes there, the other cannot see, as
  on two machines. Task logs go to the shared ``AIRFLOW_HOME/logs`` (a shared log volume), so the
  UI shows them without any log server.
* Kerberos, as the official Helm chart runs it: ``[core] security = kerberos`` and one
  ``airflow kerberos`` (Airflow's ticket renewer) beside each worker, entered into that worker's
  mount and UTS namespaces (``nsenter``), as a sidecar shares its worker's pod. ``[kerberos] ccache``
  is a file in the private tmpfs (:attr:`AirflowDeployment.ccache`), so each worker and its renewer
  share one cache that the other worker cannot see; the renewer re-initialises it from the workers'
  keytab every ``REINIT_FREQUENCY`` seconds. Every ``airflow`` process points ``KRB5CCNAME`` at that
  path (Airflow's ``__main__``): on this machine, outside the workers' tmpfs, no file is there, so the
  scheduler, dag-processor and api-server hold no ticket, and need none: they open no Impala session
  and run no Hadoop client (only a connection's Test button in the UI would; no test presses it).

Secrets (DB and broker passwords, JWT secret, Fernet key, the UI password) reach the processes
through the environment only.

Logging in (SimpleAuthManager, one user ``admin`` with role admin and a password made for this
deployment):

* REST: :meth:`AirflowDeployment.request` sends ``Authorization: Bearer <token>``, the token from
  ``POST /auth/token`` with ``{"username": ..., "password": ...}`` (:meth:`AirflowDeployment.token`).
* Browser: open :attr:`AirflowDeployment.api_url`; the UI sends you to ``/auth/login``, where you
  fill in :attr:`AirflowDeployment.username` and :attr:`AirflowDeployment.password` and press
  "Sign in". Without the form: set the cookie ``_token`` (path ``/``, host 127.0.0.1) to
  ``deployment.token()``.

The example DAG's target table comes from the environment, so it is the same for every run of one
deployment (:func:`transfer_example_env`): tests sharing it should use a logical date of their own,
which becomes the partition.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import psutil

from tests.support.processes import free_port, stop_process_group

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = "/usr/bin/redis-server"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ISOLATED_WORKER = str(Path(__file__).with_name("isolated_worker.py"))
NSENTER = "/usr/bin/nsenter"
FINISHED = ("success", "failed")
REINIT_FREQUENCY = 10  # seconds between two `airflow kerberos` re-initialisations of a worker's cache


class Listener(NamedTuple):
    """A LISTEN socket of one of the deployment's processes."""

    component: str
    pid: int
    address: str
    port: int


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen


class AirflowDeployment:
    """PostgreSQL + Redis + api-server + scheduler + dag-processor + Celery workers on 127.0.0.1.

    ``env`` is what the DAGs need (connections as ``AIRFLOW_CONN_*``, PATH with the hadoop
    clients, ``KRB5_CONFIG``, ...); ``dag_files`` are symlinked into the dags folder; ``principal``
    and ``keytab`` (0600) are the workers' Kerberos identity. ``start()`` returns once the API
    answers, scheduler and dag-processor report healthy, every worker is ready and every worker's
    renewer has written its first ticket.
    """

    username = "admin"

    def __init__(self, workdir: Path, env: Mapping[str, str], dag_files: Iterable[Path], *, principal: str,
                 keytab: Path, workers: tuple[str, ...] = ("worker-1", "worker-2"), worker_concurrency: int = 2,
                 parallelism: int = 4) -> None:
        self.workdir = Path(workdir)
        self.home = self.workdir / "airflow-home"
        self.logs = self.workdir / "process-logs"
        self.worker_tmp = self.workdir / "worker-tmp"
        self.ccache = self.worker_tmp / "krb5cc_airflow"  # one per worker: in its private tmpfs
        self.principal = principal
        self.keytab = Path(keytab)
        self.dag_files = [Path(f) for f in dag_files]
        self.workers = workers
        self.worker_concurrency = worker_concurrency
        self.parallelism = parallelism
        self.api_port = free_port()
        self.password = secrets.token_urlsafe(16)
        self._extra_env = dict(env)
        self._db_password = secrets.token_urlsafe(24)
        self._broker_password = secrets.token_urlsafe(24)
        self._processes: list[_Process] = []
        self._pg_root: Path | None = None
        self._token: str | None = None
        self.env: dict[str, str] = {}  # the Airflow processes' environment, set by start(); holds secrets

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def login_url(self) -> str:
        return f"{self.api_url}/auth/login"

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 300.0) -> AirflowDeployment:
        """Start everything in order; on any failure stop what was started and raise."""
        deadline = time.monotonic() + timeout
        try:
            for directory in (self.home / "dags", self.logs, self.worker_tmp):
                directory.mkdir(parents=True, exist_ok=True)
            for dag_file in self.dag_files:
                (self.home / "dags" / dag_file.name).symlink_to(dag_file)
            passwords = self.home / "simple_auth_manager_passwords.json"
            passwords.write_text(json.dumps({self.username: self.password}))
            passwords.chmod(0o600)
            db_port = self._start_postgres(deadline)
            broker_port = self._start_redis(deadline)
            self.env = self._airflow_env(db_port, broker_port, passwords)
            migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True,
                                     timeout=_left(deadline))
            if migrate.returncode:
                raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
            self._spawn("api-server", [AIRFLOW, "api-server", "-H", "127.0.0.1", "-p", str(self.api_port),
                                       "-w", "1"])
            self._spawn("scheduler", [AIRFLOW, "scheduler"])
            self._spawn("dag-processor", [AIRFLOW, "dag-processor"])
            worker_env = {**self.env, "TMPDIR": str(self.worker_tmp)}
            for name in self.workers:
                self._spawn(name, [sys.executable, ISOLATED_WORKER, "--hostname", name, "--tmpfs", str(self.worker_tmp),
                                   "--", AIRFLOW, "celery", "worker", "--concurrency", str(self.worker_concurrency),
                                   "--skip-serve-logs"], env=worker_env)
            self._wait(self._healthy, deadline, "scheduler and dag-processor healthy")
            for name in self.workers:
                self._wait(lambda name=name: f"celery@{name} ready." in self.log_tail(name, 200), deadline,
                           f"{name} ready")
            renewers = {name: self._spawn(self.renewer(name), [NSENTER, f"--target={self.pids()[name]}", "--mount",
                                                               "--uts", "--", AIRFLOW, "kerberos"], env=worker_env)
                        for name in self.workers}
            for name, renewer in renewers.items():  # the cache as the worker sees it, through /proc
                self._wait(lambda pid=renewer.pid: Path(f"/proc/{pid}/root{self.ccache}").is_file(), deadline,
                           f"the first ticket of {name}'s renewer")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the processes in reverse order of start, each by its process group; then the
        leftovers of their trees (task processes run in process groups of their own)."""
        while self._processes:
            process = self._processes.pop()
            try:
                tree = psutil.Process(process.popen.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                tree = []
            stop_process_group(process.popen.pid, timeout)
            _, alive = psutil.wait_procs(tree, timeout=5)
            for leftover in alive:
                try:
                    leftover.kill()
                except psutil.NoSuchProcess:
                    pass
            try:
                process.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self._pg_root is not None:
            shutil.rmtree(self._pg_root, ignore_errors=True)
            self._pg_root = None

    def __enter__(self) -> AirflowDeployment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- REST API -------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the admin user, from ``POST /auth/token`` (as the UI's login form gets one)."""
        body = json.dumps({"username": self.username, "password": self.password}).encode()
        request = urllib.request.Request(f"{self.api_url}/auth/token", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]

    def request(self, method: str, path: str, body: object = None, params: Mapping[str, object] | None = None):
        """One authenticated REST call (``path`` like ``/api/v2/dags``); the decoded JSON answer.
        Raises ``RuntimeError`` with the server's answer on an HTTP error."""
        url = self.api_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            self._token = self._token or self.token()
            request = urllib.request.Request(url, data=data, method=method, headers={
                "Authorization": f"Bearer {self._token}", "Content-Type": "application/json",
                "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = response.read()
                    return json.loads(answer) if answer else None
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0:  # expired token: get a new one once
                    self._token = None
                    continue
                raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict:
        """The DAG once the dag-processor has parsed it; on timeout the import errors are in the message."""
        found: dict = {}

        def parsed() -> bool:
            try:
                found.update(self.request("GET", f"/api/v2/dags/{_quote(dag_id)}"))
            except RuntimeError:
                return False
            return True

        try:
            self._wait(parsed, time.monotonic() + timeout, f"DAG {dag_id} parsed")
        except TimeoutError as exc:
            errors = self.request("GET", "/api/v2/importErrors")
            raise TimeoutError(f"{exc}\nimport errors: {json.dumps(errors)[-3000:]}") from None
        return found

    def unpause(self, dag_id: str) -> dict:
        return self.request("PATCH", f"/api/v2/dags/{_quote(dag_id)}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, object] | None = None, *, run_id: str | None = None,
                logical_date: datetime | str | None = None) -> dict:
        """``POST /api/v2/dags/{dag_id}/dagRuns``, the call the UI's Trigger button makes; the new run."""
        if isinstance(logical_date, datetime):
            logical_date = logical_date.isoformat()
        body: dict[str, object] = {"logical_date": logical_date, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{_quote(dag_id)}/dagRuns", body)

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600.0) -> dict:
        """The run once it is ``success`` or ``failed``; on timeout the last state and the scheduler's log tail."""
        latest: dict = {}

        def finished() -> bool:
            latest.update(self.dag_run(dag_id, run_id))
            return latest["state"] in FINISHED

        try:
            self._wait(finished, time.monotonic() + timeout, f"run {run_id} of {dag_id} finished", poll=2.0)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; state {latest.get('state')}\n{self.log_tail('scheduler')}") from None
        return latest

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """Every task instance of the run (mapped ones one per map index), each with ``task_id``,
        ``map_index``, ``state``, ``hostname`` (the worker it ran on), ``try_number``, ..."""
        instances: list[dict] = []
        while True:
            page = self.request("GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances",
                                params={"limit": 100, "offset": len(instances)})
            instances.extend(page["task_instances"])
            if not page["task_instances"] or len(instances) >= page["total_entries"]:
                return instances

    # --- processes ------------------------------------------------------------------------------

    def listening_addresses(self) -> list[Listener]:
        """Every listening socket (TCP in LISTEN, unconnected UDP; IPv4 and IPv6) of every process
        of the deployment's trees, the workers' task processes included."""
        found: set[Listener] = set()
        for process in self._processes:
            try:
                root = psutil.Process(process.popen.pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for member in tree:
                try:
                    connections = member.net_connections(kind="inet")
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                found.update(Listener(process.name, member.pid, c.laddr.ip, c.laddr.port)
                             for c in connections
                             if c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr))
        return sorted(found)

    def pids(self) -> dict[str, int]:
        """The PID of each started process (its process group), by component name."""
        return {process.name: process.popen.pid for process in self._processes}

    @staticmethod
    def renewer(worker: str) -> str:
        """The component name of a worker's ``airflow kerberos`` (for :meth:`log_tail`, :meth:`pids`)."""
        return f"{worker}-kerberos"

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The end of a component's stdout+stderr (``postgres``, ``redis``, ``api-server``,
        ``scheduler``, ``dag-processor``, a worker's name, or :meth:`renewer` of a worker)."""
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- internals ------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None,
               stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, env=dict(env or self.env), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                     cwd=cwd, start_new_session=True)
        self._processes.append(_Process(name, popen))
        if popen.stdin is not None:
            with popen.stdin:
                popen.stdin.write(stdin)
        return popen

    def _wait(self, condition: Callable[[], bool], deadline: float, what: str, poll: float = 0.5) -> None:
        """Poll until ``condition()``; fail at once, with its log, if a started process exits."""
        while True:
            for process in self._processes:
                if process.popen.poll() is not None:
                    raise RuntimeError(f"{process.name} exited ({process.popen.returncode}) while waiting for "
                                       f"{what}:\n{self.log_tail(process.name)}")
            if condition():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(poll)

    def _start_postgres(self, deadline: float) -> int:
        user = pwd.getpwnam("postgres")
        self._pg_root = root = Path(tempfile.mkdtemp(prefix="airflow-postgres-"))
        os.chown(root, user.pw_uid, user.pw_gid)
        as_postgres = ["/usr/bin/setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]
        pg_env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": str(root)}
        password_file = root / "password"
        password_file.write_text(self._db_password + "\n")
        password_file.chmod(0o600)
        os.chown(password_file, user.pw_uid, user.pw_gid)
        initdb = subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "airflow",
                                 f"--pwfile={password_file}", "--auth=scram-sha-256", "--encoding=UTF8",
                                 "--no-locale", "--no-sync"],
                                env=pg_env, cwd=root, capture_output=True, text=True, timeout=_left(deadline))
        password_file.unlink()
        if initdb.returncode:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout[-2000:]}\n{initdb.stderr[-2000:]}")
        port = free_port()
        self._spawn("postgres", [*as_postgres, str(PG_BIN / "postgres"), "-D", str(root / "data"), "-p", str(port),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                    env=pg_env, cwd=root)
        self._wait(lambda: self._create_database(port), deadline, "PostgreSQL accepting connections")
        return port

    def _create_database(self, port: int) -> bool:
        import psycopg2

        try:
            connection = psycopg2.connect(host="127.0.0.1", port=port, user="airflow", password=self._db_password,
                                          dbname="postgres", connect_timeout=3)
        except psycopg2.OperationalError:
            return False
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE airflow")
        finally:
            connection.close()
        return True

    def _start_redis(self, deadline: float) -> int:
        import redis

        port = free_port()
        self._spawn("redis", [REDIS_SERVER, "-", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                              "--appendonly", "no"], env={"PATH": "/usr/bin:/bin"},
                    stdin=f"requirepass {self._broker_password}\n".encode(), cwd=self.workdir)
        client = redis.Redis(host="127.0.0.1", port=port, password=self._broker_password, socket_timeout=3)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        self._wait(answers, deadline, "Redis answering PING")
        client.close()
        return port

    def _airflow_env(self, db_port: int, broker_port: int, passwords: Path) -> dict[str, str]:
        from cryptography.fernet import Fernet

        return {
            **os.environ, **self._extra_env,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            # the TI's hostname is the worker's (its UTS namespace's) name, not a DNS lookup of it
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                f"postgresql+psycopg2://airflow:{self._db_password}@127.0.0.1:{db_port}/airflow",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://:{self._broker_password}@127.0.0.1:{broker_port}/0",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__CORE__SECURITY": "kerberos",
            "AIRFLOW__KERBEROS__PRINCIPAL": self.principal,
            "AIRFLOW__KERBEROS__KEYTAB": str(self.keytab),
            "AIRFLOW__KERBEROS__CCACHE": str(self.ccache),
            "AIRFLOW__KERBEROS__REINIT_FREQUENCY": str(REINIT_FREQUENCY),
            "AIRFLOW__KERBEROS__INCLUDE_IP": "False",
        }

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
        except (OSError, ValueError):
            return False
        return all((health.get(part) or {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor"))


def transfer_example_env(hiveserver, hadoop, kdc) -> dict[str, str]:
    """What ``dags_examples/impala_transfer_example.py`` needs to run against this session's
    Kerberized stack (connections as ``AIRFLOW_CONN_*``, ``IMPALA_TRANSFER_*``, the hadoop clients on
    PATH, the realm's krb5.conf), as tests/test_kerberized_dag.py provides it; no schedule (runs only
    when triggered). The sessions to the Kerberos-only Spark Thrift Server authenticate by GSSAPI as
    ``hive/localhost``, every Hadoop client with the worker's ticket; chunks are staged on
    ``hdfs://cluster1``, which every worker reads. Client mode only (server mode would need the
    default ACL on the staging root: README, Kerberos). No target WebHDFS: cluster2's SPNEGO
    principal names ``cluster2.target.impala-transfer.test``, which does not resolve here, and the
    hdfs provider's ``WebHDFSHook`` cannot override the host, so the target's metadata comes through
    ``hdfs dfs``; no scp."""
    run = uuid.uuid4().hex[:8]
    impala = hiveserver.airflow_connection_json()
    env = {**hadoop.env(), **kdc.env()}
    env.update(
        AIRFLOW_CONN_IMPALA_DEFAULT=impala,
        AIRFLOW_CONN_IMPALA_TARGET=impala,
        IMPALA_TRANSFER_SCHEDULE="",
        IMPALA_TRANSFER_OUTPUT_DIR=f"hdfs://cluster1/celery-extract/{run}",
        IMPALA_TRANSFER_SOURCE_HDFS_PATH=f"hdfs://cluster1/celery-staging/{run}",
        IMPALA_TRANSFER_WEBHDFS_CONN_ID="",
        IMPALA_TRANSFER_SSH_CONN_ID="",
        IMPALA_TRANSFER_TABLE_DIALECT="hive",
        IMPALA_TRANSFER_TARGET_TABLE=f"default.events_celery_{run}",
        IMPALA_TRANSFER_MAX_WORKERS="4",
    )
    return env


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())
