"""Helpers shared by the test modules (imported as ``from helpers import ...``; pytest puts
``tests/`` on the path): tiny shards in img2dataset's webdataset layout, tiny pools of
metadata parquet, subset readers and DataComp results files.

``make_shards(folder, n_shards, per_shard, uid_fn)`` writes, per shard N, ``{N:08d}.tar``
(``K.jpg``, ``K.json``, ``K.txt``, members in sorted-extension order, written by
webdataset's ``TarWriter``), ``{N:08d}.parquet`` and ``{N:08d}_stats.json``, exactly the
files img2dataset writes for DataComp (docs/formats.md, "Shard layout"), and returns what
it wrote so tests can assert on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from datacomp_sci.core.schema import METADATA_SCHEMA
from datacomp_sci.core.uids import pair_uid, save_subset, u8u8_to_uids, uids_to_u8u8
from datacomp_sci.core.util import sha256_bytes, sha256_file
from datacomp_sci.reporting.submission import SubmissionRequest, prepare_submission

UidFn = Callable[[int, int], "str | None"]


_IMG2DATASET_SCHEMA = pa.schema([
    ("uid", pa.string()), ("caption", pa.string()), ("url", pa.string()), ("key", pa.string()),
    ("status", pa.string()), ("error_message", pa.string()), ("width", pa.int32()),
    ("height", pa.int32()), ("original_width", pa.int32()), ("original_height", pa.int32()),
    ("exif", pa.string()), ("sha256", pa.string()),
])


@dataclass(frozen=True)
class FakeSample:
    """One sample written by :func:`make_shards`."""

    shard: int
    index: int
    key: str  # img2dataset key, e.g. "000000010023"
    uid: str | None  # None: the sample's json has no uid
    caption: str
    members: dict[str, bytes]  # extension -> exact member bytes ("jpg", "json", "txt")


def default_uid(shard: int, index: int) -> str:
    return pair_uid("test", str(shard), str(index))


def tiny_jpeg(shard: int, index: int, size: int = 8) -> bytes:
    """A small, valid RGB JPEG whose colour depends on (shard, index)."""
    colour = ((shard * 37 + index * 11) % 256, (index * 53) % 256, (shard * 91 + 7) % 256)
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _sample(shard: int, index: int, key_digits: int, uid_fn: UidFn,
            caption_fn: Callable[[int, int], str], image_fn: Callable[[int, int], bytes]) -> FakeSample:
    key = f"{shard * 10**key_digits + index:0{key_digits + 8}d}"
    uid = uid_fn(shard, index)
    caption = caption_fn(shard, index)
    jpg = image_fn(shard, index)
    meta = {"uid": uid} if uid is not None else {}
    meta.update({
        "caption": caption, "url": f"http://example.invalid/{key}.jpg", "key": key,
        "status": "success", "error_message": None, "width": 8, "height": 8,
        "original_width": 8, "original_height": 8, "exif": "{}", "sha256": None,
    })
    members = {"jpg": jpg, "json": json.dumps(meta, indent=4).encode(), "txt": caption.encode()}
    return FakeSample(shard, index, key, uid, caption, members)


def write_shard_files(folder: Path, shard: int, samples: Sequence[FakeSample],
                      *, stats: bool = True, parquet: bool = True) -> None:
    """Write one shard's tar (+ parquet, + stats) for already built samples."""
    name = f"{shard:08d}"
    with open(folder / f"{name}.tar", "wb") as f:
        writer = wds.TarWriter(f, mtime=0.0)
        for s in samples:
            writer.write({"__key__": s.key, **s.members})
        writer.close()
    if parquet:
        rows = []
        for s in samples:
            meta = json.loads(s.members["json"])
            rows.append({k: meta.get(k) for k in _IMG2DATASET_SCHEMA.names})
        pq.write_table(pa.Table.from_pylist(rows, schema=_IMG2DATASET_SCHEMA), folder / f"{name}.parquet")
    if stats:
        n = len(samples)
        (folder / f"{name}_stats.json").write_text(json.dumps({
            "count": n, "successes": n, "failed_to_download": 0, "failed_to_resize": 0,
            "duration": 0, "start_time": 0, "end_time": 0, "status_dict": {"success": n},
        }, indent=4))


def make_shards(folder: str | Path, n_shards: int, per_shard: int | Sequence[int],
                uid_fn: UidFn = default_uid, *,
                caption_fn: Callable[[int, int], str] | None = None,
                image_fn: Callable[[int, int], bytes] = tiny_jpeg,
                samples_per_shard: int = 10000, first_shard: int = 0,
                stats: bool = True, parquet: bool = True) -> list[list[FakeSample]]:
    """Write ``n_shards`` img2dataset-layout shards into ``folder``; return their samples.

    ``per_shard`` is a count for every shard or one count per shard (unequal sizes).
    ``uid_fn(shard, index)`` gives each sample's uid (None: no uid in its json).
    ``samples_per_shard`` sets the key digits as img2dataset does (10000 -> 12 digits).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [per_shard] * n_shards if isinstance(per_shard, int) else list(per_shard)
    if len(sizes) != n_shards:
        raise ValueError("per_shard must be an int or one count per shard")
    key_digits = len(str(samples_per_shard - 1)) if samples_per_shard > 1 else 0
    caption_fn = caption_fn or (lambda s, i: f"caption of sample {i} in shard {s}")
    out = []
    for offset, size in enumerate(sizes):
        shard = first_shard + offset
        samples = [_sample(shard, i, key_digits, uid_fn, caption_fn, image_fn) for i in range(size)]
        write_shard_files(folder, shard, samples, stats=stats, parquet=parquet)
        out.append(samples)
    return out


def uid_of(i: int, prefix: str = "") -> str:
    return sha256_bytes(f"{prefix}{i}".encode())[:32]


def make_rows(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    return pa.table({n: [r.get(n) for r in rows] for n in schema.names}, schema=schema)


def write_pool(root: Path, rows: list[dict], name: str | None = None, files: int = 1,
               schema: pa.Schema = METADATA_SCHEMA) -> Path:
    """A pool folder: metadata/{N:08d}.parquet (rows split over files) [+ pool.json]."""
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    per = -(-len(rows) // files)
    for n in range(files):
        pq.write_table(make_rows(schema, rows[n * per:(n + 1) * per]),
                       root / "metadata" / f"{n:08d}.parquet")
    if name is not None:
        (root / "pool.json").write_text(json.dumps({"name": name, "source": "arxiv"}))
    return root


def loaded(path: Path) -> list[str]:
    return u8u8_to_uids(np.load(path))


def write_eval_results(path: Path, values: dict[str, float] | None = None,
                       drop: tuple[str, ...] = (), extra_lines: tuple[str, ...] = (),
                       offset: float = 0.0) -> Path:
    """DataComp's eval_results.jsonl for the 40 tasks of ``datacomp38``: task i (suite
    order) scores (i+1)/100 + offset unless ``values`` (display name -> score) says
    otherwise; tasks named in ``drop`` are left out; ``extra_lines`` are appended."""
    from datacomp_sci.core.suites import load_suite

    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, t in enumerate(load_suite("datacomp38").tasks):
        if t.name in drop:
            continue
        v = (values or {}).get(t.name, round((i + 1) / 100 + offset, 6))
        metrics = {"acc1": v, "main_metric": v if t.main_metric else None}
        lines.append(json.dumps({"key": t.key, "dataset": t.name, "metrics": metrics}))
    path.write_text("\n".join([*lines, *extra_lines]) + "\n")
    return path


def dead_pid() -> int:
    """The pid of a process that has exited (for temp files of a 'killed' writer)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


@contextlib.contextmanager
def hang_guard(seconds: float = 60.0):
    """Fail a test whose code does not return within ``seconds`` (SIGALRM, main thread).

    A bound against hangs on hostile input, far above the normal run time: speed itself
    is measured by the scripts under ``benchmarks/``, never asserted in unit tests."""
    import signal

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds:g} s: unbounded work on hostile input?")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pdf_pages(media_box: str, contents: list[bytes]) -> bytes:
    """A PDF with one page per content stream, all of one MediaBox."""
    n = len(contents)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode()]
    for i, content in enumerate(contents):
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [{media_box}] /Contents "
                    f"{4 + 2 * i} 0 R /Resources << >> >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


# --- training runs and submission folders ------------------------------------------------

def write_results(path: Path, drop: tuple[str, ...] = (), offset: float = 0.0) -> None:
    write_eval_results(path, drop=drop, offset=offset)


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


def kill_build_and_rerun(cmd: list[str], out: Path | str, units: int = 4, seconds: float = 240,
                         list_files: Callable[[str], list[str]] | None = None):
    """Run a ``build-pool`` command line, SIGKILL it once ``units`` unit results are saved,
    check it died unfinished, then rerun it to the end; returns the rerun's result.
    ``list_files(folder)``: the names in an output folder, for outputs that are not local
    folders (object storage); default: the local folder's."""
    import os
    import signal
    import subprocess
    import time

    def local_names(folder: str) -> list[str]:
        return [p.name for p in Path(folder).glob("*")]

    names = list_files or local_names
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = f"{out}/_work/units"
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if sum(n.endswith(".json") for n in names(work)) >= units:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    assert "pool.json" not in names(str(out))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def tiny_clip_weights(path: Path) -> Path:
    """Randomly initialised weights (torch seed 0) of the tiny CLIP model, saved to
    ``path``: the offline ``--*-pretrained PATH`` of embed tests (needs torch)."""
    import open_clip
    import torch

    from datacomp_sci.core.models import TINY_MODEL, register_models

    register_models()
    torch.manual_seed(0)
    torch.save(open_clip.create_model(TINY_MODEL).state_dict(), path)
    return path


@contextlib.contextmanager
def local_ray(temp_dir: str | None = None):
    """A local 2-CPU Ray cluster (yields its address). Its workers import this tree and
    the tests folder: they inherit PYTHONPATH, and any other variable set before this
    starts (e.g. a fake S3's endpoint), from this process. ``temp_dir``: Ray's session
    folder (short: Ray's socket paths must fit AF_UNIX's limit)."""
    import os

    import ray

    import datacomp_sci

    tests, repo = Path(__file__).resolve().parent, Path(datacomp_sci.__file__).resolve().parents[1]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(repo), str(tests)] + ([old] if old else []))
    extra = {"_temp_dir": temp_dir} if temp_dir else {}
    try:
        ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                       _node_ip_address="127.0.0.1", **extra)
        try:
            yield ctx.address_info["address"]
        finally:
            ray.shutdown()
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
