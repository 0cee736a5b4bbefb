"""The tables behind the pages, one definition each for HTML, CSV and JSON, and the plots.

Scores come from the store, where they were computed with
:mod:`datacomp_sci.reporting.aggregate` when the entry was added; nothing is aggregated
here. The delta plot is ``report``'s (:func:`datacomp_sci.reporting.report._plot_deltas`).
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from datacomp_sci.leaderboard.store import GROUP_COLUMNS, Entry, Store
from datacomp_sci.reporting.aggregate import AVERAGE, COLUMNS, Suite

MAX_COMPARE = 4


def _csv_cell(value: Any) -> Any:
    """Empty for None; text that a spreadsheet would run as a formula gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@dataclass
class Table:
    """Columns (key, label) and rows (dicts by key); ``links`` maps a row's cell to a URL."""

    name: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([label for _, label in self.columns])
        for r in self.rows:
            w.writerow([_csv_cell(r.get(k)) for k, _ in self.columns])
        return buf.getvalue()

    def to_json(self) -> dict[str, Any]:
        return {"table": self.name, **self.meta,
                "columns": [{"key": k, "label": label} for k, label in self.columns],
                "rows": [{k: r.get(k) for k, _ in self.columns} for r in self.rows]}


# --- addresses (relative to the site root, so pages work under any prefix) --------------------

def board_url(scale: str, track: str) -> str:
    return f"board/{quote(scale, safe='')}/{quote(track, safe='')}/"


def entry_url(entry_id: str) -> str:
    return f"submission/{quote(entry_id, safe='')}/"


def compare_url(ids: list[str]) -> str:
    return "compare/" + "+".join(quote(i, safe="") for i in ids) + "/"


# --- ranking --------------------------------------------------------------------------------

def ranking_columns(suite: Suite) -> list[tuple[str, str]]:
    return [("rank", "Rank"), ("method", "Method"), ("authors", "Authors"),
            ("dataset_size", "Dataset size"),
            *[(GROUP_COLUMNS[g], g if g != AVERAGE else f"Average over {len(suite.scored)}")
              for g in COLUMNS],
            ("date", "Date"), ("writeup", "Write-up"), ("kind", "Kind"), ("id", "Id")]


def ranking(store: Store, scale: str, track: str) -> tuple[Table, list[Entry]]:
    """DataComp's board for one scale and track, highest Average first; baselines are
    listed with the submissions but get no rank."""
    suite = store.suite
    entries = store.entries(scale, track)
    rows, rank = [], 0
    for e in entries:
        if e.kind == "submission":
            rank += 1
        rows.append({"rank": rank if e.kind == "submission" else None, "method": e.method,
                     "authors": e.authors, "dataset_size": e.dataset_size,
                     **{GROUP_COLUMNS[g]: e.groups.get(g) for g in COLUMNS},
                     "date": e.date, "writeup": e.writeup, "kind": e.kind, "id": e.id})
    meta = {"scale": scale, "track": track, "suite": suite.name}
    return Table(f"ranking-{scale}-{track}", ranking_columns(suite), rows, meta), entries


# --- one submission ---------------------------------------------------------------------------

def baseline_choices(store: Store, entry: Entry) -> list[Entry]:
    """What a submission can be compared with: other entries of its scale, baselines
    first, those with per-task scores first, the same track first."""
    others = [e for e in store.entries(entry.scale) if e.id != entry.id]
    return sorted(others, key=lambda e: (e.kind != "baseline", not e.tasks, e.track != entry.track))


def default_baseline(store: Store, entry: Entry) -> Entry | None:
    choices = baseline_choices(store, entry)
    return choices[0] if choices and (choices[0].kind == "baseline" or choices[0].tasks) else None


def task_table(store: Store, entry: Entry, base: Entry | None) -> Table:
    """Every task of the suite: group, domain, score, baseline score and delta; then the
    aggregates."""
    suite = store.suite
    rows = []
    for t in suite.scored:
        s = entry.tasks.get(t.key)
        b = base.tasks.get(t.key) if base else None
        rows.append({"task": t.name, "key": t.key, "groups": ", ".join(t.groups),
                     "domain": t.domain, "score": s, "baseline": b,
                     "delta": None if s is None or b is None else s - b})
    for g in COLUMNS:
        s, b = entry.groups.get(g), (base.groups.get(g) if base else None)
        rows.append({"task": g if g != AVERAGE else f"Average over {len(suite.scored)}",
                     "key": f"aggregate:{g}", "groups": "aggregate", "domain": "", "score": s,
                     "baseline": b, "delta": None if s is None or b is None else s - b})
    columns = [("task", "Task"), ("key", "Key"), ("groups", "Groups"), ("domain", "Domain"),
               ("score", "Score"), ("baseline", "Baseline"), ("delta", "Delta")]
    meta = {"id": entry.id, "method": entry.method, "suite": suite.name,
            "baseline": None if base is None else {"id": base.id, "method": base.method}}
    return Table(f"tasks-{entry.id}", columns, rows, meta)


def entry_json(store: Store, entry: Entry, base: Entry | None) -> dict[str, Any]:
    """Everything public about an entry (the contact e-mail is left out)."""
    return {"id": entry.id, "kind": entry.kind, "source": entry.source, "scale": entry.scale,
            "track": entry.track, "method": entry.method, "authors": entry.authors,
            "writeup": entry.writeup, "date": entry.date, "dataset_size": entry.dataset_size,
            "model": entry.model, "aggregates": entry.groups, "tasks": entry.tasks,
            "record": entry.public_record(), "manifest": entry.manifest,
            "files": [{"dest": f.dest, "bytes": f.bytes, "sha256": f.sha256} for f in entry.files],
            "received": entry.received, "submitted_with_token": entry.submitter,
            "task_table": task_table(store, entry, base).to_json()}


#: matplotlib's shared state (font cache, text layout) is not documented as thread-safe:
#: the server draws one figure at a time.
_PLOT_LOCK = threading.Lock()


def _save_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def delta_png(store: Store, entry: Entry, base: Entry) -> bytes:
    """``report``'s per-task delta panel (aggregates when the baseline has no tasks)."""
    from matplotlib.figure import Figure

    from datacomp_sci.reporting.report import _plot_deltas

    suite = store.suite
    if entry.tasks and base.tasks:
        pairs = [(t.name, entry.tasks[t.key] - base.tasks[t.key]) for t in suite.scored
                 if t.key in entry.tasks and t.key in base.tasks]
    else:
        pairs = [(g, entry.groups[g] - base.groups[g]) for g in COLUMNS
                 if entry.groups.get(g) is not None and base.groups.get(g) is not None]
    pairs.sort(key=lambda p: (p[1], p[0]))
    with _PLOT_LOCK:
        fig = Figure(figsize=(7.5, 1.2 + 0.22 * max(len(pairs), 3)), layout="constrained")
        _plot_deltas(fig.add_subplot(1, 1, 1), entry.method, pairs, base.method)
        return _save_png(fig)


# --- comparison -------------------------------------------------------------------------------

def labels(entries: list[Entry]) -> list[str]:
    """Column labels: the method, with the id when two share a name."""
    names = [e.method for e in entries]
    return [n if names.count(n) == 1 else f"{n} ({e.id[:8]})" for n, e in zip(names, entries,
                                                                                strict=True)]


def compare_table(store: Store, entries: list[Entry]) -> Table:
    suite = store.suite
    cols = [f"e{i}" for i in range(len(entries))]
    rows = []
    for g in COLUMNS:
        rows.append({"task": g if g != AVERAGE else f"Average over {len(suite.scored)}",
                     "kind": "aggregate", **{c: e.groups.get(g) for c, e in zip(cols, entries,
                                                                                strict=True)}})
    rows.append({"task": "Dataset size", "kind": "size",
                 **{c: e.dataset_size for c, e in zip(cols, entries, strict=True)}})
    for t in suite.scored:
        rows.append({"task": t.name, "kind": "task",
                     **{c: e.tasks.get(t.key) for c, e in zip(cols, entries, strict=True)}})
    for r in rows:
        vals = [r[c] for c in cols if isinstance(r[c], float)]
        r["best"] = max(vals) if len(vals) > 1 and r["kind"] != "size" else None
    columns = [("task", "Task"), *zip(cols, labels(entries), strict=True)]
    meta = {"ids": [e.id for e in entries], "suite": suite.name}
    return Table("compare-" + "-".join(e.id for e in entries), columns, rows, meta)


def compare_png(store: Store, entries: list[Entry]) -> bytes:
    """Grouped bars of the five aggregates, one colour per entry."""
    with _PLOT_LOCK:
        return _draw_compare(store.suite, entries)


def _draw_compare(suite: Suite, entries: list[Entry]) -> bytes:
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(COLUMNS))
    width = 0.8 / len(entries)
    for i, (e, label) in enumerate(zip(entries, labels(entries), strict=True)):
        vals = [e.groups.get(g) for g in COLUMNS]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), [v or 0.0 for v in vals], width, label=label,
                      color=f"C{i}", hatch="///" if e.kind == "baseline" else None,
                      edgecolor="white", linewidth=0.5)
        for b, v in zip(bars, vals, strict=True):
            ax.annotate("–" if v is None else f"{v:.3f}",
                        (b.get_x() + b.get_width() / 2, b.get_height()), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [*COLUMNS[:-1], f"{AVERAGE} ({len(suite.scored)})"])
    top = max([v for e in entries for v in e.groups.values() if v is not None] or [1.0]) or 1.0
    ax.set_ylim(0, top * 1.3)
    ax.set_ylabel("mean main metric")
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=min(len(entries), 2))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    return _save_png(fig)


def resolve_compare(store: Store, ids: list[str]) -> list[Entry]:
    ids = list(dict.fromkeys(i for i in ids if i))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise ValueError(f"compare 2 to {MAX_COMPARE} entries (got {len(ids)})")
    entries = [store.get(i) for i in ids]
    unknown = [i for i, e in zip(ids, entries, strict=True) if e is None]
    if unknown:
        raise LookupError(f"no entry {', '.join(unknown)}")
    return entries
