"""Builders shared by several test files: a finished training run (info.json, a fake
checkpoint, DataComp's eval_results.jsonl for all 38 tasks), uid subset files, and a
complete, valid submission folder as `datacomp-sci submit` writes it."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from datacomp_sci.core.uids import save_subset, uids_to_u8u8
from datacomp_sci.core.util import sha256_file
from datacomp_sci.reporting.aggregate import DATACOMP_TASKS
from datacomp_sci.reporting.submission import SubmissionRequest, prepare_submission


def write_results(path: Path, drop: tuple[str, ...] = (), offset: float = 0.0) -> None:
    """DataComp's eval_results.jsonl; task i (tasklist order) scores (i+1)/100 + offset."""
    lines = []
    for i, t in enumerate(DATACOMP_TASKS):
        if t.name not in drop:
            v = round((i + 1) / 100 + offset, 6)
            metrics = {"acc1": v, "main_metric": v if t.main_metric else None}
            lines.append(json.dumps({"key": t.key, "dataset": t.name, "metrics": metrics}) + "\n")
    path.write_text("".join(lines))


def make_train_output(root: Path, scale: str = "small", drop: tuple[str, ...] = (),
                      offset: float = 0.0) -> Path:
    run = root / "train" / f"{scale}_scale"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "epoch_5.pt"
    ckpt.write_bytes(b"not really a checkpoint")
    info = {"model": "ViT-B-32", "checkpoint": "checkpoints/epoch_5.pt",
            "checkpoint_sha256": sha256_file(ckpt), "scale": scale,
            "scale_config": {"model": "ViT-B-32", "batch_size": 4096, "learning_rate": 5e-4},
            "versions": {"open_clip_torch": "3.2.0", "clip-benchmark": "1.6.2"},
            "git_revision": "0123456789abcdef0123456789abcdef01234567"}
    (run / "info.json").write_text(json.dumps(info))
    write_results(run / "eval_results.jsonl", drop=drop, offset=offset)
    return run


def uid_file(path: Path, n: int, dup: int = 0, start: int = 0) -> Path:
    uids = [f"{i:032x}" for i in range(start, start + n)] + [f"{start:032x}"] * dup
    path.parent.mkdir(parents=True, exist_ok=True)
    save_subset(path, uids_to_u8u8(uids))
    return path


def make_submission(root: Path, method: str = "arXiv+PMC", offset: float = 0.0, n: int = 5,
                    scale: str = "small", track: str = "filtering",
                    timestamp: str = "2026-11-22_00:00:00", **fields) -> Path:
    """A valid submission folder (submit's output) under ``root/<name>/sub``."""
    work = root / hashlib.sha256(repr((method, offset, n, scale, track, timestamp)).encode()).hexdigest()[:12]
    run = make_train_output(work, scale=scale, offset=offset)
    npy = uid_file(work / "subset" / "uids.npy", n)
    req = SubmissionRequest(train_output=run.parent, track=track, method=method,
                            authors=fields.pop("authors", "A. Author"),
                            contact=fields.pop("contact", "a@example.org"), output=work / "sub",
                            samples=(npy,), timestamp=timestamp, **fields)
    prepare_submission(req)
    return work / "sub"


@contextlib.contextmanager
def live_board(store, options=None):
    """The leaderboard app of ``store`` served by uvicorn on 127.0.0.1 (a free port) in a
    thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from datacomp_sci.leaderboard.app import ServerOptions, create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(store, options or ServerOptions())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def tar_bytes(members: list[tuple]) -> bytes:
    """A tar built member by member: (name, bytes) for files, (name, tarfile type, linkname)
    for anything else."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            info = tarfile.TarInfo(m[0])
            if len(m) == 2:
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
            else:
                info.type, info.linkname = m[1], m[2]
                tar.addfile(info)
    return buf.getvalue()
