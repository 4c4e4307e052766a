"""Each transfer method against a real target: two real HDFS clusters (cluster1 source, cluster2
target; the real FsShell, DistCp and WebHDFS), sshd on loopback, moto's S3 server, fsspec
memory/local; and the bad input every method must refuse up front."""

from __future__ import annotations

import hashlib
import json
import os
import dataclasses
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import fsspec
import google_crc32c
import pyarrow as pa
import pytest
from hdfs import InsecureClient

from airflow_provider_impala_transfer.core.common.records import Chunk, FileEntry, Manifest
from airflow_provider_impala_transfer.core.common.uris import normalize_uri
from airflow_provider_impala_transfer.core.errors import (
    CommandFailed,
    ConfigError,
    PublishError,
    Stopped,
    ToolNotFound,
    TransferError,
    VerificationError,
)
from airflow_provider_impala_transfer.core.transfer.commands import CommandRunner
from airflow_provider_impala_transfer.core.transfer.delivery import deliver_chunk, verify
from airflow_provider_impala_transfer.core.transfer.destinations import FsspecDestination, HdfsDestination, SshDestination
from airflow_provider_impala_transfer.core.transfer.hdfs_shell import COMPOSITE_CRC, HdfsShell
from airflow_provider_impala_transfer.core.transfer.layout import Run
from airflow_provider_impala_transfer.core.transfer.distcp import DistcpMethod, DistcpOptions
from airflow_provider_impala_transfer.core.transfer.methods import (
    FsspecMethod,
    HdfsCpMethod,
    HdfsPutMethod,
    ScpMethod,
    chain_from,
    check_method,
    copy_stream,
)
from airflow_provider_impala_transfer.core.transfer.lock import PublishLock
from airflow_provider_impala_transfer.core.transfer.publish import commit, publish, read_txn
from airflow_provider_impala_transfer.core.transfer.scp import ScpTarget
from airflow_provider_impala_transfer.core.transfer.webhdfs import WebHdfsMetadata
from tests.support.hdfs_files import hdfs_names

RUN = "manual__2026-11-24T10:00:00+00:00"


def make_chunk(directory: Path, chunk: int = 0, parts: int = 2, size: int = 300_000) -> Manifest:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for part in range(parts):
        path = directory / f"chunk-{chunk:05d}-part-{part:05d}.parquet"
        data = os.urandom(size)
        path.write_bytes(data)
        files.append(FileEntry(path=f"file://{path}", rows=10, bytes=size, sha256=hashlib.sha256(data).hexdigest(),
                               crc32c=f"{google_crc32c.value(data):08x}", chunk=chunk, part=part, format="parquet",
                               compression="snappy"))
    return Manifest(files=files, schema=pa.schema([("x", pa.int64())]), chunks=[Chunk(index=chunk)])


def names(manifest: Manifest) -> list[str]:
    return [f.name for f in manifest.files]


def hdfs_destination(root: Path | str, metadata: WebHdfsMetadata | None = None,
                     runner: CommandRunner | None = None) -> HdfsDestination:
    """``root``: an hdfs:// URI, or a local path (file://)."""
    uri = root if str(root).startswith("hdfs://") else f"file://{root}"
    return HdfsDestination(root=uri, shell=HdfsShell(runner=runner or CommandRunner(timeout=120)), metadata=metadata)


def unique_dir(name: str) -> str:
    """A fresh directory on the target cluster for one test."""
    return f"hdfs://cluster2/tests/{name}-{uuid.uuid4().hex[:8]}"



# --- configuration and command lines -----------------------------------------------------------

def test_seed_style_target_without_scheme_is_refused_with_the_form_to_write():
    with pytest.raises(ConfigError, match=r"target_path: 'cluster2.example.com/target/path' has no scheme.*"
                                          r"write hdfs://cluster2.example.com/target/path"):
        normalize_uri("cluster2.example.com/target/path", "target_path")
    assert normalize_uri("/target/path", "target_path", cluster="cluster2.example.com:8020") == \
        "hdfs://cluster2.example.com:8020/target/path"
    with pytest.raises(ConfigError, match="target_path: '/target' has no scheme"):
        normalize_uri("/target", "target_path")
    with pytest.raises(ConfigError, match=r"target_path: .*'\.\.' segment"):
        normalize_uri("hdfs://nn/data/../etc", "target_path")
    with pytest.raises(ConfigError, match="target_cluster"):
        normalize_uri("/x", "target_path", cluster="nn; rm -rf /")


def test_method_names_and_chain_entry():
    assert chain_from(None) == ["distcp", "hdfs_put", "hdfs_cp", "scp"]
    assert chain_from(None, use_distcp=False) == ["hdfs_put", "hdfs_cp", "scp"]
    assert chain_from("scp") == ["scp"] and chain_from("fsspec") == ["fsspec"]
    with pytest.raises(ConfigError, match="method: 'rsync' is not a transfer method"):
        check_method("rsync")
    with pytest.raises(ConfigError, match="use_distcp: is false but method is 'distcp'"):
        chain_from("distcp", use_distcp=False)


def test_distcp_job_is_named_after_its_run_and_chunk_and_queued_where_the_user_says(tmp_path):
    """The RM lists the job as impala-transfer:<dag>:<run>:chunk-<n>; the queue and the job settings
    are generic -D options before DistCp's own, and the checksum mode comes last so none overrides it."""
    manifest = make_chunk(tmp_path / "extract", parts=1)
    options = DistcpOptions(yarn_queue="etl", conf={"mapreduce.map.memory.mb": 2048, "mapreduce.job.priority": "HIGH"})
    method = DistcpMethod(destination=hdfs_destination("hdfs://nn2/t"), source_shell=HdfsShell(), runner=CommandRunner(),
                          options=options, listing_dir="/lists")
    hdfs_files = [dataclasses.replace(f, path=f"hdfs://nn1/x/{f.name}") for f in manifest.files]
    argv = method.commands(hdfs_files, Run(RUN, dag_id="sales"), overwrite=False)[-1]
    assert argv[:7] == ["hadoop", "distcp", f"-Dmapreduce.job.name=impala-transfer:sales:{RUN}:chunk-00000",
                        "-Dmapreduce.job.queuename=etl", "-Dmapreduce.map.memory.mb=2048",
                        "-Dmapreduce.job.priority=HIGH", "-Ddfs.checksum.combine.mode=COMPOSITE_CRC"]
    for conf, message in [
        ({"dfs.checksum.combine.mode": "MD5MD5CRC"}, "distcp_conf.dfs.checksum.combine.mode: the copy is verified"),
        ({"fs.s3a.secret.key": "x"}, "distcp_conf.fs.s3a.secret.key: would put a secret on the distcp command line"),
        ({"a b": "1"}, "distcp_conf: 'a b' is not a Hadoop setting name"),
        ({"mapreduce.map.memory.mb": "1\n-Dx=y"}, "distcp_conf.mapreduce.map.memory.mb: is empty or has a line break"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            DistcpOptions(conf=conf)
    with pytest.raises(ConfigError, match="yarn_queue: is given twice"):
        DistcpOptions(yarn_queue="etl", conf={"mapreduce.job.queuename": "adhoc"})
    with pytest.raises(ConfigError, match="yarn_queue: 'etl -Dx=y' is not a queue name"):
        DistcpOptions(yarn_queue="etl -Dx=y")


def test_distcp_is_one_job_per_chunk_with_update_and_no_delete(tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=3)
    method = DistcpMethod(destination=hdfs_destination("/t"), source_shell=HdfsShell(), runner=CommandRunner(),
                          source_hdfs_path="hdfs://source-nn:8020/staging",
                          options=DistcpOptions(maps=8, bandwidth_mb=50), listing_dir="/lists")
    commands = method.commands(manifest.files, Run(RUN), overwrite=False)
    key = method.staging_key(Run(RUN))
    assert re.fullmatch(r"manual__2026-11-24T10_00_00_00_00-[0-9a-f]{12}-[0-9a-f]{8}", key)  # run, target
    staged = f"hdfs://source-nn:8020/staging/_impala_transfer_staging/{key}/chunk-00000"  # one dir per chunk
    assert commands[0] == ["hdfs", "dfs", "-mkdir", "-p", staged]
    assert commands[1][:4] == ["hdfs", "dfs", "-put", "-f"] and commands[1][-1] == staged + "/"
    assert commands[-1] == ["hadoop", "distcp", f"-Dmapreduce.job.name=impala-transfer:{RUN}:chunk-00000",
                            "-Ddfs.checksum.combine.mode=COMPOSITE_CRC", "-update",
                            "-strategy", "dynamic", "-m", "8", "-bandwidth", "50",
                            "-f", f"file:///lists/distcp-{key}-chunk-00000.list",
                            f"file:///t/_impala_transfer_staging/{Run(RUN).key}"]
    assert sum(1 for argv in commands if "distcp" in argv) == 1
    with pytest.raises(ConfigError, match="source_hdfs_path: chunk files are on this machine"):
        DistcpMethod(destination=hdfs_destination("/t"), source_shell=HdfsShell(), runner=CommandRunner()) \
            .commands(manifest.files, Run(RUN), overwrite=False)
    with pytest.raises(ConfigError, match="distcp_strategy"):
        DistcpOptions(strategy="fastest")


def test_hdfs_put_overwrites_only_when_asked(tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=1)
    method = HdfsPutMethod(destination=hdfs_destination("/t"), runner=CommandRunner())
    files = manifest.files
    assert "-f" not in method.commands(files, Run(RUN), overwrite=False)[1]
    assert method.commands(files, Run(RUN), overwrite=True)[1][3] == "-f"


def test_with_webhdfs_the_run_staging_directory_is_made_over_http_not_by_a_jvm(tmp_path):
    files = make_chunk(tmp_path / "extract", parts=1).files
    webhdfs = WebHdfsMetadata(InsecureClient("http://127.0.0.1:9", user="etl"))  # commands() calls nothing
    put = HdfsPutMethod(destination=hdfs_destination("hdfs://nn/t", metadata=webhdfs), runner=CommandRunner())
    cp = HdfsCpMethod(destination=hdfs_destination("hdfs://nn/t", metadata=webhdfs), runner=CommandRunner())
    distcp = DistcpMethod(destination=hdfs_destination("hdfs://nn/t", metadata=webhdfs), source_shell=HdfsShell(),
                          runner=CommandRunner(), source_hdfs_path="hdfs://source-nn/staging")
    assert [argv[2] for argv in put.commands(files, Run(RUN), overwrite=False)] == ["-put"]
    assert [argv[2] for argv in cp.commands(files, Run(RUN), overwrite=False)] == ["-cp"]
    steps = distcp.commands(files, Run(RUN), overwrite=False)  # staging on the source cluster, then the job
    assert [argv[:3] for argv in steps[:2]] == [["hdfs", "dfs", "-mkdir"], ["hdfs", "dfs", "-put"]]
    assert steps[2][:2] == ["hadoop", "distcp"] and COMPOSITE_CRC in steps[2] and len(steps) == 3
    assert "hdfs://source-nn/staging" in steps[0][-1]
    # without WebHDFS the client makes it, first
    assert HdfsPutMethod(destination=hdfs_destination("hdfs://nn/t"), runner=CommandRunner()).commands(
        files, Run(RUN), overwrite=False)[0] == ["hdfs", "dfs", "-mkdir", "-p", put.target_dir(Run(RUN))]


def test_scp_command_checks_host_keys_runs_in_batch_mode_and_limits_bandwidth():
    target = ScpTarget(host="edge.example.com", user="etl", port=2222, key_file="/keys/id", known_hosts="/keys/kh",
                       remote_path="/data/in", bandwidth_kbit=8000)
    argv = target.scp_argv(["/tmp/a b.parquet"], "/data/in/x")
    assert argv[0] == "scp" and "-l" in argv and argv[argv.index("-l") + 1] == "8000"
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=/keys/kh"):
        assert option in argv
    assert argv[-3:] == ["--", "/tmp/a b.parquet", "etl@edge.example.com:/data/in/x/"]
    assert target.ssh_argv("mkdir", "-p", "--", "/d/$(touch x); y")[-1] == "mkdir -p -- '/d/$(touch x); y'"
    with pytest.raises(ConfigError, match="scp host: is not set"):
        ScpTarget(host="", remote_path="/x")
    with pytest.raises(ConfigError, match="strict_host_key_checking: 'no' is not allowed"):
        ScpTarget(host="h", remote_path="/x", host_key_checking="no")
    with pytest.raises(ConfigError, match="scp_target_path"):
        ScpTarget(host="h", remote_path="relative/dir")


def test_a_missing_binary_fails_fast_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    manifest = make_chunk(tmp_path / "extract", parts=1)
    method = HdfsPutMethod(destination=hdfs_destination(tmp_path / "t"), runner=CommandRunner())
    with pytest.raises(ToolNotFound, match=r"hdfs not found on PATH \(set hdfs_bin=/path/to/hdfs\)"):
        deliver_chunk(method, manifest, Run(RUN), overwrite=False)
    distcp = DistcpMethod(destination=hdfs_destination(tmp_path / "t"), source_shell=HdfsShell(), runner=CommandRunner(),
                          source_hdfs_path="file:///s", options=DistcpOptions(hadoop_bin="/opt/none/hadoop"))
    with pytest.raises(ToolNotFound, match=r"hadoop not found at /opt/none/hadoop \(set hadoop_bin="):
        deliver_chunk(distcp, manifest, Run(RUN), overwrite=False)


def test_timeout_and_kill_stop_the_whole_process_group(tmp_path):
    child_pid_file = tmp_path / "child.pid"
    script = f"import subprocess,time; p=subprocess.Popen(['sleep','60']); open({str(child_pid_file)!r},'w').write(str(p.pid)); time.sleep(60)"
    runner = CommandRunner(timeout=2)
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out"):
        runner.run([sys.executable, "-c", script])
    assert time.monotonic() - started < 15
    child = int(child_pid_file.read_text())
    time.sleep(0.5)
    assert not _alive(child), "the tool's child survived the timeout"


def test_stop_kills_the_running_tool_and_starts_no_other(tmp_path):
    """on_kill / Ctrl-C: a fallback chain must not go on to its next method's tool."""
    runner = CommandRunner(timeout=60)
    worker_error: list[BaseException] = []

    def run_long():
        try:
            runner.run(["sleep", "60"])
        except CommandFailed as exc:
            worker_error.append(exc)

    worker = threading.Thread(target=run_long)
    worker.start()
    deadline = time.monotonic() + 10
    while not runner._procs and time.monotonic() < deadline:  # noqa: SLF001 - wait for the start
        time.sleep(0.05)
    runner.stop()
    worker.join(timeout=15)
    assert worker_error and worker_error[0].returncode == -signal.SIGTERM
    with pytest.raises(Stopped, match="not starting true: the transfer was cancelled"):
        runner.run(["true"])
    assert isinstance(Stopped("x"), TransferError)  # a stopped method fails like any other


def test_kill_stops_every_tool_running_side_by_side():
    """Verification runs -stat and -checksum at the same time; on_kill must stop both."""
    runner = CommandRunner()
    failures: list[CommandFailed] = []

    def run_long():
        try:
            runner.run(["sleep", "60"])
        except CommandFailed as exc:
            failures.append(exc)

    workers = [threading.Thread(target=run_long) for _ in range(2)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 10
    while len(runner._procs) < 2 and time.monotonic() < deadline:  # noqa: SLF001 - wait for both starts
        time.sleep(0.05)
    started = time.monotonic()
    runner.kill()
    for worker in workers:
        worker.join(timeout=15)
    assert len(failures) == 2 and time.monotonic() - started < 10
    assert not runner._procs  # noqa: SLF001


# --- real HDFS: two clusters, the real FsShell and DistCp ----------------------------------------

@pytest.mark.parametrize("method_class", [HdfsPutMethod, HdfsCpMethod])
def test_hdfs_methods_deliver_literal_weird_paths_verified_by_the_clusters_crc32c(method_class, hadoop_env, tmp_path):
    root = unique_dir("tärget dir $(touch pwned); x")
    manifest = make_chunk(tmp_path / "extract", parts=2, size=3 << 20)  # 2 blocks each on cluster2
    lines: list[str] = []
    runner = CommandRunner(timeout=120, log=lines.append)
    method = method_class(destination=hdfs_destination(root, runner=runner), runner=runner)
    record = deliver_chunk(method, manifest, Run(RUN, {"ds": "2026-11-24"}), overwrite=False)
    assert record.method == method.name and len(record.files) == 2
    assert record.checks == "crc32c" and record.checksum_verified
    assert [f.crc32c for f in record.files] == [f.crc32c for f in manifest.files]
    assert not [line for line in lines if "-cat" in line]  # nothing was read back
    staging = f"{root}/_impala_transfer_staging/{Run(RUN, {'ds': '2026-11-24'}).staging_name}"
    assert hdfs_names(hadoop_env, staging) == names(manifest)
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def test_verification_reads_back_with_sha256_only_when_asked(hadoop_env, tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=1)
    lines: list[str] = []
    runner = CommandRunner(timeout=120, log=lines.append)
    method = HdfsPutMethod(destination=hdfs_destination(unique_dir("sha"), runner=runner), runner=runner)
    record = deliver_chunk(method, manifest, Run(RUN), overwrite=False, verify_mode="sha256")
    assert record.checks == "sha256" and any(" -cat " in line for line in lines)
    assert not any("-checksum" in line for line in lines)


def test_distcp_stages_local_files_on_cluster1_then_one_real_job_to_cluster2(hadoop_env, tmp_path):
    manifest = make_chunk(tmp_path / "extract", chunk=4, parts=3, size=1_500_000)
    source_root = f"hdfs://cluster1/staging-{uuid.uuid4().hex[:8]}"
    target_root = unique_dir("distcp")
    lines: list[str] = []
    runner = CommandRunner(timeout=300, log=lines.append)
    method = DistcpMethod(destination=hdfs_destination(target_root, runner=runner), source_shell=HdfsShell(runner=runner),
                          runner=runner, source_hdfs_path=source_root, options=DistcpOptions(maps=2))
    # Copies killed jobs of other runs left on cluster1 for this target: the old one goes; one still
    # running, one for another target and names no run of ours has are left alone.
    killed, running = (method.staging_key(Run(run_id, {"ds": "2026-12-07"})) for run_id in ("scheduled__k", "manual__r"))
    other_target = DistcpMethod(destination=hdfs_destination(unique_dir("elsewhere")), source_shell=HdfsShell(),
                                runner=runner, source_hdfs_path=source_root).staging_key(Run("scheduled__k"))
    cluster1 = InsecureClient(f"http://{hadoop_env.source.webhdfs_address}", user=hadoop_env.user)
    leftovers = f"{urlsplit(source_root).path}/_impala_transfer_staging"
    for name in (killed, running, other_target, "*", "x\n0 .."):
        cluster1.makedirs(f"{leftovers}/{name}/chunk-00004")
    for name in (killed, other_target, "*", "x\n0 .."):
        cluster1.set_times(f"{leftovers}/{name}", modification_time=int((time.time() - 2 * 86400) * 1000))
    record = deliver_chunk(method, manifest, Run(RUN), overwrite=False)
    assert record.counters["Files Copied"] == 3
    assert record.counters["Bytes Copied"] == record.counters["Bytes Expected"] == 3 * 1_500_000
    assert record.checks == "crc32c"
    assert hdfs_names(hadoop_env, f"{target_root}/_impala_transfer_staging/{Run(RUN).key}") == names(manifest)
    assert sum(1 for line in lines if line.startswith("running:") and " distcp " in line) == 1
    assert any(re.search(r"Running job: job_local\d+_\d+", line) for line in lines)  # streamed as it ran
    staged = hdfs_names(hadoop_env, f"{source_root}/_impala_transfer_staging")
    assert staged == sorted([method.staging_key(Run(RUN)), running, other_target, "*", "x\n0 .."])
    assert hdfs_names(hadoop_env, f"{source_root}/_impala_transfer_staging/{method.staging_key(Run(RUN))}") == []


def test_distcp_between_clusters_with_different_block_sizes_passes_its_checksum_check(hadoop_env):
    """Files already on cluster1 (1 MiB blocks) -> cluster2 (2 MiB blocks): DistCp's own check
    compares COMPOSITE_CRC file checksums, which do not depend on the block size."""
    source_dir = f"/exported-{uuid.uuid4().hex[:8]}"
    files = []
    for part in range(2):
        data = os.urandom(2_500_000)
        hadoop_env.source.put_bytes(f"{source_dir}/chunk-00000-part-{part:05d}.parquet", data)
        files.append(FileEntry(path=f"hdfs://cluster1{source_dir}/chunk-00000-part-{part:05d}.parquet",
                               bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                               crc32c=f"{google_crc32c.value(data):08x}", rows=1, chunk=0, part=part))
    assert hadoop_env.source.file_status(f"{source_dir}/chunk-00000-part-00000.parquet")["blockSize"] == 1 << 20
    manifest = Manifest(files=files, schema=pa.schema([("x", pa.int64())]), chunks=[Chunk(index=0)])
    target_root = unique_dir("blocks")
    method = DistcpMethod(destination=hdfs_destination(target_root), source_shell=HdfsShell(),
                          runner=CommandRunner(timeout=300), options=DistcpOptions(maps=2))
    record = deliver_chunk(method, manifest, Run(RUN), overwrite=False)
    assert record.counters["Files Copied"] == 2 and record.checks == "crc32c"
    copied = f"{urlsplit(target_root).path}/_impala_transfer_staging/{Run(RUN).key}/chunk-00000-part-00000.parquet"
    assert hadoop_env.target.file_status(copied)["blockSize"] == 2 << 20  # the target kept its own block size


def test_verification_catches_a_file_changed_at_the_target(hadoop_env, tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=1)
    root = unique_dir("changed")
    destination = hdfs_destination(root)
    method = HdfsPutMethod(destination=destination, runner=CommandRunner(timeout=120))
    run = Run(RUN)
    deliver_chunk(method, manifest, run, overwrite=False)
    delivered = f"{urlsplit(root).path}/_impala_transfer_staging/{run.staging_name}/{names(manifest)[0]}"
    data = bytearray(hadoop_env.target.read_bytes(delivered))
    data[100] ^= 0xFF  # same size, different bytes
    hadoop_env.target.put_bytes(delivered, bytes(data))
    with pytest.raises(VerificationError, match=r"differs from the extracted file: 300,000 bytes, crc32c [0-9a-f]{8}; "
                                                r"expected 300,000 bytes, crc32c [0-9a-f]{8}"):
        verify(destination, str(method.target_dir(run)), manifest.files)


@pytest.mark.parametrize("metadata", ["hdfs dfs", "webhdfs"])
def test_publish_renames_staging_replaces_its_own_rerun_and_leaves_other_runs(metadata, hadoop_env, tmp_path):
    root = unique_dir("publish")
    client = WebHdfsMetadata(InsecureClient(f"http://{hadoop_env.target.webhdfs_address}", user=hadoop_env.user))
    destination = hdfs_destination(root, metadata=client if metadata == "webhdfs" else None)
    method = HdfsPutMethod(destination=destination, runner=CommandRunner(timeout=120))
    first = make_chunk(tmp_path / "a", parts=2)
    other_run = Run("scheduled__2026-11-23", {"ds": "2026-11-23"})
    deliver_chunk(method, first, other_run, overwrite=False)
    publish(destination, other_run, names(first), names(first))
    commit(destination, other_run)
    run = Run(RUN, {"ds": "2026-11-24"})
    deliver_chunk(method, first, run, overwrite=False)
    publish(destination, run, names(first), names(first))
    commit(destination, run)
    # re-run of the same run with a shorter result: one file; the earlier two are replaced, nothing nests
    second = make_chunk(tmp_path / "b", parts=1)
    deliver_chunk(method, second, run, overwrite=True)
    publish(destination, run, names(second), names(second))
    assert hdfs_names(hadoop_env, f"{root}/_impala_transfer_previous/ds=2026-11-24") == names(first)  # until commit
    commit(destination, run)
    target = hadoop_env.target
    assert hdfs_names(hadoop_env, f"{root}/ds=2026-11-24") == names(second)
    path = urlsplit(root).path
    assert target.read_bytes(f"{path}/ds=2026-11-24/{names(second)[0]}") == (tmp_path / "b" / names(second)[0]).read_bytes()
    assert hdfs_names(hadoop_env, f"{root}/ds=2026-11-23") == names(first)
    assert hdfs_names(hadoop_env, f"{root}/_impala_transfer_previous") == []
    assert hdfs_names(hadoop_env, f"{root}/_impala_transfer_locks", hidden=True) == []
    assert hdfs_names(hadoop_env, root, hidden=True) == ["_impala_transfer_locks", "_impala_transfer_previous",
                                                         "_impala_transfer_staging", "_impala_transfer_txn",
                                                         "ds=2026-11-23", "ds=2026-11-24"]
    assert read_txn(destination, run.at(root)).phase == "committed"  # who published it last, kept
    # publishing again is a no-op; publishing a run that delivered nothing is an error
    publish(destination, run, names(second), names(second))
    with pytest.raises(PublishError, match="nothing to publish"):
        publish(destination, Run("never_delivered"), names(second), names(second))


def test_webhdfs_metadata_through_the_hdfs_providers_hook(hadoop_env, monkeypatch, closed_port):
    from airflow_provider_impala_transfer.hooks.hadoop import webhdfs_metadata

    monkeypatch.setenv("AIRFLOW_CONN_TARGET_WEBHDFS", hadoop_env.webhdfs_connection_json(hadoop_env.target))
    monkeypatch.setenv("AIRFLOW_CONN_DEAD_WEBHDFS", json.dumps(
        {"conn_type": "webhdfs", "host": "127.0.0.1", "port": closed_port, "login": hadoop_env.user}))
    dead = webhdfs_metadata("dead_webhdfs")  # connects when first used, not before
    with pytest.raises(TransferError, match=rf"WebHDFS connection 'dead_webhdfs': no NameNode answered at "
                                            rf"127.0.0.1:{closed_port} \(check that it runs"):
        dead.is_dir("hdfs://cluster2/")
    metadata = webhdfs_metadata("target_webhdfs")
    root = unique_dir("hook")
    metadata.makedirs(f"{root}/a")
    assert metadata.is_dir(f"{root}/a") and not metadata.is_dir(f"{root}/b")
    metadata.move(f"{root}/a", f"{root}/b")
    assert metadata.list_names(root) == ["b"]
    with pytest.raises(TransferError, match="WebHDFS list"):
        metadata.list_names(f"{root}/missing")


def test_fsspec_to_webhdfs_streams_and_verifies_by_sha256(hadoop_env, tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=2, size=3 << 20)
    host, port = hadoop_env.target.webhdfs_address.split(":")
    fs = fsspec.filesystem("webhdfs", host=host, port=int(port), user=hadoop_env.user)
    root = urlsplit(unique_dir("fsspec")).path
    method = FsspecMethod(destination=FsspecDestination(fs=fs, root=root))
    run = Run(RUN, {"ds": "2026-11-24"})
    record = deliver_chunk(method, manifest, run, overwrite=False)
    assert record.checks == "sha256"  # WebHDFS offers no checksum comparable with the manifest
    # fsspec's webhdfs cannot create a lock only if absent (tests/faults/test_publish_locks.py): asked for
    publish(method.destination, run, names(manifest), names(manifest), lock=PublishLock(mode="none"))
    assert hdfs_names(hadoop_env, f"hdfs://cluster2{root}/ds=2026-11-24") == names(manifest)


# --- real sshd ---------------------------------------------------------------------------------

def scp_method(sshd, remote: Path, **overrides) -> ScpMethod:
    settings = dict(host=sshd.host, port=sshd.port, user=sshd.user, key_file=str(sshd.key_file),
                    known_hosts=str(sshd.known_hosts), remote_path=str(remote), connect_timeout=5)
    settings.update(overrides)
    runner = CommandRunner(timeout=60)
    return ScpMethod(destination=SshDestination(target=ScpTarget(**settings), runner=runner), runner=runner)


def test_scp_delivers_verifies_and_publishes_over_real_sshd(sshd, tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=2)
    method = scp_method(sshd, tmp_path / "remote dir; $(touch pwned)", bandwidth_kbit=800_000)
    run = Run(RUN, {"ds": "2026-11-24"})
    record = deliver_chunk(method, manifest, run, overwrite=False)
    assert record.destination == "ssh" and record.checksum_verified
    publish(method.destination, run, names(manifest), names(manifest))
    final = tmp_path / "remote dir; $(touch pwned)" / "ds=2026-11-24"
    assert sorted(p.name for p in final.iterdir()) == names(manifest)
    assert not list(tmp_path.rglob("pwned"))


def test_scp_refuses_an_unknown_host_key_unless_accept_new(sshd, tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=1)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(CommandFailed, match="Host key verification failed"):
        deliver_chunk(scp_method(sshd, tmp_path / "r", known_hosts=str(empty)), manifest, Run(RUN),
                      overwrite=False)
    deliver_chunk(scp_method(sshd, tmp_path / "r", known_hosts=str(empty), host_key_checking="accept-new"),
                  manifest, Run(RUN), overwrite=False)
    assert "ssh-ed25519" in empty.read_text()  # learnt on first use, checked from now on


def test_scp_to_an_unreachable_target_fails_within_its_timeout(tmp_path, closed_port):
    manifest = make_chunk(tmp_path / "extract", parts=1)
    runner = CommandRunner(timeout=30)
    target = ScpTarget(host="127.0.0.1", port=closed_port, remote_path="/tmp/x", connect_timeout=3)
    method = ScpMethod(destination=SshDestination(target=target, runner=runner), runner=runner)
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="Connection refused"):
        deliver_chunk(method, manifest, Run(RUN), overwrite=False)
    assert time.monotonic() - started < 30


# --- fsspec: memory, local, S3 (moto server) ----------------------------------------------------

def test_fsspec_to_memory_and_local(tmp_path):
    manifest = make_chunk(tmp_path / "extract", parts=2)
    for fs, root in ((fsspec.filesystem("memory"), "/impala-transfer-test"), (fsspec.filesystem("file"), str(tmp_path / "t"))):
        method = FsspecMethod(destination=FsspecDestination(fs=fs, root=root))
        run = Run(RUN, {"ds": "2026-11-24"})
        deliver_chunk(method, manifest, run, overwrite=False)
        publish(method.destination, run, names(manifest), names(manifest))
        assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{root}/ds=2026-11-24", detail=False)) == names(manifest)


def test_fsspec_to_s3_streams_verifies_and_publishes(s3, tmp_path):
    s3.create_bucket("impala-transfer")
    manifest = make_chunk(tmp_path / "extract", parts=2, size=6 << 20)
    fs = fsspec.filesystem("s3", **s3.storage_options())
    method = FsspecMethod(destination=FsspecDestination(fs=fs, root="impala-transfer/events"))
    run = Run(RUN, {"ds": "2026-11-24"})
    record = deliver_chunk(method, manifest, run, overwrite=False)
    assert record.bytes == 12 << 20
    publish(method.destination, run, names(manifest), names(manifest))
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls("impala-transfer/events/ds=2026-11-24", detail=False)) == names(manifest)
    assert not fs.exists(f"impala-transfer/events/_impala_transfer_staging/{run.staging_name}")


def test_copy_stream_never_reads_more_than_a_block(tmp_path):
    memory = fsspec.filesystem("memory")
    memory.pipe("/big/source", os.urandom(5 << 20))
    reads: list[int] = []
    real_open = memory.open

    def spying_open(path, mode="rb", **kwargs):
        handle = real_open(path, mode, **kwargs)
        if "r" in mode:
            read = handle.read
            handle.read = lambda n=-1: (reads.append(n), read(n))[1]
        return handle

    memory.open = spying_open
    copied = copy_stream(memory, "/big/source", memory, "/big/target", block_size=1 << 20)
    assert copied == 5 << 20 and memory.cat("/big/target") == memory.cat("/big/source")
    assert reads and all(0 < n <= 1 << 20 for n in reads)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(status) and not status.startswith("Z")


# --- the chain and publishing never stop on the wrong thing ------------------------------------

def test_any_error_inside_a_method_fails_that_method_and_the_next_one_runs(tmp_path):
    """ENOSPC writing distcp's listing or a tool's unreadable answer is that method's failure."""
    from airflow_provider_impala_transfer.core.transfer.delivery import deliver_with_fallback

    def deliver(method, overwrite):
        if method == "distcp":
            raise OSError(28, "No space left on device", "/tmp/distcp.list")
        if method == "hdfs_put":
            raise ValueError("invalid literal for int() with base 10: 'n/a'")
        return f"delivered by {method}"

    record, attempts = deliver_with_fallback(
        [(name, lambda name=name: name) for name in ("distcp", "hdfs_put", "hdfs_cp")], deliver, label="chunk 0")
    assert record == "delivered by hdfs_cp"
    assert [(a.method, a.delivered) for a in attempts] == [("distcp", False), ("hdfs_put", False), ("hdfs_cp", True)]
    assert attempts[0].error == "OSError: [Errno 28] No space left on device: '/tmp/distcp.list'"
    assert attempts[1].error.startswith("ValueError: invalid literal")


def test_a_run_whose_chunks_reached_different_places_is_not_published():
    from airflow_provider_impala_transfer.core.transfer.publish import publish_deliveries
    from airflow_provider_impala_transfer.core.transfer.records import DeliveredFile, DeliveryRecord

    def record(chunk: int, destination: str, root: str) -> DeliveryRecord:
        name = f"chunk-{chunk:05d}-part-00000.parquet"
        return DeliveryRecord(method="hdfs_put" if destination == "hdfs" else "scp", destination=destination,
                              root=root, staging_dir=f"{root}/_impala_transfer_staging/r", chunk=f"chunk {chunk}",
                              files=[DeliveredFile(name, f"{root}/{name}", 1, "0" * 64, None, "sha256")], rows=1)

    records = [record(0, "hdfs", "hdfs://cluster2/x"), record(1, "ssh", "/data/x"), record(2, "hdfs", "hdfs://cluster2/x")]
    touched: list[str] = []
    with pytest.raises(PublishError, match=r"different places \(hdfs: chunk 0, chunk 2 at hdfs://cluster2/x; "
                                           r"ssh: chunk 1 at /data/x\).*nothing was published"):
        publish_deliveries(records, Run(RUN), lambda kind: touched.append(kind))
    assert touched == []  # refused before any destination was touched
