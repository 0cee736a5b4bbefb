"""The local layout of evaluation data, as clip_benchmark reads it (one folder per task
under the evaluation-data folder; docs/formats.md, "Evaluation"), and its checks::

    EVALSETS/<folder>/classnames.txt                          (classification)
    EVALSETS/<folder>/zeroshot_classification_templates.txt   ({c} = class name)
    EVALSETS/<folder>/dataset_type.txt                        ("retrieval" for retrieval)
    EVALSETS/<folder>/test/nshards.txt                        (N)
    EVALSETS/<folder>/test/0.tar .. N-1.tar                   sNNNNNNN.<png|jpg|webp> +
        .cls (int label) | .txt (retrieval captions, one per line) and, for WILDS /
        fairness, .npy (int metadata vector, columns = the task's metadata_fields);
        WinoGAViL: sNNNNNNN.json {"cue", "candidates", "associations"} +
        sNNNNNNN.candNN.<png|jpg|webp> (one image per candidate, in order).

Read by evaluation (which runs the tasks), by the download step (which verifies what it
fetched) and by decontamination (which hashes the evaluation images).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from datacomp_sci.core.suites import TaskSpec

IMAGE_EXTS = ("webp", "png", "jpg", "jpeg")


def shard_paths(folder: Path, split: str = "test") -> list[Path]:
    nshards_file = folder / split / "nshards.txt"
    try:
        n = int(nshards_file.read_text().strip())
    except ValueError as e:
        raise ValueError(f"{nshards_file} does not hold an integer") from e
    return [folder / split / f"{i}.tar" for i in range(n)]


def task_data_problem(task: TaskSpec, data_dir: Path) -> str | None:
    """Why a task's local data is unusable (None when the layout is complete)."""
    folder = data_dir / task.folder
    if not folder.is_dir():
        return f"expected folder {folder} does not exist"
    if not (folder / "test" / "nshards.txt").is_file():
        return f"{folder}/test/nshards.txt is missing"
    try:
        shards = shard_paths(folder)
    except ValueError as e:
        return str(e)
    absent = [p.name for p in shards if not p.is_file()]
    if not shards or absent:
        return f"{folder}/test lacks shard(s) {absent[:5] or ['0.tar']}"
    if task.kind in ("zeroshot_classification", "wilds", "fairness"):
        for name in ("classnames.txt", "zeroshot_classification_templates.txt"):
            if not (folder / name).is_file():
                return f"{folder}/{name} is missing"
    return None


def count_samples(shards: list[Path]) -> int:
    """Samples with an image member in a list of webdataset shards."""
    keys = set()
    for shard in shards:
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                base, _, ext = m.name.rpartition(".")
                if ext.lower() in IMAGE_EXTS:
                    keys.add((shard.name, base.split(".", 1)[0]))
    return len(keys)


def iter_winogavil(shards: list[Path]) -> Iterator[tuple[dict, list[bytes]]]:
    """Instances of the local WinoGAViL layout (``sN.json`` + ``sN.candNN.<img>`` members,
    consecutive per sample), one at a time: the real set is several GB of images."""
    for shard in shards:
        with tarfile.open(shard, mode="r|") as tf:
            key, inst = None, None
            for m in tf:
                if not m.isfile():
                    continue
                k, _, rest = m.name.partition(".")
                if k != key:
                    if inst is not None:
                        yield _winogavil_instance(shard, key, inst)
                    key, inst = k, {"json": None, "images": {}}
                data = tf.extractfile(m).read()
                if rest == "json":
                    inst["json"] = json.loads(data)
                elif rest.rpartition(".")[2].lower() in IMAGE_EXTS:
                    inst["images"][rest.rpartition(".")[0]] = data
            if inst is not None:
                yield _winogavil_instance(shard, key, inst)


def _winogavil_instance(shard: Path, key: str, inst: dict) -> tuple[dict, list[bytes]]:
    if inst["json"] is None:
        raise ValueError(f"{shard.name}: sample {key} has no .json member")
    names = [f"cand{j:02d}" for j in range(len(inst["json"]["candidates"]))]
    missing = [n for n in names if n not in inst["images"]]
    if missing:
        raise ValueError(f"{shard.name}: sample {key} lacks image member(s) {missing}")
    return inst["json"], [inst["images"][n] for n in names]


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


@dataclass
class SuiteShards:
    """The test shards of a suite's tasks present under an evaluation-data folder."""

    root: Path
    tasks: list[str]  # keys of the tasks present
    jobs: list[tuple[int, Path]]  # (index into tasks, shard path)
    missing: list[str]  # "key: why" of the tasks absent


def missing_tasks_message(missing: list[str], data_dir: str | Path, suite: str,
                          present: int) -> str:
    """The warning for evaluation tasks absent from ``data_dir``: which, and how to fetch them."""
    from datacomp_sci.core.suites import load_suite

    names = ", ".join(m.split(":", 1)[0] for m in missing)
    return (f"decontaminated against the test images of {present} of the "
            f"{load_suite(suite).size_text()}: {len(missing)} absent from {data_dir} ({names}); "
            "samples copying their "
            f"test images were NOT removed. Fetch them with `datacomp-sci download-evalsets -o "
            f"{data_dir} --suite {suite}` and filter again")


def suite_shards(data_dir: str | Path, suite: str, require_all: bool = False) -> SuiteShards:
    """Every test shard of the suite's tasks found under ``data_dir``; a folder holding none
    of them (or, with ``require_all``, missing any) is a FileNotFoundError saying how to
    fetch them."""
    from datacomp_sci.core.suites import load_suite

    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such evaluation data folder (fetch it with "
                                f"`datacomp-sci download-evalsets -o {root} --suite {suite}`)")
    s = load_suite(suite)
    out = SuiteShards(root, [], [], [])
    for task in s.tasks:
        problem = task_data_problem(task, root)
        if problem is not None:
            out.missing.append(f"{task.key}: {problem}")
            continue
        out.tasks.append(task.key)
        out.jobs += [(len(out.tasks) - 1, p) for p in shard_paths(root / task.folder)]
    if not out.tasks:
        raise FileNotFoundError(
            f"{root} holds none of the {s.size_text()}: fetch "
            f"them with `datacomp-sci download-evalsets -o {root} --suite {suite}`")
    if out.missing and require_all:
        raise FileNotFoundError(missing_tasks_message(out.missing, root, suite, len(out.tasks))
                                + " (--require-all-tasks)")
    return out
