"""DistCp: ONE MapReduce job per chunk, on the local job runner or on YARN.

What the job copies: local chunk files are first put into a staging directory on the source cluster
(a MapReduce job's maps run on other machines), listed in a private ``-f`` file, copied with
``-update`` and composite CRCs, and the staged copies are removed afterwards. What runs on YARN:
the application the client submitted is recorded from its output (:mod:`.yarn`), so a client that
fails, times out or is stopped (``on_kill``) kills that application before the method returns, and
no fallback method writes next to a job that is still copying.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_provider_impala_transfer.core.common import kerberos
from airflow_provider_impala_transfer.core.common.records import FileEntry
from airflow_provider_impala_transfer.core.common.uris import join
from airflow_provider_impala_transfer.core.common.values import check_choice
from airflow_provider_impala_transfer.core.errors import CommandFailed, ConfigError, TransferError
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner, resolve_binary
from airflow_provider_impala_transfer.core.transfer.destinations import HdfsDestination
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import COMPOSITE_CRC, HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import STAGING_DIR, STAGING_NAME, STALE_AFTER, Run
from airflow_provider_impala_transfer.core.transfer.methods import HdfsTargetMethod, _local_uris
from airflow_provider_impala_transfer.core.transfer.sweep import stale_entries
from airflow_provider_impala_transfer.core.transfer.yarn import ResourceManager, SubmittedJob, YarnApplication, refusal

DISTCP_STRATEGIES = ("dynamic", "uniformsize")
# DistCp's counters as the JobHistory server names them, and as its client prints them.
COPY_COUNTER_GROUP = "org.apache.hadoop.tools.mapred.CopyMapper$Counter"
COPY_COUNTERS = {"COPY": "Files Copied", "SKIP": "Files Skipped", "FAIL": "Files Failed",
                 "BYTESCOPIED": "Bytes Copied", "BYTESEXPECTED": "Bytes Expected", "BYTESFAILED": "Bytes Failed",
                 "BYTESSKIPPED": "Bytes Skipped"}


_PRIVATE_DIR: str | None = None


def private_dir() -> str:
    """A 0700 directory of this process (made once), for files no other local user may read or
    plant: distcp listings name the run's staged files."""
    global _PRIVATE_DIR
    if _PRIVATE_DIR is None or not os.path.isdir(_PRIVATE_DIR):
        _PRIVATE_DIR = tempfile.mkdtemp(prefix="impala-transfer-")
    return _PRIVATE_DIR


@dataclass(frozen=True)
class DistcpSubmission:
    """A distcp job YARN accepted (``hadoop distcp -async``): what its task needs after a deferral."""

    application_id: str
    resource_manager: str | None  # the web address to poll and kill it at
    staged: str | None = None  # the staged copies on the source cluster, removed once the job ended

    def to_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> DistcpSubmission:
        return cls(**data)  # type: ignore[arg-type]


def _has_local(files: Sequence[FileEntry]) -> bool:
    return any(f.local is not None for f in files)


def job_name(run: Run, files: Sequence[FileEntry]) -> str:
    """The job's name, ``impala-transfer:<dag>:<run>:chunk-00002``; DistCp prefixes it, so the
    ResourceManager lists ``distcp: impala-transfer:...``."""
    return ":".join(["impala-transfer", *(part for part in (run.dag_id, run.run_id) if part), files_key(files)])


def files_key(files: Sequence[FileEntry]) -> str:
    """What a set of files is called in staging paths: ``chunk-00002`` for one chunk's files."""
    chunks = {f.chunk for f in files}
    if len(chunks) == 1 and None not in chunks:
        return f"chunk-{chunks.pop():05d}"
    return "files-" + hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:8]


_COUNTER = re.compile(r"^\s+(?P<name>[A-Za-z][\w ]*?)=(?P<value>\d+)\s*$")


def distcp_counters(output: str) -> dict[str, int]:
    """The ``DistCp Counters`` group of a finished job's output (``Bytes Copied``, ``Bytes
    Expected``, ``Files Copied``, ``Files Skipped``...), as the job prints it last on stderr."""
    counters: dict[str, int] = {}
    inside = False
    for line in output.splitlines():
        if line.strip() == "DistCp Counters":
            inside = True
            continue
        match = _COUNTER.match(line) if inside else None
        if inside and not match:
            if counters:
                break
            continue
        if match:
            counters[match["name"]] = int(match["value"])
    return counters


# Keys distcp_conf may not set: the checksum mode the verification depends on, and settings that
# would carry a secret on the command line (any local user can read a process's arguments).
RESERVED_CONF = {"dfs.checksum.combine.mode": "the copy is verified by composite CRC32C; this key would break it"}
_SECRET_KEY = re.compile(r"password|secret|credential|token|(?:^|[.-])key$", re.IGNORECASE)
_CONF_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# What a connection's extras may set (an editor of connections must not change how jobs run
# beyond where they queue and how big they are); DAG code may set any key.
CONNECTION_CONF_KEYS = frozenset({
    "mapreduce.job.queuename", "mapreduce.job.priority", "mapreduce.map.memory.mb", "mapreduce.map.cpu.vcores",
    "yarn.app.mapreduce.am.resource.mb", "yarn.app.mapreduce.am.resource.cpu-vcores", "mapreduce.task.timeout",
    "mapreduce.map.maxattempts",
})


def check_distcp_conf(conf: object, field: str = "distcp_conf", *, connection: str | None = None) -> dict[str, str]:
    """``{"mapreduce.map.memory.mb": 2048}`` -> ``{"mapreduce.map.memory.mb": "2048"}``, or a
    :class:`ConfigError` naming the key. From a ``connection``'s extra: only
    :data:`CONNECTION_CONF_KEYS`."""
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise ConfigError(field, f"{conf!r} is not a mapping of Hadoop settings",
                          'give e.g. {"mapreduce.map.memory.mb": 2048}')
    checked: dict[str, str] = {}
    for key, value in conf.items():
        if not isinstance(key, str) or not _CONF_KEY.match(key):
            raise ConfigError(field, f"{key!r} is not a Hadoop setting name", "use names such as mapreduce.map.memory.mb")
        if key in RESERVED_CONF:
            raise ConfigError(f"{field}.{key}", RESERVED_CONF[key], "remove it")
        if _SECRET_KEY.search(key):
            raise ConfigError(f"{field}.{key}", "would put a secret on the distcp command line, which any "
                              "local user can read", "keep it in a Hadoop credential provider "
                              "(hadoop.security.credential.provider.path) or the cluster's configuration")
        if connection is not None and key not in CONNECTION_CONF_KEYS:
            raise ConfigError(field, f"{key} in the distcp_conf extra of connection {connection!r} is not allowed: a "
                              f"connection may set only {', '.join(sorted(CONNECTION_CONF_KEYS))}",
                              "set it with the operator argument distcp_conf= (DAG code), or remove it")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{field}.{key}", f"{value!r} is not a string or a number", "give the value as text")
        text = str(value)
        if not text or any(ch in text for ch in "\r\n\0"):
            raise ConfigError(f"{field}.{key}", "is empty or has a line break", "give the value on one line")
        checked[key] = text
    return checked


@dataclass
class DistcpOptions:
    """How the DistCp job runs.

    :param yarn_queue: the YARN queue (``-Dmapreduce.job.queuename``); default: the cluster's.
    :param conf: more ``-D key=value`` settings for the job (memory, priority; see :func:`check_distcp_conf`).
        ``{"mapreduce.framework.name": "local"}`` runs it on the local job runner.
    :param resource_manager: the ResourceManager's web address (``http://rm:8088``) for killing a
        job; default: the tracking URL the client prints (see :mod:`.yarn`).
    :param kill_wait: seconds a killed application may take to end before the kill is said to fail.
    """

    hadoop_bin: str = "hadoop"
    maps: int = 20
    bandwidth_mb: int | None = None
    strategy: str = "dynamic"
    yarn_queue: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    resource_manager: str | None = None
    kill_wait: float = 10.0

    def __post_init__(self) -> None:
        check_choice(self.strategy, "distcp_strategy", DISTCP_STRATEGIES, "a distcp strategy")
        for name in ("maps", "bandwidth_mb"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"distcp_{name}", f"{value!r} is not a whole number > 0", "fix or leave unset")
        self.conf = check_distcp_conf(self.conf)
        if self.yarn_queue is not None:
            if not isinstance(self.yarn_queue, str) or not _CONF_KEY.match(self.yarn_queue):
                raise ConfigError("yarn_queue", f"{self.yarn_queue!r} is not a queue name",
                                  "give the leaf queue's name, e.g. etl or root.etl")
            if "mapreduce.job.queuename" in self.conf:
                raise ConfigError("yarn_queue", "is given twice (also as distcp_conf's mapreduce.job.queuename)",
                                  "keep one")
        if self.resource_manager is not None and not re.match(r"^https?://[^/\s]+/?$", str(self.resource_manager)):
            raise ConfigError("yarn_rm_url", f"{self.resource_manager!r} is not a web address",
                              "give http(s)://<resourcemanager>:<port>, e.g. http://rm:8088")

    def job_conf(self, job_name: str) -> list[str]:
        """The ``-D`` options of one job: its name, its queue, then ``conf``."""
        settings = {"mapreduce.job.name": job_name}
        if self.yarn_queue:
            settings["mapreduce.job.queuename"] = self.yarn_queue
        settings.update(self.conf)
        return [f"-D{key}={value}" for key, value in settings.items()]


@dataclass
class DistcpMethod(HdfsTargetMethod):
    """ONE distcp job for all of a chunk's files (a ``-f`` listing), never one job per file.

    Local chunk files are first put into
    ``source_hdfs_path/_impala_transfer_staging/<run>-<target>/chunk-NNNNN/`` on the source cluster
    (the seed tool forgot this and handed local paths to a MapReduce job that runs on other
    machines); that directory is removed once distcp has finished with it. The ``<target>`` tag (a
    hash of the target directory) keeps two transfers of one run id (two task groups, two DAGs)
    from overwriting each other's staged files or listings.

    ``-Ddfs.checksum.combine.mode=COMPOSITE_CRC``: DistCp compares each copy's checksum with the
    source's, and HDFS's default checksum depends on the block size, so between clusters with
    different block sizes every multi-block file would fail ("Source and target differ in
    block-size"); the composite CRC does not, and the target keeps its own block size (``-pb``
    would impose the source's). ``-update`` (no ``-delete``: the target directory is shared with
    other chunks), ``-strategy dynamic`` so fast mappers take more files, ``-m``, ``-bandwidth`` in
    MB/s per map. No ``-atomic``: DistCp refuses it together with ``-update`` and into an existing
    directory, and the run's publish-by-rename already makes the files visible all at once.
    """

    destination: HdfsDestination
    source_shell: HdfsShell
    runner: CommandRunner
    source_hdfs_path: str | None = None
    options: DistcpOptions = field(default_factory=DistcpOptions)
    listing_dir: str = field(default_factory=lambda: private_dir())
    name: str = "distcp"
    copies_from_hdfs = True

    def staging_key(self, run: Run) -> str:
        """``<run's staging name>-<target tag>``: the run (its group, its partition) and a hash of
        the target root, so one run sending to two targets keeps two sets of copies."""
        return f"{run.staging_name}-{self._target_tag}"

    @property
    def _target_tag(self) -> str:
        return hashlib.sha256(self.destination.root.encode()).hexdigest()[:8]

    def listing_path(self, run: Run, files: Sequence[FileEntry]) -> str:
        return os.path.join(self.listing_dir, f"distcp-{self.staging_key(run)}-{files_key(files)}.list")

    def source_staging_dir(self, run: Run, files: Sequence[FileEntry]) -> str:
        """Where local files are put on the source cluster for this job (one directory per chunk)."""
        if not self.source_hdfs_path:
            raise ConfigError("source_hdfs_path", "chunk files are on this machine, and distcp copies "
                              "between clusters", "set source_hdfs_path=hdfs://<source-namenode>/staging "
                              "(files are put there first) or use hdfs_put")
        return join(self.source_hdfs_path, STAGING_DIR, self.staging_key(run), files_key(files))

    def sources(self, files: Sequence[FileEntry], run: Run) -> tuple[list[list[str]], list[str]]:
        if all(f.local is None for f in files):
            return [], [f.path for f in files]
        staged = self.source_staging_dir(run, files)
        locals_ = _local_uris(files, self.name)
        steps = [self.source_shell.mkdir_argv(staged),
                 self.source_shell.put_argv(locals_, staged, overwrite=True)]  # run-scoped: ours to replace
        return steps, [join(staged, f.name) for f in files]

    def distcp_argv(self, listing: str, target_dir: str, job_name: str) -> list[str]:
        """Generic ``-D`` options first (DistCp's parser takes them only there), ours last so that
        nothing overrides the checksum mode."""
        o = self.options
        argv = [o.hadoop_bin, "distcp", *o.job_conf(job_name), COMPOSITE_CRC, "-update", "-strategy", o.strategy,
                "-m", str(o.maps)]
        if o.bandwidth_mb:
            argv += ["-bandwidth", str(o.bandwidth_mb)]
        return [*argv, "-f", "file://" + listing, target_dir]

    def commands(self, files, run, *, overwrite):
        staging, _ = self.sources(files, run)
        target_dir = self.target_dir(run)
        return [*staging, *self.target_mkdir(run),
                self.distcp_argv(self.listing_path(run, files), target_dir, job_name(run, files))]

    def copy(self, files, run, *, overwrite):
        _, counters = self._launch(files, run, overwrite=overwrite)
        self.runner.log("distcp: " + (", ".join(f"{k}={v:,}" for k, v in counters.items()) or "no counters printed"))
        return counters

    def submit(self, files: Sequence[FileEntry], run: Run, *, overwrite: bool) -> DistcpSubmission:
        """``hadoop distcp -async``: return once YARN has accepted the job, which then copies on its
        own; :meth:`finish` ends it (the staged copies on the source cluster stay until then).
        Only on YARN: the local job runner's job would die with its client."""
        if self.destination.metadata is not None:
            self.destination.makedirs(self.target_dir(run))
        job, _ = self._launch(files, run, overwrite=overwrite, asynchronous=True)
        return DistcpSubmission(application_id=job.application_id,  # type: ignore[arg-type]
                                resource_manager=self.options.resource_manager or job.tracking_root,
                                staged=self.source_staging_dir(run, files) if _has_local(files) else None)

    def finish(self, submission: DistcpSubmission, app: YarnApplication | None) -> dict[str, int]:
        """After a submitted job ended (``app``: what the ResourceManager said, None if nothing
        could be learnt): remove the staged copies, fail unless the job succeeded, and return its
        DistCp counters as the synchronous path prints them (from the JobHistory server; empty,
        and said, when it cannot tell)."""
        if app is None:  # the trigger could not follow it: the job may still copy, so it is killed first
            self._kill(SubmittedJob(application_id=submission.application_id,
                                    tracking_root=submission.resource_manager))
        try:
            if app is None or not app.succeeded:
                raise TransferError(f"distcp job {app.describe() if app else submission.application_id}")
        finally:
            if submission.staged:
                self._remove_staged(submission.staged)
        counters: dict[str, int] = {}
        try:
            with kerberos.as_tools(self.runner.env):
                groups = ResourceManager(submission.resource_manager).job_counters(submission.application_id)
            counters = {COPY_COUNTERS.get(name, name): value
                        for name, value in groups.get(COPY_COUNTER_GROUP, {}).items()}
        except (TransferError, KeyError, TypeError, ValueError) as exc:  # verified anyway: counters are for the log
            self.runner.log(f"distcp counters of {submission.application_id} not read: {exc}")
        self.runner.log("distcp: " + (", ".join(f"{k}={v:,}" for k, v in counters.items()) or "no counters"))
        return counters

    def _launch(self, files: Sequence[FileEntry], run: Run, *, overwrite: bool,
                asynchronous: bool = False) -> tuple[SubmittedJob, dict[str, int]]:
        resolve_binary(self.options.hadoop_bin, "hadoop_bin")  # before staging anything
        _, sources = self.sources(files, run)
        listing = self.listing_path(run, files)
        os.makedirs(os.path.dirname(listing), mode=0o700, exist_ok=True)
        # O_EXCL|O_NOFOLLOW: never through a file or link someone else put at this name
        fd = os.open(listing, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(source + "\n" for source in sources)
        staged = self.source_staging_dir(run, files) if _has_local(files) else None
        if staged:
            self._sweep_source_staging(run)
        counters: dict[str, int] = {}
        job = SubmittedJob()
        submitted = False
        try:
            with self.runner.stopping(lambda: self._kill(job)):  # on_kill: the client, then its job
                for argv in self.commands(files, run, overwrite=overwrite):
                    if argv[1] != "distcp":
                        self._run(argv)
                        continue
                    if asynchronous:
                        argv = [*argv[:-3], "-async", *argv[-3:]]  # before -f <listing> <target>
                    try:
                        result = self._run(argv, watch=job.read)
                    except CommandFailed as exc:
                        self._kill(job)  # failed or timed out: its job must not go on
                        if reason := refusal(exc.stderr_tail):  # the queue's answer first, where it is read
                            raise TransferError(f"distcp: {reason}\n{exc}") from exc
                        raise
                    except BaseException:  # interrupted (Ctrl-C, a task's timeout)
                        self._kill(job)
                        raise
                    counters = distcp_counters(result.stderr.decode("utf-8", "replace"))
            if asynchronous and job.application_id is None:
                raise TransferError("hadoop distcp -async printed no YARN application: the job ran on the local job "
                                    "runner, which cannot go on without its client (run on a cluster client whose "
                                    "mapreduce.framework.name is yarn, or set deferrable=False)")
            submitted = asynchronous
        finally:
            os.unlink(listing)  # read by the client only: the job copies from the listing it wrote on HDFS
            if staged and not submitted:  # the copies on the source cluster served this job only
                self._remove_staged(staged)
        return job, counters

    def _remove_staged(self, staged: str) -> None:
        try:
            self.source_shell.remove(staged, recursive=True)
        except TransferError as exc:
            self.runner.log(f"could not remove staged copies on the source cluster: {exc}")

    def _kill(self, job: SubmittedJob) -> None:
        """Kill the job's YARN application unless the client saw it end; return once the
        ResourceManager says it has ended. Raises when it cannot be killed (the method then fails
        saying so, rather than let the next method write next to a job that copies on)."""
        if not job.running:
            return
        url = self.options.resource_manager or job.tracking_root
        if url is None:
            raise TransferError(f"distcp's YARN application {job.application_id} may still be running, and "
                                "no ResourceManager address is known to kill it (set yarn_rm_url; kill it: "
                                f"yarn application -kill {job.application_id})")
        with kerberos.as_tools(self.runner.env):  # SPNEGO, if the RM asks, with the tools' ticket
            ResourceManager(url, timeout=5.0).kill(job.application_id, wait=self.options.kill_wait,
                                                   log=self.runner.log)
        job.ended = True

    def _sweep_source_staging(self, run: Run) -> None:
        """Staged copies a stopped job left on the source cluster (killed before its clean-up) for
        this target, by any run: removed once older than any job of ours can run."""
        root = join(self.source_hdfs_path, STAGING_DIR)
        ours = re.compile(rf"(?:{STAGING_NAME.pattern})-{self._target_tag}")
        try:
            stale = stale_entries(self.source_shell.modified(root), root, ours, older_than=STALE_AFTER,
                                  keep={self.staging_key(run)})
            if stale:
                self.runner.log(f"removing staged copies a stopped run left on the source cluster: {', '.join(stale)}")
                self.source_shell.remove(*stale, recursive=True)
        except TransferError as exc:  # housekeeping must not fail the delivery
            self.runner.log(f"could not sweep {root}: {exc}")
