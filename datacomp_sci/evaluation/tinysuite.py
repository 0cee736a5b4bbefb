"""A generated tiny evaluation suite in the real local layout (see
:mod:`datacomp_sci.core.evaldata`): a few classes of coloured PNGs, retrieval captions
and WinoGAViL instances, for the demo and the tests. Deterministic for a seed."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from datacomp_sci.core.util import atomic_write_bytes, atomic_write_text

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
