"""Training scales: DataComp's four competition scales (plus ``debug``) and a CPU ``tiny`` scale.

The standard scales carry DataComp's exact hyper-parameters (``scale_configs.py`` in
mlfoundations/datacomp): model, global batch size, learning rate, warmup, samples seen and,
for ``xlarge``, AdamW beta2. Everything else is OpenCLIP's default recipe (AdamW, beta1 0.9,
beta2 0.98, eps 1e-6, weight decay 0.2, cosine schedule). As in DataComp, a run may change
only the numeric precision and the number of data workers; results from any other change
are not comparable with the DataComp leaderboard.

``tiny`` is not a DataComp scale: a 2-layer ViT on 32x32 images (``datacomp-sci-tiny``)
for CPU tests and the demo, trained with the same OpenCLIP flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from datacomp_sci.core.models import TINY_MODEL


@dataclass(frozen=True)
class ScaleConfig:
    """One training scale. ``samples_seen`` is the total over all checkpoints (epochs)."""

    name: str
    model: str  # OpenCLIP architecture name
    batch_size: int  # global batch size (all devices, all accumulation steps)
    learning_rate: float
    warmup: int  # warmup steps
    samples_seen: int
    beta2: float | None = None  # None: OpenCLIP's default for the model (0.98 for ViTs)
    precision: str = "amp"
    workers: int = 4
    log_every_n_steps: int = 100
    standard: bool = True  # a DataComp competition scale (leaderboard-comparable)

    @property
    def steps(self) -> int:
        """Optimiser steps over the whole run (small: 12.8M / 4096 = 3125)."""
        return self.samples_seen // self.batch_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"] = self.steps
        return d


@dataclass(frozen=True)
class DataCompScale(ScaleConfig):
    """A DataComp competition scale: DataComp's defaults (amp, 4 workers, log every 100 steps)."""


@dataclass(frozen=True)
class CpuScale(ScaleConfig):
    """A non-standard scale sized for a CPU: fp32, in-process data loading, log every step."""

    precision: str = "fp32"
    workers: int = 0
    log_every_n_steps: int = 1
    standard: bool = False


SCALES: dict[str, ScaleConfig] = {
    s.name: s
    for s in (
        DataCompScale("debug", "ViT-B-32", 1024, 1e-4, 500, 128_000),
        DataCompScale("small", "ViT-B-32", 4096, 5e-4, 500, 12_800_000),
        DataCompScale("medium", "ViT-B-32", 4096, 5e-4, 500, 128_000_000),
        DataCompScale("large", "ViT-B-16", 8192, 5e-4, 500, 1_280_000_000),
        DataCompScale("xlarge", "ViT-L-14", 90112, 1e-3, 10_000, 12_800_000_000, beta2=0.95),
        CpuScale("tiny", TINY_MODEL, 32, 2e-3, 4, 960),
    )
}

PRECISIONS = ("amp", "amp_bf16", "amp_bfloat16", "bf16", "fp16", "fp32")


def available_scales() -> list[str]:
    return list(SCALES)


def get_scale(name: str) -> ScaleConfig:
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown scale {name!r}: use one of {', '.join(SCALES)}") from None
