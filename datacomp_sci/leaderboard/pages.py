"""HTML pages, rendered with Jinja2 (autoescaping on for every template: a method named
``<script>`` is shown as text), for the live server and the static export alike.

Every link is relative to the page (``root`` is ``../`` per folder level), so the same
pages work at ``/`` on the server, under any prefix, and as a static copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacomp_sci import __version__
from datacomp_sci.leaderboard import views
from datacomp_sci.leaderboard.store import Entry, Store

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _score(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def _delta(x: Any) -> str:
    return "" if x is None else f"{x:+.3f}"


def _size(x: Any) -> str:
    return "–" if x is None else f"{int(x):,}"


def _bytes(x: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if x < 1024 or unit == "GiB":
            return f"{x:,.0f} {unit}" if unit == "B" else f"{x:,.1f} {unit}"
        x /= 1024
    return str(x)


def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(score=_score, delta=_delta, size=_size, nbytes=_bytes)
    return env


def root_of(path: str) -> str:
    """The relative prefix from a page at ``path`` (``board/s/t/``) to the site root."""
    depth = path.count("/")
    return "../" * depth if depth else "./"


@dataclass
class Pages:
    store: Store
    static: bool = False       # the exported copy: no forms, no uploads, no API

    def __post_init__(self):
        self.env = environment()

    def _render(self, template: str, path: str, **ctx: Any) -> str:
        boards = [{"scale": s, "track": t, "count": n, "url": views.board_url(s, t),
                   "current": ctx.get("board") == (s, t)} for s, t, n in self.store.boards()]
        return self.env.get_template(template).render(
            root=root_of(path), static=self.static, settings=self.store.settings,
            boards=boards, version=__version__, **ctx)

    def index(self) -> str:
        tops = []
        for s, t, n in self.store.boards():
            table, _ = views.ranking(self.store, s, t)
            tops.append({"scale": s, "track": t, "count": n, "url": views.board_url(s, t),
                         "rows": table.rows[:3]})
        return self._render("index.html", "", title=self.store.settings.title, tops=tops)

    def board(self, scale: str, track: str, compare: str | None = None) -> str:
        table, _ = views.ranking(self.store, scale, track)
        if not table.rows:
            raise LookupError(f"no entries for scale {scale!r}, track {track!r}")
        top = max([r["average"] for r in table.rows if r["average"] is not None] or [1.0])
        return self._render("board.html", views.board_url(scale, track), board=(scale, track),
                            title=f"{scale} scale, {track} track", table=table,
                            n_scored=len(self.store.suite.scored),
                            top=top or 1.0, entry_url=views.entry_url, compare=compare)

    def entry(self, entry: Entry, base: Entry | None) -> str:
        table = views.task_table(self.store, entry, base)
        n = len(self.store.suite.scored)
        return self._render(
            "submission.html", views.entry_url(entry.id), board=(entry.scale, entry.track),
            title=entry.method, entry=entry, base=base, table=table,
            tasks=table.rows[:n], aggregates=table.rows[n:],
            choices=views.baseline_choices(self.store, entry), entry_url=views.entry_url,
            board_url=views.board_url(entry.scale, entry.track))

    def compare(self, entries: list[Entry]) -> str:
        table = views.compare_table(self.store, entries)
        return self._render("compare.html", views.compare_url([e.id for e in entries]),
                            title="Compare " + " · ".join(views.labels(entries)),
                            entries=entries, table=table, cols=table.columns[1:],
                            entry_url=views.entry_url)

    def submit(self, problems: list[str] | None = None, accepted: Any = None,
               status: int = 200) -> str:
        return self._render("submit.html", "submit/", title="Submit", problems=problems or [],
                            accepted=accepted, limits=None, entry_url=views.entry_url)

    def error(self, status: int, message: str, path: str = "") -> str:
        return self._render("error.html", path, title=f"{status}", status=status,
                            message=message)
