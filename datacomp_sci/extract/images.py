"""Image stage of build-pool: sniff, decode or rasterise, resize, encode.

Every figure file ends as an RGB JPEG whose longest side is at most ``image_size``,
with img2dataset's semantics (``resize_mode="keep_ratio_largest"``,
``resize_only_if_bigger=True``, ``encode_format="jpg"``, ``encode_quality=95``):

* Target size: ``scale = image_size / max(w, h)``, each side ``max(1, round(side * scale))``
  (Python ``round``), exactly the arithmetic of albumentations' ``LongestMaxSize`` that
  img2dataset's resizer calls; rasters are never upscaled.
* Resampling: Pillow's ``HAMMING`` filter. img2dataset shrinks with cv2's ``INTER_AREA``
  (exact pixel-area averaging), which Pillow lacks: its ``BOX`` filter samples the box at
  pixel centres, so it equals ``INTER_AREA`` only at integer factors and aliases at others
  (4.6 grey levels mean difference at 1.1x on a grainy photo). ``HAMMING`` (support 1,
  antialiased) stays closest over all factors: 0.5 to 1.9 levels mean difference from
  ``INTER_AREA`` for factors 1.1x to 8x. No JPEG ``draft()`` shrink-on-load: it changes
  pixels (up to 9 levels), so the output equals the full-decode path.
* Transparency is composited on white (as img2dataset's alpha matting does), after the
  resize, which is equivalent because Pillow resizes RGBA premultiplied. Palette, CMYK,
  greyscale, LA and 16-bit inputs become 8-bit RGB (16-bit is scaled by 255/65535).
* EXIF orientation is NOT applied: img2dataset (``cv2.IMREAD_UNCHANGED``) and pdfTeX both
  use the stored pixel grid, so the figure looks as it does in the paper. ``original_width``
  and ``original_height`` are the stored pixel size.
* Multi-frame GIF/TIFF and animated PNG: the first frame.
* PDF (pypdfium2, first page) and EPS/PS (ghostscript in a sandboxed subprocess) have no
  native resolution: they are rendered so the longest side is ``image_size``, never above
  ``ImageLimits.vector_dpi_max``. Their ``original_width``/``original_height`` are the page
  or bounding-box size in PostScript points (1/72 inch, pdfinfo's unit), rounded; a PDF
  page's /Rotate is applied, so they are the displayed page's width and height.

Output bytes are deterministic: no EXIF, ICC profile, comment or dpi is written, and
chroma subsampling is fixed at 4:2:0 (what OpenCV writes at quality 95).

Anything wrong with an input raises :class:`ImageSkipped` with a stable ``reason``
(see :data:`SKIP_REASONS`) that the caller counts; nothing else escapes for bad input.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".eps", ".ps", ".tif", ".tiff", ".bmp", ".webp",
)
SKIP_REASONS: tuple[str, ...] = (
    "empty_file", "file_too_large", "decompression_bomb", "undecodable", "zero_size",
    "unsupported_format", "converter_timeout", "converter_failed", "converter_missing",
    "pdf_error",
)
JPEG_QUALITY = 95  # img2dataset's default encode_quality for jpg
RESAMPLE = Image.Resampling.HAMMING  # closest Pillow filter to cv2.INTER_AREA (module doc)
MAX_PAGE_POINTS = 14_400.0  # PDF's largest page side (200 inches) without UserUnit

_EXT_FORMAT = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".pdf": "pdf",
    ".eps": "eps", ".ps": "ps", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp",
    ".webp": "webp",
}
# Pillow plugins allowed per sniffed format: nothing else is ever tried on the bytes.
_PIL_FORMATS = {
    "png": ("PNG",), "jpeg": ("JPEG", "MPO"), "gif": ("GIF",), "tiff": ("TIFF",),
    "bmp": ("BMP", "DIB"), "webp": ("WEBP",),
}
_DOS_EPS_MAGIC = b"\xc5\xd0\xd3\xc6"
_BBOX_RE = re.compile(
    rb"^%%BoundingBox:[ \t]*([-+0-9.eE]+)[ \t]+([-+0-9.eE]+)[ \t]+([-+0-9.eE]+)[ \t]+([-+0-9.eE]+)",
    re.MULTILINE,
)
_BBOX_SCAN_BYTES = 1 << 16
_LETTER_POINTS = (612.0, 792.0)  # page size ghostscript renders a PS file without bbox on


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on what one input may cost."""

    max_pixels: int = 89_478_485  # Pillow's default bomb limit; decoded pixels above -> skip
    max_file_bytes: int = 256 * 2**20  # source file size bound
    converter_timeout_s: float = 30.0  # ghostscript wall-clock limit
    converter_memory_bytes: int = 2 * 2**30  # RLIMIT_AS for the converter subprocess
    vector_dpi_max: float = 600.0  # never render a vector page above this dpi


@dataclass(frozen=True)
class PreparedImage:
    """One encoded output image and the size of its source."""

    jpeg: bytes
    width: int
    height: int
    original_width: int
    original_height: int
    image_format: str  # format of the ORIGINAL file: png jpeg gif tiff bmp webp pdf eps ps


class ImageSkipped(Exception):
    """An input that cannot become an image; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # survive a trip through multiprocessing
        return (type(self), (self.reason, self.detail))


# --- format sniffing --------------------------------------------------------------------

def _sniff_magic(data: bytes) -> str | None:
    head = data[:32]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head.startswith(_DOS_EPS_MAGIC):
        return "eps"
    if head.startswith(b"%!"):
        return "eps" if b"EPSF" in data[:64].split(b"\n", 1)[0] else "ps"
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header
        return "pdf"
    return None


def sniff_format(data: bytes, name: str) -> str | None:
    """The file's format by magic bytes first, then by extension; None when unknown."""
    return _sniff_magic(data) or _EXT_FORMAT.get(Path(name).suffix.lower())


# --- sizes ------------------------------------------------------------------------------

def target_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """img2dataset's ``keep_ratio_largest`` output size with ``resize_only_if_bigger``."""
    if max(width, height) <= image_size:
        return width, height
    return _scaled(width, height, image_size / max(width, height))


def _scaled(width: float, height: float, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def _vector_scale(width_pt: float, height_pt: float, image_size: int, dpi_max: float) -> float:
    """Pixels per point so the longest side is ``image_size``, capped at ``dpi_max``."""
    return min(image_size / max(width_pt, height_pt), dpi_max / 72.0)


# --- raster decoding -------------------------------------------------------------------

def _declared_zero_size(data: bytes, fmt: str) -> bool:
    """Headers Pillow rejects without saying why: a 0 width or height is declared."""
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return w == 0 or h == 0
    if fmt == "gif" and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return w == 0 or h == 0
    if fmt == "bmp" and len(data) >= 26 and struct.unpack("<I", data[14:18])[0] >= 40:
        w, h = struct.unpack("<ii", data[18:26])
        return w == 0 or h == 0
    return False


def _open_raster(data: bytes, fmt: str) -> Image.Image:
    """Open (header only) with just the sniffed format's Pillow plugin."""
    with warnings.catch_warnings():
        # We check the size against our own limit; Pillow's global one is not ours.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=_PIL_FORMATS[fmt])


def _check_declared(im: Image.Image, limits: ImageLimits) -> None:
    width, height = im.size
    if width <= 0 or height <= 0:
        raise ImageSkipped("zero_size", f"image declares {width}x{height} pixels")
    if width * height > limits.max_pixels:
        raise ImageSkipped(
            "decompression_bomb",
            f"image declares {width}x{height} = {width * height} pixels "
            f"(limit {limits.max_pixels})",
        )


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _wide_to_l(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale to 8-bit ``L``.

    ``I;16*`` is scaled by 255/65535. ``I`` and ``F`` keep values already in 0..255, are
    scaled as 16-bit when they fit 0..65535 (floats in 0..1 as fractions), and are
    stretched min..max otherwise.
    """
    arr = np.asarray(im)
    if im.mode.startswith("I;16"):
        return Image.fromarray(_sixteen_to_eight(arr))
    arr = np.nan_to_num(arr.astype(np.float64))
    lo, hi = float(arr.min()), float(arr.max())
    if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
        arr = arr * 255.0
    elif im.mode != "F" and lo >= 0.0 and 255.0 < hi <= 65535.0:
        return Image.fromarray(_sixteen_to_eight(arr))
    elif lo < 0.0 or hi > 255.0:
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.rint(arr).astype(np.uint8))


def _working_mode(im: Image.Image) -> Image.Image:
    """Convert a loaded image to one of L, LA, RGB, RGBA (8-bit, resizable)."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        return _wide_to_l(im)
    if mode == "La":
        return im.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return im.convert("RGBA" if mode == "RGBa" else "RGB")
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _decode_raster(im: Image.Image) -> Image.Image:
    """Decode the pixels of an opened image (first frame) into a working mode."""
    im.load()
    return _working_mode(im)


def _resize(im: Image.Image, image_size: int) -> Image.Image:
    size = target_size(im.width, im.height, image_size)
    if size == im.size:
        return im
    return im.resize(size, RESAMPLE)


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on a white background."""
    if im.mode in ("LA", "RGBA"):
        base = Image.new("RGB", im.size, (255, 255, 255))
        base.paste(im.convert("RGB"), (0, 0), im.getchannel("A"))
        return base
    return im if im.mode == "RGB" else im.convert("RGB")


def _encode_jpeg(im: Image.Image) -> bytes:
    im.info = {}  # never carry a comment, ICC profile or dpi over from the source
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0", optimize=False)
    return buf.getvalue()


def _finish(im: Image.Image, image_size: int) -> Image.Image:
    return _flatten(_resize(im, image_size))


def _prepare_raster(data: bytes, fmt: str, image_size: int, limits: ImageLimits
                    ) -> PreparedImage:
    if _declared_zero_size(data, fmt):
        raise ImageSkipped("zero_size", f"{fmt} header declares a 0 width or height")
    try:
        im = _open_raster(data, fmt)
        _check_declared(im, limits)
        original = im.size
        out = _finish(_decode_raster(im), image_size)
    except ImageSkipped:
        raise
    except Image.DecompressionBombError as err:
        raise ImageSkipped("decompression_bomb", str(err)) from None
    except Exception as err:  # a decoder fed hostile bytes may raise anything
        raise ImageSkipped("undecodable", f"{fmt}: {type(err).__name__}: {err}") from None
    return PreparedImage(_encode_jpeg(out), out.width, out.height, original[0], original[1], fmt)


# --- PDF ------------------------------------------------------------------------------

def _render_pdf(data: bytes, image_size: int, limits: ImageLimits, page_no: int = 1,
                clip: tuple | None = None) -> tuple[Image.Image, tuple[float, float]]:
    """Page ``page_no`` (1-based; the first by default) rendered to RGB on white, cut to
    ``clip`` when given (see :func:`clip_region`); returns the image and its size in pt."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument(data)
    try:
        if len(pdf) < 1:
            raise ImageSkipped("pdf_error", "PDF has no pages")
        if page_no > len(pdf):
            raise ImageSkipped("pdf_error", f"no page {page_no}: the PDF has {len(pdf)}")
        page = pdf[page_no - 1]
        _check_media_box(page.get_mediabox(fallback_ok=False))
        page_w, page_h = page.get_size()
        _check_page_points(page_w, page_h)
        x0, y0, x1, y1 = clip_region(clip, page_w, page_h)
        width_pt, height_pt = x1 - x0, y1 - y0
        scale = _vector_scale(width_pt, height_pt, image_size, limits.vector_dpi_max)
        width, height = _scaled(width_pt, height_pt, scale)
        full_w, full_h = _scaled(page_w, page_h, scale)
        bitmap = pdfium.PdfBitmap.new_native(width, height, pdfium_c.FPDFBitmap_BGR,
                                             rev_byteorder=True)
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
        flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
        # the whole page at this scale, shifted so the clip region lands on the bitmap
        pdfium_c.FPDF_RenderPageBitmap(bitmap, page, -round(x0 * scale),
                                       -round((page_h - y1) * scale), full_w, full_h, 0, flags)
        image = bitmap.to_pil()  # an RGB copy of the buffer
        page.close()
    finally:
        pdf.close()
    return image, (width_pt, height_pt)


def clip_region(clip: tuple | None, page_w: float, page_h: float
                ) -> tuple[float, float, float, float]:
    """The part of a page to render, ``(x0, y0, x1, y1)`` in pt from its lower-left corner:
    the whole page, ``("viewport", llx, lly, urx, ury)`` or ``("trim", left, bottom,
    right, top)`` (graphicx's keys), limited to the page."""
    if not clip:
        return 0.0, 0.0, page_w, page_h
    kind, a, b, c, d = clip
    box = (a, b, c, d) if kind == "viewport" else (a, b, page_w - c, page_h - d)
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(page_w, box[2]), min(page_h, box[3])
    if not (x1 > x0 and y1 > y0):
        raise ImageSkipped("zero_size", f"{kind} {a:g} {b:g} {c:g} {d:g} leaves nothing of a "
                                        f"{page_w:g}x{page_h:g} pt page")
    return x0, y0, x1, y1


def _check_media_box(box: tuple[float, float, float, float] | None) -> None:
    """pdfium silently shows a degenerate MediaBox as a Letter page; we skip it."""
    if box is not None and (box[2] == box[0] or box[3] == box[1]):
        raise ImageSkipped("zero_size", f"page MediaBox {list(box)} has no area")


def _check_page_points(width_pt: float, height_pt: float) -> None:
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise ImageSkipped("pdf_error", f"page size {width_pt}x{height_pt} pt is not finite")
    if width_pt <= 0 or height_pt <= 0:
        raise ImageSkipped("zero_size", f"page size {width_pt}x{height_pt} pt")
    if max(width_pt, height_pt) > MAX_PAGE_POINTS:
        raise ImageSkipped(
            "pdf_error", f"page size {width_pt:.0f}x{height_pt:.0f} pt exceeds "
                         f"{MAX_PAGE_POINTS:.0f} pt (PDF's largest page)")


def _prepare_pdf(data: bytes, image_size: int, limits: ImageLimits, page: int = 1,
                 clip: tuple | None = None) -> PreparedImage:
    import pypdfium2 as pdfium

    try:
        image, (width_pt, height_pt) = _render_pdf(data, image_size, limits, page, clip)
    except ImageSkipped:
        raise
    except pdfium.PdfiumError as err:
        raise ImageSkipped("pdf_error", f"pdfium: {err}") from None
    except Exception as err:  # a hostile PDF must not end the run
        raise ImageSkipped("pdf_error", f"{type(err).__name__}: {err}") from None
    out = _flatten(image)
    return PreparedImage(_encode_jpeg(out), out.width, out.height,
                         round(width_pt), round(height_pt), "pdf")


# --- EPS / PS via ghostscript -----------------------------------------------------------

def _dos_eps_postscript(data: bytes) -> bytes:
    """The PostScript section of a DOS EPS binary (header C5D0D3C6, offsets LE)."""
    if len(data) < 30:
        raise ImageSkipped("undecodable", "DOS EPS header is truncated")
    start, length = struct.unpack("<II", data[4:12])
    if start < 30 or length == 0 or start + length > len(data):
        raise ImageSkipped("undecodable",
                           f"DOS EPS PostScript section {start}+{length} outside the file")
    return data[start:start + length]


def _bounding_box(ps: bytes) -> tuple[float, float] | None:
    """Width and height in points from ``%%BoundingBox`` (header, or trailer if atend)."""
    for chunk in (ps[:_BBOX_SCAN_BYTES], ps[-_BBOX_SCAN_BYTES:]):
        for match in _BBOX_RE.finditer(chunk):
            try:
                x0, y0, x1, y1 = (float(v) for v in match.groups())
            except ValueError:
                continue
            if all(math.isfinite(v) for v in (x0, y0, x1, y1)):
                return x1 - x0, y1 - y0
    return None


def _child_limits(memory_bytes: int, output_bytes: int, cpu_s: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # No fork/exec/threads (a %pipe% that slipped past -dSAFER fails). The kernel
        # does not apply this limit to root, where -dSAFER alone guards %pipe%.
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    return apply


def _gs_command(gs: str, dpi: float, eps_crop: bool) -> list[str]:
    page = ["-dEPSCrop"] if eps_crop else ["-dFIXEDMEDIA", "-sPAPERSIZE=letter"]
    return [
        gs, "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET", "-dNOPROMPT", "-sDEVICE=png16m",
        f"-r{dpi:.6f}", "-dTextAlphaBits=4", "-dGraphicsAlphaBits=4", "-dFirstPage=1",
        "-dLastPage=1", *page, "-sOutputFile=out.png", "-f", "in.ps",
    ]


def _run_sandboxed(cmd: list[str], workdir: str, limits: ImageLimits, output_bytes: int) -> int:
    """Run without a shell in ``workdir``: bare environment, stdin closed, rlimits, own
    process group (killed whole on timeout). stdout/stderr go to ``workdir/log`` (bounded
    by RLIMIT_FSIZE, so a chatty program cannot fill memory). Returns the exit status.

    ``TMPDIR`` is the one variable besides ``PATH``: ghostscript's -dSAFER lets a job
    write anywhere in its temp directory, which would otherwise be the shared /tmp."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "TMPDIR": workdir}
    with open(Path(workdir, "log"), "wb") as log:
        try:
            proc = subprocess.Popen(
                cmd, cwd=workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
                preexec_fn=_child_limits(limits.converter_memory_bytes, output_bytes,
                                         math.ceil(limits.converter_timeout_s) + 1),
            )
        except (OSError, subprocess.SubprocessError) as err:
            raise ImageSkipped("converter_failed", f"cannot start ghostscript: {err}") from None
    try:
        return _wait_exit(proc, limits.converter_timeout_s)
    except subprocess.TimeoutExpired:
        raise ImageSkipped("converter_timeout",
                           f"ghostscript ran over {limits.converter_timeout_s:g} s") from None
    finally:
        if proc.poll() is None:
            _kill_group(proc)


def _wait_exit(proc: subprocess.Popen, timeout: float) -> int:
    """Wait for the child's exit with a timeout, waking the moment it exits.

    ``Popen.wait(timeout=...)`` polls with sleeps of up to 50 ms, a large share of a
    typical 100 ms ghostscript run; a pidfd (Linux >= 5.3) becomes readable on exit.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or an old kernel
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _error_summary(log_path: Path) -> str:
    """Ghostscript's ``Error: /name in ...`` line, else its last line (200 chars at most)."""
    with open(log_path, "rb") as f:
        lines = [ln.strip() for ln in f.read(1 << 16).decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    errors = [ln for ln in lines if ln.startswith("Error: /")]
    if errors:
        return errors[0][:200]
    return lines[-1][:200] if lines else "no message"


def _ghostscript_png(ps: bytes, dpi: float, eps_crop: bool, image_size: int,
                     limits: ImageLimits) -> bytes:
    gs = shutil.which("gs")
    if gs is None:
        raise ImageSkipped("converter_missing",
                           "ghostscript (gs) is not on PATH: install it, e.g. "
                           "`apt-get install ghostscript` or `conda install ghostscript`")
    output_bytes = 16 * 2**20 + 12 * image_size * image_size  # PNG of ~image_size^2 RGB
    workdir = tempfile.mkdtemp(prefix="datacomp-sci-gs-")
    try:
        Path(workdir, "in.ps").write_bytes(ps)
        status = _run_sandboxed(_gs_command(gs, dpi, eps_crop), workdir, limits, output_bytes)
        out = Path(workdir, "out.png")
        if status != 0 or not out.is_file() or out.stat().st_size == 0:
            raise ImageSkipped("converter_failed", f"ghostscript exit {status}: "
                                                   f"{_error_summary(Path(workdir, 'log'))}")
        return out.read_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _postscript_source(data: bytes) -> bytes:
    return _dos_eps_postscript(data) if data.startswith(_DOS_EPS_MAGIC) else data


def _render_postscript(ps: bytes, image_size: int, limits: ImageLimits
                       ) -> tuple[Image.Image, tuple[float, float]]:
    """Rasterise with ghostscript; returns an RGB image and the box size in points."""
    bbox = _bounding_box(ps)
    width_pt, height_pt = bbox if bbox is not None else _LETTER_POINTS
    if width_pt <= 0 or height_pt <= 0:
        raise ImageSkipped("zero_size", f"%%BoundingBox is {width_pt:g}x{height_pt:g} pt")
    dpi = 72.0 * _vector_scale(width_pt, height_pt, image_size, limits.vector_dpi_max)
    png = _ghostscript_png(ps, dpi, bbox is not None, image_size, limits)
    try:
        im = _open_raster(png, "png")
        _check_declared(im, limits)
        return _decode_raster(im), (width_pt, height_pt)
    except ImageSkipped:
        raise
    except Exception as err:
        raise ImageSkipped("converter_failed", f"unreadable ghostscript output: {err}") from None


def _prepare_postscript(data: bytes, fmt: str, image_size: int, limits: ImageLimits
                        ) -> PreparedImage:
    image, (width_pt, height_pt) = _render_postscript(_postscript_source(data), image_size, limits)
    out = _finish(image, image_size)  # ghostscript may overshoot the bbox by a pixel
    return PreparedImage(_encode_jpeg(out), out.width, out.height,
                         round(width_pt), round(height_pt), fmt)


# --- entry points ------------------------------------------------------------------------

def _check_bytes(data: bytes, limits: ImageLimits) -> None:
    if not data:
        raise ImageSkipped("empty_file", "file is empty")
    if len(data) > limits.max_file_bytes:
        raise ImageSkipped("file_too_large",
                           f"{len(data)} bytes (limit {limits.max_file_bytes})")


def _checked_format(data: bytes, name: str) -> str:
    fmt = sniff_format(data, name)
    if fmt is None:
        suffix = Path(name).suffix.lower() or "(no extension)"
        raise ImageSkipped("unsupported_format",
                           f"{name!r}: unknown content, extension {suffix}")
    return fmt


def prepare_image(data: bytes, name: str, image_size: int = 512,
                  limits: ImageLimits = ImageLimits(), page: int = 1,
                  clip: tuple | None = None) -> PreparedImage:
    r"""Decode or rasterise one figure file and encode it as a bounded RGB JPEG.

    ``name`` is only used for its extension (when the magic bytes say nothing) and in
    messages. ``page`` (1-based) and ``clip`` (:func:`clip_region`) apply to PDF figures
    (``\includegraphics[page=2,viewport=...,clip]``); other formats ignore them. Raises
    :class:`ImageSkipped` for every input problem.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    _check_bytes(data, limits)
    fmt = _checked_format(data, name)
    if fmt == "pdf":
        return _prepare_pdf(data, image_size, limits, page, clip)
    if fmt in ("eps", "ps"):
        return _prepare_postscript(data, fmt, image_size, limits)
    return _prepare_raster(data, fmt, image_size, limits)


def codec_floor(data: bytes, name: str, image_size: int = 512) -> float:
    """Seconds spent on decode (or rasterise) + resize + encode alone, for benchmarks.

    The same code path as :func:`prepare_image` without the checks and bookkeeping
    around it; a bad input raises as in :func:`prepare_image`.
    """
    fmt = _checked_format(data, name)
    limits = ImageLimits()
    start = time.perf_counter()
    if fmt == "pdf":
        _encode_jpeg(_flatten(_render_pdf(data, image_size, limits)[0]))
    elif fmt in ("eps", "ps"):
        image = _render_postscript(_postscript_source(data), image_size, limits)[0]
        _encode_jpeg(_finish(image, image_size))
    else:
        _encode_jpeg(_finish(_decode_raster(_open_raster(data, fmt)), image_size))
    return time.perf_counter() - start
