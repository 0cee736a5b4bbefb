"""Small builders shared by several test modules (import as ``from helpers import ...``)."""

from __future__ import annotations


def pdf_pages(media_box: str, contents: list[bytes]) -> bytes:
    """A PDF with one page per content stream, all of one MediaBox."""
    n = len(contents)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode()]
    for i, content in enumerate(contents):
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [{media_box}] /Contents "
                    f"{4 + 2 * i} 0 R /Resources << >> >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)
