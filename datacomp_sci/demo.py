"""``datacomp-sci demo``: the whole pipeline on the bundled sample data.

Builds the arXiv and PMC pools from the bundled sample packages and prints a DuckDB
summary of them. Every step is resumable: rerunning the demo reuses finished steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .build import BuildResult, build_pool, options_from_config
from .util import resource_path

SAMPLES = resource_path("data", "samples")

SUMMARY_SQL = """
SELECT source,
       count(*)                          AS pairs,
       count(DISTINCT paper_id)          AS papers,
       round(avg(caption_length), 1)     AS avg_caption_chars,
       round(avg(len(mentions)), 2)      AS avg_mentions,
       count(parent_caption)             AS subfigure_pairs,
       count(DISTINCT image_format)      AS image_formats
FROM read_parquet(?)
GROUP BY source ORDER BY source
"""


@dataclass
class DemoResult:
    output: Path
    pools: dict[str, BuildResult] = field(default_factory=dict)
    summary: list[tuple] = field(default_factory=list)
    summary_columns: list[str] = field(default_factory=list)


def pool_summary(pools: list[Path]) -> tuple[list[str], list[tuple]]:
    """Pairs, papers and caption statistics per source, straight from the metadata."""
    import duckdb

    globs = [str(p / "metadata" / "*.parquet") for p in pools]
    con = duckdb.connect()
    rel = con.execute(SUMMARY_SQL, [globs])
    cols = [d[0] for d in rel.description]
    return cols, rel.fetchall()


def run_demo(output: str | Path, workers: int | None = None,
             log: Callable[[str], None] = print,
             progress_factory: Callable[[], object] | None = None) -> DemoResult:
    out = Path(output)
    result = DemoResult(out)
    for source in ("arxiv", "pmc"):
        log(f"[demo] build-pool {source}: {SAMPLES / source} -> {out / 'pools' / source}")
        # the sample corpus holds an EPS that loops forever: 5 s is enough for the rest
        opts = options_from_config(source, None, converter_timeout_s=5)
        bar = progress_factory() if progress_factory else None
        try:
            res = build_pool([str(SAMPLES / source)], out / "pools" / source, opts,
                             workers=workers,
                             progress=getattr(bar, "update", None),
                             on_units=getattr(bar, "start", None))
        finally:
            if bar is not None:
                bar.close()
        result.pools[source] = res
    result.summary_columns, result.summary = pool_summary([out / "pools" / s for s in result.pools])
    return result
