"""``hdfs dfs`` command lines, in one place: the methods, verification, publishing and the CLI's
``--dry-run`` all build their argv here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_provider_impala_transfer.core.errors import CommandFailed
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

    def mkdir_argv(self, directory: str) -> list[str]:
        return self.argv("-mkdir", "-p", directory)

    def checksum_argv(self, paths: Sequence[str]) -> list[str]:
        return [self.hdfs_bin, "dfs", COMPOSITE_CRC, "-checksum", *paths]

    # operations ------------------------------------------------------------------------------
    def run(self, argv: list[str], **kwargs):
        argv = [resolve_binary(argv[0], "hdfs_bin"), *argv[1:]]
        return self.runner.run(argv, **kwargs)

    def makedirs(self, directory: str) -> None:
        self.run(self.mkdir_argv(directory))

    def test(self, flag: str, path: str) -> bool:
        """``-test -d|-e``: exit 0 yes, 1 no; anything else is an error worth raising."""
        result = self.run(self.argv("-test", flag, path), check=False)
        if result.returncode in (0, 1):
            return result.returncode == 0
        raise CommandFailed(result.args, result.returncode, result.stderr.decode("utf-8", "replace")[-2000:])

    def sizes(self, paths: Sequence[str]) -> dict[str, int]:
        """Byte sizes in one JVM start (``-stat %b`` prints one line per path, in order)."""
        out = self.run(self.argv("-stat", "%b", *paths), capture=True).stdout.decode().split()
        return {path: int(size) for path, size in zip(paths, out, strict=True)}

    def crc32c(self, paths: Sequence[str]) -> dict[str, str | None]:
        """Each file's CRC32C as HDFS computes it from the CRCs its DataNodes keep: no data is read
        back. One JVM for all paths; ``-checksum`` prints ``<path> TAB COMPOSITE-CRC32C TAB <hex>``
        per file, in order. None for a file HDFS answers another algorithm for: a 0-byte file has
        no blocks to combine, and clusters before Hadoop 3.1 know no composite CRC."""
        if not paths:
            return {}
        out = self.run(self.checksum_argv(paths), capture=True).stdout.decode("utf-8", "replace")
        lines = [line.split("\t") for line in out.splitlines() if line.strip()]
        return {path: fields[2].strip().lower() if len(fields) == 3 and fields[1] == COMPOSITE_CRC_ALGORITHM else None
                for path, fields in zip(paths, lines, strict=True)}

    def sha256(self, paths: Sequence[str], sizes: Sequence[int]) -> list[str]:
        """sha256 of each file, streamed through one ``-cat`` of all of them."""
        return self.runner.sha256_of_output(self.resolved("-cat", *paths), sizes)

    def list_names(self, directory: str) -> list[str]:
        out = self.run(self.argv("-ls", "-C", directory), capture=True).stdout.decode("utf-8")
        return [line.rstrip("/").rsplit("/", 1)[-1] for line in out.splitlines() if line.strip()]

    def move(self, source: str, target: str) -> None:
        self.run(self.argv("-mv", source, target))

    def remove(self, *paths: str, recursive: bool = False) -> None:
        if paths:
            self.run(self.argv("-rm", *(["-r"] if recursive else []), "-f", "-skipTrash", *paths))
