"""decontaminate: pool images that copy evaluation images are found and dropped."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import loaded, make_shards, write_pool
from PIL import Image

from datacomp_sci.cli import main
from datacomp_sci.core.schema import COMMONPOOL_SCHEMA
from datacomp_sci.evaluation.tinysuite import make_tiny_suite
from datacomp_sci.subsets import decontam
from datacomp_sci.subsets.filters import FilterSpec, run_filter


@pytest.fixture(autouse=True)
def xdg_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "datacomp-sci" / "evalset-phash"


def _brute(pool: np.ndarray, ref: np.ndarray, radius: int) -> set[tuple[int, int, int]]:
    dist = np.bitwise_count(pool[:, None] ^ ref[None, :])
    i, j = np.nonzero(dist <= radius)
    return set(zip(i.tolist(), j.tolist(), dist[i, j].tolist(), strict=True))


@pytest.mark.parametrize("radius", [0, 1, 4, 7, 20])
@pytest.mark.parametrize("batch", [1, 7, 1 << 22])
def test_cross_pairs_equal_brute_force(radius, batch):
    rng = np.random.default_rng(radius)
    ref = rng.integers(0, 2**63, 200, dtype=np.uint64) * np.uint64(2)
    ref[:40] = 0  # a skewed set: many identical (blank-image) hashes
    flips = rng.integers(0, 64, (300, 3)).astype(np.uint64)
    how_many = rng.integers(0, 4, 300)  # 0 to 3 bits flipped per row
    noise = np.zeros(300, np.uint64)
    for k in range(3):
        noise ^= np.where(how_many > k, np.uint64(1) << flips[:, k], np.uint64(0))
    pool = np.concatenate([ref[rng.integers(0, 200, 300)] ^ noise,
                           rng.integers(0, 2**63, 300, dtype=np.uint64)])
    i, j, d = decontam.cross_pairs(pool, ref, radius, batch=batch)
    got = set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
    assert got == _brute(pool, ref, radius) and len(got) > 40
    pairs = list(zip(i.tolist(), j.tolist(), strict=True))
    assert pairs == sorted(pairs)
    ni, nj, nd = decontam.nearest_matches(i, j, d)
    assert ni.tolist() == sorted(set(i.tolist()))
    for a, b, dist in zip(ni.tolist(), nj.tolist(), nd.tolist(), strict=True):
        best = min((x[2], x[1]) for x in got if x[0] == a)
        assert (dist, b) == best


def test_cross_pairs_with_single_bit_blocks():
    rng = np.random.default_rng(9)
    pool = rng.integers(0, 2**63, 40, dtype=np.uint64)
    ref = rng.integers(0, 2**63, 30, dtype=np.uint64)
    i, j, d = decontam.cross_pairs(pool, ref, 62)
    assert set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == _brute(pool, ref, 62)


def test_cross_pairs_edge_cases():
    empty = np.empty(0, np.uint64)
    assert all(len(x) == 0 for x in decontam.cross_pairs(empty, np.ones(3, np.uint64), 4))
    assert all(len(x) == 0 for x in decontam.cross_pairs(np.ones(3, np.uint64), empty, 4))
    with pytest.raises(ValueError, match="radius"):
        decontam.cross_pairs(np.ones(1, np.uint64), np.ones(1, np.uint64), 64)


def _member(tar: str, name: str) -> bytes:
    with tarfile.open(tar) as tf:
        return tf.extractfile(name).read()


def _jpeg_copy(png: bytes, size: int = 96, quality: int = 80) -> bytes:
    """An evaluation image as a web copy would be: upscaled and recompressed as JPEG."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").resize((size, size), Image.BICUBIC).save(
        buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _texture(seed: int) -> bytes:
    rng = np.random.default_rng(1000 + seed)
    arr = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).resize((96, 96), Image.BILINEAR).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def world(tmp_path):
    return make_world(tmp_path)


def make_world(tmp_path):
    """A tiny suite, and a pool of 8 images, two of them copies of evaluation images."""
    evalsets = make_tiny_suite(tmp_path / "evalsets")
    imagenet = _member(str(evalsets / "wds_imagenet1k_test" / "test" / "0.tar"), "s0000003.png")
    winogavil_tar = evalsets / "wds_misc-winogavil_test" / "test" / "0.tar"
    with tarfile.open(winogavil_tar) as tf:
        cand = next(m.name for m in tf.getmembers() if ".cand" in m.name)
    images = {(0, 1): _jpeg_copy(imagenet), (1, 2): _member(str(winogavil_tar), cand)}
    image_fn = lambda s, i: images.get((s, i), _texture(10 * s + i))  # noqa: E731
    samples = [s for shard in make_shards(tmp_path / "pool" / "shards", 2, 4, image_fn=image_fn)
               for s in shard]
    rows = [{"uid": s.uid, "text": s.caption, "original_width": 96, "original_height": 96,
             "sha256": hashlib.sha256(s.members["jpg"]).hexdigest()} for s in samples]
    rows.append({"uid": "f" * 32, "text": "no image in the shards", "original_width": 96,
                 "original_height": 96})
    pool = write_pool(tmp_path / "pool", rows, schema=COMMONPOOL_SCHEMA)
    by_pos = {(s.shard, s.index): s for s in samples}
    return {"evalsets": evalsets, "pool": pool, "samples": samples, "copied": by_pos,
            "cand": cand}


def test_decontaminate_drops_copies_of_evaluation_images(world, tmp_path, xdg_cache):
    out = tmp_path / "clean.npy"
    spec = FilterSpec(name="decontaminate", evalsets=str(world["evalsets"]), suite="tiny")
    res = run_filter([world["pool"]], out, spec)
    copied = {world["copied"][(0, 1)].uid, world["copied"][(1, 2)].uid}
    assert loaded(out) == sorted({s.uid for s in world["samples"]} - copied | {"f" * 32})
    st = res.description["stats"]
    assert (st["rows"], st["checked"], st["unchecked_no_phash"], st["removed"]) == (9, 8, 1, 2)
    assert st["removed_by_task"] == {"imagenet1k": 1, "misc/winogavil": 1}
    assert st["eval_tasks_missing"] == [] and st["eval_shards_hashed"] > 0
    assert st["eval_images_by_task"]["imagenet1k"] == 24
    matches = pq.read_table(tmp_path / "clean.matches.parquet").to_pylist()
    assert [(m["uid"], m["task"]) for m in matches] == sorted(
        [(world["copied"][(0, 1)].uid, "imagenet1k"), (world["copied"][(1, 2)].uid, "misc/winogavil")])
    wino = next(m for m in matches if m["task"] == "misc/winogavil")
    assert (wino["eval_member"], wino["distance"]) == (world["cand"], 0)
    assert next(m for m in matches if m["task"] == "imagenet1k")["eval_member"] == "s0000003.png"
    assert res.description["matches"] == "clean.matches.parquet"
    # a second run hashes no evaluation shard again, and gives the same bytes
    again = run_filter([world["pool"]], tmp_path / "again.npy", spec)
    assert again.description["stats"]["eval_shards_hashed"] == 0
    assert (tmp_path / "again.npy").read_bytes() == out.read_bytes()
    assert len(list(xdg_cache.iterdir())) == st["eval_shards_hashed"]


def test_decontaminate_cli_and_clear_errors(world, tmp_path):
    base = ["filter", str(world["pool"]), "--name", "decontaminate", "--no-progress"]
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a.npy")])
    assert r.exit_code != 0 and "needs --evalsets DIR" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, [*base, "--evalsets", str(empty), "-o", str(tmp_path / "b.npy")])
    assert r.exit_code != 0 and "download-evalsets" in r.output
    r = CliRunner().invoke(main, [*base, "--evalsets", str(world["evalsets"]), "--suite", "tiny",
                                  "--radius", "0", "-o", str(tmp_path / "c.npy")])
    assert r.exit_code == 0, r.output
    assert "removed                  2" in r.output  # upscaled + JPEG: still the same phash
    assert "c.matches.parquet" in r.output
    # tasks of a larger suite that are not in the folder are listed, the rest still checked
    r = CliRunner().invoke(main, [*base, "--evalsets", str(world["evalsets"]), "--suite",
                                  "datacomp38", "-o", str(tmp_path / "d.npy")])
    assert r.exit_code == 0, r.output
    assert "eval_tasks_missing" in r.output
