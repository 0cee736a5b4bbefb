"""DuckDB views over the metadata parquet of pools, and ``datacomp-sci query``.

Every pool becomes a view named after it (:func:`datacomp_sci.pool.pools.discover_pool`),
and ``pools`` is their union by column name with a leading ``pool`` column (a column a
pool lacks reads as NULL). Views scan the parquet files in place (absolute paths), so
DuckDB streams them: memory stays bounded by ``memory_limit`` whatever the pool size.

Sidecar columns (``lang``, ``num_words`` from ``<stem>.lang.parquet``; ``phash`` from
``<stem>.phash.parquet``) are attached to their metadata file with a ``POSITIONAL
JOIN`` (they are row-aligned; no hash join on uid). Only fresh sidecars are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from datacomp_sci.core import tables
from datacomp_sci.core.util import atomic_path
from datacomp_sci.pool.pools import SIDECAR_KINDS, Pool, discover_pools, sidecar_fresh, sidecar_path

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")
SIDECAR_COLUMNS = {"lang": ("lang", "num_words"), "phash": ("phash",)}
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class QueryResult:
    """What ``run_query`` did: the rows (table format) or the file it wrote."""

    columns: list[str]
    rows: list[tuple]
    row_count: int
    truncated: bool = False
    output: Path | None = None
    catalog: Path | None = None
    pools: list[Pool] = field(default_factory=list)


def sql_string(value: str) -> str:
    """A SQL string literal (paths in view definitions)."""
    return "'" + value.replace("'", "''") + "'"


def _file_select(meta: Path) -> str:
    """SELECT for one metadata file joined with its fresh sidecars, or None without any."""
    parts = [f"(SELECT * FROM read_parquet({sql_string(str(meta))}))"]
    for kind in SIDECAR_KINDS:
        if sidecar_fresh(meta, kind):
            cols = ", ".join(SIDECAR_COLUMNS[kind])
            side = sql_string(str(sidecar_path(meta, kind)))
            parts.append(f"(SELECT {cols} FROM read_parquet({side}))")
    if len(parts) == 1:
        return ""
    return "SELECT * FROM " + " POSITIONAL JOIN ".join(parts)


def pool_view_sql(pool: Pool) -> str:
    """The SELECT behind a pool's view."""
    plain: list[Path] = []
    selects: list[str] = []
    for meta in pool.metadata_files:
        sel = _file_select(meta)
        if sel:
            selects.append(sel)
        else:
            plain.append(meta)
    if plain:
        files = ", ".join(sql_string(str(p)) for p in plain)
        selects.insert(0, f"SELECT * FROM read_parquet([{files}], union_by_name = true)")
    return "\nUNION ALL BY NAME\n".join(selects)


def union_view_sql(pools: list[Pool]) -> str:
    return "\nUNION ALL BY NAME\n".join(
        f"SELECT {sql_string(p.name)} AS pool, * FROM {p.name}" for p in pools
    )


def create_views(con: duckdb.DuckDBPyConnection, pools: list[Pool]) -> None:
    """Create (or replace) one view per pool and the ``pools`` union view."""
    for pool in pools:
        con.execute(f"CREATE OR REPLACE VIEW {pool.name} AS {pool_view_sql(pool)}")
    con.execute(f"CREATE OR REPLACE VIEW pools AS {union_view_sql(pools)}")


def connect(
    pools: list[Pool],
    threads: int | None = None,
    memory_limit: str | None = None,
    database: str = ":memory:",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the pool views, threads and memory bounded."""
    con = duckdb.connect(database)
    try:
        if threads is not None:
            if threads < 1:
                raise ValueError(f"--threads must be >= 1 (got {threads})")
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        create_views(con, pools)
    except duckdb.Error as e:
        con.close()
        raise ValueError(f"cannot open the pools in DuckDB: {e}") from e
    except BaseException:
        con.close()
        raise
    return con


def parse_param_value(text: str) -> Any:
    """``--param`` value: int, then float, then true/false, else the string itself."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_params(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["key=value", ...]`` -> typed dict; keys must be identifiers."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _PARAM_NAME.match(key):
            raise ValueError(f"--param {item!r}: write it as name=value (name: letters, digits, _)")
        out[key] = parse_param_value(value)
    return out


def set_params(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> None:
    """Bind parameters as DuckDB variables (read in SQL with ``getvariable('name')``).

    Values travel as prepared-statement parameters, never spliced into SQL text.
    """
    for key, value in sorted(params.items()):
        if not _PARAM_NAME.match(key):
            raise ValueError(f"parameter name {key!r} is not an identifier")
        con.execute(f"SET VARIABLE {key} = ?", [value])


def _copy_options(fmt: str) -> str:
    return {
        "csv": "FORMAT csv, HEADER true",
        "json": "FORMAT json",
        "parquet": "FORMAT parquet, COMPRESSION zstd",
    }[fmt]


def _write_output(con: duckdb.DuckDBPyConnection, sql: str, fmt: str, output: Path) -> int:
    with atomic_path(output) as tmp:
        res = con.execute(
            f"COPY ({sql}) TO {sql_string(str(tmp))} ({_copy_options(fmt)})"
        ).fetchone()
    return int(res[0]) if res else 0


def _strip_sql(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def save_catalog(pools: list[Pool], db_path: str | Path) -> Path:
    """Write a DuckDB database holding the pool views (absolute paths), atomically.

    Open it later with ``duckdb FILE`` or ``duckdb.connect(FILE)``; the views read the
    parquet files in place, so the catalog stays small.
    """
    db_path = Path(db_path)
    with atomic_path(db_path) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            create_views(con, pools)
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return db_path


def run_query(
    pool_paths: list[str | Path],
    sql: str | None,
    fmt: str = "table",
    output: str | Path | None = None,
    db: str | Path | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    max_rows: int = 50,
    params: dict[str, Any] | None = None,
) -> QueryResult:
    """Run ``sql`` over the pool views; print-ready rows or a file in ``fmt``."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(OUTPUT_FORMATS)} (got {fmt!r})")
    if fmt != "table" and output is None:
        raise ValueError(f"--format {fmt} writes a file: give --output FILE")
    if not sql and db is None:
        raise ValueError("give --sql \"SELECT ...\" (and/or --db FILE.duckdb to save the views)")
    pools = discover_pools(pool_paths)
    result = QueryResult(columns=[], rows=[], row_count=0, pools=pools)
    if db is not None:
        result.catalog = save_catalog(pools, db)
    if not sql:
        return result
    sql = _strip_sql(sql)
    con = connect(pools, threads=threads, memory_limit=memory_limit)
    try:
        set_params(con, params or {})
        if fmt == "table":
            cur = con.execute(sql)
            result.columns = [d[0] for d in cur.description or []]
            result.rows = cur.fetchmany(max_rows + 1)
            result.truncated = len(result.rows) > max_rows
            result.rows = result.rows[:max_rows]
            result.row_count = len(result.rows)
        else:
            result.output = Path(output)  # type: ignore[arg-type]
            result.row_count = _write_output(con, sql, fmt, result.output)
    except duckdb.Error as e:
        raise ValueError(f"query failed: {e}") from e
    finally:
        con.close()
    return result


def format_table(columns: list[str], rows: list[tuple], max_width: int = 60) -> str:
    """Query results as an aligned text table (NULL for None, long cells cut)."""
    return tables.format_table(columns, rows, max_width=max_width, null="NULL")
