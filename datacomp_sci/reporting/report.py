"""``datacomp-sci report``: the paper's Table 3 and Table 4 for your runs, and a figure.

- Table 3: one row per run with DataComp's aggregate scores (:mod:`.aggregate`); a run with
  missing tasks is marked ``*`` and a footnote lists what is missing.
- Table 4: the tasks where a run beats the baseline run, with both scores, the gain and
  the task's domain.
- ``report.png`` / ``report.pdf``: aggregate scores per run (grouped bars) and, per run,
  its per-task difference to the baseline (sorted bars, green = better).
- ``report.json``: every number above, plus each run's per-task main metrics.

A run is an ``eval_results.jsonl`` or a folder holding one (training output or evaluation
folder); its name is the folder name, or ``NAME=PATH``. Outputs are deterministic: the
same results give the same bytes.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datacomp_sci.core.util import atomic_write_bytes, atomic_write_json, atomic_write_text
from datacomp_sci.reporting import paper
from datacomp_sci.reporting.aggregate import (
    AVERAGE,
    COLUMNS,
    RunAggregate,
    Suite,
    aggregate,
    datacomp_domain,
    load_results,
    load_suite,
)

FORMATS = ("md", "latex", "csv")
_EXT = {"md": "md", "latex": "tex", "csv": "csv"}
RESULTS_FILE = "eval_results.jsonl"
PAPER_TAG = f"(arXiv {paper.ARXIV_ID})"


# --- inputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSpec:
    name: str
    path: Path


def resolve_results(path: str | os.PathLike) -> Path:
    """``eval_results.jsonl`` itself, or the one file of that name in a folder (or its
    direct subfolders, e.g. a training output with an ``eval/`` folder)."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such file or folder (give an {RESULTS_FILE} or its folder)")
    if (p / RESULTS_FILE).is_file():
        return p / RESULTS_FILE
    found = sorted(p.glob(f"*/{RESULTS_FILE}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"{p}: no {RESULTS_FILE} in it; run `datacomp-sci evaluate` first")
    raise ValueError(f"{p}: several {RESULTS_FILE} below it ({', '.join(map(str, found))}); "
                     "give one of them")


def parse_run_spec(spec: str) -> RunSpec:
    """``NAME=PATH`` or ``PATH`` (name = folder name of the results)."""
    name, sep, rest = spec.partition("=")
    if sep and name and not Path(spec).exists():
        return RunSpec(name, resolve_results(rest))
    path = resolve_results(spec)
    p = Path(spec)
    return RunSpec(p.name if p.is_dir() else path.parent.name or path.stem, path)


# --- the report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gain:
    """A task where ``run`` scores higher than the baseline (a row of Table 4)."""

    run: str
    task_key: str
    task: str
    domain: str
    score: float
    baseline: float
    source: str = "run"

    @property
    def delta(self) -> float:
        return self.score - self.baseline


@dataclass
class Report:
    suite: Suite
    runs: list[RunAggregate]
    baseline: str | None
    gains: list[Gain]
    deltas: dict[str, list[tuple[str, float]]]     # run -> [(task name, score - baseline)]
    with_paper: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def n_scored(self) -> int:
        return len(self.suite.scored)

    def run(self, name: str) -> RunAggregate:
        return next(r for r in self.runs if r.run == name)


def _unique_names(specs: list[RunSpec]) -> list[RunSpec]:
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        seen[s.name] = seen.get(s.name, 0) + 1
        out.append(s if seen[s.name] == 1 else RunSpec(f"{s.name}#{seen[s.name]}", s.path))
    return out


def _resolve_baseline(specs: list[RunSpec], baseline: str | None) -> tuple[list[RunSpec], str | None]:
    names = [s.name for s in specs]
    if baseline is None:
        return specs, (names[0] if len(specs) > 1 else None)
    if baseline in names:
        return specs, baseline
    b = parse_run_spec(baseline)
    if b.name in names:
        b = RunSpec(f"{b.name} (baseline)", b.path)
    return [b, *specs], b.name


def _gains(run: RunAggregate, base: RunAggregate, suite: Suite) -> list[Gain]:
    out = []
    for t in suite.scored:
        s, b = run.scores.get(t.key), base.scores.get(t.key)
        if s is not None and b is not None and s > b:
            out.append(Gain(run.run, t.key, t.name, t.domain, s, b))
    return sorted(out, key=lambda g: -g.delta)


def _deltas(run: RunAggregate, base: RunAggregate, suite: Suite) -> list[tuple[str, float]]:
    pairs = [(t.name, run.scores[t.key] - base.scores[t.key]) for t in suite.scored
             if t.key in run.scores and t.key in base.scores]
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def _paper_gains(suite: Suite) -> list[Gain]:
    def domain(key: str, name: str) -> str:
        spec = suite.lookup(key, None)  # the paper's tasks are DataComp's, in any suite
        return spec.domain if spec and spec.domain else datacomp_domain(key, name)

    return [Gain(f"{paper.MIXED} {PAPER_TAG}", g.task_key, g.task, domain(g.task_key, g.task), g.score,
                 g.baseline, source="paper") for g in paper.TABLE4]


def build_report(specs: list[str], baseline: str | None = None, suite: str | None = None,
                 with_paper: bool = False) -> Report:
    """Load every run, aggregate it over the suite and compare it with the baseline.

    ``baseline`` is a run name among ``specs`` or another results path; by default the first
    run when there are several. ``suite`` defaults to the one recorded in the first run's
    meta record, else ``datacomp38``.
    """
    if not specs and not with_paper:
        raise ValueError("give at least one eval_results.jsonl (or a folder holding one), "
                         "or --paper for the published tables alone")
    if not specs:  # the published tables alone
        report = Report(load_suite(suite), [], None, [], {}, True)
        report.gains.extend(_paper_gains(report.suite))
        return report
    runs_in, base_name = _resolve_baseline(_unique_names([parse_run_spec(s) for s in specs]), baseline)
    loaded = [load_results(s.path, s.name) for s in runs_in]
    meta = loaded[0].meta
    the_suite = load_suite(suite or meta.get("suite_path") or meta.get("suite") or None)
    aggs = [aggregate(r, the_suite) for r in loaded]
    report = Report(the_suite, aggs, base_name, [], {}, with_paper)
    for a in aggs:
        if a.bad_lines:
            report.notes.append(f"{a.run}: {len(a.bad_lines)} unusable lines ignored "
                                f"(first: {a.bad_lines[0]})")
        if a.extra:
            report.notes.append(f"{a.run}: results for tasks outside suite {the_suite.name} "
                                f"ignored: {', '.join(a.extra)}")
    if base_name is not None:
        base = report.run(base_name)
        for a in aggs:
            if a.run != base_name:
                report.gains.extend(_gains(a, base, the_suite))
                report.deltas[a.run] = _deltas(a, base, the_suite)
    if with_paper:
        report.gains.extend(_paper_gains(the_suite))
        if the_suite.name != paper.SUITE:
            report.notes.append(f"the paper's rows are on suite {paper.SUITE}, yours on "
                                f"{the_suite.name}: not directly comparable")
    return report


# --- tables ------------------------------------------------------------------------------------

def _fmt(x: float | None, digits: int) -> str:
    """A score; ``n/a`` where there is none (e.g. a group the suite has no task of)."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def table3_rows(report: Report) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and footnotes of Table 3."""
    header = ["training data", *COLUMNS[:-1], f"{AVERAGE} ({report.n_scored})"]
    rows, notes = [], []
    for a in report.runs:
        cells = [a.run]
        for g in COLUMNS:
            s = a.groups[g]
            cells.append(_fmt(s.value, 3) + ("*" if s.partial else ""))
        rows.append(cells)
        if a.partial:
            notes.append(f"* {a.run}: partial, {len(a.missing)} of {report.n_scored} tasks "
                         f"missing ({', '.join(a.missing)}); starred means cover only the "
                         "tasks present")
    if report.with_paper:
        for p in paper.TABLE3:
            rows.append([f"{p.training_data} {PAPER_TAG}", *(_fmt(p.scores[g], 3) for g in COLUMNS)])
        notes.append(f"{PAPER_TAG}: published Table 3, {paper.SCALE} scale, ViT-B/32, "
                     f"suite {paper.SUITE}")
    return header, rows, notes + report.notes


def table4_rows(report: Report) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and footnotes of Table 4."""
    header = ["training data", "task", "domain", "score", "baseline", "gain"]
    rows = [[g.run, g.task, g.domain, _fmt(g.score, 4), _fmt(g.baseline, 4), f"+{g.delta:.4f}"]
            for g in report.gains]
    notes = []
    if report.baseline is None:
        notes.append("no baseline: give several runs or --baseline to list the tasks a run improves")
    else:
        notes.append(f"baseline: {report.baseline}")
    if report.with_paper:
        notes.append(f"{PAPER_TAG}: published Table 4, baseline {paper.BASELINE}")
    return header, rows, notes


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def render_md(header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    lines = ["| " + " | ".join(map(_md_cell, header)) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
    if notes:
        lines.append("")
        lines += [n if n.startswith("*") else f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


_TEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "\\": r"\textbackslash{}"}


def _tex(s: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in s)


def render_latex(header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    spec = "l" + "r" * (len(header) - 1)
    out = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
           " & ".join(_tex(h) for h in header) + r" \\", "\\midrule"]
    out += [" & ".join(_tex(c).replace("*", "$^*$") for c in r) + r" \\" for r in rows]
    out.append("\\bottomrule")
    out.append("\\end{tabular}")
    out += [f"% {n}" for n in notes]
    return "\n".join(out) + "\n"


def render_csv(header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


_RENDER = {"md": render_md, "latex": render_latex, "csv": render_csv}


def render_tables(report: Report, fmt: str = "md") -> dict[str, str]:
    """``{"table3": text, "table4": text}`` in ``md``, ``latex`` or ``csv``."""
    if fmt not in _RENDER:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return {"table3": _RENDER[fmt](*table3_rows(report)),
            "table4": _RENDER[fmt](*table4_rows(report))}


def report_json(report: Report) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "suite": {"name": report.suite.name, "source": report.suite.source,
                  "scored_tasks": report.n_scored},
        "baseline": report.baseline,
        "runs": [a.to_json() for a in report.runs],
        "table4": [{"run": g.run, "task_key": g.task_key, "task": g.task, "domain": g.domain,
                    "score": g.score, "baseline": g.baseline, "gain": g.delta,
                    "source": g.source} for g in report.gains],
        "deltas": {run: [{"task": t, "delta": d} for t, d in pairs]
                   for run, pairs in report.deltas.items()},
        "notes": report.notes,
    }
    if report.with_paper:
        doc["paper"] = {"arxiv": paper.ARXIV_ID, "table3": [
            {"training_data": p.training_data, **p.scores} for p in paper.TABLE3]}
    return doc


# --- figure ------------------------------------------------------------------------------------

_POS, _NEG = "#2a9d3f", "#c0392b"


_PAPER_COLORS = ("#9e9e9e", "#6d6d6d", "#3f3f3f")


@dataclass(frozen=True)
class _Series:
    label: str
    values: list[float | None]
    partial: list[bool]
    color: str
    is_paper: bool = False


def _bar_series(report: Report) -> list[_Series]:
    """Every bar series of the top panel: the runs, then (greys, hatched) the paper's rows."""
    series = []
    for i, a in enumerate(report.runs):
        label = a.run + (f" (partial: {len(a.missing)} missing, *)" if a.partial else "")
        series.append(_Series(label, [a.groups[g].value for g in COLUMNS],
                              [a.groups[g].partial for g in COLUMNS], f"C{i % 10}"))
    if report.with_paper:
        for i, p in enumerate(paper.TABLE3):
            series.append(_Series(f"{p.training_data} {PAPER_TAG}", [p.scores[g] for g in COLUMNS],
                                  [False] * len(COLUMNS), _PAPER_COLORS[i % 3], is_paper=True))
    return series


def _plot_groups(ax, report: Report) -> None:
    import numpy as np

    series = _bar_series(report)
    n = len(series)
    width = 0.8 / n
    x = np.arange(len(COLUMNS))
    top = max([v for s in series for v in s.values if v is not None] or [1.0]) or 1.0
    for i, s in enumerate(series):
        heights = [0.0 if v is None else v for v in s.values]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), heights, width, label=s.label, color=s.color,
                      hatch="///" if s.is_paper else None, edgecolor="white", linewidth=0.5)
        for b, v, part in zip(bars, s.values, s.partial, strict=True):
            ax.annotate(_fmt(v, 3) + ("*" if part else ""),
                        (b.get_x() + b.get_width() / 2, b.get_height()),
                        xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7 if n <= 4 else 6, rotation=0 if n <= 4 else 90)
    labels = [*COLUMNS[:-1], f"{AVERAGE} ({report.n_scored})"]
    ax.set_xticks(x, labels)
    ax.set_ylim(0, top * 1.45)
    ax.set_ylabel("mean main metric")
    ax.set_title(f"Aggregate scores on suite {report.suite.name} (DataComp aggregation)",
                 fontweight="bold")
    ax.legend(fontsize=8, loc="upper left", frameon=False, ncols=min(n, 3))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def _plot_deltas(ax, run: str, pairs: list[tuple[str, float]], baseline: str) -> None:
    names = [t for t, _ in pairs]
    vals = [d for _, d in pairs]
    y = range(len(pairs))
    ax.barh(list(y), vals, color=[_POS if v > 0 else _NEG for v in vals], height=0.7)
    span = max([abs(v) for v in vals] or [1.0]) or 1.0
    for yi, v in zip(y, vals, strict=True):
        ax.annotate(f"{v:+.3f}", (v, yi), xytext=(3 if v >= 0 else -3, 0),
                    textcoords="offset points", ha="left" if v >= 0 else "right",
                    va="center", fontsize=6.5)
    ax.set_yticks(list(y), names, fontsize=7.5)
    ax.set_xlim(-span * 1.35, span * 1.35)
    ax.axvline(0, color="black", linewidth=0.8)
    better = sum(v > 0 for v in vals)
    ax.set_title(f"{run} vs {baseline}\nbetter on {better} of {len(vals)} tasks", fontsize=10)
    ax.set_xlabel("difference in main metric (run - baseline)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def plot_report(report: Report, paths: list[Path]) -> None:
    """Draw the figure and save it to every path (format from the suffix), byte-stable."""
    from matplotlib.figure import Figure

    delta_runs = [(r, p) for r, p in report.deltas.items() if p]
    n_tasks = max([len(p) for _, p in delta_runs] or [0])
    top_h, bottom_h = 4.2, (0.9 + 0.19 * n_tasks if delta_runs else 0.0)
    width = max(11.0, 5.5 * len(delta_runs))
    fig = Figure(figsize=(width, top_h + bottom_h), layout="constrained")
    if delta_runs:
        grid = fig.add_gridspec(2, len(delta_runs), height_ratios=[top_h, bottom_h])
        _plot_groups(fig.add_subplot(grid[0, :]), report)
        for i, (run, pairs) in enumerate(delta_runs):
            _plot_deltas(fig.add_subplot(grid[1, i]), run, pairs, report.baseline or "")
    else:
        _plot_groups(fig.add_subplot(1, 1, 1), report)
    for path in paths:
        buf = io.BytesIO()
        fmt = path.suffix.lstrip(".").lower()
        meta = {"Software": None} if fmt == "png" else {"CreationDate": None, "Producer": None}
        fig.savefig(buf, format=fmt, dpi=150, metadata=meta)
        atomic_write_bytes(path, buf.getvalue())


# --- writing -----------------------------------------------------------------------------------

def write_report(report: Report, output: str | os.PathLike, fmt: str = "md",
                 figure: bool = True) -> list[Path]:
    """Write ``table3.<ext>``, ``table4.<ext>``, ``report.json`` and (with ``figure``)
    ``report.png`` / ``report.pdf`` into ``output``; returns the paths written."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_tables(report, fmt).items():
        path = out / f"{name}.{_EXT[fmt]}"
        atomic_write_text(path, text)
        written.append(path)
    atomic_write_json(out / "report.json", report_json(report))
    written.append(out / "report.json")
    if figure:
        figs = [out / "report.png", out / "report.pdf"]
        plot_report(report, figs)
        written += figs
    return written
