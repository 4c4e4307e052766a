"""The real stack (docker-compose.yaml, Dockerfile, docker/): checked offline.

No Docker engine runs where these tests run, so nothing here starts a container. What is checked:
Debian's docker-compose 1.29 accepts the file (`config -q`); the topology docs/real-stack.md
describes is the one in the file (services, health checks, start order, connections, where chunks
are handed over, published ports); the image is built from this repository's wheel with the pinned
constraints and installs nothing at start; the configuration files the services mount exist, parse
and name their own cluster; and the parts that run without Docker do what the stack relies on
(airflow-init's keys log in to an sshd configured like scp-target, the seed file splits into its
statements).
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from airflow_provider_impala_transfer import get_provider_info
from tests.support.processes import free_port, stop_process_group

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKER_DIR = ROOT / "docker"

AIRFLOW_SERVICES = {"api-server", "scheduler", "dag-processor", "triggerer", "worker-1", "worker-2"}
WORKERS = ("worker-1", "worker-2")
CLUSTER_SERVICES = {
    "source-namenode", "source-datanode", "resourcemanager", "nodemanager", "historyserver",
    "target-namenode", "target-datanode",
    "source-hms", "source-statestored", "source-catalogd", "source-impalad",
    "target-hms", "target-statestored", "target-catalogd", "target-impalad",
    "scp-target", "minio",
}
# Services that run once and exit; every other service runs for good and must say when it is healthy.
ONE_SHOT = {"airflow-init", "source-seed", "minio-init"}
REQUIRED = {"postgres", "redis", *AIRFLOW_SERVICES, *CLUSTER_SERVICES, *ONE_SHOT}
INSTALL_AT_START = re.compile(r"\b(pip3?|uv pip)\s+install\b|\bapt(-get)?\s+install\b|_PIP_ADDITIONAL_REQUIREMENTS")
DEFAULTED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-([^}]*)\}")


@functools.cache
def compose() -> dict:
    """The file as PyYAML reads it (anchors and merge keys resolved); read once, never modified."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment is written as a mapping"
    return {name: "" if value is None else str(value) for name, value in env.items()}


def with_defaults(text: str) -> str:
    """``${VAR:-default}`` as Compose resolves it when VAR is unset."""
    return DEFAULTED.sub(lambda match: match.group(2), text)


def depends_on(service: str) -> dict[str, dict]:
    found = services()[service].get("depends_on") or {}
    assert isinstance(found, dict), f"{service}: depends_on is a mapping of conditions, not a list"
    return found


def strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings(item)]
    return [text for item in value for text in strings(item)]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            current = ""
    return instructions


def dockerfile_args() -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in dockerfile_instructions() if keyword == "ARG" and "=" in rest)


def bind_mounts(service: str) -> list[tuple[str, str]]:
    mounts = []
    for volume in services()[service].get("volumes") or []:
        source, target = volume.split(":")[:2]
        mounts.append((source, target))
    return mounts


def xml_properties(path: Path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    return {prop.findtext("name"): prop.findtext("value") for prop in root.iter("property")}


# ---------------------------------------------------------------- the file as Compose reads it

def test_docker_compose_1_29_accepts_the_file():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose)")
    result = subprocess.run([binary, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "COMPOSE_PROJECT_NAME": "impala-transfer"})
    assert result.returncode == 0, result.stderr


def test_the_file_is_a_compose_specification_without_the_obsolete_version_key():
    assert "version" not in compose()


def test_the_stack_has_airflow_both_clusters_their_engines_and_every_target():
    missing = REQUIRED - set(services())
    assert not missing, f"services missing: {sorted(missing)}"


def test_every_long_running_service_says_when_it_is_healthy():
    for name, service in services().items():
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", f"{name} runs once: it must not be restarted"
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} runs for good but has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, f"{name}: {check['test']}"


def test_every_dependency_waits_for_health_or_for_a_one_shot_to_succeed():
    known = set(services())
    for name in known:
        for dependency, spec in depends_on(name).items():
            assert dependency in known, f"{name} depends on {dependency}, which is no service"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert spec == {"condition": expected}, f"{name} -> {dependency}: {spec}, expected {expected}"


def test_the_start_order_has_no_cycle():
    graph = {name: set(depends_on(name)) for name in services()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dependency in graph[name]:
                visit(dependency, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_airflow_starts_after_its_database_its_broker_and_airflow_init():
    for name in AIRFLOW_SERVICES:
        assert {"postgres", "redis", "airflow-init"} <= set(depends_on(name)), name
    assert {"postgres", "redis"} <= set(depends_on("airflow-init"))


def test_the_workers_start_once_every_cluster_and_target_is_ready():
    needed = {"source-seed", "source-datanode", "target-datanode", "target-impalad", "nodemanager",
              "historyserver", "scp-target", "minio-init", "api-server"}
    for worker in WORKERS:
        assert needed <= set(depends_on(worker)), f"{worker} misses {sorted(needed - set(depends_on(worker)))}"


def test_both_workers_are_celery_workers_of_one_celery_executor():
    for worker in WORKERS:
        service = services()[worker]
        assert service["command"] == "celery worker", f"{worker}: {service['command']}"
        assert service.get("hostname") == worker, "the API server fetches a worker's logs by the name it reports"
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        env = environment(name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).hostname == "api-server", name


def test_every_component_shares_the_secrets_that_sign_tokens_and_log_requests():
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        values = {with_defaults(environment(name)[key]) for name in AIRFLOW_SERVICES}
        assert len(values) == 1 and values != {""}, key


def allowed_connection_types() -> set[str]:
    from airflow.providers.apache.hdfs.hooks.webhdfs import WebHDFSHook
    from airflow.providers.apache.impala.hooks.impala import ImpalaHook

    from airflow_provider_impala_transfer.hooks.scp import ScpHook

    ours = {entry["connection-type"] for entry in get_provider_info()["connection-types"]}
    return ours | {ScpHook.conn_type, WebHDFSHook.conn_type, ImpalaHook.conn_type}


def stack_connections() -> dict[str, dict]:
    env = environment("worker-1")
    return {name.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value)
            for name, value in env.items() if name.startswith("AIRFLOW_CONN_")}


def test_every_connection_is_json_of_a_type_the_stack_installs_naming_a_service_of_the_stack():
    allowed, known = allowed_connection_types(), set(services())
    connections = stack_connections()
    kinds = {conn["conn_type"] for conn in connections.values()}
    assert {"impala_transfer", "webhdfs", "hadoop_cli", "ssh", "fsspec"} <= kinds
    for conn_id, conn in connections.items():
        assert conn["conn_type"] in allowed, f"{conn_id}: {conn['conn_type']} is not among {sorted(allowed)}"
        if conn.get("host"):
            assert conn["host"] in known, f"{conn_id} points to {conn['host']}, which is no service"
        endpoint = (conn.get("extra") or {}).get("storage_options", {}).get("endpoint_url")
        if endpoint:
            assert urlsplit(endpoint).hostname in known, f"{conn_id}: {endpoint}"
    for name in AIRFLOW_SERVICES:
        assert {k for k in environment(name) if k.startswith("AIRFLOW_CONN_")} == \
            {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in connections}, f"{name} sees other connections"


def test_airflow_reads_every_connection_as_written_and_the_hadoop_cli_one_sets_only_allowed_variables():
    from airflow.models.connection import Connection

    from airflow_provider_impala_transfer.hooks.hadoop import connection_env

    for conn_id, written in stack_connections().items():
        conn = Connection.from_json(json.dumps(written), conn_id=conn_id)
        assert (conn.conn_type, conn.host or None, conn.port) == \
            (written["conn_type"], written.get("host"), written.get("port")), conn_id
        assert conn.extra_dejson == written.get("extra", {}), conn_id
        if conn.conn_type == "hadoop_cli":
            assert connection_env(conn.extra_dejson["env"], conn_id) == written["extra"]["env"]


def test_the_example_dags_find_every_connection_and_variable_the_stack_sets():
    env, connections = environment("worker-1"), stack_connections()
    read = set()
    for dag_file in (ROOT / "dags_examples").glob("*.py"):
        read |= set(re.findall(r"IMPALA_TRANSFER_[A-Z_]+", dag_file.read_text()))
    for name, value in env.items():
        if name.startswith("IMPALA_TRANSFER_"):
            assert name in read, f"{name} is set but no example DAG reads it"
            if name.endswith("CONN_ID"):
                assert value in connections, f"{name}={value} names no AIRFLOW_CONN_ of the stack"


def test_chunks_go_from_extract_to_transfer_through_the_source_hdfs_not_a_local_volume():
    env = environment("worker-1")
    output, staging, target = (urlsplit(env[f"IMPALA_TRANSFER_{key}"])
                               for key in ("OUTPUT_DIR", "SOURCE_HDFS_PATH", "TARGET_PATH"))
    assert output.scheme == "hdfs" and output.hostname == "source-namenode", env["IMPALA_TRANSFER_OUTPUT_DIR"]
    assert staging.scheme == "hdfs" and staging.hostname == "source-namenode"
    assert target.scheme == "hdfs" and target.hostname == "target-namenode"
    for worker in WORKERS:
        for volume in services()[worker].get("volumes") or []:
            parts = volume.split(":")
            mode = parts[2] if len(parts) > 2 else "rw"
            assert mode == "ro", f"{worker} mounts {volume} writable: chunks must not be handed over through volumes"


def test_ports_are_published_on_127_0_0_1_only():
    for name, service in services().items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:") and str(port).count(":") == 2, f"{name}: {port}"
    assert "127.0.0.1:8080:8080" in services()["api-server"]["ports"]


def test_nothing_is_installed_when_a_container_starts():
    for name, service in services().items():
        texts = strings(service.get("entrypoint")) + strings(service.get("command")) + \
            strings((service.get("healthcheck") or {}).get("test")) + strings(service.get("environment"))
        texts += [key for key in (service.get("environment") or {})]
        for text in texts:
            assert not INSTALL_AT_START.search(text), f"{name} installs at start: {text}"
    for script in (DOCKER_DIR / "airflow" / "init.sh", DOCKER_DIR / "seed" / "run_sql.py"):
        assert not INSTALL_AT_START.search(script.read_text()), script


def test_every_named_volume_is_declared_and_every_mounted_file_is_in_the_repository():
    declared = set(compose()["volumes"])
    for name in services():
        for source, target in bind_mounts(name):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in declared, f"{name} mounts undeclared volume {source}"


# ---------------------------------------------------------------- the image

def test_the_image_extends_the_official_airflow_3_3_image_of_the_pinned_version():
    args = dockerfile_args()
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert froms[-1] == "${AIRFLOW_IMAGE}", "the final stage is the Airflow image"
    match = re.fullmatch(r"apache/airflow:(?:slim-)?(3\.3\.\d+)-python3\.\d+", args["AIRFLOW_IMAGE"])
    assert match, args["AIRFLOW_IMAGE"]
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    assert match.group(1) == pinned, "the image's Airflow is the version constraints.txt pins"
    for name in AIRFLOW_SERVICES | {"airflow-init", "source-seed"}:
        assert services()[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name


def test_the_image_installs_the_provider_wheel_built_from_a_writable_copy_with_the_pinned_constraints():
    instructions = dockerfile_instructions()
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any("pyproject.toml" in c and "constraints.txt" in c and " src/" in c for c in copies)
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    wheel = [run for run in runs if "pip wheel" in run]
    install = [run for run in runs if "pip install" in run]
    assert wheel and all("--constraint" in run and "constraints.txt" in run and "./src" in run for run in wheel)
    assert install and all("--constraint" in run and "constraints.txt" in run and "--no-index" in run
                           for run in install)
    assert any("airflow-provider-impala-transfer" in run for run in install)


def test_the_image_carries_the_clusters_hadoop_a_java_runtime_and_openssh():
    instructions = dockerfile_instructions()
    args = dockerfile_args()
    hadoop_default = DEFAULTED.search(compose()["x-hadoop"]["image"]).group(2)
    assert args["HADOOP_IMAGE"] == hadoop_default, "workers run the Hadoop client of the clusters' image"
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any(c.startswith("--from=hadoop") and "/opt/hadoop" in c for c in copies)
    assert any(c.startswith("--from=java") for c in copies)
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    assert any("apt-get install" in run and "openssh-client" in run for run in runs)
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    for setting in ("JAVA_HOME=", "HADOOP_HOME=/opt/hadoop", "HADOOP_CONF_DIR=/etc/hadoop/conf",
                    "PATH=/opt/hadoop/bin"):
        assert setting in env


def dockerignored(relative: str, patterns: list[str]) -> bool:
    parts = Path(relative).parts
    return any(fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(parts[0], pattern)
               or (pattern.startswith("**/") and any(fnmatch.fnmatch(part, pattern[3:]) for part in parts))
               for pattern in patterns)


def test_dockerignore_keeps_local_state_out_of_the_build_context_but_not_what_the_image_copies():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for local in (".venv", ".hadoop", ".git", ".demo", ".bench", ".pytest_cache", "x/__pycache__", "tests"):
        assert dockerignored(local, patterns), f"{local} would be sent to the Docker build"
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        sources = [word for word in rest.split() if not word.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
            assert not dockerignored(source.rstrip("/"), patterns), f".dockerignore leaves out {source}"


# ---------------------------------------------------------------- configuration the services mount

def test_each_cluster_config_names_its_own_namenode_and_metastore():
    for cluster in ("source", "target"):
        hadoop = xml_properties(DOCKER_DIR / "hadoop" / cluster / "core-site.xml")
        hdfs = xml_properties(DOCKER_DIR / "hadoop" / cluster / "hdfs-site.xml")
        assert hadoop["fs.defaultFS"] == f"hdfs://{cluster}-namenode:8020"
        assert hdfs["dfs.webhdfs.enabled"] == "true" and hdfs["dfs.replication"] == "1"
        formatted = services()[f"{cluster}-namenode"]["environment"]["ENSURE_NAMENODE_DIR"]
        assert hdfs["dfs.namenode.name.dir"] == f"file://{formatted}", "the image formats the directory HDFS uses"
        hive = xml_properties(DOCKER_DIR / "impala" / cluster / "hive-site.xml")
        assert hive["hive.metastore.uris"] == f"thrift://{cluster}-hms:9083"
        impala_core = xml_properties(DOCKER_DIR / "impala" / cluster / "core-site.xml")
        assert hive["fs.defaultFS"] == impala_core["fs.defaultFS"] == hadoop["fs.defaultFS"]
        assert hive["hive.metastore.warehouse.dir"].startswith(f"hdfs://{cluster}-namenode:8020/")
        for daemon in ("statestored", "catalogd", "impalad"):
            flags = services()[f"{cluster}-{daemon}"]["command"]
            if daemon != "statestored":
                assert f"-state_store_host={cluster}-statestored" in flags, f"{cluster}-{daemon}: {flags}"
        assert f"-catalog_service_host={cluster}-catalogd" in services()[f"{cluster}-impalad"]["command"]


def test_the_workers_hadoop_client_submits_distcp_to_the_stacks_yarn():
    client = DOCKER_DIR / "hadoop" / "client"
    assert xml_properties(client / "core-site.xml")["fs.defaultFS"] == "hdfs://source-namenode:8020"
    assert xml_properties(client / "yarn-site.xml")["yarn.resourcemanager.hostname"] == "resourcemanager"
    mapred = xml_properties(client / "mapred-site.xml")
    assert mapred["mapreduce.framework.name"] == "yarn"
    assert urlsplit("//" + mapred["mapreduce.jobhistory.address"]).hostname == "historyserver"
    assert (client / "log4j.properties").is_file()
    assert "./docker/hadoop/client" in [source for source, _ in bind_mounts("worker-1")]


def run_sql_module():
    spec = importlib.util.spec_from_file_location("run_sql", DOCKER_DIR / "seed" / "run_sql.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seed_creates_the_table_the_example_dag_reads_statement_by_statement():
    statements = run_sql_module().statements((DOCKER_DIR / "seed" / "source.sql").read_text())
    assert len(statements) == 6
    assert all(statement and not statement.endswith(";") and "--" not in statement for statement in statements)
    assert any(re.match(r"CREATE TABLE IF NOT EXISTS default\.events \(\s*id BIGINT", s) for s in statements)
    assert 'Param("SELECT * FROM default.events"' in (ROOT / "dags_examples" / "impala_transfer_example.py").read_text()
    seed = services()["source-seed"]
    assert seed["entrypoint"][seed["entrypoint"].index("--host") + 1] == "source-impalad"


# ---------------------------------------------------------------- airflow-init and the scp target, for real

@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ssh-keygen") or not Path("/usr/sbin/sshd").exists(),
                    reason="needs root (airflow-init chowns to root and the Airflow user) and OpenSSH")
def test_airflow_init_makes_keys_that_log_in_to_an_sshd_configured_like_scp_target(tmp_path):
    keys, auth = tmp_path / "keys", tmp_path / "auth" / "passwords.json"
    port = free_port()
    env = {**os.environ, "AIRFLOW_ENTRYPOINT": "true", "AIRFLOW_UID": str(os.getuid()),
           "SSH_KEYS_DIR": str(keys), "SCP_TARGET_HOST": f"[127.0.0.1]:{port}",
           "AIRFLOW_ADMIN_USER": "admin", "AIRFLOW_ADMIN_PASSWORD": "s3cret",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(auth),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    init = [shutil.which("bash"), str(DOCKER_DIR / "airflow" / "init.sh")]
    subprocess.run(init, env=env, check=True, capture_output=True, timeout=120)
    assert json.loads(auth.read_text()) == {"admin": "s3cret"} and auth.stat().st_mode & 0o777 == 0o600
    assert (keys / "id_ed25519").stat().st_mode & 0o777 == 0o600
    assert (keys / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    first_key = (keys / "id_ed25519").read_bytes()
    subprocess.run(init, env=env, check=True, capture_output=True, timeout=120)
    assert (keys / "id_ed25519").read_bytes() == first_key, "a restart keeps the keys the target already trusts"

    # scp-target's sshd_config, with the volume's path and this machine's user.
    project_config = (DOCKER_DIR / "sshd" / "sshd_config").read_text()
    project_config = project_config.replace("/etc/ssh/impala-transfer", str(keys))
    project_config = project_config.replace("AllowUsers transfer", "AllowUsers root")
    project_config = project_config.replace("PermitRootLogin no", "PermitRootLogin prohibit-password")
    config = tmp_path / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nPidFile {tmp_path / 'sshd.pid'}\nUsePAM no\n"
                      "StrictModes no\n"  # pytest's tmp dir is under the world-writable /tmp
                      f"{project_config}\nSubsystem sftp internal-sftp\n")
    effective = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(config)], capture_output=True, text=True)
    assert effective.returncode == 0, effective.stderr
    for setting in ("passwordauthentication no", "kbdinteractiveauthentication no",
                    f"hostkey {keys / 'ssh_host_ed25519_key'}", f"authorizedkeysfile {keys / 'authorized_keys'}"):
        assert setting in effective.stdout.splitlines(), f"scp-target's sshd: {setting!r} is not in force"
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        extra = stack_connections()["scp_target"]["extra"]
        ssh = ["ssh", "-F", "/dev/null", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
               "-i", extra["key_file"].replace("/opt/airflow/ssh", str(keys)),
               "-o", "UserKnownHostsFile=" + extra["known_hosts"].replace("/opt/airflow/ssh", str(keys)),
               "-T", "root@127.0.0.1"]
        deadline, result = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    result = subprocess.run([*ssh, "echo", "logged-in"], capture_output=True, text=True, timeout=20)
                    if result.returncode == 0:
                        break
            time.sleep(0.3)
        assert result is not None and result.stdout.strip() == "logged-in", result and result.stderr
    finally:
        stop_process_group(sshd.pid, 10)
