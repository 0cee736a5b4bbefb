"""Evaluation data on disk: download, verify, and a generated tiny suite.

Local layout (clip_benchmark's webdataset layout, one folder per task under DATA_DIR)::

    DATA_DIR/<folder>/classnames.txt                          (classification)
    DATA_DIR/<folder>/zeroshot_classification_templates.txt   ({c} = class name)
    DATA_DIR/<folder>/dataset_type.txt                        ("retrieval" for retrieval)
    DATA_DIR/<folder>/test/nshards.txt                        (N)
    DATA_DIR/<folder>/test/0.tar .. N-1.tar                   sNNNNNNN.<png|jpg|webp> +
        .cls (int label) | .txt (retrieval captions, one per line) and, for WILDS /
        fairness, .npy (int metadata vector, columns = the task's metadata_fields);
        WinoGAViL: sNNNNNNN.json {"cue", "candidates", "associations"} +
        sNNNNNNN.candNN.<png|jpg|webp> (one image per candidate, in order).

``download_evalsets`` is the only networked function in the evaluation path: it
fetches each task's files from ``base_url`` (a template with ``{repo}``, default the
model hub's ``resolve/main`` URL of ``source_repo``), writes them atomically, skips
files already present with the remote size, and verifies the result.
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datacomp_sci.core.suites import DEFAULT_BASE_URL, Suite, TaskSpec, load_suite
from datacomp_sci.core.util import atomic_open, atomic_write_bytes, atomic_write_text
from datacomp_sci.evaluation.evaluate import (
    count_samples,
    iter_winogavil,
    shard_paths,
    task_data_problem,
)

CHUNK = 1 << 20


@dataclass
class TaskDownload:
    key: str
    folder: str
    status: str  # "ok" | "skipped" | "failed"
    message: str = ""
    files_fetched: int = 0
    bytes_fetched: int = 0
    samples: int = 0


@dataclass
class DownloadSummary:
    data_dir: Path
    suite: str
    tasks: list[TaskDownload] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.tasks)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0 and self.count("skipped") == 0

    def table(self) -> str:
        rows = [(t.key, t.status, str(t.samples), str(t.files_fetched), t.message) for t in self.tasks]
        rows.insert(0, ("task", "status", "samples", "fetched", "note"))
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join([*(c.ljust(x) for c, x in zip(r[:4], w, strict=True)), r[4]]).rstrip() for r in rows]
        lines.append(
            f"{self.count('ok')} verified, {self.count('skipped')} skipped, {self.count('failed')} failed "
            f"in {self.data_dir}"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------- verification
def verify_task(task: TaskSpec, data_dir: Path) -> int:
    """Check a task's local layout; return its sample count or raise ValueError."""
    problem = task_data_problem(task, data_dir)
    if problem:
        raise ValueError(problem)
    folder = data_dir / task.folder
    shards = shard_paths(folder)
    for shard in shards:
        try:
            with tarfile.open(shard) as tf:
                tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ValueError(f"{shard} is not a readable tar ({e}): delete it and download again") from e
    if task.kind == "retrieval":
        kind = (folder / "dataset_type.txt").read_text().strip() if (folder / "dataset_type.txt").is_file() else ""
        if kind != "retrieval":
            raise ValueError(f"{folder}/dataset_type.txt must contain 'retrieval'")
    if task.kind in ("zeroshot_classification", "wilds", "fairness"):
        classes = [c for c in (folder / "classnames.txt").read_text().splitlines() if c.strip()]
        templates = (folder / "zeroshot_classification_templates.txt").read_text()
        objectives = task.group_eval.objectives if task.group_eval else ()
        if task.num_classes is not None and not objectives and len(classes) != task.num_classes:
            raise ValueError(f"{folder}/classnames.txt lists {len(classes)} classes, expected {task.num_classes}")
        if "{c}" not in templates:
            raise ValueError(f"{folder}/zeroshot_classification_templates.txt has no '{{c}}' placeholder")
    if task.kind == "winogavil":
        return sum(1 for _ in iter_winogavil(shards))
    return count_samples(shards)


# ---------------------------------------------------------------- download
def _head_size(url: str, timeout: float) -> int | None:
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            size = r.headers.get("Content-Length")
            return int(size) if size is not None else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def fetch(url: str, dest: Path, timeout: float = 60.0, optional: bool = False) -> int:
    """Download ``url`` to ``dest`` atomically; return bytes (0 if optional and absent)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, atomic_open(dest, "wb") as f:
            n = 0
            while chunk := r.read(CHUNK):
                f.write(chunk)
                n += len(chunk)
            return n
    except urllib.error.HTTPError as e:
        if optional and e.code == 404:
            return 0
        raise OSError(f"GET {url}: HTTP {e.code}") from e
    except urllib.error.URLError as e:
        raise OSError(f"GET {url}: {e.reason}") from e


def download_task(task: TaskSpec, data_dir: Path, base_url: str, timeout: float = 60.0, progress: bool = True) -> TaskDownload:
    from tqdm import tqdm

    rec = TaskDownload(task.key, task.folder, "ok")
    if task.source_repo is None:
        rec.status, rec.message = "skipped", (
            f"no public webdataset copy: build {data_dir / task.folder} in the documented layout"
        )
        return rec
    if task.kind == "winogavil":  # upstream CSV + image zip, converted locally
        from datacomp_sci.evaluation.winogavil import download_winogavil

        return download_winogavil(task, data_dir, base_url, timeout, progress)
    base = base_url.format(repo=task.source_repo)
    base = base if base.endswith("/") else base + "/"
    folder = data_dir / task.folder
    try:
        needs_names = task.kind != "retrieval"
        for name, optional in (("classnames.txt", not needs_names),
                               ("zeroshot_classification_templates.txt", not needs_names),
                               ("dataset_type.txt", True), ("test/nshards.txt", False)):
            n = fetch(base + name, folder / name, timeout, optional)
            rec.files_fetched += n > 0
            rec.bytes_fetched += n
        shards = shard_paths(folder)
        for shard in tqdm(shards, desc=task.key, unit="shard", disable=not progress):
            url = base + f"test/{shard.name}"
            if shard.is_file() and _head_size(url, timeout) == shard.stat().st_size:
                continue
            rec.bytes_fetched += fetch(url, shard, timeout)
            rec.files_fetched += 1
        rec.samples = verify_task(task, data_dir)
    except (OSError, ValueError) as e:
        rec.status, rec.message = "failed", str(e)
    return rec


def download_evalsets(
    data_dir: str | Path,
    suite: str | Path | Suite = "datacomp38",
    base_url: str = DEFAULT_BASE_URL,
    verify_only: bool = False,
    timeout: float = 60.0,
    progress: bool = True,
) -> DownloadSummary:
    """Fetch (or, with ``verify_only``, just check) every task of ``suite`` into ``data_dir``.

    A suite with ``generator: tiny`` is written locally by :func:`make_tiny_suite`.
    """
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    if "{repo}" not in base_url:
        raise ValueError(f"--base-url must contain '{{repo}}', got {base_url!r}")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    summary = DownloadSummary(data_dir, suite.name)
    if suite.generator == "tiny" and not verify_only:
        make_tiny_suite(data_dir)
    elif suite.generator not in (None, "tiny"):
        raise ValueError(f"unknown suite generator {suite.generator!r} (known: tiny)")
    for task in suite.tasks:
        if verify_only or suite.generator == "tiny":
            rec = TaskDownload(task.key, task.folder, "ok")
            try:
                rec.samples = verify_task(task, data_dir)
            except (OSError, ValueError) as e:
                rec.status, rec.message = "failed", str(e)
        else:
            rec = download_task(task, data_dir, base_url, timeout, progress)
        summary.tasks.append(rec)
    return summary


# ---------------------------------------------------------------- tiny generated suite
COLORS = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40),
    "purple": (150, 50, 190), "orange": (240, 140, 30),
}


def _png(rng: np.random.Generator, color: tuple[int, int, int], size: int = 32) -> bytes:
    from PIL import Image, ImageDraw

    noise = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
    img = Image.fromarray(noise, "RGB")
    x0, y0 = (int(v) for v in rng.integers(2, size // 2, size=2))
    ImageDraw.Draw(img).rectangle([x0, y0, x0 + size // 2 - 2, y0 + size // 2 - 2], fill=color)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_shards(folder: Path, samples: list[dict[str, bytes]], per_shard: int = 16) -> None:
    """Write ``folder/test/{i}.tar`` + ``nshards.txt`` deterministically (sorted members, mtime 0)."""
    test = folder / "test"
    chunks = [samples[i:i + per_shard] for i in range(0, len(samples), per_shard)] or [[]]
    for i, chunk in enumerate(chunks):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            for j, sample in enumerate(chunk):
                key = f"s{i * per_shard + j:07d}"
                for ext in sorted(sample):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime, info.mode = len(sample[ext]), 0, 0o644
                    tf.addfile(info, io.BytesIO(sample[ext]))
        atomic_write_bytes(test / f"{i}.tar", buf.getvalue())
    atomic_write_text(test / "nshards.txt", f"{len(chunks)}\n")


def _npy(values: list[int]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(values, dtype=np.int64))
    return buf.getvalue()


def _write_classification(folder: Path, classes: list[str], n: int, seed: int,
                          meta: list[list[int]] | None = None) -> list[int]:
    rng = np.random.default_rng(seed)
    labels = [i % len(classes) for i in range(n)]
    samples = []
    for i, y in enumerate(labels):
        s = {"png": _png(rng, COLORS[classes[y]]), "cls": str(y).encode()}
        if meta is not None:
            s["npy"] = _npy(meta[i])
        samples.append(s)
    atomic_write_text(folder / "classnames.txt", "\n".join(classes) + "\n")
    atomic_write_text(folder / "zeroshot_classification_templates.txt", "a photo of a {c} square.\n{c}\n")
    write_shards(folder, samples)
    return labels


def make_tiny_suite(root: str | Path) -> Path:
    """Write the tiny suite of ``eval_suites/tiny.yaml`` under ``root``; return ``root``.

    Same bytes on every call: seeded images, deterministic tars.
    """
    root = Path(root)
    four = ["red", "green", "blue", "yellow"]
    _write_classification(root / "wds_imagenet1k_test", four, 24, seed=1)
    _write_classification(root / "wds_vtab-pcam_test", ["red", "blue"], 20, seed=2)
    cam_meta = [[i % 2, i % 5, i % 2] for i in range(20)]  # hospital, slide, y
    _write_classification(root / "wds_wilds-camelyon17_test", ["red", "blue"], 20, seed=3, meta=cam_meta)
    geo_meta = [[i % 3, i % 4] for i in range(24)]  # region, country
    _write_classification(root / "wds_geode_test", four, 24, seed=4, meta=geo_meta)
    six = list(COLORS)
    ds_meta = [[i % 4, i % 3, i % 2] for i in range(24)]  # income_ds, income_meta, region
    _write_classification(root / "wds_dollar_street_test", six, 24, seed=5, meta=ds_meta)
    _write_retrieval(root / "wds_flickr1k", seed=6)
    _write_winogavil(root / "wds_misc-winogavil_test", seed=7)
    return root


def _write_retrieval(folder: Path, seed: int, n: int = 12) -> None:
    rng = np.random.default_rng(seed)
    names = list(COLORS)
    samples = []
    for i in range(n):
        c = names[i % len(names)]
        caps = f"a {c} square on a dark background\na photo of something {c}\n"
        samples.append({"png": _png(rng, COLORS[c]), "txt": caps.encode()})
    atomic_write_text(folder / "dataset_type.txt", "retrieval\n")
    write_shards(folder, samples, per_shard=8)


def _write_winogavil(folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = list(COLORS)
    samples = []
    for i, n_cand in enumerate([5, 5, 6, 10, 10, 12]):
        cands = [f"{names[j % len(names)]}{j}" for j in range(n_cand)]
        cue = names[i % len(names)]
        assoc = [c for c in cands if c.startswith(cue)][:2] or cands[:1]
        s: dict[str, bytes] = {
            "json": json.dumps({"cue": cue, "candidates": cands, "associations": assoc}, sort_keys=True).encode()
        }
        for j in range(n_cand):
            s[f"cand{j:02d}.png"] = _png(rng, COLORS[names[j % len(names)]])
        samples.append(s)
    write_shards(folder, samples, per_shard=4)
