"""Fast member listing of local tar files with libarchive, for reshard's header index.

Python's ``tarfile`` parses all 20 fields of every header in Python: about 40 us per
member of an img2dataset shard (webdataset's ``TarWriter`` stores a float mtime, so each
member carries a PAX header as well), which made it the bottleneck of a first reshard.
libarchive, the C library behind bsdtar (bound through libarchive-c's ctypes module),
lists the same members about 7x faster.

libarchive is used only where it and ``tarfile`` provably read a tar alike, and
:func:`scan_regular_members` answers None for anything else, so the caller reads that tar
with ``tarfile``, the reference reader: every member a plain regular file (no
directories, links, devices or sparse files), ASCII names, a USTAR, PAX or GNU header
format (not V7, whose prefix field the two readers treat differently), no warning or
error from libarchive, data offsets consistent with the layout, and an end-of-archive
block right after the last member (where ``tarfile`` stops too). Either way the outputs
are the same; ``tests/test_tarscan.py`` checks both readers against each other on
well-formed and on damaged tars.

Without the libarchive shared library (``libarchive13`` on Debian/Ubuntu, part of
macOS), or with ``DATACOMP_SCI_TAR_READER=tarfile``, everything goes through ``tarfile``.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

_BLOCK = 512
_READ_BLOCK = 10240  # libarchive's read size (a tar record); longer data is skipped with lseek
_ARCHIVE_OK, _ARCHIVE_EOF = 0, 1
_AE_IFMT, _AE_IFREG = 0o170000, 0o100000
_FORMAT_BASE_MASK, _FORMAT_TAR = 0xFF0000, 0x30000  # the tar family; 0x30000 itself is V7
READERS = ("auto", "libarchive", "tarfile")
ENV_READER = "DATACOMP_SCI_TAR_READER"


class _Lib:
    """ctypes prototypes of the libarchive calls the scan makes, without libarchive-c's
    ``errcheck`` wrappers (which raise or log on every non-OK code; the scan handles
    codes itself). The shared library is the one libarchive-c located and loaded."""

    def __init__(self, dll: ctypes.CDLL) -> None:
        p, i, ll = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong

        def fn(name: str, argtypes: list, restype):
            f = dll[f"archive_{name}"]  # a new function object: libarchive-c's stays as it is
            f.argtypes, f.restype = argtypes, restype
            return f

        self.read_new = fn("read_new", [], p)
        self.read_free = fn("read_free", [p], i)
        self.support_format_tar = fn("read_support_format_tar", [p], i)
        self.open_fd = fn("read_open_fd", [p, i, ctypes.c_size_t], i)
        self.next_header2 = fn("read_next_header2", [p, p], i)
        self.format = fn("format", [p], i)
        self.filter_bytes = fn("filter_bytes", [p, i], ll)
        self.entry_new = fn("entry_new", [], p)
        self.entry_free = fn("entry_free", [p], None)
        self.entry_pathname = fn("entry_pathname", [p], ctypes.c_char_p)
        self.entry_size = fn("entry_size", [p], ll)
        self.entry_size_is_set = fn("entry_size_is_set", [p], i)
        self.entry_filetype = fn("entry_filetype", [p], i)
        self.entry_hardlink = fn("entry_hardlink", [p], ctypes.c_char_p)
        self.entry_sparse_count = fn("entry_sparse_count", [p], i)


@cache
def _load() -> tuple[_Lib | None, str]:
    """The libarchive bindings, or None and why not."""
    try:
        from libarchive import ffi  # locates the library (LIBARCHIVE env var, find_library)
    except (ImportError, OSError, TypeError) as e:  # libarchive-c raises TypeError if not found
        return None, f"libarchive is not available ({type(e).__name__}: {e})"
    try:
        return _Lib(ffi.libarchive), f"libarchive ({ffi.libarchive_path})"
    except AttributeError as e:
        return None, f"libarchive at {ffi.libarchive_path} lacks a function ({e})"


def resolve_reader(reader: str | None = None) -> tuple[str, str]:
    """The reader a scan will use for ``reader`` (``auto``, ``libarchive``, ``tarfile``;
    None: ``$DATACOMP_SCI_TAR_READER`` or ``auto``), and a line saying which and why.

    ``libarchive`` asked for explicitly but missing is an error; ``auto`` falls back."""
    reader = reader or os.environ.get(ENV_READER) or "auto"
    if reader not in READERS:
        raise ValueError(f"unknown tar reader {reader!r}: choose one of {', '.join(READERS)}")
    if reader == "tarfile":
        return "tarfile", "tarfile (chosen)"
    lib, why = _load()
    if lib is not None:
        return "libarchive", f"{why}, tarfile for tars it cannot vouch for"
    if reader == "libarchive":
        raise RuntimeError(f"{why}: install it (Debian/Ubuntu: apt-get install libarchive13) "
                           "or choose --tar-reader tarfile")
    return "tarfile", f"tarfile: {why}; install libarchive13 for faster first reshards"


TRUNCATED = "truncated archive: {size} bytes, the end marker is missing"


def end_problem(fd: int, end: int) -> str | None:
    """Why the tar on ``fd`` does not end properly where its members stop (``end``), or
    None: there must be a zero block there (where tarfile stops), and not a lone one with
    data after it (GNU tar warns of it; the members that follow would be lost without a
    word)."""
    blocks = os.pread(fd, 2 * _BLOCK, end)
    if len(blocks) < _BLOCK:
        return TRUNCATED.format(size=os.fstat(fd).st_size)
    if any(blocks[:_BLOCK]):
        return (f"damaged archive: no valid tar header at byte {end}; "
                "the members after it are not read")
    if any(blocks[_BLOCK:]):
        return (f"damaged archive: a lone zero block at byte {end} is followed by more data; "
                "the members after it are not read")
    return None


def scan_regular_members(fd: int) -> list[tuple[str, int, int]] | None:
    """``(name, data offset, size)`` of every member of the uncompressed tar open on
    ``fd`` (a regular file), in archive order; None when libarchive is missing or the tar
    is not one it reads exactly as ``tarfile`` does (see the module docstring).

    Reads with ``pread``/its own descriptor position from offset 0; the caller's file
    position is moved."""
    lib, _ = _load()
    if lib is None:
        return None
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    a = lib.read_new()
    if not a:
        return None
    entry = lib.entry_new()
    try:
        if not entry or lib.support_format_tar(a) != _ARCHIVE_OK \
                or lib.open_fd(a, fd, _READ_BLOCK) != _ARCHIVE_OK:
            return None
        out: list[tuple[str, int, int]] = []
        end = 0  # end of the last member's data, padded to a block
        next_header, pathname, entry_size = lib.next_header2, lib.entry_pathname, lib.entry_size
        filetype, hardlink, sparse = lib.entry_filetype, lib.entry_hardlink, lib.entry_sparse_count
        position, fmt, size_is_set = lib.filter_bytes, lib.format, lib.entry_size_is_set
        while True:
            r = next_header(a, entry)
            if r == _ARCHIVE_EOF:
                break
            if r != _ARCHIVE_OK or filetype(entry) & _AE_IFMT != _AE_IFREG or hardlink(entry) \
                    or sparse(entry) or not size_is_set(entry):
                return None
            f = fmt(a)
            if f & _FORMAT_BASE_MASK != _FORMAT_TAR or f == _FORMAT_TAR:
                return None
            raw = pathname(entry)
            if raw is None or not raw.isascii():
                return None
            offset, n = position(a, 0), entry_size(entry)
            # the data starts on a block boundary after at least one header block
            if offset % _BLOCK or offset < end + _BLOCK or n < 0 or offset + n > size:
                return None
            out.append((raw.decode("ascii"), offset, n))
            end = offset + n + (-n) % _BLOCK
        # tarfile stops at the first all-zero block: there must be one right after the data
        if end_problem(fd, end) is not None:
            return None
        return out
    finally:
        if entry:
            lib.entry_free(entry)
        lib.read_free(a)
