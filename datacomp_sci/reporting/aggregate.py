"""Aggregate scores over an evaluation suite, with DataComp's ``aggregate_scores.py`` semantics.

DataComp reduces the 38 main metrics of ``eval_results.jsonl`` to five numbers (the
columns of its leaderboard and of Table 3 in arXiv 2311.04711):

- ``ImageNet``: the main metric of ImageNet 1k;
- ``ImageNet dist. shifts``: mean of ImageNet Sketch, v2, -A, -O, -R and ObjectNet;
- ``VTAB``: mean of 13 VTAB tasks (CIFAR-10 is *not* one of them);
- ``Retrieval``: mean of Flickr, MSCOCO and WinoGAViL;
- ``Average``: mean of every task that has a main metric (FairFace and UTKFace have none).

Upstream refuses a file that does not hold exactly 38 main metrics. Here a run with
missing tasks is still reported, but every aggregate that lacks a member is marked
*partial* (and lists what is missing): it is never presented as a complete score.

Group membership is data: each task of a suite (``eval_suites/<name>.yaml``, read by
:mod:`datacomp_sci.core.suites`, the one suite model) lists its ``groups``; a test checks
that the shipped ``datacomp38`` file's groups equal upstream's lists
(:data:`DATACOMP_GROUPS`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datacomp_sci.core import suites
from datacomp_sci.core.suites import AVERAGE, GROUP_COLUMNS, Suite

IMAGENET = GROUP_COLUMNS["imagenet"]
DIST_SHIFTS = GROUP_COLUMNS["imagenet_dist_shifts"]
VTAB = GROUP_COLUMNS["vtab"]
RETRIEVAL = GROUP_COLUMNS["retrieval"]
#: Table 3's columns, in order; ``Average`` is over every scored task of the suite.
GROUPS: tuple[str, ...] = (IMAGENET, DIST_SHIFTS, VTAB, RETRIEVAL)
COLUMNS: tuple[str, ...] = (*GROUPS, AVERAGE)
DEFAULT_SUITE = "datacomp38"


#: ``aggregate_scores.py``'s ``DATASET_GROUPS`` (by display name), plus ImageNet: what the
#: group lists of ``eval_suites/datacomp38.yaml`` must equal (checked by a test).
DATACOMP_GROUPS: dict[str, frozenset[str]] = {
    IMAGENET: frozenset({"ImageNet 1k"}),
    DIST_SHIFTS: frozenset({"ImageNet Sketch", "ImageNet v2", "ImageNet-A", "ImageNet-O",
                            "ImageNet-R", "ObjectNet"}),
    VTAB: frozenset({"Caltech-101", "CIFAR-100", "CLEVR Counts", "CLEVR Distance",
                     "Describable Textures", "EuroSAT", "KITTI Vehicle Distance",
                     "Oxford Flowers-102", "Oxford-IIIT Pet", "PatchCamelyon", "RESISC45",
                     "SVHN", "SUN397"}),
    RETRIEVAL: frozenset({"Flickr", "MSCOCO", "WinoGAViL"}),
}


def load_suite(name_or_path: str | os.PathLike | None = None) -> Suite:
    """A suite by name (``eval_suites/NAME.yaml``) or path; DataComp's 38 tasks by default."""
    return suites.load_suite(str(name_or_path or DEFAULT_SUITE))


# --- results files ------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskResult:
    """One line of ``eval_results.jsonl``."""

    key: str
    dataset: str
    main_metric: float | None
    metrics: dict[str, Any]


@dataclass
class RunResults:
    """Every task result of one run, plus the meta record and the lines that were unusable."""

    name: str
    path: Path
    results: list[TaskResult]
    meta: dict[str, Any] = field(default_factory=dict)
    bad_lines: list[str] = field(default_factory=list)

    def by_key(self) -> dict[str, TaskResult]:
        """Last line wins for a repeated task, as when upstream reads its cache."""
        return {r.key: r for r in self.results}


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _parse_line(obj: Any) -> TaskResult | dict | str:
    """A task result, a meta dict, or the reason the line is unusable."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if "metrics" not in obj:
        if "meta" in obj or obj.get("type") == "meta" or str(obj.get("key", "")).startswith("_"):
            meta = obj.get("meta", obj)
            return meta if isinstance(meta, dict) else {"meta": meta}
        return "no 'metrics'"
    metrics = obj["metrics"]
    if not isinstance(metrics, dict):
        return "'metrics' is not an object"
    key, dataset = obj.get("key"), obj.get("dataset")
    if not isinstance(key, str) and not isinstance(dataset, str):
        return "neither 'key' nor 'dataset'"
    main = metrics.get("main_metric")
    if main is not None and _number(main) is None:
        return f"main_metric {main!r} is not a finite number"
    return TaskResult(str(key or dataset), str(dataset or key), _number(main), metrics)


def _sibling_meta(path: Path) -> dict[str, Any]:
    """``eval_meta.json`` beside the results (``datacomp-sci evaluate``'s provenance)."""
    meta = path.with_name("eval_meta.json")
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def load_results(path: str | os.PathLike, name: str | None = None) -> RunResults:
    """Read an ``eval_results.jsonl`` (DataComp's format). Unusable lines are collected with
    their line number in ``bad_lines``, never fatal; a file with no task result is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    run = RunResults(name or path.parent.name or path.stem, path, [])
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                parsed = _parse_line(json.loads(line))
            except json.JSONDecodeError as e:
                parsed = f"invalid JSON ({e.msg})"
            if isinstance(parsed, TaskResult):
                run.results.append(parsed)
            elif isinstance(parsed, dict):
                run.meta.update(parsed)
            else:
                run.bad_lines.append(f"line {i}: {parsed}")
    run.meta = {**_sibling_meta(path), **run.meta}
    if not run.results:
        detail = f" ({len(run.bad_lines)} unusable lines, first: {run.bad_lines[0]})" if run.bad_lines else ""
        raise ValueError(f"{path}: no task results in DataComp's eval_results.jsonl format{detail}")
    return run


# --- aggregation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupScore:
    """The mean main metric of a group's tasks that have a score; partial if any is missing."""

    group: str
    value: float | None
    n_scored: int
    n_expected: int
    missing: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.missing)


@dataclass
class RunAggregate:
    """Table 3's row of one run and every per-task main metric behind it."""

    run: str
    suite: str
    groups: dict[str, GroupScore]
    scores: dict[str, float]          # task key -> main metric, suite tasks only
    missing: tuple[str, ...]          # display names of suite tasks without a score
    extra: tuple[str, ...]            # results for tasks the suite does not list
    bad_lines: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run, "suite": self.suite, "partial": self.partial,
            "aggregates": {g: {"value": s.value, "n_scored": s.n_scored,
                               "n_expected": s.n_expected, "missing": list(s.missing)}
                           for g, s in self.groups.items()},
            "tasks": dict(self.scores), "missing": list(self.missing),
            "extra": list(self.extra), "bad_lines": list(self.bad_lines),
        }


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def task_scores(run: RunResults, suite: Suite) -> tuple[dict[str, float], tuple[str, ...]]:
    """Main metric per suite task key (matched by key, else by display name) and the
    results that match no suite task."""
    scores: dict[str, float] = {}
    extra: list[str] = []
    for r in run.results:
        spec = suite.lookup(r.key, r.dataset)
        if spec is None:
            extra.append(r.dataset)
        elif spec.scored and r.main_metric is not None:
            scores[spec.key] = r.main_metric
        elif spec.scored:
            scores.pop(spec.key, None)
    return scores, tuple(sorted(set(extra)))


def aggregate(run: RunResults, suite: Suite | None = None) -> RunAggregate:
    """DataComp's aggregate scores of one run over ``suite`` (default: DataComp's 38 tasks);
    missing tasks make a partial row."""
    suite = suite if suite is not None else load_suite()
    scores, extra = task_scores(run, suite)
    groups: dict[str, GroupScore] = {}
    for group in COLUMNS:
        members = suite.members(group)
        present = [scores[t.key] for t in members if t.key in scores]
        missing = tuple(t.name for t in members if t.key not in scores)
        groups[group] = GroupScore(group, _mean(present), len(present), len(members), missing)
    missing_all = tuple(t.name for t in suite.scored if t.key not in scores)
    return RunAggregate(run.name, suite.name, groups, scores, missing_all, extra,
                        tuple(run.bad_lines))


def groups_by_name(suite: Suite) -> dict[str, frozenset[str]]:
    """The suite's group memberships as display-name sets (to compare with DataComp's)."""
    return {g: frozenset(t.name for t in suite.members(g)) for g in GROUPS}
