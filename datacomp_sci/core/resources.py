"""Declarative files users edit (pools, SQL filters, evaluation suites, experiments) and
other files shipped inside the package (OpenCLIP model configs, the sample corpus).

They live in ``datacomp_sci/resources/`` as package data, so a wheel installed anywhere
finds them; a file of the same name in ``./<kind>/`` overrides the shipped one, and any
path can be given instead of a name.
"""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """A file shipped inside the installed package (``datacomp_sci/resources/...``)."""
    return RESOURCES.joinpath(*parts)


def project_file(kind: str, name_or_path: str, suffix: str) -> Path:
    """Resolve a declarative file by name or path.

    ``kind`` is a folder of declarative files (``pools``, ``filters``, ``eval_suites``,
    ``experiments``). A path that exists is used as is; otherwise ``NAME`` is looked up
    as ``<kind>/NAME<suffix>`` in the current directory (a user's own or edited copy),
    then among the files shipped inside the package (``datacomp_sci/resources/<kind>``),
    so an installed wheel finds its own.
    """
    p = Path(name_or_path)
    if p.exists():
        return p
    name = p.name if p.suffix == suffix else p.name + suffix
    bases = _declarative_dirs(kind)
    for base in bases:
        cand = base / name
        if cand.exists():
            return cand
    available = sorted({f.stem for base in bases if base.is_dir() for f in base.glob(f"*{suffix}")})
    raise FileNotFoundError(
        f"no {kind} file {name_or_path!r}: give a path, or one of: {', '.join(available) or '(none)'}"
    )


def _declarative_dirs(kind: str) -> list[Path]:
    return [Path.cwd() / kind, RESOURCES / kind]


def list_project_files(kind: str, suffix: str) -> dict[str, Path]:
    """name -> path of every declarative file of a kind (current directory wins)."""
    out: dict[str, Path] = {}
    for base in reversed(_declarative_dirs(kind)):
        if base.is_dir():
            for f in sorted(base.glob(f"*{suffix}")):
                out[f.stem] = f
    return dict(sorted(out.items()))
