"""Specifications of the real Hadoop 3.5.0 test bed (tests/support/local_hdfs.py).

Two HDFS clusters (cluster1 = source with 1 MiB blocks, cluster2 = target with 2 MiB blocks), the
real FsShell and the real DistCp on the local job runner: the session's ``local_hadoop`` fixture
(tests/conftest.py), shared with every other test, so each test here writes under paths of its own.
Test data is written through WebHDFS (no JVM start, and with the cluster's own block size); the
behaviour under test runs through the generated ``hdfs`` and ``hadoop`` executables, as the
transfer code runs them. The last section specifies the local HiveServer2 on top of them: its
warehouse on cluster1, and external tables over files on cluster2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error

import pytest

from tests.support.local_hdfs import MiB, LocalHdfsCluster, crc32c

COUNTER = re.compile(r"^\s+(?P<name>[A-Za-z][\w ]*?)=(?P<value>\d+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def multi_block_file(local_hadoop):
    """A 1.3 MB file on cluster1, written with cluster1's 1 MiB blocks (so 2 blocks)."""
    data = os.urandom(MiB + 300_000)
    local_hadoop.source.put_bytes("/multi/part-0.bin", data)
    assert local_hadoop.source.file_status("/multi/part-0.bin")["blockSize"] == MiB
    return data


def counters(output: str) -> dict[str, int]:
    return {m["name"]: int(m["value"]) for m in COUNTER.finditer(output)}


def exists(cluster: LocalHdfsCluster, path: str) -> bool:
    try:
        cluster.file_status(path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def test_one_client_configuration_reaches_both_clusters_by_nameservice(local_hadoop):
    result = local_hadoop.hdfs("dfs", "-ls", "-d", "hdfs://cluster1/", "hdfs://cluster2/", check=True)
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["hdfs://cluster1/", "hdfs://cluster2/"]
    assert result.stderr == ""  # no JVM or log4j chatter for a successful call

    version = local_hadoop.hadoop("version", check=True)
    assert version.stdout.splitlines()[0] == "Hadoop 3.5.0"

    assert local_hadoop.env()["PATH"].split(os.pathsep)[0] == str(local_hadoop.bin_dir)
    assert local_hadoop.env()["HADOOP_CONF_DIR"] == str(local_hadoop.conf_dir)


def test_hadoop_env_puts_the_real_clients_on_this_tests_path(hadoop_env, tmp_path):
    """What the transfer code meets: plain `hdfs`/`hadoop` from PATH, HADOOP_CONF_DIR in the environment."""
    assert shutil.which("hdfs") == str(hadoop_env.bin_dir / "hdfs")
    assert shutil.which("hadoop") == str(hadoop_env.bin_dir / "hadoop")
    assert os.environ["HADOOP_CONF_DIR"] == str(hadoop_env.conf_dir)
    assert "HADOOP_USER_NAME" not in os.environ
    (tmp_path / "local.txt").write_text("local\n")

    # Inherits os.environ, as the transfer code's subprocesses do: hdfs:// and file:// alike.
    result = subprocess.run(["hdfs", "dfs", "-ls", "-C", "-d", "hdfs://cluster1/", "hdfs://cluster2/",
                             f"file://{tmp_path}/local.txt"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hdfs://cluster1/", "hdfs://cluster2/", f"file://{tmp_path}/local.txt"]


def test_distcp_copies_between_the_two_clusters_with_the_local_job_runner(local_hadoop):
    source, target = local_hadoop.source, local_hadoop.target
    files = {"/a/one.txt": b"one\n", "/a/two.bin": os.urandom(200_000)}
    for path, data in files.items():
        source.put_bytes(path, data)
    source.put_bytes("/a/listing", "".join(f"hdfs://cluster1{p}\n" for p in files).encode())

    first = local_hadoop.hadoop("distcp", "-update", "-f", "hdfs://cluster1/a/listing", "hdfs://cluster2/a-copy")

    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-3000:]
    assert re.search(r"Running job: job_local\d+_0001", output)
    assert "DistCp Counters" in output
    assert counters(output)["Bytes Copied"] == sum(len(d) for d in files.values())
    assert counters(output)["Bytes Expected"] == sum(len(d) for d in files.values())
    assert counters(output)["Files Copied"] == 2
    for path, data in files.items():
        assert target.read_bytes(path.replace("/a/", "/a-copy/")) == data

    again = local_hadoop.hadoop("distcp", "-update", "-f", "hdfs://cluster1/a/listing", "hdfs://cluster2/a-copy")

    assert again.returncode == 0, again.stderr[-3000:]
    assert counters(again.stderr)["Files Skipped"] == 2  # -update: same length and checksum
    assert "Files Copied" not in counters(again.stderr)


def test_distcp_fails_its_checksum_check_when_the_block_sizes_differ(local_hadoop, multi_block_file):
    result = local_hadoop.hadoop("distcp", "-update", "hdfs://cluster1/multi", "hdfs://cluster2/multi-plain")

    assert result.returncode != 0
    assert "Checksum mismatch between hdfs://cluster1/multi/part-0.bin" in result.stderr
    assert "Source and target differ in block-size" in result.stderr
    assert "Use -pb to preserve block-sizes during copy" in result.stderr


def test_distcp_with_pb_keeps_the_source_block_size_and_passes_the_checksum_check(local_hadoop, multi_block_file):
    result = local_hadoop.hadoop("distcp", "-pb", "-update", "hdfs://cluster1/multi", "hdfs://cluster2/multi-pb")

    assert result.returncode == 0, result.stderr[-3000:]
    assert local_hadoop.target.file_status("/multi-pb/part-0.bin")["blockSize"] == MiB
    assert local_hadoop.target.read_bytes("/multi-pb/part-0.bin") == multi_block_file


def test_distcp_with_composite_crc_passes_the_checksum_check_across_block_sizes(local_hadoop, multi_block_file):
    result = local_hadoop.hadoop("distcp", "-Ddfs.checksum.combine.mode=COMPOSITE_CRC", "-update",
                                 "hdfs://cluster1/multi", "hdfs://cluster2/multi-crc")

    assert result.returncode == 0, result.stderr[-3000:]
    assert local_hadoop.target.file_status("/multi-crc/part-0.bin")["blockSize"] == 2 * MiB  # the client's
    assert local_hadoop.target.read_bytes("/multi-crc/part-0.bin") == multi_block_file


def test_composite_crc_checksum_is_the_crc32c_of_the_whole_file_whatever_the_block_size(local_hadoop, multi_block_file):
    local_hadoop.target.put_bytes("/checksum/f.bin", multi_block_file)  # cluster2: one 2 MiB block
    on_target, on_source = "hdfs://cluster2/checksum/f.bin", "hdfs://cluster1/multi/part-0.bin"

    composite = local_hadoop.hdfs("dfs", "-Ddfs.checksum.combine.mode=COMPOSITE_CRC", "-checksum",
                                  on_target, on_source, check=True)
    default = local_hadoop.hdfs("dfs", "-checksum", on_target, on_source, check=True)

    expected = f"{crc32c(multi_block_file):08x}"
    assert composite.stdout.splitlines() == [f"{on_target}\tCOMPOSITE-CRC32C\t{expected}",
                                             f"{on_source}\tCOMPOSITE-CRC32C\t{expected}"]
    # The default MD5-of-MD5-of-CRC depends on the block size: 4096 or 2048 CRCs of 512 bytes a block.
    target_line, source_line = default.stdout.splitlines()
    assert re.fullmatch(rf"{on_target}\tMD5-of-0MD5-of-512CRC32C\t[0-9a-f]{{56}}", target_line)  # one block
    assert re.fullmatch(rf"{on_source}\tMD5-of-2048MD5-of-512CRC32C\t[0-9a-f]{{56}}", source_line)
    assert target_line.split("\t")[2] != source_line.split("\t")[2]


def test_webhdfs_file_checksum_is_md5_of_md5_of_crc_whatever_the_combine_mode(local_hadoop, multi_block_file):
    target = local_hadoop.target
    assert target.checksum_combine_mode == "COMPOSITE_CRC"  # in its daemons' hdfs-site (conftest)
    target.put_bytes("/webhdfs/f.bin", multi_block_file)
    fsshell = local_hadoop.hdfs("dfs", "-checksum", "hdfs://cluster2/webhdfs/f.bin", check=True)
    fsshell_hex = fsshell.stdout.split("\t")[2].strip()

    plain = target.webhdfs_checksum("/webhdfs/f.bin")
    with_parameter = target.webhdfs_checksum("/webhdfs/f.bin", **{"dfs.checksum.combine.mode": "COMPOSITE_CRC"})

    assert plain == with_parameter
    assert plain["algorithm"] == "MD5-of-0MD5-of-512CRC32C"
    assert plain["length"] == 28
    # "bytes" is the 28-byte checksum FsShell prints, padded with 4 zero bytes.
    assert plain["bytes"] == fsshell_hex + "00000000"


def test_a_space_quota_on_a_target_directory_makes_a_copy_into_it_fail(local_hadoop):
    local_hadoop.source.put_bytes("/quota-src/small.txt", b"small\n")
    local_hadoop.hdfs("dfs", "-mkdir", "-p", "hdfs://cluster2/quota", check=True)
    refused = local_hadoop.hdfs("dfsadmin", "-setSpaceQuota", "1m", "hdfs://cluster2/quota")
    assert "Superuser privilege is required" in refused.stderr  # the client user is no superuser
    local_hadoop.hdfs("dfsadmin", "-setSpaceQuota", "1m", "hdfs://cluster2/quota", superuser=True, check=True)

    cp = local_hadoop.hdfs("dfs", "-cp", "hdfs://cluster1/quota-src/small.txt", "hdfs://cluster2/quota/")
    distcp = local_hadoop.hadoop("distcp", "-update", "hdfs://cluster1/quota-src", "hdfs://cluster2/quota")

    # A block is charged in full (2 MiB x 1 replica) while it is written: even 6 bytes exceed 1 MiB.
    message = ("The DiskSpace quota of /quota is exceeded: quota = 1048576 B = 1 MB "
               "but diskspace consumed = 2097152 B = 2 MB")
    assert cp.returncode == 1
    assert cp.stderr.strip() == f"cp: {message}"
    assert distcp.returncode != 0
    assert f"DSQuotaExceededException: {message}" in distcp.stderr


def test_a_directory_without_write_permission_makes_a_copy_into_it_fail(local_hadoop):
    local_hadoop.source.put_bytes("/perm-src/small.txt", b"small\n")
    target = local_hadoop.target
    target.webhdfs("PUT", "/read-only", "MKDIRS")
    target.webhdfs("PUT", "/read-only", "SETPERMISSION", permission="555")

    cp = local_hadoop.hdfs("dfs", "-cp", "hdfs://cluster1/perm-src/small.txt", "hdfs://cluster2/read-only/")

    assert cp.returncode == 1
    assert cp.stderr.strip() == (f'cp: Permission denied: user={local_hadoop.user}, access=WRITE, '
                                 f'inode="/read-only":{local_hadoop.user}:supergroup:dr-xr-xr-x')


def test_mv_of_a_directory_onto_an_existing_directory_nests_it(local_hadoop):
    target = local_hadoop.target
    target.put_bytes("/mv/a/x.txt", b"x")
    target.webhdfs("PUT", "/mv/b", "MKDIRS")

    local_hadoop.hdfs("dfs", "-mv", "hdfs://cluster2/mv/a", "hdfs://cluster2/mv/b", check=True)

    assert target.read_bytes("/mv/b/a/x.txt") == b"x"
    assert target.webhdfs("GET", "/mv", "LISTSTATUS")["FileStatuses"]["FileStatus"][0]["pathSuffix"] == "b"


def test_a_stopped_namenode_fails_every_call_within_seconds_and_comes_back_on_restart(local_hadoop):
    target = local_hadoop.target
    target.put_bytes("/survives/f.txt", b"kept")
    local_hadoop.source.put_bytes("/nn-down/f.txt", b"never copied")
    target.stop_namenode()
    try:
        started = time.monotonic()
        ls = local_hadoop.hdfs("dfs", "-ls", "hdfs://cluster2/survives")
        ls_seconds = time.monotonic() - started
        started = time.monotonic()
        distcp = local_hadoop.hadoop("distcp", "-update", "hdfs://cluster1/nn-down", "hdfs://cluster2/never")
        distcp_seconds = time.monotonic() - started
    finally:
        target.start_namenode()

    assert ls.returncode == 1
    assert "java.net.ConnectException: Connection refused" in ls.stderr
    assert ls_seconds < 10
    assert distcp.returncode != 0
    assert "Connection refused" in distcp.stderr
    assert distcp_seconds < 15
    again = local_hadoop.hdfs("dfs", "-cat", "hdfs://cluster2/survives/f.txt", check=True)
    assert again.stdout == "kept"


def test_distcp_refuses_bad_arguments_with_exit_255_and_copies_nothing(local_hadoop):
    """Real DistCp's refusals (no job is started): what a wrongly built argv leads to."""
    local_hadoop.source.put_bytes("/args/x.txt", b"x")
    local_hadoop.source.put_bytes("/args/listing", b"hdfs://cluster1/args/x.txt\n")
    source, target = "hdfs://cluster1/args/x.txt", "hdfs://cluster2/args-never"
    cases = {
        ("-update", "-overwrite", source): "Invalid arguments: Overwrite and update options are mutually exclusive",
        ("-m", "many", source): "Invalid arguments: Number of maps is invalid: many",
        ("-f", "hdfs://cluster1/args/listing", source): "Invalid arguments: Both source file listing and "
                                                       "source paths present",
        # Generic options (-D) only count BEFORE distcp's own; after them "-D" is read as a source path.
        ("-update", "-D", "k=v", source): "InvalidInputException: -D doesn't exist",
        ("hdfs://cluster1/args/absent",): "InvalidInputException: hdfs://cluster1/args/absent doesn't exist",
    }
    for args, message in cases.items():
        result = local_hadoop.hadoop("distcp", *args, target)
        assert (result.returncode, message in result.stderr) == (255, True), (args, result.stderr[-2000:])
    assert not exists(local_hadoop.target, "/args-never")


# --- names: what FsShell does with unusual file names on HDFS --------------------------------------

WEIRD = "chunk 1 Grüße 東京 $(touch pwned); x"  # a shell would run `touch pwned` and split at `;`


def test_a_weird_name_round_trips_through_hdfs_and_hdfs_keeps_no_crc_files(local_hadoop, tmp_path):
    payload = bytes(range(256)) * 64
    source = tmp_path / f"{WEIRD}.parquet"
    source.write_bytes(payload)
    directory = f"hdfs://cluster2/names/{WEIRD}"

    local_hadoop.hdfs("dfs", "-mkdir", "-p", directory, check=True)
    local_hadoop.hdfs("dfs", "-put", f"file://{source}", f"{directory}/", check=True)
    listed = local_hadoop.hdfs("dfs", "-ls", "-C", directory, check=True)

    assert listed.stdout.splitlines() == [f"{directory}/{source.name}"]  # no .crc sibling on HDFS
    assert local_hadoop.target.read_bytes(f"/names/{WEIRD}/{source.name}") == payload
    assert not list(tmp_path.rglob("pwned")) and not (local_hadoop.workdir / "pwned").exists()


def test_put_resolves_a_local_path_that_is_no_valid_uri_on_the_default_filesystem(local_hadoop, tmp_path):
    """``-put SRC``: FsShell parses SRC as a URI (a scheme-less one is local); when that fails, e.g.
    for a space, it falls back to ``new PathData(SRC)``, which resolves on ``fs.defaultFS``: here
    ``hdfs://cluster1``, so the local file is "not found". A ``file://`` source always works.
    With a ``file://`` default filesystem (no cluster configuration) both forms work."""
    spaced = tmp_path / "with space.txt"
    spaced.write_text("spaced\n")
    unicode = tmp_path / "Grüße;東京.txt"  # legal in a URI: found locally
    unicode.write_text("unicode\n")
    local_hadoop.hdfs("dfs", "-mkdir", "-p", "hdfs://cluster2/names/put", check=True)

    plain = local_hadoop.hdfs("dfs", "-put", str(spaced), str(unicode), "hdfs://cluster2/names/put/")
    as_uri = local_hadoop.hdfs("dfs", "-put", f"file://{spaced}", "hdfs://cluster2/names/put/")

    assert plain.returncode == 1
    assert plain.stderr.strip() == f"put: `{spaced}': No such file or directory"
    assert as_uri.returncode == 0, as_uri.stderr
    assert local_hadoop.target.read_bytes("/names/put/with space.txt") == b"spaced\n"
    assert local_hadoop.target.read_bytes("/names/put/Grüße;東京.txt") == b"unicode\n"


def test_hdfs_refuses_a_colon_in_a_file_name(local_hadoop, tmp_path):
    source = tmp_path / "plain.txt"
    source.write_text("plain\n")

    result = local_hadoop.hdfs("dfs", "-put", str(source), "hdfs://cluster2/names/a:b.txt")

    # Hadoop's Path reads "a:" as a URI scheme: refused before any call to the NameNode.
    assert result.returncode == 255
    assert "-put: java.net.URISyntaxException: Relative path in absolute URI: a:b.txt" in result.stderr
    assert not exists(local_hadoop.target, "/names/a:b.txt")


# --- the local HiveServer2 on HDFS (tests/support/local_hiveserver.py with hadoop=...) --------------

@pytest.mark.server
def test_the_servers_tables_live_on_cluster1(hiveserver, local_hadoop):
    describe = {(row[0] or "").strip(): (row[1] or "").strip()
                for row in hiveserver.query("DESCRIBE FORMATTED default.events")}
    assert describe["Location"] == "hdfs://cluster1/warehouse/events"
    assert hiveserver.warehouse == "hdfs://cluster1/warehouse"

    listed = local_hadoop.hdfs("dfs", "-ls", "hdfs://cluster1/warehouse/events", check=True)

    files = [line.split() for line in listed.stdout.splitlines() if line.endswith(".parquet")]
    assert files, listed.stdout
    for permissions, _replicas, owner, _group, size, *_rest in files:
        assert permissions.startswith("-rw") and int(size) > 0
        assert owner == local_hadoop.user  # Spark writes as the OS user, an ordinary HDFS user


@pytest.mark.server
def test_an_external_table_over_parquet_files_on_cluster2_counts(hiveserver, local_hadoop, tmp_path):
    """What the table step does on a target cluster: files land on cluster2, a table is put over them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 60_000  # ~3 MB uncompressed: two 2 MiB blocks on cluster2
    table = pa.table({"id": pa.array(range(rows), pa.int64()),
                      "name": pa.array([os.urandom(24).hex() for _ in range(rows)])})
    local = tmp_path / "files"
    local.mkdir()
    pq.write_table(table.slice(0, 100), local / "part-0.parquet")
    pq.write_table(table.slice(100), local / "part-1.parquet", compression="none")
    location = "hdfs://cluster2/lh-external/events"
    local_hadoop.hdfs("dfs", "-mkdir", "-p", location, check=True)
    local_hadoop.hdfs("dfs", "-put", str(local / "part-0.parquet"), str(local / "part-1.parquet"),
                      f"{location}/", check=True)
    big = local_hadoop.target.file_status("/lh-external/events/part-1.parquet")
    assert big["blockSize"] == 2 * MiB and big["length"] > 2 * MiB

    hiveserver.execute(
        "DROP TABLE IF EXISTS default.lh_external",
        f"CREATE EXTERNAL TABLE default.lh_external (id BIGINT, name STRING) STORED AS PARQUET "
        f"LOCATION '{location}'",
    )
    try:
        assert hiveserver.query("SELECT COUNT(*), SUM(id) FROM default.lh_external") == [
            (rows, rows * (rows - 1) // 2)]
        describe = {(row[0] or "").strip(): (row[1] or "").strip()
                    for row in hiveserver.query("DESCRIBE FORMATTED default.lh_external")}
        assert describe["Location"] == location and describe["Type"] == "EXTERNAL"
    finally:
        hiveserver.execute("DROP TABLE IF EXISTS default.lh_external")
    assert exists(local_hadoop.target, "/lh-external/events/part-1.parquet")  # external: files stay
