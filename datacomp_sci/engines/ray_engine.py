"""The Ray engine: each item is a Ray task (the only module that imports ``ray``).

Joining a cluster: ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), else
``$RAY_ADDRESS`` when set, else a Ray instance started on this machine for the run (with
``workers`` CPUs) and stopped at the end. When Ray is already initialised in this process
(a notebook, a test's cluster) that session is used as it is.

Failures: a task whose worker process dies, or that raises, is retried by Ray itself
(``max_retries`` = ``retries``, ``retry_exceptions=True``); when every attempt failed the
item's outcome is a :class:`~datacomp_sci.engines.TaskFailed`, never the end of the run.
Tasks must write their results where every node can read them (a shared file system or
object storage); the driver only receives their small summaries.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from datacomp_sci.core.deps import require
from datacomp_sci.engines import EngineOptions, TaskFailed, describe_error


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def connect(opts: EngineOptions) -> bool:
    """Initialise Ray for this process as ``opts`` says; True when this call started it
    (then :meth:`RayEngine.close` shuts it down)."""
    ray = require("ray")
    if ray.is_initialized():
        return False
    address = opts.address or ("auto" if os.environ.get("RAY_ADDRESS") else None)
    kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    if address is None:
        kwargs["num_cpus"] = opts.workers or os.cpu_count() or 1
    else:
        kwargs = {"address": address, "log_to_driver": False}
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise ValueError(f"cannot join the Ray cluster at {address}: {e}; start one with "
                              "`ray start --head` or check --ray-address") from None
    except OSError as e:  # starting Ray here failed (e.g. its socket paths are too long)
        hint = ("; set RAY_TMPDIR to a shorter folder (Ray's socket paths must fit in 107 "
                "bytes)" if "AF_UNIX path length" in str(e) else "")
        raise ValueError(f"cannot start Ray on this machine: {e}{hint}") from None
    return True


class RayEngine:
    name = "ray"

    def __init__(self, opts: EngineOptions) -> None:
        self.ray = require("ray")
        self.retries = opts.retries
        self.owned = connect(opts)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self._workers = opts.workers or max(1, cpus)
        self._remote = self.ray.remote(_call)

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def gpus(self) -> int:
        """GPUs in the cluster."""
        return int(self.ray.cluster_resources().get("GPU", 0))

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
            self.owned = False

    def _submit(self, fn, item, name: str, gpus: float = 0.0):
        return self._remote.options(name=name, num_cpus=1, num_gpus=gpus,
                                    max_retries=self.retries,
                                    retry_exceptions=True).remote(fn, item)

    def _outcome(self, ref) -> Any:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            cause = getattr(e, "cause", None)
            exc = cause if isinstance(cause, BaseException) else e
            return TaskFailed(describe_error(exc), self.retries + 1, exc)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, ordered: bool = True,
            name: str = "task", gpus: float = 0.0) -> Iterator[tuple[int, Any]]:
        fn_ref = self.ray.put(fn)  # shipped once, not with every task
        window = max(2 * self._workers, 4)
        pending: deque = deque()
        it = iter(enumerate(items))
        try:
            for pos, item in it:
                pending.append((pos, self._submit(fn_ref, item, name, gpus)))
                if len(pending) >= window:
                    break
            while pending:
                if ordered:
                    pos, ref = pending.popleft()
                else:
                    ready, _ = self.ray.wait([r for _, r in pending], num_returns=1)
                    at = next(k for k, (_, r) in enumerate(pending) if r == ready[0])
                    pos, ref = pending[at]
                    del pending[at]
                outcome = self._outcome(ref)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt[0], self._submit(fn_ref, nxt[1], name, gpus)))
                yield pos, outcome
        finally:
            for _, ref in pending:  # interrupted: do not leave tasks running
                self.ray.cancel(ref, force=True)
