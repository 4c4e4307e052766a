"""The CLI's settings: one table says each setting's flag, environment variable, default and kind;
values resolve flag > environment > config file > default, and each remembers where it came from
(``--show-config`` prints that).

The password is never a setting: it comes from an environment variable, a file or a prompt
(:func:`read_password`), so it cannot end up in shell history, ``ps`` output or a config file.
"""

from __future__ import annotations

import getpass
import os
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_impala_transfer.cli.temp_dir import default_temp_dir
from airflow_provider_impala_transfer.core.common.connection import AUTH_MECHANISMS, DEFAULT_RPC_TIMEOUT
from airflow_provider_impala_transfer.core.common.secrets import MASK, is_secret_name, redact_uri
from airflow_provider_impala_transfer.core.common.values import parse_bool, port_number, positive_int
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.export import DEFAULT_STAGING_DB, EXPORT_DIALECTS, EXTRACT_MODES
from airflow_provider_impala_transfer.core.transfer.lock import DEFAULT_LEASE, LOCK_MODES
from airflow_provider_impala_transfer.core.extract.writer import OUTPUT_FORMATS
from airflow_provider_impala_transfer.core.table.ddl import DIALECTS
from airflow_provider_impala_transfer.core.transfer.commands import DEFAULT_TIMEOUT
from airflow_provider_impala_transfer.core.transfer.delivery import DEFAULT_VERIFY, VERIFY_MODES
from airflow_provider_impala_transfer.core.transfer.distcp import DISTCP_STRATEGIES
from airflow_provider_impala_transfer.core.transfer.methods import METHODS
from airflow_provider_impala_transfer.core.transfer.scp import HOST_KEY_CHECKING


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: Any = None
    kind: str = "str"  # str | int | port | bool | json
    env: str | None = None
    choices: tuple[str, ...] | None = None
    group: str = "source"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _s(name: str, help: str, default: Any = None, kind: str = "str", env: str | None = None,
       choices: tuple[str, ...] | None = None, group: str = "source") -> Setting:
    return Setting(name, help, default, kind, env, choices, group)


SETTINGS: tuple[Setting, ...] = (
    # source
    _s("source_host", "Impala daemon (HiveServer2 protocol) host", env="IMPALA_HOST"),
    _s("source_port", "its port", 21050, "port", "IMPALA_PORT"),
    _s("source_database", "database for unqualified names", "default", env="IMPALA_DATABASE"),
    _s("auth_mechanism", "NOSASL, PLAIN, LDAP, GSSAPI or JWT", "NOSASL", env="IMPALA_AUTH_MECHANISM",
       choices=AUTH_MECHANISMS),
    _s("user", "user for PLAIN/LDAP (password: --password-env, --password-file or --ask-password)",
       env="IMPALA_USER"),
    _s("password_env", "environment variable holding the password", "IMPALA_PASSWORD"),
    _s("password_file", "file whose first line is the password (keep it mode 0600)", env="IMPALA_PASSWORD_FILE"),
    _s("use_ssl", "TLS to the Impala daemon", False, "bool", "IMPALA_USE_SSL"),
    _s("ca_cert", "CA bundle for TLS", env="IMPALA_CA_CERT"),
    _s("kerberos_service_name", "Kerberos service name (GSSAPI): the service of the daemons' principal", "impala"),
    _s("krb_host", "Kerberos host (GSSAPI): the host of the daemons' principal, when --source-host is an address "
                   "or a load balancer (default: --source-host)"),
    _s("principal", "Kerberos principal this run kinits as from --keytab, into a private ticket cache removed "
                    "at the end (without both: your own ticket cache, KRB5CCNAME)", env="KERBEROS_PRINCIPAL"),
    _s("keytab", "the principal's keytab file (mode 0600); used for the Impala session and every Hadoop client",
       env="KERBEROS_KEYTAB"),
    _s("use_http_transport", "HTTP transport (e.g. through a proxy)", False, "bool"),
    _s("http_path", "HTTP path, e.g. cliservice"),
    _s("connect_timeout", "seconds to connect and open a session", 30, "int"),
    _s("rpc_timeout", "seconds one call to the server may take (a fetch, a statement)", int(DEFAULT_RPC_TIMEOUT),
       "int", "IMPALA_RPC_TIMEOUT"),
    # query
    _s("table", "transfer a whole table (db.table)", group="query"),
    _s("query", "transfer the result of a SELECT", group="query"),
    _s("query_file", "file holding the SELECT", group="query"),
    _s("split_by", "numeric/date column to cut the query into parallel chunks (without it: one stream)",
       env="SPLIT_BY", group="query"),
    _s("target_table", "target table name (default: --table's name, or query_result)", env="TARGET_TABLE",
       group="query"),
    # processing
    _s("chunk_size", "rows per chunk and per file", 1_000_000, "int", "CHUNK_SIZE", group="processing"),
    _s("max_workers", "chunks extracted and delivered at once (one connection each)", 4, "int", "MAX_WORKERS",
       group="processing"),
    _s("output_format", "file format", "parquet", env="OUTPUT_FORMAT", choices=OUTPUT_FORMATS,
       group="processing"),
    _s("compression", "parquet: snappy, zstd, gzip, none; csv: none, gzip", env="COMPRESSION", group="processing"),
    _s("temp_dir", "local directory for extracted files; each run makes its own 0700 directory in it "
       "(default $TMPDIR/impala-transfer-<uid>, private to you; a given one only you or root may change, "
       "see docs/errors.md)", env="TEMP_DIR", group="processing"),
    _s("keep_temp", "keep local files after a successful run", False, "bool", group="processing"),
    _s("run_id", "name of this run (default: cli__<UTC time>); re-using one replaces its files",
       env="RUN_ID", group="processing"),
    _s("partition", "publish into <col>=<value>/ and add it as a table partition, e.g. ds=2024-01-01",
       env="PARTITION", group="processing"),
    _s("allow_split_publish", "publish even when chunks reached different places (e.g. some by scp to "
       "another host); by default such a run fails and publishes nothing", False, "bool", group="processing"),
    _s("publish_lock", "atomic: a lock file per final directory, created only if absent, so two runs never "
       "publish one partition at once; none: no lock, only for a target one run at a time ever publishes to, "
       "on a store that cannot create a file only if absent", "atomic", env="PUBLISH_LOCK", choices=LOCK_MODES,
       group="processing"),
    _s("publish_lock_lease", "seconds after which a lock belongs to a run that is gone: the next run restores "
       "what that run replaced and takes over", int(DEFAULT_LEASE), "int", "PUBLISH_LOCK_LEASE", group="processing"),
    _s("verify", "how delivered files are checked: checksum (HDFS computes each file's CRC32C, nothing is "
       "read back; sha256 read back elsewhere), sha256 (always read back) or size", DEFAULT_VERIFY,
       choices=VERIFY_MODES,
       env="VERIFY", group="processing"),
    _s("extract_mode", "client: rows stream through this machine into local files; server: the source engine "
       "writes Parquet on its own cluster (CREATE TABLE AS SELECT under --source-hdfs-path) and distcp copies "
       "it, no row passes through here", "client", env="EXTRACT_MODE", choices=EXTRACT_MODES, group="processing"),
    _s("staging_db", "server mode: database of the run's staging table (it needs CREATE rights there)",
       DEFAULT_STAGING_DB, env="EXPORT_STAGING_DB", group="processing"),
    _s("export_dialect", "server mode: SQL dialect of the source engine, impala or hive (Spark Thrift Server)",
       "impala", env="EXPORT_DIALECT", choices=EXPORT_DIALECTS, group="processing"),
    _s("source_webhdfs_url", "server mode: the source cluster's WebHDFS, e.g. http://source-namenode:9870 "
       "(lists the exported files and reads their Parquet footers)", env="SOURCE_WEBHDFS_URL", group="processing"),
    _s("webhdfs_auth", "how --source-webhdfs-url authenticates: kerberos (SPNEGO with this run's ticket) or simple "
       "(as HADOOP_USER_NAME, else your login); default kerberos with --principal/--keytab or --auth-mechanism "
       "GSSAPI, else simple", env="WEBHDFS_AUTH", choices=("simple", "kerberos"), group="processing"),
    # target
    _s("target_hdfs_path", "target directory: hdfs://nn/path, /path (with --target-cluster, or the "
       "client's default filesystem), file:///path, s3://bucket/path ...", env="TARGET_HDFS_PATH", group="target"),
    _s("target_cluster", "target namenode host[:port] or nameservice (makes hdfs://<cluster><path>)",
       env="TARGET_CLUSTER", group="target"),
    _s("source_hdfs_path", "hdfs:// directory on the source cluster where distcp stages local files",
       env="SOURCE_HDFS_PATH", group="target"),
    _s("use_distcp", "start the chain with distcp (default true)", True, "bool", "USE_DISTCP", group="target"),
    _s("method", "first method to try: distcp, hdfs_put, hdfs_cp, scp or fsspec", env="TRANSFER_METHOD",
       choices=METHODS, group="target"),
    _s("hadoop_bin", "hadoop executable", "hadoop", env="HADOOP_BIN", group="target"),
    _s("proxy_user", "HDFS user the Hadoop clients act for (HADOOP_PROXY_USER); the cluster must allow it "
                     "(hadoop.proxyuser.*)", group="target"),
    _s("hdfs_bin", "hdfs executable", "hdfs", env="HDFS_BIN", group="target"),
    _s("distcp_maps", "distcp -m", 20, "int", "DISTCP_MAPS", group="target"),
    _s("distcp_bandwidth_mb", "distcp -bandwidth (MB/s per map)", None, "int", "DISTCP_BANDWIDTH_MB", group="target"),
    _s("distcp_strategy", "distcp -strategy", "dynamic", choices=DISTCP_STRATEGIES, env="DISTCP_STRATEGY",
       group="target"),
    _s("yarn_queue", "YARN queue of the distcp job (mapreduce.job.queuename; default: the cluster's)",
       env="YARN_QUEUE", group="target"),
    _s("distcp_conf", "more settings of the distcp job as JSON, e.g. '{\"mapreduce.map.memory.mb\": 2048}' "
       "('{\"mapreduce.framework.name\": \"local\"}': the local job runner)", None, "json", group="target"),
    _s("yarn_rm_url", "the ResourceManager's web address, to kill a distcp job this run stops (default: the "
       "job's tracking URL)", env="YARN_RM_URL", group="target"),
    _s("scp_target_host", "host for scp", env="SCP_TARGET_HOST", group="target"),
    _s("scp_target_path", "remote directory for scp", env="SCP_TARGET_PATH", group="target"),
    _s("scp_user", "remote user", env="SCP_USER", group="target"),
    _s("scp_port", "ssh port", 22, "port", "SCP_PORT", group="target"),
    _s("scp_key_file", "private key file", env="SCP_KEY_FILE", group="target"),
    _s("scp_known_hosts", "known_hosts file holding the target's host key", env="SCP_KNOWN_HOSTS", group="target"),
    _s("scp_host_key_checking", "yes (default) or accept-new", "yes", choices=HOST_KEY_CHECKING,
       env="SCP_HOST_KEY_CHECKING", group="target"),
    _s("scp_bandwidth_kbit", "scp -l (Kbit/s)", None, "int", "SCP_BANDWIDTH_KBIT", group="target"),
    _s("fsspec_options", "JSON object of fsspec storage options (no secrets: use the store's own "
       "environment variables or credential files)", None, "json", group="target"),
    _s("command_timeout", "seconds before a transfer command is stopped", int(DEFAULT_TIMEOUT), "int", "COMMAND_TIMEOUT",
       group="target"),
    # target table
    _s("target_impala_host", "Impala host on the target cluster for the table step (default: the source "
       "host when no --target-cluster is given)", env="TARGET_IMPALA_HOST", group="table"),
    _s("target_impala_port", "its port", 21050, "port", "TARGET_IMPALA_PORT", group="table"),
    _s("table_dialect", "impala (REFRESH) or hive (REFRESH TABLE)", "impala", choices=DIALECTS,
       env="TABLE_DIALECT", group="table"),
    _s("skip_table", "only deliver files: no CREATE/REFRESH of the target table", False, "bool", group="table"),
)
BY_NAME = {s.name: s for s in SETTINGS}


def mask(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: mask(k, v) for k, v in value.items()}
    if value not in (None, "") and is_secret_name(name):
        return MASK
    return redact_uri(value) if isinstance(value, str) else value


def convert(setting: Setting, value: Any, origin: str) -> Any:
    """A raw value (text from a flag or the environment, or a config file's JSON/YAML value)."""
    field = setting.flag if origin == "flag" else (setting.env if origin == "env" else setting.name)
    if value is None:
        return None
    if setting.kind == "int":
        return positive_int(value, field)
    if setting.kind == "port":
        return port_number(value, field)
    if setting.kind == "bool":
        return parse_bool(value, field)
    if setting.kind == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(field, f"is not valid JSON ({exc.msg})", 'write an object, e.g. {"anon": true}') from None
        if not isinstance(value, dict):
            raise ConfigError(field, "is not an object", 'write an object, e.g. {"anon": true}')
        secrets = sorted(k for k in value if is_secret_name(k))
        if secrets:
            raise ConfigError(field, f"holds secrets ({', '.join(secrets)})",
                              "give credentials through the store's environment variables or credential files")
        return value
    text = str(value)
    if setting.choices:
        wanted = text.upper() if setting.name == "auth_mechanism" else text.lower()
        if wanted not in setting.choices:
            raise ConfigError(field, f"{text!r} is not allowed", f"use one of {', '.join(setting.choices)}")
        return wanted
    return text


# The core names its fields as the Python API and the operators do; the CLI names the flag typed.
FLAG_OF_FIELD = {"table": "--table", "split_by": "--split-by", "output_format": "--output-format",
                 "compression": "--compression", "chunk_size": "--chunk-size", "partition": "--partition",
                 "run_id": "--run-id", "scp host": "--scp-target-host", "scp user": "--scp-user",
                 "scp_target_path": "--scp-target-path", "source_hdfs_path": "--source-hdfs-path",
                 "staging_db": "--staging-db", "publish_lock": "--publish-lock",
                 "publish_lock_lease": "--publish-lock-lease", "auth_mechanism": "--auth-mechanism",
                 "proxy_user": "--proxy-user", "principal": "--principal", "keytab": "--keytab"}
QUERY_FIX = "give one read-only query: SELECT, WITH ... SELECT or VALUES (or --table db.table)"


def named_by_flag(error: ConfigError, query_flag: str = "--query") -> ConfigError:
    """A core check's error as the command line says it: the flag the user typed (``--split-by``,
    not ``split_by``), and for a refused query a fix that fits a command that only reads."""
    if error.field == "sql":
        return ConfigError(query_flag, error.problem, QUERY_FIX)
    if error.field in FLAG_OF_FIELD:
        return ConfigError(FLAG_OF_FIELD[error.field], error.problem, error.fix)
    return error


def load_config_file(path: str) -> dict[str, Any]:
    """A JSON or YAML mapping of setting names (``chunk_size`` or ``chunk-size``) to values."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}", "give a readable JSON or YAML file") from None
    if path.endswith((".yaml", ".yml")):
        data = _yaml(text, path)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if path.endswith(".json"):
                raise ConfigError("--config", f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}",
                                  "fix the file") from None
            data = _yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("--config", f"{path} does not hold a mapping of settings", "write key: value pairs")
    config: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name == "password" or (is_secret_name(name) and name not in BY_NAME):
            raise ConfigError(f"--config {key}", "secrets do not belong in config files",
                              "use IMPALA_PASSWORD, --password-file or --ask-password")
        if name not in BY_NAME:
            raise ConfigError(f"--config {key}", "is not a setting", "see impala-transfer --help for the names")
        config[name] = value
    return config


def _yaml(text: str, path: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError("--config", f"{path} is not valid JSON or YAML{line}", "fix the file") from None


@dataclass
class Resolved:
    """Every setting's value and where it came from."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def given(self, name: str) -> bool:
        return self.origins.get(name, "default") != "default"

    def rows(self) -> list[tuple[str, Any, str]]:
        return [(s.name, mask(s.name, self.values.get(s.name)), self.origins.get(s.name, "default"))
                for s in SETTINGS]


def resolve(flags: Mapping[str, Any], environ: Mapping[str, str], config_path: str | None) -> Resolved:
    """flag > environment > config file > default."""
    config = load_config_file(config_path) if config_path else {}
    result = Resolved()
    for setting in SETTINGS:
        if flags.get(setting.name) is not None:
            value, origin = convert(setting, flags[setting.name], "flag"), "flag"
        elif setting.env and environ.get(setting.env) not in (None, ""):
            value, origin = convert(setting, environ[setting.env], "env"), f"env {setting.env}"
        elif setting.name in config:
            value, origin = convert(setting, config[setting.name], "config"), f"config {config_path}"
        else:
            value, origin = setting.default, "default"
        result.values[setting.name], result.origins[setting.name] = value, origin
    if result.values["temp_dir"] is None:  # private to this user, not one directory every user shares
        result.values["temp_dir"] = default_temp_dir(environ)
    return result


def read_password(settings: Resolved, environ: Mapping[str, str], *, ask: bool,
                  warn: Callable[[str], None] = lambda message: None) -> str | None:
    """The password from a prompt, a file, or an environment variable, in that order. A password
    file other users may read still works, with a warning (``warn``), as ssh does for keys."""
    if ask:
        return getpass.getpass(f"Password for {settings.user or 'Impala'}@{settings.source_host}: ")
    if settings.password_file:
        try:
            with open(settings.password_file, encoding="utf-8") as stream:
                mode = os.fstat(stream.fileno()).st_mode & 0o777
                if mode & 0o077:
                    warn(f"warning: --password-file: {settings.password_file} can be read by other users "
                         f"(mode {mode:04o}) (chmod 600 {settings.password_file})")
                return stream.readline().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError("--password-file", f"cannot read {settings.password_file}: {exc.strerror}",
                              "give a readable file holding the password") from None
    return environ.get(settings.password_env) or None

