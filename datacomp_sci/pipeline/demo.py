"""``datacomp-sci demo``: the whole pipeline on the bundled sample data, in minutes on CPU.

1. A small CommonPool-like pool is generated (URLs, captions, metadata) and downloaded
   with img2dataset, using DataComp's parameters, from a loopback HTTP server
   (``download.py``): the same path a CommonPool download takes.
2. ``experiments/demo_tiny.yaml`` runs the paper's experiment at the ``tiny`` scale
   (``experiment.py``): build the arXiv and PMC pools from the bundled sample packages,
   filter (arXiv and PMC decontaminated against the tiny suite's images, ``basic_filter``
   on CommonPool), reshard, mix at natural proportions, train
   three tiny CLIP models with OpenCLIP, evaluate them on the generated tiny suite in
   clip_benchmark's layout, and write the report (Table 3/4 and a figure). The pools are
   embedded first (``embed`` with the tiny model's randomly initialised weights), and a
   fourth run trains on the mix filtered by ``clip_score`` over all three pools together.
3. A DuckDB summary of the pools (the paper's Table 1: pairs and caption lengths per
   source) is printed with the report.
4. The three runs become submissions (``submit``'s validation, on the tiny suite), are
   imported into a local leaderboard (``leaderboard/``; the baseline run as a baseline
   row) and its static site is exported (``leaderboard_site/``).

Every step is resumable: rerunning the demo skips what is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

EXPERIMENT = "demo_tiny"

# The paper's Table 1 (pairs and caption length per source) over the `pools` view that
# `datacomp-sci query` creates (one view per pool plus their union with a `pool` column).
SUMMARY_SQL = """
SELECT pool,
       count(*)                                   AS pairs,
       count(DISTINCT paper_id)                   AS papers,
       round(avg(length(text)), 1)                AS avg_caption_chars,
       round(avg(coalesce(len(mentions), 0)), 2)  AS avg_mentions,
       count(parent_caption)                      AS subfigure_pairs,
       count(DISTINCT license)                    AS licences
FROM pools
GROUP BY pool ORDER BY pool
"""


@dataclass
class DemoResult:
    output: Path
    coverage: object | None = None
    outcomes: list = field(default_factory=list)
    summary_columns: list[str] = field(default_factory=list)
    summary: list[tuple] = field(default_factory=list)
    report_files: list[Path] = field(default_factory=list)
    leaderboard: Path | None = None
    leaderboard_site: Path | None = None


def pool_summary(pools: list[Path]) -> tuple[list[str], list[tuple]]:
    """Pairs, papers and caption statistics per pool, through ``datacomp-sci query``."""
    from datacomp_sci.pool.query import run_query

    res = run_query([str(p) for p in pools], SUMMARY_SQL, max_rows=100)
    return res.columns, res.rows


def make_commonpool(out: Path, log: Callable[[str], None]) -> object:
    """Generate a CommonPool-like URL pool and download it with img2dataset (loopback)."""
    from datacomp_sci.pool.download import DownloadOptions, download_pool, measure_coverage
    from datacomp_sci.samplegen.commonpool import BASE_URL, serve, write_commonpool_source

    pool = out / "commonpool"
    if (pool / "coverage.json").exists():
        log(f"[demo] CommonPool-like pool: {pool} already downloaded")
        return measure_coverage(pool)[0]
    src = out / "_commonpool_source"
    if not (src / "metadata").exists():
        write_commonpool_source(src)
    with serve(src) as proxy:
        log(f"[demo] download-pool: img2dataset fetches {BASE_URL}/... (served by {proxy}) "
            f"-> {pool}")
        # one download thread: samples are written in metadata order, so the shards are
        # the same bytes on every run (img2dataset writes them as downloads complete)
        res = download_pool(pool, metadata_dir=src / "metadata",
                            opts=DownloadOptions(processes=1, threads=1, timeout=5, retries=0))
    return res.coverage


def publish_leaderboard(out: Path, experiment, log: Callable[[str], None]) -> tuple[Path, Path]:
    """Every run of the experiment as a submission folder (``submit``'s checks against the
    experiment's suite), imported into ``out/leaderboard``; its static copy in
    ``out/leaderboard_site``. Rerunning finds the entries already there."""
    import os
    from datetime import datetime, timezone

    from datacomp_sci.leaderboard.export import export_site
    from datacomp_sci.leaderboard.ingest import import_paths
    from datacomp_sci.leaderboard.store import BoardSettings, Store
    from datacomp_sci.reporting.submission import (
        SubmissionRequest,
        find_train_info,
        prepare_submission,
    )

    store = Store.open(out / "leaderboard", BoardSettings(
        suite=experiment.suite, scales=(experiment.scale,), title="datacomp-sci demo board"))
    for run in experiment.runs:
        info = find_train_info(out / "runs" / run)
        # the submission's time is its training's: a rerun makes the same entry
        stamp = datetime.fromtimestamp(int(os.stat(info).st_mtime), timezone.utc)
        sub = prepare_submission(SubmissionRequest(
            train_output=info.parent, track="filtering", method=run,
            authors="datacomp-sci demo", contact="demo@example.org",
            samples=tuple(out / "subsets" / f"{pool}.npy" for pool in experiment.runs[run]),
            output=out / "submissions" / run, timestamp=stamp.strftime("%Y-%m-%d_%H:%M:%S")),
            suite=experiment.suite, scales=None)
        (acc,) = import_paths(store, [sub.output], baseline=run == experiment.baseline)
        log(f"[demo] leaderboard: {'added' if acc.created else 'already has'} {run} "
            f"({acc.entry.kind}, Average {acc.entry.groups['Average']:.3f})")
    site = export_site(store, out / "leaderboard_site", overwrite=True)
    log(f"[demo] leaderboard: {site.pages} static pages in {site.output} "
        f"(serve the board: datacomp-sci leaderboard serve --db {store.folder})")
    return store.folder, site.output


TINY_WEIGHTS = "tiny_clip_init.pt"


def write_tiny_weights(path: Path) -> Path:
    """Randomly initialised weights (seed 0) of the tiny model, for the demo's `embed` step:
    the path real weights take, without a download."""
    if path.exists():
        return path
    import open_clip
    import torch

    from datacomp_sci.core.models import TINY_MODEL, register_models
    from datacomp_sci.core.util import atomic_open

    register_models()
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_MODEL)
    with atomic_open(path) as f:
        torch.save(model.state_dict(), f)
    return path


def run_demo(output: str | Path, workers: int | None = None,
             log: Callable[[str], None] = print, progress: bool = True) -> DemoResult:
    """Run the demo into ``output``; ``workers`` overrides the experiment file's, and
    ``progress`` shows each step's own bars."""
    from datacomp_sci.pipeline.experiment import load_experiment, make_actions, run_experiment

    out = Path(output).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)
    result.coverage = make_commonpool(out, log)
    write_tiny_weights(out / TINY_WEIGHTS)
    # OpenCLIP's console shows warnings only: each run's out.log has its full log
    exp = run_experiment(EXPERIMENT, workdir=str(out), log=log, workers=workers,
                         act=make_actions(progress=progress, quiet=True))
    result.outcomes = exp.outcomes
    pools = [out / "pools" / "arxiv", out / "pools" / "pmc", out / "commonpool"]
    result.summary_columns, result.summary = pool_summary(pools)
    result.report_files = sorted((out / "report").glob("*"))
    if not exp.count("blocked"):
        result.leaderboard, result.leaderboard_site = publish_leaderboard(
            out, load_experiment(EXPERIMENT, workdir=str(out)), log)
    return result
