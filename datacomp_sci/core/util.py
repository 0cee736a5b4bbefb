"""Small helpers shared by every stage: atomic writes, hashing, stable JSON, versions."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing.context as _mp_context
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def dumps_stable(obj: Any, indent: int | None = 2) -> str:
    """JSON with sorted keys and a trailing newline: same object, same bytes."""
    return json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"


def parallel_map(fn: Callable[[Any], Any], items: list, workers: int) -> Iterator[Any]:
    """``map(fn, items)`` in order: in-process for one worker or item, else over a spawned
    process pool (``fn`` and the items must pickle), started lazily. Ctrl-C behaves as in
    :func:`worker_pool`: workers ignore it, the pool is terminated, the parent raises."""
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    with QuietContext("spawn").Pool(min(workers, len(items)), initializer=ignore_sigint) as pool:
        yield from pool.imap(fn, items)  # leaving the block early terminates the workers


# --- worker processes and Ctrl-C ---------------------------------------------------------------
# A terminal sends Ctrl-C (SIGINT) to every process of the foreground group: each worker
# would print its own KeyboardInterrupt traceback. Workers therefore ignore SIGINT (set
# while they are started, so it holds from their first instruction, and again by the
# pool initializer); only the parent sees it, terminates them, and the command line
# prints one line. Every stage's process pool (and embed's, later) goes through here.

def ignore_sigint() -> None:
    """Pool initializer: this worker ignores Ctrl-C (its parent handles it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the block runs (on the main thread; elsewhere a no-op, as
    signal dispositions can only change there)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class _QuietStart:
    def start(self) -> None:
        with _sigint_ignored():  # the child inherits SIG_IGN through fork and exec
            super().start()  # type: ignore[misc]


class _QuietSpawnProcess(_QuietStart, _mp_context.SpawnProcess):
    pass


_QUIET_PROCESS: dict[type, type] = {_mp_context.SpawnProcess: _QuietSpawnProcess}
if hasattr(_mp_context, "ForkProcess"):  # POSIX
    class _QuietForkProcess(_QuietStart, _mp_context.ForkProcess):
        pass

    class _QuietForkServerProcess(_QuietStart, _mp_context.ForkServerProcess):
        pass

    _QUIET_PROCESS.update({_mp_context.ForkProcess: _QuietForkProcess,
                           _mp_context.ForkServerProcess: _QuietForkServerProcess})


class QuietContext:
    """A multiprocessing context whose processes start with SIGINT ignored (inherited
    through fork and exec); everything else is the wrapped context's."""

    def __init__(self, method: str | None = None):
        self._ctx = _mp_context._default_context.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def Pool(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (multiprocessing's name)
        from multiprocessing.pool import Pool

        return Pool(*args, context=self, **kwargs)

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        return _QUIET_PROCESS.get(self._ctx.Process, self._ctx.Process)(*args, **kwargs)


@contextlib.contextmanager
def worker_pool(workers: int, method: str | None = None) -> Iterator[Any]:
    """A ``ProcessPoolExecutor`` whose workers ignore Ctrl-C. If the block raises
    (KeyboardInterrupt included) pending work is cancelled and the workers are terminated
    at once instead of being waited for; the exception goes on to the caller."""
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=QuietContext(method),
                               initializer=ignore_sigint)
    try:
        yield pool
    except BaseException:
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)
        raise
    pool.shutdown(wait=True)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/datacomp-sci``, else ``~/.cache/datacomp-sci`` (a relative
    ``XDG_CACHE_HOME`` counts as unset, as the XDG spec says)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "datacomp-sci"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)(\.wal)?$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale_temp(path: Path) -> bool:
    """True for a temp file of :func:`atomic_open`/:func:`atomic_path` whose writer was
    killed (its pid no longer runs, and it is not this process)."""
    m = _TMP_RE.match(path.name)
    return bool(m) and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1)))


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete the temp files that killed writers left below ``folder``
    (:func:`is_stale_temp`); returns how many. A resumed run calls it so that its output
    ends up exactly as an uninterrupted run's."""
    removed = 0
    root = Path(folder)
    if not root.is_dir():
        return 0
    for p in root.rglob(".*.tmp-*"):
        if p.is_file() and is_stale_temp(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed += 1
    return removed


def file_cache_name(fmt: str, path: str | os.PathLike, size: int, mtime_ns: int,
                    suffix: str) -> str:
    """Name of a cache file describing the file ``path`` as it is (size, mtime): a new
    name when the file or the cache ``fmt`` changes, so a stale entry is never read."""
    ident = "\0".join((fmt, str(path), str(size), str(mtime_ns)))
    return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:40] + suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside ``path`` for writers that take a path (DuckDB ``COPY``, a
    database file, a hard link); renamed over ``path`` only on success, removed (with any
    ``.wal`` beside it) otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    leftovers = (tmp, Path(f"{tmp}.wal"))
    for f in leftovers:
        f.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for f in leftovers:
            f.unlink(missing_ok=True)


def link_or_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Hard-link ``src`` to ``dest`` (same file system), else copy it; atomic either way."""
    import shutil

    with atomic_path(dest) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = True,
                buffering: int = -1) -> Iterator[IO]:
    """Open a temp file beside ``path``; rename it over ``path`` only on success.

    A reader (or a resumed run) never sees a half-written file. ``fsync=False`` is for
    intermediate files that can be recomputed: the rename is still atomic for a killed
    process, only a power failure could lose them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, mode, buffering=buffering) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_stable(obj))


def package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_revision(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of this project's source tree, or None when not a checkout."""
    here = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@contextlib.contextmanager
def serve_folder(folder: str | os.PathLike, requests: list[str] | None = None) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 only, for as long as the block runs; yields
    the base URL (``http://127.0.0.1:PORT``). Used by the demo (img2dataset downloads the
    generated pool from it) and by tests of every "remote" input. ``requests``, when
    given, receives the path of every request served (a request log for tests)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def log_request(self, code="-", size="-"):
            if requests is not None:
                requests.append(self.path)

    handler = functools.partial(Quiet, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
