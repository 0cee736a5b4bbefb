"""Ctrl-C: the terminal sends SIGINT to the whole foreground process group, workers
included. Only one line may come out ("interrupted: rerun the same command to resume"),
no worker traceback, and the rerun says how much it resumes.

Each test runs the command line in its own process group and interrupts it the way a
terminal does (``killpg``) at a moment where workers are surely busy: one input is served
by a loopback server that holds its answer until the test ends.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import make_shards

from datacomp_sci.core.uids import save_subset, uids_to_u8u8

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TAR = ROOT / "datacomp_sci" / "resources" / "samples" / "arxiv" / "arXiv_src_2101_001.tar"
ONE_LINE = "interrupted: rerun the same command to resume\n"


@pytest.fixture
def stalling_server() -> Iterator[Callable[[Path], tuple[str, threading.Event, threading.Event]]]:
    """Serve a folder on 127.0.0.1; a ranged GET (how fsspec reads a file's data, in a
    worker; the parent only lists and classifies inputs with plain GET and HEAD) sets
    ``asked`` and blocks until ``release`` is set (at the latest when the test ends).
    Returns (base URL, asked, release)."""
    releases = []
    servers = []

    def start(folder: Path) -> tuple[str, threading.Event, threading.Event]:
        asked, release = threading.Event(), threading.Event()
        releases.append(release)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                if self.headers.get("Range") and not release.is_set():
                    asked.set()
                    release.wait(120)
                return super().do_GET()

        srv = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", asked, release

    yield start
    for release in releases:
        release.set()
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "datacomp_sci.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _interrupt_when(proc: subprocess.Popen, ready: Callable[[], bool],
                    timeout: float = 120) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"finished before the interrupt: {proc.communicate()}")
        assert time.monotonic() < deadline, "never got ready"
        time.sleep(0.05)
    time.sleep(0.3)  # the workers are mid-unit
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: parent and workers
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.slow
def test_build_pool_ctrl_c_prints_one_line_and_rerun_says_resuming(tmp_path, stalling_server):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        shutil.copy(SAMPLE_TAR, src / f"arXiv_src_2101_{i:03d}.tar")
    remote = tmp_path / "remote"
    remote.mkdir()
    shutil.copy(SAMPLE_TAR, remote / "arXiv_src_2101_999.tar")
    url, asked, release = stalling_server(remote)
    out = tmp_path / "pool"
    args = ["build-pool", "arxiv", f"{url}/arXiv_src_2101_999.tar", str(src), "-o", str(out), "-j", "2",
            "--no-progress"]
    units = out / "_work" / "units"
    # units 0-3 are submitted (a look-ahead of 4): worker 1 hangs on unit 0, worker 2 does
    # 1-3 and then waits for work, where an interrupt used to print a traceback
    rc, err = _interrupt_when(
        _cli(args), lambda: asked.is_set() and len(list(units.glob("*.json"))) >= 3)
    assert (rc, err) == (130, ONE_LINE)
    done = len(list(units.glob("*.json")))
    assert done == 3

    release.set()
    proc = _cli(args)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert err.startswith(f"resuming: {done} of 6 units done\n")


@pytest.mark.slow
def test_reshard_ctrl_c_prints_one_line_and_rerun_says_resuming(tmp_path, stalling_server):
    local = tmp_path / "local"
    samples = make_shards(local, 8, 20)
    remote = tmp_path / "remote"
    make_shards(remote, 1, 20, first_shard=8)
    (remote / "00000008.tar").rename(remote / "stall.tar")
    url, asked, release = stalling_server(remote)
    uids = [s.uid for shard in samples for s in shard]
    subset = tmp_path / "subset.npy"
    save_subset(subset, uids_to_u8u8(np.array(uids)))
    out = tmp_path / "out"
    args = ["reshard", "-i", f"{url}/stall.tar", "-i", str(local), "--subset", str(subset),
            "-o", str(out), "-j", "2", "--no-index-cache", "--no-progress"]
    work = out / "_work"
    # worker 1 hangs on the remote shard, worker 2 does the 8 local ones, then waits
    rc, err = _interrupt_when(
        _cli(args), lambda: asked.is_set() and len(list(work.glob("in_*.json"))) >= 8)
    assert (rc, err) == (130, ONE_LINE)
    done = len(list(work.glob("in_*.json")))
    assert done == 8
    release.set()
    proc = _cli(args)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert err.startswith(f"resuming: {done} of 9 input shards done\n")


POOL_SCRIPT = """
import sys, time
from datacomp_sci.core.util import parallel_map, worker_pool
try:
    if sys.argv[1] == "map":
        for _ in parallel_map(time.sleep, [0.01, 60, 60, 60], 2):
            print("ready", flush=True)
    else:
        with worker_pool(2) as pool:
            futures = [pool.submit(time.sleep, t) for t in (60, 0.01)]
            print("ready", flush=True)
            futures[0].result()
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


@pytest.mark.parametrize("kind", ["map", "executor"])
def test_worker_pools_ignore_ctrl_c_and_are_terminated_at_once(tmp_path, kind):
    """filter, dedup and decontaminate (parallel_map) and every executor pool: workers
    print nothing, the parent stops them instead of waiting for their work (60 s)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-c", POOL_SCRIPT, kind], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout.readline() == "ready\n"
    time.sleep(1.0)  # the workers are started and busy or waiting for work
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (130, "interrupted\n")
    assert time.monotonic() - t0 < 15
