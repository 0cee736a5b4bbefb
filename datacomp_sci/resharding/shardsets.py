"""Resolve a folder of webdataset shards the way DataComp's training does.

A training data folder is either a resharder output (``meta.json`` with
``output_shard_count`` and ``output_shard_format``), a pool written by ``build-pool`` or a
CommonPool download (shards in ``DIR/shards/``), or a bare folder of ``{N:08d}.tar``.
Without ``meta.json`` the shards are taken from the files present, as
``{00000000..N-1}.tar``; numbering must be contiguous from 0 (a gap is an error, since
OpenCLIP's brace pattern would name a missing file).

Sample counts come from ``{N:08d}_stats.json`` (``successes``), which both img2dataset and
the resharder write.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

_SHARD_RE = re.compile(r"^(\d+)\.tar$")


@dataclass(frozen=True)
class ShardSet:
    """The shards of one training data folder."""

    root: str  # absolute folder holding the tars
    n_shards: int
    digits: int  # zero padding of the shard numbers (8 for DataComp)
    shard_samples: tuple[int, ...]  # successes per shard, in shard order
    found_by: str  # "meta.json" | "files"

    @property
    def n_samples(self) -> int:
        return sum(self.shard_samples)

    @property
    def pattern(self) -> str:
        """OpenCLIP / webdataset brace pattern, e.g. ``/data/{00000000..00000009}.tar``."""
        last = self.n_shards - 1
        if self.n_shards == 1:
            return f"{self.root}/{0:0{self.digits}d}.tar"
        return f"{self.root}/{{{0:0{self.digits}d}..{last:0{self.digits}d}}}.tar"

    def shard_paths(self) -> list[str]:
        return [f"{self.root}/{i:0{self.digits}d}.tar" for i in range(self.n_shards)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shard_samples"] = list(self.shard_samples)
        d["pattern"] = self.pattern
        d["n_samples"] = self.n_samples
        return d


def _shard_dir(path: Path) -> Path:
    if (path / "meta.json").exists():
        return path
    if (path / "shards").is_dir():
        return path / "shards"
    return path


def _count(stats: Path) -> int:
    try:
        data = json.loads(stats.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{stats}: cannot read shard stats ({e})") from e
    if "successes" not in data:
        raise ValueError(f"{stats}: no 'successes' field (not an img2dataset/resharder stats file)")
    return int(data["successes"])


def resolve_shards(path: str | Path) -> ShardSet:
    """Find the shards of a training data folder (see module docstring)."""
    folder = _shard_dir(Path(path).expanduser().resolve())
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: no such data folder")
    meta = folder / "meta.json"
    if meta.exists():
        try:
            info = json.loads(meta.read_text())
            n = int(info["output_shard_count"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{meta}: not a resharder meta.json (needs an integer "
                             f"'output_shard_count'): {e!r}") from e
        fmt = info.get("output_shard_format", "{:08d}.tar")
        digits = len(fmt.format(0)) - len(".tar")
        found_by = "meta.json"
    else:
        numbers = sorted(int(m.group(1)) for f in folder.iterdir() if (m := _SHARD_RE.match(f.name)))
        if not numbers:
            raise FileNotFoundError(
                f"{folder}: no shards ({{N:08d}}.tar) and no meta.json: give a pool, a reshard "
                "output or a folder of shards"
            )
        if numbers != list(range(len(numbers))):
            missing = sorted(set(range(numbers[-1] + 1)) - set(numbers))[:5]
            raise ValueError(f"{folder}: shard numbering has gaps (missing {missing}...)")
        n = len(numbers)
        digits = max(len(f.stem) for f in folder.glob("*.tar") if _SHARD_RE.match(f.name))
        found_by = "files"
    counts = []
    for i in range(n):
        tar = folder / f"{i:0{digits}d}.tar"
        if not tar.exists():
            raise FileNotFoundError(f"{tar}: listed by {found_by} but missing")
        stats = folder / f"{i:0{digits}d}_stats.json"
        if not stats.exists():
            raise FileNotFoundError(
                f"{stats}: missing (an unfinished download or build? rerun it to resume)"
            )
        counts.append(_count(stats))
    return ShardSet(str(folder), n, digits, tuple(counts), found_by)
