"""Mix several pools into one training data specification for OpenCLIP (``mix.json``).

OpenCLIP with ``--dataset-resampled`` draws whole *shards* with replacement, each with
probability proportional to its weight (``--train-data-upsampling-factors``, one factor
per ``::``-separated part, repeated for every shard of that part; see
``open_clip_train/data.py``: ``expand_urls`` and ``ResampledShards2``). A source's
expected share of the samples seen is therefore

    share_s = w_s * S_s / sum_t (w_t * S_t)

with ``S_s`` the number of samples in its shards (shard sizes may differ). For a target
share ``p_s`` the factor is ``w_s = p_s * N / S_s`` (N = all samples), i.e. target share /
natural share: 1.0 keeps a source at its natural share, 2.0 doubles it. ``natural`` writes
no factors (OpenCLIP weighs every shard equally, so shares follow sample counts).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datacomp_sci.core.util import atomic_write_json
from datacomp_sci.resharding.shardsets import ShardSet, resolve_shards

FORMAT = "datacomp-sci/data-spec/1"
SMALL_SCALE_SAMPLES_SEEN = 12_800_000
_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str  # absolute folder of the shards
    pattern: str  # OpenCLIP brace pattern of its shards
    n_shards: int
    n_samples: int
    factor: float  # OpenCLIP upsampling factor of each of its shards
    proportion: float  # expected share of the samples seen (from the written factors)
    epochs: float = 0.0  # times its samples are seen at ``samples_seen``


@dataclass(frozen=True)
class DataSpec:
    """What ``train`` needs: OpenCLIP's ``--train-data`` and upsampling factors."""

    train_data: str
    upsampling_factors: str | None
    total_samples: int
    sources: list[SourceSpec]
    samples_seen: int = SMALL_SCALE_SAMPLES_SEEN
    format: str = FORMAT
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_json())


def load_data_spec(path: str | os.PathLike) -> DataSpec:
    """Read a ``mix.json`` written by :func:`mix_sources` (or by hand, same keys)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: no such data spec (write one with `datacomp-sci mix`)") from e
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e})") from e
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r} is not {FORMAT!r}")
    try:
        sources = [SourceSpec(**s) for s in data["sources"]]
        known = {"train_data", "upsampling_factors", "total_samples", "sources", "samples_seen", "format"}
        return DataSpec(
            train_data=data["train_data"], upsampling_factors=data["upsampling_factors"],
            total_samples=int(data["total_samples"]), sources=sources,
            samples_seen=int(data.get("samples_seen", SMALL_SCALE_SAMPLES_SEEN)),
            extra={k: v for k, v in data.items() if k not in known},
        )
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: missing or malformed field ({e})") from e


def parse_sources(items: list[str]) -> list[tuple[str, Path]]:
    """``PATH`` or ``NAME=PATH`` -> (name, path); a bare path is named after its folder."""
    out: list[tuple[str, Path]] = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            path = item
            p = Path(item).expanduser().resolve()
            name = p.parent.name if p.name == "shards" else p.name
        if not name:
            raise ValueError(f"{item!r}: cannot name this source; write NAME=PATH")
        out.append((name, Path(path).expanduser()))
    names = [n for n, _ in out]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"source names must be unique ({', '.join(dups)}); write NAME=PATH")
    return out


def parse_proportions(text: str, names: list[str]) -> dict[str, float] | None:
    """``natural`` -> None; ``a=0.86,b=0.08,c=0.06`` -> shares that sum to 1."""
    if text.strip() == "natural":
        return None
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or shares.get(name.strip(), -1) < 0:
            raise ValueError(f"{part!r}: write proportions as NAME=SHARE (e.g. arxiv=0.08), or 'natural'")
    if sorted(shares) != sorted(names):
        raise ValueError(f"proportions name {sorted(shares)} but the sources are {sorted(names)}")
    total = sum(shares.values())
    if abs(total - 1.0) > _TOLERANCE:
        raise ValueError(f"proportions sum to {total:g}; they must sum to 1")
    return {k: v / total for k, v in shares.items()}


def _factor_text(x: float) -> str:
    return format(x, ".10g")


def upsampling_factors(sets: list[ShardSet], shares: list[float]) -> list[float]:
    """Per-source factor making OpenCLIP's shard sampling give ``shares`` of the samples."""
    total = sum(s.n_samples for s in sets)
    factors = []
    for s, p in zip(sets, shares, strict=True):
        if p > 0 and s.n_samples == 0:
            raise ValueError(f"{s.root}: has no samples but its proportion is {p:g}")
        factors.append(float(_factor_text(p * total / s.n_samples)) if s.n_samples else 0.0)
    return factors


def expected_shares(sets: list[ShardSet], factors: list[float]) -> list[float]:
    """Expected share of samples per source: sum over its shards of weight*size / total."""
    mass = [f * sum(s.shard_samples) for s, f in zip(sets, factors, strict=True)]
    total = sum(mass)
    if total <= 0:
        raise ValueError("the sources hold no samples")
    return [m / total for m in mass]


def mix_sources(sources: list[str], proportions: str = "natural",
                samples_seen: int = SMALL_SCALE_SAMPLES_SEEN,
                output: str | os.PathLike | None = None) -> DataSpec:
    """Build (and optionally write) the data spec mixing ``sources`` at ``proportions``."""
    if not sources:
        raise ValueError("give at least one source")
    named = parse_sources(sources)
    sets = [resolve_shards(p) for _, p in named]
    shares = parse_proportions(proportions, [n for n, _ in named])
    if shares is None:
        factors = [1.0] * len(sets)
        factor_text = None
    else:
        factors = upsampling_factors(sets, [shares[n] for n, _ in named])
        factor_text = "::".join(_factor_text(f) for f in factors)
    effective = expected_shares(sets, factors)
    specs = [
        SourceSpec(name=n, path=s.root, pattern=s.pattern, n_shards=s.n_shards,
                   n_samples=s.n_samples, factor=f, proportion=p,
                   epochs=(p * samples_seen / s.n_samples) if s.n_samples else 0.0)
        for (n, _), s, f, p in zip(named, sets, factors, effective, strict=True)
    ]
    spec = DataSpec(
        train_data="::".join(s.pattern for s in sets), upsampling_factors=factor_text,
        total_samples=sum(s.n_samples for s in sets), sources=specs, samples_seen=samples_seen,
        extra={"requested_proportions": shares or "natural"},
    )
    if output is not None:
        spec.save(output)
    return spec
