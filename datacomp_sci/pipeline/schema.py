"""The declared shape of an experiment file, checked whole before any step runs.

:data:`SECTION_KEYS` lists the keys each kind of mapping may hold (the top level, a pool,
its ``build:``, a filter, a run, ``report:``). A new step kind adds its section here
(e.g. ``"embed": {...}`` and ``"embed"`` under ``"experiment"``) and its name checks to
:data:`NAME_CHECKS`; :func:`validate` then rejects unknown keys with a did-you-mean and
names that do not exist (scales, filters, suites, pool configs), listing every problem at
once, in dry runs and real runs alike.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

#: kind -> {key: expected YAML type (a tuple of Python types), or None for any}
SECTION_KEYS: dict[str, dict[str, tuple[type, ...] | None]] = {
    "experiment": {
        "name": (str,), "description": (str,), "workdir": (str,), "scale": (str,),
        "suite": (str,), "evalsets": (str,), "workers": (int,), "pools": (dict,),
        "filters": (dict,), "runs": (dict,), "report": (dict,), "curate": (dict,),
        "embed": (dict,), "seed": (int,), "deterministic": (bool,),
    },
    "pool": {"build": (dict,), "path": (str,)},
    "build": {"source": (str,), "inputs": (list, str), "config": (str,)},
    "filter": {"name": (str,), "sql": (str,), "params": (dict,), "radius": (int,),
               "over": (list, str), "arch": (str,), "fraction": (int, float),
               "threshold": (int, float), "method": (str,), "isc_weights": (str,),
               "isc_threshold": (int, float), "imagenet_features": (str,), "centroids": (str,),
               "clusters": (int,), "wordnet": (str,)},
    "embed": {"pools": (list,), "models": (list, str), "b32_model": (str,), "l14_model": (str,),
              "b32_pretrained": (str,), "l14_pretrained": (str,), "faces_weights": (str,),
              "device": (str,)},
    "run": {"pools": (list,), "proportions": (str,)},
    "report": {"baseline": (str,)},
    "curate": {"method": (str,), "pools": (list,), "metadata": (str,), "kg": (str,),
               "t": (int, float), "seed": (int,), "text_columns": (list, str),
               "casefold": (bool,), "min_sitelinks": (int,), "types": (list, str)},
}

#: old key -> new key, per kind (accepted for one release, with a deprecation note)
DEPRECATED_KEYS: dict[str, dict[str, str]] = {"experiment": {"eval_data": "evalsets"}}

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {"experiment": ("pools", "runs", "scale", "evalsets")}


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(kind: str, raw: dict, where: str, problems: list[str],
               notes: list[str] | None = None) -> dict:
    """Report unknown keys and wrong types of one mapping of ``kind``; returns it with
    deprecated keys renamed."""
    allowed = SECTION_KEYS[kind]
    renamed = dict(raw)
    for old, new in DEPRECATED_KEYS.get(kind, {}).items():
        if old in renamed:
            if new in renamed:
                problems.append(f"{where}: `{old}` and `{new}` are the same key; keep `{new}`")
            else:
                renamed[new] = renamed.pop(old)
                if notes is not None:
                    notes.append(f"{where}: `{old}` is deprecated and will be removed in the "
                                 f"next release; write `{new}`")
    for key, value in renamed.items():
        if key not in allowed:
            problems.append(f"{where}: unknown key `{key}`{did_you_mean(key, allowed)}; "
                            f"allowed: {', '.join(allowed)}")
        elif allowed[key] is not None and value is not None and not isinstance(value, allowed[key]):
            want = " or ".join({dict: "a mapping", list: "a list", str: "a string",
                                int: "an integer", float: "a number",
                                bool: "true or false"}[t] for t in allowed[key])
            problems.append(f"{where}: `{key}` must be {want}, not {value!r}")
    for key in REQUIRED_KEYS.get(kind, ()):
        if key not in renamed:
            problems.append(f"{where}: missing `{key}`")
    return renamed


def check_name(what: str, value: Any, choices, where: str, problems: list[str],
               hint: str = "") -> None:
    """``value`` must be one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        problems.append(f"{where}: unknown {what} {value!r}{did_you_mean(value, choices)}; "
                        f"available: {', '.join(map(str, choices))}{hint}")


def _scales() -> list[str]:
    from datacomp_sci.training.scales import available_scales

    return available_scales()


def _suites() -> list[str]:
    from datacomp_sci.core.suites import available_suites

    return sorted(available_suites())


def _named_filters() -> list[str]:
    from datacomp_sci.subsets.filters import NAMED_FILTERS

    return list(NAMED_FILTERS)


def _sql_filters() -> list[str]:
    from datacomp_sci.core.resources import list_project_files

    return sorted(list_project_files("filters", ".sql"))


def _pool_configs() -> list[str]:
    from datacomp_sci.core.resources import list_project_files

    return sorted(list_project_files("pools", ".yaml"))


#: what a name is checked against: kind -> function listing what exists (a value that is
#: a path to an existing file is accepted too, see :func:`exists_or_named`)
NAME_CHECKS: dict[str, Callable[[], list[str]]] = {
    "scale": _scales,
    "suite": _suites,
    "filter": _named_filters,
    "sql filter": _sql_filters,
    "pool config": _pool_configs,
}


def exists_or_named(kind: str, value: str, where: str, problems: list[str]) -> None:
    """A name from :data:`NAME_CHECKS` or a path to an existing file (suites, SQL filters
    and pool configs may be given as paths)."""
    import os

    if kind != "scale" and kind != "filter" and os.path.isfile(os.path.expanduser(value)):
        return
    check_name(kind, value, NAME_CHECKS[kind](), where, problems)
