"""The real stack (docker-compose.yaml, Dockerfile, docker/): checked offline.

No Docker engine runs where these tests run, so nothing here starts a container. What is checked:
Debian's docker-compose 1.29 accepts the file (`config -q`) once every secret is set, and refuses
it, naming the variable, while any is unset or empty (no secret has a default; .env.example lists
them and how to make each); the topology docs/real-stack.md describes is the one in the file
(services, health checks, start order, connections, where chunks are handed over, published
ports, each side's SSH keys on its own volume); the image is built from this repository's wheel
with the pinned constraints and installs nothing at start; the configuration files the services
mount exist, parse and name their own cluster; and the parts that run without Docker do what the
stack relies on (the keys of airflow-init and scp-target-init log in to an sshd configured like
scp-target, and only public keys cross between the two sides; the seed file splits into its
statements).

docker-compose reads a .env of the project directory by itself: every run here passes its own
--env-file and its own secrets, so a developer's .env changes nothing.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import json
import os
import re
import secrets
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
ENV_EXAMPLE = ROOT / ".env.example"
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
ONE_SHOT = {"airflow-init", "source-seed", "minio-init", "scp-target-init"}
REQUIRED = {"postgres", "redis", *AIRFLOW_SERVICES, *CLUSTER_SERVICES, *ONE_SHOT}
INSTALL_AT_START = re.compile(r"\b(pip3?|uv pip)\s+install\b|\bapt(-get)?\s+install\b|_PIP_ADDITIONAL_REQUIREMENTS")
DEFAULTED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-([^}]*)\}")
# Every secret of the stack: Compose must refuse to start while one is unset or empty.
SECRETS = ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_SECRET_KEY", "AIRFLOW_ADMIN_PASSWORD",
           "POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
# ${VAR:?message}: Compose stops with the message when VAR is unset or empty.
MANDATORY = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?([^}]*)\}")
REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
SECRET_SETTING = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|ACCESS_KEY|ROOT_USER|_AUTH$")
URL_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s]*)@")
AIRFLOW_SIDE = AIRFLOW_SERVICES | {"airflow-init"}


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


def secret_values() -> dict[str, str]:
    """New values for every secret, of the kinds .env.example makes (hex, a Fernet key, base64)."""
    from cryptography.fernet import Fernet

    values = {name: secrets.token_hex(16) for name in SECRETS}
    values["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    values["AIRFLOW_ADMIN_PASSWORD"] = secrets.token_urlsafe(18)
    return values


def compose_config(tmp_path: Path, values: dict[str, str], *args: str,
                   env_file: Path | None = None) -> subprocess.CompletedProcess:
    """``docker-compose config`` seeing exactly ``values`` as secrets: none from the caller's
    environment, none from a .env of the checkout (``env_file`` replaces it; empty by default)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose)")
    if env_file is None:
        env_file = tmp_path / "no-secrets.env"
        env_file.write_text("")
    env = {name: value for name, value in os.environ.items() if name not in SECRETS}
    env.update(values, COMPOSE_PROJECT_NAME="impala-transfer")
    return subprocess.run([binary, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def env_example() -> dict[str, tuple[str, list[str]]]:
    """.env.example as ``{variable: (value, the comment lines above it)}``."""
    found, comments = {}, []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
        elif "=" in line:
            name, _, value = line.partition("=")
            found[name.strip()] = (value.strip(), comments)
            comments = []
        else:
            comments = []
    return found


def env_example_command(comments: list[str]) -> str:
    """The command a variable's comment ends with (the last comment line)."""
    return comments[-1] if comments else ""


def masked(text: str) -> str:
    """``text`` with every mandatory reference ``${VAR:?...}`` written ``<VAR>``."""
    return MANDATORY.sub(lambda match: f"<{match.group(1)}>", text)


def is_mandatory_secret(value: str) -> bool:
    """The whole value is one mandatory reference to a secret of the stack."""
    match = MANDATORY.fullmatch(value.strip())
    return bool(match) and match.group(1) in SECRETS


def named_mounts(service: str) -> dict[str, tuple[str, str]]:
    """``{container path: (volume, mode)}`` of the named volumes a service mounts."""
    found = {}
    for volume in services()[service].get("volumes") or []:
        parts = volume.split(":")
        if not parts[0].startswith(("./", "/")):
            found[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "rw")
    return found


def volume_holding(service: str, path: str) -> str | None:
    """The named volume a service sees ``path`` on (the mount nearest to it), or None."""
    mounts = [(target, volume) for target, (volume, _) in named_mounts(service).items()
              if path == target or path.startswith(target.rstrip("/") + "/")]
    return max(mounts, key=lambda mount: len(mount[0]))[1] if mounts else None


def volumes_of(names) -> set[str]:
    return {volume for name in names if name in services() for volume, _ in named_mounts(name).values()}


def sshd_setting(keyword: str) -> str:
    for line in (DOCKER_DIR / "sshd" / "sshd_config").read_text().splitlines():
        if line.split() and line.split()[0].lower() == keyword.lower():
            return line.split()[1]
    raise AssertionError(f"docker/sshd/sshd_config: no {keyword}")


# ---------------------------------------------------------------- the file as Compose reads it

def test_docker_compose_1_29_accepts_the_file(tmp_path):
    result = compose_config(tmp_path, secret_values(), "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("state", ["unset", "empty"])
@pytest.mark.parametrize("name", SECRETS)
def test_the_stack_refuses_to_start_without_each_secret(tmp_path, name, state):
    values = secret_values()
    if state == "unset":
        del values[name]
    else:
        values[name] = ""
    result = compose_config(tmp_path, values, "-q")
    assert result.returncode != 0, f"{name} {state}: docker-compose accepts the file (a default stands in for it)"
    assert f"{name}: unset or empty (set it in .env, made with: " in result.stderr, result.stderr


def test_the_stack_refuses_to_start_with_env_example_copied_unchanged(tmp_path):
    result = compose_config(tmp_path, {}, "-q", env_file=ENV_EXAMPLE)
    assert result.returncode != 0, "docker-compose accepts .env.example's empty values"
    assert any(f"{name}: unset or empty" in result.stderr for name in SECRETS), result.stderr


def test_no_secret_has_a_default_value():
    text = COMPOSE_FILE.read_text()
    for match in REFERENCE.finditer(text):
        if match.group(1) in SECRETS:
            reference = MANDATORY.match(text, match.start())
            assert reference, f"{text[match.start():match.start() + 60]}: a secret with a default or none " \
                              "(write ${VAR:?VAR: unset or empty (...)})"
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            value = "" if value is None else str(value)
            if SECRET_SETTING.search(key) and not key.endswith("_FILE"):
                assert is_mandatory_secret(value), f"{name}: {key}: {value!r} is not a mandatory secret"
            for password in URL_PASSWORD.findall(masked(value)):
                assert re.fullmatch(r"<[A-Z_]+>", password) and password[1:-1] in SECRETS, \
                    f"{name}: {key}: the URL's password {password!r} is not a mandatory secret"
            if key.startswith("AIRFLOW_CONN_"):
                conn = json.loads(value)
                for field, text in [("password", conn.get("password")),
                                    *((f"extra.{k}", v) for k, v in (conn.get("extra") or {}).items())]:
                    if text is not None and (field == "password" or SECRET_SETTING.search(field.upper())):
                        assert is_mandatory_secret(str(text)), f"{name}: {key}: {field} is not a mandatory secret"
        command = strings(service.get("command"))
        for flag, value in zip(command, command[1:]):
            if SECRET_SETTING.search(flag.upper().replace("-", "")) or flag == "--requirepass":
                assert is_mandatory_secret(value), f"{name}: {flag} {value!r} is not a mandatory secret"


def test_with_every_secret_set_each_service_gets_the_one_it_needs(tmp_path):
    values = secret_values()
    result = compose_config(tmp_path, values)
    assert result.returncode == 0, result.stderr
    assert "${" not in result.stdout.replace("$$", ""), "a reference was left as it was"
    resolved = yaml.safe_load(result.stdout)["services"]

    def env(service: str) -> dict[str, str]:
        return resolved[service].get("environment") or {}

    assert env("postgres")["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]
    assert resolved["redis"]["command"] == ["redis-server", "--requirepass", values["REDIS_PASSWORD"]]
    assert env("redis")["REDISCLI_AUTH"] == values["REDIS_PASSWORD"], "the health check logs in"
    assert env("airflow-init")["AIRFLOW_ADMIN_PASSWORD"] == values["AIRFLOW_ADMIN_PASSWORD"]
    for name in AIRFLOW_SIDE:
        airflow = env(name)
        assert airflow["AIRFLOW__CORE__FERNET_KEY"] == values["AIRFLOW_FERNET_KEY"], name
        assert airflow["AIRFLOW__API_AUTH__JWT_SECRET"] == values["AIRFLOW_JWT_SECRET"], name
        assert airflow["AIRFLOW__API__SECRET_KEY"] == values["AIRFLOW_SECRET_KEY"], name
        assert urlsplit(airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).password == values["POSTGRES_PASSWORD"], name
        assert "AIRFLOW__CELERY__RESULT_BACKEND" not in airflow, f"{name}: the result backend is the database URL"
        assert urlsplit(airflow["AIRFLOW__CELERY__BROKER_URL"]).password == values["REDIS_PASSWORD"], name
        assert (airflow["AWS_ACCESS_KEY_ID"], airflow["AWS_SECRET_ACCESS_KEY"]) == \
            (values["MINIO_ROOT_USER"], values["MINIO_ROOT_PASSWORD"]), name
        minio_s3 = json.loads(airflow["AIRFLOW_CONN_MINIO_S3"])
        assert (minio_s3["login"], minio_s3["password"]) == (values["MINIO_ROOT_USER"], values["MINIO_ROOT_PASSWORD"])
    assert "AIRFLOW_ADMIN_PASSWORD" not in env("worker-1"), "only airflow-init needs the admin's password"
    assert (env("minio")["MINIO_ROOT_USER"], env("minio")["MINIO_ROOT_PASSWORD"]) == \
        (values["MINIO_ROOT_USER"], values["MINIO_ROOT_PASSWORD"])
    bucket_maker = urlsplit(env("minio-init")["MC_HOST_stack"])
    assert (bucket_maker.username, bucket_maker.password, bucket_maker.hostname) == \
        (values["MINIO_ROOT_USER"], values["MINIO_ROOT_PASSWORD"], "minio")


def test_env_example_lists_every_secret_empty_with_the_command_that_makes_it():
    example = env_example()
    text = COMPOSE_FILE.read_text()
    assert set(SECRETS) == {match.group(1) for match in MANDATORY.finditer(text)}
    overlay = (ROOT / "docker-compose.kerberos.yaml").read_text()  # its own secrets: tests/test_compose_kerberos.py
    assert set(example) == set(SECRETS) | {match.group(1) for match in MANDATORY.finditer(overlay)}
    for name, (value, comments) in ((n, example[n]) for n in SECRETS):
        assert value == "", f".env.example: {name}={value}: a value (leave it empty: each user makes their own)"
        command = env_example_command(comments)
        assert command.startswith(("openssl ", "python3 -c ")), f".env.example: {name}: no command above it"
        for match in MANDATORY.finditer(text):
            if match.group(1) == name:
                message = " ".join(match.group(2).split())
                assert message == f"{name}: unset or empty (set it in .env, made with: {command})", message


def test_the_commands_of_env_example_make_values_the_stack_accepts(tmp_path):
    from cryptography.fernet import Fernet

    values = {}
    for name, (_, comments) in env_example().items():
        command = env_example_command(comments).replace("python3 -c ", f"{sys.executable} -c ", 1)
        made = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60, check=True)
        values[name] = made.stdout.strip()
        assert values[name] and "\n" not in values[name], f"{name}: {command} printed {made.stdout!r}"
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    result = compose_config(tmp_path, {}, env_file=env_file)
    assert result.returncode == 0, result.stderr
    worker = yaml.safe_load(result.stdout)["services"]["worker-1"]["environment"]
    assert urlsplit(worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).password == values["POSTGRES_PASSWORD"]
    assert json.loads(worker["AIRFLOW_CONN_MINIO_S3"])["password"] == values["MINIO_ROOT_PASSWORD"]


def test_git_ignores_a_real_env_file_but_not_env_example():
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    ignored = lambda path: any(fnmatch.fnmatch(path, pattern.lstrip("/")) for pattern in patterns)  # noqa: E731
    assert ignored(".env"), ".gitignore: .env is not ignored (add the line .env)"
    assert not ignored(".env.example"), ".gitignore: .env.example is ignored (it is committed)"


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
        broker = urlsplit(masked(env["AIRFLOW__CELERY__BROKER_URL"]))
        assert (broker.scheme, broker.hostname) == ("redis", "redis"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).hostname == "api-server", name


def test_every_component_shares_the_secrets_that_sign_tokens_and_log_requests():
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
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


def test_each_side_has_its_own_ssh_key_volume():
    target_side = {name for name in services() if name.startswith("scp-target")}
    airflow_volumes, target_volumes = volumes_of(AIRFLOW_SIDE), volumes_of(target_side)
    extra = stack_connections()["scp_target"]["extra"]
    client_keys = {volume_holding(name, extra["key_file"]) for name in AIRFLOW_SIDE}
    assert len(client_keys) == 1 and None not in client_keys, f"key_file: not on one volume: {client_keys}"
    assert not client_keys & target_volumes, \
        f"{extra['key_file']}: the workers' private key is on a volume the scp target mounts (give it its own)"
    host_keys = {volume_holding("scp-target", sshd_setting(keyword)) for keyword in ("HostKey", "AuthorizedKeysFile")}
    assert None not in host_keys and not host_keys & airflow_volumes, \
        f"scp-target's host key is on a volume the Airflow services mount: {host_keys & airflow_volumes}"
    known_hosts = volume_holding("worker-1", extra["known_hosts"])
    assert known_hosts in target_volumes, "known_hosts: not handed over by the target's side"
    for volume in airflow_volumes & target_volumes:
        for name in services():
            mounted = [mode for vol, mode in named_mounts(name).values() if vol == volume]
            if mounted and name not in ONE_SHOT:
                assert mounted == ["ro"], f"{name} mounts {volume}, shared by both sides, writable"


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


# ---------------------------------------------------------------- the init steps and the scp target, for real

needs_root_and_openssh = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ssh-keygen") or not Path("/usr/sbin/sshd").exists(),
    reason="needs root (the init steps chown to root and the Airflow user) and OpenSSH")


def run_init_steps(tmp_path: Path, scp_host: str) -> dict[str, Path]:
    """airflow-init's script, then scp-target-init's: each side with its own directory (the volumes
    airflow-ssh and scp-target-ssh), and the hand-over directory between them (ssh-public-keys)."""
    dirs = {"airflow": tmp_path / "airflow-ssh", "target": tmp_path / "scp-target-ssh",
            "public": tmp_path / "ssh-public-keys", "auth": tmp_path / "auth" / "passwords.json"}
    env = {**os.environ, "AIRFLOW_ENTRYPOINT": "true", "AIRFLOW_UID": str(os.getuid()),
           "SSH_KEYS_DIR": str(dirs["airflow"]), "SSH_PUBLIC_DIR": str(dirs["public"]),
           "TARGET_KEYS_DIR": str(dirs["target"]), "SCP_TARGET_HOST": scp_host,
           "AIRFLOW_ADMIN_USER": "admin", "AIRFLOW_ADMIN_PASSWORD": "s3cret",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(dirs["auth"]),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for script in (DOCKER_DIR / "airflow" / "init.sh", DOCKER_DIR / "sshd" / "init-keys.sh"):
        subprocess.run([shutil.which("bash"), str(script)], env=env, check=True, capture_output=True, timeout=120)
    return dirs


def files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


@needs_root_and_openssh
def test_only_public_keys_cross_between_the_two_sides_ssh_volumes(tmp_path):
    dirs = run_init_steps(tmp_path, "scp-target")
    airflow, target, public = files(dirs["airflow"]), files(dirs["target"]), files(dirs["public"])
    assert set(airflow) == {"id_ed25519", "id_ed25519.pub"}, sorted(airflow)
    assert set(target) == {"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "authorized_keys"}, sorted(target)
    assert set(public) == {"id_ed25519.pub", "known_hosts"}, sorted(public)
    assert not [name for name, content in public.items() if b"PRIVATE KEY" in content], "a private key crossed over"
    assert target["authorized_keys"] == airflow["id_ed25519.pub"] == public["id_ed25519.pub"]
    host_key = target["ssh_host_ed25519_key.pub"].split()[:2]
    assert public["known_hosts"].split() == [b"scp-target", *host_key]
    assert (dirs["airflow"] / "id_ed25519").stat().st_mode & 0o777 == 0o600
    assert (dirs["target"] / "ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    assert json.loads(dirs["auth"].read_text()) == {"admin": "s3cret"} and dirs["auth"].stat().st_mode & 0o777 == 0o600

    run_init_steps(tmp_path, "scp-target")
    assert files(dirs["airflow"]) == airflow and files(dirs["target"]) == target, \
        "a restart keeps the keys each side already trusts"


@needs_root_and_openssh
def test_scp_target_init_refuses_to_start_without_the_workers_public_key(tmp_path):
    public = tmp_path / "ssh-public-keys"
    public.mkdir()
    env = {**os.environ, "TARGET_KEYS_DIR": str(tmp_path / "scp-target-ssh"), "SSH_PUBLIC_DIR": str(public)}
    result = subprocess.run([shutil.which("bash"), str(DOCKER_DIR / "sshd" / "init-keys.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"{public / 'id_ed25519.pub'}: missing (airflow-init writes the workers' public key" in result.stderr
    assert not (tmp_path / "scp-target-ssh").exists(), "nothing is made before the check"


@needs_root_and_openssh
def test_the_init_steps_make_keys_that_log_in_to_an_sshd_configured_like_scp_target(tmp_path):
    port = free_port()
    dirs = run_init_steps(tmp_path, f"[127.0.0.1]:{port}")
    # Where the Airflow services mount the two volumes init.sh writes (its defaults).
    on_host = {"/opt/airflow/ssh-public": dirs["public"], "/opt/airflow/ssh": dirs["airflow"]}
    assert set(on_host) <= set(named_mounts("worker-1")) and set(on_host) <= set(named_mounts("airflow-init"))

    def host_path(path: str) -> str:
        prefix = next(prefix for prefix in on_host if path.startswith(prefix + "/"))
        return str(on_host[prefix]) + path[len(prefix):]

    # scp-target's sshd_config, with the volume's path and this machine's user.
    project_config = (DOCKER_DIR / "sshd" / "sshd_config").read_text()
    project_config = project_config.replace("/etc/ssh/impala-transfer", str(dirs["target"]))
    project_config = project_config.replace("AllowUsers transfer", "AllowUsers root")
    project_config = project_config.replace("PermitRootLogin no", "PermitRootLogin prohibit-password")
    config = tmp_path / "sshd_config"
    config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nPidFile {tmp_path / 'sshd.pid'}\nUsePAM no\n"
                      "StrictModes no\n"  # pytest's tmp dir is under the world-writable /tmp
                      f"{project_config}\nSubsystem sftp internal-sftp\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd, -T too, refuses to run without it
    effective = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(config)], capture_output=True, text=True)
    assert effective.returncode == 0, effective.stderr
    for setting in ("passwordauthentication no", "kbdinteractiveauthentication no",
                    f"hostkey {dirs['target'] / 'ssh_host_ed25519_key'}",
                    f"authorizedkeysfile {dirs['target'] / 'authorized_keys'}"):
        assert setting in effective.stdout.splitlines(), f"scp-target's sshd: {setting!r} is not in force"
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        extra = stack_connections()["scp_target"]["extra"]
        ssh = ["ssh", "-F", "/dev/null", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
               "-i", host_path(extra["key_file"]),
               "-o", "UserKnownHostsFile=" + host_path(extra["known_hosts"]),
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
