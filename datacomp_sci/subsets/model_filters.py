"""DataComp's embedding- and WordNet-based baselines over our pools (docs/formats.md,
"Model-derived metadata").

* ``image_based``: the pools' L/14 image embeddings (``metadata/{stem}.npz``,
  ``l14_img``; ``datacomp-sci embed`` writes them) are clustered with k-means (faiss,
  spherical = False, 20 iterations, seed 0, on the rows whose caption passes DataComp's
  caption filter) unless centroids are given (``--centroids``: DataComp's
  ``{scale}_centroids_l14.pt``). ImageNet-1k training-image L/14 features
  (``in1k_clip_vit_l14_{0..4}.pt``, ``{"image_features": tensor}``) are each assigned to
  the centroid of highest inner product; a sample is kept when its caption passes the
  caption filter (English by fastText, more than one word, more than five characters)
  and its own highest-inner-product centroid is one of those.
* ``image_based_intersect_clip_score``: the same, among the rows whose CLIP score passes
  ``clip_score`` (threshold, or ``--fraction`` computed over all the pools together).
* ``text_based``: English captions with a word (``text.split()``) whose first WordNet
  synset's offset is an ImageNet-21k class id (``imagenet21k_wordnet_ids.txt``:
  ``n01440764`` -> 1440764), as DataComp's ``does_contain_text_entity``.

faiss-cpu does the k-means and the nearest-centroid search: DataComp made its centroids
with faiss, and its inner-product index assigns millions of rows per second on a CPU
(scikit-learn's KMeans is an order of magnitude slower at 100,000 clusters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.pool.pools import Pool, sidecar_path
from datacomp_sci.subsets.langid import ensure_lang_sidecars

IN1K_FEATURES = tuple(f"in1k_clip_vit_l14_{i}.pt" for i in range(5))
IN21K_IDS = "imagenet21k_wordnet_ids.txt"
DEFAULT_CLUSTERS = 100_000
KMEANS_ITERATIONS = 20
KMEANS_SEED = 0


@dataclass
class Rows:
    """uid, caption and the caption-filter mask of every row of the pools, in order."""

    uids: list[str | None]
    texts: list[str | None]
    english: np.ndarray
    caption_ok: np.ndarray  # DataComp's caption_filter (English, > 1 word, > 5 chars)
    files: list[tuple[Pool, Path, int]]  # (pool, metadata file, rows)


def load_rows(pools: list[Pool], workers: int = 1,
              on_lang_file: Callable[[Path, int], None] | None = None) -> Rows:
    ensure_lang_sidecars(pools, workers=workers, on_file=on_lang_file)
    uids: list = []
    texts: list = []
    eng, ok, files = [], [], []
    for pool in pools:
        for meta in pool.metadata_files:
            t = pq.read_table(meta, columns=["uid", "text"])
            side = pq.read_table(sidecar_path(meta, "lang"), columns=["lang", "num_words"])
            text = t.column("text").to_pylist()
            lang = np.array([x == "en" for x in side.column("lang").to_pylist()], bool)
            words = np.asarray(side.column("num_words").fill_null(0).to_numpy(), np.int64)
            chars = np.array([len(x) if x is not None else 0 for x in text], np.int64)
            uids += t.column("uid").to_pylist()
            texts += text
            eng.append(lang)
            ok.append(lang & (words > 1) & (chars > 5))
            files.append((pool, meta, t.num_rows))
    return Rows(uids, texts, np.concatenate(eng) if eng else np.zeros(0, bool),
                np.concatenate(ok) if ok else np.zeros(0, bool), files)


def load_l14_img(rows: Rows) -> np.ndarray:
    """The ``l14_img`` arrays of every metadata file, row-aligned, as float32."""
    parts = []
    for pool, meta, n in rows.files:
        path = meta.with_suffix(".npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                arr = z["l14_img"] if "l14_img" in z.files else None
        except (OSError, ValueError):
            arr = None
        if arr is None or len(arr) != n:
            raise FileNotFoundError(
                f"{path} has no l14_img embeddings for the {n} rows of {meta.name} (pool "
                f"{pool.name}): run `datacomp-sci embed {pool.root} --models l14` first")
        parts.append(np.asarray(arr, np.float32))
    return np.concatenate(parts) if parts else np.zeros((0, 768), np.float32)


def load_imagenet_features(folder: str | Path) -> np.ndarray:
    """DataComp's ImageNet-1k L/14 features: the five ``in1k_clip_vit_l14_{i}.pt`` files
    (``torch.load(f)["image_features"]``), concatenated, as float32."""
    import torch

    root = Path(folder).expanduser()
    missing = [n for n in IN1K_FEATURES if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--imagenet-features {root} lacks {', '.join(missing)}: fetch them with "
            f"`datacomp-sci download-filter-assets {root}`")
    parts = []
    for name in IN1K_FEATURES:
        try:
            obj = torch.load(root / name, map_location="cpu", weights_only=True)
            parts.append(np.asarray(obj["image_features"].float().numpy(), np.float32))
        except (OSError, RuntimeError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{root / name} is not a DataComp feature file "
                             f"({{'image_features': tensor}}): {e}") from e
    return np.concatenate(parts)


def load_centroids(path: str | Path) -> np.ndarray:
    """DataComp's ``{scale}_centroids_l14.pt`` (a pickled numpy array; loaded with
    ``weights_only=True``, numpy arrays allowed) or a ``.npy`` file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"--centroids {p}: no such file")
    if p.suffix == ".npy":
        return np.asarray(np.load(p, allow_pickle=False), np.float32)
    import torch

    try:
        with torch.serialization.safe_globals([np.ndarray, np.dtype,
                                               np.core.multiarray._reconstruct,  # type: ignore[attr-defined]
                                               type(np.dtype(np.float32))]):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors vary by torch version
        raise ValueError(f"{p} is not a centroid file: {str(e).splitlines()[0][:200]}") from e
    arr = obj.numpy() if hasattr(obj, "numpy") else np.asarray(obj)
    return np.asarray(arr, np.float32)


def kmeans_centroids(x: np.ndarray, k: int, seed: int = KMEANS_SEED) -> np.ndarray:
    """faiss k-means (``niter`` 20, ``seed`` 0), k capped at the number of rows."""
    import faiss

    if len(x) == 0:
        raise ValueError("image_based: no row passes the caption filter, nothing to cluster")
    k = min(k, len(x))
    km = faiss.Kmeans(x.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed, verbose=False,
                      max_points_per_centroid=max(256, -(-len(x) // k)))
    km.train(np.ascontiguousarray(x, np.float32))
    return np.asarray(km.centroids, np.float32)


def nearest_centroid(centroids: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the centroid of highest inner product for each row (DataComp's argmax of
    ``x @ centroids.T``)."""
    import faiss

    if len(x) == 0:
        return np.zeros(0, np.int64)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, np.float32))
    _, labels = index.search(np.ascontiguousarray(x, np.float32), 1)
    return labels[:, 0].astype(np.int64)


def image_based_mask(rows: Rows, emb: np.ndarray, candidates: np.ndarray,
                     imagenet: np.ndarray, centroids: np.ndarray | None, clusters: int
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """Which rows image_based keeps among ``candidates`` (a row mask)."""
    eligible = candidates & rows.caption_ok
    if centroids is None:
        centroids = kmeans_centroids(emb[rows.caption_ok], clusters)
        made = True
    else:
        made = False
    if centroids.shape[1] != emb.shape[1] or imagenet.shape[1] != emb.shape[1]:
        raise ValueError(f"dimensions differ: pool l14_img {emb.shape[1]}, centroids "
                         f"{centroids.shape[1]}, ImageNet features {imagenet.shape[1]}")
    targets = np.unique(nearest_centroid(centroids, imagenet))
    labels = np.full(len(emb), -1, np.int64)
    idx = np.flatnonzero(eligible)
    labels[idx] = nearest_centroid(centroids, emb[idx])
    keep = eligible & np.isin(labels, targets)
    stats = {"rows": len(emb), "caption_filter": int(rows.caption_ok.sum()),
             "candidates": int(candidates.sum()), "clusters": int(len(centroids)),
             "centroids": "k-means of the pools" if made else "given",
             "target_clusters": int(len(targets)), "imagenet_features": int(len(imagenet))}
    return keep, stats


# --- text_based ------------------------------------------------------------------------------
def load_in21k_ids(path: str | Path) -> set[int]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no ImageNet-21k id list (fetch it with "
                                f"`datacomp-sci download-filter-assets {p.parent}`)")
    ids = set()
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            if not (line[0] == "n" and line[1:].isdigit()):
                raise ValueError(f"{p}: {line!r} is not a WordNet noun id like n01440764")
            ids.add(int(line[1:]))
    return ids


def wordnet_reader(folder: str | Path):
    """NLTK's WordNet reader over an NLTK data folder the user supplies (what
    ``python -m nltk.downloader -d DIR wordnet`` writes: ``DIR/corpora/wordnet.zip`` or
    the unpacked ``DIR/corpora/wordnet/``), searched before NLTK's default folders."""
    import warnings

    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = Path(folder).expanduser().resolve()
    if not ((root / "corpora" / "wordnet").is_dir() or (root / "corpora" / "wordnet.zip").is_file()):
        raise FileNotFoundError(
            f"--wordnet {root} holds no corpora/wordnet(.zip): fetch it with "
            f"`python -m nltk.downloader -d {root} wordnet` where there is network")
    if str(root) in nltk.data.path:
        nltk.data.path.remove(str(root))
    nltk.data.path.insert(0, str(root))
    try:
        pointer = nltk.data.find("corpora/wordnet.zip/wordnet/")
    except LookupError:
        pointer = nltk.data.find("corpora/wordnet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return WordNetCorpusReader(pointer, None)


def text_based_mask(texts: list[str | None], english: np.ndarray, wordnet, entity: set[int]
                    ) -> np.ndarray:
    """English captions with a word whose first synset's offset is in ``entity``."""
    cache: dict[str, bool] = {}

    def hit(word: str) -> bool:
        if word not in cache:
            synsets = wordnet.synsets(word)
            cache[word] = bool(synsets) and synsets[0].offset() in entity
        return cache[word]

    out = np.zeros(len(texts), bool)
    for i, text in enumerate(texts):
        if english[i] and text is not None:
            out[i] = any(hit(w) for w in text.split())
    return out


def selected_uids(rows: Rows, mask: np.ndarray) -> pa.Array:
    return pa.array([u for u, m in zip(rows.uids, mask, strict=True) if m and u is not None],
                    pa.string())
