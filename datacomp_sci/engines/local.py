"""The local engine: this machine's processes (spawned, never forked), with bounded
look-ahead, per-task retries, and a fresh pool when a worker process dies."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from datacomp_sci.core.util import QuietContext, ignore_sigint
from datacomp_sci.engines import USER_ERRORS, TaskFailed, describe_error


class LocalEngine:
    name = "local"

    def __init__(self, workers: int, retries: int = 2) -> None:
        self._workers, self.retries = max(1, workers), retries

    @property
    def workers(self) -> int:
        return self._workers

    def close(self) -> None:
        pass

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, ordered: bool = True,
            name: str = "task") -> Iterator[tuple[int, Any]]:
        if self._workers <= 1 or len(items) <= 1:
            for pos, item in enumerate(items):
                yield pos, self._inline(fn, item)
            return
        yield from _PoolRun(fn, items, min(self._workers, len(items)), self.retries,
                            ordered).run()

    def _inline(self, fn: Callable[[Any], Any], item: Any) -> Any:
        for attempt in range(1, self.retries + 2):
            try:
                return fn(item)
            except Exception as e:  # a task's failure is its outcome, not the run's end
                if attempt > self.retries or isinstance(e, USER_ERRORS):
                    return TaskFailed(describe_error(e), attempt, e)
        raise AssertionError("unreachable")


class _PoolRun:
    """One ``map`` over a process pool; the pool is replaced if a worker dies."""

    def __init__(self, fn, items, workers: int, retries: int, ordered: bool) -> None:
        self.fn, self.items, self.workers, self.retries = fn, items, workers, retries
        self.ordered = ordered
        self.window = max(2 * workers, 4)  # submitted but not yet yielded
        self.inflight: dict[cf.Future, int] = {}
        self.attempts: dict[int, int] = {}
        self.results: dict[int, Any] = {}
        self.pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # spawned, never forked; workers ignore Ctrl-C from their first instruction (the
        # parent terminates them and the command line prints one line)
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=QuietContext("spawn"),
                                      initializer=ignore_sigint)

    def _terminate(self) -> None:
        """Stop the workers at once (Ctrl-C, or an error that ends the run)."""
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)

    def _submit(self, pos: int) -> None:
        self.attempts[pos] = self.attempts.get(pos, 0) + 1
        self.inflight[self.pool.submit(self.fn, self.items[pos])] = pos

    def _failed(self, pos: int, exc: BaseException) -> None:
        if self.attempts[pos] > self.retries or isinstance(exc, USER_ERRORS):
            self.results[pos] = TaskFailed(describe_error(exc), self.attempts[pos], exc)
        else:
            self._submit(pos)

    def _collect(self) -> None:
        done, _ = cf.wait(list(self.inflight), return_when=cf.FIRST_COMPLETED)
        broken: list[tuple[int, BaseException]] = []
        for fut in done:
            pos = self.inflight.pop(fut)
            exc = fut.exception()
            if exc is None:
                self.results[pos] = fut.result()
            elif isinstance(exc, BrokenProcessPool):
                broken.append((pos, exc))
            else:
                self._failed(pos, exc)
        if broken:  # a worker died: every task of the pool is lost, start a fresh one
            lost = broken + [(pos, BrokenProcessPool("a worker process died"))
                             for pos in self.inflight.values()]
            self.inflight.clear()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = self._new_pool()
            for pos, exc in sorted(lost, key=lambda pe: pe[0]):
                self._failed(pos, exc)

    def run(self) -> Iterator[tuple[int, Any]]:
        n, next_submit, next_yield = len(self.items), 0, 0
        try:
            while next_yield < n:
                while next_submit < n and len(self.inflight) + len(self.results) < self.window:
                    self._submit(next_submit)
                    next_submit += 1
                if self.ordered:
                    if next_yield in self.results:
                        yield next_yield, self.results.pop(next_yield)
                        next_yield += 1
                        continue
                elif self.results:
                    for pos in sorted(self.results):
                        next_yield += 1
                        yield pos, self.results.pop(pos)
                    continue
                self._collect()
        except BaseException:
            self._terminate()
            raise
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
