"""Shared test fixtures: tiny shards in img2dataset's webdataset layout (docs/formats.md, "Shard layout").

``make_shards(folder, n_shards, per_shard, uid_fn)`` writes, per shard N, ``{N:08d}.tar``
(``K.jpg``, ``K.json``, ``K.txt``, members in sorted-extension order, written by
webdataset's ``TarWriter``), ``{N:08d}.parquet`` and ``{N:08d}_stats.json``, exactly the
files img2dataset writes for DataComp, and returns what it wrote so tests can assert on it.
Keep this API stable: other test files use it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from loopback import http_server  # noqa: F401  (fixture: a loopback HTTP server)
from PIL import Image

from datacomp_sci.core.uids import pair_uid

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


@pytest.fixture
def shard_factory(tmp_path):
    """``shard_factory(name, n_shards, per_shard, ...)`` -> (folder, samples) under tmp_path."""

    def factory(name: str, n_shards: int, per_shard: int | Sequence[int], **kwargs):
        folder = tmp_path / name
        return folder, make_shards(folder, n_shards, per_shard, **kwargs)

    return factory


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory):
    """Caches (e.g. reshard's tar-header index) go to a temp folder, never ~/.cache."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def pytest_addoption(parser):
    group = parser.getgroup("fuzz", "build-pool fuzzing (tests/test_fuzz.py)")
    group.addoption("--fuzz-cases", type=int, default=240, metavar="N",
                    help="mutated packages to run through build-pool (default 240, a few "
                         "minutes at most; raise it for a long campaign)")
    group.addoption("--fuzz-seed", type=int, default=20261204, metavar="SEED",
                    help="seed of the mutations (the same seed gives the same cases)")
