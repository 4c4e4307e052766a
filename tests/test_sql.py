import pytest

from airflow_provider_impala_transfer.core.errors import ConfigError
from airflow_provider_impala_transfer.core.common.sql import (
    clean_query,
    quote_identifier,
    quote_table_name,
    resolve_query,
    with_predicate,
)


@pytest.mark.parametrize("sql", ["", "   ", "\n\t", "-- only a comment", "/* c */ ;"])
def test_empty_query_is_refused_naming_sql(sql):
    with pytest.raises(ConfigError, match=r"^sql: "):
        clean_query(sql)


def test_trailing_semicolons_and_space_are_removed():
    assert clean_query("  SELECT 1 ;; \n") == "SELECT 1"


@pytest.mark.parametrize("sql", ["SELECT 1", "with t as (select 1) select * from t", "(SELECT 1)",
                                 "VALUES (1)", "/* hint */ SELECT 1", "-- c\nSELECT 1"])
def test_read_statements_pass(sql):
    assert clean_query(sql)


@pytest.mark.parametrize("sql", ["INSERT INTO t VALUES (1)", "DROP TABLE t", "create table x (a int)",
                                 "SET mem_limit=1g", "INVALIDATE METADATA"])
def test_non_select_is_refused_unless_allowed(sql):
    with pytest.raises(ConfigError, match=r"^sql: .*allow_non_select=True"):
        clean_query(sql)
    assert clean_query(sql, allow_non_select=True) == sql


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


def test_chunk_query_survives_a_trailing_comment():
    query = with_predicate("SELECT * FROM t -- trailing", "`id` < 5", "`id`")
    assert query.splitlines()[-2:] == ["WHERE `id` < 5", "ORDER BY `id`"]
    assert "-- trailing\n)" in query
    assert with_predicate("SELECT 1", None) == "SELECT 1"
