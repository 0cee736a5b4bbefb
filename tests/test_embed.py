"""embed: CLIP embeddings (.npz) and scores (metadata parquet), as CommonPool ships them.

Random-init weights saved to a local file go through the same path as real ones; the
stored arrays are checked against OpenCLIP's own encode_image / encode_text."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from datacomp_sci.core.schema import COMMONPOOL_SCHEMA

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from conftest import make_shards  # noqa: E402
from helpers import tiny_clip_weights  # noqa: E402

from datacomp_sci.annotate.embed import EmbedOptions, embed_pools, write_npz  # noqa: E402
from datacomp_sci.core.models import TINY_MODEL  # noqa: E402

N_SHARDS, PER_SHARD = 2, 5


def _image(shard: int, index: int) -> bytes:
    rng = np.random.default_rng(shard * 100 + index)
    arr = rng.integers(0, 256, (24 + index, 40, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _caption(shard: int, index: int) -> str:
    return f"a photo number {index} of shard {shard}" + " long" * (30 * (index == 3))


def make_pool(root, scores: bool = False, drop_image: bool = True):
    """A CommonPool-like pool: shards + one metadata parquet per shard, scores NULL."""
    samples = make_shards(root / "shards", N_SHARDS, PER_SHARD, image_fn=_image,
                          caption_fn=_caption)
    (root / "metadata").mkdir(parents=True)
    for s, shard in enumerate(samples):
        rows = [{"uid": x.uid, "url": f"http://example.invalid/{x.key}.jpg", "text": x.caption,
                 "original_width": 40, "original_height": 24,
                 "clip_b32_similarity_score": 0.5 if scores else None,
                 "clip_l14_similarity_score": 0.25 if scores else None,
                 "face_bboxes": [], "sha256": None} for x in shard]
        if drop_image and s == 1:  # a row whose uid has no image in the shards
            rows.append({**rows[0], "uid": "f" * 32, "text": None})
        pq.write_table(pa.Table.from_pylist(rows, schema=COMMONPOOL_SCHEMA),
                       root / "metadata" / f"{s:08d}.parquet")
    return samples


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return tiny_clip_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


def _opts(weights, **kw) -> EmbedOptions:
    base = dict(archs={"b32": TINY_MODEL, "l14": TINY_MODEL},
                pretrained={"b32": str(weights), "l14": str(weights)}, device="cpu",
                batch_size=4, workers=0)
    base.update(kw)
    return EmbedOptions(**base)


def _reference(weights, images: list[bytes], texts: list[str]):
    model, _, pre = open_clip.create_model_and_transforms(TINY_MODEL, pretrained=str(weights))
    model.eval()
    tok = open_clip.get_tokenizer(TINY_MODEL)
    with torch.no_grad():
        x = torch.stack([pre(Image.open(io.BytesIO(b))) for b in images])
        img = model.encode_image(x, normalize=True).numpy()
        txt = model.encode_text(tok(texts), normalize=True).numpy()
    return img, txt


def test_embed_writes_npz_and_scores_matching_openclip(tmp_path, tiny_weights):
    samples = make_pool(tmp_path / "pool")
    res = embed_pools([tmp_path / "pool"], _opts(tiny_weights))
    assert [f.action for f in res.files] == ["embedded", "embedded"]
    assert sum(f.no_image for f in res.files) == 1
    for s, shard in enumerate(samples):
        meta = tmp_path / "pool" / "metadata" / f"{s:08d}.parquet"
        table = pq.read_table(meta)
        assert table.schema == COMMONPOOL_SCHEMA  # schema unchanged
        with np.load(meta.with_suffix(".npz")) as z:
            assert sorted(z.files) == ["b32_img", "b32_txt", "l14_img", "l14_txt"]
            arrays = {k: z[k] for k in z.files}
        assert all(a.dtype == np.float16 and len(a) == table.num_rows for a in arrays.values())
        img, txt = _reference(tiny_weights, [x.members["jpg"] for x in shard],
                              [x.caption for x in shard])
        n = len(shard)
        np.testing.assert_allclose(arrays["b32_img"][:n].astype(np.float32), img, atol=2e-3)
        np.testing.assert_allclose(arrays["b32_txt"][:n].astype(np.float32), txt, atol=2e-3)
        expected = (img * txt).sum(1)
        got = table.column("clip_b32_similarity_score").to_numpy(zero_copy_only=False)
        np.testing.assert_allclose(got[:n], expected, atol=1e-5)
        np.testing.assert_array_equal(table.column("clip_l14_similarity_score")
                                      .to_numpy(zero_copy_only=False)[:n], got[:n])
        if s == 1:  # the row without an image: zero image embedding, NULL score
            assert table.column("clip_b32_similarity_score")[n].as_py() is None
            assert not arrays["b32_img"][n].any() and arrays["b32_txt"][n].any()
    record = json.loads((tmp_path / "pool" / "pool.json").read_text())["embeddings"]
    assert record["models"]["b32"]["sha256"] and record["models"]["b32"]["arch"] == TINY_MODEL
    assert {f["state"] for f in record["files"].values()} == {"done"}


def test_embed_output_is_byte_identical_with_decoding_workers_and_rerun_is_a_no_op(
        tmp_path, tiny_weights):
    for name in ("a", "b"):
        make_pool(tmp_path / name)
    embed_pools([tmp_path / "a"], _opts(tiny_weights, workers=0))
    embed_pools([tmp_path / "b"], _opts(tiny_weights, workers=2))
    for f in ("00000000.npz", "00000001.npz", "00000000.parquet", "00000001.parquet"):
        assert (tmp_path / "a" / "metadata" / f).read_bytes() == \
            (tmp_path / "b" / "metadata" / f).read_bytes()
    before = (tmp_path / "a" / "metadata" / "00000000.npz").stat().st_mtime_ns
    res = embed_pools([tmp_path / "a"], _opts(tiny_weights))
    assert [f.action for f in res.files] == ["done", "done"]
    assert (tmp_path / "a" / "metadata" / "00000000.npz").stat().st_mtime_ns == before


def test_embed_resumes_a_file_marked_as_being_written(tmp_path, tiny_weights):
    make_pool(tmp_path / "ref")
    embed_pools([tmp_path / "ref"], _opts(tiny_weights))
    make_pool(tmp_path / "pool")
    embed_pools([tmp_path / "pool"], _opts(tiny_weights))
    # simulate a kill after the npz of file 1 was written but before its parquet was
    pool_json = tmp_path / "pool" / "pool.json"
    info = json.loads(pool_json.read_text())
    info["embeddings"]["files"]["00000001"]["state"] = "writing"
    pool_json.write_text(json.dumps(info))
    meta = tmp_path / "pool" / "metadata" / "00000001.parquet"
    t = pq.read_table(meta)
    t = t.set_column(5, t.schema.field(5), pa.nulls(t.num_rows, pa.float32()))
    pq.write_table(t, meta)
    totals, seen = [], []
    res = embed_pools([tmp_path / "pool"], _opts(tiny_weights, on_total=totals.append,
                                                 on_images=seen.append))
    assert [f.action for f in res.files] == ["done", "embedded"]
    # the progress total, known before any work, is what is left: file 1's rows, once
    assert totals == [res.files[1].rows] and sum(seen) == res.files[1].rows
    for f in ("00000001.npz", "00000001.parquet"):
        assert (tmp_path / "pool" / "metadata" / f).read_bytes() == \
            (tmp_path / "ref" / "metadata" / f).read_bytes()


def test_embed_refuses_other_weights_unless_overwrite(tmp_path, tiny_weights):
    make_pool(tmp_path / "pool")
    embed_pools([tmp_path / "pool"], _opts(tiny_weights, models=("b32",)))
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    torch.save(open_clip.create_model(TINY_MODEL).state_dict(), other)
    with pytest.raises(FileExistsError, match="--overwrite"):
        embed_pools([tmp_path / "pool"], _opts(other, models=("b32",)))
    # another slot is fine: it is added to the same npz
    embed_pools([tmp_path / "pool"], _opts(other, models=("l14",)))
    with np.load(tmp_path / "pool" / "metadata" / "00000000.npz") as z:
        assert sorted(z.files) == ["b32_img", "b32_txt", "l14_img", "l14_txt"]
        assert not np.array_equal(z["b32_img"], z["l14_img"])
    res = embed_pools([tmp_path / "pool"], _opts(other, models=("b32",), overwrite=True))
    assert [f.action for f in res.files] == ["embedded", "embedded"]
    with np.load(tmp_path / "pool" / "metadata" / "00000000.npz") as z:
        np.testing.assert_array_equal(z["b32_img"], z["l14_img"])


def test_embed_keeps_a_commonpool_download_s_scores_unless_overwrite(tmp_path, tiny_weights):
    make_pool(tmp_path / "cp", scores=True, drop_image=False)
    for s in range(N_SHARDS):
        meta = tmp_path / "cp" / "metadata" / f"{s:08d}.parquet"
        write_npz(meta.with_suffix(".npz"), {k: np.ones((PER_SHARD, 4), np.float16)
                                             for k in ("b32_img", "b32_txt", "l14_img",
                                                       "l14_txt")})
    res = embed_pools([tmp_path / "cp"], _opts(tiny_weights))
    assert [f.action for f in res.files] == ["kept", "kept"]
    t = pq.read_table(tmp_path / "cp" / "metadata" / "00000000.parquet")
    assert t.column("clip_b32_similarity_score").to_pylist() == [0.5] * PER_SHARD
    res = embed_pools([tmp_path / "cp"], _opts(tiny_weights, overwrite=True))
    assert [f.action for f in res.files] == ["embedded", "embedded"]
    t = pq.read_table(tmp_path / "cp" / "metadata" / "00000000.parquet")
    assert t.column("clip_b32_similarity_score").to_pylist() != [0.5] * PER_SHARD


def test_embed_npz_is_a_plain_numpy_archive(tmp_path):
    path = tmp_path / "x.npz"
    write_npz(path, {"b": np.arange(3, dtype=np.float16), "a": np.eye(2, dtype=np.float16)})
    with np.load(path) as z:
        assert z.files == ["a", "b"]
        np.testing.assert_array_equal(z["b"], np.arange(3, dtype=np.float16))
    assert zipfile.ZipFile(path).infolist()[0].date_time == (1980, 1, 1, 0, 0, 0)


def test_embed_offline_tag_gives_one_line_naming_the_cache_and_option(tmp_path, monkeypatch):
    make_pool(tmp_path / "pool")
    hub = pytest.importorskip("huggingface_hub.constants")
    # no network here either way; offline mode makes the hub fail at once instead of
    # after its connection retries (read at import time, hence the attributes too)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf"))
    opts = EmbedOptions(models=("b32",), archs={"b32": "ViT-B-32"}, device="cpu", workers=0,
                        pretrained={"b32": "laion2b_e16"})
    with pytest.raises(ValueError) as e:
        embed_pools([tmp_path / "pool"], opts)
    msg = str(e.value)
    assert "\n" not in msg and "--b32-pretrained PATH" in msg and "cache" in msg


def test_embed_rejects_unknown_tag_and_pool_without_shards(tmp_path, tiny_weights):
    make_pool(tmp_path / "pool")
    opts = EmbedOptions(models=("b32",), device="cpu", pretrained={"b32": "no-such-tag"})
    with pytest.raises(ValueError, match="neither a file nor an OpenCLIP tag"):
        embed_pools([tmp_path / "pool"], opts)
    (tmp_path / "bare").mkdir()
    pq.write_table(pq.read_table(tmp_path / "pool" / "metadata" / "00000000.parquet"),
                   tmp_path / "bare" / "m.parquet")
    with pytest.raises(FileNotFoundError, match="download-pool"):
        embed_pools([tmp_path / "bare"], _opts(tiny_weights))


def test_download_filter_assets_checks_sha256_over_loopback(tmp_path, http_server,
                                                            monkeypatch):
    import hashlib

    from click.testing import CliRunner

    from datacomp_sci.annotate import assets
    from datacomp_sci.cli import main

    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    fake = {}
    for name in assets.DEFAULT_FILES:
        data = f"content of {name}".encode()
        (www / name).write_bytes(data)
        fake[name] = hashlib.sha256(data).hexdigest()
    fake[assets.DEFAULT_FILES[-1]] = "0" * 64  # one file the server gets wrong
    monkeypatch.setattr(assets, "ASSETS", fake)
    base = http_server(www)
    out = tmp_path / "assets"
    r = CliRunner().invoke(main, ["download-filter-assets", "-o", str(out), "--base-url", base])
    assert r.exit_code == 3 and "5 of 6 files ready" in r.output and "sha256 differs" in r.output
    assert not (out / assets.DEFAULT_FILES[-1]).exists()
    res = assets.download_filter_assets(out, base_url=base, verify_only=True)
    assert [s.status for s in res] == ["present"] * 5 + ["missing"]


def test_embed_cli_summary_and_one_line_errors(tmp_path, tiny_weights):
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    make_pool(tmp_path / "pool")
    base = ["embed", str(tmp_path / "pool"), "--device", "cpu", "-j", "0", "--no-progress",
            "--models", "b32", "--b32-model", TINY_MODEL]
    r = CliRunner().invoke(main, [*base, "--b32-pretrained", str(tiny_weights)])
    assert r.exit_code == 0, r.output
    assert "files       2: 2 embedded" in r.output and "1 rows without an image" in r.output
    r = CliRunner().invoke(main, [*base, "--b32-pretrained", str(tiny_weights)])
    assert "2 done" in r.output
    r = CliRunner().invoke(main, [*base, "--b32-pretrained", "nope"])
    assert r.exit_code == 1 and "neither a file nor an OpenCLIP tag" in r.output
    assert "Traceback" not in r.output


def test_embed_keeps_fresh_sidecars_fresh(tmp_path, tiny_weights):
    from datacomp_sci.pool.pools import discover_pool, sidecar_fresh
    from datacomp_sci.subsets.langid import ensure_lang_sidecars

    make_pool(tmp_path / "pool")
    ensure_lang_sidecars([discover_pool(tmp_path / "pool")])
    metas = sorted((tmp_path / "pool" / "metadata").glob("*.parquet"))
    assert all(sidecar_fresh(m, "lang") for m in metas)
    embed_pools([tmp_path / "pool"], _opts(tiny_weights, models=("b32",)))
    assert all(sidecar_fresh(m, "lang") for m in metas)  # the rows did not change


def _upload(fake_s3, folder, url: str) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            fake_s3.fs.pipe_file(f"{url.split('://', 1)[1]}/{p.relative_to(folder)}",
                                 p.read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("store,path", [("fake_s3", "in-process"), ("fake_s3", "engine-task"),
                                        ("fake_gcs", "in-process")])
def test_embed_a_pool_on_object_storage_writes_the_bytes_of_a_local_run_and_resumes_there(
        tmp_path, tiny_weights, store, path, monkeypatch, request):
    import datacomp_sci.annotate.embed as embed_mod
    from datacomp_sci.engines import EngineOptions, open_engine

    objects = request.getfixturevalue(store)  # an s3:// or a gs:// store on loopback
    make_pool(tmp_path / "local")
    embed_pools([tmp_path / "local"], _opts(tiny_weights))
    make_pool(tmp_path / "src")
    url = f"{objects.bucket('embed')}/{path}"
    _upload(objects, tmp_path / "src", url)
    if path == "engine-task":  # the Ray path (one task per file), on an inline engine
        real = embed_mod._embed_all
        monkeypatch.setattr(embed_mod, "_embed_all", lambda pools, c, i, o, engine, remotes: real(
            pools, c, i, o, open_engine(EngineOptions(workers=1)), remotes))
    res = embed_pools([url], _opts(tiny_weights))
    assert [f.action for f in res.files] == ["embedded", "embedded"]
    got = objects.files(url)
    for f in ("00000000.npz", "00000001.npz", "00000000.parquet", "00000001.parquet"):
        assert got[f"metadata/{f}"] == (tmp_path / "local" / "metadata" / f).read_bytes()
    record = json.loads(got["pool.json"])["embeddings"]
    assert record == json.loads((tmp_path / "local" / "pool.json").read_text())["embeddings"]
    # a kill after file 1's objects were uploaded but before pool.json recorded it
    record["files"]["00000001"]["state"] = "writing"
    objects.fs.pipe_file(f"{url.split('://', 1)[1]}/pool.json",
                         json.dumps({"embeddings": record}).encode())
    res = embed_pools([url], _opts(tiny_weights))
    assert [f.action for f in res.files] == ["done", "embedded"]
    assert objects.files(url)["metadata/00000001.npz"] == got["metadata/00000001.npz"]


@pytest.mark.slow
def test_embed_cli_reaches_a_pool_on_s3_through_storage_option_alone(
        tmp_path, tiny_weights, fake_s3, monkeypatch):
    """The endpoint given only by --storage-option (no FSSPEC_S3_* configuration) reaches
    every reader: the staging of the metadata, the shard index and the decoding workers."""
    import fsspec.config
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    make_pool(tmp_path / "local")
    embed_pools([tmp_path / "local"], _opts(tiny_weights, models=("b32",)))
    make_pool(tmp_path / "src")
    url = f"{fake_s3.bucket('embed-opts')}/pool"
    _upload(fake_s3, tmp_path / "src", url)
    monkeypatch.setitem(fsspec.config.conf, "s3", {})
    monkeypatch.delenv("FSSPEC_S3_ENDPOINT_URL")
    args = ["embed", url, "--models", "b32", "--b32-model", TINY_MODEL, "--b32-pretrained",
            str(tiny_weights), "--device", "cpu", "--batch-size", "4", "-j", "2",
            "--no-progress"]
    res = CliRunner().invoke(main, [*args, "--storage-option", f"endpoint_url={fake_s3.endpoint}"])
    assert res.exit_code == 0, res.output
    got = fake_s3.files(url)
    for f in ("00000000.npz", "00000001.npz", "00000000.parquet", "00000001.parquet"):
        assert got[f"metadata/{f}"] == (tmp_path / "local" / "metadata" / f).read_bytes()
