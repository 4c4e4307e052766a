import pytest

from airflow_provider_impala_transfer.core.common.partitions import clean_partition
from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.common.sql import (
    clean_query,
    quote_identifier,
    quote_table_name,
    resolve_query,
    with_predicate,
    wrap,
)
from airflow_provider_impala_transfer.core.extract.extract import ExtractSpec


@pytest.mark.parametrize("sql", ["", "   ", "\n\t", "-- only a comment", "/* c */ ;"])
def test_empty_query_is_refused_naming_sql(sql):
    with pytest.raises(ConfigError, match=r"^sql: "):
        clean_query(sql)


def test_trailing_semicolons_and_space_are_removed():
    assert clean_query("  SELECT 1 ;; \n") == "SELECT 1"


@pytest.mark.parametrize("sql", ["SELECT 1", "with t as (select 1) select * from t", "(SELECT 1)",
                                 "VALUES (1)", "/* hint */ SELECT 1", "-- c\nSELECT 1", "SELECT*FROM t"])
def test_read_statements_pass(sql):
    assert clean_query(sql)


@pytest.mark.parametrize("sql", ["SHOW TABLES", "EXPLAIN SELECT 1", "DESCRIBE t", "'x'"])
def test_a_statement_not_starting_like_a_query_is_refused_unless_allowed(sql):
    with pytest.raises(ConfigError, match=r"^sql: the statement starts with .*, not SELECT/WITH/VALUES "
                                          r"\(an extract must be a read-only query; set allow_non_select=True"):
        clean_query(sql)
    assert clean_query(sql, allow_non_select=True) == sql


@pytest.mark.parametrize("sql,keyword", [
    ("WITH x AS (SELECT 1) INSERT OVERWRITE TABLE v SELECT * FROM x", "INSERT"),
    ("with x as (select 1) insert into v select * from x", "INSERT"),
    ("WITH x AS (SELECT 1) UPSERT INTO v SELECT * FROM x", "UPSERT"),
    ("(INSERT INTO t VALUES (1))", "INSERT"),
    ("INSERT INTO t VALUES (1)", "INSERT"),
    ("create table x as select 1", "CREATE"),
    ("DROP TABLE t", "DROP"),
    ("ALTER TABLE t ADD COLUMNS (c INT)", "ALTER"),
    ("TRUNCATE TABLE t", "TRUNCATE"),
    ("DELETE FROM t WHERE id = 1", "DELETE"),
    ("UPDATE t SET a = 1", "UPDATE"),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE"),
    ("LOAD DATA INPATH '/x' INTO TABLE t", "LOAD"),
    ("COMPUTE STATS t", "COMPUTE"),
    ("INVALIDATE METADATA", "INVALIDATE"),
    ("REFRESH t", "REFRESH"),
    ("SET mem_limit=1g", "SET"),
    ("USE db", "USE"),
    ("GRANT SELECT ON TABLE t TO ROLE r", "GRANT"),
])
def test_writing_keywords_are_refused_wherever_they_appear_unless_allowed(sql, keyword):
    with pytest.raises(ConfigError, match=rf"^sql: holds '{keyword}', which writes or changes state "
                                          r"\(an extract must be a read-only query; set allow_non_select=True"):
        clean_query(sql)
    assert clean_query(sql, allow_non_select=True) == sql


@pytest.mark.parametrize("sql", [
    "SELECT update_ts, deleted, set_id, created_at, `drop`, `insert` FROM t",
    "SELECT * FROM t WHERE x = 'DROP' AND y = \"INSERT INTO t\"",
    "SELECT id FROM t -- then DROP TABLE t\n",
    "SELECT /* INSERT INTO t */ id FROM t",
    "SELECT truncate(amount, 2), TRUNCATE (amount) FROM t",
    "SELECT t.set, t.use FROM db.update_log t",
    "SELECT a FROM t GROUP BY a, b GROUPING SETS ((a), (b))",
])
def test_names_literals_comments_and_functions_that_look_like_keywords_pass(sql):
    assert clean_query(sql) == sql.strip()


def test_second_statement_is_refused_but_semicolons_in_literals_are_data():
    with pytest.raises(ConfigError, match="more than one statement"):
        clean_query("SELECT 1; DROP TABLE t")
    assert clean_query("SELECT ';' AS a, `x;y` FROM t -- ; comment") == "SELECT ';' AS a, `x;y` FROM t -- ; comment"
    assert clean_query("SELECT 'it\\'s; fine'")


def test_sql_and_table_are_exclusive():
    with pytest.raises(ConfigError, match=r"^sql/table: both are set"):
        resolve_query("SELECT 1", "db.t")
    with pytest.raises(ConfigError, match=r"^sql/table: neither is set"):
        resolve_query(None, None)
    with pytest.raises(ConfigError, match=r"^sql: the query is empty"):
        resolve_query("  ", None)
    assert resolve_query(None, "db.t") == "SELECT * FROM `db`.`t`"


@pytest.mark.parametrize("name", ["a b", "t;drop", "x`y", "1abc", "", "a.b.c", "ü"])
def test_bad_table_names_are_refused(name):
    with pytest.raises(ConfigError, match=r"^table: "):
        quote_table_name(name)


def test_identifier_quoting():
    assert quote_identifier("event_ts", field="split_by") == "`event_ts`"
    with pytest.raises(ConfigError, match=r"^split_by: "):
        quote_identifier("id) OR (1=1", field="split_by")


@pytest.mark.parametrize("name", ["ds\n", "ds\r\n", "\nds", "d\ns"])
def test_an_identifier_with_a_newline_is_refused_everywhere(name):
    with pytest.raises(ConfigError, match=r"^split_by: .* is not a valid identifier"):
        ExtractSpec.build(table="db.t", split_by=name)
    with pytest.raises(ConfigError, match=r"^order_by: .* is not a valid identifier"):
        ExtractSpec.build(table="db.t", order_by=[name])
    with pytest.raises(ConfigError, match=r"^partition: .* is not a valid identifier"):
        clean_partition({name: "2026-01-01"})
    with pytest.raises(ConfigError, match=r"^table: .* is not a valid identifier"):
        quote_table_name(f"x{name}.events")  # not at the ends: the whole name is stripped
    with pytest.raises(ConfigError, match=r"^target_table: .* is not a valid identifier"):
        quote_table_name(f"db.{name}x", field="target_table")


def test_chunk_query_survives_a_trailing_comment():
    query = with_predicate("SELECT * FROM t -- trailing", "`id` < 5", "`id`")
    assert query.splitlines()[-2:] == ["WHERE `id` < 5", "ORDER BY `id`"]
    assert "-- trailing\n)" in query


def test_every_chunk_query_is_a_derived_table_so_only_a_query_can_run():
    assert with_predicate("SELECT 1", None) == wrap("SELECT 1") == "SELECT * FROM (\nSELECT 1\n) impala_transfer_q"
    assert with_predicate("SELECT 1", "`a` < 5").startswith(wrap("SELECT 1"))
    assert with_predicate("SELECT 1", None, "`a`").startswith(wrap("SELECT 1"))


def test_allow_non_select_runs_a_statement_with_nothing_to_add_as_given():
    """SHOW/DESCRIBE/EXPLAIN results cannot be a derived table; the user asked for them."""
    assert with_predicate("SHOW TABLES", None, allow_non_select=True) == "SHOW TABLES"
    assert with_predicate("SELECT 1", "`a` < 5", allow_non_select=True).startswith(wrap("SELECT 1"))
    assert ExtractSpec.build(sql="SHOW TABLES", allow_non_select=True).allow_non_select
    assert not ExtractSpec.build(sql="SELECT 1").allow_non_select
