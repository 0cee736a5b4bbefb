"""Face detection for ``face_bboxes``, as CommonPool's metadata has it.

CommonPool's boxes come from dataset2metadata's ``faces-scrfd10g`` model: SCRFD-10G
(Guo et al., "Sample and Computation Redistribution for Efficient Face Detection"). This
module runs the same network through insightface's own ``SCRFD`` class on onnxruntime
(insightface is the detector's home and maintains it; nothing of the network or its
decoding is reimplemented here), with dataset2metadata's settings:

* each image, converted to RGB, is padded to a square (centred, white: 255) and resized
  to 224 x 224 (bicubic), which is the detector's input; insightface reads it as a BGR
  array and normalises it as the SCRFD models were trained ((x - 127.5) / 128);
* candidates scoring at least 0.3 are kept after non-maximum suppression at IoU 0.45
  (the detector's three strides 8, 16, 32 decoded by insightface);
* each box is given as ``[x1, y1, x2, y2]`` in fractions of the original image: the
  padding is taken off and the values clamped to [0, 1] (float64 in the parquet).

An image without a face gets an empty list (CommonPool's rows all hold a list, empty when
no face was found); a row whose image is missing or does not decode gets NULL.

Weights: an ``.onnx`` file of an SCRFD detector (``--faces-weights PATH``, the offline
path) or, by default, ``det_10g.onnx`` of insightface's ``buffalo_l`` model pack in
insightface's cache (``~/.insightface/models/buffalo_l/``), fetched by insightface when
missing. The weights' identity (file name, sha256) and the settings are what ``embed``
records in ``pool.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from datacomp_sci.annotate.shardimages import DecodedImages, ImageReader
from datacomp_sci.core.util import sha256_file

DETECTOR = "SCRFD-10G"
INPUT_SIZE = 224  # dataset2metadata's FACES_SIZE
THRESHOLD = 0.3  # dataset2metadata's score_threshold
NMS_IOU = 0.45  # dataset2metadata's test_cfg nms iou_threshold
PAD_VALUE = 255  # dataset2metadata pads PIL images with white
INSIGHTFACE_ROOT = "~/.insightface"
MODEL_PACK = "buffalo_l"
PACK_FILE = "det_10g.onnx"
COLUMN = "face_bboxes"
_SCRFD_OUTPUTS = (6, 9, 10, 15)  # what insightface's SCRFD decodes (kps or not; 3 or 5 strides)


def default_weights_path() -> Path:
    """Where insightface keeps ``buffalo_l``'s detector."""
    return Path(INSIGHTFACE_ROOT).expanduser() / "models" / MODEL_PACK / PACK_FILE


def _download_pack() -> None:
    from insightface.utils import ensure_available

    ensure_available("models", MODEL_PACK, root=INSIGHTFACE_ROOT)


def _offline_message(path: Path, err: Exception | None) -> str:
    why = ""
    if err is not None:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        why = f" ({type(err).__name__}: {first[:160]})"
    return (f"no face detector weights at {path}{why}: without network, put insightface's "
            f"{MODEL_PACK} pack there ({PACK_FILE}) or pass --faces-weights PATH to an SCRFD "
            ".onnx file")


def resolve_weights(weights: str | None) -> Path:
    """The detector's ``.onnx`` file: ``weights`` when given, else insightface's cached
    ``buffalo_l/det_10g.onnx`` (insightface fetches the pack when it is missing)."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ValueError(f"--faces-weights {weights}: no such file (give an SCRFD .onnx "
                             f"file, such as {PACK_FILE} of insightface's {MODEL_PACK} pack)")
        return path
    path = default_weights_path()
    if path.is_file():
        return path
    try:
        _download_pack()
    except Exception as e:  # requests / urllib / zipfile errors differ by cause and version
        raise ValueError(_offline_message(path, e)) from e
    if not path.is_file():
        raise ValueError(_offline_message(path, None))
    return path


def weights_identity(path: Path) -> dict[str, Any]:
    """What pool.json records for the detector: its name, file, sha256 and settings."""
    return {"arch": DETECTOR, "pretrained": path.name, "sha256": sha256_file(path),
            "input_size": INPUT_SIZE, "threshold": THRESHOLD, "nms_iou": NMS_IOU}


def load_detector(path: str | Path, device: str = "cpu"):
    """insightface's ``SCRFD`` over ``path`` on onnxruntime, set to dataset2metadata's
    input size, threshold and NMS; on CUDA when ``device`` is cuda (refused in one line
    when onnxruntime has no CUDA provider, rather than running on the CPU unasked)."""
    import onnxruntime
    from insightface.model_zoo.scrfd import SCRFD

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError("face detection on CUDA needs onnxruntime with its CUDA provider "
                             "(pip install onnxruntime-gpu), or run it with --device cpu")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / ... kinds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"cannot load {path} as an ONNX model: {first[:200]}") from e
    n = len(session.get_outputs())
    if n not in _SCRFD_OUTPUTS:
        raise ValueError(f"{path} is not an SCRFD detector: it has {n} outputs where "
                         "insightface's SCRFD reads 6, 9, 10 or 15")
    det = SCRFD(model_file=str(path), session=session)
    det.prepare(-1 if providers == ["CPUExecutionProvider"] else 0,
                input_size=(INPUT_SIZE, INPUT_SIZE), det_thresh=THRESHOLD, nms_thresh=NMS_IOU)
    return det


@dataclass(frozen=True)
class Prepared:
    """An image as the detector reads it and the padding to take off its boxes."""

    bgr: np.ndarray  # INPUT_SIZE x INPUT_SIZE x 3, uint8, BGR
    pads: tuple[float, float, float, float]  # left, top, right, bottom, fractions of the side


def prepare(img) -> Prepared:
    """dataset2metadata's geometry: pad to a centred square with white, bicubic resize."""
    from PIL import Image

    img = img.convert("RGB")
    w, h = img.size
    side = max(w, h)
    left, top = (side - w) // 2, (side - h) // 2
    canvas = Image.new("RGB", (side, side), (PAD_VALUE,) * 3)
    canvas.paste(img, (left, top))
    small = canvas.resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC)
    bgr = np.ascontiguousarray(np.asarray(small, np.uint8)[:, :, ::-1])
    return Prepared(bgr, (left / side, top / side, (side - w - left) / side,
                          (side - h - top) / side))


def detect(detector, image: Prepared) -> tuple[list[list[float]], np.ndarray]:
    """Boxes of one prepared image (fractions of the original image, clamped to [0, 1],
    in the detector's order: descending score) and their scores."""
    det, _kps = detector.detect(image.bgr, input_size=(INPUT_SIZE, INPUT_SIZE),
                                det_thresh=THRESHOLD)
    if len(det) == 0:
        return [], np.zeros(0, np.float32)
    left, top, right, bottom = image.pads
    s = float(INPUT_SIZE)
    x = (det[:, [0, 2]].astype(np.float64) - left * s) / ((1.0 - left - right) * s)
    y = (det[:, [1, 3]].astype(np.float64) - top * s) / ((1.0 - top - bottom) * s)
    boxes = np.clip(np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1), 0.0, 1.0)
    return boxes.tolist(), det[:, 4].copy()


def _as_list(batch):
    return batch


def detect_rows(rows_loc, reader: ImageReader, detector, batch_size: int, workers: int,
                on_images: Callable[[int], None] | None = None
                ) -> tuple[list[list[list[float]] | None], np.ndarray]:
    """``face_bboxes`` of one metadata file's rows (None where there is no image) and the
    image status per row (0 no image, 1 ok, 2 undecodable). Images are decoded and
    prepared by ``workers`` processes; the detector runs here, row after row."""
    from torch.utils.data import DataLoader

    shard, offset, size = rows_loc
    loader = DataLoader(DecodedImages(reader, shard, offset, size, prepare),
                        batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_as_list, persistent_workers=False)
    boxes: list[list[list[float]] | None] = []
    status = np.zeros(len(shard), np.int8)
    for batch in loader:
        for image, code in batch:
            status[len(boxes)] = code
            boxes.append(detect(detector, image)[0] if image is not None else None)
        if on_images:
            on_images(len(batch))
    return boxes, status


def has_upstream_boxes(pool, meta: Path) -> bool:
    """True when ``meta`` holds boxes that came with the pool: a pool not written by
    ``build-pool`` (a CommonPool download) whose ``face_bboxes`` has a list in every row.
    ``build-pool`` fills the column with empty lists before any detection ran."""
    from datacomp_sci.pool.build import POOL_FORMAT

    if pool.info.get("format") == POOL_FORMAT:
        return False
    if COLUMN not in pq.read_schema(meta).names:
        return False
    return pq.read_table(meta, columns=[COLUMN]).column(COLUMN).null_count == 0


def detection_missing(pool, record: dict) -> list[Path]:
    """The metadata files of ``pool`` whose faces were neither detected by ``embed``
    (``record``: pool.json's ``embeddings``) nor shipped with the pool."""
    files = record.get("files", {})
    out = []
    for meta in pool.metadata_files:
        f = files.get(meta.stem, {})
        if f.get("state") == "done" and "faces" in f.get("slots", []):
            continue
        if not has_upstream_boxes(pool, meta):
            out.append(meta)
    return out
