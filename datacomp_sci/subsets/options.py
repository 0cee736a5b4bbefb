"""How a subset-selection step runs (threads, memory, workers, progress callbacks): options
that never change its result, shared by filters and the dedup report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacomp_sci.subsets.dedup import ShardHashes


@dataclass
class RunOptions:
    """How to run (not part of the result)."""

    threads: int | None = None
    memory_limit: str | None = None
    workers: int = 1
    on_lang_file: Callable[[Path, int], None] | None = None
    on_shard: Callable[[ShardHashes], None] | None = None
    on_eval_tar: Callable[[Any], None] | None = None  # decontam.EvalTarHashes
    on_rows: Callable[[int], None] | None = None
    device: str = "auto"  # models (decontaminate --method isc)
    batch_size: int = 64
    on_images: Callable[[int], None] | None = None  # images through a model
