"""The demo's generated CommonPool-like pool: downloaded with img2dataset over loopback,
then summarised through the query layer."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from datacomp_sci.pipeline.demo import make_commonpool
from datacomp_sci.pool.query import run_query
from datacomp_sci.samplegen import commonpool as cp


def test_commonpool_like_pool_downloads_with_exact_coverage(tmp_path, monkeypatch):
    real = cp.write_commonpool_source
    monkeypatch.setattr(cp, "write_commonpool_source", lambda root: real(root, n=45))
    served: list[str] = []  # the loopback server's request log, over both calls
    real_serve = cp.serve
    monkeypatch.setattr(cp, "serve", lambda folder: real_serve(folder, served))
    coverage = make_commonpool(tmp_path, log=lambda s: None)
    assert len(served) >= 44  # every downloaded image was fetched through the server
    # row 11 is a broken URL (i % 41 == 11); every other image downloads
    assert (coverage.rows, coverage.downloaded, coverage.failed_to_download) == (45, 44, 1)
    pool = tmp_path / "commonpool"
    meta = pq.read_table(pool / "metadata" / "commonpool_tiny.parquet")
    assert meta.num_rows == 45 and meta.schema.names[:3] == ["uid", "url", "text"]
    stats = json.loads((pool / "shards" / "00000000_stats.json").read_text())
    assert stats["successes"] == 44
    res = run_query([pool], "SELECT pool, count(*) AS n FROM pools GROUP BY pool")
    assert res.rows == [("commonpool", 45)]
    # a second call finds the finished download and does not fetch again
    before = len(served)
    again = make_commonpool(tmp_path, log=lambda s: None)
    assert again.downloaded == 44
    assert len(served) == before


def _members(tar_path):
    import tarfile

    with tarfile.open(tar_path) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()]


@pytest.mark.slow
def test_demo_download_is_the_same_on_every_run(tmp_path, monkeypatch):
    """Stable URLs (no random port) and members in metadata order: the shard parquet is the
    same bytes, the tar the same members in the same order with the same bytes; only what
    img2dataset stamps with the clock differs (tar header mtimes, _stats.json timings)."""
    real = cp.write_commonpool_source
    monkeypatch.setattr(cp, "write_commonpool_source", lambda root: real(root, n=30))
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        make_commonpool(out, log=lambda s: None)
    shards = [sorted((out / "commonpool" / "shards").iterdir()) for out in runs]
    names = [p.name for p in shards[0]]
    assert names == [p.name for p in shards[1]] and "00000000.tar" in names
    for x, y in zip(*shards, strict=True):
        if x.name.endswith(".tar"):
            assert _members(x) == _members(y), x.name
        elif not x.name.endswith("_stats.json"):
            assert x.read_bytes() == y.read_bytes(), x.name
    urls = pq.read_table(runs[0] / "commonpool" / "shards" / "00000000.parquet")
    assert urls.column("url")[0].as_py() == f"{cp.BASE_URL}/images/00000.jpg"
    keys = [name.split(".")[0] for name, _data in _members(shards[0][names.index("00000000.tar")])]
    assert keys == sorted(keys)


@pytest.mark.slow
def test_the_whole_demo_runs_and_ends_on_a_board(demo_run):
    """The session's one real demo (the demo_run fixture, shared with test_docs_run.py)."""
    from datacomp_sci.leaderboard.store import Store

    assert demo_run.outcomes and {o.status for o in demo_run.outcomes} <= {"ran", "skipped"}
    assert demo_run.coverage.downloaded == 390 and demo_run.coverage.rows == 400
    pairs = {row[0]: row[1] for row in demo_run.summary}
    assert pairs["commonpool"] == 400 and pairs["arxiv"] > 0 and pairs["pmc"] > 0
    assert {"table3.md", "report.json", "report.png"} <= {p.name for p in demo_run.report_files}
    entries = Store(demo_run.leaderboard).entries()
    assert sorted(e.method for e in entries) == sorted(
        ["commonpool", "arxiv_pmc", "commonpool_arxiv_pmc", "clip_score_mix"])
    assert (demo_run.leaderboard_site / "index.html").is_file()
    for run in ("commonpool", "arxiv_pmc", "commonpool_arxiv_pmc", "clip_score_mix"):
        assert (demo_run.output / "runs" / run / "tiny_scale" / "eval_results.jsonl").is_file()
