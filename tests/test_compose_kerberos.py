"""The Kerberized stack (docker-compose.kerberos.yaml over docker-compose.yaml, docker/kerberos/): offline.

No Docker engine runs here. What is checked: Debian's docker-compose 1.29 accepts the two files
together once every secret is set, and refuses them, naming the variable, while a Kerberos
secret is unset or empty; the topology Compose resolves from both files (each Hadoop, metastore
and Impala service mounts the secure configuration, krb5.conf and its own keytab volume only;
every Airflow service runs with [core] security = kerberos; each worker has its own renewer and
shares its ticket cache volume with it alone); the connections are what the hooks accept; the
secure Hadoop, Hive and Impala settings; Hadoop's own parser maps every principal of both realms
(auth_to_local); and kerberos-init's script, run for real against Debian's MIT KDC, makes both
realms, the two-way trust, 0600 keytabs that get tickets (across the realms too) and the TLS
keystores, and keeps them on a second run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.support.processes import free_port, stop_process_group
from tests.test_compose import (
    COMPOSE_FILE,
    DOCKER_DIR,
    INSTALL_AT_START,
    MANDATORY,
    ROOT,
    SECRETS,
    env_example,
    env_example_command,
    secret_values,
    strings,
    xml_properties,
)

OVERLAY = ROOT / "docker-compose.kerberos.yaml"
KERBEROS_DIR = DOCKER_DIR / "kerberos"
INIT_SCRIPT = KERBEROS_DIR / "init.sh"
SOURCE_REALM, TARGET_REALM = "SOURCE.IMPALA-TRANSFER.TEST", "TARGET.IMPALA-TRANSFER.TEST"
KERBEROS_SECRETS = ("KERBEROS_MASTER_PASSWORD", "KERBEROS_CROSS_REALM_PASSWORD", "HADOOP_KEYSTORE_PASSWORD")
ALL_SECRETS = (*SECRETS, *KERBEROS_SECRETS)
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker-1", "worker-2"}
WORKERS = {"worker-1": "airflow-kerberos-1", "worker-2": "airflow-kerberos-2"}
CCACHE = "/var/kerberos-ccache/cache"
KEYTAB_DIR = "/etc/security/keytabs"
# Every Kerberized cluster service: (realm, {keytab file in its volume: principal}).
HDFS = {f"{side}-{role}" for side in ("source", "target") for role in ("namenode", "datanode")}
YARN = {"resourcemanager", "nodemanager", "historyserver"}
METASTORES = {"source-hms", "target-hms"}
IMPALA = {f"{side}-{daemon}" for side in ("source", "target") for daemon in ("statestored", "catalogd", "impalad")}
CLUSTER = HDFS | YARN | METASTORES | IMPALA


def realm_of(service: str) -> str:
    return TARGET_REALM if service.startswith("target-") else SOURCE_REALM


def keytabs_of(service: str) -> dict[str, str]:
    """The keytab files kerberos-init writes to a service's volume, and the principal of each."""
    realm = realm_of(service)
    if service == "airflow":
        return {"airflow.keytab": f"airflow@{SOURCE_REALM}"}
    if service in HDFS:
        daemon = "nn" if service.endswith("namenode") else "dn"
        return {f"{daemon}.service.keytab": f"{daemon}/{service}@{realm}", "spnego.service.keytab": f"HTTP/{service}@{realm}"}
    short = {"resourcemanager": "rm", "nodemanager": "nm", "historyserver": "jhs"}
    if service in YARN:
        return {f"{short[service]}.service.keytab": f"{short[service]}/{service}@{realm}"}
    if service in METASTORES:
        return {"hive.service.keytab": f"hive/{service}@{realm}"}
    return {"impala.service.keytab": f"impala/{service}@{realm}"}


def kerberos_secret_values() -> dict[str, str]:
    import secrets as random

    return {**secret_values(), **{name: random.token_hex(16) for name in KERBEROS_SECRETS}}


def overlay_config(tmp_path: Path, values: dict[str, str], *args: str,
                   env_file: Path | None = None) -> subprocess.CompletedProcess:
    """``docker-compose -f docker-compose.yaml -f docker-compose.kerberos.yaml config`` seeing
    exactly ``values`` as secrets (none from the environment or a .env of the checkout)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose)")
    if env_file is None:
        env_file = tmp_path / "no-secrets.env"
        env_file.write_text("")
    env = {name: value for name, value in os.environ.items() if name not in ALL_SECRETS}
    env.update(values, COMPOSE_PROJECT_NAME="impala-transfer")
    return subprocess.run([binary, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "-f", str(OVERLAY),
                           "config", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


@functools.cache
def resolved_with(values_json: str) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        result = overlay_config(Path(workdir), json.loads(values_json))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@functools.cache
def _values() -> str:
    return json.dumps(kerberos_secret_values())


def resolved() -> dict:
    """Both files as Compose merges them (every secret set), read once."""
    return resolved_with(_values())


def services() -> dict[str, dict]:
    return resolved()["services"]


def env(service: str) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in (services()[service].get("environment") or {}).items()}


def mounts(service: str) -> dict[str, tuple[str, str]]:
    """``{container path: (source, mode)}``: a named volume, or a path relative to the checkout."""
    found = {}
    for volume in services()[service].get("volumes") or []:
        source, target, *rest = volume.split(":")
        if source.startswith("/"):
            source = "./" + str(Path(source).relative_to(ROOT))
        found[target] = (source, rest[0] if rest else "rw")
    return found


def keytab_volumes(service: str) -> set[str]:
    return {source for source, _ in mounts(service).values() if source.startswith("keytabs-")}


# ---------------------------------------------------------------- Compose reads both files

def test_docker_compose_1_29_accepts_the_base_file_with_the_kerberos_overlay_and_every_secret_set(tmp_path):
    result = overlay_config(tmp_path, kerberos_secret_values(), "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("state", ["unset", "empty"])
@pytest.mark.parametrize("name", KERBEROS_SECRETS)
def test_the_kerberized_stack_refuses_to_start_without_each_kerberos_secret_naming_it(tmp_path, name, state):
    values = kerberos_secret_values()
    if state == "unset":
        del values[name]
    else:
        values[name] = ""
    result = overlay_config(tmp_path, values, "-q")
    assert result.returncode != 0, f"{name} {state}: docker-compose accepts the files"
    assert f"{name}: unset or empty (set it in .env, made with: " in result.stderr, result.stderr


def test_env_example_lists_each_kerberos_secret_empty_with_the_command_the_error_message_names():
    example = env_example()
    text = OVERLAY.read_text()
    assert {match.group(1) for match in MANDATORY.finditer(text)} == set(KERBEROS_SECRETS), \
        "the overlay's secrets are exactly the Kerberos ones (the base file's are referenced there)"
    for name in KERBEROS_SECRETS:
        value, comments = example[name]
        assert value == "", f".env.example: {name}={value}: leave it empty"
        command = env_example_command(comments)
        assert command.startswith("openssl "), f".env.example: {name}: no command above it"
        for match in MANDATORY.finditer(text):
            if match.group(1) == name:
                assert " ".join(match.group(2).split()) == \
                    f"{name}: unset or empty (set it in .env, made with: {command})"


def test_the_commands_of_env_example_make_kerberos_secrets_the_stack_accepts(tmp_path):
    values = kerberos_secret_values()
    for name in KERBEROS_SECRETS:
        command = env_example_command(env_example()[name][1])
        values[name] = subprocess.run(command, shell=True, capture_output=True, text=True, check=True).stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{32,}", values[name]), f"{name}: {command}: no blank, no quote"
    result = overlay_config(tmp_path, values)
    assert result.returncode == 0, result.stderr
    init = yaml.safe_load(result.stdout)["services"]["kerberos-init"]["environment"]
    assert {name: init[name] for name in KERBEROS_SECRETS} == {name: values[name] for name in KERBEROS_SECRETS}


def test_each_kerberos_secret_reaches_only_the_services_that_use_it():
    values = json.loads(_values())
    holders = {name: {service for service in services() if values[name] in json.dumps(services()[service])}
               for name in KERBEROS_SECRETS}
    assert holders["KERBEROS_MASTER_PASSWORD"] == {"kerberos-init"}
    assert holders["KERBEROS_CROSS_REALM_PASSWORD"] == {"kerberos-init"}
    assert holders["HADOOP_KEYSTORE_PASSWORD"] == {"kerberos-init"} | HDFS, "the keystores' owners and their maker"
    for service in HDFS:
        assert env(service)["HADOOP_KEYSTORE_PASSWORD"] == values["HADOOP_KEYSTORE_PASSWORD"]


# ---------------------------------------------------------------- topology

def test_every_service_waits_for_health_or_a_one_shot_and_the_start_order_has_no_cycle():
    one_shot = {"airflow-init", "source-seed", "minio-init", "scp-target-init", "kerberos-init"}
    for name, service in services().items():
        if name in one_shot:
            assert service.get("restart", "no") == "no", name
        else:
            assert (service.get("healthcheck") or {}).get("test"), f"{name} runs for good but has no healthcheck"
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services(), f"{name} -> {dependency}"
            expected = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert spec == {"condition": expected}, f"{name} -> {dependency}: {spec}"
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dependency in services()[name].get("depends_on") or {}:
                visit(dependency, (*path, name))
            done.add(name)

    for name in services():
        visit(name, ())
    assert "kerberos-init" in services()["kdc"]["depends_on"]
    for name in CLUSTER | set(WORKERS.values()) | {"source-seed"}:
        assert "kdc" in services()[name]["depends_on"], f"{name} starts before the KDC answers"


def test_the_kdc_is_built_with_mit_krb5_serves_both_realms_and_installs_nothing_at_start():
    dockerfile = (KERBEROS_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:12-slim$", dockerfile, re.M)
    install = re.search(r"apt-get install[^\n]*\n(?:.*\\\n)*", dockerfile).group(0)
    for package in ("krb5-kdc", "krb5-admin-server", "krb5-user", "openssl"):
        assert package in dockerfile, package
    assert install
    kdc = services()["kdc"]
    assert kdc["build"]["context"].endswith("docker/kerberos")
    command = re.findall(r'"([^"]+)"', re.search(r"^CMD (.*)$", dockerfile, re.M).group(1))
    assert command[:2] == ["krb5kdc", "-n"] and command[2:] == ["-r", SOURCE_REALM, "-r", TARGET_REALM]
    kdc_conf = (KERBEROS_DIR / "kdc.conf").read_text()
    assert SOURCE_REALM in kdc_conf and TARGET_REALM in kdc_conf
    assert mounts("kdc")["/var/lib/krb5kdc"][0] == mounts("kerberos-init")["/var/lib/krb5kdc"][0] == "kdc-data"
    assert {name for name in services() if "kdc-data" in {s for s, _ in mounts(name).values()}} == \
        {"kdc", "kerberos-init"}
    for name in ("kdc", "kerberos-init", *WORKERS.values(), *CLUSTER, *AIRFLOW_SERVICES, "source-seed"):
        service = services()[name]
        for text in strings(service.get("entrypoint")) + strings(service.get("command")) + \
                strings((service.get("healthcheck") or {}).get("test")):
            assert not INSTALL_AT_START.search(text), f"{name} installs at start: {text}"
    assert not INSTALL_AT_START.search(INIT_SCRIPT.read_text())


def test_every_cluster_service_mounts_the_secure_conf_krb5_conf_and_only_its_own_keytab_volume():
    for name in CLUSTER:
        found = mounts(name)
        assert found["/etc/krb5.conf"] == ("./docker/kerberos/krb5.conf", "ro"), name
        assert keytab_volumes(name) == {f"keytabs-{name}"}, f"{name} mounts {keytab_volumes(name)}"
        assert found[KEYTAB_DIR] == (f"keytabs-{name}", "ro"), name
        side = "target" if name.startswith("target-") else "source"
        if name in HDFS | YARN:
            for conf in ("core-site.xml", "hdfs-site.xml"):
                assert found[f"/opt/hadoop/etc/hadoop/{conf}"] == (f"./docker/kerberos/hadoop/{side}/{conf}", "ro"), name
        if name in HDFS:
            assert found["/opt/hadoop/etc/hadoop/ssl-server.xml"] == ("./docker/kerberos/hadoop/ssl-server.xml", "ro")
        if name in YARN:
            for conf in ("yarn-site.xml", "mapred-site.xml"):
                assert found[f"/opt/hadoop/etc/hadoop/{conf}"] == (f"./docker/kerberos/hadoop/source/{conf}", "ro"), name
        if name in METASTORES:
            assert found["/opt/hive/conf"] == (f"./docker/kerberos/impala/{side}", "ro")
            for conf in ("core-site.xml", "hdfs-site.xml"):  # the HMS image reads its Hadoop dir first
                assert found[f"/opt/hadoop/etc/hadoop/{conf}"][0] == f"./docker/kerberos/impala/{side}/{conf}"
        if name in IMPALA:
            assert found["/opt/impala/conf"] == (f"./docker/kerberos/impala/{side}", "ro")
        for source, _ in found.values():
            if source != "./docker/hadoop/source/capacity-scheduler.xml":  # queues only: no security in it
                assert not source.startswith(("./docker/hadoop/", "./docker/impala/")), \
                    f"{name} still mounts the insecure {source}"


def test_keytab_volumes_are_written_by_kerberos_init_alone_each_holding_one_services_keys():
    keytab_sets = [keytab_volumes(name) for name in services() if name != "kerberos-init"]
    declared = {volume for volume in resolved()["volumes"] if volume.startswith("keytabs-")}
    assert declared == {f"keytabs-{name}" for name in CLUSTER} | {"keytabs-airflow"}
    assert keytab_volumes("kerberos-init") == declared
    for name in services():
        if name == "kerberos-init":
            continue
        for target, (source, mode) in mounts(name).items():
            if source.startswith("keytabs-"):
                assert mode == "ro", f"{name} mounts {source} writable"
    users = {volume: {name for name in services() if name != "kerberos-init" and volume in keytab_volumes(name)}
             for volume in declared}
    assert users["keytabs-airflow"] == {"worker-1", "worker-2", "airflow-kerberos-1", "airflow-kerberos-2",
                                        "source-seed"}, users["keytabs-airflow"]
    for name in CLUSTER:
        assert users[f"keytabs-{name}"] == {name}, f"keytabs-{name}: {users[f'keytabs-{name}']}"
    assert all(len(found) <= 1 for found in keytab_sets), "a service mounts two keytab volumes"
    for name in AIRFLOW_SERVICES - set(WORKERS):
        assert not keytab_volumes(name), f"{name} needs no keytab"
    stack_ca = {name for name in services() if "stack-ca" in {s for s, _ in mounts(name).values()}}
    assert stack_ca == {"kerberos-init"}, "the CA's key leaves kerberos-init's volume"


def test_every_airflow_service_runs_with_security_kerberos_and_the_same_kerberized_connections():
    connections = None
    for name in AIRFLOW_SERVICES:
        airflow = env(name)
        assert airflow["AIRFLOW__CORE__SECURITY"] == "kerberos", name
        assert airflow["AIRFLOW__KERBEROS__PRINCIPAL"] == f"airflow@{SOURCE_REALM}", name
        assert airflow["AIRFLOW__KERBEROS__CCACHE"] == CCACHE and airflow["KRB5_CONFIG"] == "/etc/krb5.conf", name
        assert mounts(name)["/etc/krb5.conf"] == ("./docker/kerberos/krb5.conf", "ro"), name
        assert mounts(name)["/etc/hadoop/conf"] == ("./docker/kerberos/hadoop/client", "ro"), name
        found = {k: v for k, v in airflow.items() if k.startswith("AIRFLOW_CONN_")}
        assert connections is None or found == connections, f"{name} sees other connections"
        connections = found
    for worker in WORKERS:
        assert env(worker)["KRB5CCNAME"] == f"FILE:{CCACHE}"
        assert env(worker)["AIRFLOW__KERBEROS__KEYTAB"] == "/opt/airflow/keytabs/airflow.keytab"


def test_each_worker_has_its_own_renewer_sidecar_sharing_only_its_ticket_cache_volume():
    caches = {}
    for worker, renewer in WORKERS.items():
        sidecar = services()[renewer]
        assert sidecar["command"] == "kerberos", "the sidecar runs `airflow kerberos`"
        assert services()[worker]["depends_on"][renewer] == {"condition": "service_healthy"}
        assert sidecar["healthcheck"]["test"] == ["CMD", "klist", "-s", "-c", f"FILE:{CCACHE}"]
        renewer_env = env(renewer)
        for key in ("AIRFLOW__CORE__SECURITY", "AIRFLOW__KERBEROS__PRINCIPAL", "AIRFLOW__KERBEROS__KEYTAB",
                    "AIRFLOW__KERBEROS__CCACHE", "KRB5_CONFIG"):
            assert renewer_env[key] == env(worker)[key], f"{renewer}: {key}"
        assert not any(name in renewer_env for name in SECRETS + ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",)), \
            f"{renewer} needs no secret of the stack"
        assert sidecar["user"] == services()[worker]["user"], "the worker reads the cache its renewer writes"
        volume = mounts(renewer)["/var/kerberos-ccache"][0]
        assert mounts(worker)["/var/kerberos-ccache"][0] == volume
        sharing = {name for name in services() if volume in {s for s, _ in mounts(name).values()}}
        assert sharing == {worker, renewer, "kerberos-init"}, f"{volume}: {sharing}"
        assert keytab_volumes(renewer) == keytab_volumes(worker) == {"keytabs-airflow"}
        caches[worker] = volume
    assert len(set(caches.values())) == len(WORKERS), "the workers share a ticket cache"
    init = (INIT_SCRIPT.read_text())
    assert 'chown "$AIRFLOW_UID:0" "$dir"' in init, "kerberos-init gives the cache volumes to the Airflow user"
    assert {mounts("kerberos-init")[f"/ccache/{worker}"][0] for worker in WORKERS} == set(caches.values())


# ---------------------------------------------------------------- connections, as the hooks read them

def kerberized_connections() -> dict[str, dict]:
    return {key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value)
            for key, value in env("worker-1").items() if key.startswith("AIRFLOW_CONN_")}


def test_the_impala_connections_are_gssapi_sessions_to_each_impalad(monkeypatch):
    from airflow_provider_impala_transfer.hooks.impala import ImpalaTransferHook

    for conn_id, host in (("impala_default", "source-impalad"), ("impala_target", "target-impalad")):
        written = kerberized_connections()[conn_id]
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(written))
        connector = ImpalaTransferHook(impala_conn_id=conn_id).connector()
        assert (connector.host, connector.port) == (host, 21050)
        assert connector.options == {"auth_mechanism": "GSSAPI", "kerberos_service_name": "impala",
                                     "krb_host": host, "database": "default"}, connector.options
        assert connector.login is None, "the session uses the worker's ticket cache, not a keytab of its own"
        assert f"-principal=impala/{host}@{realm_of(host)}" in services()[host]["command"]


def test_the_webhdfs_connections_are_spnego_over_https_checked_against_the_stacks_ca(monkeypatch):
    from hdfs.ext.kerberos import KerberosClient

    import airflow.providers.apache.hdfs.hooks.webhdfs as webhdfs

    monkeypatch.setattr(webhdfs, "_kerberos_security_mode", True)  # what [core] security = kerberos sets
    monkeypatch.setattr(webhdfs, "KerberosClient", KerberosClient, raising=False)
    for conn_id, host in (("webhdfs_source", "source-namenode"), ("webhdfs_target", "target-namenode")):
        written = kerberized_connections()[conn_id]
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(written))
        hook = webhdfs.WebHDFSHook(webhdfs_conn_id=conn_id)
        conn = hook.get_connection(conn_id)
        client = hook._get_client(conn.host, conn.port, conn.login, conn.password, conn.schema, conn.extra_dejson)
        assert isinstance(client, KerberosClient)
        assert client.url == f"https://{host}:9870"
        assert client._session.verify == "/opt/airflow/keytabs/ca.pem"
        ca_volume = mounts("worker-1")["/opt/airflow/keytabs"][0]
        assert ca_volume == "keytabs-airflow" and "keytabs/airflow/ca.pem" in INIT_SCRIPT.read_text().replace(
            '"$KEYTABS_DIR/airflow/ca.pem"', "keytabs/airflow/ca.pem")
        hdfs_site = xml_properties(KERBEROS_DIR / "hadoop" / host.split("-")[0] / "hdfs-site.xml")
        assert hdfs_site["dfs.namenode.https-address"] == f"{host}:9870"


def test_the_hadoop_cli_connection_uses_the_renewers_cache_and_sets_only_allowed_variables(monkeypatch):
    from airflow_provider_impala_transfer.hooks.hadoop import CONNECTION_ENV, HadoopCliHook

    written = kerberized_connections()["hadoop_cli_default"]
    assert set(written["extra"]["env"]) <= set(CONNECTION_ENV)
    monkeypatch.setenv("AIRFLOW_CONN_HADOOP_CLI_DEFAULT", json.dumps(written))
    hook = HadoopCliHook(hadoop_conn_id="hadoop_cli_default")
    assert hook.env == {"HADOOP_CONF_DIR": "/etc/hadoop/conf", "KRB5CCNAME": f"FILE:{CCACHE}",
                        "KRB5_CONFIG": "/etc/krb5.conf"}
    assert hook.env["KRB5CCNAME"] == f"FILE:{env('airflow-kerberos-1')['AIRFLOW__KERBEROS__CCACHE']}"


# ---------------------------------------------------------------- the daemons' settings

def test_impala_daemons_keep_the_base_flags_and_add_their_principal_keytab_and_krb5_conf():
    base = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in IMPALA:
        command = services()[name]["command"]
        assert command[:len(base[name]["command"])] == base[name]["command"], name
        assert command[len(base[name]["command"]):] == [
            f"-principal=impala/{name}@{realm_of(name)}",
            f"-keytab_file={KEYTAB_DIR}/impala.service.keytab", "-krb5_conf=/etc/krb5.conf"], name
        assert f"impala/{name}@{realm_of(name)}" in keytabs_of(name).values()


def test_the_secure_hadoop_files_parse_and_set_kerberos_sasl_data_transfer_and_https():
    for side, realm in (("source", SOURCE_REALM), ("target", TARGET_REALM)):
        core = xml_properties(KERBEROS_DIR / "hadoop" / side / "core-site.xml")
        hdfs = xml_properties(KERBEROS_DIR / "hadoop" / side / "hdfs-site.xml")
        base_hdfs = xml_properties(DOCKER_DIR / "hadoop" / side / "hdfs-site.xml")
        assert core["fs.defaultFS"] == f"hdfs://{side}-namenode:8020"
        assert core["hadoop.security.authentication"] == "kerberos"
        assert core["hadoop.rpc.protection"] == "authentication"
        for realm_name in (SOURCE_REALM, TARGET_REALM):
            assert realm_name.replace(".", r"\.") in core["hadoop.security.auth_to_local"]
        assert hdfs["dfs.block.access.token.enable"] == "true"
        assert hdfs["dfs.namenode.kerberos.principal"] == f"nn/_HOST@{realm}"
        assert hdfs["dfs.datanode.kerberos.principal"] == f"dn/_HOST@{realm}"
        assert hdfs["dfs.web.authentication.kerberos.principal"] == f"HTTP/_HOST@{realm}"
        assert hdfs["dfs.namenode.keytab.file"] == f"{KEYTAB_DIR}/nn.service.keytab"
        assert hdfs["dfs.datanode.keytab.file"] == f"{KEYTAB_DIR}/dn.service.keytab"
        assert hdfs["dfs.web.authentication.kerberos.keytab"] == f"{KEYTAB_DIR}/spnego.service.keytab"
        assert hdfs["dfs.data.transfer.protection"] == "authentication"
        assert hdfs["dfs.http.policy"] == "HTTPS_ONLY"
        assert "ignore.secure.ports.for.testing" not in hdfs, "a test-only switch in a real deployment"
        for key in ("dfs.namenode.name.dir", "dfs.datanode.data.dir", "dfs.namenode.rpc-address", "dfs.replication",
                    "dfs.webhdfs.enabled", "dfs.permissions.enabled"):
            assert hdfs[key] == base_hdfs[key], f"{side}: {key} differs from the base file"
        for name in (f"{side}-namenode", f"{side}-datanode"):
            for file, principal in keytabs_of(name).items():
                service = principal.split("/")[0]
                key = {"nn": "dfs.namenode.keytab.file", "dn": "dfs.datanode.keytab.file",
                       "HTTP": "dfs.web.authentication.kerberos.keytab"}[service]
                assert hdfs[key] == f"{KEYTAB_DIR}/{file}"
    ssl = xml_properties(KERBEROS_DIR / "hadoop" / "ssl-server.xml")
    assert ssl["ssl.server.keystore.location"] == f"{KEYTAB_DIR}/keystore.p12"
    assert ssl["ssl.server.keystore.password"] == ssl["ssl.server.keystore.keypassword"] == \
        "${env.HADOOP_KEYSTORE_PASSWORD}"
    yarn = xml_properties(KERBEROS_DIR / "hadoop" / "source" / "yarn-site.xml")
    mapred = xml_properties(KERBEROS_DIR / "hadoop" / "source" / "mapred-site.xml")
    assert yarn["yarn.resourcemanager.principal"] == f"rm/_HOST@{SOURCE_REALM}"
    assert yarn["yarn.nodemanager.principal"] == f"nm/_HOST@{SOURCE_REALM}"
    assert yarn["yarn.resourcemanager.keytab"] == f"{KEYTAB_DIR}/rm.service.keytab"
    assert yarn["yarn.nodemanager.keytab"] == f"{KEYTAB_DIR}/nm.service.keytab"
    assert mapred["mapreduce.jobhistory.principal"] == f"jhs/_HOST@{SOURCE_REALM}"
    assert mapred["mapreduce.jobhistory.keytab"] == f"{KEYTAB_DIR}/jhs.service.keytab"
    for base_file in ("yarn-site.xml", "mapred-site.xml"):
        base = xml_properties(DOCKER_DIR / "hadoop" / "source" / base_file)
        secure = xml_properties(KERBEROS_DIR / "hadoop" / "source" / base_file)
        assert {k: secure.get(k) for k in base} == base, f"{base_file}: a base setting is lost"


def test_the_workers_client_knows_the_principals_of_both_clusters_and_of_yarn():
    client = KERBEROS_DIR / "hadoop" / "client"
    core, hdfs = xml_properties(client / "core-site.xml"), xml_properties(client / "hdfs-site.xml")
    assert core["hadoop.security.authentication"] == "kerberos" and core["fs.defaultFS"] == "hdfs://source-namenode:8020"
    assert core["hadoop.security.auth_to_local"] == \
        xml_properties(KERBEROS_DIR / "hadoop" / "source" / "core-site.xml")["hadoop.security.auth_to_local"] == \
        xml_properties(KERBEROS_DIR / "hadoop" / "target" / "core-site.xml")["hadoop.security.auth_to_local"]
    assert hdfs["dfs.namenode.kerberos.principal.pattern"] == "*", "distcp reaches the target realm's NameNode"
    assert hdfs["dfs.data.transfer.protection"] == "authentication"
    assert xml_properties(client / "yarn-site.xml")["yarn.resourcemanager.principal"] == f"rm/_HOST@{SOURCE_REALM}"
    mapred = xml_properties(client / "mapred-site.xml")
    assert mapred["mapreduce.jobhistory.principal"] == f"jhs/_HOST@{SOURCE_REALM}"
    base_mapred = xml_properties(DOCKER_DIR / "hadoop" / "client" / "mapred-site.xml")
    assert {k: mapred.get(k) for k in base_mapred} == base_mapred
    assert (client / "log4j.properties").read_text() == (DOCKER_DIR / "hadoop" / "client" / "log4j.properties").read_text()


def test_the_metastores_and_impala_use_sasl_with_their_realms_principals():
    for side, realm in (("source", SOURCE_REALM), ("target", TARGET_REALM)):
        hive = xml_properties(KERBEROS_DIR / "impala" / side / "hive-site.xml")
        base = xml_properties(DOCKER_DIR / "impala" / side / "hive-site.xml")
        assert {k: hive.get(k) for k in base} == base, f"{side}: a setting of the base hive-site.xml is lost"
        assert hive["hive.metastore.sasl.enabled"] == "true"
        assert hive["hive.metastore.kerberos.principal"] == f"hive/_HOST@{realm}"
        assert hive["hive.metastore.kerberos.keytab.file"] == f"{KEYTAB_DIR}/hive.service.keytab"
        assert hive["hadoop.security.authentication"] == "kerberos"
        core = xml_properties(KERBEROS_DIR / "impala" / side / "core-site.xml")
        assert core == xml_properties(KERBEROS_DIR / "hadoop" / side / "core-site.xml")
        hdfs = xml_properties(KERBEROS_DIR / "impala" / side / "hdfs-site.xml")
        assert hdfs["dfs.namenode.kerberos.principal"] == f"nn/_HOST@{realm}"
        assert hdfs["dfs.data.transfer.protection"] == "authentication"


def test_krb5_conf_maps_every_host_to_its_realm_and_trusts_both_ways_without_dns():
    text = (KERBEROS_DIR / "krb5.conf").read_text()
    mapping = dict(re.findall(r"^\s+([a-z0-9-]+) = ([A-Z.-]+)$", text.split("\n[domain_realm]")[1].split("\n[")[0], re.M))
    for name in CLUSTER:
        assert mapping[name] == realm_of(name), name
    for setting in ("dns_lookup_kdc = false", "rdns = false", "dns_canonicalize_hostname = false",
                    "udp_preference_limit = 1"):
        assert setting in text
    capaths = text.split("\n[capaths]")[1]
    assert re.search(rf"{SOURCE_REALM} = {{\s+{TARGET_REALM} = \.", capaths)
    assert re.search(rf"{TARGET_REALM} = {{\s+{SOURCE_REALM} = \.", capaths)


def hadoop_lib() -> Path | None:
    lib = ROOT / ".hadoop" / "lib"
    return lib if lib.is_dir() and any(lib.glob("hadoop-common-*.jar")) and shutil.which("java") else None


@pytest.mark.skipif(hadoop_lib() is None, reason="needs Java and the Hadoop jars of .hadoop/lib (tests/support/hadoop)")
def test_hadoops_own_parser_maps_every_principal_of_both_realms_to_its_user():
    principals = {principal for name in (*CLUSTER, "airflow") for principal in keytabs_of(name).values()}
    expected = {}
    for principal in principals:
        service = principal.split("/")[0].split("@")[0]
        expected[principal] = {"hive": "hive", "impala": "impala", "airflow": "airflow"}.get(service, "hadoop")
    for side in ("source", "target", "client"):
        result = subprocess.run(
            ["java", f"-Djava.security.krb5.conf={KERBEROS_DIR / 'krb5.conf'}", "-cp",
             f"{KERBEROS_DIR / 'hadoop' / side}:{hadoop_lib()}/*", "org.apache.hadoop.security.HadoopKerberosName",
             *sorted(principals)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        mapped = dict(re.findall(r"^Name: (\S+) to (\S+)$", result.stdout, re.M))
        assert mapped == expected, f"{side}: {mapped}"


# ---------------------------------------------------------------- kerberos-init, for real

needs_root_and_mit_kdc = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("kadmin.local", "kdb5_util", "krb5kdc", "kinit",
                                                                 "klist", "kvno", "openssl")),
    reason="needs root (kerberos-init chowns the keytabs) and Debian's krb5-kdc, krb5-admin-server, krb5-user")


def run_init(workdir: Path, port: int, **extra: str) -> subprocess.CompletedProcess:
    """kerberos-init's script with the stack's kdc.conf and krb5.conf, moved into ``workdir``."""
    (workdir / "kdc.conf").write_text((KERBEROS_DIR / "kdc.conf").read_text()
                                      .replace("/var/lib/krb5kdc", str(workdir / "kdc")).replace("= 88", f"= {port}"))
    (workdir / "krb5.conf").write_text((KERBEROS_DIR / "krb5.conf").read_text().replace("kdc:88", f"127.0.0.1:{port}"))
    (workdir / "ccache").mkdir(exist_ok=True)
    for worker in WORKERS:
        (workdir / "ccache" / worker).mkdir(exist_ok=True)
    env = {**os.environ, "KRB5_CONFIG": str(workdir / "krb5.conf"), "KRB5_KDC_PROFILE": str(workdir / "kdc.conf"),
           "KDC_DATA_DIR": str(workdir / "kdc"), "KEYTABS_DIR": str(workdir / "keytabs"), "CA_DIR": str(workdir / "ca"),
           "CCACHE_DIR": str(workdir / "ccache"), "KERBEROS_MASTER_PASSWORD": "master-" + "a" * 16,
           "KERBEROS_CROSS_REALM_PASSWORD": "cross" + "b" * 16, "HADOOP_KEYSTORE_PASSWORD": "store" + "c" * 16, **extra}
    return subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


def test_kerberos_init_is_valid_bash_and_refuses_to_run_without_a_secret(tmp_path):
    assert subprocess.run(["bash", "-n", str(INIT_SCRIPT)], capture_output=True).returncode == 0
    result = run_init(tmp_path, free_port(), KERBEROS_CROSS_REALM_PASSWORD="")
    assert result.returncode != 0 and "KERBEROS_CROSS_REALM_PASSWORD: unset or empty" in result.stderr
    assert not (tmp_path / "kdc").exists() and not (tmp_path / "keytabs").exists(), "nothing is made before the check"


@needs_root_and_mit_kdc
def test_kerberos_init_makes_both_realms_the_trust_and_0600_keytabs_that_get_tickets_across_realms(tmp_path):
    port = free_port()
    first = run_init(tmp_path, port)
    assert first.returncode == 0, first.stderr[-3000:]
    keytabs = tmp_path / "keytabs"
    volumes = {f"keytabs-{path.name}" for path in keytabs.iterdir()}
    assert volumes == keytab_volumes("kerberos-init"), "one directory per keytab volume of the compose file"
    for service in (*CLUSTER, "airflow"):
        owner = 50000 if service == "airflow" else 1000
        directory = keytabs / service
        assert directory.stat().st_mode & 0o777 == 0o700 and directory.stat().st_uid == owner, service
        expected_files = set(keytabs_of(service)) | ({"keystore.p12"} if service in HDFS else set()) | \
            ({"ca.pem"} if service == "airflow" else set())
        assert {path.name for path in directory.iterdir()} == expected_files, service
        for file, principal in keytabs_of(service).items():
            path = directory / file
            assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_uid == owner, f"{service}/{file}"
            listed = subprocess.run(["klist", "-k", str(path)], capture_output=True, text=True, check=True).stdout
            assert {line.split()[-1] for line in listed.splitlines()[3:] if line.strip()} == {principal}, listed
    for worker in WORKERS:
        cache_dir = tmp_path / "ccache" / worker
        assert cache_dir.stat().st_uid == 50000 and cache_dir.stat().st_mode & 0o777 == 0o700
    assert not list((tmp_path / "keytabs").rglob("ca.key")), "the CA's key left its volume"

    client = {**os.environ, "KRB5_CONFIG": str(tmp_path / "krb5.conf"), "KRB5_KDC_PROFILE": str(tmp_path / "kdc.conf")}
    kdc = subprocess.Popen(["krb5kdc", "-n", "-r", SOURCE_REALM, "-r", TARGET_REALM], env=client,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and kdc.poll() is None, "krb5kdc did not start"
                time.sleep(0.1)
        for service in (*CLUSTER, "airflow"):
            for file, principal in keytabs_of(service).items():
                cache = tmp_path / f"cc-{service}-{file}"
                subprocess.run(["kinit", "-kt", str(keytabs / service / file), "-c", f"FILE:{cache}", principal],
                               env=client, check=True, capture_output=True, timeout=30)
        # Across the trust, both ways: airflow@SOURCE to the target's NameNode (WebHDFS) and impalad,
        # and the target's NameNode to the source's (a distcp's tokens).
        airflow_cache = f"FILE:{tmp_path / 'cc-airflow-airflow.keytab'}"
        for service in (f"HTTP/target-namenode@{TARGET_REALM}", f"nn/target-namenode@{TARGET_REALM}",
                        f"impala/target-impalad@{TARGET_REALM}", f"impala/source-impalad@{SOURCE_REALM}"):
            result = subprocess.run(["kvno", "-c", airflow_cache, service], env=client, capture_output=True, text=True,
                                    timeout=30)
            assert result.returncode == 0, f"{service}: {result.stderr}"
        result = subprocess.run(["kvno", "-c", f"FILE:{tmp_path / 'cc-target-namenode-nn.service.keytab'}",
                                 f"nn/source-namenode@{SOURCE_REALM}"], env=client, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    finally:
        stop_process_group(kdc.pid, 10)

    if shutil.which("keytool"):
        listed = subprocess.run(["keytool", "-list", "-storetype", "PKCS12", "-keystore",
                                 str(keytabs / "source-datanode" / "keystore.p12"), "-storepass", "store" + "c" * 16],
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and "source-datanode, " in listed.stdout and "PrivateKeyEntry" in listed.stdout, \
            listed.stdout + listed.stderr
    certificate = subprocess.run(["openssl", "pkcs12", "-in", str(keytabs / "target-namenode" / "keystore.p12"),
                                  "-nokeys", "-clcerts", "-passin", "pass:" + "store" + "c" * 16],
                                 capture_output=True, check=True)
    checked = subprocess.run(["openssl", "verify", "-CAfile", str(keytabs / "airflow" / "ca.pem"),
                              "-verify_hostname", "target-namenode"], input=certificate.stdout, capture_output=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    before = {path: path.read_bytes() for path in keytabs.rglob("*") if path.is_file()}
    second = run_init(tmp_path, port)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {path: path.read_bytes() for path in keytabs.rglob("*") if path.is_file()} == before, \
        "a restart changes keys the services already hold"


def test_the_seed_step_passes_only_options_run_sql_accepts():
    """source-seed logs in from the Airflow keytab, then runs docker/seed/run_sql.py with GSSAPI."""
    import importlib.util

    entrypoint = services()["source-seed"]["entrypoint"]
    script = entrypoint[2].replace("$$", "$")
    assert script.startswith(f"kinit -kt /opt/airflow/keytabs/airflow.keytab airflow@{SOURCE_REALM} && exec python ")
    argv = script.split("run_sql.py", 1)[1].replace('"$@"', "").split()
    spec = importlib.util.spec_from_file_location("run_sql", DOCKER_DIR / "seed" / "run_sql.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = (DOCKER_DIR / "seed" / "run_sql.py").read_text()
    for option in ("--auth-mechanism", "--kerberos-service-name"):
        assert option in source, f"docker/seed/run_sql.py has no {option} (the overlay's source-seed passes it)"
    assert argv[argv.index("--auth-mechanism") + 1] == "GSSAPI"
