"""curate metaclip / curate entities: MetaCLIP's exact matching, counts over all pools,
deterministic balancing, outputs as every filter writes them, composition with reshard."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from datacomp_sci.cli import main
from datacomp_sci.core.uids import SUBSET_DTYPE, pair_uid, u8u8_to_uids, uids_to_u8u8
from datacomp_sci.curation.balance import balance, keep_probability
from datacomp_sci.curation.curate import (
    ConceptSource,
    CurateOptions,
    CurateSpec,
    parse_thresholds,
    run_curation,
)
from datacomp_sci.curation.matching import Matcher, load_entries, naive_match, spacing

WORDS = ["neural", "network", "Neural", "cell", "cells", "protein", "X-ray", "spectrum", "a",
         "of", "the", "Fig", "loss", "curve", "graph", "mouse", "brain", "MRI", "2", "10"]
PUNCT = [",", ".", ";", ":", "?", "!", "`", "\t", "\n", "\r", "(", ")", "-", "  "]
ENTRIES = ["neural network", "Neural network", "network", "cell", "cells", "protein", "X-ray",
           "spectrum", "loss curve", "mouse brain", "brain", "MRI", "2", "10", "Fig", "a",
           "network.", "curve graph", "cell", "of the", "x\ty"]  # repeated "cell"; tab entry


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        parts.append(rng.choice(WORDS))
        parts.append(rng.choice([" "] * 6 + PUNCT))
    return "".join(parts)


def uid(i: int, prefix: str = "p") -> str:
    return pair_uid("curate-test", prefix, str(i))


def write_meta(root: Path, rows: list[dict], files: int = 1, with_mentions: bool = True) -> Path:
    """A pool folder: metadata/{N:08d}.parquet with uid, text (+ mentions)."""
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    fields = [pa.field("uid", pa.string()), pa.field("text", pa.string())]
    if with_mentions:
        fields.append(pa.field("mentions", pa.list_(pa.string())))
    schema = pa.schema(fields)
    per = -(-len(rows) // files) if rows else 0
    for n in range(files):
        part = rows[n * per:(n + 1) * per]
        cols = {f.name: [r.get(f.name) for r in part] for f in fields}
        pq.write_table(pa.table(cols, schema=schema), root / "metadata" / f"{n:08d}.parquet")
    return root


def random_rows(n: int, seed: int, prefix: str = "p", mentions: bool = True) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        r = {"uid": uid(i, prefix), "text": random_text(rng) if rng.random() > 0.05 else None}
        if mentions:
            r["mentions"] = [random_text(rng) for _ in range(rng.randint(0, 2))]
        rows.append(r)
    return rows


def metadata_file(tmp_path: Path, entries=ENTRIES) -> Path:
    path = tmp_path / "metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


def naive_counts(rows: list[dict], entries: list[str], columns=("text",)) -> np.ndarray:
    """An independent implementation: MetaCLIP's loop per text, union per pair."""
    counts = np.zeros(len(entries), dtype=np.int64)
    for r in rows:
        texts = []
        for c in columns:
            v = r.get(c)
            texts.extend(v if isinstance(v, list) else [v])
        matched = set()
        for t in texts:
            matched.update(naive_match(t, entries))
        for e in matched:
            counts[e] += 1
    return counts


def curate(pools, out, metadata, t="3", **kw) -> list:
    opts = CurateOptions(workers=kw.pop("workers", 1), plot=kw.pop("plot", True))
    spec = CurateSpec(src=ConceptSource("metaclip", str(metadata)), thresholds=parse_thresholds(t),
                      **kw)
    return run_curation([str(p) for p in pools], out, spec, opts)


# --- matching ---------------------------------------------------------------------------------
def test_spacing_is_metaclips_rule():
    assert spacing("a,b.c\td\ne\rf;g:h?i!j`k") == " a , b . c d e f ; g : h ? i ! j ` k "
    assert spacing("") == "  "


def test_matcher_equals_metaclips_naive_loop_on_random_texts():
    rng = random.Random(1)
    texts = [random_text(rng) for _ in range(3000)] + [None, "", "nul\x00 cell a", "Ünïcode cell"]
    rng.shuffle(texts)
    m = Matcher(ENTRIES).match(texts)
    got = [[] for _ in texts]
    for t, c in zip(m.text.tolist(), m.concept.tolist(), strict=True):
        got[t].append(c)
    want = [naive_match(t, ENTRIES) for t in texts]
    assert got == want
    assert sum(map(len, want)) > 3000  # the test data really matches


def test_matcher_is_case_sensitive_and_reports_overlapping_entries():
    m = Matcher(["a b", "b c", "B", "b"]).match(["a b c", "A B C"])
    assert list(zip(m.text.tolist(), m.concept.tolist(), strict=True)) == [(0, 0), (0, 1), (0, 3),
                                                                             (1, 2)]


def test_metadata_json_list_and_text_file_give_the_same_entries(tmp_path: Path):
    (tmp_path / "m.txt").write_text("neural network\n\ncell\r\nX-ray\n")
    (tmp_path / "m.json").write_text(json.dumps(["neural network", "cell", "X-ray"]))
    assert load_entries(tmp_path / "m.txt") == load_entries(tmp_path / "m.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON list of strings"):
        load_entries(tmp_path / "bad.json")


# --- counts and balancing ---------------------------------------------------------------------
def test_counts_over_all_pools_equal_a_naive_implementation(tmp_path: Path):
    a_rows, b_rows = random_rows(400, 2, "a"), random_rows(300, 3, "b", mentions=False)
    a = write_meta(tmp_path / "arxiv", a_rows, files=2)
    b = write_meta(tmp_path / "commonpool", b_rows, with_mentions=False)
    meta = metadata_file(tmp_path)
    for columns in (("text",), ("text", "mentions")):
        out = tmp_path / f"{'_'.join(columns)}.npy"
        curate([a, b], out, meta, text_columns=columns)
        table = pq.read_table(out.with_suffix(".entry_counts.parquet"))
        assert table.column("entry").to_pylist() == ENTRIES
        want = naive_counts(a_rows, ENTRIES, columns) + naive_counts(b_rows, ENTRIES, ("text",))
        assert table.column("count").to_pylist() == want.tolist()


def test_kept_fraction_per_entry_matches_the_formula_within_sampling_error():
    rng = np.random.default_rng(0)
    n, n_entries, t = 400_000, 50, 2000.0
    # Zipf-like entry popularity, 1-3 entries per pair
    weights = 1.0 / np.arange(1, n_entries + 1)
    k = rng.integers(1, 4, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(k, out=offsets[1:])
    concepts = rng.choice(n_entries, size=int(offsets[-1]), p=weights / weights.sum()).astype(np.int32)
    # distinct entries per pair, as matching yields
    row = np.repeat(np.arange(n), k)
    pair = np.unique(row.astype(np.int64) << 32 | concepts)
    row, concepts = pair >> 32, (pair & 0xFFFFFFFF).astype(np.int32)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n), out=offsets[1:])
    counts = np.bincount(concepts, minlength=n_entries)
    hi = rng.integers(0, 2**63, size=n, dtype=np.uint64)
    lo = rng.integers(0, 2**63, size=n, dtype=np.uint64)
    b = balance(offsets, concepts, hi, lo, counts, t, seed=0)
    prob = keep_probability(offsets, concepts, b.p)
    expected = np.bincount(concepts, weights=prob[row], minlength=n_entries)
    var = np.bincount(concepts, weights=(prob * (1 - prob))[row], minlength=n_entries)
    z = (b.kept_per_entry - expected) / np.sqrt(np.maximum(var, 1e-9))
    assert (counts > t).sum() >= 5  # a real head
    assert np.abs(z).max() < 5
    # an entry matched alone is kept with probability t / count exactly
    single = np.diff(offsets) == 1
    e0 = (concepts[offsets[:-1][single]] == 0)
    n0 = int(e0.sum())
    kept0 = int(b.keep[np.flatnonzero(single)[e0]].sum())
    p0 = t / counts[0]
    assert abs(kept0 - n0 * p0) < 5 * np.sqrt(n0 * p0 * (1 - p0))


def test_subset_is_identical_for_any_workers_order_and_split_of_pools(tmp_path: Path):
    rows = random_rows(600, 4)
    meta = metadata_file(tmp_path)
    one = write_meta(tmp_path / "one" / "pool", rows, files=1)
    shuffled = rows[:]
    random.Random(9).shuffle(shuffled)
    p1 = write_meta(tmp_path / "split" / "part1", shuffled[:250], files=2)
    p2 = write_meta(tmp_path / "split" / "part2", shuffled[250:], files=3)
    r1 = curate([one], tmp_path / "a.npy", meta, t="5", seed=7, plot=False)
    r2 = curate([p2, p1], tmp_path / "b.npy", meta, t="5", seed=7, plot=False, workers=2)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert r1.outputs[0].counts_path.read_bytes() == r2.outputs[0].counts_path.read_bytes()
    r3 = curate([one], tmp_path / "c.npy", meta, t="5", seed=8, plot=False)
    assert r3.outputs[0].result.npy_sha256 != r1.outputs[0].result.npy_sha256
    assert 0 < r1.outputs[0].result.count < 600


def test_outputs_subset_sidecar_counts_and_plot_as_filters_do(tmp_path: Path):
    rows = random_rows(300, 5)
    pool = write_meta(tmp_path / "pool", rows)
    meta = metadata_file(tmp_path)
    res = curate([pool], tmp_path / "out" / "mc.npy", meta, t="4")
    out = res.outputs[0]
    arr = np.load(tmp_path / "out" / "mc.npy")
    assert arr.dtype == SUBSET_DTYPE and arr.tolist() == sorted(arr.tolist())
    side = json.loads((tmp_path / "out" / "mc.json").read_text())
    assert side["filter"] == "metaclip" and side["count"] == len(arr)
    assert side["parameters"]["t"] == 4 and side["parameters"]["seed"] == 0
    assert side["entry_counts"] == "mc.entry_counts.parquet" and side["plot"] == "mc.counts.png"
    assert side["npy_sha256"] == out.result.npy_sha256
    assert out.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pq.read_table(out.counts_path)
    assert table.column_names == ["entry", "count", "p_e", "kept"]
    counts = np.array(table.column("count").to_pylist())
    assert np.allclose(table.column("p_e").to_pylist(), 4 / np.maximum(counts, 4))
    # every kept pair matched something; entries at or below t keep all their pairs
    kept = set(u8u8_to_uids(arr))
    matched = {r["uid"] for r in rows if naive_match(r["text"], ENTRIES)}
    assert kept <= matched
    tail = [i for i, c in enumerate(counts) if 0 < c <= 4]
    for i in tail:
        holders = {r["uid"] for r in rows if i in naive_match(r["text"], ENTRIES)}
        assert holders <= kept
    # --not composes as in `filter`
    res2 = curate([pool], tmp_path / "out" / "mc_not.npy", meta, t="4",
                  not_files=[str(tmp_path / "out" / "mc.npy")])
    assert res2.outputs[0].result.count == 0
    assert json.loads((tmp_path / "out" / "mc_not.json").read_text())["selected"] == len(arr)


def test_t_sweep_and_counts_reuse_give_the_same_subsets_without_rematching(tmp_path: Path):
    pool = write_meta(tmp_path / "pool", random_rows(400, 6))
    meta = metadata_file(tmp_path)
    sweep = curate([pool], tmp_path / "s.npy", meta, t="3,10,1000", plot=False)
    names = sorted(p.name for p in tmp_path.glob("s_t*.npy"))
    assert names == ["s_t10.npy", "s_t1000.npy", "s_t3.npy"]
    sizes = [o.result.count for o in sweep.outputs]
    assert sizes[0] < sizes[1] < sizes[2]
    assert sweep.stats["match_sidecars_computed"] == 1
    again = curate([pool], tmp_path / "r.npy", meta, t="10", plot=False,
                   counts_file=str(tmp_path / "s_t3.entry_counts.parquet"))
    assert again.stats["match_sidecars_reused"] == 1 and again.stats["match_sidecars_computed"] == 0
    assert (tmp_path / "r.npy").read_bytes() == (tmp_path / "s_t10.npy").read_bytes()
    other = metadata_file(tmp_path / "o", ENTRIES[:-1])
    with pytest.raises(ValueError, match="entries are not those"):
        curate([pool], tmp_path / "x.npy", other, counts_file=str(tmp_path / "s_t3.entry_counts.parquet"))


def test_match_sidecar_is_recomputed_when_the_metadata_file_changes(tmp_path: Path):
    pool = write_meta(tmp_path / "pool", random_rows(100, 7))
    meta = metadata_file(tmp_path)
    curate([pool], tmp_path / "a.npy", meta, plot=False)
    rows = random_rows(120, 8)
    write_meta(pool, rows)
    res = curate([pool], tmp_path / "b.npy", meta, plot=False)
    assert res.stats["match_sidecars_computed"] == 1 and res.stats["rows"] == 120
    counts = pq.read_table(tmp_path / "b.entry_counts.parquet").column("count").to_pylist()
    assert counts == naive_counts(rows, ENTRIES).tolist()


def test_missing_text_column_everywhere_is_a_clear_error_but_missing_in_one_pool_is_not(tmp_path):
    a = write_meta(tmp_path / "arxiv", random_rows(50, 9))
    cp = write_meta(tmp_path / "cp", random_rows(50, 10, "c", mentions=False), with_mentions=False)
    meta = metadata_file(tmp_path)
    res = curate([a, cp], tmp_path / "ok.npy", meta, text_columns=("text", "mentions"), plot=False)
    assert res.stats["text_columns_held_by_files"] == {"text": 2, "mentions": 1}
    with pytest.raises(ValueError, match="mention"):
        curate([cp], tmp_path / "x.npy", meta, text_columns=("text", "mention"))


def test_cli_curate_metaclip_writes_subset_and_reports_bad_input_in_one_line(tmp_path: Path):
    pool = write_meta(tmp_path / "pool", random_rows(200, 11))
    (tmp_path / "m.txt").write_text("\n".join(ENTRIES[:10]) + "\n")
    runner = CliRunner()
    r = runner.invoke(main, ["curate", "metaclip", str(pool), "--metadata", str(tmp_path / "m.txt"),
                             "--t", "2,5", "-o", str(tmp_path / "c.npy"), "--no-progress", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "t=2" in r.output and "t=5" in r.output
    assert (tmp_path / "c_t2.npy").exists() and (tmp_path / "c_t5.counts.png").exists()
    for args, msg in ((["--t", "0"], "--t must be positive"),
                      (["--t", "x"], "--t takes numbers"),
                      (["--text-columns", "nope"], "nope"),
                      (["-o", str(tmp_path / "c.txt")], "must end in .npy")):
        base = ["curate", "metaclip", str(pool), "--metadata", str(tmp_path / "m.txt"),
                "-o", str(tmp_path / "e.npy"), "--no-progress", "-j", "1"]
        r = runner.invoke(main, base + args)
        assert r.exit_code != 0 and msg in r.output and "Traceback" not in r.output, r.output


def test_curated_subset_feeds_reshard_unchanged(tmp_path: Path, shard_factory):
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    captions = {}

    def caption(s: int, i: int) -> str:
        text = ["a neural network diagram", "cell counts, mouse brain", "nothing here",
                "X-ray spectrum. Fig 2"][(s * 7 + i) % 4]
        captions[(s, i)] = text
        return text

    shards, samples = shard_factory("pool/shards", 2, 30, caption_fn=caption)
    rows = [{"uid": x.uid, "text": x.caption} for per in samples for x in per]
    pool = write_meta(tmp_path / "pool", rows, with_mentions=False)
    meta = metadata_file(tmp_path)
    res = curate([pool], tmp_path / "sub.npy", meta, t="1000", plot=False)
    want = {r["uid"] for r in rows if naive_match(r["text"], ENTRIES)}
    assert want and set(u8u8_to_uids(np.load(tmp_path / "sub.npy"))) == want
    out = reshard([str(shards)], tmp_path / "sub.npy", tmp_path / "resharded", ReshardOptions())
    assert out is not None
    meta_json = json.loads((tmp_path / "resharded" / "meta.json").read_text())
    assert res.outputs[0].result.count == len(want) == sum(
        json.loads(p.read_text())["successes"] for p in (tmp_path / "resharded").glob("*_stats.json"))
    assert meta_json


def test_uids_roundtrip_helper_sanity():
    arr = uids_to_u8u8([uid(1), uid(2)])
    assert u8u8_to_uids(arr) == [uid(1), uid(2)]


# --- experiments ------------------------------------------------------------------------------
def test_shipped_curation_experiments_plan_curate_and_derived_pool_steps(tmp_path: Path):
    from datacomp_sci.pipeline.experiment import load_experiment, run_experiment

    for name, method in (("metaclip_sci", "metaclip"), ("entities_sci", "entities")):
        exp = load_experiment(name, workdir=str(tmp_path / name))
        c = exp.curations[method]
        assert c.method == method and c.pools == ("commonpool", "arxiv", "pmc")
        assert exp.scale == "small" and exp.baseline == "unbalanced"
        assert exp.runs[method] == tuple(f"{method}_{p}" for p in ("commonpool", "arxiv", "pmc"))
        logs: list[str] = []
        res = run_experiment(name, workdir=str(tmp_path / name), dry_run=True, log=logs.append)
        steps = {o.step for o in res.outcomes}
        assert {f"curate:{method}", f"filter:{method}_arxiv", f"reshard:{method}_pmc",
                f"mix:{method}_86_8_6", f"train:{method}"} <= steps
    assert Path(load_experiment("entities_sci").curations["entities"].source).is_file()


def test_experiment_curate_step_balances_pools_together_and_ands_each_filter(tmp_path: Path):
    import dataclasses

    from datacomp_sci.pipeline.experiment import (
        DEFAULT_ACTIONS,
        experiment_steps,
        load_experiment,
        run_steps,
    )

    a_rows, b_rows = random_rows(200, 21, "a"), random_rows(150, 22, "b")
    a = write_meta(tmp_path / "arxiv", a_rows)
    b = write_meta(tmp_path / "cp", b_rows)
    meta = metadata_file(tmp_path)
    work = tmp_path / "work"
    (tmp_path / "exp.yaml").write_text(f"""
name: t
workdir: {work}
scale: tiny
suite: tiny
eval_data: {work}/evalsets
pools:
  arxiv: {{path: {a}}}
  cp: {{path: {b}}}
filters:
  cp: {{sql: caption_length, params: {{min_chars: 10}}}}
curate:
  mc: {{method: metaclip, pools: [cp, arxiv], metadata: {meta}, t: 4, seed: 1,
        text_columns: [text, mentions]}}
runs:
  base: {{pools: [cp, arxiv]}}
  curated: {{pools: [mc_cp, mc_arxiv]}}
""")
    exp = load_experiment(str(tmp_path / "exp.yaml"))
    done: list[str] = []

    def fake(name):
        def f(*args):
            done.append(name)
            out = Path(args[-2] if name == "reshard" else args[-1])
            target = out / "meta.json" if name == "reshard" else out
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")
        return f

    act = dataclasses.replace(DEFAULT_ACTIONS, reshard=lambda p, s, o, w: fake("reshard")(p, s, o, w),
                              mix=lambda *a: None, train=lambda *a: None,
                              evalsets=lambda *a: None, evaluate=lambda *a: None,
                              report=lambda *a: None)
    steps = [s for s in experiment_steps(exp, act, suite_markers=())
             if s.name.split(":")[0] in ("filter", "curate", "reshard")]
    run_steps(steps, log=lambda s: None)
    curated = set(u8u8_to_uids(np.load(work / "subsets" / "curate_mc.npy")))
    direct = curate([b, a], tmp_path / "direct.npy", meta, t="4", seed=1,
                    text_columns=("text", "mentions"), plot=False)
    assert curated == set(u8u8_to_uids(np.load(tmp_path / "direct.npy")))
    assert direct.outputs[0].result.description["stats"]["kept_by_pool"] == {
        "cp": sum(1 for r in b_rows if r["uid"] in curated),
        "arxiv": sum(1 for r in a_rows if r["uid"] in curated)}
    cp_filtered = {r["uid"] for r in b_rows if r["text"] is not None and len(r["text"]) >= 10}
    assert set(u8u8_to_uids(np.load(work / "subsets" / "mc_cp.npy"))) == cp_filtered & curated
    assert set(u8u8_to_uids(np.load(work / "subsets" / "mc_arxiv.npy"))) == \
        {r["uid"] for r in a_rows} & curated
    assert (work / "shards" / "mc_arxiv" / "meta.json").exists()


def test_missing_pyahocorasick_names_the_extra_to_install(tmp_path: Path, monkeypatch):
    import sys

    from datacomp_sci.curation import curate as curate_mod

    pool = write_meta(tmp_path / "pool", random_rows(20, 30))
    meta = metadata_file(tmp_path)
    monkeypatch.setitem(sys.modules, "ahocorasick", None)
    monkeypatch.setattr(curate_mod, "_MATCHERS", {})
    r = CliRunner().invoke(main, ["curate", "metaclip", str(pool), "--metadata", str(meta),
                                  "-o", str(tmp_path / "x.npy"), "--no-progress", "-j", "1"])
    assert r.exit_code == 1 and "pip install 'datacomp-sci[curate]'" in r.output, r.output
