"""Small picklable functions for tests that run tasks in other processes (spawned pool
workers and Ray workers import this light module: tests/helpers.py imports webdataset,
and so torch, which would slow every worker start)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def square_after_failures(item: tuple[str, int, int, str]) -> int:
    """Fails the first ``fails`` attempts at ``i`` (raising, or killing its own process),
    counting attempts in files under ``folder`` so that every process sees them."""
    folder, i, fails, how = item
    marker = Path(folder) / f"{i}.attempts"
    with open(marker, "a") as f:
        f.write("x")
    if marker.stat().st_size <= fails:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(f"flaky task {i}")
    return i * i


def user_error(item: int) -> int:
    raise FileExistsError(f"{item}: an input changed; rerun with --overwrite")
