"""The leaderboard's store: one SQLite database and content-addressed files in one folder.

Layout of a board folder ``DIR``::

    board.sqlite            entries (submissions and baseline rows), their files, tokens,
                            the board's settings (suite, scales, title)
    objects/ab/abcdef...    every stored file under its sha256 (written before the row)
    incoming/               uploads being received and checked (emptied at start)

A submission becomes visible in one SQLite transaction, after every one of its files is
in ``objects/`` (each written to a temp name, flushed and renamed): a process killed at
any moment leaves either the whole submission or none of it (at most some unreferenced
objects, which a later identical upload reuses). An entry's id is the hash of its record
and files, so the same submission sent twice (a retried upload) is stored once.

Tokens are random 256-bit strings shown once; only their sha256 is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from datacomp_sci.core.util import atomic_path, dumps_stable, remove_stale_temps
from datacomp_sci.reporting import paper
from datacomp_sci.reporting.aggregate import (
    AVERAGE,
    DIST_SHIFTS,
    IMAGENET,
    RETRIEVAL,
    VTAB,
)

DB_NAME = "board.sqlite"
SCHEMA_VERSION = 1
KINDS = ("submission", "baseline")
#: Table 3's columns -> database columns.
GROUP_COLUMNS: dict[str, str] = {IMAGENET: "imagenet", DIST_SHIFTS: "dist_shifts", VTAB: "vtab",
                                 RETRIEVAL: "retrieval", AVERAGE: "average"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('submission', 'baseline')),
    source TEXT NOT NULL,
    scale TEXT NOT NULL, track TEXT NOT NULL,
    method TEXT NOT NULL, authors TEXT NOT NULL, writeup TEXT, date TEXT,
    dataset_size INTEGER, model TEXT,
    imagenet REAL, dist_shifts REAL, vtab REAL, retrieval REAL, average REAL,
    tasks TEXT NOT NULL, record TEXT NOT NULL, manifest TEXT NOT NULL,
    received TEXT NOT NULL, submitter TEXT, hidden INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS files (
    entry TEXT NOT NULL REFERENCES entries(id), dest TEXT NOT NULL,
    bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (entry, dest));
CREATE INDEX IF NOT EXISTS entries_board ON entries (scale, track, hidden);
"""


@dataclass(frozen=True)
class BoardSettings:
    """What a board accepts: the evaluation suite and the scales (None: any scale)."""

    suite: str = "datacomp38"
    scales: tuple[str, ...] | None = ("small", "medium", "large", "xlarge")
    title: str = "DataComp-like leaderboard"

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "scales": list(self.scales) if self.scales else None,
                "title": self.title}


@dataclass(frozen=True)
class StoredFile:
    dest: str
    bytes: int
    sha256: str


@dataclass
class Entry:
    """One row of a ranking: a submission or a baseline."""

    id: str
    kind: str
    source: str                    # upload | import | paper | csv
    scale: str
    track: str
    method: str
    authors: str
    groups: dict[str, float | None]
    tasks: dict[str, float] = field(default_factory=dict)
    writeup: str | None = None
    date: str | None = None
    dataset_size: int | None = None
    model: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    received: str = ""
    submitter: str | None = None
    hidden: bool = False
    files: list[StoredFile] = field(default_factory=list)

    def public_record(self) -> dict[str, Any]:
        """The submission record without the contact e-mail (never shown)."""
        return {k: v for k, v in self.record.items() if k != "email"}


def entry_id(record: dict[str, Any], files: list[tuple[str, str]]) -> str:
    """Content id: the same record and files give the same id."""
    doc = dumps_stable({"record": record, "files": sorted(files)}, indent=None)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def paper_baselines() -> list[Entry]:
    """Table 3 of arXiv 2311.04711 (small scale, filtering track), as built-in baseline rows."""
    out = []
    for row in paper.TABLE3:
        slug = row.training_data.lower().replace(" + ", "-").replace(" ", "-")
        out.append(Entry(
            id=f"paper-{slug}", kind="baseline", source="paper", scale=paper.SCALE,
            track="filtering", method=row.training_data,
            authors=f"arXiv {paper.ARXIV_ID} (Table 3)", groups=dict(row.scores),
            writeup=f"https://arxiv.org/abs/{paper.ARXIV_ID}", model="ViT-B-32",
            manifest={"note": f"published aggregates of {paper.TITLE!r}; per-task scores "
                              "are not published in Table 3"}, received="built-in"))
    return out


class Store:
    """A board folder. Each call opens its own SQLite connection, so one Store serves
    concurrent requests (SQLite's WAL lets readers run beside the one writer)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.db = self.folder / DB_NAME
        if not self.db.is_file():
            raise FileNotFoundError(f"{self.folder}: no leaderboard here ({DB_NAME} missing); "
                                    "create one with `datacomp-sci leaderboard serve --db DIR` "
                                    "or `leaderboard import --db DIR ...`")
        self.settings = self._read_settings()
        self._suite = None

    @property
    def suite(self):
        """The board's suite (:class:`datacomp_sci.reporting.aggregate.Suite`), read once."""
        if self._suite is None:
            from datacomp_sci.reporting.aggregate import load_suite

            self._suite = load_suite(self.settings.suite)
        return self._suite

    # --- creation ---------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, settings: BoardSettings | None = None) -> Store:
        """Open a board, creating it (with ``settings``, else the defaults) when new. An
        existing board keeps its settings: asking for different ones is an error."""
        folder = Path(folder)
        if not (folder / DB_NAME).is_file():
            cls._create(folder, settings or BoardSettings())
        store = cls(folder)
        if settings is not None and settings != store.settings:
            raise ValueError(f"{folder}: this board was created with suite "
                             f"{store.settings.suite!r} and scales "
                             f"{', '.join(store.settings.scales or ['(any)'])}; leave out "
                             "--suite/--scales or use another --db folder")
        store.clean_incoming()
        remove_stale_temps(folder / "objects")
        return store

    @classmethod
    def _create(cls, folder: Path, settings: BoardSettings) -> None:
        from datacomp_sci.reporting.aggregate import load_suite

        load_suite(settings.suite)  # an unknown suite is an error before anything is written
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / DB_NAME) as tmp:
            con = sqlite3.connect(tmp)
            try:
                con.executescript(_SCHEMA)
                con.executemany("INSERT INTO settings VALUES (?, ?)", [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("settings", json.dumps(settings.to_json(), sort_keys=True))])
                con.commit()
            finally:
                con.close()
        store = cls(folder)
        with store.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
        if settings.suite == paper.SUITE and (settings.scales is None
                                              or paper.SCALE in settings.scales):
            for e in paper_baselines():
                store.add(e, [])

    def _read_settings(self) -> BoardSettings:
        with self.connect() as con:
            row = con.execute("SELECT value FROM settings WHERE key = 'settings'").fetchone()
        doc = json.loads(row[0])
        return BoardSettings(doc["suite"], tuple(doc["scales"]) if doc["scales"] else None,
                             doc.get("title") or BoardSettings.title)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA busy_timeout = 30000")
            con.execute("PRAGMA foreign_keys = ON")
            yield con
        finally:
            con.close()

    @property
    def incoming(self) -> Path:
        return self.folder / "incoming"

    def clean_incoming(self) -> int:
        """Remove what uploads interrupted by a killed server left behind."""
        if not self.incoming.is_dir():
            return 0
        n = 0
        for p in self.incoming.iterdir():
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            n += 1
        return n

    # --- files ------------------------------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        return self.folder / "objects" / sha256[:2] / sha256

    def put_object(self, source: Path, sha256: str, link: bool = False) -> Path:
        """Store a file under its sha256 (idempotent); ``link`` hard-links when possible.
        The temp name carries the process and thread, so concurrent writers of the same
        content never share one (the last rename wins, with identical bytes)."""
        dest = self.object_path(sha256)
        if dest.is_file() and dest.stat().st_size == source.stat().st_size:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}-{threading.get_ident()}.tmp-{os.getpid()}")
        try:
            linked = False
            if link:
                with contextlib.suppress(OSError):
                    os.link(source, tmp)
                    linked = True
            if not linked:
                shutil.copyfile(source, tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def file_path(self, entry_id: str, dest: str) -> Path | None:
        with self.connect() as con:
            row = con.execute("SELECT sha256 FROM files WHERE entry = ? AND dest = ?",
                              (entry_id, dest)).fetchone()
        return None if row is None else self.object_path(row[0])

    # --- entries ----------------------------------------------------------------------------
    def add(self, entry: Entry, files: list[tuple[Path, StoredFile]], link: bool = False) -> bool:
        """Store the files, then the row, in one transaction; False when the id exists."""
        for source, f in files:
            self.put_object(source, f.sha256, link=link)
        cols = {
            "id": entry.id, "kind": entry.kind, "source": entry.source, "scale": entry.scale,
            "track": entry.track, "method": entry.method, "authors": entry.authors,
            "writeup": entry.writeup, "date": entry.date, "dataset_size": entry.dataset_size,
            "model": entry.model,
            **{c: entry.groups.get(g) for g, c in GROUP_COLUMNS.items()},
            "tasks": json.dumps(entry.tasks, sort_keys=True),
            "record": json.dumps(entry.record, sort_keys=True),
            "manifest": json.dumps(entry.manifest, sort_keys=True),
            "received": entry.received or now_utc(), "submitter": entry.submitter,
            "hidden": int(entry.hidden)}
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                cur = con.execute(
                    f"INSERT INTO entries ({', '.join(cols)}) VALUES "
                    f"({', '.join('?' * len(cols))}) ON CONFLICT (id) DO NOTHING",
                    list(cols.values()))
                created = cur.rowcount == 1
                if created:
                    con.executemany("INSERT INTO files VALUES (?, ?, ?, ?)",
                                    [(entry.id, f.dest, f.bytes, f.sha256) for _, f in files])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return created

    def _entry(self, row: sqlite3.Row, files: list[StoredFile] | None = None) -> Entry:
        return Entry(
            id=row["id"], kind=row["kind"], source=row["source"], scale=row["scale"],
            track=row["track"], method=row["method"], authors=row["authors"],
            groups={g: row[c] for g, c in GROUP_COLUMNS.items()}, tasks=json.loads(row["tasks"]),
            writeup=row["writeup"], date=row["date"], dataset_size=row["dataset_size"],
            model=row["model"], record=json.loads(row["record"]),
            manifest=json.loads(row["manifest"]), received=row["received"],
            submitter=row["submitter"], hidden=bool(row["hidden"]), files=files or [])

    def get(self, entry_id: str, include_hidden: bool = False) -> Entry | None:
        with self.connect() as con:
            row = con.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
            if row is None or (row["hidden"] and not include_hidden):
                return None
            files = [StoredFile(r["dest"], r["bytes"], r["sha256"]) for r in con.execute(
                "SELECT dest, bytes, sha256 FROM files WHERE entry = ? ORDER BY dest",
                (entry_id,))]
        return self._entry(row, files)

    def entries(self, scale: str | None = None, track: str | None = None,
                include_hidden: bool = False) -> list[Entry]:
        """Entries in ranking order: Average (highest first, missing last), then date, id."""
        where, args = [], []
        for col, val in (("scale", scale), ("track", track)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if not include_hidden:
            where.append("hidden = 0")
        sql = ("SELECT * FROM entries" + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY average IS NULL, average DESC, date, id")
        with self.connect() as con:
            return [self._entry(r) for r in con.execute(sql, args)]

    def boards(self) -> list[tuple[str, str, int]]:
        """(scale, track, visible entries) of every board that has entries."""
        with self.connect() as con:
            rows = con.execute("SELECT scale, track, count(*) FROM entries WHERE hidden = 0 "
                               "GROUP BY scale, track").fetchall()
        order = {s: i for i, s in enumerate(self.settings.scales or ())}
        return sorted(((r[0], r[1], r[2]) for r in rows),
                      key=lambda b: (order.get(b[0], len(order)), b[0], b[1]))

    def set_hidden(self, entry_id: str, hidden: bool) -> Entry:
        with self.connect() as con:
            cur = con.execute("UPDATE entries SET hidden = ? WHERE id = ?", (int(hidden), entry_id))
            if cur.rowcount == 0:
                raise ValueError(f"no entry {entry_id!r} on the board at {self.folder}")
        return self.get(entry_id, include_hidden=True)

    # --- tokens -----------------------------------------------------------------------------
    def add_token(self, name: str) -> str:
        """A new upload token for ``name``; returns it (only its hash is kept)."""
        if not name.strip():
            raise ValueError("token name is empty: name whom the token is for")
        token = secrets.token_urlsafe(32)
        with self.connect() as con:
            try:
                con.execute("INSERT INTO tokens VALUES (?, ?, ?)",
                            (name, hash_token(token), now_utc()))
            except sqlite3.IntegrityError:
                raise ValueError(f"a token named {name!r} exists; remove it first or choose "
                                 "another name") from None
        return token

    def remove_token(self, name: str) -> None:
        with self.connect() as con:
            if con.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount == 0:
                raise ValueError(f"no token named {name!r}")

    def tokens(self) -> list[tuple[str, str]]:
        with self.connect() as con:
            return [(r[0], r[1]) for r in con.execute("SELECT name, created FROM tokens "
                                                      "ORDER BY name")]

    def check_token(self, token: str | None) -> str | None:
        """The token's name, or None when it is not valid."""
        if not token:
            return None
        digest = hash_token(token)
        with self.connect() as con:
            rows = con.execute("SELECT name, sha256 FROM tokens").fetchall()
        for name, stored in rows:
            if secrets.compare_digest(stored, digest):
                return name
        return None
