"""The CLI's local temp directory on a shared machine (an edge node many users log in to).

Each run writes its chunk files into a new 0700 directory ``<temp-dir>/<run>-XXXXXXXX``. Others
cannot read that, but whoever can rename entries of the temp dir, or of a directory above it, can
move the run's directory away and put a link in its place: the chunk files, or what a tool then
reads as the chunk, go where they point. So the default temp dir is private to the user
(``$TMPDIR/impala-transfer-<uid>``, 0700, and it must stay theirs), and a given ``--temp-dir``,
and every directory above it, is refused unless only the user or root can rename entries in it.
Refusals exit 2 with one line, before any server is contacted or anything is written.

Tests that make a directory of another user (``chown`` to uid 65534, ``nobody``) need root."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_impala_transfer.core.errors import ConfigError
from tests.conftest import EVEN_ROWS
from tests.support.cli import run_cli as run_cli_in_process

UID = os.getuid()
OTHER = 65534  # nobody
SCRIPT = str(Path(sys.executable).parent / "impala-transfer")

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a directory of another user needs root")


def default_dir(tmpdir: Path) -> Path:
    return tmpdir / f"impala-transfer-{UID}"


def a_dir(path: Path, mode: int, owner: int = UID) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner != UID:
        os.chown(path, owner, owner)
    return path


def validate(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """``--validate-config`` in-process: no server, and it must write nothing."""
    return run_cli_in_process("--source-host", "127.0.0.1", "--table", "db.events", "--target-hdfs-path",
                              f"file://{tmp_path}/target", "--run-id", "r", *args, "--validate-config", env=env)


def assert_refused(result, *parts: str) -> str:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("impala-transfer: --temp-dir: "), lines[0]
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def cli(hiveserver, local_hadoop, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """The installed console script against the session's HiveServer2: default.even (1,000 rows)
    into a file:// target, hdfs put, no table step."""
    full_env = {**os.environ, **local_hadoop.env(), "IMPALA_PASSWORD": "airflow", **(env or {})}
    for name in ("HADOOP_USER_NAME", "USE_DISTCP", "SOURCE_HDFS_PATH", "TARGET_CLUSTER", "TARGET_HDFS_PATH",
                 "RUN_ID", "PARTITION", "TEMP_DIR"):
        if name not in (env or {}):
            full_env.pop(name, None)
    argv = [SCRIPT, "--source-host", "127.0.0.1", "--source-port", str(hiveserver.port), "--auth-mechanism",
            "PLAIN", "--user", "airflow", "--table", "default.even", "--target-hdfs-path",
            f"file://{tmp_path}/target", "--no-distcp", "--skip-table", *args]
    return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=300)


def private_to_me(path: Path) -> None:
    st = os.lstat(path)
    assert stat.S_ISDIR(st.st_mode), path
    assert st.st_uid == UID, (path, st.st_uid)
    assert stat.S_IMODE(st.st_mode) == 0o700, (path, oct(st.st_mode))


# --- the default --------------------------------------------------------------------------------

@pytest.mark.server
def test_the_default_temp_dir_is_private_to_the_user(hiveserver, local_hadoop, tmp_path):
    """No --temp-dir: the run's files go to $TMPDIR/impala-transfer-<uid>/<run>-XXXXXXXX, both 0700
    and owned by the user, not to one directory every user shares."""
    tmpdir = a_dir(tmp_path / "tmpdir", 0o1777)  # as /tmp is
    result = cli(hiveserver, local_hadoop, tmp_path, "--run-id", "p1", "--keep-temp", env={"TMPDIR": str(tmpdir)})
    assert result.returncode == 0, result.stdout + result.stderr
    mine = default_dir(tmpdir)
    private_to_me(mine)
    [run_dir] = mine.glob("p1-*")
    private_to_me(run_dir)
    assert (run_dir / "chunk-00000-part-00000.parquet").is_file()
    assert f"counts: source {EVEN_ROWS:,}" in result.stdout


@as_root
@pytest.mark.server
def test_a_pre_created_default_dir_of_another_user_is_refused(hiveserver, local_hadoop, tmp_path):
    """Another user made $TMPDIR/impala-transfer-<uid> first (open to all, to swap what the run
    makes inside for a link): the CLI refuses it, in --validate-config and in a run, and writes
    nothing into it."""
    tmpdir = a_dir(tmp_path / "tmpdir", 0o1777)
    taken = a_dir(default_dir(tmpdir), 0o777, owner=OTHER)
    message = assert_refused(validate(tmp_path, env={"TMPDIR": str(tmpdir)}),
                             f"the default '{taken}' is owned by nobody (uid 65534), not by you")
    result = cli(hiveserver, local_hadoop, tmp_path, "--run-id", "p2", env={"TMPDIR": str(tmpdir)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == message
    assert list(taken.iterdir()) == []
    assert not (tmp_path / "target").exists()


def test_a_default_dir_other_users_can_look_into_is_refused(tmp_path):
    """The user's own default dir, opened up (mode 0755): refused, naming the chmod that fixes it
    (the CLI does not change a mode it did not set)."""
    tmpdir = a_dir(tmp_path / "tmpdir", 0o1777)
    opened = a_dir(default_dir(tmpdir), 0o755)
    assert_refused(validate(tmp_path, env={"TMPDIR": str(tmpdir)}),
                   f"the default '{opened}' has mode 0755", f"(chmod 700 '{opened}')")
    assert stat.S_IMODE(os.lstat(opened).st_mode) == 0o755


def test_a_symlink_in_place_of_the_default_dir_is_refused(tmp_path):
    tmpdir = a_dir(tmp_path / "tmpdir", 0o1777)
    elsewhere = a_dir(tmp_path / "elsewhere", 0o700)
    default_dir(tmpdir).symlink_to(elsewhere)
    assert_refused(validate(tmp_path, env={"TMPDIR": str(tmpdir)}),
                   f"the default '{default_dir(tmpdir)}' is a symbolic link")


# --- a given --temp-dir -----------------------------------------------------------------------

@as_root
@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_a_temp_dir_owned_by_another_user_is_refused(tmp_path, mode):
    """Even with the sticky bit: a directory's owner may rename any entry in it."""
    shared = a_dir(tmp_path / "shared", mode, owner=OTHER)
    assert_refused(validate(tmp_path, "--temp-dir", str(shared)),
                   f"'{shared}' is owned by nobody (uid 65534), who could rename or replace what a run writes in it")
    assert list(shared.iterdir()) == []


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o730])
def test_a_temp_dir_writable_by_others_without_the_sticky_bit_is_refused(tmp_path, mode):
    shared = a_dir(tmp_path / "shared", mode)
    assert_refused(validate(tmp_path, "--temp-dir", str(shared)),
                   f"'{shared}' (mode {mode:04o}) is writable by other users")


def test_a_symlinked_temp_dir_is_refused(tmp_path):
    real = a_dir(tmp_path / "real", 0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert_refused(validate(tmp_path, "--temp-dir", str(link)), f"'{link}' is a symbolic link", str(real))


def test_a_temp_dir_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    assert_refused(validate(tmp_path, "--temp-dir", str(file)), f"'{file}' is not a directory")


@pytest.mark.parametrize("exists", [True, False])
def test_a_temp_dir_under_a_parent_others_can_write_is_refused(tmp_path, exists):
    """Whoever can write the parent can rename the temp dir itself and put another in its place."""
    parent = a_dir(tmp_path / "open", 0o777)
    if exists:
        a_dir(parent / "mine", 0o700)
    assert_refused(validate(tmp_path, "--temp-dir", str(parent / "mine")),
                   f"its parent '{parent}' (mode 0777) is writable by other users")


def test_a_link_above_the_temp_dir_is_resolved_once_and_the_real_path_is_checked(tmp_path):
    """/home -> /var/home is common: a link above the temp dir is followed once, and the real
    directories are the ones checked and used (here one of them is open to all: refused)."""
    real_parent = a_dir(tmp_path / "real" / "open", 0o777)
    (tmp_path / "via").symlink_to(tmp_path / "real")
    assert_refused(validate(tmp_path, "--temp-dir", str(tmp_path / "via" / "open" / "mine")),
                   f"its parent '{real_parent}' (mode 0777)")


@pytest.mark.server
def test_a_sticky_world_writable_temp_dir_like_tmp_is_accepted_and_each_run_gets_its_own_0700_dir(
        hiveserver, local_hadoop, tmp_path):
    """``--temp-dir /tmp`` keeps working: the run's directory is made with mkdir (never one that
    already exists) mode 0700, and the sticky bit keeps others from renaming or removing it."""
    assert validate(tmp_path, "--temp-dir", "/tmp").returncode == 0
    sticky = a_dir(tmp_path / "sticky", 0o1777)
    result = cli(hiveserver, local_hadoop, tmp_path, "--run-id", "s1", "--keep-temp", "--temp-dir", str(sticky))
    assert result.returncode == 0, result.stdout + result.stderr
    [run_dir] = sticky.glob("s1-*")
    private_to_me(run_dir)


# --- checked again where the run makes its directory --------------------------------------------

@as_root
def test_the_run_checks_the_temp_dir_again_when_it_makes_its_work_dir(tmp_path):
    """The temp dir may change between validation and the run (the source is queried in between):
    the run's own step refuses a temp dir that is no longer safe, and makes nothing in it."""
    from airflow_provider_impala_transfer.cli.run import private_dir

    shared = a_dir(tmp_path / "shared", 0o777, owner=OTHER)
    with pytest.raises(ConfigError, match="is owned by nobody"):
        private_dir(str(shared / "r"))
    assert list(shared.iterdir()) == []


def test_a_missing_temp_dir_is_made_0700_with_its_missing_parents(tmp_path):
    """Made one level at a time, each 0700 (os.makedirs gives the parents 0777 less the umask,
    which a umask of 002 leaves group-writable)."""
    from airflow_provider_impala_transfer.cli.run import private_dir

    old = os.umask(0o002)
    try:
        work = private_dir(str(tmp_path / "a" / "b" / "r"))
    finally:
        os.umask(old)
    private_to_me(tmp_path / "a")
    private_to_me(tmp_path / "a" / "b")
    private_to_me(Path(work))
    assert Path(work).parent == tmp_path / "a" / "b" and Path(work).name.startswith("r-")
