"""Evaluation suites as declarative files (``eval_suites/*.yaml``).

A suite is a list of tasks. Each task names its DataComp key (``vtab/pcam``), display
name (``PatchCamelyon``), evaluator kind, main metric, size, number of classes, random
chance score, aggregate groups and where its data lives. A suite may include other
suites and then pick tasks from them by key (optionally overriding fields), so small
suites never duplicate DataComp's task table::

    name: vtab
    include: [datacomp38]
    tasks: [vtab/caltech101, vtab/cifar100, {key: vtab/pcam, size: 100}]

Adding a task is adding a mapping to a YAML file; no Python changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datacomp_sci.core.resources import list_project_files, project_file
from datacomp_sci.core.util import dumps_stable, sha256_bytes

KINDS = ("zeroshot_classification", "retrieval", "winogavil", "wilds", "fairness")
GROUPS = ("imagenet", "imagenet_dist_shifts", "vtab", "retrieval")
#: The aggregate columns of DataComp's leaderboard (and the paper's Table 3), by group id;
#: ``Average`` is over every scored task of the suite.
GROUP_COLUMNS = {"imagenet": "ImageNet", "imagenet_dist_shifts": "ImageNet dist. shifts",
                 "vtab": "VTAB", "retrieval": "Retrieval"}
AVERAGE = "Average"
DEFAULT_BASE_URL = "https://huggingface.co/datasets/{repo}/resolve/main/"


@dataclass(frozen=True)
class GroupEval:
    """WILDS / fairness metrics over the per-sample ``.npy`` metadata vector.

    ``metadata_fields`` names the columns of each sample's ``.npy`` member (DataComp's
    order); ``group_by`` lists groupings, each one field or several (combinatorial).
    ``objectives`` (FairFace/UTKFace) switches to multi-objective classification with
    ``objective:classname`` lines in ``classnames.txt``.
    """

    metadata_fields: tuple[str, ...]
    group_by: tuple[tuple[str, ...], ...] = ()
    topk: int = 1
    extra_metrics: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    key: str
    name: str
    kind: str
    main_metric: str | None
    folder: str
    source_repo: str | None
    size: int | None = None
    num_classes: int | None = None
    random_score: float | None = None
    groups: tuple[str, ...] = ()
    group_eval: GroupEval | None = None
    domain: str = ""  # image domain (presentation only: the paper's Table 4)

    @property
    def scored(self) -> bool:
        return self.main_metric is not None

    @property
    def columns(self) -> tuple[str, ...]:
        """The aggregate columns (Table 3 names) this task counts in, besides Average."""
        return tuple(GROUP_COLUMNS[g] for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    sha256: str
    description: str
    tasks: tuple[TaskSpec, ...]
    generator: str | None = None
    includes: tuple[str, ...] = field(default=())

    @property
    def resolved_sha256(self) -> str:
        """Hash of the resolved task table (changes when an included suite changes; the
        presentation-only ``domain`` is left out)."""
        rows = [{k: v for k, v in t.to_json().items() if k != "domain"} for t in self.tasks]
        return sha256_bytes(dumps_stable(rows).encode())

    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def scored(self) -> tuple[TaskSpec, ...]:
        return tuple(t for t in self.tasks if t.scored)

    def members(self, column: str) -> tuple[TaskSpec, ...]:
        """Scored tasks of an aggregate column (a Table 3 name or a group id; ``Average``:
        every scored task)."""
        if column == AVERAGE:
            return self.scored
        return tuple(t for t in self.scored if column in t.groups or column in t.columns)

    def lookup(self, key: str | None, name: str | None) -> TaskSpec | None:
        """The task with this key, else with this display name (DataComp's results files
        name tasks by either)."""
        for t in self.tasks:
            if key is not None and t.key == key:
                return t
        for t in self.tasks:
            if name is not None and t.name == name:
                return t
        return None

    def task(self, key: str) -> TaskSpec:
        for t in self.tasks:
            if t.key == key:
                return t
        raise KeyError(key)

    def group(self, group: str) -> list[TaskSpec]:
        return [t for t in self.tasks if group in t.groups]

    @property
    def scored_tasks(self) -> list[TaskSpec]:
        return [t for t in self.tasks if t.main_metric is not None]


def default_folder(key: str) -> str:
    """DataComp's local folder name: ``wds_<key without fairness/, '/'->'-'>_test``."""
    if key.startswith("fairness/"):
        key = key.split("/", 1)[1]
    return f"wds_{key.replace('/', '-')}_test"


_TASK_FIELDS = {
    "key", "name", "kind", "main_metric", "folder", "source_repo", "size", "num_classes",
    "random_score", "groups", "group_eval", "domain",
}
_GROUP_FIELDS = {"metadata_fields", "group_by", "topk", "extra_metrics", "objectives"}


def _err(where: str, msg: str) -> ValueError:
    return ValueError(f"{where}: {msg}")


def _group_eval(raw: Any, where: str) -> GroupEval | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _err(where, "group_eval must be a mapping")
    unknown = set(raw) - _GROUP_FIELDS
    if unknown:
        raise _err(where, f"unknown group_eval field(s) {sorted(unknown)}; known: {sorted(_GROUP_FIELDS)}")
    fields = tuple(str(f) for f in raw.get("metadata_fields") or ())
    if not fields:
        raise _err(where, "group_eval.metadata_fields must list the .npy metadata columns")
    group_by = tuple(
        (g,) if isinstance(g, str) else tuple(str(x) for x in g) for g in raw.get("group_by") or ()
    )
    for g in group_by:
        missing = [f for f in g if f not in fields]
        if missing:
            raise _err(where, f"group_by field(s) {missing} not in metadata_fields {list(fields)}")
    topk = raw.get("topk", 1)
    if not isinstance(topk, int) or topk < 1:
        raise _err(where, f"group_eval.topk must be a positive integer, got {topk!r}")
    extra = tuple(str(m) for m in raw.get("extra_metrics") or ())
    bad = set(extra) - {"F1-macro", "recall-macro"}
    if bad:
        raise _err(where, f"unknown extra_metrics {sorted(bad)}; known: F1-macro, recall-macro")
    return GroupEval(fields, group_by, topk, extra, tuple(str(o) for o in raw.get("objectives") or ()))


def _opt_int(raw: dict, name: str, where: str) -> int | None:
    v = raw.get(name)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        raise _err(where, f"{name} must be a non-negative integer, got {v!r}")
    return v


def parse_task(raw: Any, where: str) -> TaskSpec:
    """Validate one task mapping into a :class:`TaskSpec` (clear errors, no asserts)."""
    if not isinstance(raw, dict):
        raise _err(where, f"a task must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _TASK_FIELDS
    if unknown:
        raise _err(where, f"unknown field(s) {sorted(unknown)}; known: {sorted(_TASK_FIELDS)}")
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise _err(where, "every task needs a string 'key' (DataComp's task key, e.g. vtab/pcam)")
    where = f"{where} ({key})"
    kind = raw.get("kind", "zeroshot_classification")
    if kind not in KINDS:
        raise _err(where, f"kind {kind!r} is not one of {', '.join(KINDS)}")
    groups = tuple(raw.get("groups") or ())
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise _err(where, f"unknown group(s) {bad}; known: {', '.join(GROUPS)}")
    main_metric = raw.get("main_metric", "acc1")
    rs = raw.get("random_score")
    if rs is not None and not isinstance(rs, (int, float)):
        raise _err(where, f"random_score must be a number, got {rs!r}")
    group_eval = _group_eval(raw.get("group_eval"), where)
    if kind in ("wilds", "fairness") and group_eval is None:
        raise _err(where, f"kind {kind} needs a group_eval mapping (metadata_fields, group_by)")
    folder = raw.get("folder") or default_folder(key)
    source = raw.get("source_repo", f"djghosh/{folder}")
    return TaskSpec(
        key=key,
        name=str(raw.get("name") or key),
        kind=kind,
        main_metric=None if main_metric is None else str(main_metric),
        folder=str(folder),
        source_repo=None if source is None else str(source),
        size=_opt_int(raw, "size", where),
        num_classes=_opt_int(raw, "num_classes", where),
        random_score=None if rs is None else float(rs),
        groups=groups,
        group_eval=group_eval,
        domain=str(raw.get("domain") or ""),
    )


def _task_to_raw(t: TaskSpec) -> dict[str, Any]:
    raw = t.to_json()
    if t.group_eval is not None:
        raw["group_eval"] = dataclasses.asdict(t.group_eval)
    return raw


def load_suite(name_or_path: str | Path, _stack: tuple[str, ...] = ()) -> Suite:
    """Load ``eval_suites/NAME.yaml`` (or a path), resolving ``include``."""
    path = project_file("eval_suites", str(name_or_path), ".yaml")
    data = path.read_bytes()
    where = str(path)
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise _err(where, f"not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise _err(where, "a suite file must be a mapping with 'name' and 'tasks'")
    name = str(doc.get("name") or path.stem)
    if name in _stack:
        raise _err(where, f"include cycle: {' -> '.join((*_stack, name))}")
    includes = doc.get("include") or []
    includes = [includes] if isinstance(includes, str) else list(includes)
    pool: dict[str, TaskSpec] = {}
    for inc in includes:
        for t in load_suite(inc, (*_stack, name)).tasks:
            pool.setdefault(t.key, t)
    tasks = _resolve_tasks(doc.get("tasks"), pool, includes, where)
    seen: set[str] = set()
    for t in tasks:
        if t.key in seen:
            raise _err(where, f"task {t.key!r} is listed twice")
        seen.add(t.key)
    if not tasks:
        raise _err(where, "the suite has no tasks")
    return Suite(
        name=name,
        path=path,
        sha256=sha256_bytes(data),
        description=str(doc.get("description") or ""),
        tasks=tuple(tasks),
        generator=doc.get("generator"),
        includes=tuple(str(i) for i in includes),
    )


def _resolve_tasks(raw_tasks: Any, pool: dict[str, TaskSpec], includes: list, where: str) -> list[TaskSpec]:
    if raw_tasks is None:
        if not includes:
            raise _err(where, "no 'tasks' and no 'include'")
        return list(pool.values())
    if not isinstance(raw_tasks, list):
        raise _err(where, "'tasks' must be a list of task keys or task mappings")
    out: list[TaskSpec] = []
    for i, item in enumerate(raw_tasks):
        here = f"{where}: tasks[{i}]"
        if isinstance(item, str):
            if item not in pool:
                raise _err(here, f"unknown task key {item!r}: not in included suite(s) {includes}")
            out.append(pool[item])
        elif isinstance(item, dict) and item.get("key") in pool:
            merged = {**_task_to_raw(pool[item["key"]]), **item}
            out.append(parse_task(merged, here))
        else:
            out.append(parse_task(item, here))
    return out


def available_suites() -> dict[str, Path]:
    return list_project_files("eval_suites", ".yaml")
