"""The ``impala-transfer`` command line in-process (``main(argv, environ, stdout, stderr)``): settings,
precedence, validation, dry runs and bad input, none of which needs a server. The installed
console script against real servers is tests/test_cli.py."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.cli import PASSWORD, Result, run_cli


def assert_ok(result: Result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert PASSWORD not in result.stdout + result.stderr


def test_seed_production_example_dry_run(tmp_path):
    """The seed's 'Production Cross-Cluster Transfer', verbatim plus --dry-run: no server needed."""
    env = {"USE_DISTCP": "true", "SOURCE_HDFS_PATH": "/data/source", "TARGET_CLUSTER": "cluster2.example.com",
           "TARGET_HDFS_PATH": "/data/target", "TEMP_DIR": str(tmp_path / "tmp")}
    result = run_cli("--source-host", "cluster1.example.com", "--query",
                     "SELECT * FROM large_table WHERE date = '2024-01-01'", "--chunk-size", "2000000",
                     "--max-workers", "8", "--run-id", "prod", "--dry-run", env=env)
    assert_ok(result)
    out = result.stdout
    assert "methods, tried in order per chunk: distcp -> hdfs_put -> hdfs_cp -> scp" in out
    assert re.search(rf"hdfs dfs -put -f file://{tmp_path}/tmp/prod-XXXXXXXX/chunk-00000-part-00000\.parquet "
                     r"/data/source/_impala_transfer_staging/prod-[0-9a-f]{8}/chunk-00000/$", out, re.M)  # staged first
    assert re.search(r"hadoop distcp -Dmapreduce\.job\.name=impala-transfer:prod:chunk-00000 "
                     r"-Ddfs\.checksum\.combine\.mode=COMPOSITE_CRC -update -strategy dynamic -m 20 "
                     r"-f file://\S+\.list "
                     r"hdfs://cluster2\.example\.com/data/target/query_result/_impala_transfer_staging/prod$", out, re.M)
    assert "-delete" not in out
    assert "give --split-by <column> to extract chunks in parallel" in out
    assert "target table: skipped (set --target-impala-host" in out


def test_scp_fallback_defaults_to_the_target_directory(tmp_path):
    result = run_cli("--source-host", "h", "--table", "db.events", "--target-hdfs-path", "file:///data/x",
                     "--no-distcp", "--scp-target-host", "edge1", "--scp-user", "etl", "--scp-bandwidth-kbit", "8000",
                     "--skip-table", "--run-id", "r", "--temp-dir", str(tmp_path), "--dry-run")
    assert_ok(result)
    scp_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("scp -p"))
    assert scp_line.endswith(" etl@edge1:/data/x/events/_impala_transfer_staging/r/")
    assert " -l 8000 " in scp_line and "StrictHostKeyChecking=yes" in scp_line


def test_show_config_precedence_and_masking(tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("chunk_size: 5000\nmax-workers: 3\ntarget_cluster: from-config:8020\nuse_distcp: true\n")
    result = run_cli("--config", str(config), "--target-cluster", "from-flag:8020", "--show-config",
                     env={"TARGET_CLUSTER": "from-env:8020", "MAX_WORKERS": "6", "USE_DISTCP": "false",
                          "SOURCE_HDFS_PATH": "hdfs://nn1/staging"})
    assert_ok(result)
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert rows["target_cluster"] == ["from-flag:8020", "flag"]
    assert rows["max_workers"] == ["6", "env", "MAX_WORKERS"]
    assert rows["use_distcp"] == ["False", "env", "USE_DISTCP"]
    assert rows["source_hdfs_path"] == ["hdfs://nn1/staging", "env", "SOURCE_HDFS_PATH"]
    assert rows["chunk_size"] == ["5000", "config", str(config)]
    assert rows["output_format"] == ["parquet", "default"]
    assert rows["password"] == ["***", "env", "IMPALA_PASSWORD"]
    assert rows["password_env"] == ["IMPALA_PASSWORD", "default"]  # a variable's name, not a secret


def test_the_default_temp_dir_is_the_users_own_under_tmpdir(tmp_path):
    """Not one directory every user of the machine shares: $TMPDIR/impala-transfer-<uid> (the
    rules it must meet: tests/faults/test_temp_dir.py)."""
    result = run_cli("--show-config", env={"TMPDIR": str(tmp_path)})
    assert_ok(result)
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert rows["temp_dir"] == [f"{tmp_path}/impala-transfer-{os.getuid()}", "default"]
    assert run_cli("--show-config", env={"TEMP_DIR": str(tmp_path / "t")}).stdout.count(f"{tmp_path}/t ") == 1


def test_password_comes_from_env_file_or_prompt_only(tmp_path):
    base = ["--source-host", "h", "--auth-mechanism", "LDAP", "--user", "etl", "--table", "t",
            "--target-hdfs-path", "file:///x", "--no-distcp", "--validate-config"]
    env: dict[str, str] = {}
    missing = run_cli(*base, env=env, password=None)
    assert missing.returncode == 2 and "LDAP needs a user and a password" in missing.stderr
    secret_file = tmp_path / "pw"
    secret_file.write_text(PASSWORD + "\n")
    from_file = run_cli(*base, "--password-file", str(secret_file), env=env, password=None)
    assert from_file.returncode == 0, from_file.stderr
    assert PASSWORD not in from_file.stdout + from_file.stderr
    env["ETL_PW"] = PASSWORD
    named = run_cli(*base, "--password-env", "ETL_PW", env=env, password=None)
    assert named.returncode == 0, named.stderr


# --- bad input: one line on stderr, exit 2, nothing transferred --------------------------------

BAD_INPUT = {
    "unknown flag": (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
    "unknown method": (["--method", "ftp"], "--method: 'ftp' is not allowed"),
    "table and query": (["--query", "SELECT 1"], "--table/--query: are given together"),
    "no-distcp with method distcp": (["--no-distcp", "--method", "distcp"], "--method distcp: conflicts with use_distcp=false"),
    "distcp without target cluster": (["--method", "distcp", "--target-hdfs-path", "/plain/path"], "target_cluster: distcp copies to another cluster"),
    "scp without host": (["--method", "scp"], "scp_target_host: scp is not configured"),
    "unreadable query file": (["--query-file", "/nonexistent/q.sql"], "--query-file: cannot read /nonexistent/q.sql"),
    "password as a flag": (["--password", "hunter2"], "--password: a password on the command line"),
    "seed's scheme-less target": (["--target-hdfs-path", "cluster2.example.com/target/path", "--target-cluster", "x"],
                                  "write hdfs://cluster2.example.com/target/path"),
    "bad chunk size": (["--chunk-size", "many"], "--chunk-size: 'many' is not a whole number"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_one_line(case, tmp_path):
    extra, expected = BAD_INPUT[case]
    target = tmp_path / "target"
    args = ["--source-host", "127.0.0.1", "--table", "default.even", "--temp-dir", str(tmp_path / "tmp")]
    if "--target-hdfs-path" not in extra:
        args += ["--target-hdfs-path", f"file://{target}"]
    if "--query-file" in extra:
        args.remove("--table"), args.remove("default.even")
    result = run_cli(*args, *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert not target.exists() and not (tmp_path / "tmp").exists()


@pytest.mark.parametrize("name, text, expected", [
    ("bad.json", '{"chunk_size": 10,', "is not valid JSON"),
    ("bad.yaml", "chunk_size: [10\n", "is not valid JSON or YAML at line"),
    ("secret.yaml", "password: hunter2\n", "secrets do not belong in config files"),
    ("unknown.json", '{"chunk_sise": 10}', "--config chunk_sise: is not a setting"),
    ("missing.json", None, "--config: cannot read"),
])
def test_bad_config_file_exits_2(name, text, expected, tmp_path):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    result = run_cli("--source-host", "h", "--table", "t", "--target-hdfs-path", "file:///x", "--config", str(path))
    assert result.returncode == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr


def test_environment_flags_are_parsed_by_one_rule_and_junk_is_refused_by_name():
    base = ["--source-host", "h", "--table", "t", "--target-hdfs-path", "file:///x", "--validate-config"]
    assert_ok(run_cli(*base, env={"USE_DISTCP": "no"}))
    refused = run_cli(*base, env={"USE_DISTCP": "maybe"})
    assert refused.returncode == 2
    assert refused.stderr.strip() == "impala-transfer: USE_DISTCP: 'maybe' is not true or false (write true or false)"


def test_fsspec_options_refuse_secrets_but_take_paths_to_them():
    base = ["--source-host", "h", "--table", "t", "--target-hdfs-path", "memory://bucket/x", "--validate-config"]
    refused = run_cli(*base, "--fsspec-options", '{"secret": "s3cr3t-value"}')
    assert refused.returncode == 2 and "holds secrets (secret)" in refused.stderr
    assert "s3cr3t-value" not in refused.stderr
    assert_ok(run_cli(*base, "--fsspec-options", '{"key_file": "/etc/keys/id", "skip_instance_cache": true}'))


@pytest.mark.parametrize("path", ["hdfs://nn/data/a[12]", "hdfs://nn/data/*", "hdfs://nn/data/{a,b}"])
def test_a_target_hadoops_shell_would_read_as_a_glob_is_refused_before_anything_runs(path, tmp_path):
    result = run_cli("--source-host", "h", "--table", "t", "--target-hdfs-path", path, "--no-distcp",
                     "--temp-dir", str(tmp_path / "tmp"), "--validate-config")
    assert result.returncode == 2
    assert "which Hadoop's shell reads as a glob pattern" in result.stderr
    assert not (tmp_path / "tmp").exists()


def test_a_password_file_other_users_can_read_works_with_a_warning(tmp_path):
    secret = tmp_path / "impala.pw"
    secret.write_text("s3cret-from-file\n")
    secret.chmod(0o644)
    args = ("--source-host", "h", "--table", "db.events", "--target-hdfs-path", "file:///data/x",
            "--password-file", str(secret), "--temp-dir", str(tmp_path / "tmp"), "--validate-config")
    loose = run_cli(*args, password=None)
    assert loose.returncode == 0 and "s3cret-from-file" not in loose.stdout + loose.stderr
    assert f"warning: --password-file: {secret} can be read by other users (mode 0644) (chmod 600 {secret})" \
        in loose.stderr
    secret.chmod(0o600)
    assert "warning" not in run_cli(*args, password=None).stderr
