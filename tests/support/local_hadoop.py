"""``hdfs`` and ``hadoop`` executables for tests: Hadoop's real filesystem shell, and a stand-in distcp.

The transfer methods shell out to ``hdfs dfs ...`` and ``hadoop distcp ...``. No Hadoop distribution
runs here, but the ``pyspark`` wheel ships the Hadoop client jars, so :func:`install_hadoop_tools`
writes:

* ``hdfs``: ``hdfs dfs ARGS`` runs the REAL ``org.apache.hadoop.fs.FsShell`` with ARGS unchanged
  (same stdout, stderr and exit code). With the empty ``core-site.xml`` written here the default
  filesystem is ``file://``, so every command works on local paths and ``file://`` URIs.
* ``hadoop``: a FAKE ``hadoop distcp`` (see :func:`fake_hadoop_main`). DistCp needs YARN or a
  MapReduce runtime, which cannot run here; distcp itself is only exercised for real on a cluster.

Things Hadoop's local filesystem does that a test may trip over:

* It is a checksummed filesystem: every file it writes gets a hidden ``.<name>.crc`` sibling.
  ``-ls`` hides them, ``os.listdir`` does not; ``-mv`` and ``-rm`` take them along.
* Names are not arbitrary: spaces, unicode, quotes, ``$(x)``, ``;`` are plain characters (no shell
  is involved anywhere), but FsShell expands globs (``* ? [ ] { }``; ``\\`` escapes, so ``a\\b``
  names ``ab``), ``:`` is refused (``Relative path in absolute URI``; a file with ``:`` in its name
  even breaks globbing in its directory), ``#`` starts a URI fragment in some commands, and ``%20``
  is decoded in ``-put``'s local sources but not elsewhere. Measured with Hadoop 3.5.0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.support.local_hiveserver import pyspark_home

FAKE_DISTCP_LOG_ENV = "FAKE_DISTCP_LOG"  # JSON lines, one per `hadoop distcp` invocation
FAKE_DISTCP_REJECT_ENV = "FAKE_DISTCP_REJECT"  # a source URI containing this substring fails the copy

# DistCpConstants return codes as the shell sees them (DistCp.main calls System.exit(code) -> & 0xff).
DISTCP_SUCCESS = 0
DISTCP_INVALID_ARGUMENT = -1 & 0xFF  # 255
DISTCP_UNKNOWN_ERROR = -999 & 0xFF  # 25

FSSHELL_CLASS = "org.apache.hadoop.fs.FsShell"
# A short-lived client JVM: C1 only, small heap, no JVM log lines on stdout (they would corrupt
# `-cat` output). With the class archive below a call takes ~0.35 s on an idle 2-core machine.
JVM_OPTIONS = ["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx256m", "-Xlog:disable", "-Xlog:all=error:stderr"]
# The jars FsShell needs (the shaded Hadoop client and logging). Loading only these instead of all
# ~280 pyspark jars takes ~0.25 s off every JVM start.
CLIENT_JAR_PATTERNS = ["hadoop-client-api-*.jar", "hadoop-client-runtime-*.jar", "slf4j-api-*.jar",
                       "log4j-slf4j2-impl-*.jar", "log4j-api-*.jar", "log4j-core-*.jar",
                       "jcl-over-slf4j-*.jar"]

CORE_SITE = "<?xml version=\"1.0\"?>\n<configuration/>\n"  # Hadoop 3.5 refuses to start without one
LOG4J2_PROPERTIES = """\
# Hadoop warns about native libraries on every start; only errors are worth a line.
status = error
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = STDERR
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{2}: %m%n
"""
CONF_JAR = "hadoop-conf.jar"
CLASS_ARCHIVE = "fsshell.jsa"


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home, "bin", "java"), os.X_OK):
        return str(Path(java_home, "bin", "java"))
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java not found on PATH: install a Java 17 runtime (openjdk-17-jre-headless)")
    return java


def hadoop_classpath(conf_dir: Path) -> str:
    """The configuration (``core-site.xml``, ``log4j2.properties``) first, then the Hadoop client jars.

    The configuration goes in as a small jar rather than the directory itself: the JVM's class-data
    archive (which halves start-up) refuses a non-empty directory on the class path.
    """
    conf_dir = Path(conf_dir)
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf_jar = conf_dir / CONF_JAR
    changed = _write_if_changed(conf_dir / "core-site.xml", CORE_SITE)
    changed |= _write_if_changed(conf_dir / "log4j2.properties", LOG4J2_PROPERTIES)
    if changed or not conf_jar.is_file():  # a rewritten jar would invalidate the class archive
        with zipfile.ZipFile(conf_jar, "w") as jar:
            jar.write(conf_dir / "core-site.xml", "core-site.xml")
            jar.write(conf_dir / "log4j2.properties", "log4j2.properties")
    return os.pathsep.join([str(conf_jar), *_client_jars()])


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def _client_jars() -> list[str]:
    jars_dir = pyspark_home() / "jars"
    found = []
    for pattern in CLIENT_JAR_PATTERNS:
        matches = sorted(jars_dir.glob(pattern))
        if not matches:  # another pyspark layout: take everything rather than guess
            return [str(jars_dir / "*")]
        found.append(str(matches[-1]))
    return found


def fsshell_argv(conf_dir: Path, *, class_archive: Path | None = None) -> list[str]:
    """``java ... FsShell``: append FsShell's own arguments (``-put``, ``-ls``, ...)."""
    archive = [f"-XX:SharedArchiveFile={class_archive}"] if class_archive else []
    return [java_binary(), *archive, *JVM_OPTIONS, "-cp", hadoop_classpath(conf_dir), FSSHELL_CLASS]


def _build_class_archive(conf_dir: Path, scratch: Path) -> Path | None:
    """Record the classes one FsShell copy loads, so later JVMs map them instead of loading them.

    Takes ~1.5 s once and saves ~35% of every later call. Best effort: without the archive every
    call still works, just slower. The archive is only valid for the exact class path and jar files
    it was made with, which is why the configuration jar is never rewritten needlessly.
    """
    archive = conf_dir / CLASS_ARCHIVE
    argv = fsshell_argv(conf_dir)
    argv.insert(1, f"-XX:ArchiveClassesAtExit={archive}")
    scratch.mkdir(parents=True, exist_ok=True)
    source = scratch / "warm-up.txt"
    source.write_text("warm-up\n")
    result = subprocess.run([*argv, "-put", "-f", str(source), f"file://{scratch}/warm-up-copy.txt"],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    return archive if result.returncode == 0 and archive.is_file() else None


HDFS_SCRIPT = '''\
#!{python} -I
"""`hdfs dfs ARGS` -> Hadoop's real FsShell with ARGS unchanged (written by local_hadoop.py)."""
import os
import sys

FSSHELL = {fsshell!r}

if sys.argv[1:2] != ["dfs"]:
    sys.stderr.write("hdfs: this local client only runs `hdfs dfs ...` (Hadoop's FsShell)\\n")
    sys.exit(1)
os.execv(FSSHELL[0], FSSHELL + sys.argv[2:])
'''

HADOOP_SCRIPT = '''\
#!{python} -I
"""A FAKE `hadoop distcp` for local tests (written by local_hadoop.py; see fake_hadoop_main)."""
import sys

sys.path.insert(0, {package_parent!r})
from tests.support.local_hadoop import fake_hadoop_main

sys.exit(fake_hadoop_main(sys.argv[1:], fsshell={fsshell!r}, default_log={default_log!r}))
'''


def install_hadoop_tools(bin_dir: Path, workdir: Path) -> dict[str, str]:
    """Write ``hdfs`` and ``hadoop`` into ``bin_dir``; return the environment additions to use them.

    The Java binary, class path and JVM options are written into the executables, so they work
    even under a scrubbed environment; the returned ``PATH`` puts ``bin_dir`` first and
    ``FAKE_DISTCP_LOG`` names the distcp invocation log (``workdir/distcp.jsonl``).
    """
    if any(c.isspace() for c in sys.executable):  # it goes into a "#!" line, which cannot quote
        raise RuntimeError(f"the Python path {sys.executable!r} contains whitespace: use a venv without")
    bin_dir, workdir = Path(bin_dir).resolve(), Path(workdir).resolve()
    bin_dir.mkdir(parents=True, exist_ok=True)
    conf_dir = workdir / "hadoop-conf"
    class_archive = _build_class_archive(conf_dir, workdir / "warm-up")
    fsshell = fsshell_argv(conf_dir, class_archive=class_archive)
    distcp_log = workdir / "distcp.jsonl"
    package_parent = str(Path(__file__).resolve().parents[2])  # the repository root (tests.support)
    _write_executable(bin_dir / "hdfs", HDFS_SCRIPT.format(python=sys.executable, fsshell=fsshell))
    _write_executable(bin_dir / "hadoop", HADOOP_SCRIPT.format(
        python=sys.executable, package_parent=package_parent, fsshell=fsshell, default_log=str(distcp_log)))
    return {
        "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", os.defpath)]),
        FAKE_DISTCP_LOG_ENV: str(distcp_log),
    }


@dataclass(frozen=True)
class HadoopTools:
    """Installed ``hdfs``/``hadoop``: ``additions`` to merge into an environment, ``env`` = ours + them."""

    bin_dir: Path
    additions: dict[str, str]

    @classmethod
    def install(cls, bin_dir: Path, workdir: Path) -> HadoopTools:
        return cls(Path(bin_dir).resolve(), install_hadoop_tools(bin_dir, workdir))

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.additions}

    @property
    def hdfs(self) -> Path:
        return self.bin_dir / "hdfs"

    @property
    def hadoop(self) -> Path:
        return self.bin_dir / "hadoop"

    @property
    def distcp_log(self) -> Path:
        return Path(self.additions[FAKE_DISTCP_LOG_ENV])

    def with_distcp_log(self, path: Path) -> HadoopTools:
        """The same executables logging distcp calls to ``path`` (one log per test)."""
        return replace(self, additions={**self.additions, FAKE_DISTCP_LOG_ENV: str(path)})

    def distcp_calls(self) -> list[dict]:
        return read_distcp_log(self.distcp_log)


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


# --- the fake distcp -----------------------------------------------------------------------------

DISTCP_FLAGS = {"-update", "-overwrite", "-atomic", "-skipcrccheck"}
DISTCP_VALUED = {"-strategy", "-m", "-bandwidth", "-f"}
DISTCP_USAGE = "usage: distcp OPTIONS [source_path...] <target_path>"


class DistcpUsageError(ValueError):
    """What real DistCp reports as 'Invalid arguments' (exit 255)."""


@dataclass
class DistcpRequest:
    flags: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)  # -D k=v
    paths: list[str] = field(default_factory=list)  # sources then the target

    @property
    def listing(self) -> str | None:
        return self.values.get("-f")

    @property
    def target(self) -> str:
        return self.paths[-1]


def parse_distcp_args(args: list[str]) -> DistcpRequest:
    """The options our transfers use, with the combinations real DistCp (3.x) refuses refused too.

    Like Hadoop's GenericOptionsParser, ``-D`` is only understood before the first distcp option.
    ``-delete`` is refused on purpose (real DistCp takes it with -update): a transfer must never
    delete files on the target cluster.
    """
    request = DistcpRequest()
    index, seen_distcp_option = 0, False
    while index < len(args):
        arg = args[index]
        if arg.startswith("-D") and not seen_distcp_option:
            pair = arg[2:] if len(arg) > 2 else _value(args, index)
            index += 1 if len(arg) > 2 else 2
            key, sep, value = pair.partition("=")
            if not key or not sep:
                raise DistcpUsageError(f"-D needs key=value, got {pair!r}")
            request.properties[key] = value
            continue
        if arg in DISTCP_FLAGS:
            request.flags.add(arg)
            seen_distcp_option = True
            index += 1
            continue
        if arg in DISTCP_VALUED:
            request.values[arg] = _value(args, index)
            seen_distcp_option = True
            index += 2
            continue
        if arg == "-delete":
            raise DistcpUsageError("-delete is refused here: a transfer must never delete target files")
        if arg.startswith("-"):
            where = " (generic options like -D go before distcp options)" if arg.startswith("-D") else ""
            raise DistcpUsageError(f"Unrecognized option: {arg}{where}")
        request.paths.append(arg)
        index += 1
    _validate(request)
    return request


def _value(args: list[str], index: int) -> str:
    if index + 1 >= len(args):
        raise DistcpUsageError(f"Missing argument for option: {args[index].lstrip('-')}")
    return args[index + 1]


def _validate(request: DistcpRequest) -> None:
    flags, values = request.flags, request.values
    if not request.paths:
        raise DistcpUsageError("Target path not specified")
    if request.listing is not None and len(request.paths) > 1:
        raise DistcpUsageError("Both source file listing and source paths present")
    if request.listing is None and len(request.paths) < 2:
        raise DistcpUsageError("Neither source file listing nor source paths present")
    if {"-update", "-overwrite"} <= flags:
        raise DistcpUsageError("Overwrite and update options are mutually exclusive")
    if "-atomic" in flags and flags & {"-update", "-overwrite"}:
        raise DistcpUsageError("Atomic commit can't be used with sync folder or overwrite options")
    if values.get("-strategy", "uniformsize") not in ("dynamic", "uniformsize"):
        raise DistcpUsageError(f"Unknown copy strategy: {values['-strategy']}")
    if "-m" in values:
        try:
            int(values["-m"])
        except ValueError:
            raise DistcpUsageError(f"Number of maps is invalid: {values['-m']}") from None
    if "-bandwidth" in values:
        try:
            bandwidth = float(values["-bandwidth"])
        except ValueError:
            raise DistcpUsageError(f"Bandwidth specified is invalid: {values['-bandwidth']}") from None
        if bandwidth <= 0:
            raise DistcpUsageError(f"Bandwidth specified is not positive: {bandwidth}")


def local_path(uri: str) -> str:
    """``file:///a b`` / ``file:/a b`` / ``/a b`` -> ``/a b`` (no percent-decoding, as Hadoop)."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if uri.startswith("file:"):
        return uri[len("file:"):]
    return uri


def _is_local(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


def read_listing(listing_uri: str) -> list[str]:
    """One source per line, UTF-8, not trimmed; a blank line is an error (as in FileBasedCopyListing)."""
    text = Path(local_path(listing_uri)).read_text(encoding="utf-8")
    sources = text.splitlines()
    if any(not line for line in sources):
        raise ValueError("java.lang.IllegalArgumentException: Can not create a Path from an empty string")
    return sources


def fake_hadoop_main(argv: list[str], *, fsshell: list[str], default_log: str) -> int:
    """``hadoop distcp ...``: log the argv, parse it as DistCp does, copy with ONE real FsShell ``-cp``.

    A STAND-IN: no job, no mappers, no CRC comparison. Sources' files land as
    ``<target>/<basename>`` (a source directory's children with -update/-overwrite, as DistCp does);
    existing files are always replaced (``-cp -f``), where real -update skips unchanged ones.
    Sources containing ``$FAKE_DISTCP_REJECT`` fail the whole copy (exit 25) to test fallbacks.
    """
    if argv[:1] != ["distcp"]:
        sys.stderr.write(f"hadoop: this local stand-in only fakes `hadoop distcp`, not {argv[:1]}\n")
        return 1
    record: dict = {"args": argv, "cwd": os.getcwd()}
    try:
        code = _run_distcp(argv[1:], fsshell, record)
        record["exit_code"] = code
        return code
    finally:
        _append_log(os.environ.get(FAKE_DISTCP_LOG_ENV) or default_log, record)


def _run_distcp(args: list[str], fsshell: list[str], record: dict) -> int:
    try:
        request = parse_distcp_args(args)
    except DistcpUsageError as exc:
        _log_line("ERROR", f"Invalid arguments: {exc}")
        sys.stderr.write(f"Invalid arguments: {exc}\n{DISTCP_USAGE}\n")
        return DISTCP_INVALID_ARGUMENT
    try:
        sources = read_listing(request.listing) if request.listing else request.paths[:-1]
    except (OSError, ValueError) as exc:
        return _exception_encountered(f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc))
    record["sources"] = sources
    reject = os.environ.get(FAKE_DISTCP_REJECT_ENV)
    rejected = [s for s in sources if reject and reject in s]
    if rejected:
        return _exception_encountered(
            f"java.io.IOException: Copy of {rejected[0]} to {request.target} rejected by target cluster")
    missing = [s for s in sources if _is_local(s) and not os.path.lexists(local_path(s))]
    if missing:
        _log_line("ERROR", "Invalid input: ")
        sys.stderr.write("org.apache.hadoop.tools.CopyListing$InvalidInputException: "
                         f"{missing[0]} doesn't exist\n")
        return DISTCP_INVALID_ARGUMENT
    if request.flags & {"-update", "-overwrite"}:
        sources = _directory_contents(sources)
    mkdir = subprocess.run([*fsshell, "-mkdir", "-p", request.target], stdin=subprocess.DEVNULL, check=False)
    if mkdir.returncode != 0:
        return _exception_encountered(f"java.io.IOException: cannot create {request.target}")
    if not sources:
        return DISTCP_SUCCESS
    copy = subprocess.run([*fsshell, "-cp", "-f", *sources, request.target], stdin=subprocess.DEVNULL, check=False)
    if copy.returncode != 0:
        return _exception_encountered(f"java.io.IOException: copy into {request.target} failed")
    return DISTCP_SUCCESS


def _directory_contents(sources: list[str]) -> list[str]:
    """With -update/-overwrite DistCp copies a source directory's contents, not the directory."""
    expanded = []
    for source in sources:
        path = local_path(source)
        if _is_local(source) and os.path.isdir(path):
            prefix = source.rstrip("/")
            expanded += [f"{prefix}/{name}" for name in sorted(os.listdir(path)) if not _is_crc(name)]
        else:
            expanded.append(source)
    return expanded


def _is_crc(name: str) -> bool:
    return name.startswith(".") and name.endswith(".crc")


def _exception_encountered(message: str) -> int:
    _log_line("ERROR", "Exception encountered ")
    sys.stderr.write(f"{message}\n\tat org.apache.hadoop.tools.DistCp.execute(DistCp.java:215)\n"
                     "\tat org.apache.hadoop.tools.DistCp.run(DistCp.java:153)\n")
    return DISTCP_UNKNOWN_ERROR


def _log_line(level: str, message: str) -> None:
    sys.stderr.write(f"{time.strftime('%y/%m/%d %H:%M:%S')} {level} tools.DistCp: {message}\n")


def _append_log(log_path: str, record: dict) -> None:
    # One write of one line with O_APPEND: concurrent invocations do not interleave.
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_distcp_log(log_path: Path) -> list[dict]:
    """The logged invocations, oldest first (an absent log means none yet)."""
    try:
        text = Path(log_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
