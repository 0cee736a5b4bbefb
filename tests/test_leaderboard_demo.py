"""The demo's ending: its runs become submissions on a local board, exported."""

from __future__ import annotations

import json

from helpers import uid_file

from datacomp_sci.core.util import sha256_file
from datacomp_sci.leaderboard.store import Store
from datacomp_sci.pipeline.demo import EXPERIMENT, publish_leaderboard
from datacomp_sci.pipeline.experiment import load_experiment
from datacomp_sci.reporting.aggregate import load_suite

RUNS = ("commonpool", "arxiv_pmc", "commonpool_arxiv_pmc", "clip_score_mix")


def fake_demo_output(out, suite):
    """What the demo's experiment leaves: runs/<run>/tiny_scale and subsets/<pool>.npy."""
    for i, pool in enumerate(("commonpool", "arxiv", "pmc")):
        uid_file(out / "subsets" / f"{pool}.npy", 10 * (i + 1), start=1000 * i)
        # the CLIP-score-filtered run's pools: a smaller subset of the same uids
        uid_file(out / "subsets" / f"{pool}_clip.npy", 3 * (i + 1), start=1000 * i)
    for j, run in enumerate(RUNS):
        d = out / "runs" / run / "tiny_scale"
        d.mkdir(parents=True)
        (d / "epoch_1.pt").write_bytes(run.encode())
        (d / "info.json").write_text(json.dumps({
            "model": "tiny-vit", "checkpoint": "epoch_1.pt", "scale": "tiny",
            "checkpoint_sha256": sha256_file(d / "epoch_1.pt")}))
        (d / "eval_results.jsonl").write_text("".join(
            json.dumps({"key": t.key, "dataset": t.name,
                        "metrics": {"main_metric": 0.1 * (k + 1) + 0.01 * j}}) + "\n"
            for k, t in enumerate(suite.scored)))


def test_demo_runs_land_on_a_local_board_and_a_static_site(tmp_path):
    exp = load_experiment(EXPERIMENT, workdir=str(tmp_path))
    fake_demo_output(tmp_path, load_suite(exp.suite))
    lines = []
    board, site = publish_leaderboard(tmp_path, exp, lines.append)
    store = Store(board)
    entries = {e.method: e for e in store.entries()}
    assert set(entries) == set(RUNS) == set(exp.runs)
    assert entries["commonpool"].kind == "baseline"
    assert entries["commonpool_arxiv_pmc"].dataset_size == 10 + 20 + 30
    assert entries["arxiv_pmc"].dataset_size == 20 + 30
    assert entries["clip_score_mix"].dataset_size == 3 + 6 + 9
    assert store.settings.suite == "tiny" and store.settings.scales == ("tiny",)
    page = (site / "board" / "tiny" / "filtering" / "index.html").read_text()
    assert page.index("commonpool_arxiv_pmc") < page.index("arxiv_pmc<")
    for e in entries.values():
        assert (site / "submission" / e.id / "index.html").is_file()
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    publish_leaderboard(tmp_path, exp, lines.append)      # a rerun of the demo
    assert len(Store(board).entries()) == len(RUNS) and "already has" in lines[-2]
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
