"""download-pool: img2dataset with DataComp's parameters against a loopback HTTP server."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from datacomp_sci.core.uids import load_subset, save_subset, u8u8_to_uids, uids_to_u8u8
from datacomp_sci.pool.download import DownloadOptions, download_pool, img2dataset_kwargs
from datacomp_sci.resharding.reshard import ReshardOptions, reshard

GOOD = 6  # images served; rows 6, 7 are 404s, row 8 is not an image


def _png(w: int, h: int, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def url_pool(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    for i in range(GOOD):
        (www / f"{i}.png").write_bytes(_png(40 + 200 * (i == 0), 30, (i * 40, 10, 200)))
    (www / "8.png").write_bytes(b"this is not an image")
    base = http_server(www)
    uids = [f"{i:032x}" for i in range(9)]
    table = pa.table({
        "uid": uids,
        "url": [f"{base}/{i}.png" for i in range(9)],
        "text": [f"caption {i}" for i in range(9)],
        "face_bboxes": pa.array([[[0.1, 0.1, 0.5, 0.5]] if i == 1 else [] for i in range(9)],
                                type=pa.list_(pa.list_(pa.float64()))),
    })
    meta = tmp_path / "meta"
    meta.mkdir()
    pq.write_table(table, meta / "0123abcd.parquet")
    return meta, uids


OPTS = DownloadOptions(processes=1, threads=4, shard_size=4, retries=0, timeout=5)


def test_download_pool_writes_datacomp_shards_and_exact_coverage(url_pool, tmp_path):
    meta, uids = url_pool
    out = tmp_path / "pool"
    res = download_pool(out, metadata_dir=meta, opts=OPTS)
    cov = res.coverage
    assert (cov.rows, cov.attempted, cov.downloaded) == (9, 9, GOOD)
    assert (cov.failed_to_download, cov.failed_to_resize, cov.not_attempted) == (2, 1, 0)
    assert cov.finished_shards == 3 and cov.failed_uids == 3
    assert sum(cov.errors.values()) == 3
    assert cov.errors.get("HTTP Error 404: File not found") == 2
    assert sorted(u8u8_to_uids(load_subset(out / "failed_uids.npy"))) == uids[6:]
    data = json.loads((out / "coverage.json").read_text())
    assert (data["downloaded"], data["fraction"]) == (GOOD, round(GOOD / 9, 6))
    assert (out / "metadata" / "0123abcd.parquet").exists()
    assert not (out / "shards" / "_tmp").exists()

    # img2dataset's layout and key: 8 shard digits + 1 row digit at 4 samples per shard
    with tarfile.open(out / "shards" / "00000000.tar") as tf:
        names = tf.getnames()
        first = json.loads(tf.extractfile("000000000.json").read())
        img = Image.open(io.BytesIO(tf.extractfile("000000000.jpg").read()))
    # per sample: jpg, json, txt together (img2dataset writes samples in completion order)
    assert sorted(names) == [f"00000000{i}.{e}" for i in range(4) for e in ("jpg", "json", "txt")]
    assert all(names[k : k + 3] == [names[k][:-4] + e for e in (".jpg", ".json", ".txt")]
               for k in range(0, len(names), 3))
    assert (first["uid"], first["caption"], first["status"]) == (uids[0], "caption 0", "success")
    assert list(first)[:3] == ["uid", "face_bboxes", "caption"]
    assert img.size == (240, 30) and img.format == "JPEG"  # smaller than 512: not resized

    # the shards reshard by uid
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8([uids[1], uids[5], uids[7]]))
    r = reshard([str(out)], subset, tmp_path / "rs", ReshardOptions(shard_size=10))
    assert (r.meta["output_count"], r.report["missing_uids"]) == (2, 1)

    # resume: a shard lost (killed run) is downloaded again, the others are kept
    shard1 = (out / "shards" / "00000001.tar").read_bytes()
    kept = (out / "shards" / "00000000.tar").stat().st_mtime_ns
    for suffix in ("_stats.json", ".tar", ".parquet"):
        (out / "shards" / f"00000001{suffix}").unlink()
    partial = download_pool(out, metadata_dir=meta, opts=OPTS, skip_shards=True)
    assert (partial.coverage.attempted, partial.coverage.not_attempted) == (5, 4)
    assert partial.coverage.failed_uids == 1 + 4  # row 8 failed; rows 4..7 (shard 1) not attempted
    again = download_pool(out, metadata_dir=meta, opts=OPTS)
    assert (again.coverage.downloaded, again.coverage.not_attempted) == (GOOD, 0)
    assert len((out / "shards" / "00000001.tar").read_bytes()) == len(shard1)
    assert (out / "shards" / "00000000.tar").stat().st_mtime_ns == kept


def test_datacomp_parameters_and_clear_errors(tmp_path):
    kw = img2dataset_kwargs(tmp_path / "m", tmp_path / "s", {"uid", "url", "text", "face_bboxes"},
                            DownloadOptions())
    assert {k: kw[k] for k in ("number_sample_per_shard", "oom_shard_count", "image_size", "resize_mode",
                               "resize_only_if_bigger", "encode_format", "output_format", "retries",
                               "save_additional_columns", "bbox_col", "caption_col", "url_col")} == {
        "number_sample_per_shard": 10000, "oom_shard_count": 8, "image_size": 512,
        "resize_mode": "keep_ratio_largest", "resize_only_if_bigger": True, "encode_format": "jpg",
        "output_format": "webdataset", "retries": 2, "save_additional_columns": ["uid"],
        "bbox_col": "face_bboxes", "caption_col": "text", "url_col": "url"}
    assert img2dataset_kwargs(tmp_path, tmp_path, {"url", "text"}, DownloadOptions())["bbox_col"] is None
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"link": ["x"]}), bad / "a.parquet")
    with pytest.raises(ValueError, match="no column text, url"):
        download_pool(tmp_path / "o", metadata_dir=bad)
    with pytest.raises(ValueError, match="exactly one of"):
        download_pool(tmp_path / "o")
    assert np.array_equal(uids_to_u8u8([]), np.empty(0, dtype="u8,u8"))


@pytest.mark.parametrize("scale,repo,pattern,sub", [
    ("small", "mlfoundations/datacomp_pools", "small/*.parquet", "small"),
    ("xlarge", "mlfoundations/datacomp_pools", "xlarge/*/*.parquet", "xlarge/part0"),
    ("datacomp_1b", "mlfoundations/datacomp_1b", "*.parquet", ""),
])
def test_scale_fetches_datacomps_metadata_then_downloads(url_pool, tmp_path, monkeypatch, scale,
                                                         repo, pattern, sub):
    """--scale: the Hub is asked for DataComp's files (repository, pattern), and the
    parquets of the snapshot (laid out as the Hub's cache does) are downloaded."""
    import huggingface_hub

    meta, uids = url_pool
    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        snap = Path(kwargs["cache_dir"]) / f"datasets--{kwargs['repo_id'].replace('/', '--')}" \
            / "snapshots" / ("0" * 40)
        (snap / sub).mkdir(parents=True, exist_ok=True)
        (snap / sub / "0123abcd.parquet").write_bytes((meta / "0123abcd.parquet").read_bytes())
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    out = tmp_path / "pool"
    res = download_pool(out, scale=scale, opts=OPTS)
    assert calls == [{"repo_id": repo, "repo_type": "dataset", "allow_patterns": pattern,
                      "cache_dir": str(out / "hf")}]
    assert (res.coverage.rows, res.coverage.downloaded) == (9, GOOD)
    assert sorted(p.name for p in (out / "metadata").iterdir()) == ["0123abcd.parquet"]
    # a rerun finds the metadata in place and asks the Hub nothing
    again = download_pool(out, scale=scale, opts=OPTS)
    assert len(calls) == 1 and again.coverage.downloaded == GOOD


@pytest.mark.slow
def test_download_pool_to_s3_gives_the_local_run_s_samples_and_coverage(url_pool, tmp_path,
                                                                        fake_s3):
    meta, uids = url_pool
    local = download_pool(tmp_path / "local", metadata_dir=meta, opts=OPTS)
    url = fake_s3.bucket("downloads") + "/pool"
    res = download_pool(url, metadata_dir=meta, opts=OPTS)
    assert res.output == url and res.img2dataset_kwargs["output_folder"] == f"{url}/shards"
    assert res.coverage == local.coverage
    files = fake_s3.files(url)
    assert not any(k.startswith("shards/_tmp") for k in files)
    assert files["metadata/0123abcd.parquet"] == (meta / "0123abcd.parquet").read_bytes()
    assert files["failed_uids.npy"] == (tmp_path / "local" / "failed_uids.npy").read_bytes()
    names = sorted(p.relative_to(tmp_path / "local").as_posix()
                   for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert sorted(files) == names

    def samples(tar_bytes: bytes) -> dict[str, bytes]:  # img2dataset writes in completion order
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
            return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}

    for n in range(3):
        name = f"shards/{n:08d}.tar"
        assert samples(files[name]) == samples((tmp_path / "local" / name).read_bytes())
    again = download_pool(url, metadata_dir=meta, opts=OPTS, skip_shards=True)
    assert again.coverage == local.coverage
