"""Just enough SQL understanding to validate and wrap a user's query safely.

We never parse SQL fully: we only need to know where literals and comments are so that we can
find statement separators and keywords without being fooled by ``';'`` or ``'DROP'`` inside a string.

An extract is a read: the query must start with SELECT/WITH/VALUES, hold no keyword that writes
or changes state anywhere in its code (``WITH x AS (...) INSERT ...`` starts like a read), and it
always runs as a derived table, so a statement that is not a query cannot execute at all.
``allow_non_select=True`` lifts both, for a user who means it: result sets of statements that
cannot be a derived table (``SHOW PARTITIONS``, ``DESCRIBE``, ``EXPLAIN``) then run as given.
"""

from __future__ import annotations

import re

from airflow_provider_impala_transfer.core.errors import ConfigError

# Statements that only read. WITH ... SELECT and VALUES are reads too; EXPLAIN/SHOW/DESCRIBE return
# result sets but not data a user means to move, so they need allow_non_select like DML/DDL does.
_READ_KEYWORDS = {"SELECT", "WITH", "VALUES"}
_FIRST_WORD = re.compile(r"[\s(]*(\w*)")
# Keywords of statements that write data or change metadata or session state (Impala, plus what
# Hive/Spark add), as whole words: not `update_ts`, not `t.set` (a qualified name) and not a
# function call such as Impala's `truncate(x, 2)`. Impala reserves them all, so an unquoted column
# cannot carry one of these names.
_WRITE_KEYWORD = re.compile(
    r"(?<![\w.])(INSERT|UPSERT|UPDATE|DELETE|MERGE|CREATE|DROP|ALTER|TRUNCATE|LOAD|COMPUTE|INVALIDATE"
    r"|REFRESH|SET|USE|GRANT|REVOKE)(?!\w)(?!\s*\()",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # whole-string match only: "ds\n" is not one
SUBQUERY_ALIAS = "impala_transfer_q"


def _code_spans(sql: str) -> list[str]:
    """Return ``sql`` with comments removed and literals/quoted names replaced by placeholders.

    The result keeps statement structure (keywords, semicolons) and nothing a user typed inside
    quotes, so keyword and separator checks cannot be fooled by data.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
            out.append(" ")
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
            out.append(" ")
        elif ch in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\" and ch != "`":
                    j += 2
                    continue
                if sql[j] == ch:
                    break
                j += 1
            out.append(" _lit_ ")
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return out


def strip_literals_and_comments(sql: str) -> str:
    return "".join(_code_spans(sql))


def clean_query(sql: str, *, field: str = "sql", allow_non_select: bool = False) -> str:
    """Validate a user's extract query and return it without trailing semicolons/whitespace."""
    if sql is None or not str(sql).strip():
        raise ConfigError(field, "the query is empty", "give a SELECT statement or set table=")
    sql = str(sql).strip()
    while sql.endswith(";"):
        sql = sql[:-1].rstrip()
    code = strip_literals_and_comments(sql)
    if not code.strip():
        raise ConfigError(field, "the query holds only comments", "give a SELECT statement")
    if ";" in code:
        raise ConfigError(
            field,
            "holds more than one statement",
            "give a single query; run setup statements in a separate task",
        )
    if allow_non_select:
        return sql
    fix = "an extract must be a read-only query; set allow_non_select=True if you mean it"
    writes = _WRITE_KEYWORD.search(code)
    if writes:
        raise ConfigError(field, f"holds {writes.group(1).upper()!r}, which writes or changes state", fix)
    word = _FIRST_WORD.match(code).group(1).upper()
    if word not in _READ_KEYWORDS:
        raise ConfigError(field, f"the statement starts with {word!r}, not SELECT/WITH/VALUES", fix)
    return sql


def quote_identifier(name: str, *, field: str) -> str:
    """Quote a plain identifier with backticks, refusing anything that is not one."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ConfigError(
            field,
            f"{name!r} is not a valid identifier",
            "use letters, digits and underscores, starting with a letter or underscore",
        )
    return f"`{name}`"


def quote_table_name(table: str, *, field: str = "table") -> str:
    """``db.table`` or ``table`` -> backtick-quoted, refusing anything else."""
    if not isinstance(table, str) or not table.strip():
        raise ConfigError(field, "the table name is empty", "give db.table or table")
    parts = table.strip().split(".")
    if len(parts) > 2:
        raise ConfigError(field, f"{table!r} has more than one dot", "give db.table or table")
    return ".".join(quote_identifier(p, field=field) for p in parts)


def resolve_query(
    sql: str | None, table: str | None, *, allow_non_select: bool = False
) -> str:
    """Exactly one of ``sql`` and ``table`` must be given; return the query to run."""
    has_sql = sql is not None and str(sql).strip() != ""
    has_table = table is not None and str(table).strip() != ""
    if has_sql and has_table:
        raise ConfigError("sql/table", "both are set", "give either a query (sql=) or a table (table=)")
    if not has_sql and not has_table:
        if sql is not None:  # given but blank: name the field the user actually filled in
            clean_query(sql)
        raise ConfigError("sql/table", "neither is set", "give a query (sql=) or a table (table=)")
    if has_table:
        return f"SELECT * FROM {quote_table_name(table)}"
    return clean_query(sql, allow_non_select=allow_non_select)


def wrap(sql: str) -> str:
    """Wrap a query as a derived table; the newline keeps a trailing ``--`` comment harmless."""
    return f"SELECT * FROM (\n{sql}\n) {SUBQUERY_ALIAS}"


def with_predicate(sql: str, predicate: str | None, order_by: str | None = None, *,
                   allow_non_select: bool = False) -> str:
    """The query restricted to one chunk, optionally ordered for byte-identical re-runs.

    Always a derived table, so only a query can run; with ``allow_non_select`` a statement with
    nothing to add runs as given (a SHOW or DESCRIBE cannot be a derived table).
    """
    if allow_non_select and not predicate and not order_by:
        return sql
    query = wrap(sql)
    if predicate:
        query += f"\nWHERE {predicate}"
    if order_by:
        query += f"\nORDER BY {order_by}"
    return query
