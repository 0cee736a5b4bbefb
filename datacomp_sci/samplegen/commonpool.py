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


#: Stable URLs: the ``.invalid`` top-level domain never resolves (RFC 2606), so the demo
#: serves them itself, as an HTTP proxy on 127.0.0.1 (:func:`serve`); the downloaded
#: ``url`` column, error messages and shards do not depend on a random port.
DEMO_HOST = "commonpool-demo.invalid"
BASE_URL = f"http://{DEMO_HOST}"


def write_commonpool_source(root: str | Path, n: int = 400, seed: int = 0) -> Path:
    """Write ``root/images/*.jpg`` and ``root/metadata/commonpool_tiny.parquet`` (URLs
    under :data:`BASE_URL`, served by :func:`serve`)."""
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
    (root / "metadata").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=COMMONPOOL_SCHEMA),
                   root / "metadata" / "commonpool_tiny.parquet")
    return root


@contextmanager
def serve(folder: str | Path, requests: list[str] | None = None) -> Iterator[str]:
    """While the block runs, answer HTTP requests for :data:`BASE_URL` from ``folder``: an
    HTTP proxy on 127.0.0.1 (loopback only) set as ``http_proxy`` for this process and its
    children (img2dataset's downloader follows it through urllib); other hosts get 403.
    Yields the proxy's URL; the environment is restored afterwards. ``requests`` receives
    the path of every request served (a request log for tests)."""
    import functools
    import http.server
    import os
    import threading
    from urllib.parse import urlsplit

    class Proxy(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _local(self) -> bool:
            url = urlsplit(self.path)
            if url.hostname != DEMO_HOST:
                self.send_error(403, f"this demo proxy serves {DEMO_HOST} only")
                return False
            self.path = url.path or "/"
            if requests is not None:
                requests.append(self.path)
            return True

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self._local():
                super().do_GET()

        def do_HEAD(self):  # noqa: N802
            if self._local():
                super().do_HEAD()

    handler = functools.partial(Proxy, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{srv.server_address[1]}"
    names = ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(http_proxy=proxy, HTTP_PROXY=proxy)
    for k in ("no_proxy", "NO_PROXY"):
        os.environ.pop(k, None)
    try:
        yield proxy
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        srv.shutdown()
        srv.server_close()
