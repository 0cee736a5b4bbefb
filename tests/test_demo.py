"""The demo's generated CommonPool-like pool: downloaded with img2dataset over loopback,
then summarised through the query layer."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

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
    assert len(served) >= 45  # every row's URL was requested (the broken one included)
    # row 11 is a broken URL (i % 41 == 11); every other image downloads
    assert (coverage.rows, coverage.downloaded, coverage.failed_to_download) == (45, 44, 1)
    pool = tmp_path / "commonpool_tiny"
    meta = pq.read_table(pool / "metadata" / "commonpool_tiny.parquet")
    assert meta.num_rows == 45 and meta.schema.names[:3] == ["uid", "url", "text"]
    stats = json.loads((pool / "shards" / "00000000_stats.json").read_text())
    assert stats["successes"] == 44
    res = run_query([pool], "SELECT pool, count(*) AS n FROM pools GROUP BY pool")
    assert res.rows == [("commonpool_tiny", 45)]
    # a second call finds the finished download and does not fetch again
    before = len(served)
    again = make_commonpool(tmp_path, log=lambda s: None)
    assert again.downloaded == 44
    assert len(served) == before


