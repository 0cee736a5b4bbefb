"""blur: faces blurred exactly as img2dataset's own blurrer does, in place in a pool."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_shards
from PIL import Image

from datacomp_sci.core.schema import COMMONPOOL_SCHEMA

cv2 = pytest.importorskip("cv2")
pytest.importorskip("img2dataset")

from img2dataset.blurrer import BoundingBoxBlurrer  # noqa: E402
from img2dataset.resizer import Resizer  # noqa: E402

from datacomp_sci.annotate.blur import blur_image_bytes, blur_pool  # noqa: E402


def _photo(seed: int, w: int = 120, h: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize((w, h), Image.BICUBIC).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


BOXES = [[0.1, 0.2, 0.45, 0.6], [0.6, 0.5, 0.9, 0.95]]


def test_blur_equals_img2dataset_download_path_and_blurrer_class():
    data = _photo(1)
    ours = blur_image_bytes(data, BOXES)
    # img2dataset as DataComp downloads CommonPool (image smaller than 512: not resized)
    dc = Resizer(image_size=512, resize_mode="keep_ratio_largest", resize_only_if_bigger=True,
                 encode_format="jpg", blurrer=BoundingBoxBlurrer())
    img_str, width, height, *_rest, err = dc(io.BytesIO(data), blurring_bbox_list=BOXES)
    assert err is None and (width, height) == (120, 90)
    assert ours == img_str
    # and the blurrer class on the decoded array, encoded at quality 95
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    direct = cv2.imencode(".jpg", BoundingBoxBlurrer()(arr, BOXES),
                          params=[int(cv2.IMWRITE_JPEG_QUALITY), 95])[1].tobytes()
    assert ours == direct
    assert blur_image_bytes(data, BOXES) == ours  # deterministic
    a = np.asarray(Image.open(io.BytesIO(data)), np.int16)
    b = np.asarray(Image.open(io.BytesIO(ours)), np.int16)
    inside = np.abs(a[25:50, 18:50] - b[25:50, 18:50]).mean()
    outside = np.abs(a[:10, 60:100] - b[:10, 60:100]).mean()  # far from both boxes
    assert inside > 4 * outside


def _pool(root, boxes_for: dict[int, list]):
    samples = make_shards(root / "shards", 2, 3, image_fn=lambda s, i: _photo(10 * s + i))
    flat = [x for shard in samples for x in shard]
    rows = [{"uid": x.uid, "text": x.caption, "face_bboxes": boxes_for.get(k, [])}
            for k, x in enumerate(flat)]
    (root / "metadata").mkdir()
    pq.write_table(pa.table({n: [r.get(n) for r in rows] for n in COMMONPOOL_SCHEMA.names},
                            schema=COMMONPOOL_SCHEMA), root / "metadata" / "00000000.parquet")
    return flat


def _members(tar):
    with tarfile.open(tar) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf}


def test_blur_pool_replaces_only_the_boxed_images_and_resumes(tmp_path):
    flat = _pool(tmp_path / "pool", {1: BOXES, 4: [BOXES[0]]})
    untouched = (tmp_path / "pool" / "shards" / "00000000.tar").read_bytes()
    res = blur_pool(tmp_path / "pool")
    assert (res.shards_rewritten, res.images_blurred, res.boxes) == (2, 2, 3)
    for k, x in enumerate(flat):
        got = _members(tmp_path / "pool" / "shards" / f"{x.shard:08d}.tar")
        assert got[f"{x.key}.json"] == x.members["json"]
        assert got[f"{x.key}.txt"] == x.members["txt"]
        boxes = {1: BOXES, 4: [BOXES[0]]}.get(k)
        want = blur_image_bytes(x.members["jpg"], boxes) if boxes else x.members["jpg"]
        assert got[f"{x.key}.jpg"] == want
    assert (tmp_path / "pool" / "shards" / "00000000.tar").read_bytes() != untouched
    recorded = json.loads((tmp_path / "pool" / "pool.json").read_text())["blurred"]
    assert sorted(recorded) == ["00000000.tar", "00000001.tar"]
    before = [(tmp_path / "pool" / "shards" / f"0000000{i}.tar").read_bytes() for i in (0, 1)]
    again = blur_pool(tmp_path / "pool")  # done: nothing is blurred twice
    assert (again.shards_rewritten, again.shards_done_before) == (0, 2)
    assert [(tmp_path / "pool" / "shards" / f"0000000{i}.tar").read_bytes()
            for i in (0, 1)] == before


def test_blur_pool_is_deterministic_and_leaves_face_free_shards_alone(tmp_path):
    for name in ("a", "b"):
        _pool(tmp_path / name, {4: BOXES})
        blur_pool(tmp_path / name)
    for i in (0, 1):
        assert (tmp_path / "a" / "shards" / f"0000000{i}.tar").read_bytes() == \
            (tmp_path / "b" / "shards" / f"0000000{i}.tar").read_bytes()
    _pool(tmp_path / "c", {4: BOXES})
    assert (tmp_path / "c" / "shards" / "00000000.tar").read_bytes() == \
        (tmp_path / "a" / "shards" / "00000000.tar").read_bytes()  # no faces: unchanged
