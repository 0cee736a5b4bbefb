"""A small CommonPool-like pool for the demo: URL metadata plus images to serve.

CommonPool is a list of image URLs with captions and metadata (docs/formats.md, "CommonPool metadata");
DataComp users download it with img2dataset. The demo does the same against a loopback
HTTP server: ``write_commonpool_source`` writes the images and a CommonPool-schema
parquet whose ``url`` column points at ``BASE_URL``; ``serve`` serves the images.

The images are simple scenes (coloured shapes on coloured backgrounds) whose captions
say what is in them, so a tiny CLIP model can learn something from them; some captions
are not English, some images are small or elongated, and a few URLs are broken, so
that ``basic_filter`` and the download coverage report have something to show.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.core.schema import COMMONPOOL_SCHEMA
from datacomp_sci.core.util import serve_folder

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
           "yellow": (235, 210, 40), "purple": (140, 60, 170), "orange": (240, 140, 30),
           "white": (245, 245, 245), "black": (20, 20, 20)}
SHAPES = ("circle", "square", "triangle", "stripe")
NON_ENGLISH = ["un cercle rouge sur un fond bleu", "ein grünes Quadrat auf schwarzem Grund",
               "un triángulo amarillo sobre fondo blanco", "un quadrato viola su sfondo arancione"]
TEMPLATES = ["a photo of a {fg} {shape} on a {bg} background",
             "{fg} {shape} against {bg}", "a {fg} {shape}, {bg} backdrop, high quality photo",
             "stock image: {fg} {shape} on {bg}"]


def _scene(rng: np.random.Generator, fg: str, bg: str, shape: str, w: int, h: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (w, h), COLOURS[bg])
    d = ImageDraw.Draw(img)
    s = int(min(w, h) * rng.uniform(0.35, 0.7))
    x, y = int(rng.uniform(0, w - s)), int(rng.uniform(0, h - s))
    if shape == "circle":
        d.ellipse([x, y, x + s, y + s], fill=COLOURS[fg])
    elif shape == "square":
        d.rectangle([x, y, x + s, y + s], fill=COLOURS[fg])
    elif shape == "triangle":
        d.polygon([(x, y + s), (x + s, y + s), (x + s // 2, y)], fill=COLOURS[fg])
    else:
        d.rectangle([0, y, w, y + max(4, s // 4)], fill=COLOURS[fg])
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


BASE_URL = "http://127.0.0.1:{port}"


def write_commonpool_source(root: str | Path, n: int = 400, seed: int = 0) -> Path:
    """Write ``root/images/*.jpg`` and ``root/metadata/commonpool_tiny.parquet``.

    URLs contain ``{port}``: :func:`metadata_for_port` fills in the server's port.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    rows = []
    for i in range(n):
        fg, bg = rng.choice(names, 2, replace=False)
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        w, h = int(rng.integers(240, 640)), int(rng.integers(240, 640))
        if i % 17 == 3:
            w, h = 120, 90  # too small for basic_filter
        if i % 23 == 5:
            w, h = 640, 160  # aspect ratio 4 > 3
        data = _scene(rng, str(fg), str(bg), shape, w, h)
        if i % 29 == 7:
            text = NON_ENGLISH[i % len(NON_ENGLISH)]
        else:
            text = TEMPLATES[i % len(TEMPLATES)].format(fg=fg, bg=bg, shape=shape)
        broken = i % 41 == 11
        if not broken:
            (root / "images" / f"{i:05d}.jpg").write_bytes(data)
        rows.append({
            "uid": hashlib.sha256(f"commonpool-demo:{seed}:{i}".encode()).hexdigest()[:32],
            "url": BASE_URL + f"/images/{i:05d}.jpg",
            "text": text, "original_width": w, "original_height": h,
            "clip_b32_similarity_score": float(rng.uniform(0.15, 0.4)),
            "clip_l14_similarity_score": float(rng.uniform(0.1, 0.35)),
            "face_bboxes": [], "sha256": hashlib.sha256(data).hexdigest(),
        })
    (root / "template").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=COMMONPOOL_SCHEMA),
                   root / "template" / "commonpool_tiny.parquet")
    return root


def metadata_for_port(root: str | Path, port: int) -> Path:
    """Write ``root/metadata/*.parquet`` with the server's port in the URLs."""
    root = Path(root)
    t = pq.read_table(root / "template" / "commonpool_tiny.parquet")
    urls = [u.replace("{port}", str(port)) for u in t.column("url").to_pylist()]
    t = t.set_column(t.schema.get_field_index("url"), "url", pa.array(urls, pa.string()))
    (root / "metadata").mkdir(exist_ok=True)
    pq.write_table(t, root / "metadata" / "commonpool_tiny.parquet")
    return root / "metadata"


@contextmanager
def serve(folder: str | Path, requests: list[str] | None = None) -> Iterator[int]:
    """Serve ``folder`` on 127.0.0.1 (loopback only) for the duration; yields the port.
    ``requests`` receives the path of every request served."""
    with serve_folder(folder, requests) as base:
        yield int(base.rsplit(":", 1)[1])
