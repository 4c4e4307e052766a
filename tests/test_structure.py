"""The package's shape: one error tree, imports pointing downward, declared dependencies that match
the imports, and a wheel that holds the product only."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import airflow_provider_impala_transfer as package
from airflow_provider_impala_transfer.core import errors
from airflow_provider_impala_transfer.core.errors import ImpalaTransferError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(package.__file__).parent
NAME = "airflow_provider_impala_transfer"
# Raised on purpose but not errors: Airflow's signal that a task has nothing to do.
# Airflow's own verdicts: skip, fail without retrying, succeed and skip what follows
CONTROL_FLOW = {"AirflowSkipException", "AirflowFailException", "DownstreamTasksSkipped"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        dotted = ".".join((NAME, *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        found[dotted] = ast.parse(path.read_text(), str(path))
    return found


def imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def raised_classes() -> dict[str, type]:
    """Every class the package's own code names in ``raise Class(...)``."""
    raised = {}
    for dotted, tree in modules().items():
        module = importlib.import_module(dotted)
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else None
                target = getattr(module, name, None) if name else None
                if inspect.isclass(target):
                    raised[f"{dotted}:{name}"] = target
    return raised


def test_every_error_raised_on_purpose_is_an_impala_transfer_error():
    raised = raised_classes()
    assert len(raised) > 30  # the scan sees the package's raises
    strays = {where: cls.__name__ for where, cls in raised.items()
              if not issubclass(cls, ImpalaTransferError) and cls.__name__ not in CONTROL_FLOW
              and cls is not AttributeError}  # Resolved.__getattr__ keeps Python's attribute protocol
    assert strays == {}


def test_one_except_catches_every_stage_and_config_errors_stay_value_errors():
    stages = [errors.ConfigError("f", "p"), errors.SourceError("s"), errors.ExtractError("e"),
              errors.ToolNotFound("t"), errors.CommandFailed(["hdfs", "dfs"], 1, "tail"), errors.Stopped("s"),
              errors.VerificationError("v"), errors.PublishError("p"), errors.TargetTableError("t"),
              errors.ReconcileError("r")]
    for error in stages:
        with pytest.raises(ImpalaTransferError):
            raise error
    assert isinstance(errors.ConfigError("f", "p"), ValueError)
    assert issubclass(errors.VerificationError, errors.TransferError)
    assert not issubclass(errors.ReconcileError, errors.ExtractError)  # a count mismatch is not an extract error
    assert str(errors.ConfigError("chunk_size", "'x' is not a whole number", "give a whole number > 0")) == \
        "chunk_size: 'x' is not a whole number (give a whole number > 0)"


# Which folder may import which: the core's subsystems only from the shared rules below them,
# the core nothing above it; adapters (hooks, operators, task groups, CLI, compat) from the core.
LAYERS = {
    "core.errors": set(),
    "core.common": {"core.errors", "core.common"},
    "core.extract": {"core.errors", "core.common", "core.extract"},
    "core.transfer": {"core.errors", "core.common", "core.transfer"},
    "core.table": {"core.errors", "core.common", "core.table"},
    "core.reconcile": {"core.errors", "core.common"},
    "core.export": {"core.errors", "core.common", "core.extract", "core.transfer"},  # runs on both sides
    "core.staging": {"core.errors", "core.common", "core.transfer"},
}
# The one rule for secrets, which the error tree applies to every message: a leaf that imports
# nothing of the package, so the error tree below everything may use it.
LEAF_RULES = {"core.errors": {f"{NAME}.core.common.secrets"}}


def _layer(dotted: str) -> str:
    inner = dotted.removeprefix(NAME + ".")
    parts = inner.split(".")
    return ".".join(parts[:2]) if parts[0] == "core" and len(parts) > 1 else parts[0]


def test_imports_point_downward_and_the_core_imports_no_airflow():
    wrong = []
    for dotted, tree in modules().items():
        layer = _layer(dotted)
        for name in imported_modules(tree):
            in_core = layer.startswith("core")
            if in_core and name.split(".")[0] == "airflow":
                wrong.append(f"{dotted} imports {name}")
            if not name.startswith(NAME + ".") or name in LEAF_RULES.get(layer, ()):
                continue
            target = _layer(name)
            if (layer in LAYERS and target not in LAYERS[layer]) or (in_core and not target.startswith("core")):
                wrong.append(f"{dotted} imports {name}")
    for leaf in set().union(*LEAF_RULES.values()):
        wrong += [f"{leaf} imports {name}" for name in imported_modules(modules()[leaf]) if name.startswith(NAME + ".")]
    assert wrong == []


def _distribution_of(module: str, files: dict[Path, str]) -> str | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    return files.get(Path(spec.origin).resolve())


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# The modules an optional extra serves, and the extra: only they may import its packages (or what
# those packages install); the provider calls them only when the extra is installed.
OPTIONAL_MODULES = {f"{NAME}.operators.lineage": "openlineage", f"{NAME}.core.common.gssapi": "kerberos"}


def _requirement_name(req: str) -> str:
    return _normalize(req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip())


def test_declared_dependencies_are_exactly_the_packages_imported():
    files = {}
    for dist in metadata.distributions():
        for f in dist.files or ():
            files[Path(dist.locate_file(f)).resolve()] = _normalize(dist.metadata["Name"])
    imported, optional = set(), {extra: set() for extra in OPTIONAL_MODULES.values()}
    for dotted, tree in modules().items():
        for name in imported_modules(tree):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == NAME:
                continue
            dist = _distribution_of(name, files)
            assert dist is not None, f"{name} is imported but comes from no installed distribution"
            # apache-airflow is the meta package of airflow-core and the task SDK
            dist = "apache-airflow" if dist in ("apache-airflow-core", "apache-airflow-task-sdk") else dist
            (optional[OPTIONAL_MODULES[dotted]] if dotted in OPTIONAL_MODULES else imported).add(dist)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(req) for req in project["dependencies"]}
    assert imported - declared == set(), "imported but not declared"
    assert declared - imported == set(), "declared but not imported"
    for extra, used in optional.items():
        packages = {_requirement_name(req) for req in project["optional-dependencies"][extra]}
        brought = {_requirement_name(req) for p in packages for req in metadata.requires(p) or ()
                   if "extra ==" not in req}
        assert used - declared - packages - brought == set(), f"imported but not installed by [{extra}]"
        assert packages - used == set(), f"in [{extra}] but not imported"


def test_the_package_works_without_its_optional_extras():
    """With the OpenLineage code unimportable every module but operators/lineage.py imports: the
    operators import it only inside the method the OpenLineage provider calls. (The provider's
    registration stays importable: Airflow reads every installed provider's when it configures.)"""
    blocker = (
        "import importlib, sys\n"
        "REGISTRATION = ('airflow.providers.openlineage', 'airflow.providers.openlineage.get_provider_info')\n"
        "class Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'openlineage' or (\n"
        "                name.startswith('airflow.providers.openlineage.') and name not in REGISTRATION):\n"
        "            raise ImportError(f'{name} is not installed')\n"
        "sys.meta_path.insert(0, Blocked())\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
    )
    names = [m for m in modules() if m not in OPTIONAL_MODULES]
    result = subprocess.run([sys.executable, "-c", blocker, *names], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_wheel_holds_the_product_and_no_test_servers(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".hadoop", ".demo", ".bench",
                                                                "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=300, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("airflow_provider_impala_transfer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if n.endswith(".py")]
    assert all(n.startswith(NAME + "/") for n in code), [n for n in code if not n.startswith(NAME + "/")]
    assert not [n for n in names if "/testing/" in n or n.startswith("tests/") or "local_" in n]
    for needed in ("core/errors.py", "core/common/records.py", "core/extract/extract.py",
                   "core/transfer/methods.py", "core/table/publish.py", "compat/seed_managers.py",
                   "transfer.py", "cli/main.py", "operators/transfer.py"):
        assert f"{NAME}/{needed}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "impala-transfer = airflow_provider_impala_transfer.cli.main:console" in \
        zipfile.ZipFile(wheel).read(entry_points).decode()


# Operators whose execute opens no connection (and so no ticket cache of a keytab login).
OPENS_NO_CONNECTION = {"ChunkDeliveredOperator", "TransferRouteOperator"}


def test_every_operator_that_opens_connections_removes_its_keytab_tickets_when_execute_ends():
    """A connection with ``principal`` + ``keytab`` opens a private ticket cache on first use
    (core/common/kerberos.py); ``@closes_tickets`` on ``execute`` is what removes it with the task."""
    missing = []
    for dotted, tree in modules().items():
        if not dotted.startswith(f"{NAME}.operators."):
            continue
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            for method in cls.body:
                if isinstance(method, ast.FunctionDef) and method.name == "execute" and cls.name not in OPENS_NO_CONNECTION:
                    if not any(isinstance(d, ast.Name) and d.id == "closes_tickets" for d in method.decorator_list):
                        missing.append(f"{dotted}.{cls.name}.execute")
    assert missing == []
