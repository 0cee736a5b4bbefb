"""The image stage: sizes like img2dataset, colour handling, vector rendering, skips, sandbox."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import hang_guard, pdf_pages
from PIL import Image, ImageStat, JpegImagePlugin

from datacomp_sci.extract import images
from datacomp_sci.extract.images import (
    SKIP_REASONS,
    SUPPORTED_EXTENSIONS,
    ImageLimits,
    ImageSkipped,
    codec_floor,
    prepare_image,
    sniff_format,
    target_size,
)
from datacomp_sci.samplegen import figures

# --- helpers -----------------------------------------------------------------------------


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _decode(jpeg: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(jpeg))
    im.load()
    return im


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(
        ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _pdf(media_box: str, content: bytes = b"", encrypt: bool = False) -> bytes:
    """A one-page PDF with a correct xref table."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [{media_box}] /Contents 4 0 R "
        f"/Resources << >> >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    if encrypt:  # standard handler, RC4-40; U matches no user password (not even "")
        objs.append(b"<< /Filter /Standard /V 1 /R 2 /P -4 /O <" + b"11" * 32
                    + b"> /U <" + b"ab" * 32 + b"> >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    trailer = b"/Size %d /Root 1 0 R /ID [<00112233445566778899aabbccddeeff>" % (len(objs) + 1)
    trailer += b"<00112233445566778899aabbccddeeff>]"
    if encrypt:
        trailer += b" /Encrypt 5 0 R"
    out += b"trailer\n<< " + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _eps(width: int, height: int, body: str = "", x0: int = 0, y0: int = 0) -> bytes:
    draw = body or f"0.2 setgray {x0} {y0} {width} {height} rectfill"
    return (f"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: {x0} {y0} {x0 + width} {y0 + height}\n"
            f"%%EndComments\n{draw}\nshowpage\n%%EOF\n").encode()


def _skip_reason(data: bytes, name: str, **kw) -> ImageSkipped:
    with pytest.raises(ImageSkipped) as info:
        prepare_image(data, name, **kw)
    assert info.value.reason in SKIP_REASONS
    return info.value


def _rgb_png(width: int, height: int) -> bytes:
    return figures.photo_bytes(width * 7 + height, width, height, "PNG")


# --- sizes -------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "expected"), [
    ((900, 600), (512, 341)),   # landscape
    ((600, 900), (341, 512)),   # portrait
    ((300, 200), (300, 200)),   # small: never upscaled
    ((512, 512), (512, 512)),   # exactly the size: untouched
    ((513, 100), (512, 100)),   # 99.8 rounds to 100
    ((2000, 3), (512, 1)),      # 0.77 rounds to 1
    ((5000, 1), (512, 1)),      # 0.1 is kept at 1 pixel
])
def test_target_size_is_keep_ratio_largest_shrink_only(size, expected):
    assert target_size(*size, 512) == expected


def test_jpeg_output_size_mode_and_original_size():
    out = prepare_image(figures.photo_bytes(1, 900, 600), "photo.jpg")
    assert (out.width, out.height, out.original_width, out.original_height) == (512, 341, 900, 600)
    assert out.image_format == "jpeg"
    assert out.jpeg[:3] == b"\xff\xd8\xff"
    im = _decode(out.jpeg)
    assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (512, 341))
    assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0, fixed


def test_sizes_match_img2dataset_resizer():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network from albumentations
    resizer_mod = pytest.importorskip("img2dataset.resizer")
    resizer = resizer_mod.Resizer(image_size=256, resize_mode="keep_ratio_largest",
                                  resize_only_if_bigger=True)
    for w, h in [(900, 600), (600, 900), (1000, 333), (1025, 7), (300, 200), (257, 255)]:
        data = _rgb_png(w, h)
        ref_jpeg, ref_w, ref_h, ref_ow, ref_oh, err = resizer(io.BytesIO(data))
        assert err is None
        ours = prepare_image(data, "x.png", image_size=256)
        assert (ours.width, ours.height) == (ref_w, ref_h), (w, h)
        assert (ours.original_width, ours.original_height) == (ref_ow, ref_oh)
        # Pillow HAMMING vs cv2 INTER_AREA, two JPEG encoders, grainy photo: same picture
        ref = np.asarray(Image.open(io.BytesIO(ref_jpeg)).convert("RGB"), dtype=np.int16)
        diff = np.abs(np.asarray(_decode(ours.jpeg), dtype=np.int16) - ref)
        assert diff.mean() < 3.0, (w, h, diff.mean())


def test_output_is_deterministic_and_carries_no_metadata():
    src = Image.open(io.BytesIO(figures.photo_bytes(3, 640, 480)))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    exif[0x010F] = "camera"
    data = _encode(src, "JPEG", exif=exif, comment=b"secret", dpi=(300, 300),
                   icc_profile=b"\x00" * 128)
    first = prepare_image(data, "a.jpg")
    assert prepare_image(data, "a.jpg").jpeg == first.jpeg
    im = _decode(first.jpeg)
    assert len(im.getexif()) == 0
    assert "comment" not in im.info and "icc_profile" not in im.info and "dpi" not in im.info
    # EXIF orientation is not applied (like img2dataset and pdfTeX): stored grid kept
    assert (first.width, first.height, first.original_width, first.original_height) == (
        512, 384, 640, 480)


# --- colour handling -----------------------------------------------------------------

def _only_pixel(out) -> tuple[int, ...]:
    arr = np.asarray(_decode(out.jpeg))
    return tuple(int(v) for v in np.median(arr.reshape(-1, 3), axis=0))


@pytest.mark.parametrize(("image", "fmt", "expected"), [
    (Image.new("RGBA", (40, 30), (255, 0, 0, 0)), "PNG", (255, 255, 255)),    # transparent
    (Image.new("RGBA", (40, 30), (255, 0, 0, 255)), "PNG", (254, 0, 0)),      # opaque red
    (Image.new("RGBA", (40, 30), (0, 0, 0, 128)), "PNG", (127, 127, 127)),    # half black
    (Image.new("LA", (40, 30), (0, 0)), "PNG", (255, 255, 255)),
    (Image.new("LA", (40, 30), (100, 255)), "PNG", (100, 100, 100)),
    (Image.new("L", (40, 30), 77), "PNG", (77, 77, 77)),
    (Image.new("1", (40, 30), 1), "PNG", (255, 255, 255)),
    (Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", (254, 0, 0)),
    (Image.new("CMYK", (40, 30), (0, 0, 0, 255)), "TIFF", (0, 0, 0)),
    (Image.new("I;16", (40, 30), 65535), "TIFF", (255, 255, 255)),
    (Image.new("I;16", (40, 30), 32896), "PNG", (128, 128, 128)),
    (Image.new("F", (40, 30), 0.5), "TIFF", (128, 128, 128)),
    (Image.new("RGB", (40, 30), (0, 0, 255)), "BMP", (0, 0, 254)),
    (Image.new("RGB", (40, 30), (0, 128, 0)), "WEBP", (0, 128, 0)),
])
def test_modes_become_rgb_on_white(image, fmt, expected):
    out = prepare_image(_encode(image, fmt), "x")
    assert _decode(out.jpeg).mode == "RGB"
    assert (out.width, out.height) == (40, 30)
    got = _only_pixel(out)
    assert all(abs(g - e) <= 2 for g, e in zip(got, expected, strict=True)), (got, expected)


def test_palette_with_transparency_composites_on_white():
    im = Image.new("P", (20, 10), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (10, 0, 20, 10))
    out = prepare_image(_encode(im, "PNG", transparency=0), "p.png")
    arr = np.asarray(_decode(out.jpeg)).astype(int)
    assert np.abs(arr[5, 2] - (255, 255, 255)).max() <= 3   # transparent red -> white
    assert np.abs(arr[5, 17] - (0, 0, 255)).max() <= 3      # opaque blue stays blue


def test_sixteen_bit_rgb_png_is_scaled_not_clipped():
    raw = b"".join(b"\x00" + struct.pack(">HHH", 65535, 32896, 0) * 8 for _ in range(4))
    out = prepare_image(_png(8, 4, 16, 2, raw), "rgb16.png")
    got = _only_pixel(out)
    assert abs(got[0] - 255) <= 2 and abs(got[1] - 128) <= 2 and got[2] <= 2


def test_first_frame_of_animations_and_multipage_tiff():
    red, blue = Image.new("RGB", (30, 20), (255, 0, 0)), Image.new("RGB", (30, 20), (0, 0, 255))
    for fmt in ("GIF", "PNG", "TIFF", "WEBP"):
        data = _encode(red, fmt, save_all=True, append_images=[blue])
        assert Image.open(io.BytesIO(data)).n_frames == 2, fmt
        got = _only_pixel(prepare_image(data, "anim"))
        assert got[0] >= 240 and got[2] <= 15, (fmt, got)


@pytest.mark.parametrize(("make", "fmt"), [
    (lambda: figures.gif_bytes(2, 700, 300), "gif"),
    (lambda: figures.tiff_bytes(2, 300, 700), "tiff"),
    (lambda: _encode(Image.new("RGB", (1024, 64), "white"), "BMP"), "bmp"),
    (lambda: _encode(Image.new("RGB", (64, 1024), "white"), "WEBP"), "webp"),
])
def test_raster_formats_sniffed_and_resized(make, fmt):
    data = make()
    out = prepare_image(data, "no_extension")
    assert out.image_format == fmt
    assert max(out.width, out.height) == 512
    assert (out.width, out.height) == target_size(out.original_width, out.original_height, 512)


# --- vector figures ------------------------------------------------------------------

def test_pdf_rendered_to_longest_side_with_points_as_original_size():
    out = prepare_image(figures.plot_bytes(1, "pdf"), "plot.pdf")
    assert (out.width, out.height, out.original_width, out.original_height) == (512, 384, 288, 216)
    assert out.image_format == "pdf"
    portrait = prepare_image(_pdf("0 0 100 300", b"0 0 1 rg 0 0 100 300 re f"), "p.pdf")
    assert (portrait.width, portrait.height) == (171, 512)
    assert _only_pixel(portrait)[2] >= 250 and _only_pixel(portrait)[0] <= 5  # blue filled
    assert prepare_image(figures.plot_bytes(1, "pdf"), "plot.pdf").jpeg == out.jpeg


def test_tiny_vector_page_is_capped_at_vector_dpi_max():
    out = prepare_image(_pdf("0 0 36 18"), "tiny.pdf")  # half an inch wide
    assert (out.width, out.height) == (300, 150)           # 600 dpi, not 512 px
    low = prepare_image(_pdf("0 0 36 18"), "tiny.pdf", limits=ImageLimits(vector_dpi_max=144))
    assert (low.width, low.height) == (72, 36)
    assert _only_pixel(out) == (255, 255, 255)  # empty page renders on white


@pytest.mark.parametrize(("box", "expected"), [
    ((300, 100), (512, 171)), ((100, 300), (171, 512)), ((1000, 999), (512, 511)),
    ((5000, 3000), (512, 307)), ((37, 53), (308, 442)),  # last one: capped at 600 dpi
])
def test_eps_rendered_from_bounding_box(box, expected):
    out = prepare_image(_eps(*box, x0=13, y0=7), "fig.eps")
    assert (out.width, out.height) == expected
    assert (out.original_width, out.original_height) == box
    assert out.image_format == "eps"
    assert _only_pixel(out)[0] <= 60  # the filled box is drawn, cropped to the bbox


def test_matplotlib_eps_and_determinism():
    data = figures.plot_bytes(1, "eps")
    out = prepare_image(data, "plot.eps")
    assert (out.width, out.height, out.original_width, out.original_height) == (512, 384, 288, 216)
    assert prepare_image(data, "plot.eps").jpeg == out.jpeg


def test_dos_eps_binary_header_is_unwrapped():
    body = _eps(300, 100)
    header = b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIIIH", 30, len(body), 0, 0, 0, 0, 0xFFFF)
    out = prepare_image(header + body + b"\x00" * 16, "dos.eps")
    assert (out.width, out.height, out.image_format) == (512, 171, "eps")
    broken = header[:4] + struct.pack("<II", 30, 10**6) + header[12:] + body
    assert _skip_reason(broken, "dos.eps").reason == "undecodable"


def test_postscript_without_bbox_renders_first_letter_page():
    ps = (b"%!PS-Adobe-3.0\n%%Pages: 2\n%%Page: 1 1\n0 0 moveto 612 792 lineto stroke showpage\n"
          b"%%Page: 2 2\n0 0 612 792 rectfill showpage\n")
    out = prepare_image(ps, "doc.ps")
    assert (out.width, out.height, out.original_width, out.original_height) == (396, 512, 612, 792)
    assert out.image_format == "ps"
    assert np.asarray(_decode(out.jpeg)).mean() > 250  # page 1 (a line), not the black page 2


# --- skips ---------------------------------------------------------------------------

def test_skip_reasons_for_bad_bytes():
    assert _skip_reason(b"", "a.png").reason == "empty_file"
    big = _skip_reason(_rgb_png(20, 20), "a.png", limits=ImageLimits(max_file_bytes=100))
    assert big.reason == "file_too_large"
    assert _skip_reason(figures.truncated_jpeg(1), "t.jpg").reason == "undecodable"
    assert _skip_reason(figures.not_an_image(), "x.png").reason == "undecodable"
    assert _skip_reason(figures.not_an_image(), "notes.txt").reason == "unsupported_format"
    assert _skip_reason(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "f.svg").reason == (
        "unsupported_format")
    assert _skip_reason(_png(0, 5, 8, 2, b""), "zero.png").reason == "zero_size"
    assert _skip_reason(_eps(0, 50), "zero.eps").reason == "zero_size"
    assert _skip_reason(_pdf("0 0 0 50"), "zero.pdf").reason == "zero_size"


def test_decompression_bombs_skipped_before_decoding():
    with hang_guard():
        assert _skip_reason(figures.png_bomb(), "bomb.png").reason == "decompression_bomb"
    # below Pillow's own limit but above ours: our limit decides, not Pillow's global one
    small = _skip_reason(figures.png_bomb(2000, 2000), "bomb.png",
                         limits=ImageLimits(max_pixels=1_000_000))
    assert small.reason == "decompression_bomb" and "4000000" in small.detail


def test_pdf_errors():
    assert _skip_reason(_pdf("0 0 100 100", encrypt=True), "locked.pdf").reason == "pdf_error"
    assert _skip_reason(b"%PDF-1.4\n1 0 obj garbage", "broken.pdf").reason == "pdf_error"
    huge = _skip_reason(_pdf("0 0 100000 100"), "huge.pdf")
    assert huge.reason == "pdf_error" and "14400" in huge.detail


def test_converter_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    err = _skip_reason(figures.plot_bytes(1, "eps"), "plot.eps")
    assert err.reason == "converter_missing" and "install" in err.detail


def test_image_size_must_be_positive():
    with pytest.raises(ValueError, match="image_size"):
        prepare_image(_rgb_png(10, 10), "a.png", image_size=0)


# --- ghostscript sandbox -----------------------------------------------------------------

@pytest.fixture()
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile at an empty folder so leftovers can be seen."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_looping_eps_killed_within_timeout(private_tmp):
    with hang_guard(30):  # the EPS loops forever: only the 1 s converter timeout ends it
        err = _skip_reason(figures.looping_eps(), "loop.eps",
                           limits=ImageLimits(converter_timeout_s=1.0))
    assert err.reason == "converter_timeout"
    assert list(private_tmp.iterdir()) == []


def test_hostile_eps_cannot_read_files_or_run_commands(private_tmp):
    marker = Path("/tmp/datacomp_sci_pwned")
    marker.unlink(missing_ok=True)
    err = _skip_reason(figures.hostile_eps(), "evil.eps")
    assert err.reason == "converter_failed" and "invalidfileaccess" in err.detail
    assert not marker.exists()
    assert list(private_tmp.iterdir()) == []


def _leak_probe(action: str) -> str:
    """Paint the page black only when ``action`` succeeds (errors are caught)."""
    return (f"/ok {{ mark {action} cleartomark true }} stopped {{ cleartomark false }} if def "
            f"ok {{ 0 setgray }} {{ 1 setgray }} ifelse 0 0 100 100 rectfill")


@pytest.mark.parametrize("action", [
    "(/etc/passwd) (r) file 64 string readstring pop pop",
    "(%pipe%echo pwned) (r) file closefile",
    f"({tempfile.gettempdir()}/datacomp_sci_probe) (w) file closefile",
    "(escaped.txt) (w) file closefile",
])
def test_sandbox_denies_reads_writes_and_pipes(action, private_tmp):
    probe = Path(tempfile.gettempdir(), "datacomp_sci_probe")
    probe.unlink(missing_ok=True)
    out = prepare_image(_eps(100, 100, _leak_probe(action)), "probe.eps")
    assert _only_pixel(out) == (255, 255, 255)  # white: the action failed
    assert not probe.exists()
    assert list(private_tmp.iterdir()) == []


def test_sandbox_probe_paints_black_when_action_allowed():
    out = prepare_image(_eps(100, 100, _leak_probe("1 pop")), "probe.eps")
    assert _only_pixel(out) == (0, 0, 0)


# --- sniffing and the codec floor ----------------------------------------------------

def test_sniff_format_magic_first_then_extension():
    png = _rgb_png(4, 4)
    assert sniff_format(png, "mislabelled.jpg") == "png"
    assert sniff_format(figures.photo_bytes(1, 8, 8), "x.png") == "jpeg"
    assert sniff_format(figures.plot_bytes(1, "eps"), "x.ps") == "eps"
    assert sniff_format(b"%!PS-Adobe-3.0\n", "x.eps") == "ps"
    assert sniff_format(b"junk\n%PDF-1.5\n", "x") == "pdf"
    assert sniff_format(b"????", "FIG.TIF") == "tiff"
    assert sniff_format(b"????", "fig.svg") is None
    by_ext = {ext: sniff_format(b"????", "f" + ext) for ext in SUPPORTED_EXTENSIONS}
    assert by_ext == {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif",
                      ".pdf": "pdf", ".eps": "eps", ".ps": "ps", ".tif": "tiff",
                      ".tiff": "tiff", ".bmp": "bmp", ".webp": "webp"}


def test_codec_floor_times_the_same_work(monkeypatch):
    data = figures.photo_bytes(4, 900, 600)
    calls = []
    real = images._encode_jpeg
    monkeypatch.setattr(images, "_encode_jpeg", lambda im: calls.append(im.size) or real(im))
    seconds = codec_floor(data, "p.jpg")
    assert 0.0 < seconds < 5.0
    assert calls == [(512, 341)]
    assert 0.0 < codec_floor(figures.plot_bytes(1, "pdf"), "p.pdf") < 5.0


def test_converter_memory_is_bounded():
    def hog(megabytes: int) -> bytes:
        return _eps(100, 100, f"/a {megabytes} array def 0 1 {megabytes - 1} "
                              f"{{ a exch 1000000 string put }} for 0 0 100 100 rectfill")

    limits = ImageLimits(converter_memory_bytes=256 * 2**20)
    assert prepare_image(hog(10), "small.eps", limits=limits).width == 512
    err = _skip_reason(hog(400), "hog.eps", limits=limits)
    assert err.reason == "converter_failed" and "VMerror" in err.detail


def test_skip_survives_pickling_for_worker_processes():
    err = pickle.loads(pickle.dumps(ImageSkipped("pdf_error", "no pages")))
    assert (type(err), err.reason, err.detail, str(err)) == (
        ImageSkipped, "pdf_error", "no pages", "pdf_error: no pages")


def test_pdf_page_rotation_is_applied_to_image_and_sizes():
    page = _pdf("0 0 200 100", b"0 0 1 rg 0 0 100 100 re f")
    out = prepare_image(page.replace(b"/MediaBox", b"/Rotate 90 /MediaBox"), "rot.pdf")
    assert (out.width, out.height, out.original_width, out.original_height) == (256, 512, 100, 200)
    arr = np.asarray(_decode(out.jpeg)).astype(int)
    assert np.abs(arr[10, 128] - (0, 0, 255)).max() <= 3     # left half of the page -> top
    assert np.abs(arr[500, 128] - (255, 255, 255)).max() <= 3


# --- PDF pages and clipping (\includegraphics[page=N, viewport=..., clip]) ----------------

RED_BLUE = pdf_pages("0 0 200 100", [
    b"1 0 0 rg 0 0 200 100 re f",  # page 1: red
    b"1 0 0 rg 0 0 100 100 re f 0 0 1 rg 100 0 100 100 re f",  # page 2: red | blue
])


def _mean(out) -> tuple[int, ...]:
    return tuple(round(v) for v in ImageStat.Stat(_decode(out.jpeg)).mean)


def test_pdf_page_option_renders_that_page():
    first = prepare_image(RED_BLUE, "x.pdf")
    second = prepare_image(RED_BLUE, "x.pdf", page=2)
    assert first.jpeg != second.jpeg
    assert _mean(first)[2] < 10 and _mean(second)[2] > 100  # page 2 is half blue
    assert (second.original_width, second.original_height) == (200, 100)
    assert _skip_reason(RED_BLUE, "x.pdf", page=3).reason == "pdf_error"


@pytest.mark.parametrize("clip", [("viewport", 100, 0, 200, 100), ("trim", 100, 0, 0, 0)])
def test_pdf_viewport_or_trim_with_clip_keeps_that_region(clip):
    out = prepare_image(RED_BLUE, "x.pdf", page=2, clip=clip)
    assert (out.original_width, out.original_height) == (100, 100)
    assert (out.width, out.height) == (512, 512)
    r, g, b = _mean(out)
    assert b > 245 and r < 10  # only the blue half


def test_pdf_clip_outside_the_page_is_a_counted_skip():
    assert _skip_reason(RED_BLUE, "x.pdf", clip=("viewport", 300, 0, 400, 100)).reason \
        == "zero_size"
