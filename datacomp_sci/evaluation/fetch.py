"""HTTP primitives of the download steps: fetch one file atomically (skipping it when the
local copy has the remote size), and the per-task download record."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from datacomp_sci.core.util import atomic_open

CHUNK = 1 << 20


@dataclass
class TaskDownload:
    key: str
    folder: str
    status: str  # "ok" | "skipped" | "failed"
    message: str = ""
    files_fetched: int = 0
    bytes_fetched: int = 0
    samples: int = 0


def _head_size(url: str, timeout: float) -> int | None:
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            size = r.headers.get("Content-Length")
            return int(size) if size is not None else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def fetch(url: str, dest: Path, timeout: float = 60.0, optional: bool = False) -> int:
    """Download ``url`` to ``dest`` atomically; return bytes (0 if optional and absent)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, atomic_open(dest, "wb") as f:
            n = 0
            while chunk := r.read(CHUNK):
                f.write(chunk)
                n += len(chunk)
            return n
    except urllib.error.HTTPError as e:
        if optional and e.code == 404:
            return 0
        raise OSError(f"GET {url}: HTTP {e.code}") from e
    except urllib.error.URLError as e:
        raise OSError(f"GET {url}: {e.reason}") from e
