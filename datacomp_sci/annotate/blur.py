"""``datacomp-sci blur POOL``: blur the faces of a pool's images exactly as img2dataset
does when it downloads with ``bbox_col`` (CommonPool's ``face_bboxes``), so that no
image of the pool shows an unblurred face.

The blurring is img2dataset's own code, not a copy: its ``Resizer`` (resize mode ``no``:
the shard images already have their final size, where img2dataset blurs after
resizing) with its ``BoundingBoxBlurrer`` (boxes as fractions of the image, grown by a
tenth of the largest box side, a Gaussian blur of that kernel blended through a blurred
mask), and the JPEG encoding at img2dataset's default quality 95. Same image and boxes,
same bytes.

Per shard, the samples whose metadata row has boxes get their image member replaced;
every other member is copied unchanged, in the same order, with the reproducible
headers ``reshard`` writes. Each shard is rewritten atomically, and ``pool.json``
records under ``blurred`` the shards done (with the sha256 of the new tar), so an
interrupted run resumes and a rerun changes nothing.

A pool whose faces were not detected in every metadata file (``embed --models faces``,
recorded in ``pool.json``) is refused before any shard is touched: blurring it would leave
faces unblurred. A CommonPool download needs no detection: its ``face_bboxes`` came with
its metadata (:func:`.faces.detection_missing`).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from datacomp_sci.annotate.faces import detection_missing
from datacomp_sci.core.tars import tar_end, tar_member_bytes
from datacomp_sci.core.util import atomic_path, atomic_write_json, sha256_file
from datacomp_sci.pool.pools import discover_pool

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
QUALITY = 95  # img2dataset's default encode_quality


def blur_image_bytes(data: bytes, boxes: list[list[float]], encode_format: str = "jpg",
                     quality: int = QUALITY) -> bytes:
    """The image re-encoded by img2dataset's resizer with ``boxes`` blurred."""
    from img2dataset.blurrer import BoundingBoxBlurrer
    from img2dataset.resizer import Resizer

    resizer = Resizer(image_size=0, resize_mode="no", resize_only_if_bigger=True,
                      encode_quality=quality, encode_format=encode_format,
                      blurrer=BoundingBoxBlurrer())
    out, *_rest, err = resizer(io.BytesIO(data), blurring_bbox_list=boxes)
    if err is not None or out is None:
        raise ValueError(f"cannot blur this image: {err}")
    return out


@dataclass
class BlurResult:
    shards_rewritten: int = 0
    shards_done_before: int = 0
    images_blurred: int = 0
    boxes: int = 0
    errors: list[str] = field(default_factory=list)


def _boxes_by_uid(pool) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = {}
    for meta in pool.metadata_files:
        if "face_bboxes" not in pq.read_schema(meta).names:
            continue
        t = pq.read_table(meta, columns=["uid", "face_bboxes"])
        for uid, boxes in zip(t.column("uid").to_pylist(), t.column("face_bboxes").to_pylist(),
                              strict=True):
            if uid and boxes:
                out[uid] = boxes
    return out


def _rewrite(shard: Path, boxes: dict[str, list[list[float]]],
             before_rename: Callable[[str], None]) -> tuple[int, int]:
    """Rewrite one tar with the listed samples' images blurred; (images, boxes).
    ``before_rename(sha256)`` runs once the new tar is complete, before it replaces the
    old one."""
    images = nboxes = 0
    with tarfile.open(shard, "r:") as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf]
    by_key: dict[str, str] = {}
    for m, data in members:
        if data is not None and m.name.endswith(".json"):
            try:
                uid = json.loads(data).get("uid")
            except (ValueError, AttributeError):
                uid = None
            if isinstance(uid, str):
                by_key[m.name[:-5]] = uid
    if not any(uid in boxes for uid in by_key.values()):  # nothing to blur: left as it is
        before_rename(sha256_file(shard))
        return 0, 0
    written = 0
    with atomic_path(shard) as tmp, open(tmp, "wb") as f:
        for m, data in members:
            if data is None:
                raise ValueError(f"{shard}: member {m.name} is not a regular file")
            key, _, ext = m.name.rpartition(".")
            uid = by_key.get(key)
            if ext.lower() in IMAGE_EXTS and uid in boxes:
                fmt = "jpg" if ext.lower() in ("jpg", "jpeg") else ext.lower()
                data = blur_image_bytes(data, boxes[uid], encode_format=fmt)
                images += 1
                nboxes += len(boxes[uid])
            chunk = tar_member_bytes(m.name, data)
            f.write(chunk)
            written += len(chunk)
        f.write(tar_end(written))
        f.flush()
        os.fsync(f.fileno())
        before_rename(sha256_file(tmp))
    return images, nboxes


def blur_pool(path: str | Path, on_shard: Callable[[Path], None] | None = None) -> BlurResult:
    """Blur the ``face_bboxes`` of every sample of a pool's shards (see the module doc)."""
    pool = discover_pool(path)
    if not pool.shards_dir.is_dir():
        raise FileNotFoundError(f"pool {pool.name} ({pool.root}) has no shards/ folder")
    info_path = pool.root / "pool.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    missing = detection_missing(pool, info.get("embeddings", {}))
    if missing:
        raise ValueError(
            f"pool {pool.name} ({pool.root}): faces were not detected in {len(missing)} of "
            f"{len(pool.metadata_files)} metadata files (first: {missing[0].name}): run "
            f"datacomp-sci embed {pool.root} --models faces first")
    boxes = _boxes_by_uid(pool)
    done = info.setdefault("blurred", {})
    res = BlurResult()
    for shard in sorted(pool.shards_dir.glob("*.tar")):
        # recorded before the new tar replaced the old one: a kill in between is seen here
        if shard.name in done and done[shard.name] == sha256_file(shard):
            res.shards_done_before += 1
            continue

        def record(sha: str, name: str = shard.name) -> None:
            done[name] = sha
            atomic_write_json(info_path, info)

        try:
            n, b = _rewrite(shard, boxes, record)
        except (tarfile.TarError, OSError, ValueError) as e:
            res.errors.append(f"{shard.name}: {e}")
            continue
        res.images_blurred += n
        res.boxes += b
        res.shards_rewritten += 1
        if on_shard:
            on_shard(shard)
    return res
