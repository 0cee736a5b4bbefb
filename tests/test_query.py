"""query: pool discovery, DuckDB views, output formats, the --db catalog."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import make_rows, uid_of, write_pool

from datacomp_sci.cli import main
from datacomp_sci.core.schema import COMMONPOOL_SCHEMA
from datacomp_sci.core.util import sha256_bytes
from datacomp_sci.pool.pools import discover_pool, discover_pools, manifest_sha256
from datacomp_sci.pool.query import parse_params, run_query


def sci_rows(n: int, source: str, prefix: str) -> list[dict]:
    return [{"uid": uid_of(i, prefix), "text": "x" * (10 * (i + 1)), "source": source,
             "paper_id": f"{prefix}{i // 2}", "license": "cc-by" if i % 2 else None,
             "original_width": 100 * (i + 1), "original_height": 100} for i in range(n)]


@pytest.fixture
def two_pools(tmp_path: Path) -> tuple[Path, Path]:
    a = write_pool(tmp_path / "arxiv-2020", sci_rows(4, "arxiv", "a"), name="arXiv 2020", files=2)
    cp = write_pool(tmp_path / "commonpool", [
        {"uid": uid_of(i, "c"), "text": "a photo", "original_width": 64, "original_height": 64,
         "clip_b32_similarity_score": 0.25} for i in range(3)], schema=COMMONPOOL_SCHEMA)
    return a, cp


def test_pool_name_from_pool_json_or_folder_and_manifest_hash(two_pools):
    a, cp = two_pools
    pa_, pc_ = discover_pools([a, cp])
    assert (pa_.name, pc_.name) == ("arxiv_2020", "commonpool")
    assert [p.name for p in pa_.metadata_files] == ["00000000.parquet", "00000001.parquet"]
    assert pa_.manifest_sha256 == sha256_bytes((a / "pool.json").read_bytes())
    lines = f"00000000.parquet\t{(cp / 'metadata/00000000.parquet').stat().st_size}\n"
    assert pc_.manifest_sha256 == sha256_bytes(lines.encode())
    assert manifest_sha256(cp, pc_.metadata_files) == pc_.manifest_sha256


def test_bare_parquet_folder_is_a_pool_and_clashes_are_errors(tmp_path: Path):
    bare = tmp_path / "9 bare"
    bare.mkdir()
    pq.write_table(make_rows(COMMONPOOL_SCHEMA, [{"uid": uid_of(0)}]), bare / "x.parquet")
    assert discover_pool(bare).name == "p_9_bare"
    other = write_pool(tmp_path / "other", [{"uid": uid_of(1)}], name="9 bare")
    with pytest.raises(ValueError, match="both named 'p_9_bare'"):
        discover_pools([bare, other])
    reserved = write_pool(tmp_path / "pools", [{"uid": uid_of(1)}])
    with pytest.raises(ValueError, match="reserved"):
        discover_pools([reserved])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no metadata parquet"):
        discover_pool(tmp_path / "empty")


def test_views_and_union_with_missing_columns_null(two_pools):
    res = run_query(list(two_pools), "SELECT pool, count(*) AS n, count(source) AS with_source, "
                    "sum(length(text)) AS chars FROM pools GROUP BY pool ORDER BY pool")
    assert res.columns == ["pool", "n", "with_source", "chars"]
    assert res.rows == [("arxiv_2020", 4, 4, 100), ("commonpool", 3, 0, 21)]
    res = run_query(list(two_pools), "SELECT count(*) FROM arxiv_2020 WHERE license = 'cc-by'")
    assert res.rows == [(2,)]


def test_table_truncation_and_params(two_pools):
    res = run_query(list(two_pools), "SELECT uid FROM pools ORDER BY uid", max_rows=2)
    assert res.truncated and len(res.rows) == 2
    res = run_query([two_pools[0]], "SELECT count(*) FROM pools WHERE original_width >= "
                    "getvariable('w')", params=parse_params(["w=300"]))
    assert res.rows == [(2,)]
    assert parse_params(["a=1", "b=0.5", "c=true", "d=x,y"]) == {"a": 1, "b": 0.5, "c": True,
                                                                 "d": "x,y"}
    with pytest.raises(ValueError, match="name=value"):
        parse_params(["oops"])


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_file_formats(two_pools, tmp_path: Path, fmt: str):
    out = tmp_path / f"out.{fmt}"
    sql = "SELECT paper_id, count(*) AS figures FROM arxiv_2020 GROUP BY 1 ORDER BY 1"
    res = run_query(list(two_pools), sql, fmt=fmt, output=out)
    assert res.row_count == 2
    if fmt == "csv":
        assert out.read_text() == "paper_id,figures\na0,2\na1,2\n"
    elif fmt == "json":
        assert [json.loads(x) for x in out.read_text().splitlines()] == [
            {"paper_id": "a0", "figures": 2}, {"paper_id": "a1", "figures": 2}]
    else:
        assert pq.read_table(out).to_pylist() == [{"paper_id": "a0", "figures": 2},
                                                  {"paper_id": "a1", "figures": 2}]
    assert not list(tmp_path.glob(".out*"))


def test_db_catalog_reopens_with_duckdb(two_pools, tmp_path: Path):
    db = tmp_path / "cat.duckdb"
    res = run_query(list(two_pools), None, db=db)
    assert res.catalog == db
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT pool, count(*) FROM pools GROUP BY 1 ORDER BY 1").fetchall() == [
        ("arxiv_2020", 4), ("commonpool", 3)]
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() "
                                       "WHERE NOT internal").fetchall()}
    assert views == {"arxiv_2020", "commonpool", "pools"}
    con.close()


def test_query_errors_are_clean(two_pools, tmp_path: Path):
    with pytest.raises(ValueError, match="query failed"):
        run_query(list(two_pools), "SELECT nope FROM pools")
    with pytest.raises(ValueError, match="--output"):
        run_query(list(two_pools), "SELECT 1", fmt="csv")


def test_cli_query_table_and_csv(two_pools, tmp_path: Path):
    r = CliRunner().invoke(main, ["query", *map(str, two_pools), "--sql",
                                  "SELECT pool, count(*) AS n FROM pools GROUP BY 1 ORDER BY 1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:4] == ["pool        n", "----------  -",
                                         "arxiv_2020  4", "commonpool  3"]
    out = tmp_path / "n.csv"
    r = CliRunner().invoke(main, ["query", str(two_pools[1]), "--sql", "SELECT count(*) AS n "
                                  "FROM pools", "--format", "csv", "-o", str(out)])
    assert r.exit_code == 0 and out.read_text() == "n\n3\n"
    r = CliRunner().invoke(main, ["query", str(two_pools[1]), "--sql", "SELEC 1"])
    assert r.exit_code == 1 and "query failed" in r.output
