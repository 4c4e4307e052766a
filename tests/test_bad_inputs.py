"""Every bad input of docs/errors.md, one case per row: the product prints the row's message (the
field first, then the problem, then the fix in brackets) and writes nothing. The table and these
cases cannot drift apart: a test reads the table and compares its ids and messages with the cases.

In a message, ``…`` stands for a part that differs per machine or run (a path, a port, a list the
next release may extend); everything else must match exactly.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.hooks.fsspec import FsspecHook
from airflow_provider_impala_transfer.hooks.hadoop import HadoopCliHook
from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook
from airflow_provider_impala_transfer.hooks.scp import ScpHook
from airflow_provider_impala_transfer.operators.impala_extract import ImpalaChunkPlanOperator, ImpalaExtractOperator
from airflow_provider_impala_transfer.operators.transfer import TransferOperator
from airflow_provider_impala_transfer.task_groups.impala_transfer import impala_transfer_group
from airflow_provider_impala_transfer.transfer import FSSpecFileTransferManager, UnifiedFileTransferManager
from tests.conftest import repo_root
from tests.support.cli import run_cli
from tests.support.local_sshd import keygen

DOC = repo_root() / "docs" / "errors.md"
CONTEXT = {"run_id": "r", "ti": SimpleNamespace(dag_id="bad_inputs")}  # what a task's context holds of its run
SCP_USAGE = {"legacy": "usage: scp [-346BCpqrTv] [-c cipher] [-F ssh_config] [-i identity_file]",
             "sftp": "usage: scp [-346ABCOpqRrsTv] [-c cipher] [-D sftp_server_path] [-F ssh_config]"}


class Given:
    """What a case may use: ``tmp`` for the files it gives (keys, fake tools), ``out`` where
    anything the product wrote would land, connections, and fixtures by name."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
        self.tmp, self.out = tmp_path / "given", tmp_path / "out"
        self.tmp.mkdir()
        self.monkeypatch, self.request = monkeypatch, request

    def fixture(self, name: str):
        return self.request.getfixturevalue(name)

    def cli(self, *args: str, env: dict[str, str] | None = None, code: int = 2, omit: tuple[str, ...] = ()) -> str:
        """``impala-transfer`` with a source host, ``--table db.events``, a file:// target and a
        temp dir under ``out`` and ``--run-id r``, unless ``args`` give their own (or ``omit``
        drops them). Returns stderr's last line, which for exit 2 must be its only line."""
        given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
        defaults = [(("--source-host",), ["--source-host", "127.0.0.1"]),
                    (("--table", "--query", "--query-file"), ["--table", "db.events"]),
                    (("--target-hdfs-path", "--scp-target-host"), ["--target-hdfs-path", f"file://{self.out}/target"]),
                    (("--temp-dir",), ["--temp-dir", str(self.out / "tmp")]),
                    (("--run-id",), ["--run-id", "r"])]
        argv = [word for flags, words in defaults if not given & set(flags) and words[0] not in omit for word in words]
        result = run_cli(*argv, *args, env=env)
        assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        if code == 0:
            return result.stdout
        lines = result.stderr.strip().splitlines()
        if code == 2:
            assert len(lines) == 1, result.stderr
            assert not self.out.exists(), "a refused command created its directories"
        return lines[-1]

    def dry_run_line(self, *args: str, containing: str) -> str:
        """The line of ``--dry-run``'s output that holds ``containing``: what the run would execute."""
        printed = self.cli(*args, "--skip-table", "--dry-run", code=0)
        return next(line.strip() for line in printed.splitlines() if containing in line)

    def connection(self, conn_id: str, **fields) -> str:
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        return conn_id

    def fake_scp(self, kind: str) -> Given:
        """An ``scp`` first on PATH that prints the usage text of a legacy (OpenSSH 8.0) or an SFTP
        capable (>= 8.7) scp: which one the product finds decides how it sends remote paths."""
        tools = self.tmp / f"{kind}-bin"
        tools.mkdir()
        (tools / "scp").write_text(f"#!/bin/sh\necho '{SCP_USAGE[kind]}' >&2\nexit 1\n")
        (tools / "scp").chmod(0o755)
        self.monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
        return self

    def without_ssh_agent(self) -> Given:
        self.monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
        return self

    def file(self, name: str, *, mode: int) -> str:
        """A file ``<tmp>/<name>`` with ``mode`` (its contents do not matter to the case)."""
        path = self.tmp / name
        path.write_bytes(b"\x05\x02")
        path.chmod(mode)
        return str(path)

    def key(self, name: str, *, mode: int = 0o600, passphrase: str = "") -> str:
        path = self.tmp / name
        keygen(path, passphrase)
        path.chmod(mode)
        return str(path)


def refused(call: Callable[[], object], error: type[BaseException] = ConfigError) -> str:
    """The message of the error ``call`` raises."""
    with pytest.raises(error) as raised:
        call()
    return str(raised.value)


def transfer_method(operator: TransferOperator, name: str):
    """The method a TransferOperator's ``execute`` builds, with its connections open."""
    with operator.connections():
        return operator.build_method(name)


def task_group(**arguments):
    with DAG("bad_inputs", schedule=None):
        return impala_transfer_group("g", **{"target_path": "hdfs://nn/x", "output_path": "/tmp/x",
                                            "sql": "SELECT 1", **arguments})


def extract(g: Given, **arguments) -> None:
    """An ImpalaExtractOperator's ``execute``: validation runs before any connection or file."""
    ImpalaExtractOperator(task_id="extract", output_path=str(g.out / "extract"), **arguments).execute({})


def hiveserver_args(g: Given) -> list[str]:
    server = g.fixture("hiveserver")
    return ["--source-port", str(server.port), "--auth-mechanism", "PLAIN", "--user", "airflow"]


def kerberos_args(g: Given, host: str = "localhost", ticket: bool = True, expired: bool = False) -> list[str]:
    """The CLI against the server that accepts only Kerberos, with a user's ticket (from its
    keytab, in a cache of this case's own), with one that has ``expired``, or with none."""
    server, kdc = g.fixture("kerberized_hiveserver"), g.fixture("kdc")
    cache = g.tmp / "ccache"
    if ticket:
        life = 2 if expired else None
        principal = kdc.add_principal(f"etl{uuid.uuid4().hex[:6]}", g.tmp / "etl.keytab", max_life=life)
        kdc.kinit(principal, g.tmp / "etl.keytab", cache)
        if expired:
            time.sleep(3)
    for name, value in kdc.env(cache).items():  # the Kerberos library reads this process's environment
        g.monkeypatch.setenv(name, value)
    return ["--source-host", host, "--source-port", str(server.port), "--auth-mechanism", "GSSAPI",
            "--kerberos-service-name", "hive", "--connect-timeout", "10"]


def keytab_args(g: Given, *, principal: str | None = None, stale: bool = False, kdc_port: int | None = None
                ) -> list[str]:
    """``--principal``/``--keytab`` with a user's keytab from the session's KDC: for ``principal``
    (another one) if given, with keys changed since if ``stale``, or behind a krb5.conf that
    names ``kdc_port`` (nothing listening) as the KDC."""
    kdc = g.fixture("kdc")
    keytab = g.tmp / "etl.keytab"
    user = kdc.add_principal(f"etl{uuid.uuid4().hex[:6]}", keytab)
    if stale:
        kdc.kadmin("cpw", "-randkey", user)
    config = kdc.krb5_conf
    if kdc_port is not None:
        config = g.tmp / "krb5.conf"
        config.write_text(kdc.krb5_conf.read_text().replace(f":{kdc.port}", f":{kdc_port}"))
    g.monkeypatch.setenv("KRB5_CONFIG", str(config))  # kinit runs with this process's environment
    return ["--principal", principal or user, "--keytab", str(keytab)]


def engine_owned_export(g: Given) -> list[str]:
    """The server-side export on the Kerberized stack into an export root the engine (``hive``) may
    write and the run's user owns, without the default ACL that gives the user what the engine
    writes: the engine's files cannot be renamed by the run."""
    hadoop, server = g.fixture("kerberized_hadoop"), g.fixture("kerberized_hiveserver")
    for name, value in hadoop.env().items():
        g.monkeypatch.setenv(name, value)
    login = keytab_args(g)
    user = login[1].split("@")[0]
    root = hadoop.export_root(f"hdfs://cluster1/bad-inputs-export/{uuid.uuid4().hex[:8]}", user, share=False)
    return [*login, "--source-host", "localhost", "--source-port", str(server.port), "--auth-mechanism", "GSSAPI",
            "--kerberos-service-name", "hive", "--extract-mode", "server", "--export-dialect", "hive",
            "--source-hdfs-path", root, "--source-webhdfs-url",
            f"http://localhost:{hadoop.source.webhdfs_address.split(':')[1]}", "--query", "SELECT 1 AS id",
            "--skip-table"]


def local_dir(g: Given, name: str, mode: int, owner: int | None = None) -> str:
    """A directory ``<tmp>/<name>`` with ``mode``, another user's if ``owner`` is given (needs root)."""
    path = g.tmp / name
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if owner is not None:
        if os.geteuid() != 0:
            pytest.skip("making a directory of another user needs root")
        os.chown(path, owner, owner)
    return str(path)


@dataclass(frozen=True)
class Case:
    id: str
    message: str  # what the product prints; '…' stands for a part that differs per machine or run
    give: Callable[[Given], str]  # gives the input; returns what the product printed
    server: bool = False  # needs the local HiveServer2 (Spark Thrift Server)
    kerberos: bool = False  # needs the Kerberized stack (the KDC, and through it the Kerberized server)


CASES = [
    # --- identifiers and queries -----------------------------------------------------------------
    Case("table-name-injection",
         "impala-transfer: --table: 't; DROP TABLE x' is not a valid identifier (use letters, digits and "
         "underscores, starting with a letter or underscore)",
         lambda g: g.cli("--table", "t; DROP TABLE x")),
    Case("split-by-injection",
         "impala-transfer: --split-by: 'id) OR (1=1' is not a valid identifier (use letters, digits and "
         "underscores, starting with a letter or underscore)",
         lambda g: g.cli("--split-by", "id) OR (1=1")),
    Case("partition-column-injection",
         "impala-transfer: --partition: \"ds'--\" is not a valid identifier (use letters, digits and underscores, "
         "starting with a letter or underscore)",
         lambda g: g.cli("--partition", "ds'--=2024-01-01")),
    Case("target-table-injection",
         "impala-transfer: --target-table: 'x; DROP TABLE y' is not a valid identifier (use letters, digits and "
         "underscores, starting with a letter or underscore)",
         lambda g: g.cli("--target-table", "x; DROP TABLE y")),
    Case("output-path-nowhere",
         "output_path: is not set, and there is no source_hdfs_path to stage the chunks on (give source_hdfs_path "
         "(hdfs:// on the source cluster; every worker can read it), or output_path: an hdfs:// or object-store URL "
         "(a local directory only on one machine))",
         lambda g: refused(lambda: task_group(output_path=None))),
    Case("output-fsspec-conn-for-hdfs",
         "output_fsspec_conn_id: is for an object-store output_path, but the chunks are staged on hdfs://nn1/chunks "
         "(give output_path='s3://bucket/prefix' (or another fsspec URL), or drop output_fsspec_conn_id)",
         lambda g: refused(lambda: task_group(output_fsspec_conn_id="lake", output_path="hdfs://nn1/chunks"))),
    Case("target-table-injection-task-group",
         "target_table: 't; DROP TABLE x' is not a valid identifier (use letters, digits and underscores, "
         "starting with a letter or underscore)",
         lambda g: refused(lambda: task_group(target_table="db.t; DROP TABLE x"))),
    Case("order-by-injection",
         "order_by: 'id; DROP TABLE t' is not a valid identifier (use letters, digits and underscores, "
         "starting with a letter or underscore)",
         lambda g: refused(lambda: extract(g, table="db.events", order_by="id; DROP TABLE t"))),
    Case("query-insert",
         "impala-transfer: --query: holds 'INSERT', which writes or changes state (give one read-only query: "
         "SELECT, WITH ... SELECT or VALUES (or --table db.table))",
         lambda g: g.cli("--query", "INSERT INTO t SELECT 1")),
    Case("query-with-insert",
         "impala-transfer: --query: holds 'INSERT', which writes or changes state (give one read-only query: "
         "SELECT, WITH ... SELECT or VALUES (or --table db.table))",
         lambda g: g.cli("--query", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x")),
    Case("query-with-insert-operator",
         "sql: holds 'INSERT', which writes or changes state (an extract must be a read-only query; "
         "set allow_non_select=True if you mean it)",
         lambda g: refused(lambda: extract(g, sql="WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"))),
    Case("query-ddl-operator",
         "sql: holds 'DROP', which writes or changes state (an extract must be a read-only query; "
         "set allow_non_select=True if you mean it)",
         lambda g: refused(lambda: extract(g, sql="DROP TABLE sales.orders"))),
    Case("query-show-operator",
         "sql: the statement starts with 'SHOW', not SELECT/WITH/VALUES (an extract must be a read-only query; "
         "set allow_non_select=True if you mean it)",
         lambda g: refused(lambda: extract(g, sql="SHOW PARTITIONS sales.orders"))),
    Case("query-two-statements",
         "impala-transfer: --query: holds more than one statement (give one read-only query: SELECT, WITH ... "
         "SELECT or VALUES (or --table db.table))",
         lambda g: g.cli("--query", "SELECT 1; DROP TABLE t")),
    Case("query-empty",
         "impala-transfer: --query: the query is empty (give one read-only query: SELECT, WITH ... SELECT or "
         "VALUES (or --table db.table))",
         lambda g: g.cli("--query", "  ")),
    Case("query-and-table",
         "impala-transfer: --table/--query: are given together (give exactly one of --table, --query, --query-file)",
         lambda g: g.cli("--table", "db.events", "--query", "SELECT 1")),
    Case("sql-and-table-operator",
         "sql/table: both are set (give either a query (sql=) or a table (table=))",
         lambda g: refused(lambda: ImpalaChunkPlanOperator(task_id="plan", sql="SELECT 1", table="db.t").execute({}))),
    Case("neither-query-nor-table",
         "impala-transfer: --table/--query/--query-file: none is given (say what to transfer)",
         lambda g: g.cli(omit=("--table",))),
    Case("query-file-missing",
         "impala-transfer: --query-file: cannot read /nonexistent/q.sql: No such file or directory "
         "(give a readable file holding one SELECT)",
         lambda g: g.cli("--query-file", "/nonexistent/q.sql")),
    Case("split-by-not-a-column",
         "impala-transfer: --split-by: 'nope' is not a column of the query result (columns: id, small_int, …) "
         "(name a column the query returns, or leave split_by empty for a single stream)",
         lambda g: g.cli(*hiveserver_args(g), "--table", "default.events", "--split-by", "nope", "--skip-table",
                         "--dry-run"),
         server=True),
    # --- locations ---------------------------------------------------------------------------------
    Case("target-path-traversal",
         "impala-transfer: --target-hdfs-path: 'hdfs://nn/data/../etc' contains a '.' or '..' segment "
         "(give the location without relative segments)",
         lambda g: g.cli("--target-hdfs-path", "hdfs://nn/data/../etc")),
    Case("target-path-glob",
         "impala-transfer: --target-hdfs-path: 'hdfs://nn/data/a[12]' holds '[', ']', which Hadoop's shell reads "
         "as a glob pattern (a delete or rename would address other paths) (name the directory without "
         "* ? [ ] { } or backslashes)",
         lambda g: g.cli("--target-hdfs-path", "hdfs://nn/data/a[12]")),
    Case("target-path-glob-operator",
         "target_path: 'hdfs://nn/data/{a,b}' holds '{', '}', which Hadoop's shell reads as a glob pattern "
         "(a delete or rename would address other paths) (name the directory without * ? [ ] { } or backslashes)",
         lambda g: refused(lambda: transfer_method(
             TransferOperator(task_id="t", method="hdfs_put", manifest={}, target_path="hdfs://nn/data/{a,b}"),
             "hdfs_put"))),
    Case("target-path-shell-characters",
         "hdfs dfs -mkdir -p 'hdfs://nn/data/$(touch x);y/events/_impala_transfer_staging/r'",
         lambda g: g.dry_run_line("--target-hdfs-path", "hdfs://nn/data/$(touch x);y", "--no-distcp",
                                  containing="-mkdir")),
    Case("target-path-without-scheme-operator",
         "target_path: '/data/x' has no scheme, so it would mean a different place on every machine "
         "(write hdfs://<namenode>/data/x or file:///data/x)",
         lambda g: refused(lambda: transfer_method(
             TransferOperator(task_id="t", method="hdfs_put", manifest={}, target_path="/data/x"), "hdfs_put"))),
    Case("target-path-seed-form",
         "impala-transfer: --target-hdfs-path: 'cluster2.example.com/target/path' has no scheme; Hadoop would read "
         "it as a relative path on the source cluster (write hdfs://cluster2.example.com/target/path "
         "(add :8020 if your namenode needs a port))",
         lambda g: g.cli("--target-hdfs-path", "cluster2.example.com/target/path")),
    Case("target-path-unknown-scheme",
         "impala-transfer: --target-hdfs-path: 'ftpx://host/data' uses ftpx://, which neither Hadoop nor fsspec "
         "knows (give hdfs://, viewfs://, webhdfs://, file:// or an fsspec URL such as s3://, gs://, abfs://, sftp://)",
         lambda g: g.cli("--target-hdfs-path", "ftpx://host/data")),
    Case("fsspec-unknown-protocol-python",
         "target_fs_config.protocol: 'ftpx' is not an fsspec protocol (use one of abfs, …)",
         lambda g: refused(lambda: FSSpecFileTransferManager(target_fs_config={"protocol": "ftpx"}))),
    Case("source-hdfs-path-traversal",
         "impala-transfer: --source-hdfs-path: 'hdfs://nn1/tmp/../x' contains a '.' or '..' segment "
         "(give the location without relative segments)",
         lambda g: g.cli("--target-hdfs-path", "hdfs://nn2/data", "--source-hdfs-path", "hdfs://nn1/tmp/../x")),
    Case("source-hdfs-path-glob",
         "impala-transfer: --source-hdfs-path: 'hdfs://nn1/tmp/stage*' holds '*', which Hadoop's shell reads as "
         "a glob pattern (a delete or rename would address other paths) (name the directory without "
         "* ? [ ] { } or backslashes)",
         lambda g: g.cli("--target-hdfs-path", "hdfs://nn2/data", "--source-hdfs-path", "hdfs://nn1/tmp/stage*")),
    Case("scp-path-traversal",
         "impala-transfer: --scp-target-path: '/data/../etc' contains a '.' or '..' segment "
         "(give the location without relative segments)",
         lambda g: g.cli("--scp-target-host", "edge", "--scp-target-path", "/data/../etc")),
    Case("scp-path-traversal-connection",
         "scp_target_path: '/data/../etc' contains a '.' or '..' segment (give the location without relative segments)",
         lambda g: refused(lambda: ScpHook(g.connection("edge", conn_type="ssh", host="edge", login="etl",
                                                        extra={"target_path": "/data/../etc"})).target())),
    Case("scp-path-shell-characters-legacy-scp",
         "impala-transfer: --scp-target-path: '/data/$(reboot)/events' holds characters the remote shell "
         "interprets, and scp has no -s (OpenSSH < 8.7 speaks only the legacy SCP protocol, which hands the remote "
         "path to that shell) (use a remote directory of letters, digits and / . _ - + = : @ , % only, or install "
         "OpenSSH >= 8.7 on the worker (or point scp_bin at one) so scp -s sends the path literally)",
         lambda g: g.fake_scp("legacy").cli("--scp-target-host", "edge", "--scp-target-path", "/data/$(reboot)")),
    Case("scp-path-shell-characters-sftp",
         "scp -p -s -P 22 … -- …/chunk-00000-part-00000.parquet "
         "'edge:/data/$(reboot)/events/_impala_transfer_staging/r/'",
         lambda g: g.fake_scp("sftp").dry_run_line("--scp-target-host", "edge", "--scp-target-path",
                                                   "/data/$(reboot)", containing="scp -p")),
    Case("temp-dir-traversal",
         "impala-transfer: --temp-dir: '/tmp/impala_transfer/../../etc' contains a '.' or '..' segment "
         "(give the location without relative segments)",
         lambda g: g.cli("--temp-dir", "/tmp/impala_transfer/../../etc")),
    Case("temp-dir-glob",
         "impala-transfer: --temp-dir: '…/out/tmp[12]' holds '[', ']', which Hadoop's shell reads as a glob pattern "
         "(a delete or rename would address other paths) (name the directory without * ? [ ] { } or backslashes)",
         lambda g: g.cli("--temp-dir", f"{g.out}/tmp[12]", "--target-hdfs-path", "hdfs://nn/data")),
    Case("temp-dir-other-owner",
         "impala-transfer: --temp-dir: '…/shared' is owned by nobody (uid 65534), who could rename or replace what a "
         "run writes in it (give a directory that only you or root can change, e.g. one under your home directory)",
         lambda g: g.cli("--temp-dir", local_dir(g, "shared", 0o1777, owner=65534))),
    Case("temp-dir-writable-by-others",
         "impala-transfer: --temp-dir: '…/shared' (mode 0777) is writable by other users, who could rename or replace "
         "what a run writes in it (chmod go-w '…/shared' (or chmod +t, as /tmp has), or give another directory)",
         lambda g: g.cli("--temp-dir", local_dir(g, "shared", 0o777))),
    Case("temp-dir-sticky-shared",
         "configuration is valid: file://…/out/target/events, methods hdfs_put -> hdfs_cp -> scp, table events",
         lambda g: g.cli("--temp-dir", "/tmp", "--validate-config", code=0).splitlines()[0]),
    Case("temp-dir-parent-writable-by-others",
         "impala-transfer: --temp-dir: its parent '…/shared' (mode 0777) is writable by other users, who could rename "
         "or replace the temp dir (chmod go-w '…/shared' (or chmod +t, as /tmp has), or give a temp dir elsewhere)",
         lambda g: g.cli("--temp-dir", local_dir(g, "shared", 0o777) + "/mine")),
    Case("temp-dir-symlink",
         "impala-transfer: --temp-dir: '…/link' is a symbolic link (give the directory itself: '…/real')",
         lambda g: (os.symlink(local_dir(g, "real", 0o700), g.tmp / "link"), g.cli("--temp-dir", f"{g.tmp}/link"))[1]),
    Case("temp-dir-not-a-directory",
         "impala-transfer: --temp-dir: '…/file' is not a directory (give a directory, or a path that does not exist yet)",
         lambda g: ((g.tmp / "file").write_text("x"), g.cli("--temp-dir", f"{g.tmp}/file"))[1]),
    Case("temp-dir-default-taken",
         "impala-transfer: --temp-dir: the default '…/impala-transfer-…' is owned by nobody (uid 65534), not by you: "
         "another user made it, so it is not private to you (have it removed (by its owner or root), or give "
         "--temp-dir a directory of your own)",
         lambda g: g.cli(omit=("--temp-dir",), env={"TMPDIR": str(g.tmp)}) if local_dir(
             g, f"impala-transfer-{os.getuid()}", 0o777, owner=65534) else ""),
    Case("temp-dir-default-not-private",
         "impala-transfer: --temp-dir: the default '…/impala-transfer-…' has mode 0755, so it is not private to you "
         "(chmod 700 '…/impala-transfer-…')",
         lambda g: g.cli(omit=("--temp-dir",), env={"TMPDIR": str(g.tmp)}) if local_dir(
             g, f"impala-transfer-{os.getuid()}", 0o755) else ""),
    Case("target-table-traversal-python",
         "target_table: '../etc' is not a single path component (use a plain name)",
         lambda g: refused(lambda: FSSpecFileTransferManager(
             target_fs_config={"protocol": "file", "target_path": str(g.out / "target")}
         ).transfer_files([__file__], "../etc"))),
    # --- choices and numbers -----------------------------------------------------------------------
    Case("unknown-method",
         "impala-transfer: --method: 'rsync' is not allowed (use one of distcp, hdfs_put, hdfs_cp, scp, fsspec)",
         lambda g: g.cli("--method", "rsync")),
    Case("unknown-method-task-group",
         "method: 'rsync' is not a transfer method (use one of distcp, hdfs_put, hdfs_cp, scp, fsspec)",
         lambda g: refused(lambda: task_group(method="rsync"))),
    Case("chunk-size-zero",
         "impala-transfer: --chunk-size: 0 is not > 0 (give a whole number > 0)",
         lambda g: g.cli("--chunk-size", "0")),
    Case("chunk-size-negative-env",
         "impala-transfer: CHUNK_SIZE: -5 is not > 0 (give a whole number > 0)",
         lambda g: g.cli(env={"CHUNK_SIZE": "-5"})),
    Case("chunk-size-text-operator",
         "chunk_size: 'abc' is not a whole number (give a whole number > 0)",
         lambda g: refused(lambda: extract(g, table="db.events", chunk_size="abc"))),
    Case("verify-mode",
         "impala-transfer: --verify: 'md5' is not allowed (use one of checksum, sha256, size)",
         lambda g: g.cli("--verify", "md5")),
    Case("verify-mode-task-group",
         "verify: 'md5' is not a verification mode (use one of checksum, sha256, size)",
         lambda g: refused(lambda: task_group(verify="md5"))),
    Case("output-format",
         "impala-transfer: --output-format: 'orc' is not allowed (use one of parquet, csv)",
         lambda g: g.cli("--output-format", "orc")),
    Case("compression-for-format",
         "impala-transfer: --compression: 'snappy' is not supported for csv (use one of none, gzip)",
         lambda g: g.cli("--output-format", "csv", "--compression", "snappy")),
    Case("use-distcp-maybe-env",
         "impala-transfer: USE_DISTCP: 'maybe' is not true or false (write true or false)",
         lambda g: g.cli(env={"USE_DISTCP": "maybe"})),
    Case("use-ssl-maybe-connection",
         "connection extra use_ssl: 'maybe' is not true or false (write true or false)",
         lambda g: refused(lambda: ImpalaTransferHook(impala_conn_id=g.connection(
             "impala_ssl", conn_type="impala_transfer", host="impalad", extra={"use_ssl": "maybe"})).connector())),
    Case("connect-timeout-negative",
         "impala-transfer: --connect-timeout: -1 is not > 0 (give a whole number > 0)",
         lambda g: g.cli("--connect-timeout", "-1")),
    Case("command-timeout-zero-env",
         "impala-transfer: COMMAND_TIMEOUT: 0 is not > 0 (give a whole number > 0)",
         lambda g: g.cli(env={"COMMAND_TIMEOUT": "0"})),
    Case("connect-timeout-text-connection",
         "connection extra connect_timeout: 'soon' is not a number of seconds (give seconds > 0, e.g. 30)",
         lambda g: refused(lambda: ImpalaTransferHook(impala_conn_id=g.connection(
             "impala_slow", conn_type="impala_transfer", host="impalad",
             extra={"connect_timeout": "soon"})).connector())),
    Case("connect-timeout-zero-operator",
         "connect_timeout: 0 is not a number of seconds > 0 (give seconds > 0, e.g. 30)",
         lambda g: refused(lambda: ImpalaExtractOperator(
             task_id="extract", output_path=str(g.out), table="db.events", connect_timeout=0,
             impala_conn_id=g.connection("impala_ok", conn_type="impala_transfer", host="impalad"),
         ).hook().connector())),
    Case("command-timeout-negative-python",
         "command_timeout: -1 is not a number of seconds > 0 (fix or leave unset)",
         lambda g: refused(lambda: UnifiedFileTransferManager(target_hdfs_path="hdfs://nn/x", command_timeout=-1))),
    Case("distcp-maps-zero-operator",
         "distcp_maps: 0 is not a whole number > 0 (fix or leave unset)",
         lambda g: refused(lambda: TransferOperator(task_id="t", method="distcp", manifest={},
                                                    target_path="hdfs://nn/x", distcp_maps=0))),
    Case("distcp-conf-secret-operator",
         "distcp_conf.fs.s3a.secret.key: would put a secret on the distcp command line, which any local user can "
         "read (keep it in a Hadoop credential provider (hadoop.security.credential.provider.path) or the "
         "cluster's configuration)",
         lambda g: refused(lambda: TransferOperator(task_id="t", method="distcp", manifest={}, target_path="hdfs://nn/x",
                                                    distcp_conf={"fs.s3a.secret.key": "AKIA…"}))),
    Case("distcp-conf-connection-key",
         "distcp_conf: mapreduce.map.java.opts in the distcp_conf extra of connection 'hadoop' is not allowed: a "
         "connection may set only mapreduce.job.priority, … (set it with the operator argument distcp_conf= "
         "(DAG code), or remove it)",
         lambda g: refused(lambda: HadoopCliHook(g.connection(
             "hadoop", conn_type="hadoop_cli", extra={"distcp_conf": {"mapreduce.map.java.opts": "-javaagent:/tmp/x.jar"}})))),
    Case("yarn-queue-not-a-name",
         "impala-transfer: yarn_queue: 'etl -Dx=y' is not a queue name (give the leaf queue's name, e.g. etl or "
         "root.etl)",
         lambda g: g.cli("--yarn-queue", "etl -Dx=y")),
    Case("source-port-out-of-range",
         "impala-transfer: --source-port: 99999 is not a port number (give a port between 1 and 65535)",
         lambda g: g.cli("--source-port", "99999")),
    Case("scp-port-text-env",
         "impala-transfer: SCP_PORT: 'ssh' is not a port number (give a port between 1 and 65535)",
         lambda g: g.cli("--scp-target-host", "edge", "--scp-target-path", "/data", env={"SCP_PORT": "ssh"})),
    Case("scp-port-out-of-range-connection",
         "scp port: 70000 is not a port number (give a port between 1 and 65535)",
         lambda g: refused(lambda: ScpHook(g.connection("edge_port", conn_type="ssh", host="edge", port=70000,
                                                        extra={"target_path": "/data"})).target())),
    Case("impala-port-out-of-range-connection",
         "port of connection 'impala_port': 70000 is not a port number (give a port between 1 and 65535)",
         lambda g: refused(lambda: ImpalaTransferHook(impala_conn_id=g.connection(
             "impala_port", conn_type="impala_transfer", host="impalad", port=70000)).connector())),
    Case("scp-port-python",
         "scp_port: 0 is not a port number (e.g. 22)",
         lambda g: refused(lambda: UnifiedFileTransferManager(scp_target_host="edge", scp_target_path="/data",
                                                              scp_port=0))),
    Case("unknown-task-group-argument",
         "scp_port: unknown argument(s) (use: target_cluster, …)",
         lambda g: refused(lambda: task_group(scp_port=22))),
    Case("unknown-step",
         "step_kwargs: 'load' is not a step of the group (use: route, extract_mode, plan, …, or transfer for every "
         "method)",
         lambda g: refused(lambda: task_group(step_kwargs={"load": {"pool": "impala"}}))),
    Case("step-argument-that-wires-the-group",
         "step_kwargs['distcp']: trigger_rule: set by the group, which wires its tasks together (drop it; outlets "
         "are the group's outlets argument)",
         lambda g: refused(lambda: task_group(step_kwargs={"distcp": {"trigger_rule": "all_done"}}))),
    Case("unknown-python-setting",
         "use_scp: unknown setting(s) of UnifiedFileTransferManager (use target_hdfs_path, …)",
         lambda g: refused(lambda: UnifiedFileTransferManager(target_hdfs_path="hdfs://nn/x", use_scp=True))),
    # --- partitions and run ids ------------------------------------------------------------------
    Case("partition-value-newline-operator",
         "partition: the value '2024-01\\n01' of 'ds' holds '\\n' (use letters, digits, '-', '_', '.', '+' or "
         "spaces (e.g. 2026-01-01): Hive escapes the others in directory names and quotes/backslashes cannot be "
         "passed safely)",
         lambda g: refused(lambda: TransferOperator(task_id="t", method="hdfs_put", manifest={},
                                                    target_path="hdfs://nn/x", partition={"ds": "2024-01\n01"}
                                                    ).transfer_run(CONTEXT))),
    Case("partition-value-slash",
         "impala-transfer: --partition: the value '2024/01' of 'ds' holds '/' (use letters, digits, '-', '_', '.', "
         "'+' or spaces (e.g. 2026-01-01): Hive escapes the others in directory names and quotes/backslashes cannot "
         "be passed safely)",
         lambda g: g.cli("--partition", "ds=2024/01")),
    Case("partition-value-equals",
         "impala-transfer: --partition: the value 'a=b' of 'ds' holds '=' (use letters, digits, '-', '_', '.', '+' "
         "or spaces (e.g. 2026-01-01): Hive escapes the others in directory names and quotes/backslashes cannot be "
         "passed safely)",
         lambda g: g.cli("--partition", "ds=a=b")),
    Case("partition-without-value",
         "impala-transfer: --partition: 'ds' is not column=value (write e.g. ds=2024-01-01)",
         lambda g: g.cli("--partition", "ds")),
    Case("run-id-traversal",
         "hdfs dfs -mkdir -p hdfs://nn/data/events/_impala_transfer_staging/run-…",
         lambda g: g.dry_run_line("--run-id", "..", "--target-hdfs-path", "hdfs://nn/data", "--no-distcp",
                                  containing="-mkdir")),
    Case("run-id-option-like",
         "hdfs dfs -mkdir -p hdfs://nn/data/events/_impala_transfer_staging/rf-…",
         lambda g: g.dry_run_line("--run-id=-rf", "--target-hdfs-path", "hdfs://nn/data", "--no-distcp",
                                  containing="-mkdir")),
    Case("run-id-odd-characters",
         "hdfs dfs -mkdir -p hdfs://nn/data/events/_impala_transfer_staging/manual__2024-01-01T00_00_00_00_00…",
         lambda g: g.dry_run_line("--run-id", "manual__2024-01-01T00:00:00+00:00", "--target-hdfs-path",
                                  "hdfs://nn/data", "--no-distcp", containing="-mkdir")),
    # --- credentials, keys and connections -------------------------------------------------------
    Case("password-on-command-line",
         "impala-transfer: --password: a password on the command line is visible to every user (ps, shell history) "
         "(use IMPALA_PASSWORD, --password-file FILE or --ask-password)",
         lambda g: g.cli("--password", "hunter2")),
    Case("ldap-without-password",
         "impala-transfer: --auth-mechanism: LDAP needs a user and a password (set --user and the password "
         "(IMPALA_PASSWORD, --password-file or --ask-password))",
         lambda g: g.cli("--auth-mechanism", "LDAP", "--user", "etl", "--password-env", "NO_SUCH_VARIABLE")),
    Case("auth-mechanism-unknown-connection",
         "auth_mechanism: 'KERBEROS' is not supported (set the connection extra auth_mechanism to one of NOSASL, "
         "PLAIN, GSSAPI, LDAP, JWT)",
         lambda g: refused(lambda: ImpalaTransferHook(impala_conn_id=g.connection(
             "impala_krb", conn_type="impala_transfer", host="impalad",
             extra={"auth_mechanism": "KERBEROS"})).connector())),
    Case("connection-missing",
         "The conn_id `nope` isn't defined",
         lambda g: refused(lambda: ImpalaTransferHook(impala_conn_id="nope").connector(), AirflowNotFoundException)),
    Case("fsspec-options-secret",
         "impala-transfer: --fsspec-options: holds secrets (secret) (give credentials through the store's "
         "environment variables or credential files)",
         lambda g: g.cli("--target-hdfs-path", "memory://bucket/x", "--fsspec-options", '{"secret": "s3cr3t"}')),
    Case("fsspec-connection-protocol-mismatch",
         "target_path: 'gs://bucket/x' is gs:// but connection 'lake' is for s3:// (make them agree)",
         lambda g: refused(lambda: FsspecHook(g.connection("lake", conn_type="fsspec", extra={"protocol": "s3"}))
                           .destination("gs://bucket/x"))),
    Case("hadoop-connection-env",
         "env: LD_PRELOAD in the env extra of connection 'hadoop' is not allowed: a connection may set only "
         "HADOOP_CONF_DIR, … (set other variables with the operator argument hadoop_env= (DAG code), or remove them)",
         lambda g: refused(lambda: HadoopCliHook(g.connection("hadoop", conn_type="hadoop_cli",
                                                              extra={"env": {"LD_PRELOAD": "/tmp/x.so"}})))),
    Case("hadoop-connection-proxy-user",
         "env: HADOOP_PROXY_USER in the env extra of connection 'hadoop' is not allowed: a connection cannot choose "
         "whom the workers' Hadoop identity impersonates (pass proxy_user='<user>' to the operator or "
         "impala_transfer_group (DAG code), or --proxy-user to the CLI; the cluster must allow it: "
         "hadoop.proxyuser.<the workers' user>.hosts/groups/users)",
         lambda g: refused(lambda: HadoopCliHook(g.connection("hadoop", conn_type="hadoop_cli",
                                                              extra={"env": {"HADOOP_PROXY_USER": "hdfs"}})))),
    Case("proxy-user-not-a-name",
         "impala-transfer: --proxy-user: 'etl; id' is not a user name (give the short name of an HDFS user, e.g. etl)",
         lambda g: g.cli("--proxy-user", "etl; id")),
    Case("hadoop-connection-binary",
         "hadoop_bin: is set in the extras of connection 'hadoop', but a connection cannot choose the program a "
         "worker runs (pass hadoop_bin='/path/to/hadoop' to the operator (or impala_transfer_group), or set "
         "[impala_transfer] hadoop_bin in the Airflow config; remove the extra)",
         lambda g: refused(lambda: HadoopCliHook(g.connection("hadoop", conn_type="hadoop_cli",
                                                              extra={"hadoop_bin": "/tmp/evil"})))),
    Case("scp-host-option-injection",
         "impala-transfer: --scp-target-host: '-oProxyCommand=x' is not a host name (give host or IP only)",
         lambda g: g.cli("--scp-target-host=-oProxyCommand=x", "--scp-target-path", "/data")),
    Case("scp-key-file-missing",
         "impala-transfer: --scp-key-file: '/nonexistent/id_ed25519' does not exist (give the path of the private "
         "key on this machine)",
         lambda g: g.cli("--scp-target-host", "edge", "--scp-target-path", "/data",
                         "--scp-key-file", "/nonexistent/id_ed25519")),
    Case("scp-key-file-readable-by-others-connection",
         "key_file: '…/id_shared' can be read by other users (mode 0644), so ssh refuses to use it "
         "(chmod 600 …/id_shared)",
         lambda g: refused(lambda: ScpHook(g.connection("edge_key", conn_type="ssh", host="edge", login="etl", extra={
             "target_path": "/data", "key_file": g.key("id_shared", mode=0o644)})).target())),
    Case("scp-key-file-with-passphrase",
         "impala-transfer: --scp-key-file: '…/id_locked' is protected by a passphrase, which ssh cannot ask for in "
         "batch mode (use an unencrypted deploy key (restricted in the target's authorized_keys), or load this key "
         "into an ssh-agent and set SSH_AUTH_SOCK)",
         lambda g: g.without_ssh_agent().cli("--scp-target-host", "edge", "--scp-target-path", "/data",
                                             "--scp-key-file", g.key("id_locked", passphrase="correct horse"))),
    Case("ssh-connection-passphrase",
         "private_key_passphrase: is set in connection 'edge_pp', but OpenSSH's scp reads a passphrase only from a "
         "terminal, never from a task (use an unencrypted deploy key (kept as key_file or private_key, restricted in "
         "the target's authorized_keys), or load the key into an ssh-agent on the worker and keep SSH_AUTH_SOCK set "
         "for the task; then remove private_key_passphrase)",
         lambda g: refused(lambda: ScpHook(g.connection("edge_pp", conn_type="ssh", host="edge", extra={
             "target_path": "/data", "key_file": g.key("id_edge"), "private_key_passphrase": "pass"})).target())),
    Case("ssh-connection-password-only",
         "ssh_conn_id: connection 'edge_pw' has a password and no key (add key_file or private_key to its extras; "
         "passwords cannot be used in batch mode)",
         lambda g: refused(lambda: ScpHook(g.connection("edge_pw", conn_type="ssh", host="edge", login="etl",
                                                        password="s3cret")).target(remote_path="/data"))),
    # --- the source at run time ------------------------------------------------------------------
    Case("source-unreachable",
         "impala-transfer: FAILED: cannot reach Impala at 127.0.0.1:… within 30s: [Errno 111] Connection refused "
         "(check the connection's Host/Port and that the server is up)",
         lambda g: g.cli("--source-port", str(g.fixture("closed_port")), code=1)),
    Case("auth-mechanism-mismatch",
         "impala-transfer: FAILED: Impala at 127.0.0.1:… refused the session with auth_mechanism=NOSASL (TSocket "
         "read 0 bytes): set the connection extra auth_mechanism to what the server expects (PLAIN/LDAP for "
         "user+password, GSSAPI for Kerberos, NOSASL for none)",
         lambda g: g.cli("--source-port", str(g.fixture("hiveserver").port), "--auth-mechanism", "NOSASL",
                         "--table", "default.events", "--skip-table", "--connect-timeout", "5", code=1),
         server=True),
    Case("gssapi-no-ticket",
         "impala-transfer: FAILED: Impala at localhost:…: no Kerberos ticket (…): get one before the task runs "
         "(Airflow's ticket renewer, airflow kerberos, with [kerberos] principal and keytab; or kinit -kt "
         "<keytab> <principal>) and point KRB5CCNAME at its cache",
         lambda g: g.cli(*kerberos_args(g, ticket=False), code=1), server=True, kerberos=True),
    Case("gssapi-unknown-service-principal",
         "impala-transfer: FAILED: Impala at 127.0.0.1:…: the KDC knows no service principal hive/127.0.0.1 (…): "
         "set kerberos_service_name (now 'hive') and krb_host (now '127.0.0.1') to the service and host of the "
         "daemons' principal, e.g. impala and the daemon's canonical host name when you connect through an "
         "address or a load balancer (connection extras; CLI --kerberos-service-name, --krb-host)",
         lambda g: g.cli(*kerberos_args(g, host="127.0.0.1"), code=1), server=True, kerberos=True),
    Case("gssapi-module-missing",
         "impala-transfer: --auth-mechanism: GSSAPI needs the Python module kerberos, which is not installed "
         "(pip install 'airflow-provider-impala-transfer[kerberos]' (it builds against libkrb5-dev))",
         lambda g: (g.monkeypatch.setitem(sys.modules, "kerberos", None), g.cli("--auth-mechanism", "GSSAPI"))[1]),
    Case("gssapi-ticket-expired",
         "impala-transfer: FAILED: Impala at localhost:…: the Kerberos ticket expired (…): renew it (Airflow's "
         "ticket renewer, airflow kerberos, keeps it fresh) or kinit again",
         lambda g: g.cli(*kerberos_args(g, expired=True), code=1), server=True, kerberos=True),
    Case("keytab-half-a-login",
         "impala-transfer: --keytab: principal is set in the command's settings but keytab is not (give both "
         "principal and keytab (the path of a keytab on the worker), or neither to use the worker's own ticket cache)",
         lambda g: g.cli("--principal", "etl@IMPALA-TRANSFER.TEST")),
    Case("keytab-readable-by-others",
         "impala-transfer: --keytab: …/etl.keytab may be read by its group or others (mode 0640): whoever reads "
         "it can act as etl@IMPALA-TRANSFER.TEST (chmod 600 …/etl.keytab)",
         lambda g: g.cli("--principal", "etl@IMPALA-TRANSFER.TEST", "--keytab", g.file("etl.keytab", mode=0o640))),
    Case("keytab-without-the-principal",
         "impala-transfer: --principal: …/etl.keytab holds no key for other…@IMPALA-TRANSFER.TEST (kinit: Keytab "
         "contains no suitable keys for other…@IMPALA-TRANSFER.TEST while getting initial credentials) (klist -kt "
         "…/etl.keytab lists the principals it holds; give one of them, or export this principal's key into it)",
         lambda g: g.cli(*keytab_args(g, principal=g.fixture("kdc").add_principal(f"other{uuid.uuid4().hex[:6]}"))),
         server=True, kerberos=True),
    Case("keytab-stale-key",
         "impala-transfer: FAILED: kinit for etl…@IMPALA-TRANSFER.TEST: the key in …/etl.keytab is not the "
         "principal's current key (…): its keys were changed after the keytab was made; export a fresh keytab",
         lambda g: g.cli(*keytab_args(g, stale=True), code=1), server=True, kerberos=True),
    Case("kdc-unreachable",
         "impala-transfer: FAILED: kinit for etl…@IMPALA-TRANSFER.TEST: no KDC of its realm answered (…): check "
         "[realms] kdc in krb5.conf (KRB5_CONFIG) and that the KDC is up and reachable from this worker",
         lambda g: g.cli(*keytab_args(g, kdc_port=g.fixture("closed_port")), code=1), server=True, kerberos=True),
    Case("empty-result",
         "counts: source 0, files 0, delivered 0, published 0",
         lambda g: next(line for line in g.cli(*hiveserver_args(g), "--table", "default.empty_table", "--split-by",
                                               "id", "--target-hdfs-path", f"memory://empty-{uuid.uuid4().hex[:8]}/x",
                                               "--skip-table", code=0).splitlines() if line.startswith("counts:")),
         server=True),
    # --- server-side export --------------------------------------------------------------------------
    Case("export-without-source-path",
         "impala-transfer: --source-hdfs-path: the server-side export writes its files on the source cluster "
         "(set source_hdfs_path=hdfs://<source-namenode>/<directory the source engine may write>)",
         lambda g: g.cli("--extract-mode", "server", "--target-hdfs-path", "hdfs://nn2/t")),
    Case("export-without-webhdfs",
         "impala-transfer: --source-webhdfs-url: the server-side export lists the exported files and reads their "
         "Parquet footers over WebHDFS (give http://<source-namenode>:9870 (SOURCE_WEBHDFS_URL))",
         lambda g: g.cli("--extract-mode", "server", "--source-hdfs-path", "hdfs://nn1/stage",
                         "--target-hdfs-path", "hdfs://nn2/t")),
    Case("export-webhdfs-not-a-url",
         "impala-transfer: --source-webhdfs-url: 'nn1:9870' is not an http(s):// URL "
         "(give http://<source-namenode>:9870)",
         lambda g: g.cli("--extract-mode", "server", "--source-hdfs-path", "hdfs://nn1/stage",
                         "--source-webhdfs-url", "nn1:9870", "--target-hdfs-path", "hdfs://nn2/t")),
    Case("export-written-as-the-engines-user",
         "impala-transfer: FAILED: source_hdfs_path: the source engine wrote the export at hdfs://cluster1/"
         "bad-inputs-export/…/_impala_transfer_export/r as hive, and this run's user etl… may not rename or remove "
         "what it wrote (as the HDFS superuser, run: hdfs dfs -setfacl -R -m user:etl…:rwx,default:user:etl…:rwx "
         "hdfs://cluster1/bad-inputs-export/… ; then retry: the retry replaces this export)",
         lambda g: g.cli(*engine_owned_export(g), code=1), server=True, kerberos=True),
    Case("export-staging-db-injection",
         "impala-transfer: --staging-db: 'tmp; DROP' is not a valid identifier (use letters, digits and "
         "underscores, starting with a letter or underscore)",
         lambda g: g.cli("--extract-mode", "server", "--source-hdfs-path", "hdfs://nn1/stage", "--staging-db",
                         "tmp; DROP", "--target-hdfs-path", "hdfs://nn2/t")),
    Case("hadoop-path-password",
         "impala-transfer: --target-hdfs-path: 'hdfs://etl:***@nn/data' holds a password, which would be on the "
         "Hadoop tools' command lines (give the location without it: Hadoop authenticates through its own "
         "configuration (Kerberos, delegation tokens))",
         lambda g: g.cli("--target-hdfs-path", "hdfs://etl:pw1234@nn/data")),
    # --- publishing ------------------------------------------------------------------------------
    Case("publish-lock-unknown",
         "impala-transfer: --publish-lock: 'optimistic' is not allowed (use one of atomic, none)",
         lambda g: g.cli("--publish-lock", "optimistic")),
    Case("publish-lock-lease-zero",
         "impala-transfer: --publish-lock-lease: 0 is not > 0 (give a whole number > 0)",
         lambda g: g.cli("--publish-lock-lease", "0")),
    Case("publish-lock-store-cannot-lock",
         "publish_lock: gs://bucket/events: cannot create a file only if it is absent in one step, so two runs "
         "publishing this target at once could both take its lock (publish to HDFS, AWS S3, SFTP or a local path; "
         "or set publish_lock='none' (CLI: --publish-lock none) if only one run at a time ever publishes to this "
         "target)",
         lambda g: refused(lambda: TransferOperator(task_id="t", method="fsspec", manifest={},
                                                    target_path="gs://bucket/events"))),
    Case("two-groups-one-final-directory",
         "target_path: the task groups 'orders' and 'refunds' of DAG 'bad_inputs' both publish hdfs://nn/x "
         "(ds=2026-12-07), so in each run one would replace the other's files (give each group its own "
         "target_path or partition)",
         lambda g: refused(lambda: two_groups(partition={"ds": "2026-12-07"}))),
]


def two_groups(**arguments):
    with DAG("bad_inputs", schedule=None):
        for group in ("orders", "refunds"):
            impala_transfer_group(group, target_path="hdfs://nn/x", output_path="/tmp/x", sql="SELECT 1", **arguments)


def matches(message: str, printed: str) -> bool:
    """``printed`` is ``message`` exactly, with any text where ``message`` says ``…``."""
    return re.fullmatch(".*?".join(map(re.escape, message.split("…"))), printed, re.S) is not None


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[*([pytest.mark.server] if c.server else []),
                                                                   *([pytest.mark.kerberos] if c.kerberos else [])])
                                  for c in CASES])
def test_each_bad_input_prints_its_documented_message_and_writes_nothing(case, tmp_path, monkeypatch, request):
    given = Given(tmp_path, monkeypatch, request)
    printed = case.give(given)
    assert matches(case.message, printed), f"printed:  {printed}\ndocumented: {case.message}"
    written = [p for p in given.out.rglob("*") if p.is_file()] if given.out.exists() else []
    assert not written


def doc_rows() -> list[tuple[str, str]]:
    """(id, message) of every row of the tables in docs/errors.md: the first column holds the id,
    the fourth the message as a code span."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("|") or len(cells) < 4 or not re.fullmatch(r"`[a-z0-9-]+`", cells[0]):
            continue
        span = re.fullmatch(r"(`+) ?(.*?) ?\1", cells[3])
        assert span, f"the message of {cells[0]} is not a code span: {cells[3]}"
        rows.append((cells[0].strip("`"), span.group(2)))
    return rows


def test_docs_errors_md_lists_exactly_these_cases_with_the_same_messages():
    rows = doc_rows()
    ids = [row_id for row_id, _ in rows]
    assert len(ids) == len(set(ids)), "an id appears twice in docs/errors.md"
    assert len(CASES) == len({c.id for c in CASES}), "an id appears twice in CASES"
    assert set(ids) == {c.id for c in CASES}
    assert dict(rows) == {c.id: c.message for c in CASES}
