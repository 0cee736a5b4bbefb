"""embed --models faces: insightface's SCRFD fills face_bboxes as dataset2metadata did.

The detector is a tiny SCRFD-shaped ONNX model with random weights (tests/scrfd_model.py:
the nine outputs insightface reads from det_10g.onnx) with a planted score head that
fires on saturated red, so the tests know where the "faces" are; the whole insightface
path (its SCRFD class, anchor decoding, threshold, NMS) runs on it."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_shards
from PIL import Image

from datacomp_sci.core.schema import COMMONPOOL_SCHEMA

pytest.importorskip("insightface")
pytest.importorskip("onnx")
pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
from scrfd_model import tiny_scrfd  # noqa: E402

from datacomp_sci.annotate import faces  # noqa: E402
from datacomp_sci.annotate.blur import blur_pool  # noqa: E402
from datacomp_sci.annotate.embed import EmbedOptions, embed_pools  # noqa: E402
from datacomp_sci.pool.build import POOL_FORMAT  # noqa: E402

N_SHARDS, PER_SHARD = 2, 4
# per image: its size and the colour of its square (None: no square); red fires the
# planted detector (score ~1), "mid" scores about 0.44 (kept at 0.3, which insightface's
# default of 0.5 would drop), "faint" about 0.16 (below the threshold)
RED, MID, FAINT = (250, 20, 20), (170, 90, 90), (140, 90, 90)
SIZES = [(400, 300), (240, 360), (320, 320), (300, 200)]
KINDS = [RED, None, MID, FAINT, None, RED, FAINT, RED]
SQUARE = (0.3, 0.25, 0.75, 0.7)  # x1, y1, x2, y2 of the square, fractions of the image


def _image(shard: int, index: int, per_shard: int = PER_SHARD) -> bytes:
    k = (shard * per_shard + index) % len(KINDS)
    w, h = SIZES[k % len(SIZES)]
    arr = np.full((h, w, 3), 100, np.uint8)
    arr[:, :, 1] += np.arange(w, dtype=np.uint8)[None, :] % 7  # not a flat image
    if KINDS[k] is not None:
        x1, y1, x2, y2 = SQUARE
        arr[int(y1 * h):int(y2 * h), int(x1 * w):int(x2 * w)] = KINDS[k]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_pool(root: Path, built: bool = True, boxes=None, shards: int = N_SHARDS,
              per_shard: int = PER_SHARD):
    """A pool as build-pool writes it (pool.json, face_bboxes all empty before detection),
    or, ``built=False``, a CommonPool-like download with ``boxes`` as its own column."""
    samples = make_shards(root / "shards", shards, per_shard,
                          image_fn=lambda s, i: _image(s, i, per_shard))
    (root / "metadata").mkdir(parents=True)
    for s, shard in enumerate(samples):
        rows = [{"uid": x.uid, "text": x.caption, "original_width": 1, "original_height": 1,
                 "face_bboxes": [] if boxes is None else boxes, "sha256": None} for x in shard]
        if s == 1:  # a row whose uid has no image in the shards
            rows.append({**rows[0], "uid": "f" * 32})
        pq.write_table(pa.Table.from_pylist(rows, schema=COMMONPOOL_SCHEMA),
                       root / "metadata" / f"{s:08d}.parquet")
    if built:
        (root / "pool.json").write_text(json.dumps({"format": POOL_FORMAT, "name": root.name,
                                                    "source": "pmc"}))
    return samples


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tiny_scrfd(tmp_path_factory.mktemp("det") / "det_tiny.onnx")


def _opts(weights, **kw) -> EmbedOptions:
    return EmbedOptions(**{"models": ("faces",), "faces_weights": str(weights),
                           "device": "cpu", "batch_size": 3, "workers": 0, **kw})


def _boxes(pool: Path) -> list:
    return [b for f in sorted((pool / "metadata").glob("*.parquet"))
            for b in pq.read_table(f, columns=["face_bboxes"]).column(0).to_pylist()]


def test_faces_land_in_their_rows_normalised_and_thresholded(tmp_path, weights):
    make_pool(tmp_path / "pool")
    before = pq.read_schema(tmp_path / "pool" / "metadata" / "00000000.parquet")
    res = embed_pools([tmp_path / "pool"], _opts(weights))
    assert [f.action for f in res.files] == ["embedded", "embedded"]
    assert pq.read_schema(tmp_path / "pool" / "metadata" / "00000000.parquet") == before
    got = _boxes(tmp_path / "pool")
    assert len(got) == N_SHARDS * PER_SHARD + 1 and got[-1] is None  # no image: NULL
    x1, y1, x2, y2 = SQUARE
    detector = faces.load_detector(weights)
    for k, kind in enumerate(KINDS):
        boxes = got[k]
        if kind in (None, FAINT):
            assert boxes == [], k
            continue
        assert boxes, k
        for b in boxes:
            assert len(b) == 4 and all(0.0 <= v <= 1.0 for v in b)
            assert b[0] <= b[2] and b[1] <= b[3]
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2  # the centre lies on the square
            assert x1 - 0.1 <= cx <= x2 + 0.1 and y1 - 0.1 <= cy <= y2 + 0.1, (k, b)
        # the column holds what the detector gives on the decoded image, in its order
        data = _image(k // PER_SHARD, k % PER_SHARD)
        direct, scores = faces.detect(detector, faces.prepare(Image.open(io.BytesIO(data))))
        assert boxes == direct
        assert (scores >= faces.THRESHOLD).all()
        if kind == MID:  # below insightface's own default of 0.5: dataset2metadata's 0.3
            assert (scores < 0.5).all()
    record = json.loads((tmp_path / "pool" / "pool.json").read_text())["embeddings"]
    assert record["models"]["faces"] == faces.weights_identity(weights)
    assert record["files"]["00000001"]["slots"] == ["faces"]
    assert res.faces_found == sum(len(b) for b in got if b)
    assert res.images_with_faces == sum(1 for b in got if b) == 4


def test_prepare_pads_to_a_white_centred_square_as_dataset2metadata(tmp_path):
    img = Image.new("RGB", (300, 100), (0, 0, 0))
    p = faces.prepare(img)
    assert p.bgr.shape == (faces.INPUT_SIZE, faces.INPUT_SIZE, 3) and p.bgr.dtype == np.uint8
    assert p.pads == (0.0, 100 / 300, 0.0, 100 / 300)
    assert (p.bgr[:50] == 255).all() and (p.bgr[-50:] == 255).all()  # the padding
    assert (p.bgr[100:120] == 0).all()  # the image
    expected = Image.new("RGB", (300, 300), (255, 255, 255))
    expected.paste(img, (0, 100))
    ref = np.asarray(expected.resize((224, 224), Image.BICUBIC))[:, :, ::-1]
    np.testing.assert_array_equal(p.bgr, ref)


@pytest.mark.slow
def test_faces_are_deterministic_and_a_rerun_changes_nothing(tmp_path, weights):
    for name, workers in (("a", 0), ("b", 2)):
        make_pool(tmp_path / name)
        embed_pools([tmp_path / name], _opts(weights, workers=workers))
    for f in ("00000000.parquet", "00000001.parquet"):
        assert (tmp_path / "a" / "metadata" / f).read_bytes() == \
            (tmp_path / "b" / "metadata" / f).read_bytes()
    meta = tmp_path / "a" / "metadata" / "00000000.parquet"
    before = meta.stat().st_mtime_ns
    res = embed_pools([tmp_path / "a"], _opts(weights))
    assert [f.action for f in res.files] == ["done", "done"] and res.faces_found is None
    assert meta.stat().st_mtime_ns == before


def test_faces_resume_a_file_marked_as_being_written(tmp_path, weights):
    make_pool(tmp_path / "ref")
    embed_pools([tmp_path / "ref"], _opts(weights))
    make_pool(tmp_path / "pool")
    embed_pools([tmp_path / "pool"], _opts(weights))
    # as if killed while file 1 was being written: marked "writing", its column not yet
    pool_json = tmp_path / "pool" / "pool.json"
    info = json.loads(pool_json.read_text())
    info["embeddings"]["files"]["00000001"]["state"] = "writing"
    pool_json.write_text(json.dumps(info))
    meta = tmp_path / "pool" / "metadata" / "00000001.parquet"
    t = pq.read_table(meta)
    i = t.schema.get_field_index("face_bboxes")
    t = t.set_column(i, t.schema.field(i), pa.array([[]] * t.num_rows, t.schema.field(i).type))
    pq.write_table(t, meta)
    res = embed_pools([tmp_path / "pool"], _opts(weights))
    assert [f.action for f in res.files] == ["done", "embedded"]
    assert meta.read_bytes() == (tmp_path / "ref" / "metadata" / "00000001.parquet").read_bytes()


def test_faces_refuse_other_weights_unless_overwrite(tmp_path, weights):
    make_pool(tmp_path / "pool")
    embed_pools([tmp_path / "pool"], _opts(weights))
    other = tiny_scrfd(tmp_path / "other.onnx", seed=1, gain=9.0)
    with pytest.raises(FileExistsError, match="--overwrite"):
        embed_pools([tmp_path / "pool"], _opts(other))
    first = _boxes(tmp_path / "pool")
    res = embed_pools([tmp_path / "pool"], _opts(other, overwrite=True))
    assert [f.action for f in res.files] == ["embedded", "embedded"]
    assert _boxes(tmp_path / "pool") != first
    record = json.loads((tmp_path / "pool" / "pool.json").read_text())["embeddings"]
    assert record["models"]["faces"]["sha256"] == faces.weights_identity(other)["sha256"]


def test_faces_without_weights_offline_is_one_line_naming_the_cache_and_option(
        tmp_path, weights, monkeypatch):
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    make_pool(tmp_path / "pool")
    cache = tmp_path / "home" / ".insightface" / "models" / "buffalo_l" / "det_10g.onnx"
    monkeypatch.setattr(faces, "default_weights_path", lambda: cache)

    def offline():  # what insightface's fetch raises here: no network
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(faces, "_download_pack", offline)
    with pytest.raises(ValueError) as e:
        embed_pools([tmp_path / "pool"], _opts(weights, faces_weights=None))
    msg = str(e.value)
    assert "\n" not in msg and str(cache) in msg and "--faces-weights PATH" in msg
    r = CliRunner().invoke(main, ["embed", str(tmp_path / "pool"), "--models", "faces",
                                  "--device", "cpu", "--no-progress"])
    assert r.exit_code == 1 and str(cache) in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["embed", str(tmp_path / "pool"), "--models", "faces",
                                  "--faces-weights", str(tmp_path / "nope.onnx")])
    assert r.exit_code == 1 and "no such file" in r.output
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    r = CliRunner().invoke(main, ["embed", str(tmp_path / "pool"), "--models", "faces",
                                  "--faces-weights", str(tmp_path / "bad.onnx"), "-j", "0",
                                  "--device", "cpu", "--no-progress"])
    assert r.exit_code == 1 and "cannot load" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "pool" / "pool.json").read_text().count("faces")  # nothing done


def test_blur_refuses_a_pool_whose_faces_are_not_detected(tmp_path, weights):
    make_pool(tmp_path / "pool")
    before = (tmp_path / "pool" / "shards" / "00000000.tar").read_bytes()
    with pytest.raises(ValueError, match="--models faces"):
        blur_pool(tmp_path / "pool")
    assert (tmp_path / "pool" / "shards" / "00000000.tar").read_bytes() == before
    # a CommonPool download brings its own boxes: kept by embed, blurred at once
    make_pool(tmp_path / "cp", built=False, boxes=[[0.1, 0.1, 0.4, 0.5]])
    res = embed_pools([tmp_path / "cp"], _opts(weights))
    assert [f.action for f in res.files] == ["kept", "kept"]
    assert _boxes(tmp_path / "cp")[0] == [[0.1, 0.1, 0.4, 0.5]]
    assert blur_pool(tmp_path / "cp").images_blurred == N_SHARDS * PER_SHARD


def test_embed_then_blur_equals_img2dataset_blurrer_on_the_detected_boxes(tmp_path, weights):
    from click.testing import CliRunner
    from img2dataset.blurrer import BoundingBoxBlurrer
    from img2dataset.resizer import Resizer

    from datacomp_sci.cli import main

    samples = make_pool(tmp_path / "pool")
    pool = str(tmp_path / "pool")
    r = CliRunner().invoke(main, ["embed", pool, "--models", "faces", "--faces-weights",
                                  str(weights), "--device", "cpu", "-j", "0", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "faces       SCRFD-10G det_tiny.onnx" in r.output
    assert "boxes in 4 images" in r.output
    assert "1 rows without an image, 0 undecodable (NULL face_bboxes)" in r.output
    r = CliRunner().invoke(main, ["blur", pool, "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "4 images with" in r.output
    got = _boxes(tmp_path / "pool")
    resizer = Resizer(image_size=0, resize_mode="no", resize_only_if_bigger=True,
                      encode_format="jpg", blurrer=BoundingBoxBlurrer())
    import tarfile

    for k, x in enumerate(s for shard in samples for s in shard):
        with tarfile.open(tmp_path / "pool" / "shards" / f"{x.shard:08d}.tar") as tf:
            blurred = tf.extractfile(f"{x.key}.jpg").read()
        if got[k]:
            want, *_rest, err = resizer(io.BytesIO(x.members["jpg"]), blurring_bbox_list=got[k])
            assert err is None and blurred == want
            a = np.asarray(Image.open(io.BytesIO(x.members["jpg"])), np.int16)
            b = np.asarray(Image.open(io.BytesIO(blurred)), np.int16)
            assert np.abs(a - b).mean() > 1.0  # the square's edges are smeared
        else:
            assert blurred == x.members["jpg"]


@pytest.mark.slow
def test_faces_together_with_a_clip_slot_in_one_pass(tmp_path, weights, monkeypatch):
    pytest.importorskip("open_clip")
    from helpers import tiny_clip_weights

    from datacomp_sci.annotate.shardimages import ImageReader
    from datacomp_sci.core.models import TINY_MODEL

    clip = tiny_clip_weights(tmp_path / "tiny.pt")
    make_pool(tmp_path / "ref")
    embed_pools([tmp_path / "ref"], _opts(weights))
    make_pool(tmp_path / "pool")
    reads, real_read = [], ImageReader.read
    monkeypatch.setattr(ImageReader, "read", lambda self, *a: reads.append(a) or real_read(self, *a))
    seen = []
    res = embed_pools([tmp_path / "pool"], _opts(
        weights, models=("b32", "faces"), archs={"b32": TINY_MODEL},
        pretrained={"b32": str(clip)}, on_images=seen.append))
    assert [f.slots for f in res.files] == [["b32", "faces"]] * 2
    assert len(reads) == len(set(reads)) == res.images  # each image read (and decoded) once
    assert sum(seen) == sum(f.rows for f in res.files)  # progress counts every row once
    assert _boxes(tmp_path / "pool") == _boxes(tmp_path / "ref")
    t = pq.read_table(tmp_path / "pool" / "metadata" / "00000000.parquet")
    assert t.column("clip_b32_similarity_score").null_count == 0
    with np.load(tmp_path / "pool" / "metadata" / "00000000.npz") as z:
        assert sorted(z.files) == ["b32_img", "b32_txt"]
    record = json.loads((tmp_path / "pool" / "pool.json").read_text())["embeddings"]
    assert record["files"]["00000000"]["slots"] == ["b32", "faces"]


@pytest.mark.slow
def test_faces_on_ray_write_the_same_files_as_local(tmp_path, weights):
    pytest.importorskip("ray")
    from helpers import local_ray

    from datacomp_sci.engines import EngineOptions

    with local_ray():
        for name in ("local", "ray"):
            make_pool(tmp_path / name)
        embed_pools([tmp_path / "local"], _opts(weights))
        res = embed_pools([tmp_path / "ray"], _opts(
            weights, engine=EngineOptions(name="ray", workers=2)))
        assert [f.action for f in res.files] == ["embedded"] * 2
        assert res.images_with_faces == 4
        for f in ("00000000.parquet", "00000001.parquet"):
            assert (tmp_path / "ray" / "metadata" / f).read_bytes() == \
                (tmp_path / "local" / "metadata" / f).read_bytes()
        assert [json.loads((tmp_path / n / "pool.json").read_text())["embeddings"]
                for n in ("ray", "local")] == \
            [json.loads((tmp_path / "local" / "pool.json").read_text())["embeddings"]] * 2


@pytest.mark.slow
def test_faces_killed_mid_run_resume_to_the_same_files(tmp_path, weights):
    import signal
    import subprocess
    import sys
    import time

    shape = {"shards": 6, "per_shard": 24}
    make_pool(tmp_path / "ref", **shape)
    embed_pools([tmp_path / "ref"], _opts(weights))
    make_pool(tmp_path / "pool", **shape)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(repo)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datacomp_sci.cli", "embed", str(tmp_path / "pool"), "--models",
         "faces", "--faces-weights", str(weights), "--device", "cpu", "-j", "0",
         "--batch-size", "1", "--no-progress"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    pool_json = tmp_path / "pool" / "pool.json"
    deadline = time.monotonic() + 120
    done = 0
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            files = json.loads(pool_json.read_text())["embeddings"]["files"]
            done = sum(f["state"] == "done" for f in files.values())
        except (OSError, ValueError, KeyError):
            done = 0
        if done:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert 1 <= done < shape["shards"]  # killed after a file, before the last
    res = embed_pools([tmp_path / "pool"], _opts(weights))
    actions = [f.action for f in res.files]
    assert "done" in actions and "embedded" in actions
    for meta in sorted((tmp_path / "ref" / "metadata").glob("*.parquet")):
        assert (tmp_path / "pool" / "metadata" / meta.name).read_bytes() == meta.read_bytes()
    assert sorted(p.name for p in (tmp_path / "pool" / "metadata").iterdir()) == \
        sorted(p.name for p in (tmp_path / "ref" / "metadata").iterdir())  # no temp files
    ref = json.loads((tmp_path / "ref" / "pool.json").read_text())["embeddings"]
    assert json.loads(pool_json.read_text())["embeddings"] == ref


def test_experiment_embed_step_takes_faces_and_their_weights(tmp_path):
    from datacomp_sci.core.resources import resource_path
    from datacomp_sci.pipeline.experiment import load_experiment

    text = resource_path("experiments", "demo_tiny.yaml").read_text()
    assert "  device: cpu\n" in text
    f = tmp_path / "exp.yaml"
    f.write_text(text.replace("  device: cpu\n", "  device: cpu\n  models: [b32, l14, faces]\n"
                              "  faces_weights: weights/det.onnx\n", 1))
    exp = load_experiment(str(f), workdir=str(tmp_path / "work"))
    assert exp.embed.models == ("b32", "l14", "faces")
    assert exp.embed.faces_weights == str(tmp_path / "work" / "weights" / "det.onnx")


def test_cuda_without_onnxruntime_cuda_provider_is_refused_not_run_on_cpu(weights, monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="onnxruntime-gpu.*--device cpu"):
        faces.load_detector(weights, "cuda")
    assert faces.load_detector(weights, "cpu") is not None
