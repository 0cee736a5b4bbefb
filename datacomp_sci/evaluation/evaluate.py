"""``datacomp-sci evaluate``: score a CLIP checkpoint on an evaluation suite.

Zero-shot classification and retrieval go through clip_benchmark's API on the local
webdataset layout (``build_dataset("wds/<key>", root=DATA_DIR/<folder>, ...)``);
WILDS, fairness and WinoGAViL metrics come from :mod:`datacomp_sci.evaluation.metrics`.

Outputs in ``OUTPUT``:

- ``eval_results.jsonl``: DataComp's format, one line per task
  ``{"key", "dataset", "metrics": {..., "main_metric"}}`` and nothing else, so
  DataComp's ``aggregate_scores.py`` reads it unchanged. Rewritten atomically after
  every task; tasks already in it are skipped on the next run (resume).
- ``eval_meta.json``: provenance (model, checkpoint sha256, suite sha256, versions of
  open_clip / clip_benchmark / torch, per task) and ``status``: ``complete`` or
  ``partial`` with the missing and failed tasks.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from datacomp_sci.core.evaldata import (
    IMAGE_EXTS,
    count_samples,
    iter_winogavil,
    shard_paths,
    task_data_problem,
)
from datacomp_sci.core.outdir import fingerprint_diff, read_record
from datacomp_sci.core.suites import Suite, TaskSpec, load_suite
from datacomp_sci.core.tables import format_table
from datacomp_sci.core.util import (
    atomic_write_json,
    atomic_write_text,
    package_versions,
    sha256_file,
)

RESULTS_FILE = "eval_results.jsonl"
META_FILE = "eval_meta.json"
VERSIONED_PACKAGES = ("open_clip_torch", "clip-benchmark", "torch", "torchvision", "webdataset", "datacomp-sci")


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class TaskResult:
    key: str
    dataset: str
    metrics: dict[str, Any]
    cached: bool = False

    @property
    def main_metric(self) -> float | None:
        return self.metrics.get("main_metric")

    def to_line(self) -> dict[str, Any]:
        return {"key": self.key, "dataset": self.dataset, "metrics": self.metrics}


@dataclass(frozen=True)
class TaskProblem:
    """A task that produced no result: its data is missing, or evaluating it failed."""

    key: str
    dataset: str
    reason: str


@dataclass
class EvalSummary:
    suite: str
    output: Path
    results: list[TaskResult] = field(default_factory=list)
    missing: list[TaskProblem] = field(default_factory=list)
    failed: list[TaskProblem] = field(default_factory=list)
    random_scores: dict[str, float | None] = field(default_factory=dict)
    main_metric_names: dict[str, str | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failed

    @property
    def status(self) -> str:
        return "complete" if self.complete else "partial"

    @property
    def evaluated(self) -> list[str]:
        return [r.key for r in self.results if not r.cached]

    @property
    def skipped(self) -> list[str]:
        return [r.key for r in self.results if r.cached]

    @property
    def average(self) -> float | None:
        """Mean main metric over the suite; None while the suite is partial."""
        scores = [r.main_metric for r in self.results if r.main_metric is not None]
        if not self.complete or not scores:
            return None
        return float(np.mean(scores))

    def table(self) -> str:
        """One-screen table: task, main metric, value, random chance, status."""
        rows = []
        for r in self.results:
            v = r.main_metric
            rs = self.random_scores.get(r.key)
            rows.append((
                r.dataset, self.main_metric_names.get(r.key) or "-",
                "-" if v is None else f"{v:.4f}", "-" if rs is None else f"{rs:.4f}",
                "cached" if r.cached else "done",
            ))
        for status, problems in (("MISSING", self.missing), ("FAILED", self.failed)):
            for p in problems:
                rows.append((p.dataset, self.main_metric_names.get(p.key) or "-", "-", "-", status))
        lines = format_table(("task", "main metric", "value", "chance", "status"), rows).split("\n")
        avg = self.average
        n_scored = sum(r.main_metric is not None for r in self.results)
        lines.append(
            f"average of {n_scored} main metrics: {avg:.4f}" if avg is not None
            else f"PARTIAL suite: {len(self.missing)} missing, {len(self.failed)} failed; no average reported"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class EvalOptions:
    batch_size: int = 64
    workers: int = 4
    device: str | None = None
    progress: bool = True


@dataclass
class LoadedModel:
    arch: str
    model: Any
    transform: Callable
    tokenizer: Callable
    device: str


# ---------------------------------------------------------------- data layout checks






# ---------------------------------------------------------------- model
def load_model(arch: str, checkpoint: str | Path, device: str | None) -> LoadedModel:
    import open_clip
    import torch

    from datacomp_sci.core.models import register_models

    register_models()
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found")
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown model architecture {arch!r}: see `open_clip.list_models()`")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model, _, transform = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint))
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is not None:
        torch.cuda.set_device(dev.index)
    model = model.to(dev).eval()
    return LoadedModel(arch, model, transform, open_clip.get_tokenizer(arch), dev.type)


# ---------------------------------------------------------------- evaluators
def _loader(dataset: Any, batch_size: int, workers: int, n_shards: int):
    import torch

    return torch.utils.data.DataLoader(
        dataset.batched(batch_size), batch_size=None, shuffle=False, num_workers=min(workers, n_shards)
    )


def _build(task: TaskSpec, folder: Path, transform: Callable, kind: str = "zeroshot_classification") -> Any:
    from clip_benchmark.datasets.builder import build_dataset

    try:
        return build_dataset(
            dataset_name=f"wds/{task.key}", root=str(folder), transform=transform, split="test",
            download=False, task=kind,
        )
    except AssertionError as e:  # clip_benchmark asserts on missing classnames/templates
        raise ValueError(f"{folder}: {e}") from e


def _clean(value: Any) -> Any:
    """JSON-safe metric value: NaN -> None, NumPy scalars -> Python numbers."""
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _check_classes(task: TaskSpec, classes: list[str] | None, templates: list[str] | None) -> None:
    if not classes or not templates:
        raise ValueError("classnames.txt or zeroshot_classification_templates.txt is empty")
    if task.num_classes is not None and task.group_eval is None and len(classes) != task.num_classes:
        raise ValueError(f"classnames.txt lists {len(classes)} classes, the suite expects {task.num_classes}")


def eval_classification(task: TaskSpec, folder: Path, lm: LoadedModel, opts: EvalOptions) -> dict[str, Any]:
    from clip_benchmark.metrics import zeroshot_classification as zsc

    dataset = _build(task, folder, lm.transform)
    _check_classes(task, dataset.classes, dataset.templates)
    loader = _loader(dataset, opts.batch_size, opts.workers, len(shard_paths(folder)))
    return zsc.evaluate(lm.model, loader, lm.tokenizer, dataset.classes, dataset.templates, lm.device, amp=False)


def eval_retrieval(task: TaskSpec, folder: Path, lm: LoadedModel, opts: EvalOptions) -> dict[str, Any]:
    from clip_benchmark.metrics import zeroshot_retrieval as zsr

    shards = shard_paths(folder)
    n_images = count_samples(shards)
    if n_images == 0:
        raise ValueError(f"{folder}/test holds no image samples")
    dataset = _build(task, folder, lm.transform, "zeroshot_retrieval")
    if getattr(dataset, "classes", None) is not None:
        raise ValueError(f"{folder}/dataset_type.txt must contain 'retrieval'")
    loader = _loader(dataset, opts.batch_size, opts.workers, len(shards))
    ks = [k for k in (1, 5, 10) if k <= n_images]
    metrics = zsr.evaluate(lm.model, loader, lm.tokenizer, lm.device, amp=False, recall_k_list=ks)
    metrics["mean_recall@1"] = 0.5 * (metrics["text_retrieval_recall@1"] + metrics["image_retrieval_recall@1"])
    return metrics


def _label_and_metadata(sample: tuple, transform: Callable) -> tuple:
    import torch

    image, label, meta = sample
    row = [int(label), *np.asarray(meta).reshape(-1).tolist()]
    return transform(image), torch.tensor(row, dtype=torch.long)


def _grouped_loader(folder: Path, lm: LoadedModel, opts: EvalOptions):
    """Images with ``[cls, *npy]`` targets, so labels and metadata stay aligned."""
    import webdataset as wds

    shards = shard_paths(folder)
    pipeline = (
        wds.WebDataset([str(s) for s in shards], shardshuffle=False, nodesplitter=lambda src: src)
        .decode(wds.autodecode.ImageHandler("pil", extensions=list(IMAGE_EXTS)))
        .to_tuple(";".join(IMAGE_EXTS), "cls", "npy")
        .map(partial(_label_and_metadata, transform=lm.transform))
    )
    return _loader(pipeline, opts.batch_size, opts.workers, len(shards))


def eval_grouped(task: TaskSpec, folder: Path, lm: LoadedModel, opts: EvalOptions) -> dict[str, Any]:
    """WILDS and fairness tasks: clip_benchmark classification + group metrics."""
    from clip_benchmark.metrics import zeroshot_classification as zsc
    from sklearn.metrics import balanced_accuracy_score

    from datacomp_sci.evaluation.metrics import wilds_metrics

    ge = task.group_eval
    assert ge is not None  # guaranteed by suites.parse_task
    if ge.objectives:
        return eval_fairface(task, folder, lm, opts)
    dataset = _build(task, folder, lm.transform)
    _check_classes(task, dataset.classes, dataset.templates)
    classifier = zsc.zero_shot_classifier(lm.model, lm.tokenizer, dataset.classes, dataset.templates, lm.device, amp=False)
    logits, target = zsc.run_classification(lm.model, classifier, _grouped_loader(folder, lm, opts), lm.device, amp=False)
    y_true, metadata = target[:, 0], target[:, 1:].numpy()
    n_classes = logits.shape[1]
    metrics: dict[str, Any] = {}
    topk = (1, 5) if n_classes >= 5 else (1,)
    accs = zsc.accuracy(logits, y_true, topk=topk)
    metrics["acc1"] = accs[0]
    metrics["acc5"] = accs[1] if len(accs) > 1 else None
    metrics["mean_per_class_recall"] = balanced_accuracy_score(y_true.numpy(), logits.argmax(1).numpy())
    k = min(ge.topk, n_classes)
    top = logits.topk(k, dim=1).indices.numpy()
    metrics.update(wilds_metrics(top, y_true.numpy(), metadata, ge.metadata_fields, ge.group_by, ge.extra_metrics))
    return metrics


def eval_fairface(task: TaskSpec, folder: Path, lm: LoadedModel, opts: EvalOptions) -> dict[str, Any]:
    """FairFace / UTKFace: one zero-shot classifier per objective (``objective:name`` lines)."""
    import torch
    from clip_benchmark.metrics import zeroshot_classification as zsc

    from datacomp_sci.evaluation.metrics import fairface_metrics

    ge = task.group_eval
    assert ge is not None
    dataset = _build(task, folder, lm.transform)
    _check_classes(task, dataset.classes, dataset.templates)
    per_obj: dict[str, dict[str, list[str]]] = {o: {"classes": [], "templates": []} for o in ge.objectives}
    for kind, lines in (("classes", dataset.classes), ("templates", dataset.templates)):
        for line in lines:
            obj, _, text = line.partition(":")
            if obj not in per_obj:
                raise ValueError(f"{kind} line {line!r} does not start with one of {list(per_obj)}:")
            per_obj[obj][kind].append(text)
    heads = [
        zsc.zero_shot_classifier(lm.model, lm.tokenizer, d["classes"], d["templates"], lm.device, amp=False)
        for d in per_obj.values()
    ]
    width = max(h.shape[1] for h in heads)
    padded = [torch.cat([h, torch.zeros(h.shape[0], width - h.shape[1], device=h.device)], 1) for h in heads]
    classifier = torch.cat(padded, dim=1)  # (dim, n_objectives * width)
    logits, target = zsc.run_classification(lm.model, classifier, _metadata_only_loader(folder, lm, opts), lm.device, amp=False)
    logits = logits.view(len(logits), len(heads), width)
    for i, h in enumerate(heads):
        logits[:, i, h.shape[1]:] = -1e9
    return fairface_metrics(logits.argmax(-1).numpy(), target.numpy(), ge.metadata_fields)


def _image_and_metadata(sample: tuple, transform: Callable) -> tuple:
    import torch

    image, meta = sample
    return transform(image), torch.tensor(np.asarray(meta).reshape(-1), dtype=torch.long)


def _metadata_only_loader(folder: Path, lm: LoadedModel, opts: EvalOptions):
    import webdataset as wds

    shards = shard_paths(folder)
    pipeline = (
        wds.WebDataset([str(s) for s in shards], shardshuffle=False, nodesplitter=lambda src: src)
        .decode(wds.autodecode.ImageHandler("pil", extensions=list(IMAGE_EXTS)))
        .to_tuple(";".join(IMAGE_EXTS), "npy")
        .map(partial(_image_and_metadata, transform=lm.transform))
    )
    return _loader(pipeline, opts.batch_size, opts.workers, len(shards))






def eval_winogavil(task: TaskSpec, folder: Path, lm: LoadedModel, opts: EvalOptions) -> dict[str, Any]:
    import io

    import torch
    from PIL import Image

    from datacomp_sci.evaluation.metrics import (
        winogavil_instance_score,
        winogavil_metrics,
        winogavil_prompt,
    )

    scores, sizes = [], []
    for doc, images in iter_winogavil(shard_paths(folder)):
        pix = torch.stack([lm.transform(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
        text = lm.tokenizer([winogavil_prompt(str(doc["cue"]))])
        with torch.no_grad():
            img = lm.model.encode_image(pix.to(lm.device), normalize=True)
            txt = lm.model.encode_text(text.to(lm.device), normalize=True)
        sim = (txt @ img.T).squeeze(0).cpu().numpy()
        truth = np.isin(doc["candidates"], doc["associations"])
        scores.append(winogavil_instance_score(sim, truth))
        sizes.append(len(images))
    if not scores:
        raise ValueError(f"{folder}/test holds no WinoGAViL instances")
    return winogavil_metrics(np.array(scores), np.array(sizes))


EVALUATORS: dict[str, Callable[[TaskSpec, Path, LoadedModel, EvalOptions], dict[str, Any]]] = {
    "zeroshot_classification": eval_classification,
    "retrieval": eval_retrieval,
    "wilds": eval_grouped,
    "fairness": eval_grouped,
    "winogavil": eval_winogavil,
}


@contextlib.contextmanager
def _clip_benchmark_bars(progress: bool) -> Iterator[None]:
    """clip_benchmark's metric loops show a tqdm bar each, whatever the caller asked: while
    a task runs they are disabled without ``progress``, else transient (``leave=False``)
    under the tasks bar."""
    from clip_benchmark.metrics import zeroshot_classification as zsc
    from clip_benchmark.metrics import zeroshot_retrieval as zsr
    from tqdm import tqdm

    saved = [(m, m.tqdm) for m in (zsc, zsr) if hasattr(m, "tqdm")]
    bar = partial(tqdm, disable=not progress, leave=False)
    for m, _ in saved:
        m.tqdm = bar
    try:
        yield
    finally:
        for m, original in saved:
            m.tqdm = original


def evaluate_task(task: TaskSpec, data_dir: Path, lm: LoadedModel, opts: EvalOptions) -> TaskResult:
    """Evaluate one task; ``main_metric`` as DataComp sets it (None when absent)."""
    with _clip_benchmark_bars(opts.progress):
        metrics = EVALUATORS[task.kind](task, data_dir / task.folder, lm, opts)
    metrics = {k: _clean(v) for k, v in metrics.items()}
    metrics["main_metric"] = metrics.get(task.main_metric) if task.main_metric else None
    return TaskResult(task.key, task.name, metrics)


# ---------------------------------------------------------------- results file
def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """key -> line of an ``eval_results.jsonl`` (unparseable lines raise a clear error)."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i} is not JSON ({e}); fix or delete that line") from e
        if not isinstance(rec, dict) or "key" not in rec or not isinstance(rec.get("metrics"), dict):
            raise ValueError(f"{path}:{i} is not an eval result line (needs 'key' and 'metrics')")
        out[rec["key"]] = rec
    return out


def write_results(path: Path, lines: dict[str, dict[str, Any]], suite: Suite) -> None:
    order = {t.key: i for i, t in enumerate(suite.tasks)}
    keys = sorted(lines, key=lambda k: (order.get(k, len(order)), k))
    atomic_write_text(path, "".join(json.dumps(lines[k], sort_keys=False) + "\n" for k in keys))


def _provenance(suite: Suite, ckpt_sha: str) -> dict[str, Any]:
    return {
        "checkpoint_sha256": ckpt_sha,
        "suite_sha256": suite.sha256,
        "suite_resolved_sha256": suite.resolved_sha256,
        "versions": package_versions(VERSIONED_PACKAGES),
    }


def _load_meta(path: Path, ckpt_sha: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    meta = read_record(path) or {}
    if meta.get("checkpoint_sha256") is not None and fingerprint_diff(
            {"checkpoint_sha256": meta["checkpoint_sha256"]}, {"checkpoint_sha256": ckpt_sha}):
        raise ValueError(
            f"{path.parent} holds results of another checkpoint (sha256 {meta['checkpoint_sha256'][:12]}...): "
            "use a new --output directory or delete the old results"
        )
    return meta


# ---------------------------------------------------------------- entry points
def evaluate_model(
    model_arch: str,
    checkpoint: str | Path,
    suite: str | Path | Suite,
    data_dir: str | Path,
    output: str | Path,
    batch_size: int = 64,
    workers: int = 4,
    device: str | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Evaluate ``checkpoint`` on every task of ``suite``; resume from ``output``."""
    from tqdm import tqdm

    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    data_dir, output = Path(data_dir), Path(output)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"data dir {data_dir} does not exist: run `datacomp-sci download-evalsets {data_dir} --suite {suite.name}`"
        )
    if batch_size < 1 or workers < 0:
        raise ValueError("--batch-size must be >= 1 and --workers >= 0")
    opts = EvalOptions(batch_size, workers, device, progress)
    ckpt_sha = sha256_file(checkpoint) if Path(checkpoint).is_file() else ""
    output.mkdir(parents=True, exist_ok=True)
    meta = _load_meta(output / META_FILE, ckpt_sha)
    lines = read_results(output / RESULTS_FILE)
    summary = EvalSummary(
        suite.name, output,
        random_scores={t.key: t.random_score for t in suite.tasks},
        main_metric_names={t.key: t.main_metric for t in suite.tasks},
    )
    task_meta = dict(meta.get("tasks", {}))
    todo = []
    for task in suite.tasks:
        if task.key in lines:
            summary.results.append(TaskResult(task.key, task.name, lines[task.key]["metrics"], cached=True))
        elif (problem := task_data_problem(task, data_dir)) is not None:
            hint = f"{problem}; fetch it with `datacomp-sci download-evalsets {data_dir} --suite {suite.name}`"
            summary.missing.append(TaskProblem(task.key, task.name, hint))
        else:
            todo.append(task)
    lm = load_model(model_arch, checkpoint, device) if todo else None
    for task in tqdm(todo, desc="tasks", unit="task", disable=not progress):
        try:
            result = evaluate_task(task, data_dir, lm, opts)
        except (ValueError, OSError, KeyError, tarfile.TarError, RuntimeError) as e:
            summary.failed.append(TaskProblem(task.key, task.name, f"{type(e).__name__}: {e}"))
            continue
        summary.results.append(result)
        lines[task.key] = result.to_line()
        task_meta[task.key] = _provenance(suite, ckpt_sha)
        write_results(output / RESULTS_FILE, lines, suite)
        _write_meta(output / META_FILE, model_arch, checkpoint, suite, ckpt_sha, task_meta, summary)
    order = {t.key: i for i, t in enumerate(suite.tasks)}
    summary.results.sort(key=lambda r: order[r.key])
    _write_meta(output / META_FILE, model_arch, checkpoint, suite, ckpt_sha, task_meta, summary)
    return summary


def _write_meta(path: Path, arch: str, checkpoint: str | Path, suite: Suite, ckpt_sha: str,
                task_meta: dict[str, Any], summary: EvalSummary) -> None:
    atomic_write_json(path, {
        "results_file": RESULTS_FILE,
        "model": arch,
        "checkpoint": str(checkpoint),
        **_provenance(suite, ckpt_sha),
        "suite": suite.name,
        "suite_path": str(suite.path),
        "status": summary.status,
        "missing": [asdict(p) for p in summary.missing],
        "failed": [asdict(p) for p in summary.failed],
        "tasks": dict(sorted(task_meta.items())),
    })


def read_train_info(train_output: str | Path) -> tuple[str, Path]:
    """``(model arch, checkpoint path)`` from ``train``'s ``DIR/info.json``."""
    train_output = Path(train_output)
    info_path = train_output / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: is {train_output} the output of `datacomp-sci train`?")
    info = json.loads(info_path.read_text())
    if "model" not in info or "checkpoint" not in info:
        raise ValueError(f"{info_path} lacks 'model' or 'checkpoint'")
    ckpt = Path(info["checkpoint"])
    return str(info["model"]), ckpt if ckpt.is_absolute() else train_output / ckpt


def evaluate_train_output(
    train_output: str | Path,
    suite: str | Path | Suite,
    data_dir: str | Path,
    output: str | Path | None = None,
    **kwargs: Any,
) -> EvalSummary:
    """Evaluate the checkpoint named in ``train_output/info.json``; results go beside it."""
    arch, ckpt = read_train_info(train_output)
    return evaluate_model(arch, ckpt, suite, data_dir, output or train_output, **kwargs)


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)
