"""dedup: multi-index near-duplicate search, groups and keep rule, phash from shard tars."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import loaded, make_shards, write_pool
from PIL import Image

from datacomp_sci.cli import main
from datacomp_sci.core.schema import COMMONPOOL_SCHEMA
from datacomp_sci.core.uids import uids_to_u8u8
from datacomp_sci.pool.pools import sidecar_path
from datacomp_sci.pool.query import run_query
from datacomp_sci.subsets.dedup import (
    DedupInput,
    find_duplicates,
    hash_blocks,
    near_pairs,
    phash_u64,
    shard_phashes,
)
from datacomp_sci.subsets.filters import FilterSpec, run_filter


def test_hash_blocks_cover_64_bits():
    assert hash_blocks(4) == [(0, 13), (13, 13), (26, 13), (39, 13), (52, 12)]
    assert hash_blocks(0) == [(0, 64)]
    with pytest.raises(ValueError, match="radius"):
        hash_blocks(64)


def test_near_pairs_equal_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    flips = [np.uint64(1) << rng.integers(0, 64, dtype=np.uint64) for _ in range(300)]
    near = base ^ np.array(flips, dtype=np.uint64) ^ (np.array(flips[::-1], dtype=np.uint64))
    values = np.unique(np.concatenate([base, near, base[:50] ^ np.uint64(0b11111)]))
    a, b = near_pairs(values, 4)
    got = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    dist = np.bitwise_count(values[:, None] ^ values[None, :])
    i, j = np.nonzero(np.triu(dist <= 4, k=1))
    want = set(zip(i.tolist(), j.tolist(), strict=True))
    assert len(want) > 250 and got == want


def _input(rows: list[tuple]) -> DedupInput:
    """rows: (uid, sha or None, phash or None, area)."""
    u = uids_to_u8u8([r[0] for r in rows])
    return DedupInput(
        uid_hi=u["f0"].copy(), uid_lo=u["f1"].copy(),
        area=np.array([r[3] for r in rows], np.int64),
        sha_key=np.array([hash(r[1]) % 2**63 if r[1] else 0 for r in rows], np.uint64),
        sha_valid=np.array([r[1] is not None for r in rows]),
        phash=np.array([r[2] or 0 for r in rows], np.uint64),
        phash_valid=np.array([r[2] is not None for r in rows]))


def test_groups_exact_near_chain_and_keep_rule():
    uid = [f"{i:x}" * 32 for i in range(1, 8)]  # "111..", "222..", ...
    rows = [
        (uid[1], "A", 0x8000000000000000, 100),  # 0: group 1
        (uid[2], "A", 0x0F0F0F0F0F0F0F0F, 200),  # 1: exact dup of 0
        (uid[0], "B", 0x8000000000000007, 200),  # 2: phash 3 bits from 0; ties 1 on area
        (uid[3], "C", 0x800000000000001F, 50),   # 3: 2 bits from 2, 5 from 0: chained
        (uid[4], "D", 0xFFFF0000FFFF0000, 900),  # 4: alone
        (uid[5], None, None, 10),                # 5: alone, nothing to compare
        (uid[6], "E", 0xFFFF0000FFFF0000, -1),   # 6: identical phash to 4
    ]
    res = find_duplicates(_input(rows), radius=4)
    assert res.keep.tolist() == [False, False, True, False, True, True, False]
    g = res.group
    assert g[0] == g[1] == g[2] == g[3] and g[4] == g[6] and len({g[0], g[4], g[5]}) == 3
    assert res.stats == {"rows": 7, "rows_with_sha256": 6, "rows_with_phash": 6,
                         "duplicate_groups": 2, "rows_in_duplicate_groups": 6, "largest_group": 4,
                         "removed_exact": 1, "removed_near": 3, "kept": 3}
    exact_only = find_duplicates(_input(rows), radius=4, near=False)
    assert exact_only.keep.tolist() == [False, True, True, True, True, True, True]
    radius2 = find_duplicates(_input(rows), radius=2)  # 0-2 is 3 bits: only 2-3 and 4-6 join
    assert radius2.keep.tolist() == [False, True, True, False, True, True, False]


def _texture(quality: int, seed: int = 0) -> bytes:
    """A smooth random colour field (96 px) as JPEG; another quality is a near duplicate."""
    small = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((96, 96), Image.BILINEAR).save(buf, format="JPEG",
                                                                 quality=quality)
    return buf.getvalue()


IMAGES = [_texture(95), _texture(40), _texture(90, seed=1), _texture(90, seed=1),
          b"not a jpeg"]


def _dup_pool(tmp_path):
    samples = make_shards(tmp_path / "dups" / "shards", 1, 5,
                          image_fn=lambda s, i: IMAGES[i])[0]
    rows = [{"uid": s.uid, "text": s.caption, "sha256": hashlib.sha256(IMAGES[i]).hexdigest(),
             "original_width": [640, 320, 300, 300, 100][i], "original_height": 240}
            for i, s in enumerate(samples)]
    return write_pool(tmp_path / "dups", rows, schema=COMMONPOOL_SCHEMA), samples


def test_phash_from_shard_tar(tmp_path):
    pool, samples = _dup_pool(tmp_path)
    res = shard_phashes(pool / "shards" / "00000000.tar")
    assert res.uids == [s.uid for s in samples[:4]] and res.errors == 1 and res.missing == 0
    assert res.phashes == [phash_u64(IMAGES[i]) for i in range(4)]
    assert res.phashes[2] == res.phashes[3]
    assert bin(res.phashes[0] ^ res.phashes[1]).count("1") <= 4
    assert bin(res.phashes[0] ^ res.phashes[2]).count("1") > 16


def test_dedup_filter_and_command(tmp_path):
    pool, samples = _dup_pool(tmp_path)
    out = tmp_path / "dedup.npy"
    res = run_filter([pool], out, FilterSpec(name="dedup"))
    # 0/1 near dups: 0 is larger; 2/3 exact dups, same area: smaller uid; 4 has no phash
    keep23 = min(samples[2].uid, samples[3].uid)
    assert loaded(out) == sorted([samples[0].uid, keep23, samples[4].uid])
    assert res.description["stats"]["removed_exact"] == 1
    assert res.description["stats"]["removed_near"] == 1
    side = pq.read_table(sidecar_path(pool / "metadata" / "00000000.parquet", "phash"))
    assert side.column("uid").to_pylist() == [s.uid for s in samples]
    assert side.column("phash").to_pylist() == [phash_u64(IMAGES[i]) for i in range(4)] + [None]
    q = run_query([pool], "SELECT count(phash) FROM dups")
    assert q.rows == [(4,)]
    groups = tmp_path / "groups.parquet"
    r = CliRunner().invoke(main, ["dedup", str(pool), "-o", str(groups), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "removed_near" in r.output and "cached: dups" in r.output
    table = pq.read_table(groups).to_pylist()
    assert {(row["group"], row["uid"], row["kept"]) for row in table} == {
        (samples[0].uid, samples[0].uid, True), (samples[0].uid, samples[1].uid, False),
        (keep23, samples[2].uid, samples[2].uid == keep23),
        (keep23, samples[3].uid, samples[3].uid == keep23)}


def test_phash_of_a_damaged_shard_keeps_the_samples_before_the_damage(tmp_path):
    import tarfile

    pool, samples = _dup_pool(tmp_path)
    tar = pool / "shards" / "00000000.tar"
    with tarfile.open(tar) as tf:
        cut = tf.getmember(f"{samples[3].key}.jpg").offset + 700  # inside sample 3
    tar.write_bytes(tar.read_bytes()[:cut])
    res = shard_phashes(tar)
    # samples 0-1 hashed; sample 2 held back (it may be incomplete), the damage counted
    assert res.uids == [s.uid for s in samples[:2]] and res.errors == 1
