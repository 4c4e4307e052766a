"""``hdfs dfs`` command lines, in one place: the methods, verification, publishing and the CLI's
``--dry-run`` all build their argv here."""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from airflow_provider_impala_transfer.core.common.checksums import Digests
from airflow_provider_impala_transfer.core.common.uris import HADOOP_GLOB, check_hadoop_path, join, local_path
from airflow_provider_impala_transfer.core.errors import CommandFailed, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner, resolve_binary

# A whole file's CRC32C, whatever its block size (HDFS-13056). The generic option goes before the
# command, where Hadoop's GenericOptionsParser reads it (FsShell and DistCp alike).
COMPOSITE_CRC = "-Ddfs.checksum.combine.mode=COMPOSITE_CRC"
COMPOSITE_CRC_ALGORITHM = "COMPOSITE-CRC32C"


@dataclass
class HdfsShell:
    """The Hadoop filesystem shell of one cluster client (its HADOOP_CONF_DIR, its Kerberos ticket)."""

    hdfs_bin: str = "hdfs"
    runner: CommandRunner = field(default_factory=CommandRunner)

    def argv(self, *args: str) -> list[str]:
        return [self.hdfs_bin, "dfs", *args]

    def resolved(self, *args: str) -> list[str]:
        return [resolve_binary(self.hdfs_bin, "hdfs_bin"), "dfs", *args]

    # command lines ---------------------------------------------------------------------------
    def put_argv(self, sources: Sequence[str], target_dir: str, *, overwrite: bool) -> list[str]:
        return self.argv("-put", *(["-f"] if overwrite else []), *sources, target_dir + "/")

    def cp_argv(self, sources: Sequence[str], target_dir: str, *, overwrite: bool) -> list[str]:
        return self.argv("-cp", *(["-f"] if overwrite else []), *sources, target_dir + "/")

    def mkdir_argv(self, *directories: str) -> list[str]:
        return self.argv("-mkdir", "-p", *directories)

    def checksum_argv(self, paths: Sequence[str]) -> list[str]:
        return [self.hdfs_bin, "dfs", COMPOSITE_CRC, "-checksum", *paths]

    # operations ------------------------------------------------------------------------------
    def run(self, argv: list[str], **kwargs):
        argv = [resolve_binary(argv[0], "hdfs_bin"), *argv[1:]]
        return self.runner.run(argv, **kwargs)

    def makedirs(self, *directories: str) -> None:
        self.run(self.mkdir_argv(*directories))

    def test(self, flag: str, path: str) -> bool:
        """``-test -d|-e``: exit 0 yes, 1 no; anything else is an error worth raising."""
        result = self.run(self.argv("-test", flag, path), check=False)
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise CommandFailed(result.args, result.returncode, result.stderr.decode("utf-8", "replace")[-2000:])

    def directories(self, paths: Sequence[str]) -> set[str]:
        """Which of ``paths`` are directories, in one JVM: ``-ls -d`` prints ``<mode> <replication>
        <owner> <group> <size> <date> <time> <path>`` per path that exists (mode ``d...`` for a
        directory), ``No such file or directory`` on stderr for each that does not."""
        result = self.run(self.argv("-ls", "-d", *paths), capture=True, check=False)
        stderr = result.stderr.decode("utf-8", "replace")
        said = [line for line in stderr.splitlines() if line.startswith("ls:")]
        if result.returncode != 0 and not (said and all("No such file or directory" in line for line in said)):
            raise CommandFailed(result.args, result.returncode, stderr[-2000:])
        listed = {_path_part(fields[7]) for fields in (line.split(None, 7) for line in
                  result.stdout.decode("utf-8", "replace").splitlines()) if len(fields) == 8 and fields[0][:1] == "d"}
        return {path for path in paths if _path_part(path) in listed}

    def sizes(self, paths: Sequence[str]) -> dict[str, int]:
        """Byte sizes in one JVM start (``-stat %b`` prints one line per path, in order)."""
        out = self.run(self.argv("-stat", "%b", *paths), capture=True).stdout.decode().split()
        return {path: int(size) for path, size in zip(paths, out, strict=True)}

    def crc32c(self, paths: Sequence[str]) -> dict[str, str | None]:
        """Each file's CRC32C as HDFS computes it from the CRCs its DataNodes keep: no data is read
        back. One JVM for all paths; ``-checksum`` prints ``<path> TAB COMPOSITE-CRC32C TAB <hex>``
        per file, in order. None for a file HDFS answers another algorithm for: a 0-byte file has
        no blocks to combine, and clusters before Hadoop 3.1 know no composite CRC.

        ``file://`` paths (a local target, e.g. an NFS mount, through the Hadoop client) are on
        this machine's own disk, for which Hadoop's LocalFileSystem answers ``NONE``: their CRC32C
        is computed here by reading them, which is what any other check of a local file costs."""
        paths = list(paths)
        local = {path: _local_crc32c(path) for path in paths if _file_uri_path(path) is not None}
        remote = [path for path in paths if path not in local]
        found: dict[str, str | None] = {}
        if remote:
            out = self.run(self.checksum_argv(remote), capture=True).stdout.decode("utf-8", "replace")
            lines = [line.split("\t") for line in out.splitlines() if line.strip()]
            found = {path: fields[2].strip().lower() if len(fields) == 3 and fields[1] == COMPOSITE_CRC_ALGORITHM
                     else None for path, fields in zip(remote, lines, strict=True)}
        return {path: local[path] if path in local else found[path] for path in paths}

    def sha256(self, paths: Sequence[str], sizes: Sequence[int]) -> list[str]:
        """sha256 of each file, streamed through one ``-cat`` of all of them."""
        return self.runner.sha256_of_output(self.resolved("-cat", *paths), sizes)

    def list_names(self, directory: str) -> list[str]:
        out = self.run(self.argv("-ls", "-C", directory), capture=True).stdout.decode("utf-8")
        return [line.rstrip("/").rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()]

    def move(self, source: str, target: str) -> None:
        self.run(self.argv("-mv", source, target))

    def create_exclusive(self, path: str, text: str) -> bool:
        """Write ``text`` to a file of a unique name, then rename it to ``path``: the NameNode
        refuses a rename onto an existing file, so of two writers exactly one succeeds. A
        ``file://`` path is this machine's disk, where Hadoop's rename replaces an existing file:
        there the file is created with O_EXCL instead."""
        local = _file_uri_path(path)
        if local is not None:
            try:
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return True
        candidate = f"{path.rsplit('/', 1)[0]}/.{path.rsplit('/', 1)[1]}.{uuid.uuid4().hex}"
        self._put_text(text, candidate)
        renamed = self.run(self.argv("-mv", candidate, path), check=False)
        if renamed.returncode == 0:
            return True
        self.remove(candidate)
        if self.test("-e", path):
            return False
        raise CommandFailed(renamed.args, renamed.returncode, renamed.stderr.decode("utf-8", "replace")[-2000:])

    def write_text(self, path: str, text: str) -> None:
        """Replace ``path`` with ``text``: ``-put -f`` writes ``<path>._COPYING_`` and renames it
        over ``path``, so a reader sees the old text or the new one."""
        self._put_text(text, path, overwrite=True)

    def _put_text(self, text: str, path: str, *, overwrite: bool = False) -> None:
        with tempfile.TemporaryDirectory(prefix="impala-transfer-") as private:  # 0700
            local = os.path.join(private, "text")
            with open(local, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.run(self.argv("-put", *(["-f"] if overwrite else []), f"file://{local}", path))

    def touch(self, path: str) -> None:
        """Set ``path``'s modification time to now (directories too)."""
        self.run(self.argv("-touch", "-m", "-c", path))

    def read_text(self, path: str) -> str | None:
        result = self.run(self.argv("-cat", path), capture=True, check=False)
        if result.returncode == 0:
            return result.stdout.decode("utf-8", "replace")
        stderr = result.stderr.decode("utf-8", "replace")
        if "No such file or directory" in stderr:
            return None
        raise CommandFailed(result.args, result.returncode, stderr[-2000:])

    def modified(self, directory: str) -> dict[str, float]:
        """Entries under ``directory`` -> modification time (``-stat`` of ``dir/*``; the directory
        itself holds no glob characters: uris.check_hadoop_path). ``-stat`` prints a line per
        entry and a name may hold a newline, so ``x\\n0 ../y`` would read as two entries: the
        names found are asked again by name, and only entries that exist under exactly that
        name are returned. Names with whitespace or glob characters (which FsShell would
        expand) are left out: nothing of ours is called that."""
        listed = self._stat(directory.rstrip("/") + "/*")
        names = [n for n in listed if n and not (set(n) & HADOOP_GLOB or any(c.isspace() for c in n))]
        if not names:
            return {}
        return {n: when for n, when in self._stat(*(join(directory, n) for n in names)).items() if n in names}

    def _stat(self, *paths: str) -> dict[str, float]:
        """``-stat "%Y %n"`` in one JVM: name -> time; paths that do not exist are skipped."""
        result = self.run(self.argv("-stat", "%Y %n", *paths), capture=True, check=False)
        stderr = result.stderr.decode("utf-8", "replace")
        said = [line for line in stderr.splitlines() if line.startswith("stat:")]
        if result.returncode != 0 and not (said and all("No such file or directory" in line for line in said)):
            raise CommandFailed(result.args, result.returncode, stderr[-2000:])
        lines = result.stdout.decode("utf-8", "replace").splitlines()
        return {name: int(ms) / 1000 for ms, _, name in (line.partition(" ") for line in lines) if ms.isdigit()}

    def remove(self, *paths: str, recursive: bool = False) -> None:
        """``-rm`` of exactly ``paths``: FsShell expands a glob in any path it is given, so a
        path with a glob character is refused before anything runs."""
        for path in paths:
            check_hadoop_path(path, "path to remove")
        if paths:
            self.run(self.argv("-rm", *(["-r"] if recursive else []), "-f", "-skipTrash", *paths))


def _path_part(uri: str) -> str:
    """``hdfs://nn/a/b/`` -> ``/a/b``: how ``-ls`` may print a path given as a URI."""
    return posixpath.normpath(urlsplit(uri).path or "/")


def _file_uri_path(uri: str) -> str | None:
    """The local path of an explicit ``file:`` URI; None for anything else (a bare path means the
    client's default filesystem, which is usually a cluster)."""
    return local_path(uri) if uri[:5].lower() == "file:" else None


def _local_crc32c(uri: str) -> str:
    path = _file_uri_path(uri)
    try:
        with open(path, "rb") as stream:  # type: ignore[arg-type]
            digests = Digests()
            for block in iter(lambda: stream.read(1 << 20), b""):
                digests.update(block)
    except OSError as exc:
        raise TransferError(f"cannot read {uri} back: {exc.strerror or exc}") from exc
    return digests.crc32c
