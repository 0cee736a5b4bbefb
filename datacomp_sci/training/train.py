"""Train CLIP with OpenCLIP's trainer exactly as DataComp does, on folders or a mix.

``train()`` resolves the training data (folders joined with ``::``, each a resharder output
with ``meta.json`` or a folder of ``{N:08d}.tar``; or the data specification written by
``datacomp-sci mix``), builds DataComp's argument list for the scale and calls
``open_clip_train.main.main(argv)`` in-process. It works under ``torchrun`` (world size from
the environment; rank 0 prints the plan and writes the artefacts) and on CPU.

Layout of ``OUTPUT/EXP/`` (EXP defaults to ``<scale>_scale`` as in DataComp)::

    out.log, params.txt, checkpoints/epoch_<K>.pt, checkpoints/epoch_latest.pt   (OpenCLIP)
    train_plan.json   the plan of the run (written before training; guards resumes)
    info.json         written after training: model, checkpoint, scale, provenance

A rerun resumes from ``checkpoints/epoch_latest.pt`` (OpenCLIP ``--resume latest`` with
``--save-most-recent``); once ``info.json`` exists the run is complete and a rerun does
nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datacomp_sci.core.outdir import fingerprint_diff, read_record
from datacomp_sci.core.tables import format_table
from datacomp_sci.core.util import atomic_write_json, git_revision, package_versions, sha256_file
from datacomp_sci.resharding.shardsets import resolve_shards
from datacomp_sci.training.scales import PRECISIONS, ScaleConfig

if TYPE_CHECKING:
    from datacomp_sci.resharding.mix import SourceSpec

INFO_FORMAT = "datacomp-sci/train-info/1"
SUBSET_FILE = "sample_ids.npy"
VERSIONED_PACKAGES = ("datacomp-sci", "torch", "torchvision", "open_clip_torch", "webdataset", "numpy")
REPORT_TO = ("tensorboard", "wandb")
WANDB_PROJECT = "datacomp-sci"


# ---- training data -----------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    """One training data source: a folder of shards and its OpenCLIP brace pattern."""

    name: str
    path: str  # the folder given by the user (absolute)
    pattern: str  # e.g. /data/arxiv/{00000000..00000002}.tar
    n_shards: int
    n_samples: int
    factor: float | None = None  # upsampling factor (None: no factors given)
    found_by: str = "files"  # meta.json | files | data-spec


@dataclass(frozen=True)
class TrainData:
    """What OpenCLIP trains on: ``--train-data`` and ``--train-data-upsampling-factors``."""

    sources: tuple[DataSource, ...]
    train_data: str  # the sources' patterns joined with '::'
    upsampling_factors: str | None = None  # one factor per source joined with '::'
    spec_path: str | None = None  # the mix data specification, when one was given

    @classmethod
    def from_sources(cls, sources: tuple[DataSource, ...]) -> TrainData:
        factors = None
        if any(s.factor is not None for s in sources):
            factors = "::".join(_fmt_factor(1.0 if s.factor is None else s.factor) for s in sources)
        return cls(sources, "::".join(s.pattern for s in sources), factors)

    @property
    def n_samples(self) -> int:
        return sum(s.n_samples for s in self.sources)

    def shares(self) -> list[float]:
        """Expected share of each source among the samples seen.

        OpenCLIP (``--dataset-resampled``) draws shards with replacement, each with the
        weight of its source, so a source's expected share of samples is proportional to
        ``factor * n_samples`` (just its size without factors).
        """
        weights = [(s.factor if s.factor is not None else 1.0) * s.n_samples for s in self.sources]
        total = sum(weights)
        return [w / total if total else 0.0 for w in weights]

    def to_dict(self) -> dict:
        return {
            "train_data": self.train_data,
            "upsampling_factors": self.upsampling_factors,
            "n_samples": self.n_samples,
            "data_spec": self.spec_path,
            "sources": [
                {**asdict(s), "share": round(share, 6)}
                for s, share in zip(self.sources, self.shares(), strict=True)
            ],
        }


def _fmt_factor(x: float) -> str:
    return f"{x:g}" if x == float(f"{x:g}") else repr(x)


def _source_name(folder: Path) -> str:
    return folder.parent.name if folder.name == "shards" else folder.name


def resolve_data(data: str) -> TrainData:
    """Resolve ``DIR[::DIR...]`` like DataComp: ``meta.json`` or the shards present."""
    parts = [p for p in data.split("::") if p.strip()]
    if not parts:
        raise ValueError("--data is empty: give one folder of shards or several joined with '::'")
    sources = []
    for part in parts:
        shards = resolve_shards(part)
        folder = Path(part).expanduser().resolve()
        if shards.n_samples == 0:
            held = "no shards" if shards.n_shards == 0 else \
                f"{shards.n_shards} shards whose _stats.json count 0 samples"
            raise ValueError(f"{folder}: no samples to train on ({held}); was its filter or "
                             "subset empty? Check the step that made it")
        sources.append(
            DataSource(
                name=_source_name(folder),
                path=str(folder),
                pattern=shards.pattern,
                n_shards=shards.n_shards,
                n_samples=shards.n_samples,
                found_by=shards.found_by,
            )
        )
    return TrainData.from_sources(tuple(sources))


def load_train_data_spec(path: str | Path) -> TrainData:
    """Read the data specification written by ``datacomp-sci mix``; check it and its shards.

    OpenCLIP gets the spec's ``train_data`` and ``upsampling_factors`` verbatim.
    """
    from datacomp_sci.resharding.mix import load_data_spec

    path = Path(path).expanduser().resolve()
    spec = load_data_spec(path)
    if not spec.sources:
        raise ValueError(f"{path}: no sources")
    weighted = spec.upsampling_factors is not None
    sources = tuple(_spec_source(path, s, weighted) for s in spec.sources)
    if spec.train_data != "::".join(s.pattern for s in sources):
        raise ValueError(f"{path}: train_data does not match the patterns of its sources")
    if weighted and _parse_factors(spec.upsampling_factors) != [s.factor for s in sources]:
        raise ValueError(
            f"{path}: upsampling_factors {spec.upsampling_factors!r} do not match its sources' factors"
        )
    data = TrainData(sources, spec.train_data, spec.upsampling_factors, spec_path=str(path))
    if not any(data.shares()):
        raise ValueError(f"{path}: every upsampling factor is 0: nothing to train on")
    _check_patterns(path, data)
    return data


def _parse_factors(factors: object) -> list[float] | None:
    try:
        return [float(f) for f in str(factors).split("::")]
    except ValueError:
        return None


def _spec_source(spec: Path, s: SourceSpec, weighted: bool) -> DataSource:
    source = DataSource(
        name=str(s.name),
        path=str(s.path),
        pattern=str(s.pattern),
        n_shards=int(s.n_shards),
        n_samples=int(s.n_samples),
        factor=float(s.factor) if weighted else None,
        found_by="data-spec",
    )
    if source.n_shards < 1 or source.n_samples < 1 or (weighted and source.factor < 0):
        raise ValueError(f"{spec}: source {source.name!r} needs shards, samples and a factor >= 0")
    return source


def _check_patterns(spec: Path, data: TrainData) -> None:
    import braceexpand

    problems = []
    for s in data.sources:
        files = list(braceexpand.braceexpand(s.pattern))
        missing = [f for f in files if not Path(f).exists()]
        if len(files) != s.n_shards:
            problems.append(f"{s.name}: pattern names {len(files)} shards, n_shards says {s.n_shards}")
        if missing:
            problems.append(f"{s.name}: {len(missing)} of {len(files)} shards missing, e.g. {missing[0]}")
    if problems:
        raise FileNotFoundError(f"{spec}: " + "; ".join(problems) + " (rerun `datacomp-sci mix`)")


# ---- the OpenCLIP call ---------------------------------------------------------------


@dataclass(frozen=True)
class TrainOptions:
    """What a run may choose besides the scale (DataComp lets users change only these)."""

    output: str
    exp_name: str | None = None
    workers: int | None = None  # None: the scale's default (4; 0 for tiny)
    precision: str | None = None  # None: the scale's default (amp; fp32 for tiny)
    seed: int = 0
    num_checkpoints: int = 5
    accum_freq: int = 1
    resume: str = "latest"
    report_to: str | None = None  # tensorboard | wandb
    deterministic: bool = False  # see _deterministic(): no sample-shuffle buffer, deterministic kernels


@dataclass(frozen=True)
class TrainPlan:
    scale: ScaleConfig
    data: TrainData
    options: TrainOptions
    world_size: int
    rank: int

    @property
    def exp_name(self) -> str:
        return self.options.exp_name or f"{self.scale.name}_scale"

    @property
    def exp_dir(self) -> Path:
        return Path(self.options.output).expanduser().resolve() / self.exp_name

    @property
    def precision(self) -> str:
        return self.options.precision or self.scale.precision

    @property
    def workers(self) -> int:
        return self.scale.workers if self.options.workers is None else self.options.workers

    @property
    def per_device_batch(self) -> int:
        return self.scale.batch_size // (self.world_size * self.options.accum_freq)

    @property
    def samples_per_checkpoint(self) -> int:
        return self.scale.samples_seen // self.options.num_checkpoints

    @property
    def openclip_steps(self) -> int:
        """Steps OpenCLIP will run: each epoch is rounded up to whole batches per data worker."""
        workers = max(1, self.workers)
        batches = math.ceil(self.samples_per_checkpoint / self.scale.batch_size)
        return math.ceil(batches / workers) * workers * self.options.num_checkpoints

    @property
    def final_checkpoint(self) -> str:
        """Relative to ``exp_dir``: OpenCLIP's checkpoint after the last epoch."""
        return f"checkpoints/epoch_{self.options.num_checkpoints}.pt"

    def argv(self) -> list[str]:
        return openclip_argv(self)

    def fingerprint(self) -> dict:
        """What a resumed run must share with the run it continues."""
        out = {
            "scale": self.scale.to_dict(),
            "train_data": self.data.train_data,
            "upsampling_factors": self.data.upsampling_factors,
            "num_checkpoints": self.options.num_checkpoints,
            "seed": self.options.seed,
        }
        if self.options.deterministic:  # absent otherwise: earlier runs' records stay valid
            out["deterministic"] = True
        return out

    def to_dict(self) -> dict:
        return {
            "fingerprint": self.fingerprint(),
            "world_size": self.world_size,
            "per_device_batch_size": self.per_device_batch,
            "accum_freq": self.options.accum_freq,
            "precision": self.precision,
            "workers": self.workers,
            "openclip_argv": self.argv(),
            "data": self.data.to_dict(),
        }


def openclip_argv(plan: TrainPlan) -> list[str]:
    """DataComp's ``train.py`` argument list for ``open_clip_train.main.main``, in its order."""
    scale, opts = plan.scale, plan.options
    argv = [
        "--save-frequency", "0",
        "--ddp-static-graph",
        "--local-loss",
        "--gather-with-grad",
        "--grad-checkpointing",
        "--train-data", plan.data.train_data,
        "--train-num-samples", str(plan.samples_per_checkpoint),
        "--warmup", str(scale.warmup),
        "--dataset-type", "webdataset",
        "--precision", plan.precision,
        "--workers", str(plan.workers),
        "--model", scale.model,
        "--batch-size", str(plan.per_device_batch),
        "--epochs", str(opts.num_checkpoints),
        "--lr", f"{scale.learning_rate}",
        "--logs", str(plan.exp_dir.parent),
        "--name", plan.exp_name,
        "--seed", str(opts.seed),
        "--accum-freq", str(opts.accum_freq),
        "--log-every-n-steps", str(scale.log_every_n_steps),
        "--save-most-recent",
        "--resume", opts.resume,
        "--dataset-resampled",
    ]  # fmt: skip
    if opts.report_to == "wandb":
        argv += ["--report-to", "wandb", "--wandb-project-name", WANDB_PROJECT]
    elif opts.report_to == "tensorboard":
        argv += ["--report-to", "tensorboard"]
    if scale.beta2 is not None:
        argv += ["--beta2", f"{scale.beta2}"]
    if plan.data.upsampling_factors is not None:
        argv += ["--train-data-upsampling-factors", plan.data.upsampling_factors]
    return argv


def world_info() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (torchrun, SLURM, MPI)."""
    from open_clip_train.distributed import world_info_from_env

    _, rank, world_size = world_info_from_env()
    return rank, world_size


def make_plan(
    scale: ScaleConfig,
    options: TrainOptions,
    data: str | None = None,
    data_spec: str | None = None,
    world: tuple[int, int] | None = None,
) -> TrainPlan:
    """Check the options and resolve the data; nothing is written."""
    _check_options(options)
    if (data is None) == (data_spec is None):
        raise ValueError("give exactly one of --data DIR[::DIR...] or --data-spec mix.json")
    train_data = resolve_data(data) if data is not None else load_train_data_spec(data_spec)
    rank, world_size = world if world is not None else world_info()
    if scale.batch_size % (world_size * options.accum_freq):
        raise ValueError(
            f"the {scale.name} scale's global batch {scale.batch_size} is not divisible by "
            f"world size {world_size} x accum-freq {options.accum_freq}: pick a number of devices "
            "and --accum-freq whose product divides it"
        )
    return TrainPlan(scale, train_data, options, world_size, rank)


def _check_options(o: TrainOptions) -> None:
    if o.precision is not None and o.precision not in PRECISIONS:
        raise ValueError(f"--precision {o.precision!r}: use one of {', '.join(PRECISIONS)}")
    if o.resume != "latest" and not Path(o.resume).expanduser().is_file():
        raise FileNotFoundError(f"--resume {o.resume}: no such checkpoint (or use --resume latest)")
    if o.num_checkpoints < 1 or o.accum_freq < 1 or (o.workers is not None and o.workers < 0):
        raise ValueError("--num-checkpoints and --accum-freq must be >= 1, --workers >= 0")
    if o.report_to is not None:
        if o.report_to not in REPORT_TO:
            raise ValueError(f"--report-to {o.report_to!r}: use one of {', '.join(REPORT_TO)}")
        if importlib.util.find_spec(o.report_to) is None:
            raise ValueError(f"--report-to {o.report_to} needs it installed: pip install {o.report_to}")
    if o.exp_name is not None and (not o.exp_name or "/" in o.exp_name or o.exp_name in (".", "..")):
        raise ValueError(f"--exp-name {o.exp_name!r}: give a plain folder name")


# ---- the plan, as printed --------------------------------------------------------------


def format_plan(plan: TrainPlan) -> str:
    s, o = plan.scale, plan.options
    kind = (
        "DataComp standard scale: only --precision and --loader-workers may differ from DataComp"
        if s.standard
        else "not a DataComp scale (CPU tests and demos)"
    )
    openclip = plan.openclip_steps
    rounding = "" if openclip == s.steps else f" (OpenCLIP runs {openclip:,}: epochs round up per worker)"
    lines = [
        f"scale          {s.name} ({kind})",
        f"model          {s.model}",
        f"samples seen   {s.samples_seen:,} in {o.num_checkpoints} checkpoints of "
        f"{plan.samples_per_checkpoint:,}",
        f"steps          {s.steps:,}{rounding}",
        f"batch          global {s.batch_size:,} = {plan.world_size} device(s) x "
        f"{plan.per_device_batch:,} per device x {o.accum_freq} accumulation step(s)",
        f"optimiser      lr {s.learning_rate:g}, warmup {s.warmup:,} steps, beta2 "
        f"{'OpenCLIP default' if s.beta2 is None else s.beta2}",
        f"precision      {plan.precision}, {plan.workers} data workers per device, seed {o.seed}"
        + (", deterministic (no sample-shuffle buffer)" if o.deterministic else ""),
        f"output         {plan.exp_dir}",
        f"data           {len(plan.data.sources)} source(s), {plan.data.n_samples:,} samples"
        + (f", from {plan.data.spec_path}" if plan.data.spec_path else ""),
    ]
    lines += _format_sources(plan)
    return "\n".join(lines)


def _format_sources(plan: TrainPlan) -> list[str]:
    rows = [("source", "found by", "shards", "samples", "factor", "share", "repeats")]
    for src, share in zip(plan.data.sources, plan.data.shares(), strict=True):
        repeats = plan.scale.samples_seen * share / src.n_samples
        rows.append(
            (
                src.name,
                src.found_by,
                f"{src.n_shards:,}",
                f"{src.n_samples:,}",
                "-" if src.factor is None else _fmt_factor(src.factor),
                f"{100 * share:.1f}%",
                f"{repeats:.2f}",
            )
        )
    return format_table(rows[0], rows[1:], align="<<>>>>>", separator=False,
                        indent="  ").split("\n")


# ---- running ---------------------------------------------------------------------------


class TrainingError(RuntimeError):
    """OpenCLIP's trainer stopped without finishing (its out.log says why)."""


@dataclass(frozen=True)
class TrainResult:
    status: str  # "trained" | "already complete"
    exp_dir: str
    info_path: str
    checkpoint: str  # absolute path of the final checkpoint
    info: dict


def train(plan: TrainPlan, echo: Callable[[str], None] = print,
          quiet: bool = False) -> TrainResult | None:
    """Run (or resume) the plan with OpenCLIP; rank 0 writes ``info.json``.

    Returns the result on rank 0 and None on the other ranks. ``echo`` receives the plan and
    status lines (rank 0 only). ``quiet``: OpenCLIP's console shows warnings and errors
    only (its ``out.log`` keeps every line).
    """
    say = echo if plan.rank == 0 else (lambda _msg: None)
    _check_devices(plan)
    done = _completed(plan)
    if done is not None:
        return done if plan.rank == 0 else None
    _check_resume(plan)
    say(format_plan(plan))
    if plan.rank == 0:
        atomic_write_json(plan.exp_dir / "train_plan.json", plan.to_dict())
    _run_openclip(plan.argv(), plan.exp_dir / "out.log", quiet, plan.options.deterministic)
    if plan.rank != 0:
        return None
    checkpoint = plan.exp_dir / plan.final_checkpoint
    if not checkpoint.exists():
        raise TrainingError(f"OpenCLIP finished without {checkpoint}; see {plan.exp_dir / 'out.log'}")
    info = build_info(plan)
    atomic_write_json(plan.exp_dir / "info.json", info)
    return TrainResult("trained", str(plan.exp_dir), str(plan.exp_dir / "info.json"),
                       str(checkpoint), info)


def _check_devices(plan: TrainPlan) -> None:
    import torch

    if plan.world_size > 1 and not torch.cuda.is_available():
        raise ValueError(
            f"world size {plan.world_size} without CUDA: OpenCLIP's distributed training wraps "
            "the model for GPUs; on CPU run a single process (no torchrun)"
        )


def _completed(plan: TrainPlan) -> TrainResult | None:
    info_path = plan.exp_dir / "info.json"
    info = read_record(info_path)
    if info is None:
        return None
    checkpoint = plan.exp_dir / info["checkpoint"]
    if not checkpoint.exists():
        return None
    _check_same_run(plan, info.get("fingerprint"))
    return TrainResult("already complete", str(plan.exp_dir), str(info_path), str(checkpoint), info)


def _check_resume(plan: TrainPlan) -> None:
    plan_file = plan.exp_dir / "train_plan.json"
    if plan.options.resume != "latest" and (plan.exp_dir / "out.log").exists():
        raise FileExistsError(
            f"{plan.exp_dir} already holds a run: continue it with --resume latest, "
            "or start another with a new --exp-name"
        )
    if plan_file.exists():
        _check_same_run(plan, json.loads(plan_file.read_text()).get("fingerprint"))


def _check_same_run(plan: TrainPlan, previous: dict | None) -> None:
    diff = fingerprint_diff(previous, plan.fingerprint())
    if diff:
        raise ValueError(
            f"{plan.exp_dir} holds a run with different {', '.join(diff)}: "
            "use a new --exp-name (or another --output) for this configuration"
        )


def _run_openclip(argv: list[str], log_file: Path, quiet: bool = False,
                  deterministic: bool = False) -> None:
    """Call ``open_clip_train.main.main(argv)`` in-process and leave the process as it was.
    ``quiet``: OpenCLIP's console handler shows warnings and errors only.
    ``deterministic``: see :func:`_deterministic`."""
    from datacomp_sci.core import models

    models.register_models()
    from open_clip_train import main as openclip_main

    with _restore_logging(), _restore_rng(), _quiet_console(openclip_main, quiet), \
            _deterministic(deterministic):
        try:
            status = openclip_main.main(argv)
        except SystemExit as e:  # argparse, or OpenCLIP's exit(1)
            raise TrainingError(f"OpenCLIP exited ({e.code}) with arguments {argv}") from e
    if status == -1:
        raise TrainingError(f"OpenCLIP stopped with an error; see {log_file}")


@contextlib.contextmanager
def _restore_logging() -> Iterator[None]:
    """OpenCLIP adds handlers to the root logger and sets every logger's level: undo it.

    Handlers already on the root logger (e.g. the one ``logging.info`` installs on first
    use) are detached while OpenCLIP runs, so each of its lines is printed once, by its
    own handler, then put back."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    root_level = root.level
    for h in handlers:
        root.removeHandler(h)
    try:
        yield
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in handlers:
            root.addHandler(h)
        root.setLevel(root_level)
        for name, lg in list(logging.root.manager.loggerDict.items()):
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(name, logging.NOTSET))


def epoch_lines_only(record: logging.LogRecord) -> bool:
    """The quiet console: warnings and errors, and of OpenCLIP's progress lines only the
    last of each epoch (``Train Epoch: N [...] (100%)``: samples, loss, throughput)."""
    if record.levelno >= logging.WARNING:
        return True
    msg = record.getMessage()
    return msg.startswith("Train Epoch:") and "(100%)]" in msg


@contextlib.contextmanager
def _quiet_console(openclip_main: Any, quiet: bool) -> Iterator[None]:
    """While OpenCLIP runs, its console handler shows :func:`epoch_lines_only` (the file
    handler of ``out.log`` keeps every line): its ``setup_logging`` is wrapped to add the
    filter after it runs."""
    if not quiet:
        yield
        return
    original = openclip_main.setup_logging

    def setup_logging(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        for h in logging.getLogger().handlers:
            if type(h) is logging.StreamHandler:  # not the FileHandler (a subclass)
                h.addFilter(epoch_lines_only)
        return result

    openclip_main.setup_logging = setup_logging
    try:
        yield
    finally:
        openclip_main.setup_logging = original


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """A run whose checkpoints depend only on the data, the options and ``--seed``.

    OpenCLIP seeds torch, numpy and ``random`` from ``--seed`` and the shard order is seeded
    (``ResampledShards2(deterministic=True)``), but its sample-shuffle buffer is
    ``webdataset.shuffle(bufsize, initial)`` without an ``rng``, which webdataset seeds from
    the clock and the process id. No OpenCLIP argument reaches that seed; the buffer sizes
    are the module settings ``open_clip_train.data._SAMPLE_SHUFFLE_SIZE`` /
    ``_SAMPLE_SHUFFLE_INITIAL``, read when the pipeline is built. With both at 1 the buffer
    holds one sample and hands it on unchanged, so samples come in seeded shard order
    (``reshard`` already shuffles samples across shards with its own seed). Torch is also
    switched to deterministic algorithms (on CUDA that needs ``CUBLAS_WORKSPACE_CONFIG``,
    set here when unset). Everything is put back afterwards."""
    if not enabled:
        yield
        return
    import os

    import torch
    from open_clip_train import data as openclip_data

    names = ("_SAMPLE_SHUFFLE_SIZE", "_SAMPLE_SHUFFLE_INITIAL")
    saved = {n: getattr(openclip_data, n) for n in names}
    saved_algorithms = torch.are_deterministic_algorithms_enabled()
    saved_cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    for n in names:
        setattr(openclip_data, n, 1)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(openclip_data, n, v)
        torch.use_deterministic_algorithms(saved_algorithms)
        if saved_cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


@contextlib.contextmanager
def _restore_rng() -> Iterator[None]:
    """OpenCLIP seeds the global RNGs (random, numpy, torch): restore them afterwards."""
    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


# ---- info.json -------------------------------------------------------------------------


def build_info(plan: TrainPlan) -> dict:
    """The artefact ``evaluate`` reads (``model``, ``checkpoint``, ``scale``) and provenance."""
    checkpoint = plan.exp_dir / plan.final_checkpoint
    return {
        "format": INFO_FORMAT,
        "model": plan.scale.model,
        "checkpoint": plan.final_checkpoint,
        "checkpoint_sha256": sha256_file(checkpoint),
        "scale": plan.scale.name,
        "scale_config": plan.scale.to_dict(),
        "samples_seen": plan.scale.samples_seen,
        "data": plan.data.to_dict(),
        "data_spec_sha256": sha256_file(plan.data.spec_path) if plan.data.spec_path else None,
        "subset_files": subset_files(plan.data),
        "openclip_argv": plan.argv(),
        "world_size": plan.world_size,
        "per_device_batch_size": plan.per_device_batch,
        "accum_freq": plan.options.accum_freq,
        "precision": plan.precision,
        "fingerprint": plan.fingerprint(),
        "versions": package_versions(VERSIONED_PACKAGES),
        "git_revision": git_revision(),
    }


def subset_files(data: TrainData) -> list[dict]:
    """``sample_ids.npy`` of resharded sources (beside ``meta.json``), with sha256."""
    out = []
    for s in data.sources:
        shard_dir = Path(s.pattern).parent
        for cand in dict.fromkeys([Path(s.path) / SUBSET_FILE, shard_dir / SUBSET_FILE]):
            if cand.is_file():
                out.append({"source": s.name, "path": str(cand), "sha256": sha256_file(cand)})
                break
    return out
