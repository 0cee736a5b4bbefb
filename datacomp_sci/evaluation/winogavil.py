"""WinoGAViL: fetch the public upstream files and convert them to the local layout.

Upstream format (read from the sources, not guessed):

* DataComp's ``eval_utils/wino_eval.py`` (repository mlfoundations/datacomp) loads
  ``datasets.load_dataset("nlphuji/winogavil", split="test")`` and uses, per example,
  ``candidate_images`` (one image per candidate, in candidate order), ``cue``,
  ``candidates`` and ``associations``; it scores every row of the test split.
* The dataset repository ``nlphuji/winogavil`` on the model hub holds ``winogavil.py``
  (a loading script), ``winogavil_dataset.csv`` (494 kB) and ``winogavil_images.zip``
  (4.71 GB, LFS). The script reads the CSV, ``json.loads`` the ``candidates`` and
  ``associations`` columns, and maps candidate ``x`` to the image
  ``<extracted zip>/winogavil_images/{x}.jpg`` (``IMAGE_EXTENSION = "jpg"``).
* The CSV (same file as WinoGAViL/WinoGAViL-experiments ``assets/winogavil_dataset.csv``)
  has the header ``,candidates,cue,associations,score_fool_the_ai,num_associations,
  num_candidates,solvers_jaccard_mean,solvers_jaccard_std,ID``: a leading unnamed
  pandas index, ``candidates``/``associations`` as JSON lists of strings (quoted, with
  doubled inner quotes), ``num_candidates``/``num_associations`` their lengths.

Local layout written here (what :func:`datacomp_sci.evaluation.evaluate.iter_winogavil` reads)::

    DATA_DIR/<folder>/upstream/winogavil_dataset.csv      the upstream files, as fetched
    DATA_DIR/<folder>/upstream/winogavil_images.zip
    DATA_DIR/<folder>/test/0.tar .. N-1.tar               PER_SHARD instances per shard
    DATA_DIR/<folder>/test/nshards.txt                    N (written last)

Instance ``k`` (CSV row order) is ``sKKKKKKK.json`` = ``{"associations", "candidates",
"cue", "id"}`` (sorted keys, ``id`` = the CSV's ``ID``) plus ``sKKKKKKK.candNN.jpg``, the
upstream JPEG bytes unchanged. Tars are USTAR with sorted members, mtime 0, mode 0644:
the same inputs give the same bytes. Every file is written atomically; shards already on
disk and upstream files with the remote size are not fetched/written again, and the zip
download resumes from its ``.part`` file where the server honours ``Range``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from datacomp_sci.core.evaldata import verify_task
from datacomp_sci.core.suites import TaskSpec
from datacomp_sci.core.util import atomic_open, atomic_write_text
from datacomp_sci.evaluation.fetch import CHUNK, TaskDownload

UPSTREAM_REPO = "nlphuji/winogavil"
CSV_NAME = "winogavil_dataset.csv"
ZIP_NAME = "winogavil_images.zip"
ZIP_IMAGE_DIR = "winogavil_images"
IMAGE_EXT = "jpg"
UPSTREAM_DIR = "upstream"
PER_SHARD = 100
REQUIRED_COLUMNS = ("cue", "candidates", "associations")


@dataclass(frozen=True)
class WinoInstance:
    id: str
    cue: str
    candidates: tuple[str, ...]
    associations: tuple[str, ...]

    def doc(self) -> bytes:
        return json.dumps(
            {"associations": list(self.associations), "candidates": list(self.candidates),
             "cue": self.cue, "id": self.id},
            sort_keys=True,
        ).encode()


def image_member(candidate: str) -> str:
    """Path of a candidate's image inside ``winogavil_images.zip`` (upstream's rule)."""
    return f"{ZIP_IMAGE_DIR}/{candidate}.{IMAGE_EXT}"


# ---------------------------------------------------------------- CSV
def _string_list(raw: str) -> tuple[str, ...] | None:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return None
    return tuple(value)


def _parse_row(row: dict[str, str | None], index: int) -> tuple[str | None, WinoInstance | None]:
    """(reason it is unusable, None) or (None, instance); ``id`` defaults to the row index."""
    cue = (row.get("cue") or "").strip()
    cands = _string_list(row.get("candidates") or "")
    assoc = _string_list(row.get("associations") or "")
    if not cue:
        return "empty cue", None
    if cands is None or assoc is None:
        return "candidates/associations not a JSON list of strings", None
    if not assoc:
        return "no associations", None
    if not set(assoc) <= set(cands):
        return "association not among candidates", None
    for col, values in (("num_candidates", cands), ("num_associations", assoc)):
        declared = (row.get(col) or "").strip()
        if declared and declared != str(len(values)):
            return f"{col} disagrees with the list", None
    return None, WinoInstance((row.get("ID") or "").strip() or str(index), cue, cands, assoc)


def _counted(what: str, problems: dict[str, list[int]], unit: str) -> ValueError:
    total = sum(len(v) for v in problems.values())
    parts = [f"{len(v)} {reason} ({unit} {', '.join(map(str, v[:3]))}{', ...' if len(v) > 3 else ''})"
             for reason, v in sorted(problems.items())]
    return ValueError(f"{what}: {total} bad {unit}s: " + "; ".join(parts))


def read_instances(csv_path: Path) -> list[WinoInstance]:
    """Instances of ``winogavil_dataset.csv`` in row order; bad rows raise one counted ValueError."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {missing}; header is {reader.fieldnames}")
        problems: dict[str, list[int]] = {}
        out: list[WinoInstance] = []
        for line, row in enumerate(reader, start=2):
            reason, inst = _parse_row(row, line - 2)
            if inst is None:
                problems.setdefault(str(reason), []).append(line)
            else:
                out.append(inst)
    if problems:
        raise _counted(str(csv_path), problems, "line")
    if not out:
        raise ValueError(f"{csv_path} holds no instances")
    return out


# ---------------------------------------------------------------- conversion
def _check_images(instances: list[WinoInstance], zf: zipfile.ZipFile) -> None:
    names = set(zf.namelist())
    absent = Counter(image_member(c) for inst in instances for c in inst.candidates
                     if image_member(c) not in names)
    if absent:
        shown = ", ".join(sorted(absent)[:3])
        raise ValueError(f"{zf.filename}: {len(absent)} candidate image(s) missing "
                         f"(needed by {sum(absent.values())} candidate slots), e.g. {shown}")


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tf.addfile(info, io.BytesIO(data))


def write_shard(path: Path, instances: list[WinoInstance], first: int, zf: zipfile.ZipFile) -> None:
    """One deterministic shard: per instance ``candNN.jpg`` members (sorted) then ``json``."""
    with atomic_open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for k, inst in enumerate(instances):
            key = f"s{first + k:07d}"
            for j, cand in enumerate(inst.candidates):
                _add(tf, f"{key}.cand{j:02d}.{IMAGE_EXT}", zf.read(image_member(cand)))
            _add(tf, f"{key}.json", inst.doc())


def convert(instances: list[WinoInstance], zip_path: Path, folder: Path,
            per_shard: int | None = None, progress: bool = True) -> int:
    """Write ``folder/test``; shards already present are kept (resume). Return shards written."""
    from tqdm import tqdm

    per_shard = per_shard or PER_SHARD
    starts = range(0, len(instances), per_shard)
    written = 0
    with zipfile.ZipFile(zip_path) as zf:
        _check_images(instances, zf)
        for i, start in enumerate(tqdm(starts, desc="winogavil convert", unit="shard", disable=not progress)):
            shard = folder / "test" / f"{i}.tar"
            if not shard.is_file():
                write_shard(shard, instances[start:start + per_shard], start, zf)
                written += 1
    atomic_write_text(folder / "test" / "nshards.txt", f"{len(starts)}\n")
    return written


# ---------------------------------------------------------------- download
def _headers(url: str) -> dict[str, str]:
    """The dataset is gated on the hub: send ``HF_TOKEN`` (if set) to huggingface.co only."""
    token = os.environ.get("HF_TOKEN")
    host = urlsplit(url).hostname or ""
    return {"Authorization": f"Bearer {token}"} if token and host.endswith("huggingface.co") else {}


def _http_error(url: str, e: urllib.error.HTTPError) -> OSError:
    hint = ""
    if e.code in (401, 403):
        hint = (f" (gated dataset: accept its terms at https://huggingface.co/datasets/{UPSTREAM_REPO}"
                " and export HF_TOKEN)")
    return OSError(f"GET {url}: HTTP {e.code}{hint}")


def _remote_size(url: str, timeout: float) -> int | None:
    req = urllib.request.Request(url, method="HEAD", headers=_headers(url))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            size = r.headers.get("Content-Length")
            return int(size) if size is not None else None
    except urllib.error.HTTPError as e:
        raise _http_error(url, e) from e
    except (urllib.error.URLError, OSError, ValueError):
        return None


def fetch_resumable(url: str, dest: Path, timeout: float = 60.0) -> int:
    """Fetch ``url`` to ``dest`` via ``dest.part``, resuming with ``Range``; return bytes read.

    Nothing is fetched when ``dest`` already has the remote size. A server that ignores
    ``Range`` (status 200) restarts the file from byte 0.
    """
    remote = _remote_size(url, timeout)
    if dest.is_file() and (remote is None or dest.stat().st_size == remote):
        return 0
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if remote is not None and have > remote:
        have = 0
    n = 0
    if remote is None or have < remote:
        headers = {**_headers(url), **({"Range": f"bytes={have}-"} if have else {})}
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                append = have > 0 and r.status == 206
                with open(part, "ab" if append else "wb") as f:
                    while chunk := r.read(CHUNK):
                        f.write(chunk)
                        n += len(chunk)
        except urllib.error.HTTPError as e:
            raise _http_error(url, e) from e
        except urllib.error.URLError as e:
            raise OSError(f"GET {url}: {e.reason}") from e
    size = part.stat().st_size
    if remote is not None and size != remote:
        raise OSError(f"GET {url}: got {size} of {remote} bytes; rerun to resume")
    os.replace(part, dest)
    return n


def _already_converted(task: TaskSpec, data_dir: Path) -> int | None:
    if not (data_dir / task.folder / "test" / "nshards.txt").is_file():
        return None
    try:
        return verify_task(task, data_dir)
    except (OSError, ValueError):
        return None


def download_winogavil(task: TaskSpec, data_dir: Path, base_url: str, timeout: float = 60.0,
                       progress: bool = True, per_shard: int | None = None) -> TaskDownload:
    """Fetch ``winogavil_dataset.csv`` + ``winogavil_images.zip`` from ``base_url`` (``{repo}`` =
    ``task.source_repo``), convert them to the local layout and verify it.

    A folder already converted and verifiable is left alone (nothing is fetched).
    """
    rec = TaskDownload(task.key, task.folder, "ok")
    done = _already_converted(task, data_dir)
    if done is not None:
        rec.samples, rec.message = done, "already converted"
        return rec
    base = base_url.format(repo=task.source_repo or UPSTREAM_REPO)
    base = base if base.endswith("/") else base + "/"
    folder = data_dir / task.folder
    src = folder / UPSTREAM_DIR
    try:
        for name in (CSV_NAME, ZIP_NAME):
            n = fetch_resumable(base + name, src / name, timeout)
            rec.files_fetched += n > 0
            rec.bytes_fetched += n
        instances = read_instances(src / CSV_NAME)
        convert(instances, src / ZIP_NAME, folder, per_shard, progress)
        rec.samples = verify_task(task, data_dir)
        if task.size is not None and rec.samples != task.size:
            rec.message = f"{rec.samples} instances, suite size says {task.size}"
    except (OSError, ValueError, zipfile.BadZipFile, csv.Error, UnicodeDecodeError) as e:
        rec.status, rec.message = "failed", str(e)
    return rec
