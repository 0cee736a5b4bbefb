"""Benchmark: the leaderboard under load on loopback (bounded in count and time).

Starts ``datacomp-sci leaderboard serve`` as its own process (uvicorn, as in production)
on a fresh board, then at the same time sends N page requests (rankings, submission
pages, CSV/JSON exports, plots, the API; several at once) and M uploads all at once,
each a distinct valid submission (a folder written by ``submit``, sent as one tar with a
bearer token). Prints latency percentiles per kind and checks that every accepted
submission is on the board exactly once.

    python benchmarks/leaderboard.py                    # 200 pages + 20 concurrent uploads
    python benchmarks/leaderboard.py --pages 1000 --uploads 50 --json

No timing is asserted; ``tests/test_leaderboard_load.py`` runs it small and checks the
counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    """``leaderboard serve`` in its own process; returns once it answers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datacomp_sci.cli", "leaderboard", "serve", "--db", str(db),
         "--port", str(port)], stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/boards", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start in 60 s; see {log}")


def make_submissions(work: Path, n: int) -> list[Path]:
    """``n`` distinct valid submission folders: one built by ``submit``'s library code,
    then copies that differ in method name and time (the record, hence the id)."""
    import shutil

    import numpy as np

    from datacomp_sci.core.uids import save_subset, uids_to_u8u8
    from datacomp_sci.core.util import sha256_file
    from datacomp_sci.reporting.aggregate import load_suite
    from datacomp_sci.reporting.submission import SubmissionRequest, prepare_submission

    run = work / "train" / "small_scale"
    run.mkdir(parents=True)
    (run / "ckpt.pt").write_bytes(b"checkpoint")
    (run / "info.json").write_text(json.dumps({
        "model": "ViT-B-32", "checkpoint": "ckpt.pt", "scale": "small",
        "checkpoint_sha256": sha256_file(run / "ckpt.pt"),
        "scale_config": {"batch_size": 4096, "learning_rate": 5e-4}}))
    rng = np.random.default_rng(0)
    (run / "eval_results.jsonl").write_text("".join(
        json.dumps({"key": t.key, "dataset": t.name,
                    "metrics": {"main_metric": round(float(rng.uniform(0, 0.5)), 4)
                                if t.main_metric else None}}) + "\n"
        for t in load_suite().tasks))
    uids = sorted(f"{int(x):032x}" for x in rng.integers(0, 2**62, size=100_000))
    save_subset(work / "uids.npy", uids_to_u8u8(uids))
    first = work / "sub0"
    prepare_submission(SubmissionRequest(
        train_output=run.parent, track="filtering", method="load 0", authors="bench",
        contact="bench@example.org", output=first, samples=(work / "uids.npy",),
        timestamp="2026-12-04_00:00:00"))
    out = [first]
    for i in range(1, n):
        dest = work / f"sub{i}"
        shutil.copytree(first, dest)
        rec = json.loads((dest / "submission.json").read_text())
        rec.update(method_name=f"load {i}", timestamp=f"2026-12-04_00:00:{i % 60:02d}")
        (dest / "submission.json").write_text(json.dumps(rec))
        out.append(dest)
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"n": len(values), "p50_ms": qs[49] * 1e3, "p90_ms": qs[89] * 1e3,
            "p99_ms": qs[98] * 1e3, "max_ms": max(values) * 1e3}


def run_load(url: str, token: str, archives: list[Path], pages: int, page_workers: int,
             timeout: float) -> dict:
    from datacomp_sci.reporting.submission import ARCHIVE_TYPE

    lock = threading.Lock()
    page_times: list[float] = []
    by_kind: dict[str, list[float]] = {"html": [], "csv/json": [], "png": []}
    page_errors: list[str] = []
    uploads: list[dict] = []
    ids: list[str] = []

    def upload(archive: Path) -> None:
        t0 = time.perf_counter()
        with httpx.Client(timeout=timeout) as c:
            r = c.post(f"{url}/api/submissions", content=archive.read_bytes(),
                       headers={"Authorization": f"Bearer {token}",
                                "Content-Type": ARCHIVE_TYPE})
        doc = r.json()
        with lock:
            uploads.append({"status": r.status_code, "seconds": time.perf_counter() - t0,
                            "id": doc.get("id"), "problems": doc.get("problems")})
            if doc.get("id"):
                ids.append(doc["id"])

    def page(i: int, client: httpx.Client) -> None:
        with lock:
            known = list(ids)
        paths = ["/", "/board/small/filtering/", "/board/small/filtering/ranking.csv",
                 "/board/small/filtering/ranking.json", "/api/boards", "/submit/"]
        if known:
            e = known[i % len(known)]
            paths += [f"/submission/{e}/", f"/submission/{e}/tasks.csv",
                      f"/submission/{e}/delta.png", f"/api/submissions/{e}"]
        path = paths[i % len(paths)]
        t0 = time.perf_counter()
        r = client.get(url + path)
        dt = time.perf_counter() - t0
        kind = ("png" if path.endswith(".png") else
                "csv/json" if path.endswith((".csv", ".json")) or "/api/" in path else "html")
        with lock:
            page_times.append(dt)
            by_kind[kind].append(dt)
            if r.status_code != 200:
                page_errors.append(f"{path}: HTTP {r.status_code}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(archives)) as up_pool, \
            ThreadPoolExecutor(page_workers) as page_pool, \
            httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=page_workers)) as c:
        up = [up_pool.submit(upload, a) for a in archives]
        pg = [page_pool.submit(page, i, c) for i in range(pages)]
        for f in [*up, *pg]:
            f.result()
    wall = time.perf_counter() - t0

    ranking = httpx.get(f"{url}/board/small/filtering/ranking.json", timeout=timeout).json()
    listed = [r["id"] for r in ranking["rows"] if r["kind"] == "submission"]
    accepted = [u["id"] for u in uploads if u["status"] in (200, 201)]
    return {
        "wall_s": wall, "pages": percentiles(page_times), "page_errors": page_errors,
        "pages_by_kind": {k: percentiles(v) for k, v in by_kind.items()},
        "uploads": percentiles([u["seconds"] for u in uploads]),
        "upload_status": sorted(u["status"] for u in uploads),
        "accepted": len(accepted), "distinct_accepted": len(set(accepted)),
        "listed": len(listed),
        "every_accepted_listed_once": all(listed.count(i) == 1 for i in accepted)
        and len(listed) == len(set(accepted)),
        "rejections": [u["problems"] for u in uploads if u["status"] not in (200, 201)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=200, help="page requests")
    ap.add_argument("--uploads", type=int, default=20, help="concurrent uploads")
    ap.add_argument("--page-workers", type=int, default=8, help="page requests at once")
    ap.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    ap.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = ap.parse_args(argv)
    from datacomp_sci.leaderboard.store import Store
    from datacomp_sci.reporting.submission import pack_folder

    with tempfile.TemporaryDirectory(prefix="lb-bench-") as tmp:
        work = Path(tmp)
        subs = make_submissions(work / "subs", args.uploads)
        archives = []
        for s in subs:
            pack_folder(s, work / f"{s.name}.tar")
            archives.append(work / f"{s.name}.tar")
        store = Store.open(work / "board")
        token = store.add_token("bench")
        archive_bytes = archives[0].stat().st_size
        port = free_port()
        server = start_server(work / "board", port, work / "server.log")
        try:
            res = run_load(f"http://127.0.0.1:{port}", token, archives, args.pages,
                           args.page_workers, args.timeout)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    res["machine"] = f"{platform.node()} ({os.cpu_count()} cores, {platform.python_version()})"
    res["archive_bytes"] = archive_bytes
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{args.pages} page requests ({args.page_workers} at once) + {args.uploads} "
              f"concurrent uploads of {res['archive_bytes']:,} B in {res['wall_s']:.1f} s "
              f"[{res['machine']}]")
        rows = [("pages", res["pages"]), *((f"  {k}", v) for k, v in
                                           res["pages_by_kind"].items() if v),
                ("uploads", res["uploads"])]
        for kind, p in rows:
            print(f"  {kind:<10} n={p['n']:<4} p50 {p['p50_ms']:8.1f} ms  p90 {p['p90_ms']:8.1f} "
                  f"ms  p99 {p['p99_ms']:8.1f} ms  max {p['max_ms']:8.1f} ms")
        print(f"  upload answers {res['upload_status']}; {res['accepted']} accepted, "
              f"{res['listed']} listed; every accepted listed exactly once: "
              f"{res['every_accepted_listed_once']}; page errors: {len(res['page_errors'])}")
    ok = res["every_accepted_listed_once"] and not res["page_errors"] \
        and res["accepted"] == args.uploads
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
