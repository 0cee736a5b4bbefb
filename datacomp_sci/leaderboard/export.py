"""``leaderboard export``: a static copy of the board for any static web server.

Written into a temp folder beside the output and renamed into place at the end, so a
killed export leaves the previous copy (or nothing), never half a site. The same board
gives byte-identical files. What needs a server is left out: the upload form, the API,
the baseline chooser (each submission page compares with its default baseline) and
comparisons other than each board's top entries.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from datacomp_sci.core.util import dumps_stable
from datacomp_sci.leaderboard import views
from datacomp_sci.leaderboard.pages import STATIC, Pages
from datacomp_sci.leaderboard.store import Store


@dataclass
class ExportResult:
    output: Path
    pages: int = 0
    files: list[Path] = field(default_factory=list)


def _write(root: Path, rel: str, data: str | bytes, result: ExportResult) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    result.files.append(path)
    if rel.endswith(".html"):
        result.pages += 1


def export_site(store: Store, output: str | os.PathLike, overwrite: bool = False,
                progress=None) -> ExportResult:
    """Render every visible page of the board into ``output``."""
    out = Path(output)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists: pass --overwrite to replace it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    result = ExportResult(out)
    pages = Pages(store, static=True)
    try:
        shutil.copytree(STATIC, tmp / "static")
        _write(tmp, "index.html", pages.index(), result)
        for scale, track, _ in store.boards():
            table, entries = views.ranking(store, scale, track)
            url = views.board_url(scale, track)
            top = [e for e in entries if e.kind == "submission"][:views.MAX_COMPARE]
            compare = views.compare_url([e.id for e in top]) if len(top) >= 2 else None
            _write(tmp, url + "index.html", pages.board(scale, track, compare=compare), result)
            _write(tmp, url + "ranking.csv", table.to_csv(), result)
            _write(tmp, url + "ranking.json", dumps_stable(table.to_json()), result)
            if compare:
                ctable = views.compare_table(store, top)
                _write(tmp, compare + "index.html", pages.compare(top), result)
                _write(tmp, compare + "compare.csv", ctable.to_csv(), result)
                _write(tmp, compare + "compare.json", dumps_stable(ctable.to_json()), result)
                _write(tmp, compare + "compare.png", views.compare_png(store, top), result)
            for e in entries:
                entry = store.get(e.id)
                base = views.default_baseline(store, entry)
                eurl = views.entry_url(entry.id)
                _write(tmp, eurl + "index.html", pages.entry(entry, base), result)
                tasks = views.task_table(store, entry, base)
                _write(tmp, eurl + "tasks.csv", tasks.to_csv(), result)
                _write(tmp, eurl + "tasks.json", dumps_stable(tasks.to_json()), result)
                if base is not None:
                    _write(tmp, eurl + "delta.png", views.delta_png(store, entry, base), result)
                if progress:
                    progress(1)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.files = [out / p.relative_to(tmp) for p in result.files]
    return result
