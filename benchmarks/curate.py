"""Benchmark: MetaCLIP matching and balancing at CommonPool-small scale.

Generates ``--rows`` CommonPool-shaped captions (alt-text-like: 1-14 words from a Zipfian
vocabulary of 300k generated words, capitalised sometimes, with punctuation) and
``--entries`` generated MetaCLIP-style entries (the most frequent words, frequent
bigrams and 2-4 word "titles", plus "0".."99"), then measures:

* MetaCLIP's naive loop (``[i for i, e in enumerate(spaced_entries) if e in text]``) on
  ``--naive-sample`` captions, extrapolated;
* pyahocorasick's bare iteration (``for _ in A.iter(spaced): pass`` over pre-spaced
  texts, one call per caption);
* :class:`datacomp_sci.curation.matching.Matcher` (spacing, matching, per-caption
  distinct entries as arrays), and the whole ``curate metaclip`` on one worker
  (parquet in, match sidecar, counts, subset, counts table; no plot);
* balancing with counts given (``--counts``) on ``--balance-rows`` rows of synthetic
  match sidecars (the re-balance path: no matching);
* peak RSS.

Times are CPU seconds of this process (``time.process_time``), so the per-core rates hold
on a shared machine; the whole command runs on one worker, in this process.

Targets (issue 13): >= 50x the naive loop, >= 0.7x the bare automaton, peak memory
< 4 GiB, balancing 12.8M rows with counts given in < 10 s.

Run: ``python benchmarks/curate.py`` (defaults: 12.8M rows x 500k entries; the matching
part on ``--match-rows`` and extrapolated, per core). Smoke: ``--match-rows 20000
--entries 20000 --balance-rows 200000``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datacomp_sci.curation.matching import Matcher, spacing

_LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_PUNCT = [" ", " ", " ", " ", " ", " ", ", ", ". ", ": ", " - ", " | ", "! "]


def peak_rss_gib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 2**20


def vocabulary(rng: np.random.Generator, n: int) -> list[str]:
    lengths = rng.integers(3, 11, n)
    chars = _LETTERS[rng.integers(0, 26, int(lengths.sum()))].tobytes().decode()
    out, pos = [], 0
    for n_chars in lengths.tolist():
        out.append(chars[pos:pos + n_chars])
        pos += n_chars
    return list(dict.fromkeys(out))


def zipf_ids(rng: np.random.Generator, vocab: int, n: int) -> np.ndarray:
    p = 1.0 / np.arange(1, vocab + 1) ** 1.05
    return rng.choice(vocab, size=n, p=p / p.sum())


def captions(rng: np.random.Generator, vocab: list[str], n: int) -> list[str]:
    counts = rng.integers(1, 15, n)
    ids = zipf_ids(rng, len(vocab), int(counts.sum()))
    seps = rng.integers(0, len(_PUNCT), int(counts.sum()))
    caps = rng.random(int(counts.sum())) < 0.15
    out, pos = [], 0
    for c in counts.tolist():
        words = []
        for k in range(pos, pos + c):
            w = vocab[ids[k]]
            words.append((w.capitalize() if caps[k] else w) + _PUNCT[seps[k]])
        out.append("".join(words).strip())
        pos += c
    return out


def entries(rng: np.random.Generator, vocab: list[str], n: int) -> list[str]:
    n_uni = int(n * 0.6)
    ents = [str(i) for i in range(100)] + vocab[:n_uni]
    # bigrams and titles from frequent words (as Wikipedia bigrams/titles would be)
    while len(ents) < n:
        k = int(rng.integers(2, 5))
        ids = zipf_ids(rng, min(len(vocab), 50000), k * 20000).reshape(-1, k)
        ents.extend(" ".join(vocab[i] for i in row) for row in ids)
    return list(dict.fromkeys(ents))[:n]


def timed(fn, *args):
    t0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t0


def bench_matching(args, tmp: Path) -> list[str]:
    rng = np.random.default_rng(0)
    vocab = vocabulary(rng, 300_000)
    ents, t_ent = timed(entries, rng, vocab, args.entries)
    texts, t_txt = timed(captions, rng, vocab, args.match_rows)
    lines = [f"data        {len(texts):,} captions (mean {np.mean([len(t) for t in texts]):.0f} "
             f"chars), {len(ents):,} entries; generated in {t_txt + t_ent:.1f} s"]

    spaced_entries = [f" {e} " for e in ents]
    sample = texts[:args.naive_sample]
    t0 = time.process_time()
    naive = [[i for i, e in enumerate(spaced_entries) if e in s] for s in map(spacing, sample)]
    naive_rate = len(sample) / (time.process_time() - t0)

    matcher, t_build = timed(Matcher, ents)
    # bare automaton: one iter per pre-spaced caption, matches consumed and dropped
    spaced = [spacing(t) for t in texts]
    A = matcher.automaton
    t0 = time.process_time()
    n_hits = 0
    for s in spaced:
        for _ in A.iter(s):
            n_hits += 1
    bare_rate = len(spaced) / (time.process_time() - t0)
    del spaced

    t0 = time.process_time()
    matched = 0
    for i in range(0, len(texts), 1 << 16):
        m = matcher.match(texts[i:i + (1 << 16)])
        matched += len(m.text)
    ours_rate = len(texts) / (time.process_time() - t0)
    check = matcher.match(sample)
    got = [[] for _ in sample]
    for t, c in zip(check.text.tolist(), check.concept.tolist(), strict=True):
        got[t].append(c)
    assert got == naive, "Matcher disagrees with the naive loop"

    # whole command on one worker: parquet -> sidecar -> counts -> subset
    from datacomp_sci.core.uids import pair_uid
    from datacomp_sci.curation.curate import (
        ConceptSource,
        CurateOptions,
        CurateSpec,
        run_curation,
    )

    pool = tmp / "pool" / "metadata"
    pool.mkdir(parents=True)
    uids = [pair_uid("bench", "x", str(i)) for i in range(len(texts))]
    pq.write_table(pa.table({"uid": uids, "text": texts}), pool / "00000000.parquet")
    (tmp / "metadata.json").write_text(json.dumps(ents))
    spec = CurateSpec(src=ConceptSource("metaclip", str(tmp / "metadata.json")),
                      thresholds=(args.t,))
    t0 = time.process_time()
    res = run_curation([tmp / "pool"], tmp / "out.npy", spec, CurateOptions(workers=1, plot=False))
    cmd_s = time.process_time() - t0
    cmd_rate = len(texts) / cmd_s
    st = res.outputs[0].result.description["stats"]
    full = args.rows
    lines += [
        f"matches     {matched:,} (caption, entry) pairs, {matched / len(texts):.2f} per caption;"
        f" {st['rows_matched']:,} captions match; kept at t={args.t:g}: {st['kept']:,}",
        f"automaton   built in {t_build:.1f} s for {matcher.n_keys:,} keys",
        "captions/s/core:",
        f"  naive loop (MetaCLIP)       {naive_rate:12,.1f}   ({len(sample)} captions; "
        f"12.8M would take {full / naive_rate / 86400:.1f} core-days)",
        f"  bare pyahocorasick iter     {bare_rate:12,.0f}",
        f"  Matcher.match               {ours_rate:12,.0f}   = {ours_rate / naive_rate:,.0f}x naive, "
        f"{ours_rate / bare_rate:.2f}x bare",
        f"  curate metaclip, 1 worker   {cmd_rate:12,.0f}   ({cmd_s:.1f} s incl. automaton build "
        f"and parquet)",
        f"  ... without the build       {len(texts) / (cmd_s - t_build):12,.0f}   (12.8M: "
        f"{(full * (cmd_s - t_build) / len(texts) + t_build) / 60:.1f} core-minutes with one build)",
        f"peak RSS    {peak_rss_gib():.2f} GiB (this process so far)",
    ]
    return lines


def bench_balance(args, tmp: Path) -> list[str]:
    """Re-balance with counts given over synthetic match sidecars of --balance-rows rows."""
    from datacomp_sci.curation.balance import write_counts
    from datacomp_sci.curation.curate import (
        ConceptSource,
        CurateOptions,
        CurateSpec,
        concepts_key,
        load_concepts,
        run_curation,
        sidecar_for,
    )
    from datacomp_sci.pool.pools import discover_pool

    rng = np.random.default_rng(1)
    n, n_files, n_ent = args.balance_rows, args.files, args.entries
    ents = [f"e{i}" for i in range(n_ent)]
    (tmp / "bal_meta.json").write_text(json.dumps(ents))
    root = tmp / "balpool"
    (root / "metadata").mkdir(parents=True)
    per = -(-n // n_files)
    t0 = time.process_time()
    for f in range(n_files):
        m = min(per, n - f * per)
        hi = rng.integers(0, 2**63, m, dtype=np.uint64)
        lo = rng.integers(0, 2**63, m, dtype=np.uint64)
        hexes = pc.binary_join_element_wise(
            pa.array([f"{x:016x}" for x in hi.tolist()]), pa.array([f"{x:016x}" for x in lo.tolist()]), "")
        pq.write_table(pa.table({"uid": hexes, "text": pa.nulls(m, pa.string())}),
                       root / "metadata" / f"{f:08d}.parquet")
    pool = discover_pool(root)
    src = ConceptSource("metaclip", str(tmp / "bal_meta.json"))
    key = concepts_key(load_concepts(src), False, ("text",))
    counts = np.zeros(n_ent, dtype=np.int64)
    for meta in pool.metadata_files:
        m = pq.ParquetFile(meta).metadata.num_rows
        k = rng.integers(0, 9, m)  # 0-8 entries per caption (0: unmatched)
        offsets = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(k, out=offsets[1:])
        concepts = zipf_ids(rng, n_ent, int(offsets[-1])).astype(np.int32)
        table = pq.read_table(meta, columns=["uid"])
        from datacomp_sci.core.uids import uids_to_u8u8

        arr = uids_to_u8u8(table.column("uid"))
        counts += np.bincount(concepts, minlength=n_ent)
        side = sidecar_for(pool, meta, key)
        st = meta.stat()
        with open(side, "wb") as fh:
            np.savez(fh, source=np.array([st.st_size, st.st_mtime_ns], dtype=np.int64),
                     uid_hi=arr["f0"], uid_lo=arr["f1"], offsets=offsets, concepts=concepts,
                     rows_without_uid=np.int64(0), columns_missing=np.array([], dtype=str))
    write_counts(tmp / "given.parquet", ents, counts, np.ones(n_ent), np.zeros(n_ent))
    prep = time.process_time() - t0
    spec = CurateSpec(src=src, thresholds=(args.t,), counts_file=str(tmp / "given.parquet"))
    t0 = time.process_time()
    res = run_curation([root], tmp / "bal.npy", spec, CurateOptions(workers=1, plot=False))
    took = time.process_time() - t0
    st = res.outputs[0].result.description["stats"]
    assert st["match_sidecars_computed"] == 0
    return [f"balance     {n:,} rows ({int(counts.sum()):,} matches, {n_files} sidecars; prepared "
            f"in {prep:.0f} s): curate metaclip --counts, t={args.t:g}: {took:.1f} s, kept "
            f"{st['kept']:,}; peak RSS {peak_rss_gib():.2f} GiB"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=12_800_000, help="pool size extrapolated to")
    ap.add_argument("--match-rows", type=int, default=1_000_000, help="captions matched for real")
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--naive-sample", type=int, default=100)
    ap.add_argument("--balance-rows", type=int, default=12_800_000)
    ap.add_argument("--files", type=int, default=16, help="metadata files of the balance pool")
    ap.add_argument("--t", type=float, default=20000)
    ap.add_argument("--only", choices=["match", "balance"], default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        print(f"machine     {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
        if args.only in (None, "match"):
            for line in bench_matching(args, tmp):
                print(line, flush=True)
        if args.only in (None, "balance"):
            for line in bench_balance(args, tmp):
                print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
