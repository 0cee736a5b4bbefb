"""``datacomp-sci experiment FILE``: a whole experiment as a declarative file, run as a step graph.

An experiment (``experiments/*.yaml``) declares pools (built from arXiv/PMC packages, or
an existing DataComp-layout pool such as a CommonPool download), one filter per pool,
the training runs (each a list of pools mixed at natural proportions, i.e. OpenCLIP's
``::`` join with no weights), the scale, the evaluation suite and the report baseline.

A ``curate:`` section declares concept-balanced curations (MetaCLIP or KG entities,
:mod:`datacomp_sci.curation`), each over several pools counted together; for every
member pool it adds a derived pool ``<curation>_<pool>`` (the pool's filter AND the
curated subset) that runs can train on next to the unbalanced pools.

It becomes a list of :class:`Step` (name, inputs, outputs, action). Steps run in
dependency order; a step whose outputs exist is skipped, so rerunning resumes; a step
whose input neither exists nor is made by another step stops the run with a message
that names the input and the YAML key to fix (``keep_going`` runs every step that can
run instead). Layout under ``workdir``::

    pools/<pool>/            build-pool output (pools with `build:`)
    embeddings/<pool>.json   embed summary (the npz and scores go into the pool itself)
    subsets/<pool>.npy       filter output (+ .json sidecar)
    subsets/curate_<c>.npy   curate output over the pools of curation <c> (+ sidecars)
    subsets/<c>_<pool>.npy   the pool's filter AND the curated subset (a derived pool)
    shards/<pool>/           reshard output (meta.json, {N:08d}.tar)
    runs/<run>/<scale>_scale train output (info.json) + eval_results.jsonl
    report/                  table3/table4/report.png/report.pdf/report.json
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datacomp_sci.core.resources import project_file, resource_path
from datacomp_sci.pipeline.schema import REQUIRED_KEYS, check_keys, did_you_mean, exists_or_named

PACKAGE_PREFIX = "package:"


# --- the step graph ---------------------------------------------------------------------------

@dataclass
class Step:
    """One unit of work: done when every output exists (and ``done`` agrees)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    run: Callable[[], Any]
    help: str = ""                              # what to fix when an input is missing
    done: Callable[[], bool] | None = None      # extra completion test (e.g. a status field)
    always: bool = False                        # cheap steps that are redone every time

    def is_done(self) -> bool:
        if self.always:
            return False
        return all(_exists(o) for o in self.outputs) and (self.done is None or self.done())


@dataclass(frozen=True)
class Outcome:
    step: str
    status: str       # "skipped" (already done) | "ran" | "would run" | "blocked"
    detail: str = ""


@dataclass
class ExperimentResult:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def _exists(path: str) -> bool:
    return bool(glob.glob(path)) if glob.has_magic(path) else os.path.exists(path)


def order_steps(steps: list[Step]) -> list[Step]:
    """Dependency order (a step after the steps making its inputs), stable in declaration
    order; a cycle or two steps making the same output is an error."""
    maker: dict[str, str] = {}
    for s in steps:
        for o in s.outputs:
            if o in maker:
                raise ValueError(f"steps {maker[o]!r} and {s.name!r} both write {o}")
            maker[o] = s.name
    deps = {s.name: {maker[i] for i in s.inputs if i in maker} - {s.name} for s in steps}
    ordered: list[Step] = []
    placed: set[str] = set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s.name not in placed and deps[s.name] <= placed]
        if not ready:
            stuck = sorted(set(deps) - placed)
            raise ValueError(f"the steps {stuck} depend on each other in a cycle")
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return ordered


def missing_inputs(step: Step, made_later: set[str]) -> list[str]:
    """Inputs that do not exist now and that no pending step makes."""
    return [i for i in step.inputs if not _exists(i) and i not in made_later]


def _blocked_message(step: Step, missing: list[str], upstream: list[str]) -> str:
    parts = []
    if missing:
        verb = "does" if len(missing) == 1 else "do"
        parts.append(f"needs {', '.join(missing)}, which {verb} not exist"
                     + (f"; {step.help}" if step.help else ""))
    if upstream:
        parts.append(f"waits for blocked step(s) {', '.join(sorted(set(upstream)))}")
    return f"step {step.name!r} " + "; ".join(parts)


def run_steps(steps: list[Step], dry_run: bool = False, keep_going: bool = False,
              log: Callable[[str], None] = print) -> list[Outcome]:
    """Run the steps that are not done, in order. A missing input raises FileNotFoundError
    (after the earlier steps ran) unless ``keep_going``, which skips what depends on it."""
    ordered = order_steps(steps)
    pending = {o for s in ordered if not s.is_done() for o in s.outputs}
    blocked: dict[str, str] = {}          # output of a blocked step -> that step's name
    outcomes: list[Outcome] = []
    for step in ordered:
        if step.is_done():
            outcomes.append(Outcome(step.name, "skipped", "outputs exist"))
            log(f"[skip] {step.name}: done")
            continue
        upstream = [blocked[i] for i in step.inputs if i in blocked]
        missing = [i for i in missing_inputs(step, pending if dry_run else set())
                   if i not in blocked]
        if missing or upstream:
            msg = _blocked_message(step, missing, upstream)
            if not (keep_going or dry_run):
                raise FileNotFoundError(msg)
            blocked.update({o: step.name for o in step.outputs})
            outcomes.append(Outcome(step.name, "blocked", msg))
            log(f"[blocked] {msg}")
            continue
        if dry_run:
            outcomes.append(Outcome(step.name, "would run"))
            log(f"[plan] {step.name}")
            continue
        log(f"[run] {step.name}")
        step.run()
        outcomes.append(Outcome(step.name, "ran"))
    return outcomes


# --- the experiment file ------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolDecl:
    name: str
    source: str | None = None          # arxiv | pmc: built with build-pool
    inputs: tuple[str, ...] = ()       # build inputs (paths/globs)
    config: str | None = None          # pools/NAME.yaml for build-pool
    path: str | None = None            # an existing pool (DataComp layout), not built here


@dataclass(frozen=True)
class FilterDecl:
    name: str | None = None            # DataComp baseline / builtin (no_filter, basic_filter, dedup...)
    sql: str | None = None             # filters/NAME.sql or a path
    params: dict[str, Any] = field(default_factory=dict)
    radius: int | None = None          # dedup / decontaminate (None: the filter's default)
    evalsets: str | None = None        # decontaminate: set from the experiment's eval_data
    suite: str | None = None           # decontaminate: set from the experiment's suite
    and_files: tuple[str, ...] = ()    # derived pools: the curated subset
    options: dict[str, Any] = field(default_factory=dict)  # FILTER_OPTIONS given in the file
    over: tuple[str, ...] = ()         # rank/cluster over these pools too (clip_score, image_based)
    over_dirs: tuple[str, ...] = ()    # their folders (set when the steps are made)


@dataclass(frozen=True)
class CurateDecl:
    """A concept-balanced curation over several pools (``curate:`` in the file)."""

    name: str
    method: str                        # metaclip | entities
    pools: tuple[str, ...]
    source: str                        # metadata file (metaclip) or entities file (entities)
    t: float
    seed: int = 0
    text_columns: tuple[str, ...] = ("text",)
    casefold: bool = False
    min_sitelinks: int | None = None
    types: tuple[str, ...] = ()

    def derived(self, pool: str) -> str:
        return f"{self.name}_{pool}"



# filter keys an experiment may set (FilterSpec fields of the same name)
FILTER_OPTIONS = ("arch", "fraction", "threshold", "method", "isc_weights", "isc_threshold",
                  "imagenet_features", "centroids", "clusters", "wordnet")


@dataclass(frozen=True)
class EmbedDecl:
    """``embed:``: which pools get CLIP embeddings and scores (and face boxes, with
    ``faces`` among the models) before they are filtered."""

    pools: tuple[str, ...]
    models: tuple[str, ...] = ("b32", "l14")
    archs: dict[str, str] = field(default_factory=dict)       # slot -> OpenCLIP model name
    pretrained: dict[str, str] = field(default_factory=dict)  # slot -> tag or file
    device: str = "auto"
    faces_weights: str | None = None  # an SCRFD .onnx file; None: insightface's cache


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path
    workdir: Path
    scale: str
    suite: str
    eval_data: str
    pools: dict[str, PoolDecl]
    filters: dict[str, FilterDecl]
    runs: dict[str, tuple[str, ...]]
    baseline: str | None = None
    workers: int | None = None
    proportions: dict[str, str] = field(default_factory=dict)  # run -> "natural" | "a=0.8,b=0.2"
    curations: dict[str, CurateDecl] = field(default_factory=dict)
    embed: EmbedDecl | None = None
    seed: int = 0                # train --seed of every run
    deterministic: bool = False  # train --deterministic for every run


def resolve_path(value: str, base: Path | None = None) -> str:
    """``package:REL`` -> a file shipped in datacomp_sci; relative paths -> under ``base``."""
    if value.startswith(PACKAGE_PREFIX):
        return str(resource_path(*Path(value[len(PACKAGE_PREFIX):]).parts))
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() or base is None else base / p)


def _pool_decl(name: str, raw: Any, where: str, base: Path, problems: list[str]) -> PoolDecl | None:
    at = f"{where}: pools.{name}"
    if not isinstance(raw, dict):
        problems.append(f"{at} must be a mapping with `build:` or `path:`")
        return None
    raw = check_keys("pool", raw, at, problems)
    if ("build" in raw) == ("path" in raw):
        problems.append(f"{at} needs exactly one of `build:` or `path:`")
        return None
    if "path" in raw:
        return PoolDecl(name, path=resolve_path(str(raw["path"]), base))
    b = check_keys("build", raw["build"] or {}, f"{at}.build", problems) \
        if isinstance(raw["build"], dict | None) else {}
    inputs = b.get("inputs") or []
    if b.get("source") not in ("arxiv", "pmc") or not inputs:
        problems.append(f"{at}.build needs source (arxiv|pmc) and inputs")
        return None
    if b.get("config") is not None:
        exists_or_named("pool config", str(b["config"]), f"{at}.build.config", problems)
    inputs = [inputs] if isinstance(inputs, str) else inputs
    return PoolDecl(name, source=b["source"],
                    inputs=tuple(resolve_path(str(i), base) for i in inputs), config=b.get("config"))


def _filter_decl(pool: str, raw: Any, where: str, problems: list[str],
                 base: Path | None = None) -> FilterDecl:
    at = f"{where}: filters.{pool}"
    raw = raw or {"name": "no_filter"}
    if not isinstance(raw, dict) or ("name" in raw) == ("sql" in raw):
        problems.append(f"{at} needs exactly one of `name:` or `sql:`")
        return FilterDecl("no_filter")
    raw = check_keys("filter", raw, at, problems)
    if raw.get("name") is not None:
        exists_or_named("filter", raw["name"], f"{at}.name", problems)
    if raw.get("sql") is not None:
        exists_or_named("sql filter", str(raw["sql"]), f"{at}.sql", problems)
    radius = raw.get("radius")
    if radius is not None and not isinstance(radius, int):
        radius = None  # reported by check_keys
    options = {k: raw[k] for k in FILTER_OPTIONS if k in raw}
    for k in ("isc_weights", "imagenet_features", "centroids", "wordnet"):
        if k in options:
            options[k] = resolve_path(str(options[k]), base)
    over = raw.get("over") or ()
    over = (over,) if isinstance(over, str) else tuple(str(o) for o in over)
    return FilterDecl(raw.get("name"), raw.get("sql"), dict(raw.get("params") or {}), radius,
                      options=options, over=over)


_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".tar")


def _embed_decl(raw: Any, where: str, pools: dict, base: Path,
                problems: list[str]) -> EmbedDecl | None:
    at = f"{where}: embed"
    if not isinstance(raw, dict) or not raw.get("pools"):
        problems.append(f"{at} needs `pools:` (a list of declared pools)")
        return None
    raw = check_keys("embed", raw, at, problems)
    names = tuple(str(p) for p in raw["pools"])
    bad = [n for n in names if n not in pools]
    if bad:
        problems.append(f"{at}.pools lists unknown pools {bad}"
                        + "".join(did_you_mean(n, pools) for n in bad))
        return None
    models = raw.get("models") or ["b32", "l14"]
    models = tuple(m.strip() for m in (models.split(",") if isinstance(models, str) else models))
    archs = {s: str(raw[f"{s}_model"]) for s in ("b32", "l14") if f"{s}_model" in raw}
    pretrained = {}
    for s in ("b32", "l14"):
        if f"{s}_pretrained" in raw:
            v = str(raw[f"{s}_pretrained"])
            is_file = "/" in v or v.startswith(PACKAGE_PREFIX) or v.endswith(_WEIGHT_SUFFIXES)
            pretrained[s] = resolve_path(v, base) if is_file else v  # else an OpenCLIP tag
    faces = resolve_path(str(raw["faces_weights"]), base) if raw.get("faces_weights") else None
    return EmbedDecl(names, models, archs, pretrained, str(raw.get("device") or "auto"),
                     faces)


def _run_decl(run: str, raw: Any, pools: dict, where: str,
              problems: list[str], hint: str = "") -> tuple[tuple[str, ...], str]:
    at = f"{where}: runs.{run}"
    raw = check_keys("run", raw, at, problems) if isinstance(raw, dict) else {}
    members = tuple(raw.get("pools") or ())
    bad = [m for m in members if m not in pools]
    if not members or bad:
        problems.append(f"{at}.pools must list declared pools ({', '.join(map(str, pools))})"
                        + "".join(f"; unknown {m!r}{did_you_mean(m, pools)}" for m in bad)
                        + (hint if bad else ""))
    proportions = str(raw.get("proportions") or "natural")
    if proportions != "natural" and not bad:
        from datacomp_sci.resharding.mix import parse_proportions

        try:
            parse_proportions(proportions, list(members))
        except ValueError as e:
            problems.append(f"{at}.proportions: {e}")
    return members, proportions


def _curate_decl(name: str, raw: Any, where: str, pools: dict, base: Path,
                 problems: list[str]) -> CurateDecl | None:
    key = f"{where}: curate.{name}"
    if not isinstance(raw, dict):
        problems.append(f"{key} must be a mapping (method, pools, metadata|kg, t)")
        return None
    raw = check_keys("curate", raw, key, problems)
    method = raw.get("method")
    if method not in ("metaclip", "entities"):
        problems.append(f"{key}.method must be metaclip or entities"
                        f"{did_you_mean(str(method), ('metaclip', 'entities'))}")
        return None
    source_key = "metadata" if method == "metaclip" else "kg"
    if not raw.get(source_key):
        problems.append(f"{key} needs `{source_key}:` (the {method} file)")
        return None
    members = tuple(raw.get("pools") or ())
    bad = [m for m in members if m not in pools]
    if not members or bad:
        problems.append(f"{key}.pools must list declared pools ({', '.join(map(str, pools))})"
                        + "".join(f"; unknown {m!r}{did_you_mean(m, pools)}" for m in bad))
        return None
    try:
        t = float(raw.get("t"))
    except (TypeError, ValueError):
        problems.append(f"{key}.t must be a number (the balancing threshold)")
        return None
    if not t > 0:
        problems.append(f"{key}.t must be positive")
        return None
    cols = raw.get("text_columns") or ["text"]
    cols = [cols] if isinstance(cols, str) else cols
    types = raw.get("types") or []
    return CurateDecl(name, method, members, resolve_path(str(raw[source_key]), base), t,
                      int(raw.get("seed") or 0), tuple(str(c) for c in cols),
                      bool(raw.get("casefold", method == "entities")), raw.get("min_sitelinks"),
                      tuple(str(x) for x in ([types] if isinstance(types, str) else types)))


def load_experiment(name_or_path: str, workdir: str | None = None,
                    notes: list[str] | None = None) -> Experiment:
    """Read and check ``experiments/NAME.yaml`` (or a path) whole: every unknown key, wrong
    type and unknown name (scale, suite, filter, pool config, pool of a run) is reported
    at once, before any step runs (:mod:`datacomp_sci.pipeline.schema`). Deprecated keys
    are accepted, with a line appended to ``notes``."""
    path = project_file("experiments", name_or_path, ".yaml")
    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: an experiment is a mapping (name, pools, runs, ...)")
    problems: list[str] = []
    doc = check_keys("experiment", doc, where, problems, notes)
    if any(not isinstance(doc.get(k) or {}, dict) for k in ("pools", "runs", "filters")) or \
            any(k not in doc for k in REQUIRED_KEYS["experiment"]):
        raise ValueError("\n".join(problems))
    name = str(doc.get("name") or path.stem)
    # relative paths in the file are relative to the workdir
    wdir = Path(resolve_path(workdir or str(doc.get("workdir") or f"experiments_out/{name}")))
    exists_or_named("scale", str(doc["scale"]), f"{where}: scale", problems)
    suite = str(doc.get("suite") or "datacomp38")
    exists_or_named("suite", suite, f"{where}: suite", problems)
    decls = {n: _pool_decl(n, r, where, wdir, problems) for n, r in (doc["pools"] or {}).items()}
    pools = {n: d for n, d in decls.items() if d is not None}
    filters_raw = doc.get("filters") or {}
    for unknown in sorted(set(filters_raw) - set(decls)):
        problems.append(f"{where}: filters.{unknown}: no pool {unknown!r}"
                        f"{did_you_mean(unknown, decls)}")
    filters = {n: _filter_decl(n, filters_raw.get(n), where, problems, wdir) for n in pools}
    curate_raw = doc.get("curate") or {}
    curations = {}
    for n, r in (curate_raw.items() if isinstance(curate_raw, dict) else ()):
        decl = _curate_decl(str(n), r, where, decls, wdir, problems)
        if decl is not None:
            curations[str(n)] = decl
    derived = {c.derived(p) for c in curations.values() for p in c.pools}
    clash = sorted(derived & set(decls))
    if clash:
        problems.append(f"{where}: curated pools {clash} clash with declared pool names")
    for n, f in filters.items():
        bad = [x for x in f.over if x not in decls]
        if bad:
            problems.append(f"{where}: filters.{n}.over lists unknown pools {bad}")
    embed = _embed_decl(doc["embed"], where, decls, wdir, problems) if doc.get("embed") else None
    runs: dict[str, tuple[str, ...]] = {}
    proportions: dict[str, str] = {}
    for run, raw in (doc["runs"] or {}).items():
        runs[str(run)], proportions[str(run)] = _run_decl(
            str(run), raw, {**decls, **dict.fromkeys(derived)}, where, problems,
            hint="; curated pools are named <curation>_<pool>" if curations else "")
    if not runs:
        problems.append(f"{where}: `runs` is empty; declare at least one training run")
    report = check_keys("report", doc.get("report") or {}, f"{where}: report", problems) \
        if isinstance(doc.get("report") or {}, dict) else {}
    baseline = report.get("baseline")
    if baseline is not None and baseline not in runs:
        problems.append(f"{where}: report.baseline {baseline!r} is not one of the runs "
                        f"{list(runs)}{did_you_mean(baseline, runs)}")
    if problems:
        raise ValueError("\n".join(problems) if len(problems) == 1 else
                         f"{len(problems)} problems in the experiment file:\n  "
                         + "\n  ".join(problems))
    return Experiment(
        name=name, path=path, workdir=wdir, scale=str(doc["scale"]), suite=suite,
        eval_data=resolve_path(str(doc["evalsets"]), wdir), pools=pools, filters=filters,
        runs=runs, baseline=baseline, workers=doc.get("workers"), proportions=proportions,
        curations=curations, embed=embed, seed=int(doc.get("seed") or 0),
        deterministic=bool(doc.get("deterministic", False)))


# --- actions: the other stages' public functions ------------------------------------------------

@dataclass
class Actions:
    """What each kind of step calls; tests pass fakes, the default calls the libraries."""

    build: Callable[[PoolDecl, Path, int | None], Any]
    filter: Callable[[str, FilterDecl, Path, int | None], Any]
    reshard: Callable[[str, Path, Path, int | None], Any]
    mix: Callable[[list[Path], list[str], str, str, Path], Any]
    train: Callable[[Path, str, Path, int | None], Any]
    evalsets: Callable[[str, str], Any]
    evaluate: Callable[[Path, str, str], Any]
    report: Callable[[list[str], str | None, str, Path], Any]
    curate: Callable[[list[str], CurateDecl, Path, int | None], Any] | None = None
    embed: Callable[[str, EmbedDecl, Path, int | None], Any] | None = None  # None: _embed


def _build(pool: PoolDecl, out: Path, workers: int | None, progress: bool = False) -> Any:
    from datacomp_sci.core.bars import BuildBar
    from datacomp_sci.pool.build import build_pool, options_from_config

    inputs = [m for i in pool.inputs for m in (sorted(glob.glob(i)) if glob.has_magic(i) else [i])]
    opts = options_from_config(pool.source or "", pool.config, name=pool.name)
    bar = BuildBar(progress, desc=f"build {pool.name}")
    try:
        return build_pool(inputs, out, opts, workers=workers, progress=bar.update,
                          on_units=bar.start)
    finally:
        bar.close()


def _filter(pool: str, f: FilterDecl, out: Path, workers: int | None,
            progress: bool = False) -> Any:
    from datacomp_sci.core.bars import subset_hooks
    from datacomp_sci.subsets.filters import FilterSpec, RunOptions, run_filter

    given = {"radius": f.radius, "evalsets": f.evalsets, "suite": f.suite, **f.options}
    spec = FilterSpec(name=f.name, sql_file=f.sql, params=dict(f.params),
                      and_files=list(f.and_files),
                      **{k: v for k, v in given.items() if v is not None})
    hooks, bars = subset_hooks(progress)
    try:
        res = run_filter([pool, *f.over_dirs], out, spec, RunOptions(workers=workers or 1, **hooks))
    finally:
        for b in bars.values():
            b.close()
    for w in res.warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    return res


def _embed(pool: str, decl: EmbedDecl, marker: Path, workers: int | None,
           progress: bool = False) -> Any:
    from datacomp_sci.annotate.embed import DEFAULT_ARCH, EmbedOptions, embed_pools
    from datacomp_sci.core.bars import EmbedBar
    from datacomp_sci.core.util import atomic_write_json

    bar = EmbedBar(progress, desc=f"embed {Path(pool).name}")
    opts = EmbedOptions(models=decl.models, archs={**DEFAULT_ARCH, **decl.archs},
                        pretrained={"b32": "openai", "l14": "openai", **decl.pretrained},
                        faces_weights=decl.faces_weights, device=decl.device,
                        workers=min(workers, 4) if workers else 0,
                        on_images=bar.update, on_total=bar.total)
    try:
        res = embed_pools([pool], opts)
    finally:
        bar.close()
    atomic_write_json(marker, {"pool": pool, "models": res.models, "images": res.images,
                               "files": [dataclasses.asdict(f) for f in res.files]})
    return res


def _reshard(pool: str, subset: Path, out: Path, workers: int | None,
             progress: bool = False) -> Any:
    from datacomp_sci.core.bars import ReshardBar
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    bar = ReshardBar(progress, desc=f"reshard {out.name}")
    try:
        return reshard([pool], subset, out, ReshardOptions(workers=workers or 1), progress=bar)
    finally:
        bar.close()


def _mix(shards: list[Path], names: list[str], proportions: str, scale: str,
         spec: Path) -> Any:
    from datacomp_sci.resharding.mix import mix_sources
    from datacomp_sci.training.scales import get_scale

    return mix_sources([f"{n}={s}" for n, s in zip(names, shards, strict=True)], proportions,
                       samples_seen=get_scale(scale).samples_seen, output=spec)


def _train(spec: Path, scale: str, out: Path, workers: int | None, seed: int = 0,
           deterministic: bool = False, quiet: bool = False) -> Any:
    from datacomp_sci.training.scales import get_scale
    from datacomp_sci.training.train import TrainOptions, make_plan, train

    opts = TrainOptions(output=str(out), workers=workers, seed=seed, deterministic=deterministic)
    plan = make_plan(get_scale(scale), opts, data_spec=str(spec))
    return train(plan, quiet=quiet)  # prints the plan before training


def _evalsets(suite: str, data_dir: str, progress: bool = False) -> Any:
    from datacomp_sci.evaluation.evalsets import download_evalsets

    return download_evalsets(data_dir, suite=suite, progress=progress)


def _evaluate(train_dir: Path, suite: str, data_dir: str, progress: bool = False) -> Any:
    from datacomp_sci.evaluation.evaluate import default_workers, evaluate_train_output

    return evaluate_train_output(train_dir, suite, data_dir, workers=default_workers(),
                                 progress=progress)


def _report(specs: list[str], baseline: str | None, suite: str, out: Path) -> Any:
    from datacomp_sci.reporting.report import build_report, write_report

    return write_report(build_report(specs, baseline=baseline, suite=suite, with_paper=True), out)


def _curate(pools: list[str], c: CurateDecl, out: Path, workers: int | None) -> Any:
    from datacomp_sci.curation.curate import (
        ConceptSource,
        CurateOptions,
        CurateSpec,
        run_curation,
    )

    src = ConceptSource(c.method, c.source, casefold=c.casefold, min_sitelinks=c.min_sitelinks,
                        types=c.types)
    spec = CurateSpec(src=src, thresholds=(c.t,), seed=c.seed, text_columns=c.text_columns)
    return run_curation(pools, out, spec, CurateOptions(workers=workers or 1))


def make_actions(progress: bool = True, quiet: bool = False) -> Actions:
    """The library actions; ``progress``: each step shows its own bars (tqdm, on stderr);
    ``quiet``: OpenCLIP's console shows warnings, errors and one line per epoch (each run's
    out.log keeps every line)."""
    p = functools.partial
    return Actions(p(_build, progress=progress), p(_filter, progress=progress),
                   p(_reshard, progress=progress), _mix, p(_train, quiet=quiet),
                   p(_evalsets, progress=progress), p(_evaluate, progress=progress), _report,
                   _curate, p(_embed, progress=progress))


DEFAULT_ACTIONS = make_actions()
QUIET_ACTIONS = make_actions(quiet=True)


# --- experiment -> steps --------------------------------------------------------------------------

def _pool_dir(exp: Experiment, pool: PoolDecl) -> str:
    return pool.path if pool.path else str(exp.workdir / "pools" / pool.name)


def _pool_steps(exp: Experiment, pool: PoolDecl, act: Actions,
                suite_markers: tuple[str, ...]) -> list[Step]:
    w, fix = exp.workdir, f"check `pools.{pool.name}` in {exp.path}"
    pdir = _pool_dir(exp, pool)
    f = exp.filters[pool.name]
    needs = ()
    if f.name == "decontaminate":  # against the experiment's evaluation sets: after `evalsets`
        f = dataclasses.replace(f, evalsets=str(exp.eval_data), suite=exp.suite)
        needs = suite_markers
    subset, shards = w / "subsets" / f"{pool.name}.npy", w / "shards" / pool.name
    steps = []
    if pool.source:
        steps.append(Step(f"build:{pool.name}", pool.inputs, (str(Path(pdir) / "pool.json"),),
                          lambda: act.build(pool, Path(pdir), exp.workers), help=fix))
    pool_marker = _pool_marker(exp, pool)
    embedded = exp.embed.pools if exp.embed else ()
    if pool.name in embedded:
        marker = _embed_marker(exp, pool.name)
        embed = act.embed or _embed
        steps.append(Step(f"embed:{pool.name}", (pool_marker,), (marker,),
                          lambda: embed(pdir, exp.embed, Path(marker), exp.workers), help=fix))
    if f.over:  # ranked (clip_score) or clustered (image_based) together with other pools
        others = [exp.pools[o] for o in f.over if o != pool.name]
        f = dataclasses.replace(f, over_dirs=tuple(_pool_dir(exp, o) for o in others))
        needs = (*needs, *(_pool_marker(exp, o) for o in others))
    needs = (*needs, *(_embed_marker(exp, n) for n in (pool.name, *f.over) if n in embedded))
    steps.append(Step(f"filter:{pool.name}", (pool_marker, *needs), (str(subset),),
                      lambda: act.filter(pdir, f, subset, exp.workers), help=fix))
    steps.append(Step(f"reshard:{pool.name}", (pool_marker, str(subset)),
                      (str(shards / "meta.json"),),
                      lambda: act.reshard(pdir, subset, shards, exp.workers), help=fix))
    return steps


def _curate_steps(exp: Experiment, c: CurateDecl, act: Actions,
                  suite_markers: tuple[str, ...]) -> list[Step]:
    """One step balancing over all member pools together, then per member a derived pool:
    its filter AND the curated subset, resharded on its own."""
    w, fix = exp.workdir, f"check `curate.{c.name}` in {exp.path}"
    curate = act.curate or _curate
    members = [exp.pools[p] for p in c.pools]
    dirs = [_pool_dir(exp, p) for p in members]
    markers = [str(Path(d) / "pool.json") if p.source else d
               for p, d in zip(members, dirs, strict=True)]
    curated = w / "subsets" / f"curate_{c.name}.npy"
    steps = [Step(f"curate:{c.name}", (*markers, c.source), (str(curated),),
                  lambda: curate(dirs, c, curated, exp.workers), help=fix)]
    for pool, pdir, marker in zip(members, dirs, markers, strict=True):
        name = c.derived(pool.name)
        f = dataclasses.replace(exp.filters[pool.name], and_files=(str(curated),))
        needs: tuple[str, ...] = ()
        if f.name == "decontaminate":
            f = dataclasses.replace(f, evalsets=str(exp.eval_data), suite=exp.suite)
            needs = suite_markers
        subset, shards = w / "subsets" / f"{name}.npy", w / "shards" / name
        steps.append(Step(f"filter:{name}", (marker, str(curated), *needs), (str(subset),),
                          functools.partial(act.filter, pdir, f, subset, exp.workers), help=fix))
        steps.append(Step(f"reshard:{name}", (marker, str(subset)), (str(shards / "meta.json"),),
                          functools.partial(act.reshard, pdir, subset, shards, exp.workers),
                          help=fix))
    return steps


def _pool_marker(exp: Experiment, pool: PoolDecl) -> str:
    """What proves a pool exists: its pool.json when a step builds it (here, or under
    another name whose build folder it names), else its folder."""
    pdir = _pool_dir(exp, pool)
    builders = [q for q in exp.pools.values()
                if q.source and os.path.abspath(_pool_dir(exp, q)) == os.path.abspath(pdir)]
    return str(Path(pdir) / "pool.json") if pool.source or builders else pdir


def _embed_marker(exp: Experiment, pool: str) -> str:
    return str(exp.workdir / "embeddings" / f"{pool}.json")


def _eval_complete(run_dir: Path) -> Callable[[], bool]:
    def done() -> bool:
        import json

        meta = run_dir / "eval_meta.json"
        try:
            return json.loads(meta.read_text()).get("status") == "complete"
        except (OSError, ValueError):
            return False
    return done


def _suite_markers(exp: Experiment) -> tuple[str, ...]:
    from datacomp_sci.core.suites import load_suite

    return tuple(str(Path(exp.eval_data) / t.folder / "test" / "nshards.txt")
                 for t in load_suite(exp.suite).tasks)


def _run_steps(exp: Experiment, run: str, pools: tuple[str, ...], act: Actions,
               suite_markers: tuple[str, ...]) -> list[Step]:
    shards = [exp.workdir / "shards" / p for p in pools]
    out = exp.workdir / "runs" / run
    run_dir = out / f"{exp.scale}_scale"
    spec = out / "mix.json"
    proportions = exp.proportions.get(run, "natural")
    mix = Step(f"mix:{run}", tuple(str(s / "meta.json") for s in shards), (str(spec),),
               lambda: act.mix(shards, list(pools), proportions, exp.scale, spec))
    train = Step(f"train:{run}", (str(spec),), (str(run_dir / "info.json"),),
                 lambda: act.train(spec, exp.scale, out, exp.workers, exp.seed, exp.deterministic))
    evaluate = Step(f"evaluate:{run}", (str(run_dir / "info.json"), *suite_markers),
                    (str(run_dir / "eval_results.jsonl"),),
                    lambda: act.evaluate(run_dir, exp.suite, exp.eval_data),
                    help=f"the evaluation data of suite {exp.suite} ({exp.eval_data}) is "
                         "incomplete: see `datacomp-sci download-evalsets`",
                    done=_eval_complete(run_dir))
    return [mix, train, evaluate]


def experiment_steps(exp: Experiment, act: Actions = DEFAULT_ACTIONS,
                     suite_markers: tuple[str, ...] | None = None) -> list[Step]:
    """The step graph of an experiment (``suite_markers``: files proving the evaluation data
    is present; default: every task's ``test/nshards.txt``)."""
    markers = _suite_markers(exp) if suite_markers is None else suite_markers
    steps: list[Step] = [s for p in exp.pools.values() for s in _pool_steps(exp, p, act, markers)]
    for c in exp.curations.values():
        steps += _curate_steps(exp, c, act, markers)
    steps.append(Step("evalsets", (), markers, lambda: act.evalsets(exp.suite, exp.eval_data)))
    for run, pools in exp.runs.items():
        steps += _run_steps(exp, run, pools, act, markers)
    results = [str(exp.workdir / "runs" / r / f"{exp.scale}_scale" / "eval_results.jsonl")
               for r in exp.runs]
    specs = [f"{r}={p}" for r, p in zip(exp.runs, results, strict=True)]
    report_dir = exp.workdir / "report"
    steps.append(Step("report", tuple(results), (str(report_dir / "report.json"),),
                      lambda: act.report(specs, exp.baseline, exp.suite, report_dir),
                      always=True))
    return steps


def run_experiment(name_or_path: str, workdir: str | None = None, dry_run: bool = False,
                   keep_going: bool = False, act: Actions = DEFAULT_ACTIONS,
                   log: Callable[[str], None] = print,
                   workers: int | None = None) -> ExperimentResult:
    """Load and check the experiment, then run (or with ``dry_run`` only plan) the steps not
    done yet. ``workers`` overrides the file's ``workers``."""
    notes: list[str] = []
    exp = load_experiment(name_or_path, workdir, notes=notes)
    if workers is not None:
        exp = dataclasses.replace(exp, workers=workers)
    for note in notes:
        log(f"warning: {note}")
    log(f"experiment {exp.name}: {len(exp.pools)} pools, {len(exp.runs)} runs, scale "
        f"{exp.scale}, suite {exp.suite}, workdir {exp.workdir}")
    outcomes = run_steps(experiment_steps(exp, act), dry_run=dry_run, keep_going=keep_going,
                         log=log)
    return ExperimentResult(exp.name, outcomes)
