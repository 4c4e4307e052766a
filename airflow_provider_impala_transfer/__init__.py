"""Airflow provider: move the result of an Impala query to files, clusters and storage."""

from __future__ import annotations

__version__ = "0.1.0"

# A task's own Kerberos login (core/common/kerberos.py), on both connection types that authenticate.
_KEYTAB_LOGIN_FIELDS = {
    "principal": {"label": "Kerberos principal", "schema": {"type": ["string", "null"]},
                  "description": "With Keytab: the task kinits into a private ticket cache, removed when it ends "
                                 "(else the worker's own cache, e.g. Airflow's renewer, is used)."},
    "keytab": {"label": "Keytab path", "schema": {"type": ["string", "null"]},
               "description": "Absolute path of the principal's keytab on the worker, mode 0600 (key material "
                              "never goes into Airflow)."},
}

_IMPALA_FIELDS = {
    "auth_mechanism": {
        "label": "Auth mechanism",
        "schema": {"type": ["string", "null"], "default": "NOSASL",
                   "enum": ["NOSASL", "PLAIN", "LDAP", "GSSAPI", "JWT"]},
        "description": "PLAIN/LDAP for user+password, GSSAPI for Kerberos, NOSASL for none.",
    },
    "use_ssl": {"label": "Use SSL/TLS", "schema": {"type": ["boolean", "null"], "default": False}},
    "ca_cert": {"label": "CA certificate file", "schema": {"type": ["string", "null"]}},
    "use_http_transport": {"label": "HTTP transport", "schema": {"type": ["boolean", "null"], "default": False}},
    "http_path": {"label": "HTTP path", "schema": {"type": ["string", "null"]},
                  "description": "e.g. cliservice (only with HTTP transport)"},
    "kerberos_service_name": {"label": "Kerberos service name",
                              "schema": {"type": ["string", "null"], "default": "impala"},
                              "description": "GSSAPI: the service of the daemons' principal (impala/<host>@REALM)."},
    "krb_host": {"label": "Kerberos host", "schema": {"type": ["string", "null"]},
                 "description": "GSSAPI: the host of the daemons' principal, when Host is an address or a load "
                                "balancer (default: Host). Needs the provider's kerberos extra."},
    **_KEYTAB_LOGIN_FIELDS,
    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["number", "null"], "default": 30},
                        "description": "Bounds TCP connect, handshake and session open."},
}


_HADOOP_CLI_FIELDS = {
    "env": {"label": "Environment", "schema": {"type": ["object", "null"]},
            "description": "Only HADOOP_CONF_DIR, HADOOP_USER_NAME, HADOOP_TOKEN_FILE_LOCATION, "
                           "KRB5CCNAME, KRB5_CONFIG, TZ, LANG, LC_ALL, e.g. {\"HADOOP_CONF_DIR\": \"/etc/hadoop/conf\", "
                           "\"KRB5CCNAME\": \"/tmp/krb5cc_airflow\"}. Other variables (LD_PRELOAD, JAVA_HOME, "
                           "HADOOP_CLIENT_OPTS...) and the hadoop/hdfs binaries are refused here: set them in the DAG "
                           "(hadoop_env=, hadoop_bin=, hdfs_bin=) or in [impala_transfer] of the Airflow config."},
    **_KEYTAB_LOGIN_FIELDS,
    "yarn_queue": {"label": "YARN queue", "schema": {"type": ["string", "null"]},
                   "description": "Queue of the distcp jobs (mapreduce.job.queuename) when the DAG names none."},
    "distcp_conf": {"label": "distcp job settings", "schema": {"type": ["object", "null"]},
                    "description": "e.g. {\"mapreduce.map.memory.mb\": 2048}: only the queue, priority, memory, "
                                   "vcores, timeouts and attempts; other keys belong in the DAG (distcp_conf=)."},
    "yarn_rm_url": {"label": "ResourceManager web address", "schema": {"type": ["string", "null"]},
                    "description": "http(s)://rm:8088: where a stopped task kills its distcp job and a deferred one "
                                   "polls it (default: the job's tracking URL, which is the ResourceManager unless "
                                   "yarn.web-proxy.address is set)."},
}

# Deployment-wide settings ([impala_transfer] in airflow.cfg, or AIRFLOW__IMPALA_TRANSFER__<NAME>):
# what only whoever configures the workers may choose.
_CONFIG = {
    "impala_transfer": {
        "description": "Airflow provider impala-transfer: the Hadoop clients its tasks run.",
        "options": {
            "hadoop_bin": {"description": "The hadoop executable (distcp) when a task gives no hadoop_bin. "
                                          "Connections cannot set it.",
                           "version_added": "0.1.0", "type": "string", "example": "/opt/hadoop/bin/hadoop",
                           "default": None},
            "hdfs_bin": {"description": "The hdfs executable (hdfs dfs) when a task gives no hdfs_bin. "
                                        "Connections cannot set it.",
                         "version_added": "0.1.0", "type": "string", "example": "/opt/hadoop/bin/hdfs",
                         "default": None},
            "default_deferrable": {"description": "Whether distcp tasks defer while their YARN job copies (the "
                                                  "worker slot is free; the triggerer polls the ResourceManager) "
                                                  "when a task does not say. Default: [operators] "
                                                  "default_deferrable.",
                                   "version_added": "0.1.0", "type": "boolean", "example": "True",
                                   "default": None},
        },
    },
}

_FSSPEC_FIELDS = {
    "protocol": {"label": "Protocol", "schema": {"type": ["string", "null"]},
                 "description": "s3, gcs, abfs, sftp, file, memory ... (fsspec protocol name)"},
    "storage_options": {"label": "Storage options", "schema": {"type": ["object", "null"]},
                        "description": "Passed to fsspec.filesystem(protocol, **options); secrets are masked."},
}


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-impala-transfer",
        "name": "Impala Transfer",
        "description": "Extract Impala query results into exact-typed Parquet/CSV chunks and move them "
        "to other clusters and storage (distcp, hdfs, scp, fsspec).",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "Impala Transfer", "external-doc-url": "https://impala.apache.org/",
             "tags": ["apache"]}
        ],
        "hooks": [
            {"integration-name": "Impala Transfer",
             "python-modules": ["airflow_provider_impala_transfer.hooks.impala",
                                "airflow_provider_impala_transfer.hooks.hadoop",
                                "airflow_provider_impala_transfer.hooks.scp",
                                "airflow_provider_impala_transfer.hooks.fsspec"]}
        ],
        "operators": [
            {"integration-name": "Impala Transfer",
             "python-modules": ["airflow_provider_impala_transfer.operators.impala_extract",
                                "airflow_provider_impala_transfer.operators.transfer",
                                "airflow_provider_impala_transfer.operators.reconcile",
                                "airflow_provider_impala_transfer.operators.target_table"]}
        ],
        "triggers": [
            {"integration-name": "Impala Transfer",
             "python-modules": ["airflow_provider_impala_transfer.triggers.distcp"]}
        ],
        "config": _CONFIG,
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_impala_transfer.hooks.impala.ImpalaTransferHook",
                "hook-name": "Impala (transfer)",
                "connection-type": "impala_transfer",
                "conn-fields": _IMPALA_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {"schema": "Database"},
                    "placeholders": {"host": "impalad.example.com", "port": "21050", "schema": "default"},
                },
            },
            {
                "hook-class-name": "airflow_provider_impala_transfer.hooks.hadoop.HadoopCliHook",
                "hook-name": "Hadoop CLI (distcp, hdfs dfs)",
                "connection-type": "hadoop_cli",
                "conn-fields": _HADOOP_CLI_FIELDS,
                "ui-field-behaviour": {"hidden-fields": ["host", "port", "schema", "login", "password"],
                                       "relabeling": {}, "placeholders": {}},
            },
            {
                "hook-class-name": "airflow_provider_impala_transfer.hooks.fsspec.FsspecHook",
                "hook-name": "fsspec filesystem",
                "connection-type": "fsspec",
                "conn-fields": _FSSPEC_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {"login": "Login (S3 key / SFTP user)", "password": "Password / secret"},
                    "placeholders": {"host": "only for sftp/ftp"},
                },
            },
        ],
    }
