"""The ``datacomp-sci`` command line: a thin click layer.

Each command parses its options and calls one library function; the library never
imports click. Commands live in one module per pipeline stage (``pool``, ``annotate``,
``subsets``, ``curation``, ``resharding``, ``training``, ``evaluation``, ``reporting``,
``leaderboard``, ``pipeline``) and register
with the group in :mod:`.app`. ``python -m datacomp_sci.cli`` runs the same group (the
torchrun line of ``train``).
"""

from datacomp_sci.cli import (  # noqa: F401  (importing a module registers its commands)
    annotate,
    curation,
    evaluation,
    leaderboard,
    pipeline,
    pool,
    reporting,
    resharding,
    subsets,
    training,
)
from datacomp_sci.cli.app import main

__all__ = ["main"]
