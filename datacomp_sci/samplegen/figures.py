"""Figure files for sample packages: matplotlib plots (PNG, PDF, EPS), synthetic
"photos" (JPEG), and hostile or broken images. Same arguments, same bytes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np

os.environ.setdefault("SOURCE_DATE_EPOCH", "0")  # matplotlib stamps PS/PDF dates from it


def _plot(seed: int, kind: str, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=size, dpi=100)
    x = np.linspace(0, 10, 200)
    if kind == "line":
        for k in range(3):
            ax.plot(x, np.sin(x * (k + 1) * 0.5 + rng.uniform(0, 3)) * rng.uniform(0.5, 2))
    elif kind == "scatter":
        ax.scatter(rng.normal(size=80), rng.normal(size=80), c=rng.uniform(size=80), s=12)
    elif kind == "bar":
        ax.bar(range(6), rng.uniform(1, 10, 6), color="tab:green")
    else:  # "image": a heat map
        ax.imshow(rng.normal(size=(24, 32)).cumsum(axis=0), cmap="viridis")
    ax.set_title(f"sample {seed}")
    return fig, plt


def plot_bytes(seed: int, fmt: str, kind: str = "line", size=(4.0, 3.0)) -> bytes:
    """A matplotlib figure as ``png``, ``pdf`` or ``eps`` bytes, byte-reproducible."""
    fig, plt = _plot(seed, kind, size)
    buf = io.BytesIO()
    meta = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None,
                                               "CreationDate": None},
            "eps": {"Creator": None}}[fmt]
    fig.savefig(buf, format=fmt, metadata=meta)
    plt.close(fig)
    return buf.getvalue()


def photo_bytes(seed: int, width: int = 900, height: int = 600, fmt: str = "JPEG") -> bytes:
    """A synthetic photograph-like image (smooth colour fields plus grain)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), dtype=np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.002, 0.02, 2).tolist() + [rng.uniform(0, 6)]
        img[..., c] = 127 + 100 * np.sin(xx * fx + yy * fy + ph)
    img += rng.normal(0, 12, img.shape)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if fmt.upper() == "JPEG":
        im.save(buf, format="JPEG", quality=90)
    else:
        im.save(buf, format=fmt)
    return buf.getvalue()


def gif_bytes(seed: int, width: int = 160, height: int = 100) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(photo_bytes(seed, width, height, "PNG"))).convert("P").save(buf, "GIF")
    return buf.getvalue()


def tiff_bytes(seed: int, width: int = 400, height: int = 300) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(photo_bytes(seed, width, height, "PNG"))).save(buf, "TIFF")
    return buf.getvalue()


# --- hostile and broken images --------------------------------------------------------

def png_bomb(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny PNG that declares ``width x height`` pixels (a decompression bomb)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(64)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def truncated_jpeg(seed: int) -> bytes:
    data = photo_bytes(seed, 300, 200)
    return data[: len(data) // 3]


def not_an_image() -> bytes:
    return b"this is not an image at all\n" * 10


def hostile_eps() -> bytes:
    """An EPS that tries to read /etc/passwd and to run a shell command."""
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 200 100\n"
        b"/f (/etc/passwd) (r) file def f 100 string readstring pop pop\n"
        b"(%pipe%touch /tmp/datacomp_sci_pwned) (w) file closefile\n"
        b"newpath 10 10 moveto 190 90 lineto stroke showpage\n%%EOF\n"
    )


def looping_eps() -> bytes:
    """An EPS that never finishes (must be killed by the converter's time limit)."""
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{ 1 pop } loop\nshowpage\n%%EOF\n"
