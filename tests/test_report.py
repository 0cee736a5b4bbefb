"""report: DataComp aggregation, Table 3/4, figure and report.json."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from helpers import write_eval_results

from datacomp_sci.cli import main
from datacomp_sci.reporting import paper
from datacomp_sci.reporting.aggregate import (
    DATACOMP_GROUPS,
    DIST_SHIFTS,
    IMAGENET,
    RETRIEVAL,
    VTAB,
    aggregate,
    groups_by_name,
    load_results,
    load_suite,
)
from datacomp_sci.reporting.report import build_report, render_tables, write_report

write_results = write_eval_results


def test_group_membership_from_suite_file_equals_datacomp_lists():
    suite = load_suite("datacomp38")
    assert suite.source.endswith("datacomp38.yaml")
    assert groups_by_name(suite) == DATACOMP_GROUPS
    assert len(suite.scored) == 38 and len(suite.tasks) == 40


def test_aggregate_matches_hand_computed_group_means(tmp_path):
    run = load_results(write_results(tmp_path / "a" / "eval_results.jsonl"))
    agg = aggregate(run, load_suite("datacomp38"))
    g = {k: v.value for k, v in agg.groups.items()}
    assert g[IMAGENET] == pytest.approx(0.12)
    assert g[DIST_SHIFTS] == pytest.approx((13 + 14 + 15 + 16 + 17 + 20) / 600)
    assert g[VTAB] == pytest.approx((1 + 3 + 4 + 5 + 7 + 8 + 18 + 21 + 22 + 24 + 26 + 29 + 30) / 1300)
    assert g[RETRIEVAL] == pytest.approx((31 + 32 + 33) / 300)
    assert g["Average"] == pytest.approx(sum(range(1, 39)) / 38 / 100)
    assert not agg.partial and agg.groups[VTAB].n_scored == 13


def test_partial_results_are_marked_not_averaged_as_complete(tmp_path):
    path = write_results(tmp_path / "p" / "eval_results.jsonl", drop=("MNIST", "ImageNet Sketch"),
                         extra_lines=('{"key": "broken"', '[1, 2]'))
    run = load_results(path)
    assert len(run.bad_lines) == 2 and run.bad_lines[0].startswith("line 39: invalid JSON")
    agg = aggregate(run)
    assert agg.partial and agg.missing == ("ImageNet Sketch", "MNIST")
    assert agg.groups[DIST_SHIFTS].partial and agg.groups[DIST_SHIFTS].missing == ("ImageNet Sketch",)
    assert agg.groups[DIST_SHIFTS].value == pytest.approx((14 + 15 + 16 + 17 + 20) / 500)
    assert not agg.groups[VTAB].partial
    assert agg.groups["Average"].n_scored == 36
    table3 = render_tables(build_report([str(path.parent)]), "md")["table3"]
    row = next(line for line in table3.splitlines() if line.startswith("| p |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{(14 + 15 + 16 + 17 + 20) / 500:.3f}*" and cells[3] == "0.152"
    assert "* p: partial, 2 of 38 tasks missing (ImageNet Sketch, MNIST)" in table3


def test_results_matched_by_display_name_when_key_differs(tmp_path):
    # DataComp's old Flickr key (retrieval/flickr30k) vs the suite's flickr_1k key
    suite = load_suite("datacomp38")
    assert suite.lookup("retrieval/flickr30k", "Flickr").name == "Flickr"
    agg = aggregate(load_results(write_results(tmp_path / "r" / "eval_results.jsonl")), suite)
    assert not agg.partial and agg.extra == ()


def test_tables_figure_and_json(tmp_path):
    base = write_results(tmp_path / "commonpool" / "eval_results.jsonl")
    better = {"PatchCamelyon": 0.6, "SVHN": 0.5, "ImageNet 1k": 0.01}
    write_results(tmp_path / "mix" / "eval_results.jsonl", values=better)
    rep = build_report([str(base), f"mixed={tmp_path / 'mix'}"], with_paper=True)
    assert rep.baseline == "commonpool"
    out = tmp_path / "out"
    written = write_report(rep, out, "csv")
    assert sorted(p.name for p in written) == ["report.json", "report.pdf", "report.png",
                                               "table3.csv", "table4.csv"]
    t3 = list(csv.reader(io.StringIO((out / "table3.csv").read_text())))
    assert t3[0] == ["training data", "ImageNet", "ImageNet dist. shifts", "VTAB", "Retrieval",
                     "Average (38)"]
    assert t3[1] == ["commonpool", "0.120", "0.158", "0.152", "0.320", "0.195"]
    assert t3[2][:2] == ["mixed", "0.010"]
    assert t3[5] == ["CommonPool + arXiv + PMC (arXiv 2311.04711)", "0.017", "0.026", "0.153",
                     "0.098", "0.135"]
    t4 = list(csv.reader(io.StringIO((out / "table4.csv").read_text())))
    assert t4[1] == ["mixed", "PatchCamelyon", "medical/histopathology", "0.6000", "0.2400", "+0.3600"]
    assert t4[2] == ["mixed", "SVHN", "digits/text", "0.5000", "0.3000", "+0.2000"]
    assert len([r for r in t4 if r[0] == "mixed"]) == 2
    assert t4[-1][1:] == ["Camelyon17", "medical/histopathology", "0.7120", "0.3970", "+0.3150"]
    doc = json.loads((out / "report.json").read_text())
    assert doc["runs"][1]["aggregates"]["ImageNet"]["value"] == 0.01
    assert doc["deltas"]["mixed"][0] == {"task": "ImageNet 1k", "delta": pytest.approx(-0.11)}
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    again = tmp_path / "again"
    write_report(rep, again, "csv")
    for name in ("report.png", "report.pdf", "report.json", "table4.csv"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_latex_and_markdown_rendering(tmp_path):
    write_results(tmp_path / "a_b" / "eval_results.jsonl")
    tex = render_tables(build_report([str(tmp_path / "a_b")]), "latex")
    assert "a\\_b & 0.120 & 0.158 & 0.152 & 0.320 & 0.195 \\\\" in tex["table3"]
    assert "% no baseline" in tex["table4"]


def test_paper_tables_equal_contracts():
    t3 = {r.training_data: r.scores for r in paper.TABLE3}
    assert t3["CommonPool"] == {"ImageNet": 0.028, "ImageNet dist. shifts": 0.037, "VTAB": 0.145,
                                "Retrieval": 0.113, "Average": 0.132}
    assert t3["arXiv + PMC"] == {"ImageNet": 0.002, "ImageNet dist. shifts": 0.007, "VTAB": 0.098,
                                 "Retrieval": 0.058, "Average": 0.086}
    assert t3["CommonPool + arXiv + PMC"] == {"ImageNet": 0.017, "ImageNet dist. shifts": 0.026,
                                              "VTAB": 0.153, "Retrieval": 0.098, "Average": 0.135}
    assert [(g.task, g.score, g.baseline) for g in paper.TABLE4] == [
        ("FGVC Aircraft", 0.0136, 0.0072), ("GTSRB", 0.0801, 0.0418),
        ("CLEVR Counts", 0.1465, 0.1437), ("KITTI Vehicle Distance", 0.3459, 0.3150),
        ("PatchCamelyon", 0.6004, 0.4057), ("SVHN", 0.1127, 0.0852),
        ("Camelyon17", 0.7120, 0.3970)]
    keys = {t.key for t in load_suite("datacomp38").tasks}
    assert all(g.task_key in keys for g in paper.TABLE4)


def test_cli_report(tmp_path):
    write_results(tmp_path / "base" / "eval_results.jsonl")
    write_results(tmp_path / "new" / "eval_results.jsonl", values={"GTSRB": 0.9})
    r = CliRunner().invoke(main, ["report", str(tmp_path / "base"), str(tmp_path / "new")])
    assert r.exit_code == 0, r.output
    assert "| new | GTSRB | traffic signs | 0.9000 | 0.1100 | +0.7900 |" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "no such file or folder" in r.output
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "eval_results.jsonl").write_text("not json\n")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "empty")])
    assert r.exit_code == 1 and "no task results" in r.output and "1 unusable lines" in r.output


def test_report_paper_alone_prints_the_published_tables():
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    res = CliRunner().invoke(main, ["report", "--paper"])
    assert res.exit_code == 0, res.output
    assert "| CommonPool (arXiv 2311.04711) | 0.028 | 0.037 | 0.145 | 0.113 | 0.132 |" in res.output
    assert "| Camelyon17 | medical/histopathology | 0.7120 | 0.3970 | +0.3150 |" in res.output
    bare = CliRunner().invoke(main, ["report"])
    assert bare.exit_code != 0 and "--paper" in bare.output
