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

from dataclasses import dataclass, field
from pathlib import Path

from datacomp_sci.core.evaldata import verify_task
from datacomp_sci.core.suites import DEFAULT_BASE_URL, Suite, TaskSpec, load_suite
from datacomp_sci.core.tables import format_table
from datacomp_sci.evaluation.evaluate import (
    shard_paths,
)
from datacomp_sci.evaluation.fetch import TaskDownload, _head_size, fetch
from datacomp_sci.evaluation.tinysuite import make_tiny_suite
from datacomp_sci.evaluation.winogavil import download_winogavil


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
        lines = format_table(("task", "status", "samples", "fetched", "note"), rows,
                             separator=False).split("\n")
        lines.append(
            f"{self.count('ok')} verified, {self.count('skipped')} skipped, {self.count('failed')} failed "
            f"in {self.data_dir}"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------- verification


# ---------------------------------------------------------------- download




def download_task(task: TaskSpec, data_dir: Path, base_url: str, timeout: float = 60.0, progress: bool = True) -> TaskDownload:
    from tqdm import tqdm

    rec = TaskDownload(task.key, task.folder, "ok")
    if task.source_repo is None:
        rec.status, rec.message = "skipped", (
            f"no public webdataset copy: build {data_dir / task.folder} in the documented layout"
        )
        return rec
    if task.kind == "winogavil":  # upstream CSV + image zip, converted locally

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














