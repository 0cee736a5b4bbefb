"""The one plain-text table printer of the command line (query results, evaluation and
download summaries, training plans, the demo's pool summary)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                 max_width: int | None = None, null: str = "", align: str | None = None,
                 separator: bool = True, indent: str = "") -> str:
    """An aligned text table: a header, a dashed separator (``separator``), the rows.

    ``None`` cells print as ``null``; newlines in cells become spaces; cells longer than
    ``max_width`` are cut with an ellipsis; ``align`` gives one character per column
    (``<`` left, ``>`` right; default all left). Trailing spaces are stripped.
    """

    def cell(v: Any) -> str:
        s = null if v is None else str(v).replace("\n", " ")
        if max_width is not None and len(s) > max_width:
            s = s[: max_width - 1] + "\u2026"
        return s

    body = [[cell(v) for v in row] for row in rows]
    head = [str(c) for c in columns]
    widths = [max([len(head[i])] + [len(r[i]) for r in body]) for i in range(len(head))]
    align = align or "<" * len(head)

    def line(cells: list[str]) -> str:
        parts = (c.rjust(w) if a == ">" else c.ljust(w)
                 for c, w, a in zip(cells, widths, align, strict=True))
        return (indent + "  ".join(parts)).rstrip()

    out = [line(head)]
    if separator:
        out.append(indent + "  ".join("-" * w for w in widths))
    out += [line(r) for r in body]
    return "\n".join(out)
