"""Where units of work run: this machine's process pool (``local``) or a Ray cluster
(``ray``). The stages hand an engine a picklable function and a list of items (input
archives, input shards, output shards); the engine runs ``fn(item)`` for each, retries a
task that raised or whose worker died (at most ``retries`` more times) and yields one
outcome per item: the function's result, or a :class:`TaskFailed` saying why the last
attempt failed. What the stages write never depends on the engine: tasks write their
results atomically to the output location, and the driver assembles them in a fixed
order (docs/guide/distributed.md).

Only :mod:`.ray_engine` imports ``ray`` (the ``[ray]`` extra), lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EngineOptions:
    """Which engine runs the units, and how.

    ``workers``: concurrent tasks (local: processes, default all cores; ray: tasks in
    flight, default the cluster's CPUs). ``address``: the Ray cluster to join (``auto``,
    ``HOST:PORT`` or ``ray://HOST:PORT``); None joins ``$RAY_ADDRESS`` when set, else
    starts a Ray instance on this machine for the run. ``retries``: further attempts of a
    task that raised or whose worker died.
    """

    name: str = "local"
    workers: int | None = None
    address: str | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ValueError(f"unknown engine {self.name!r}: choose one of {', '.join(ENGINES)}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.address is not None and self.name != "ray":
            raise ValueError("--ray-address needs --engine ray")


# Errors that say what the user must change (an input changed under a resumed run, a
# folder that is not writable): the same on every attempt, so never retried, and re-raised
# as they are by the stage (the command prints their one line).
USER_ERRORS: tuple[type[BaseException], ...] = (FileExistsError, FileNotFoundError,
                                                 PermissionError, ValueError)


@dataclass(frozen=True)
class TaskFailed:
    """The outcome of a task that failed on every attempt."""

    error: str  # "ExceptionType: message" of the last attempt
    attempts: int
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def raise_error(self, what: str) -> None:
        """Raise for a stage that cannot go on without this task: the task's own error when
        it is one the user can act on, else :class:`TaskError` naming ``what`` failed."""
        if isinstance(self.exception, USER_ERRORS):
            raise self.exception
        raise TaskError(f"{what} failed ({self.error}; {self.attempts} attempts); rerun the "
                        "same command to resume")


class TaskError(RuntimeError):
    """A task the stage cannot do without failed on every attempt (one-line message)."""


class Engine(Protocol):
    name: str

    @property
    def workers(self) -> int: ...

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, ordered: bool = True,
            name: str = "task", gpus: float = 0.0) -> Iterator[tuple[int, Any]]:
        """Yield ``(position, result or TaskFailed)`` for every item: in item order when
        ``ordered`` (with a bounded look-ahead, so memory stays flat), else as tasks
        finish. ``name`` labels the tasks (Ray shows it in its process titles); ``gpus``
        is what one task needs (Ray schedules it on a GPU; the local engine ignores it)."""
        ...

    def close(self) -> None: ...


def describe_error(exc: BaseException) -> str:
    """One line for a failed attempt."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


def open_engine(opts: EngineOptions | None = None, start_method: str = "spawn") -> Engine:
    """The engine ``opts`` asks for, connected and ready (close it when done, or use
    :func:`engine_session`). ``start_method``: how the local engine starts its
    processes (``spawn``, or ``fork`` for stages whose parent holds no threads)."""
    opts = opts or EngineOptions()
    if opts.name == "ray":
        from datacomp_sci.engines.ray_engine import RayEngine

        return RayEngine(opts)
    from datacomp_sci.engines.local import LocalEngine

    return LocalEngine(opts.workers or os.cpu_count() or 1, opts.retries, start_method)


class engine_session:  # noqa: N801  (used as a context manager, like open())
    """``with engine_session(opts) as engine: ...``; closes what it opened."""

    def __init__(self, opts: EngineOptions | None = None, start_method: str = "spawn") -> None:
        self.opts, self.start_method = opts, start_method

    def __enter__(self) -> Engine:
        self.engine = open_engine(self.opts, self.start_method)
        return self.engine

    def __exit__(self, *exc) -> None:
        self.engine.close()
