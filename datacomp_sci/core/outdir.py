"""One rule for output folders of resumable steps (build-pool, reshard, train, evaluate).

A step describes what it is computing by a *fingerprint* (a JSON-able dict of its
inputs and the options that change its result). It records the fingerprint in a state
file while it runs and in its final record (``pool.json``, ``meta.json``, ``info.json``,
``eval_meta.json``) when done. Then a rerun of the same command

* finds the finished result and does nothing (:func:`finished`),
* or resumes the unfinished one (:func:`claim`: temp files of the killed run are
  removed, so the result ends byte-identical to an uninterrupted run),
* and a run with other inputs or options is refused with the keys that differ, instead
  of mixing two results in one folder; ``--overwrite`` starts again.

The folder may be a local path or a :class:`~datacomp_sci.core.storage.Location` (a
prefix on object storage): the same rule then reads its records from there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from datacomp_sci.core.storage import Location
from datacomp_sci.core.util import atomic_write_text, dumps_stable, remove_stale_temps


def _normal(obj: Any) -> Any:
    """The fingerprint as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(dumps_stable(obj))


def fingerprint_diff(previous: dict | None, current: dict) -> list[str]:
    """Keys whose values differ between two fingerprints (sorted); [] when they match or
    when there is no previous one."""
    if previous is None:
        return []
    if not isinstance(previous, dict):
        return ["(unreadable)"]
    current = _normal(current)
    return sorted(k for k in set(current) | set(previous) if current.get(k) != previous.get(k))


def refuse_other_run(folder: Path | Location, what: str, diff: list[str], hint: str) -> None:
    """Raise the one error every step gives for a folder holding another run."""
    if diff:
        raise FileExistsError(
            f"{folder} holds {what} with different {', '.join(diff)}: {hint}")


def read_record(path: Path) -> dict | None:
    """A JSON record, or None when absent; ValueError (one line) when unreadable."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: unreadable ({e}); move it away to run again") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a JSON object; move it away to run again")
    return obj


def _read_location_record(loc: Location, rel: str) -> dict | None:
    """:func:`read_record` for a file on object storage."""
    if not loc.is_file(rel):
        return None
    try:
        obj = json.loads(loc.read_bytes(rel))
    except ValueError as e:
        raise ValueError(f"{loc.join(rel)}: unreadable ({e}); delete it to run again") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{loc.join(rel)}: not a JSON object; delete it to run again")
    return obj


def finished(folder: Path | Location, record: str, key: str, fingerprint: dict, what: str,
             state: str = "_work") -> dict | None:
    """The final record of the same finished run in ``folder``, or None when there is none
    (or it is unfinished: ``state`` still exists). A finished run of other inputs or
    options raises FileExistsError naming what differs."""
    if isinstance(folder, Location) and not folder.local:
        rec = _read_location_record(folder, record)
        if rec is None or folder.exists(state):
            return None
    else:
        folder = folder.path if isinstance(folder, Location) else folder
        rec = read_record(folder / record)
        if rec is None or (folder / state).exists():
            return None
    refuse_other_run(folder, what, fingerprint_diff(rec.get(key), fingerprint),
                     "choose another --output, or pass --overwrite to replace it")
    return rec


def claim(folder: Path | Location, fingerprint: dict, what: str, state_file: str = "_work/state.json",
          overwrite: bool = False, foreign_ok: tuple[str, ...] = ("_work",)) -> bool:
    """Make ``folder`` ready for a run with ``fingerprint``; returns True when resuming.

    ``overwrite`` deletes the folder first. An unfinished run of other inputs/options is
    refused (rerun the same command, or ``--overwrite``); so is a non-empty folder with
    no state file (files other than ``foreign_ok``). Temp files of a killed run are
    removed, then the state file is written atomically.
    """
    if isinstance(folder, Location) and not folder.local:
        return _claim_location(folder, fingerprint, what, state_file, overwrite, foreign_ok)
    folder = folder.path if isinstance(folder, Location) else folder
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    path = folder / state_file
    resuming = path.is_file()
    if resuming:
        previous = read_record(path)
        refuse_other_run(folder, f"an unfinished {what}", fingerprint_diff(previous, fingerprint),
                         "rerun it with the same arguments to resume, or pass --overwrite to "
                         "start again")
    elif folder.exists() and any(p.name not in foreign_ok for p in folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty and holds no {what}: choose another "
                              "--output, or pass --overwrite")
    remove_stale_temps(folder)  # of a killed run being resumed
    atomic_write_text(path, dumps_stable(fingerprint))
    return resuming


def _claim_location(loc: Location, fingerprint: dict, what: str, state_file: str,
                    overwrite: bool, foreign_ok: tuple[str, ...]) -> bool:
    """:func:`claim` on object storage: objects are only ever written whole, so there
    are no temp files to remove."""
    if overwrite:
        loc.rmtree()
    previous = _read_location_record(loc, state_file)
    if previous is not None:
        refuse_other_run(loc, f"an unfinished {what}", fingerprint_diff(previous, fingerprint),
                         "rerun it with the same arguments to resume, or pass --overwrite to "
                         "start again")
    elif any(name not in foreign_ok for name in loc.listdir()):
        raise FileExistsError(f"{loc} is not empty and holds no {what}: choose another "
                              "--output, or pass --overwrite")
    loc.write_text(state_file, dumps_stable(fingerprint))
    return previous is not None
