"""The seed's Python API, switched by changing only the import path.

Every ```python block of the seed document (``transfer-methods.md`` of the impala-transfer-tool)
runs here with ``impala_transfer.transfer`` replaced by ``airflow_provider_impala_transfer.transfer``
and nothing else of its code changed: an AST transform substitutes VALUES only, namely

* a dict literal with a ``'protocol'`` key -> the config of a local store (its ``target_path`` kept
  or rebased under the test's directory),
* ``fsspec.filesystem(<protocol>, ...)`` -> a filesystem of a local store,
* the file paths given to ``transfer_files`` -> files created in the source store,
* the ``target_path=`` URL given to ``transfer_files`` -> the same path in the target store.

The four local stores are fsspec's memory filesystem, the local filesystem, S3 (moto's server
on 127.0.0.1) and SFTP (a real OpenSSH sshd on 127.0.0.1). The seed's HDFS (pyarrow/libhdfs needs
a namenode), GCS (gcsfs is not installed, no endpoint) and ABFS (adlfs is not installed, no
endpoint) cannot run here: each is replaced by each of these four. The seed's hdfs/sftp stores
play the source, s3/gcs/abfs the target; where a block's source is the local filesystem
(``/local/path/...``, ``fsspec.filesystem('file')``) it stays local. Blocks run in a namespace that
holds what the blocks above them imported, as they run one after another in the document (two
use ``fsspec``, one the manager class, without importing it).

The S3 example additionally runs verbatim (only its local file path replaced): s3fs honours
``AWS_ENDPOINT_URL``, so the seed's bucket, key and secret talk to moto.

Then: memory stays bounded, damaged copies make ``transfer_files`` return False, secrets never
show, configuration errors name the setting, and the traditional chain (hdfs put through Hadoop's
real FsShell; fallback to scp over the real sshd) delivers.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging
import os
import posixpath
import subprocess
import sys
import tracemalloc
import uuid
from pathlib import Path

import fsspec
import pytest
from fsspec.core import split_protocol
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_impala_transfer import transfer as api
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.transfer.layout import STAGING_DIR
from airflow_provider_impala_transfer.transfer import FSSpecFileTransferManager, UnifiedFileTransferManager
from tests.support.hdfs_files import hdfs_bytes, hdfs_names

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "transfer-methods.md"
OLD_IMPORT = "from impala_transfer.transfer import"
NEW_IMPORT = "from airflow_provider_impala_transfer.transfer import"
LOGGER = "airflow_provider_impala_transfer.transfer"
BACKENDS = ("memory", "local", "s3", "sftp")

CONFIGS = "5. FSSpec (Filesystem Abstraction)"
CLOUD = "Cloud Storage Transfer (FSSpec)"
CROSS = "Cross-Platform Transfer (FSSpec)"
OBJECTS = "Using Filesystem Objects Directly (FSSpec)"
MIXED = "Mixed Configuration (Filesystem Objects + Config)"
UNIFIED = "Using with Unified Transfer Manager"
# The seed's stores and the part each plays in its examples.
SOURCE_PROTOCOLS = ("hdfs", "sftp")
TARGET_PROTOCOLS = ("s3", "gcs", "abfs")
SOURCE_BYTES = 1_300_000  # more than one block of every chunk_size the examples set


# --- the seed document ------------------------------------------------------------------------

def parse_python_blocks(markdown: str) -> dict[str, str]:
    """``### heading`` -> the text of the ```python block under it."""
    blocks: dict[str, str] = {}
    heading, current = None, None
    for line in markdown.splitlines(keepends=True):
        if current is not None:
            if line.startswith("```"):
                blocks[heading] = "".join(current)
                current = None
            else:
                current.append(line)
        elif line.startswith("### "):
            heading = line[4:].strip()
        elif line.startswith("```python"):
            current = []
    return blocks


def seed_blocks() -> dict[str, str]:
    return parse_python_blocks(SEED.read_text(encoding="utf-8")) if SEED.exists() else dict(EMBEDDED_SEED_BLOCKS)


def ported(heading: str) -> str:
    """The block with the import path changed, and nothing else."""
    code = seed_blocks()[heading]
    return code.replace(OLD_IMPORT, NEW_IMPORT)


class SeedValues(ast.NodeTransformer):
    """Replace values, never code: config dicts, ``fsspec.filesystem(...)``, the paths given to
    ``transfer_files``. Each replacement calls a hook of the :class:`Sandbox`."""

    def __init__(self) -> None:
        self.replaced: list[str] = []

    def _hook(self, name: str, node: ast.expr) -> ast.expr:
        self.replaced.append(name)
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[node], keywords=[])

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        self.generic_visit(node)
        if any(isinstance(k, ast.Constant) and k.value == "protocol" for k in node.keys):
            return self._hook("__config__", node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "filesystem" and \
                isinstance(func.value, ast.Name) and func.value.id == "fsspec":
            self.replaced.append("__filesystem__")
            node.func = ast.Name(id="__filesystem__", ctx=ast.Load())
        elif isinstance(func, ast.Attribute) and func.attr == "transfer_files":
            params = ("filepaths", "target_table", "target_path")
            node.args = [self._argument(params[i], arg) for i, arg in enumerate(node.args)]
            for keyword in node.keywords:
                keyword.value = self._argument(keyword.arg, keyword.value)
        return node

    def _argument(self, param: str | None, value: ast.expr) -> ast.expr:
        if param == "filepaths" and isinstance(value, ast.List):
            value.elts = [self._hook("__source_path__", e) if isinstance(e, ast.Constant) else e for e in value.elts]
        elif param == "target_path" and isinstance(value, ast.Constant):
            return self._hook("__target_url__", value)
        return value


def earlier_imports(heading: str) -> ast.Module:
    """The import statements of the (ported) blocks above ``heading``: the document's examples
    build on each other (two use ``fsspec``, one the manager class, without importing them)."""
    headings = list(seed_blocks())
    statements = [node for earlier in headings[:headings.index(heading)]
                  for node in ast.parse(ported(earlier)).body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return ast.Module(body=statements, type_ignores=[])


def transfer_calls(heading: str) -> list[tuple[str, list[str]]]:
    """(target_table, seed file paths) of every ``transfer_files`` call of a block."""
    calls = []
    for node in ast.walk(ast.parse(seed_blocks()[heading])):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "transfer_files":
            named = dict(zip(("filepaths", "target_table"), node.args)) | {k.arg: k.value for k in node.keywords}
            calls.append((ast.literal_eval(named["target_table"]), ast.literal_eval(named["filepaths"])))
    return calls


# --- the local stores ---------------------------------------------------------------------------

class Store:
    """A place files can be read from or written to, with paths in its fsspec syntax."""

    protocol: str

    def filesystem(self) -> fsspec.AbstractFileSystem:
        raise NotImplementedError

    def rebase(self, seed_path: str) -> str:
        """The seed's path (absolute or relative) inside this store's sandbox."""
        raise NotImplementedError

    def url(self, path: str) -> str:
        return f"{self.protocol}://{path}"

    def config(self, seed_config: dict) -> dict:
        location = {"target_path": self.rebase(seed_config["target_path"])} if "target_path" in seed_config else {}
        return {"protocol": self.protocol, **self.options(), **location}

    def options(self) -> dict:
        return {}

    def write(self, path: str, data: bytes) -> None:
        fs = self.filesystem()
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.pipe_file(path, data)

    def read(self, path: str) -> bytes:
        fs = self.filesystem()
        fs.invalidate_cache()
        return fs.cat_file(path)

    def names(self, directory: str) -> list[str]:
        fs = self.filesystem()
        fs.invalidate_cache()
        if not fs.exists(directory):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(directory, detail=False))


class MemoryStore(Store):
    protocol = "memory"

    def __init__(self, tag: str):
        self.root = f"/seed-{tag}"

    def filesystem(self):
        return fsspec.filesystem("memory")

    def rebase(self, seed_path):
        return f"{self.root}/{seed_path.lstrip('/')}"


class LocalStore(Store):
    protocol = "file"

    def __init__(self, directory: Path):
        self.root = directory

    def filesystem(self):
        return fsspec.filesystem("file")

    def rebase(self, seed_path):
        return f"{self.root}/{seed_path.lstrip('/')}"

    def write(self, path, data):  # written and read with plain file I/O: independent of fsspec
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)

    def read(self, path):
        return Path(path).read_bytes()

    def names(self, directory):
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


class SftpStore(LocalStore):
    """The sshd runs on this machine as this user: its files are checked with plain file I/O."""

    protocol = "sftp"

    def __init__(self, directory: Path, sshd):
        super().__init__(directory)
        self.sshd = sshd

    def options(self):
        return self.sshd.fsspec_sftp_options()

    def filesystem(self):
        return fsspec.filesystem("sftp", **self.options())

    def url(self, path):
        return f"sftp://{self.sshd.host}:{self.sshd.port}{path}"


class S3Store(Store):
    protocol = "s3"

    def __init__(self, s3, bucket: str):
        self.s3, self.bucket = s3, bucket

    def options(self):
        return self.s3.storage_options()

    def filesystem(self):
        return fsspec.filesystem("s3", **self.options())

    def rebase(self, seed_path):
        return f"{self.bucket}/{seed_path.lstrip('/')}"

    def config(self, seed_config):
        # The bucket is ours; the seed's bucket-relative target_path is kept as written.
        location = {"target_path": seed_config["target_path"]} if "target_path" in seed_config else {}
        return {"protocol": "s3", "bucket": self.bucket, **self.options(), **location}


@pytest.fixture
def stores(request, tmp_path):
    """``stores(kind, role)`` -> a fresh sandbox in one of the four local stores."""

    def make(kind: str, role: str) -> Store:
        tag = f"{role}-{uuid.uuid4().hex[:8]}"
        if kind == "memory":
            return MemoryStore(tag)
        if kind == "local":
            return LocalStore(tmp_path / tag)
        if kind == "s3":
            s3 = request.getfixturevalue("s3")
            return S3Store(s3, s3.create_bucket(f"seed-{tag}"))
        if kind == "sftp":
            return SftpStore(tmp_path / tag, request.getfixturevalue("sshd"))
        raise AssertionError(kind)

    return make


class Sandbox:
    """The hooks the transformed seed code calls; remembers what it created and where files go."""

    def __init__(self, source: Store, target: Store, roles: dict[str, Store] | None = None):
        self.source, self.target = source, target
        self.roles = roles or {**{p: source for p in SOURCE_PROTOCOLS}, **{p: target for p in TARGET_PROTOCOLS}}
        self.bases: list[str] = []  # where target_path values point, in the target store's syntax
        self.sources: dict[str, bytes] = {}  # seed path -> the bytes created for it

    def config(self, seed_config: dict) -> dict:
        store = self.roles[seed_config["protocol"]]
        if "target_path" in seed_config and store is self.target:
            self.bases.append(store.rebase(seed_config["target_path"]).rstrip("/"))
        return store.config(seed_config)

    def filesystem(self, protocol: str, *args, **kwargs):
        if protocol == "file":  # the seed's own local filesystem: kept
            return fsspec.filesystem("file", *args, **kwargs)
        return self.roles[protocol].filesystem()

    def source_path(self, seed_path: str) -> str:
        path = self.source.rebase(seed_path)
        data = os.urandom(SOURCE_BYTES)
        self.source.write(path, data)
        self.sources[seed_path] = data
        return path

    def target_url(self, seed_url: str) -> str:
        _, bucket_and_path = split_protocol(seed_url)
        path = self.target.rebase(bucket_and_path.split("/", 1)[1])  # the seed's bucket -> ours
        self.bases.append(path.rstrip("/"))
        return self.target.url(path)

    def run(self, heading: str) -> dict:
        transformer = SeedValues()
        tree = ast.fix_missing_locations(transformer.visit(ast.parse(ported(heading))))
        assert transformer.replaced, f"nothing substituted in {heading!r}"
        namespace = {"__config__": self.config, "__filesystem__": self.filesystem,
                     "__source_path__": self.source_path, "__target_url__": self.target_url}
        exec(compile(earlier_imports(heading), f"<imports before: {heading}>", "exec"), namespace)  # noqa: S102
        exec(compile(tree, f"<seed: {heading}>", "exec"), namespace)  # noqa: S102 - the seed's own example
        return namespace

    def assert_published(self, base: str, table: str, seed_paths: list[str]) -> None:
        table_dir = f"{base}/{table}"
        for seed_path in seed_paths:
            name = posixpath.basename(seed_path)
            assert self.target.read(f"{table_dir}/{name}") == self.sources[seed_path]
        visible = [n for n in self.target.names(table_dir) if not n.startswith(("_", "."))]
        assert visible == sorted(posixpath.basename(p) for p in seed_paths)
        assert self.target.names(f"{table_dir}/{STAGING_DIR}") == []  # no run's staging left


def managers_in(namespace: dict) -> list:
    return [v for v in namespace.values() if isinstance(v, (FSSpecFileTransferManager, UnifiedFileTransferManager))]


# --- the seed's examples ----------------------------------------------------------------------

def test_the_embedded_copy_is_the_seed_document():
    if not SEED.exists():
        pytest.skip(f"{SEED} is not in this checkout; the tests run the embedded copy of its blocks")
    assert seed_blocks() == EMBEDDED_SEED_BLOCKS


def test_the_public_signatures_are_the_seeds():
    def parameters(obj):
        return [(p.name, p.kind.name, p.default) for p in inspect.signature(obj).parameters.values()]

    empty = inspect.Parameter.empty
    assert parameters(FSSpecFileTransferManager) == [
        (name, "POSITIONAL_OR_KEYWORD", None)
        for name in ("source_fs_config", "target_fs_config", "source_fs", "target_fs", "transfer_options")]
    assert parameters(UnifiedFileTransferManager) == [
        ("use_fsspec", "POSITIONAL_OR_KEYWORD", False), ("fsspec_config", "POSITIONAL_OR_KEYWORD", None),
        ("source_fs", "POSITIONAL_OR_KEYWORD", None), ("target_fs", "POSITIONAL_OR_KEYWORD", None),
        ("traditional_kwargs", "VAR_KEYWORD", empty)]
    for cls in (FSSpecFileTransferManager, UnifiedFileTransferManager):
        assert parameters(cls.transfer_files) == [
            ("self", "POSITIONAL_OR_KEYWORD", empty), ("filepaths", "POSITIONAL_OR_KEYWORD", empty),
            ("target_table", "POSITIONAL_OR_KEYWORD", empty), ("target_path", "POSITIONAL_OR_KEYWORD", None)]
        assert parameters(cls.validate_config) == [("self", "POSITIONAL_OR_KEYWORD", empty)]
        assert parameters(cls.get_transfer_info) == [("self", "POSITIONAL_OR_KEYWORD", empty)]


def test_every_manager_call_of_the_seed_binds_to_our_signatures():
    classes = {"FSSpecFileTransferManager": FSSpecFileTransferManager,
               "UnifiedFileTransferManager": UnifiedFileTransferManager}
    bound = []
    for heading, code in seed_blocks().items():
        assert ported(heading).count(NEW_IMPORT) == code.count(OLD_IMPORT)
        tree = ast.parse(ported(heading))
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert all(n.module == "airflow_provider_impala_transfer.transfer" for n in imports)
        instances = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    isinstance(node.value.func, ast.Name) and node.value.func.id in classes:
                instances[node.targets[0].id] = classes[node.value.func.id]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            args = [object() for _ in node.args]
            kwargs = {k.arg: object() for k in node.keywords}
            if isinstance(node.func, ast.Name) and node.func.id in classes:
                inspect.signature(classes[node.func.id]).bind(*args, **kwargs)
                bound.append(node.func.id)
            elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and \
                    node.func.value.id in instances:
                method = getattr(instances[node.func.value.id], node.func.attr)
                inspect.signature(method).bind(None, *args, **kwargs)
                bound.append(f"{instances[node.func.value.id].__name__}.{node.func.attr}")
    assert sorted(bound) == sorted(["FSSpecFileTransferManager"] * 4 + ["FSSpecFileTransferManager.transfer_files"] * 4
                                   + ["UnifiedFileTransferManager", "UnifiedFileTransferManager.transfer_files"])


@pytest.mark.parametrize("target", BACKENDS)
def test_seed_configuration_block_configs_deliver(target, stores):
    """The seed's hdfs_config, s3_config and gcs_config, each the target of a transfer."""
    sandbox = Sandbox(stores("local", "source"), stores(target, "target"))
    sandbox.roles = {"hdfs": sandbox.target, "s3": sandbox.target, "gcs": sandbox.target}
    namespace = sandbox.run(CONFIGS)
    configs = ("hdfs_config", "s3_config", "gcs_config")
    assert len(sandbox.bases) == len(configs)
    published: dict[str, list[str]] = {}  # s3_config and gcs_config name the same target_path
    for name, base in zip(configs, sandbox.bases):
        seed_path = f"/local/path/{name}.csv"
        manager = FSSpecFileTransferManager(target_fs_config=namespace[name])
        assert manager.transfer_files([sandbox.source_path(seed_path)], "target_table") is True, manager.last_error
        published.setdefault(base, []).append(seed_path)
        sandbox.assert_published(base, "target_table", published[base])
    assert len(published) == 2


SEED_CASES = ([(CLOUD, "local", t) for t in BACKENDS]
              + [(h, s, t) for h in (CROSS, OBJECTS, MIXED) for s in BACKENDS for t in BACKENDS]
              + [(UNIFIED, "local", t) for t in BACKENDS])


@pytest.mark.parametrize(("heading", "source", "target"), SEED_CASES,
                         ids=[f"{h.split(' (')[0]}:{s}->{t}" for h, s, t in SEED_CASES])
def test_seed_example_runs_with_only_the_import_path_changed(heading, source, target, stores):
    sandbox = Sandbox(stores(source, "source"), stores(target, "target"))
    namespace = sandbox.run(heading)
    [manager] = managers_in(namespace)
    assert namespace["success"] is True, manager.last_error
    [(table, seed_paths)] = transfer_calls(heading)
    [base] = sandbox.bases
    sandbox.assert_published(base, table, seed_paths)
    assert [(r["bytes"], r["sha256"]) for r in manager.last_results] == \
        [(SOURCE_BYTES, hashlib.sha256(sandbox.sources[p]).hexdigest()) for p in seed_paths]
    assert manager.last_results[0]["path"].endswith(f"/{table}/{posixpath.basename(seed_paths[0])}")


def test_seed_s3_example_runs_verbatim_against_moto(s3, tmp_path, monkeypatch):
    """s3fs reads AWS_ENDPOINT_URL, so the block runs as written: bucket 'my-data-bucket', key
    'your-access-key', secret 'your-secret-key' (moto accepts any). Only the local path differs."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    s3.create_bucket("my-data-bucket")
    local = tmp_path / "local" / "path" / "file.csv"
    local.parent.mkdir(parents=True)
    data = os.urandom(300_000)
    local.write_bytes(data)
    code = ported(CLOUD)
    assert code.count("'/local/path/file.csv'") == 1
    namespace: dict = {}
    exec(compile(code.replace("'/local/path/file.csv'", repr(str(local))), "<seed s3 example>", "exec"), namespace)  # noqa: S102
    assert namespace["success"] is True, namespace["manager"].last_error
    client = s3.client()
    assert client.get_object(Bucket="my-data-bucket", Key="transfers/target_table/file.csv")["Body"].read() == data
    assert [o["Key"] for o in client.list_objects_v2(Bucket="my-data-bucket")["Contents"]] == \
        ["transfers/target_table/file.csv"]


# --- streaming, verification, publishing ---------------------------------------------------------

def _write_random(path: Path, size: int, block: int = 1 << 20) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for offset in range(0, size, block):
            chunk = os.urandom(min(block, size - offset))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_large_file_is_streamed_in_blocks_never_held_whole(tmp_path):
    size = 64 << 20
    source = tmp_path / "extract" / "events-part-00000.parquet"
    expected = _write_random(source, size)
    manager = FSSpecFileTransferManager(target_fs_config={"protocol": "file", "target_path": str(tmp_path / "warehouse")},
                                        transfer_options={"chunk_size": 1 << 20})
    tracemalloc.start()
    try:
        ok = manager.transfer_files([str(source)], "events")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ok is True, manager.last_error
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a {size >> 20} MiB file"
    assert manager.last_results[0]["bytes"] == size and manager.last_results[0]["sha256"] == expected
    assert _sha256(tmp_path / "warehouse" / "events" / source.name) == expected


def test_a_second_transfer_replaces_the_same_name_and_leaves_other_files(tmp_path):
    table_dir = tmp_path / "warehouse" / "events"
    table_dir.mkdir(parents=True)
    (table_dir / "other-writer.parquet").write_bytes(b"not ours")
    manager = FSSpecFileTransferManager(target_fs_config={"protocol": "file", "target_path": str(tmp_path / "warehouse")})
    source = tmp_path / "extract" / "part-0.parquet"
    source.parent.mkdir()
    for version in (b"first " * 1000, b"second, shorter"):
        source.write_bytes(version)
        assert manager.transfer_files([str(source)], "events") is True, manager.last_error
        assert (table_dir / "part-0.parquet").read_bytes() == version
    assert sorted(os.listdir(table_dir)) == [STAGING_DIR, "other-writer.parquet", "part-0.parquet"]
    assert os.listdir(table_dir / STAGING_DIR) == []


class DroppingFileSystem(LocalFileSystem):
    """Loses the last byte of every write and reports success: a truncated upload."""

    @staticmethod
    def damage(data: bytes) -> bytes:
        return data[:-1]

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        handle = super()._open(path, mode, block_size=block_size, **kwargs)
        if "w" in mode:
            write = handle.write
            handle.write = lambda data: write(self.damage(bytes(data))) and len(data)
        return handle


class FlippingFileSystem(DroppingFileSystem):
    """Changes the first byte of every write: same size, different bytes."""

    @staticmethod
    def damage(data: bytes) -> bytes:
        return bytes([data[0] ^ 0xFF]) + data[1:] if data else data


@pytest.mark.parametrize(("filesystem", "shown"), [(DroppingFileSystem, "bytes"), (FlippingFileSystem, "sha256")])
def test_a_damaged_copy_returns_false_and_keeps_the_previous_file(filesystem, shown, tmp_path, caplog):
    warehouse = tmp_path / "warehouse"
    source = tmp_path / "extract" / "part-0.parquet"
    source.parent.mkdir()
    source.write_bytes(b"previous run")
    assert FSSpecFileTransferManager().transfer_files([str(source)], "events", target_path=str(warehouse))
    source.write_bytes(os.urandom(300_000))
    caplog.set_level(logging.INFO, logger=LOGGER)
    manager = FSSpecFileTransferManager(target_fs=filesystem(), transfer_options={"chunk_size": 64 << 10})
    assert manager.transfer_files([str(source)], "events", target_path=str(warehouse)) is False
    assert "differs from the extracted file" in manager.last_error and shown in manager.last_error
    assert (warehouse / "events" / "part-0.parquet").read_bytes() == b"previous run"
    assert os.listdir(warehouse / "events" / STAGING_DIR) == []
    assert manager.last_results == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("events: transfer failed while verifying")


def test_a_missing_source_file_returns_false_with_the_reason(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    manager = FSSpecFileTransferManager(target_fs_config={"protocol": "memory", "target_path": f"/missing-{uuid.uuid4().hex}"})
    assert manager.transfer_files([str(tmp_path / "nope.parquet")], "events") is False
    assert "FileNotFoundError" in manager.last_error and "nope.parquet" in manager.last_error
    assert [r.levelname for r in caplog.records if r.name == LOGGER] == ["ERROR"]


def test_an_unreachable_store_returns_false_and_never_shows_its_password(tmp_path, caplog, closed_port):
    password = f"pw-{uuid.uuid4().hex}"
    source = tmp_path / "part-0.parquet"
    source.write_bytes(b"x" * 1000)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    manager = FSSpecFileTransferManager(target_fs_config={
        "protocol": "sftp", "host": "127.0.0.1", "port": closed_port, "username": "etl", "password": password,
        "timeout": 5, "target_path": f"sftp://etl:{password}@127.0.0.1/data"})
    assert manager.validate_config() is False
    assert manager.transfer_files([str(source)], "events") is False
    assert manager.last_error.startswith("connecting to the target (sftp): ")
    shown = [manager.last_error, caplog.text, repr(manager), repr(manager.get_transfer_info())]
    assert not [text for text in shown if password in text]
    assert manager.get_transfer_info()["target_fs_config"]["password"] == "***"
    assert manager.get_transfer_info()["target_fs_config"]["target_path"] == "sftp://etl:***@127.0.0.1/data"


def test_secrets_never_show_in_repr_info_or_logs_of_a_real_s3_transfer(s3, tmp_path, caplog):
    key, secret, token = f"AKIA{uuid.uuid4().hex[:16].upper()}", f"sec-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
    bucket = s3.create_bucket(f"secrets-{uuid.uuid4().hex[:8]}")
    endpoint = s3.storage_options()["client_kwargs"]
    source = tmp_path / "part-0.parquet"
    source.write_bytes(os.urandom(100_000))
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    manager = FSSpecFileTransferManager(target_fs_config={"protocol": "s3", "bucket": bucket, "target_path": "transfers",
                                                          "key": key, "secret": secret, "token": token,
                                                          "client_kwargs": endpoint})
    assert manager.transfer_files([str(source)], "events") is True, manager.last_error
    info = manager.get_transfer_info()
    assert {k: info["target_fs_config"][k] for k in ("key", "secret", "token")} == dict.fromkeys(("key", "secret", "token"), "***")
    instance = FSSpecFileTransferManager(target_fs=fsspec.filesystem("s3", key=key, secret=secret, client_kwargs=endpoint))
    assert instance.get_transfer_info()["target_storage_options"]["secret"] == "***"
    shown = [repr(manager), repr(info), repr(instance), repr(instance.get_transfer_info()), caplog.text,
             repr(manager.last_results)]
    assert not [value for value in (key, secret, token) for text in shown if value in text]
    assert "published s3://" in caplog.text


def test_mask_secrets_covers_the_usual_names():
    assert api.mask_secrets({
        "account_name": "acct", "account_key": "k1", "sas_token": "k2", "password": "k3", "passphrase": "k4",
        "credential": {"client_id": "x"}, "connection_string": "k5", "client_kwargs": {"aws_secret_access_key": "k6"},
        "key_filename": "/keys/id", "url": "sftp://user:k7@host/x", "port": 22, "options": [{"secret": "k8"}],
        "policy": object(),
    }) == {
        "account_name": "acct", "account_key": "***", "sas_token": "***", "password": "***", "passphrase": "***",
        "credential": "***", "connection_string": "***", "client_kwargs": {"aws_secret_access_key": "***"},
        "key_filename": "***", "url": "sftp://user:***@host/x", "port": 22, "options": [{"secret": "***"}],
        "policy": "<object>",
    }


def test_the_module_imports_without_airflow():
    code = ("import sys, airflow_provider_impala_transfer.transfer; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "AIRFLOW_HOME": "/nonexistent/airflow-home"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- configuration errors ------------------------------------------------------------------------

def _file(tmp_path: Path, name: str = "part-0.parquet") -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"data")
    return str(path)


def _memory() -> fsspec.AbstractFileSystem:
    return fsspec.filesystem("memory")


CONFIG_ERRORS = [
    ("unknown protocol", lambda t: FSSpecFileTransferManager(target_fs_config={"protocol": "s4"}),
     r"^target_fs_config\.protocol: 's4' is not an fsspec protocol \(use one of "),
    ("protocol of a missing package", lambda t: FSSpecFileTransferManager(source_fs_config={"protocol": "abfs"}),
     r"^source_fs_config\.protocol: 'abfs' needs a package that is not installed: .*adlfs"),
    ("unknown transfer option", lambda t: FSSpecFileTransferManager(transfer_options={"chunksize": 1024}),
     r"^transfer_options: unknown option\(s\) 'chunksize' \(use chunk_size, verify\)"),
    ("chunk size", lambda t: FSSpecFileTransferManager(transfer_options={"chunk_size": "1MB"}),
     r"^transfer_options\.chunk_size: '1MB' is not a number of bytes > 0"),
    ("verify mode", lambda t: FSSpecFileTransferManager(transfer_options={"verify": "md5"}),
     r"^transfer_options\.verify: 'md5' is not a verification mode"),
    ("no target path", lambda t: FSSpecFileTransferManager(target_fs=_memory()).transfer_files([_file(t)], "events"),
     r"^target_path: is not set, so there is nowhere to put the files \(pass target_path="),
    ("table with a slash", lambda t: FSSpecFileTransferManager().transfer_files([_file(t)], "db/events", str(t / "w")),
     r"^target_table: 'db/events' is not a single path component"),
    ("hidden table", lambda t: FSSpecFileTransferManager().transfer_files([_file(t)], "_events", str(t / "w")),
     r"^target_table: '_events' starts with '\.' or '_'"),
    ("URL of another store", lambda t: FSSpecFileTransferManager(target_fs=_memory()).transfer_files(
        [_file(t)], "events", "s3://my-bucket/transfers/"),
     r"^target_path: 's3://my-bucket/transfers/' is a s3:// URL, but the target filesystem is memory"),
    ("relative segments", lambda t: FSSpecFileTransferManager().transfer_files([_file(t)], "events", "/data/../etc"),
     r"^target_path: '/data/\.\./etc' contains a '\.' or '\.\.' segment"),
    ("same name twice", lambda t: FSSpecFileTransferManager().transfer_files(
        [_file(t, "a/x.csv"), _file(t, "b/x.csv")], "events", str(t / "w")),
     r"^filepaths: two files are named 'x\.csv'"),
    ("a string, not a list", lambda t: FSSpecFileTransferManager().transfer_files(_file(t), "events", str(t / "w")),
     r"^filepaths: '.*part-0\.parquet' is not a list of paths"),
    ("unknown keyword", lambda t: UnifiedFileTransferManager(target_hdfs_path="hdfs://nn/x", target_hdfs_pth="/x"),
     r"^target_hdfs_pth: unknown setting\(s\) of UnifiedFileTransferManager"),
    ("unknown fsspec_config key", lambda t: UnifiedFileTransferManager(use_fsspec=True, fsspec_config={"chunk_size": 1}),
     r"^fsspec_config: unknown key\(s\) 'chunk_size' \(use source_fs_config, target_fs_config, transfer_options\)"),
    ("filesystems without use_fsspec", lambda t: UnifiedFileTransferManager(target_fs=_memory()),
     r"^use_fsspec: is False, but fsspec_config/source_fs/target_fs were given"),
    ("the seed's scheme-less distcp target", lambda t: UnifiedFileTransferManager(
        target_cluster=None, target_hdfs_path="cluster2.example.com/target/path"),
     r"^target_hdfs_path: 'cluster2\.example\.com/target/path' has no scheme.*hdfs://cluster2\.example\.com/target/path"),
    ("nowhere to put files", lambda t: UnifiedFileTransferManager().transfer_files([_file(t)], "events"),
     r"^target_hdfs_path: is not set and scp is not configured"),
    ("relative scp path", lambda t: UnifiedFileTransferManager(scp_target_host="edge", scp_target_path="incoming"),
     r"^scp_target_path: 'incoming' is not an absolute path"),
    ("traditional verify mode", lambda t: UnifiedFileTransferManager(target_hdfs_path="file:///x", verify="crc"),
     r"^verify: 'crc' is not a verification mode"),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in CONFIG_ERRORS], ids=[c[0] for c in CONFIG_ERRORS])
def test_configuration_errors_name_the_setting_and_the_fix(make, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        make(tmp_path)
    assert not (tmp_path / "w").exists()  # raised before anything was written


# --- UnifiedFileTransferManager -------------------------------------------------------------------

def test_unified_with_fsspec_uses_the_fsspec_manager(tmp_path):
    source = _file(tmp_path / "extract")
    manager = UnifiedFileTransferManager(use_fsspec=True, fsspec_config={
        "target_fs_config": {"protocol": "file", "target_path": str(tmp_path / "warehouse")},
        "transfer_options": {"chunk_size": 1024}})
    assert manager.validate_config() is True
    assert manager.transfer_files([source], "events") is True, manager.last_error
    assert (tmp_path / "warehouse" / "events" / "part-0.parquet").read_bytes() == b"data"
    assert manager.get_transfer_info()["use_fsspec"] is True
    assert manager.get_transfer_info()["transfer_options"] == {"chunk_size": 1024, "verify": "sha256"}
    assert manager.last_results[0]["sha256"] == hashlib.sha256(b"data").hexdigest()
    assert [(a["method"], a["delivered"]) for a in manager.last_attempts] == [("fsspec", True)]


def test_unified_traditional_delivers_with_hdfs_put_to_real_hdfs_verified_by_crc32c(hadoop_env, tmp_path, caplog):
    secret = f"credstore-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    warehouse = f"hdfs://cluster2/api/{uuid.uuid4().hex[:8]}/warehouse"
    sources = [tmp_path / "extract" / f"events-part-{i:05d}.parquet" for i in range(2)]
    digests = [_write_random(path, 2_200_000 + i) for i, path in enumerate(sources)]  # two blocks each
    manager = UnifiedFileTransferManager(use_distcp=False, target_hdfs_path=warehouse,
                                         command_timeout=120, hadoop_env={"HADOOP_CREDSTORE_PASSWORD": secret})
    assert manager.validate_config() is True
    assert manager.transfer_files([str(p) for p in sources], "events") is True, manager.last_error
    assert [(a["method"], a["delivered"], a["error"]) for a in manager.last_attempts] == [("hdfs_put", True, None)]
    table_dir = f"{warehouse}/events"
    assert [hashlib.sha256(hdfs_bytes(hadoop_env, f"{table_dir}/{p.name}")).hexdigest() for p in sources] == digests
    assert hdfs_names(hadoop_env, table_dir) == [p.name for p in sources]
    assert hdfs_names(hadoop_env, f"{table_dir}/{STAGING_DIR}") == []
    assert [r["path"] for r in manager.last_results] == [f"{table_dir}/{p.name}" for p in sources]
    assert "events: hdfs_put delivered" in caplog.text
    assert "-checksum" in caplog.text and " -cat " not in caplog.text  # HDFS's CRC32C, nothing read back
    info = manager.get_transfer_info()
    assert info["chain"] == ["hdfs_put", "hdfs_cp", "scp"] and info["hadoop_env"] == {"HADOOP_CREDSTORE_PASSWORD": "***"}
    assert not [text for text in (caplog.text, repr(manager), repr(info)) if secret in text]


def test_unified_traditional_falls_back_to_scp_when_no_namenode_answers(hadoop_env, sshd, closed_port, tmp_path,
                                                                         caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    nowhere = f"hdfs://127.0.0.1:{closed_port}"  # the real Hadoop client, and nothing listening there
    landing = tmp_path / "landing zone"
    source = tmp_path / "extract" / "events-part-00000.parquet"
    digest = _write_random(source, 500_000)
    manager = UnifiedFileTransferManager(
        target_hdfs_path=f"{nowhere}/warehouse", source_hdfs_path=f"{nowhere}/source-staging", command_timeout=120,
        scp_target_host=sshd.host, scp_target_path=str(landing), scp_user=sshd.user, scp_port=sshd.port,
        scp_key_file=str(sshd.key_file), scp_known_hosts=str(sshd.known_hosts))
    assert manager.transfer_files([str(source)], "events") is True, manager.last_error
    attempts = manager.last_attempts
    assert [(a["method"], a["delivered"]) for a in attempts] == \
        [("distcp", False), ("hdfs_put", False), ("hdfs_cp", False), ("scp", True)]
    assert all(a["error"].startswith("hdfs exited with 1: ") for a in attempts[:3])  # distcp: staging on the source
    assert "Connection refused" in caplog.text  # the tool's own words, in the log
    assert _sha256(landing / "events" / source.name) == digest
    assert os.listdir(landing / "events" / STAGING_DIR) == []
    assert manager.last_results[0]["method"] == "scp" and manager.last_results[0]["sha256"] == digest
    summary = [r.getMessage() for r in caplog.records if r.getMessage().endswith("; scp delivered")]
    assert len(summary) == 1 and summary[0].startswith("events: distcp failed (hdfs exited with 1: ")
    assert summary[0].count("failed (") == 3

# The document's ```python blocks, as of this writing: the tests use the document itself when it
# is present (and check this copy still matches it), this copy otherwise.
EMBEDDED_SEED_BLOCKS = {
    '5. FSSpec (Filesystem Abstraction)': """\
# HDFS configuration
hdfs_config = {
    'protocol': 'hdfs',
    'host': 'namenode.example.com',
    'port': 8020,
    'user': 'hdfs',
    'target_path': '/user/data/transfers'
}

# S3 configuration
s3_config = {
    'protocol': 's3',
    'bucket': 'my-bucket',
    'key': 'your-access-key',
    'secret': 'your-secret-key',
    'target_path': 'transfers/'
}

# GCS configuration
gcs_config = {
    'protocol': 'gcs',
    'bucket': 'my-gcs-bucket',
    'project': 'my-gcp-project',
    'token': '/path/to/service-account.json',
    'target_path': 'transfers/'
}
""",
    'Cloud Storage Transfer (FSSpec)': """\
# Using FSSpec for S3 transfer
from impala_transfer.transfer import FSSpecFileTransferManager

s3_config = {
    'protocol': 's3',
    'bucket': 'my-data-bucket',
    'key': 'your-access-key',
    'secret': 'your-secret-key',
    'target_path': 'transfers/'
}

manager = FSSpecFileTransferManager(target_fs_config=s3_config)
success = manager.transfer_files(['/local/path/file.csv'], "target_table")
""",
    'Cross-Platform Transfer (FSSpec)': """\
# Transfer from HDFS to S3
from impala_transfer.transfer import FSSpecFileTransferManager

source_config = {
    'protocol': 'hdfs',
    'host': 'namenode.example.com',
    'port': 8020,
    'user': 'hdfs'
}

target_config = {
    'protocol': 's3',
    'bucket': 'my-bucket',
    'key': 'your-access-key',
    'secret': 'your-secret-key',
    'target_path': 'transfers/'
}

manager = FSSpecFileTransferManager(
    source_fs_config=source_config,
    target_fs_config=target_config
)

success = manager.transfer_files(['/user/data/file.csv'], "target_table")
""",
    'Using Filesystem Objects Directly (FSSpec)': """\
# Create filesystem instances directly
import fsspec
from impala_transfer.transfer import FSSpecFileTransferManager

# Create filesystem instances
s3_fs = fsspec.filesystem('s3', 
                         key='your-access-key',
                         secret='your-secret-key',
                         bucket='my-bucket')

hdfs_fs = fsspec.filesystem('hdfs', 
                           host='namenode.example.com',
                           port=8020,
                           user='hdfs')

# Use filesystem instances directly
manager = FSSpecFileTransferManager(
    source_fs=hdfs_fs,
    target_fs=s3_fs,
    transfer_options={'chunk_size': 1024*1024}  # 1MB chunks
)

# Transfer with explicit target path
success = manager.transfer_files(
    filepaths=['/user/data/file.csv'],
    target_table='my_table',
    target_path='s3://my-bucket/transfers/'
)
""",
    'Mixed Configuration (Filesystem Objects + Config)': """\
# Use filesystem object for source, config for target
source_fs = fsspec.filesystem('sftp',
                             host='sftp.example.com',
                             username='user',
                             password='pass')

target_config = {
    'protocol': 'abfs',  # Azure Blob Storage
    'account_name': 'myaccount',
    'account_key': 'my-key',
    'container': 'my-container',
    'target_path': '/data/'
}

manager = FSSpecFileTransferManager(
    source_fs=source_fs,
    target_fs_config=target_config
)

success = manager.transfer_files(['/remote/path/file.txt'], "logs_table")
""",
    'Using with Unified Transfer Manager': """\
# Use filesystem objects with the unified manager
from impala_transfer.transfer import UnifiedFileTransferManager

local_fs = fsspec.filesystem('file')
gcs_fs = fsspec.filesystem('gcs', 
                          project='my-project',
                          token='path/to/credentials.json')

unified_manager = UnifiedFileTransferManager(
    use_fsspec=True,
    source_fs=local_fs,
    target_fs=gcs_fs,
    fsspec_config={'transfer_options': {'chunk_size': 512*1024}}
)

success = unified_manager.transfer_files(
    filepaths=['/local/path/file.parquet'],
    target_table='analytics_table',
    target_path='gs://my-bucket/analytics/'
)
""",
}
