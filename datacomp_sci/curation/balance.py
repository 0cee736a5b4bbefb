"""MetaCLIP's balancing with deterministic draws, and the per-entry counts table.

With threshold ``t`` and ``count_e`` the number of pairs matching entry ``e`` over the
whole pool, ``p_e = t / max(count_e, t)``; a pair matching entries ``E`` is kept with
probability ``1 - prod_{e in E} (1 - p_e)`` (MetaCLIP draws once per matched entry and
keeps the pair at the first success, which is the same probability). Pairs matching
nothing are dropped.

Upstream draws with an unseeded RNG. Here the draw of a pair is a function of its uid
and the seed only (:func:`uniform_draws`, SplitMix64 over the two uid halves and the
seed), so the kept set does not depend on the order of the rows, on how they are split
into pools or files, or on the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.core.draws import uniform_draws
from datacomp_sci.core.util import atomic_open

COUNTS_SCHEMA = pa.schema([
    pa.field("entry", pa.string()),
    pa.field("count", pa.int64()),
    pa.field("p_e", pa.float64()),
    pa.field("kept", pa.int64()),
])


def entry_probabilities(counts: np.ndarray, t: float) -> np.ndarray:
    """p_e = t / max(count_e, t) (1 for entries at or below t, including unmatched ones)."""
    if t <= 0:
        raise ValueError(f"--t must be positive (got {t})")
    counts = np.asarray(counts, dtype=np.float64)
    return t / np.maximum(counts, t)


def keep_probability(offsets: np.ndarray, concepts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per pair (CSR rows ``offsets``/``concepts``): 1 - prod(1 - p_e); 0 without matches."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.float64)
    lengths = np.diff(offsets)
    rows = np.flatnonzero(lengths)
    if len(rows):
        q = 1.0 - p[concepts]
        out[rows] = 1.0 - np.multiply.reduceat(q, offsets[rows])
    return out


@dataclass
class Balanced:
    """The rows kept at one threshold, and per-entry kept counts."""

    t: float
    keep: np.ndarray  # bool per row
    p: np.ndarray  # p_e per entry
    kept_per_entry: np.ndarray  # int64 per entry: matched pairs kept
    expected: float  # sum of the keep probabilities (expected number kept)


def balance(offsets: np.ndarray, concepts: np.ndarray, uid_hi: np.ndarray, uid_lo: np.ndarray,
            counts: np.ndarray, t: float, seed: int) -> Balanced:
    """Keep each pair with its MetaCLIP probability, drawn from (uid, seed)."""
    p = entry_probabilities(counts, t)
    prob = keep_probability(offsets, concepts, p)
    keep = uniform_draws(uid_hi, uid_lo, seed) < prob
    row_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    kept = np.bincount(concepts[keep[row_of]], minlength=len(counts)).astype(np.int64)
    return Balanced(t=t, keep=keep, p=p, kept_per_entry=kept, expected=float(prob.sum()))


def write_counts(path: Path, entries: list[str], counts: np.ndarray, p: np.ndarray,
                 kept: np.ndarray, labels: list[str] | None = None) -> None:
    """``entry_counts.parquet``: entry, count (matched pairs), p_e, kept (matched pairs kept),
    rows in metadata order; for entities ``entry`` is the entity id and a ``label`` column
    follows it."""
    cols = {"entry": pa.array(entries, pa.string()),
            "count": pa.array(np.asarray(counts, dtype=np.int64)),
            "p_e": pa.array(np.asarray(p, dtype=np.float64)),
            "kept": pa.array(np.asarray(kept, dtype=np.int64))}
    table = pa.table(cols, schema=COUNTS_SCHEMA)
    if labels is not None:
        table = table.add_column(1, "label", pa.array(labels, pa.string()))
    with atomic_open(path) as f:
        pq.write_table(table, f, compression="zstd")


def read_counts(path: str | Path, entries: list[str]) -> np.ndarray:
    """Counts from an earlier run's ``entry_counts.parquet``; its entries must be ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"counts file {path} does not exist")
    try:
        table = pq.read_table(path, columns=["entry", "count"])
    except (OSError, ValueError, KeyError, pa.ArrowInvalid) as e:
        raise ValueError(f"{path}: not an entry_counts.parquet (entry, count) file ({e})") from e
    if table.column("entry").to_pylist() != list(entries):
        raise ValueError(f"{path}: its entries are not those of the metadata given "
                         f"({table.num_rows} vs {len(entries)} entries, or another order): "
                         "recompute the counts without --counts")
    counts = np.asarray(table.column("count").fill_null(0).to_numpy(), dtype=np.int64)
    if (counts < 0).any():
        raise ValueError(f"{path}: negative counts")
    return counts


def plot_counts(path: Path, counts: np.ndarray, kept: np.ndarray, t: float, title: str) -> None:
    """Log-log plot of per-entry counts before and after balancing (entries ranked by their
    count before), t marked: the head is cut down towards t, the tail kept."""
    from datacomp_sci.core.deps import require

    require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(-np.asarray(counts), kind="stable")
    order = order[np.asarray(counts)[order] > 0]
    before, after = np.asarray(counts)[order], np.asarray(kept)[order]
    ranks = np.arange(1, len(order) + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    if len(order):  # both curves in the order of the counts before balancing
        ax.loglog(ranks, before, label=f"before ({int(before.sum()):,} matches)",
                  color="#888888", lw=1.5)
        pos = after > 0
        ax.loglog(ranks[pos], after[pos], label=f"after ({int(after.sum()):,} matches)",
                  color="#1f77b4", lw=1, marker=".", ms=2, ls="none" if len(order) > 200 else "-")
    head = int((counts > t).sum())
    ax.axhline(t, color="#d62728", ls="--", lw=1, label=f"t = {t:g} ({head:,} head entries)")
    if head:
        ax.axvline(head, color="#d62728", ls=":", lw=0.8)
    ax.set_xlabel("entry rank (by count)")
    ax.set_ylabel("matched pairs per entry")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    with atomic_open(path) as f:
        fig.savefig(f, format="png", metadata={"Software": None})
    plt.close(fig)
