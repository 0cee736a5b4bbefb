"""Reading tar archives that may be damaged, member by member, with bounded cost.

Python's ``tarfile`` stops at the first bad header (or raises from deep inside, e.g. an
``OverflowError`` for a base-256 size field too large for a seek), so one damaged header
in an arXiv bulk tar used to cost every paper after it. :func:`walk` reads the same
members as ``tarfile`` on a well-formed archive (headers are parsed by
``tarfile.TarInfo.frombuf``, the reference parser; pax ``x`` and GNU ``L`` long-name
records are applied the same way), and on a damaged one it *resynchronises*: it scans
forward, one 512-byte block at a time, for the next block that carries the ``ustar``
magic, a valid header checksum and a name the caller accepts (for bulk tars: the
``YYMM/<arXiv id>.gz|.pdf`` member pattern), records the damaged byte range and goes on
from there. What it cannot read is reported as :class:`Damage`, never raised.

Damage it recognises (docs/guide/hostile-input.md lists each with what is recorded):

* a header whose checksum does not match, or that ``frombuf`` refuses;
* a header with a valid checksum whose size field is wrong: the block after the claimed
  data is not a header, or (for bulk tars) a valid member header sits inside the data;
* a zeroed header (an end-of-archive block followed by more members);
* a member re-typed as a FIFO or device that still carries its data: only that member
  is skipped;
* a size too large to skip cheaply: a seekable source (a local or ranged file, or bytes
  in memory) seeks past it; a compressed or streamed source would have to inflate or
  download it, so at most ``skip_budget`` bytes are scanned for the next header and the
  rest of the archive is reported lost past that;
* a stream that ends early or whose compression is corrupt: the rest is reported lost.

Resynchronisation needs the ``ustar`` magic, which every POSIX/GNU/pax writer (GNU tar,
bsdtar, Python) puts in each header; arXiv's bulk tars and PMC packages are such tars.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = 512
_MAGIC = b"ustar"
_MAGIC_AT = 257
_MAX_EXT_HEADER = 1 << 20  # pax / GNU long-name payloads
_CHUNK = 1 << 20
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_LINKS = (tarfile.LNKTYPE, tarfile.SYMTYPE)
_SPECIAL = (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.GNUTYPE_SPARSE)
_EXTENSION = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
              tarfile.GNUTYPE_LONGLINK, tarfile.SOLARIS_XHDTYPE)
_PAX_RECORD = re.compile(rb"(\d{1,20}) ([^=\x00]{1,256})=")


class StreamError(Exception):
    """The byte stream itself failed (corrupt compression, a read error, a bound)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class Member:
    """One archive member. ``data`` is set for regular files the caller wanted."""

    name: str
    kind: str  # "file" | "dir" | "link" | "special"
    size: int
    offset: int  # of its header
    data: bytes | None = None


@dataclass
class Damage:
    """A damaged byte range: ``[offset, end)``; ``end`` None when reading stopped there."""

    offset: int
    end: int | None
    reason: str  # bad_header | bad_size | zeroed_header | truncated | unreadable_stream
    name: str | None  # the member the damaged header names, when legible
    detail: str


def _block(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


class Source:
    """Sequential bytes of an archive: in memory, a file object, or gzip inflated on the
    fly (concatenated members too). ``max_bytes`` bounds the bytes delivered or skipped
    by reading (inflated bytes for gzip); seeks on a random-access source cost nothing."""

    def __init__(self, data: bytes | None = None, fobj=None, max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.pos = 0  # absolute offset of the next byte
        self.delivered = 0
        self._buf = bytearray()
        self._i = 0
        self._raw = fobj
        self._z = None
        self._eof = data is not None
        self._data = memoryview(data) if data is not None else None
        self._size: int | None = len(data) if data is not None else None
        if fobj is not None:
            head = self._raw_read(_CHUNK)
            if head[:2] == b"\x1f\x8b":
                self._z = zlib.decompressobj(wbits=31)
                self._pending = head
            else:
                self._buf += head
                self._size = _file_size(fobj)

    # -- properties --------------------------------------------------------------------
    @property
    def compressed(self) -> bool:
        return self._z is not None

    @property
    def random_access(self) -> bool:
        return self._data is not None or (self._z is None and self._size is not None)

    # -- reading -----------------------------------------------------------------------
    def _raw_read(self, n: int) -> bytes:
        try:
            return self._raw.read(n)
        except Exception as e:  # any transport error ends the stream, it never escapes
            raise StreamError("unreadable_input", f"{type(e).__name__}: {e}") from e

    def _fill(self) -> None:
        if self._eof:
            return
        if self._z is None:
            chunk = self._raw_read(_CHUNK)
            if not chunk:
                self._eof = True
            self._buf += chunk
            return
        if not self._pending:
            self._pending = self._raw_read(_CHUNK)
            if not self._pending:
                self._eof = True
                if not self._z.eof:
                    raise StreamError("corrupt_gzip", "compressed stream ends early")
                return
        try:
            out = self._z.decompress(self._pending, _CHUNK)
        except zlib.error as e:
            raise StreamError("corrupt_gzip", str(e)) from e
        self._pending = self._z.unconsumed_tail
        if self._z.eof:
            rest = self._z.unused_data
            if rest.startswith(b"\x1f\x8b"):  # the next gzip member
                self._z = zlib.decompressobj(wbits=31)
                self._pending = rest
            else:  # trailing garbage after the last member is ignored, as gzip does
                self._pending = b""
                self._eof = True
        self._buf += out

    def _take(self, n: int) -> bytes:
        if self._data is not None:
            out = bytes(self._data[self.pos:self.pos + n])
        else:
            while len(self._buf) - self._i < n and not self._eof:
                self._fill()
            out = bytes(self._buf[self._i:self._i + n])
            self._i += len(out)
            if self._i > 8 * _CHUNK:
                del self._buf[:self._i]
                self._i = 0
        self.pos += len(out)
        return out

    def _charge(self, n: int) -> None:
        self.delivered += n
        if self.max_bytes is not None and self.delivered > self.max_bytes:
            raise StreamError("archive_too_large",
                              f"read past {self.max_bytes} bytes (max_archive_bytes)")

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end)."""
        self._charge(n)
        return self._take(n)

    def peek(self, n: int) -> bytes:
        if self._data is not None:
            return bytes(self._data[self.pos:self.pos + n])
        while len(self._buf) - self._i < n and not self._eof:
            self._fill()
        return bytes(self._buf[self._i:self._i + n])

    def unread(self, data: bytes) -> None:
        """Put back bytes just read (the scan found a header inside them)."""
        if not data:
            return
        self.pos -= len(data)
        self.delivered -= len(data)
        if self._data is None:
            self._buf = bytearray(data) + self._buf[self._i:]
            self._i = 0

    def seek(self, pos: int) -> None:
        """Random-access sources only: continue at absolute ``pos`` (clipped to the end)."""
        pos = min(pos, self._size) if self._size is not None else pos
        if self._data is not None:
            self.pos = pos
            return
        try:
            self._raw.seek(pos)
        except Exception as e:
            raise StreamError("unreadable_input", f"{type(e).__name__}: {e}") from e
        self._buf, self._i, self.pos, self._eof = bytearray(), 0, pos, False

    def at_end(self) -> bool:
        return not self.peek(1)


def _file_size(fobj) -> int | None:
    """Size of a seekable file object (None when it cannot seek)."""
    try:
        if not fobj.seekable():
            return None
        here = fobj.tell()
        size = fobj.seek(0, 2)
        fobj.seek(here)
        return int(size)
    except Exception:
        return None


# --- headers ------------------------------------------------------------------------------

def parse_header(block: bytes) -> tarfile.TarInfo | None:
    """The header in a 512-byte block, or None (bad checksum, zero block, garbage)."""
    if len(block) != BLOCK:
        return None
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except Exception:  # tarfile's own errors, and ValueError/OverflowError on odd fields
        return None


def _legible_name(block: bytes) -> str | None:
    name = block[:100].split(b"\x00", 1)[0]
    if not name or len(name) < 3:
        return None
    text = name.decode("utf-8", "replace")
    return text if text.isprintable() else None


def _renamed(ti: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    other = tarfile.TarInfo(name)
    other.type = ti.type
    return other


def _looks_like_header(block: bytes) -> bool:
    """A damaged header rather than file data: the ustar magic, or a name field (printable,
    NUL-padded) and octal digits where the mode field is."""
    if block[_MAGIC_AT:_MAGIC_AT + 5] == _MAGIC:
        return True
    name = block[:100]
    end = name.find(b"\x00")
    return (end > 0 and not name[end:].strip(b"\x00") and _legible_name(block) is not None
            and re.fullmatch(rb"[0-7 ]*\x00?", block[100:108]) is not None)


def _kind(ti: tarfile.TarInfo, pax: dict[str, str]) -> str:
    if any(k.startswith("GNU.sparse") for k in pax):
        return "special"
    if ti.type in _REGULAR:
        return "file"
    if ti.type == tarfile.DIRTYPE:
        return "dir"
    if ti.type in _LINKS:
        return "link"
    return "special"


def _data_length(ti: tarfile.TarInfo) -> int:
    """Bytes of data that follow the header, as tarfile counts them: regular files and
    unknown types carry their size; directories, links and devices none."""
    if ti.type in tarfile.REGULAR_TYPES or ti.type not in tarfile.SUPPORTED_TYPES:
        return ti.size
    return 0


def _parse_pax(payload: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != 0:
        m = _PAX_RECORD.match(payload, pos)
        if m is None:
            raise ValueError("malformed pax record")
        length = int(m.group(1))
        end = pos + length
        if length <= len(m.group(0)) or end > len(payload) or payload[end - 1:end] != b"\n":
            raise ValueError("malformed pax record length")
        key = m.group(2).decode("utf-8", "surrogateescape")
        out[key] = payload[m.end():end - 1].decode("utf-8", "surrogateescape")
        pos = end
    return out


# --- the walk ---------------------------------------------------------------------------------

Accept = Callable[[tarfile.TarInfo], bool]


def any_header(ti: tarfile.TarInfo) -> bool:
    return True


class _Walker:
    def __init__(self, src: Source, want: Callable[[Member], bool], accept: Accept,
                 scan_member_data: bool, skip_budget: int):
        self.src, self.want, self.accept = src, want, accept
        self.scan_member_data, self.skip_budget = scan_member_data, skip_budget

    _parsed: tuple[int, tarfile.TarInfo] | None = None

    def valid(self, block: bytes) -> bool:
        """A block that may follow a member (read at the source's position): the end, a
        zero block or a parseable header (kept, so the walk parses each header once)."""
        if len(block) < BLOCK or block.count(0) == len(block):
            return True  # the end, or an archive cut inside the next header: this one is whole
        ti = parse_header(block)
        if ti is not None:
            self._parsed = (self.src.pos, ti)
        return ti is not None

    def _header(self, off: int, block: bytes) -> tarfile.TarInfo | None:
        if self._parsed is not None and self._parsed[0] == off:
            ti = self._parsed[1]
            self._parsed = None
            return ti
        return parse_header(block)

    def _candidate(self, chunk: bytes, start: int = 0) -> int | None:
        """Offset in ``chunk`` (block-aligned, >= start) of a header ``accept`` takes."""
        i = chunk.find(_MAGIC, start + _MAGIC_AT)
        while i >= 0:
            b0 = i - _MAGIC_AT
            if b0 % BLOCK == 0:
                ti = parse_header(chunk[b0:b0 + BLOCK])
                if ti is not None and self.accept(ti):
                    return b0
            i = chunk.find(_MAGIC, i + 1)
        return None

    def resync(self, budget: int | None = None) -> int | None:
        """Scan forward from the current (block-aligned) position for an accepted header;
        leave the source at it and return its offset, or None at the end / past budget."""
        scanned = 0
        while budget is None or scanned < budget:
            n = _CHUNK if budget is None else min(_CHUNK, _block(budget - scanned))
            chunk = self.src.read(n)
            if not chunk:
                return None
            r = self._candidate(chunk)
            if r is not None:
                self.src.unread(chunk[r:])
                return self.src.pos
            scanned += len(chunk)
            if len(chunk) < n:
                return None
        return None

    def run(self) -> Iterator[Member | Damage]:
        src = self.src
        pax: dict[str, str] = {}
        longname: str | None = None
        ext_off = 0
        while True:
            off = src.pos
            buf = src.read(BLOCK)
            if not buf:
                return  # no end-of-archive marker: tarfile accepts that too
            if len(buf) < BLOCK:
                yield Damage(off, None, "truncated", None, "archive ends inside a header")
                return
            if buf.count(0) == BLOCK:  # end of archive, unless members follow (zeroed header)
                found = self.resync(self.skip_budget)
                if found is None:
                    return
                yield Damage(off, found, "zeroed_header", None,
                             "an all-zero header block inside the archive")
                continue
            ti = self._header(off, buf)
            if ti is None:
                found = self.resync()
                yield Damage(off, found, "bad_header", _legible_name(buf),
                             "header checksum or fields invalid")
                if found is None:
                    return
                pax, longname = {}, None
                continue
            if ti.type in _EXTENSION:
                if not pax and longname is None:
                    ext_off = off
                raw = src.read(_block(ti.size)) if ti.size <= _MAX_EXT_HEADER else b""
                try:
                    if len(raw) < ti.size or ti.size > _MAX_EXT_HEADER:
                        raise ValueError(f"extended header of {ti.size} bytes")
                    payload = raw[:ti.size]
                    if ti.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
                        pax.update(_parse_pax(payload))
                    elif ti.type == tarfile.GNUTYPE_LONGNAME:
                        longname = payload.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
                except ValueError as e:
                    if src.random_access:
                        src.seek(off + BLOCK)
                    else:
                        src.unread(raw)
                    found = self.resync()
                    yield Damage(off, found, "bad_header", None, str(e))
                    if found is None:
                        return
                    pax, longname = {}, None
                continue
            name = pax.get("path") or longname or ti.name
            if name != ti.name and not self.accept(_renamed(ti, name)) and self.accept(ti):
                # an extension record that is really damaged data would rename an intact
                # member to something the caller does not accept: keep the header's name
                yield Damage(ext_off, off, "bad_header", None,
                             "an extended header (long name or pax record) that names no "
                             "valid member")
                name = ti.name
            if ti.type == tarfile.DIRTYPE or name.endswith("/"):
                name = name.rstrip("/")
            try:
                size = int(pax["size"]) if "size" in pax else ti.size
            except ValueError:
                size = ti.size
            member = Member(name, _kind(ti, pax), size, off)
            ti.size = size
            pax, longname = {}, None
            yield from self._member(ti, member)
            if self._stop:
                return

    _stop = False

    def _member(self, ti: tarfile.TarInfo, member: Member) -> Iterator[Member | Damage]:
        src = self.src
        off = member.offset
        length = _block(_data_length(ti))
        if member.kind != "file" and length == 0 and ti.size > 0:
            # a directory, link, device or FIFO carrying data (a re-typed member): skip
            # its data when a header follows it, otherwise go on as tarfile would
            if not self.valid(src.peek(BLOCK)) and ti.size <= self.skip_budget:
                data = src.read(_block(ti.size))
                if self.valid(src.peek(BLOCK)):
                    yield member
                    return
                src.unread(data)
            yield member
            return
        if member.kind != "file" or not self.want(member):
            yield from self._skip(member, length)
            return
        data = src.read(length)
        nxt = src.peek(BLOCK)
        inner = self._candidate(data) if self.scan_member_data else None
        if len(data) == length and self.valid(nxt) and inner is None:
            member.data = data[:member.size]
            yield member
            return
        # the size field is wrong (or the next header is damaged): a header inside the
        # claimed data says where the next member really starts
        r = inner if inner is not None else self._candidate(data)
        if r is not None:
            src.unread(data[r:])
            yield Damage(off, src.pos, "bad_size", member.name,
                         f"header says {member.size} bytes, the next header is at {src.pos}")
            return
        if len(data) < length:
            yield Damage(off, None, "truncated", member.name,
                         f"archive ends inside this member ({len(data)} of {length} bytes)")
            self._stop = True
            return
        if _looks_like_header(nxt):
            member.data = data[:member.size]
            yield member  # the data is whole; the next header is the damaged one
            return
        found = self.resync()  # the size is too small: its data goes on past it
        yield Damage(off, found, "bad_size", member.name,
                     f"header says {member.size} bytes, but data follows them")
        if found is None:
            self._stop = True

    def _skip(self, member: Member, length: int) -> Iterator[Member | Damage]:
        """Pass over a member's data without keeping it."""
        src, off = self.src, member.offset
        end = off + BLOCK + length
        if length == 0:
            yield member
            return
        if src.random_access and (src._size is None or end <= src._size):
            src.seek(end)
            if self.valid(src.peek(BLOCK)):
                yield member
                return
            src.seek(off + BLOCK)  # the size or the next header is wrong: which one?
            found = self.resync(min(length, self.skip_budget))
            if found is None:
                src.seek(end)
                yield member  # the next header is the damaged one: the walk resyncs there
                return
        elif src.random_access:  # claims to run past the end of the archive
            src.seek(off + BLOCK)
            found = self.resync()
        else:
            found = self.resync(min(length, self.skip_budget))
            if found is None and src.pos == end:
                yield member
                return
        if found is not None:
            yield Damage(off, found, "bad_size", member.name,
                         f"header says {member.size} bytes, the next header is at {found}")
            return
        if length > self.skip_budget and not src.at_end():
            yield Damage(off, None, "unskippable_member", member.name,
                         f"header says {member.size} bytes; passing over more than "
                         f"{self.skip_budget} bytes of a compressed or streamed archive "
                         "would mean inflating or downloading them, so reading stops here")
        else:
            yield Damage(off, None, "truncated", member.name, "archive ends inside this member")
        self._stop = True


def walk(src: Source, want: Callable[[Member], bool], accept: Accept = any_header,
         scan_member_data: bool = False, skip_budget: int = 1 << 30) -> Iterator[Member | Damage]:
    """Every member of a tar, in order, with :class:`Damage` records where it is damaged.

    ``want(member)`` decides whether a regular file's data is read (``member.data``);
    ``accept(tarinfo)`` whether a header found by scanning may resume the walk;
    ``scan_member_data`` also checks each read member's data for an accepted header (a
    wrong size field that happens to land on a later header); ``skip_budget`` bounds the
    bytes scanned when a member cannot be passed over by seeking. Errors of the stream
    itself end the walk with a final ``Damage`` (``unreadable_stream``).
    """
    walker = _Walker(src, want, accept, scan_member_data, skip_budget)
    it = walker.run()
    while True:
        at = src.pos
        try:
            ev = next(it)
        except StopIteration:
            return
        except StreamError as e:
            yield Damage(at, None, "unreadable_stream", None, f"{e.reason}: {e.detail}")
            return
        yield ev
