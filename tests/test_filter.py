"""filter: SQL and named filters, DataComp baselines, set algebra, npy + sidecar json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import loaded, uid_of, write_pool

from datacomp_sci.cli import main
from datacomp_sci.core.schema import COMMONPOOL_SCHEMA
from datacomp_sci.core.uids import SUBSET_DTYPE, save_subset, uids_to_u8u8
from datacomp_sci.core.util import sha256_file
from datacomp_sci.pool.pools import sidecar_path
from datacomp_sci.subsets.filters import FilterSpec, declared_params, run_filter
from datacomp_sci.subsets.langid import detect_languages

EN = "a diagram of the proposed network architecture"


def expected(uids: list[str]) -> np.ndarray:
    arr = uids_to_u8u8(uids)
    return arr[np.lexsort((arr["f1"], arr["f0"]))]




@pytest.fixture
def sci(tmp_path: Path) -> Path:
    rows = [
        {"uid": uid_of(0), "text": EN, "source": "arxiv", "license": "http://creativecommons.org/licenses/by/4.0/"},
        {"uid": uid_of(1), "text": "x" * 30, "source": "pmc", "license": "CC0 https://creativecommons.org/publicdomain/zero/1.0/"},
        {"uid": uid_of(2), "text": "short", "source": "pmc", "license": "All rights reserved"},
        {"uid": uid_of(3), "text": EN, "source": "arxiv", "license": None},
    ]
    for r in rows:
        r.update(original_width=400, original_height=300)
    return write_pool(tmp_path / "sci", rows, name="sci")


def test_sql_filter_writes_sorted_u8u8_npy_and_sidecar(sci: Path, tmp_path: Path):
    out = tmp_path / "sub" / "arxiv.npy"
    res = run_filter([sci], out, FilterSpec(sql="SELECT uid FROM sci WHERE source = 'arxiv'"))
    arr = np.load(out)
    assert arr.dtype == SUBSET_DTYPE and arr.shape == (2,)
    assert np.array_equal(arr, expected([uid_of(0), uid_of(3)]))
    assert arr.tolist() == sorted(arr.tolist())
    side = json.loads((tmp_path / "sub" / "arxiv.json").read_text())
    assert side["filter"] == "sql" and side["count"] == 2 and side["selected"] == 2
    assert side["sql"] == "SELECT uid FROM sci WHERE source = 'arxiv'"
    assert side["npy_sha256"] == sha256_file(out) == res.npy_sha256
    assert side["pools"] == [{"name": "sci", "path": str(sci.resolve()), "metadata_files": 1,
                              "manifest_sha256": sha256_file(sci / "pool.json")}]
    before = (out.read_bytes(), (tmp_path / "sub" / "arxiv.json").read_bytes())
    run_filter([sci], out, FilterSpec(sql="SELECT uid FROM sci WHERE source = 'arxiv'"))
    assert (out.read_bytes(), (tmp_path / "sub" / "arxiv.json").read_bytes()) == before


def test_named_sql_files_and_params(sci: Path, tmp_path: Path):
    cases = {
        ("arxiv_only", ()): [0, 3], ("pmc_only", ()): [1, 2], ("arxiv_pmc", ()): [0, 1, 2, 3],
        ("source", ("sources=pmc",)): [1, 2], ("no_filter", ()): [0, 1, 2, 3],
        ("caption_length", ("min_chars=6", "max_chars=30")): [1],
        ("license", ()): [0, 1], ("license", ("pattern=licenses/by/",)): [0],
        ("image_size", ("min_side=301",)): [], ("image_size", ()): [0, 1, 2, 3],
    }
    for (name, params), want in cases.items():
        out = tmp_path / f"{name}.npy"
        spec = FilterSpec(sql_file=name, params=dict(p.split("=", 1) for p in params))
        spec.params = {k: (int(v) if v.isdigit() else v) for k, v in spec.params.items()}
        run_filter([sci], out, spec)
        assert loaded(out) == [u for u in sorted(uid_of(i) for i in want)], (name, params)
    side = json.loads((tmp_path / "caption_length.json").read_text())
    assert side["filter"] == "sql_file:caption_length"
    assert side["parameters"] == {"min_chars": 6, "max_chars": 30}
    with pytest.raises(ValueError, match="unknown --param min_char: this filter takes"):
        run_filter([sci], tmp_path / "x.npy", FilterSpec(sql_file="caption_length",
                                                         params={"min_char": 3}))
    with pytest.raises(FileNotFoundError, match="arxiv_only"):
        run_filter([sci], tmp_path / "x.npy", FilterSpec(sql_file="nope"))


def test_declared_params_header():
    assert declared_params("-- @param a = 3  help text\n-- @param b = x,y\nSELECT 1") == {
        "a": (3, "help text"), "b": ("x,y", "")}


def test_set_algebra_and_not(sci: Path, tmp_path: Path):
    arxiv = tmp_path / "arxiv.npy"
    lic = tmp_path / "lic.npy"
    save_subset(arxiv, uids_to_u8u8([uid_of(0), uid_of(3)]))
    save_subset(lic, uids_to_u8u8([uid_of(0), uid_of(1)]))
    out = tmp_path / "o.npy"
    run_filter([sci], out, FilterSpec(name="no_filter", and_files=[str(arxiv)], not_files=[str(lic)]))
    assert loaded(out) == [uid_of(3)]
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["selected"] == 4 and side["count"] == 1
    assert side["and"] == [{"path": str(arxiv.resolve()), "sha256": sha256_file(arxiv), "count": 2}]
    assert side["not"][0]["count"] == 2


def test_bad_sql_results_are_clear_errors(sci: Path, tmp_path: Path):
    out = tmp_path / "x.npy"
    with pytest.raises(ValueError, match="column named uid"):
        run_filter([sci], out, FilterSpec(sql="SELECT text FROM sci"))
    with pytest.raises(ValueError, match="1 selected rows have a NULL uid"):
        run_filter([sci], out, FilterSpec(sql="SELECT NULL::VARCHAR AS uid UNION ALL "
                                              "SELECT uid FROM sci LIMIT 2"))
    with pytest.raises(ValueError, match="not 32 hex"):
        run_filter([sci], out, FilterSpec(sql="SELECT 'z' || uid[2:] AS uid FROM sci"))
    with pytest.raises(ValueError, match="exactly one of"):
        run_filter([sci], out, FilterSpec(sql="SELECT uid FROM sci", name="no_filter"))
    with pytest.raises(ValueError, match=r"\.npy"):
        run_filter([sci], tmp_path / "x.txt", FilterSpec(name="no_filter"))
    assert not out.exists()


def test_language_id_uses_shipped_fasttext_model():
    assert detect_languages([EN, "Der Hund schläft im Garten unter dem Baum", None]) == [
        "en", "de", None]


def basic_rows() -> list[dict]:
    base = {"text": EN, "original_width": 400, "original_height": 300}
    variants = [
        {},                                              # 0 passes
        {"text": "Ein Diagramm der vorgeschlagenen Netzwerkarchitektur und Daten"},  # 1 not English
        {"text": "network architecture"},                # 2 two words
        {"text": "a b c"},                               # 3 three words but 5 chars
        {"original_width": 199},                         # 4 short side 199
        {"original_width": 200, "original_height": 600},  # 5 aspect exactly 3 passes
        {"original_width": 200, "original_height": 601},  # 6 aspect > 3
        {"text": "line one of\nthe caption here"},       # 7 newline handled as space
        {"text": None},                                  # 8 null caption
    ]
    return [{**base, **v, "uid": uid_of(i, "b"),
             "clip_b32_similarity_score": [0.3, 0.35, 0.29, 0.28, 0.5, 0.1, 0.6, 0.279, None][i],
             "clip_l14_similarity_score": [0.1, 0.2, 0.2, 0.4, 0.3, 0.3, None, 0.0, 0.9][i]}
            for i, v in enumerate(variants)]


@pytest.fixture
def cp(tmp_path: Path) -> Path:
    return write_pool(tmp_path / "cp", basic_rows(), files=2, schema=COMMONPOOL_SCHEMA)


def test_basic_filter_rules_one_by_one(cp: Path, tmp_path: Path):
    out = tmp_path / "basic.npy"
    res = run_filter([cp], out, FilterSpec(name="basic_filter"), )
    assert loaded(out) == sorted(uid_of(i, "b") for i in (0, 5, 7))
    assert res.description["stats"] == {"rows": 9, "pass_english": 7, "pass_words": 7,
                                        "pass_chars": 7, "pass_min_side": 8, "pass_aspect": 8}
    for meta in sorted((cp / "metadata").glob("0000000?.parquet")):
        assert sidecar_path(meta, "lang") == cp / "sidecars" / f"{meta.stem}.lang.parquet"
        assert sidecar_path(meta, "lang").exists()
    # caches stay out of metadata/: a `metadata/*.parquet` reader sees only metadata
    assert sorted(p.name for p in (cp / "metadata").iterdir()) == ["00000000.parquet",
                                                                   "00000001.parquet"]
    mtime = sidecar_path(meta, "lang").stat().st_mtime_ns
    run_filter([cp], out, FilterSpec(name="basic_filter"))
    assert sidecar_path(meta, "lang").stat().st_mtime_ns == mtime  # cached


def test_laion2b(cp: Path, tmp_path: Path):
    out = tmp_path / "laion.npy"
    run_filter([cp], out, FilterSpec(name="laion2b"))
    # English (not 1, 8), b32 >= 0.28 (not 5, 7 at 0.279, 8 null)
    assert loaded(out) == sorted(uid_of(i, "b") for i in (0, 2, 3, 4, 6))


def test_clip_score_threshold_and_fraction(cp: Path, tmp_path: Path):
    out = tmp_path / "c.npy"
    res = run_filter([cp], out, FilterSpec(name="clip_score", arch="b32", threshold=0.3))
    assert loaded(out) == sorted(uid_of(i, "b") for i in (0, 1, 4, 6))
    assert res.description["stats"] == {"rows": 9, "rows_null_score": 1}
    # DataComp's rule: N = 9 rows (the NULL counts), threshold = the score at rank
    # int(9 * f) of the descending sort (NULL last); every row >= it is kept, ties too.
    # l14 sorted: 0.9 (8), 0.4 (3), 0.3 (4, 5), 0.2 (1, 2), 0.1 (0), 0.0 (7), NULL (6)
    run_filter([cp], out, FilterSpec(name="clip_score", arch="l14", fraction=0.3))
    assert loaded(out) == sorted(uid_of(i, "b") for i in (8, 3, 4, 5))  # rank 2: 0.3
    res = run_filter([cp], out, FilterSpec(name="clip_score", arch="l14", fraction=0.5))
    assert loaded(out) == sorted(uid_of(i, "b") for i in (8, 3, 4, 5, 1, 2))  # rank 4: 0.2
    assert res.description["parameters"] == {"arch": "l14", "fraction": 0.5}
    assert res.description["stats"] == {"rows": 9, "rows_null_score": 1, "rank": 4,
                                        "threshold": pytest.approx(0.2)}
    # rank 8 is the NULL row: upstream's threshold is NaN and keeps nothing
    run_filter([cp], out, FilterSpec(name="clip_score", arch="l14", fraction=0.95))
    assert loaded(out) == []
    run_filter([cp], out, FilterSpec(name="clip_score", arch="l14", fraction=1.0))
    assert len(loaded(out)) == 8
    with pytest.raises(ValueError, match="exactly one of --fraction"):
        run_filter([cp], out, FilterSpec(name="clip_score"))


def test_cli_filter_end_to_end(cp: Path, tmp_path: Path):
    out = tmp_path / "cli.npy"
    r = CliRunner().invoke(main, ["filter", str(cp), "--name", "clip_score", "--arch", "b32",
                                  "--threshold", "0.5", "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert loaded(out) == sorted([uid_of(4, "b"), uid_of(6, "b")])
    assert "wrote       2 uids" in r.output
    r = CliRunner().invoke(main, ["filter", str(cp), "--sql-file", "caption_length", "--param",
                                  "bogus=1", "-o", str(out)])
    assert r.exit_code == 1 and "unknown --param bogus" in r.output


def _datacomp_clip_score(metadata_dir: Path, key: str, fraction: float) -> np.ndarray:
    """DataComp's baselines.py clip_score --fraction, restated independently: pandas over
    every parquet of one folder; threshold = -np.sort(-scores)[int(len * fraction)]; keep
    rows with score >= threshold; uids as sorted u8,u8."""
    import pandas as pd

    paths = sorted(str(p) for p in metadata_dir.iterdir() if ".parquet" in p.name)
    df = pd.concat([pd.read_parquet(p, columns=[key]) for p in paths])
    threshold = -np.sort(-df[key].values)[int(len(df) * fraction)]
    uids = []
    for p in paths:
        part = pd.read_parquet(p, columns=["uid", key])
        uids += [(int(u[:16], 16), int(u[16:32], 16)) for u in part[part[key] >= threshold]["uid"]]
    arr = np.array(uids, np.dtype("u8,u8"))
    arr.sort()
    return arr


def test_clip_score_over_several_pools_equals_datacomp_on_the_concatenated_metadata(
        tmp_path: Path):
    import shutil

    import pyarrow.parquet as pq
    from test_query import make_rows

    from datacomp_sci.core.schema import METADATA_SCHEMA

    rng = np.random.default_rng(7)
    pools, concat = [], tmp_path / "concatenated"
    concat.mkdir()
    for name, n, schema, null_share in (("commonpool", 300, COMMONPOOL_SCHEMA, 0.0),
                                        ("arxiv", 120, METADATA_SCHEMA, 0.05),
                                        ("pmc", 80, METADATA_SCHEMA, 0.0)):
        rows = []
        for i in range(n):
            b32, l14 = (np.round(rng.uniform(0.05, 0.45, 2), 2)).tolist()  # many ties
            if rng.random() < null_share:
                b32 = l14 = None
            rows.append({"uid": uid_of(i, name[0]), "text": "t", "source": None,
                         "clip_b32_similarity_score": b32, "clip_l14_similarity_score": l14})
        root = tmp_path / name
        (root / "metadata").mkdir(parents=True)
        for k in range(2):
            path = root / "metadata" / f"{k:08d}.parquet"
            pq.write_table(make_rows(schema, rows[k::2]), path)
            shutil.copy(path, concat / f"{name}-{k}.parquet")
        pools.append(root)
    for arch, key in (("l14", "clip_l14_similarity_score"), ("b32", "clip_b32_similarity_score")):
        for fraction in (0.01, 0.1, 0.3, 0.5, 0.77, 0.9):
            out = tmp_path / f"{arch}-{fraction}.npy"
            run_filter(pools, out, FilterSpec(name="clip_score", arch=arch, fraction=fraction))
            want = _datacomp_clip_score(concat, key, fraction)
            assert np.array_equal(np.load(out), want), (arch, fraction)


# --- image_based, image_based_intersect_clip_score, text_based ------------------------------
DIRECTIONS = np.eye(8, dtype=np.float32)[:4]  # four well-separated clusters in 8 dimensions
CAPTIONS = ["a photo of a dog sitting on the grass", "un chien assis dans l'herbe",
            "a red circle drawn on a blue background", "dog", "ein Kreis auf blauem Grund"]


def _model_pool(root: Path, prefix: str, n: int, seed: int):
    """Metadata (English and non-English captions, scores) and an npz with l14_img rows
    scattered around DIRECTIONS[row % 4]."""
    import pyarrow.parquet as pq
    from test_query import make_rows

    rng = np.random.default_rng(seed)
    rows = [{"uid": uid_of(i, prefix), "text": CAPTIONS[i % len(CAPTIONS)],
             "clip_l14_similarity_score": float(np.float32(rng.uniform(0.1, 0.4)))}
            for i in range(n)]
    emb = DIRECTIONS[np.arange(n) % 4] + rng.normal(0, 0.05, (n, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    (root / "metadata").mkdir(parents=True)
    pq.write_table(make_rows(COMMONPOOL_SCHEMA, rows), root / "metadata" / "00000000.parquet")
    np.savez(root / "metadata" / "00000000.npz", l14_img=emb.astype(np.float16))
    return rows, emb.astype(np.float16).astype(np.float32)


@pytest.fixture
def model_world(tmp_path: Path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("faiss")
    a_rows, a_emb = _model_pool(tmp_path / "pa", "a", 40, 1)
    b_rows, b_emb = _model_pool(tmp_path / "pb", "q", 24, 2)
    assets = tmp_path / "assets"
    assets.mkdir()
    rng = np.random.default_rng(3)
    for i in range(5):  # "ImageNet" images all lie near clusters 0 and 2
        f = DIRECTIONS[[0, 2][i % 2]] + rng.normal(0, 0.05, (6, 8)).astype(np.float32)
        torch.save({"image_features": torch.from_numpy(f).half()},
                   assets / f"in1k_clip_vit_l14_{i}.pt")
    (assets / "imagenet21k_wordnet_ids.txt").write_text("n00000045\nn01234567\n")
    return {"pools": [tmp_path / "pa", tmp_path / "pb"], "rows": a_rows + b_rows,
            "emb": np.concatenate([a_emb, b_emb]), "assets": assets}


def _english(texts):
    return np.array([x == "en" for x in detect_languages(texts)])


def _datacomp_image_based(uids, texts, emb, centroids, target, mask):
    """DataComp's clustering_filter restated: argmax of x @ centroids.T for the targets and
    for the rows passing the caption filter (English, > 1 fastText-style word, > 5 chars)."""
    words = np.array([len(t.split()) for t in texts])
    chars = np.array([len(t) for t in texts])
    ok = _english(texts) & (words > 1) & (chars > 5) & mask
    clusters = np.unique(np.argmax(target @ centroids.T, axis=1))
    labels = np.argmax(emb @ centroids.T, axis=1)
    return sorted(u for u, o, lab in zip(uids, ok, labels, strict=True) if o and lab in clusters)


def test_image_based_equals_datacomp_with_given_or_kmeans_centroids(
        model_world, tmp_path: Path):
    import torch

    w = model_world
    uids = [r["uid"] for r in w["rows"]]
    texts = [r["text"] for r in w["rows"]]
    target = np.concatenate([torch.load(w["assets"] / f"in1k_clip_vit_l14_{i}.pt")
                             ["image_features"].float().numpy() for i in range(5)])
    want = _datacomp_image_based(uids, texts, w["emb"], DIRECTIONS, target,
                                 np.ones(len(uids), bool))
    assert 0 < len(want) < len(uids)
    np.save(tmp_path / "centroids.npy", DIRECTIONS)
    out = tmp_path / "ib.npy"
    res = run_filter(w["pools"], out, FilterSpec(name="image_based",
                                                  imagenet_features=str(w["assets"]),
                                                  centroids=str(tmp_path / "centroids.npy")))
    assert loaded(out) == want
    assert res.description["stats"]["target_clusters"] == 2
    # without --centroids: faiss k-means (20 iterations, seed 0) of the caption-filtered rows
    import faiss

    words = np.array([len(t.split()) for t in texts])
    ok = _english(texts) & (words > 1) & (np.array([len(t) for t in texts]) > 5)
    km = faiss.Kmeans(8, 4, niter=20, seed=0, max_points_per_centroid=256)
    km.train(np.ascontiguousarray(w["emb"][ok]))
    want_km = _datacomp_image_based(uids, texts, w["emb"], km.centroids, target,
                                    np.ones(len(uids), bool))
    run_filter(w["pools"], tmp_path / "km.npy",
               FilterSpec(name="image_based", imagenet_features=str(w["assets"]), clusters=4))
    assert loaded(tmp_path / "km.npy") == want_km


def test_image_based_intersect_clip_score_uses_the_global_threshold(model_world, tmp_path: Path):
    w = model_world
    uids = [r["uid"] for r in w["rows"]]
    texts = [r["text"] for r in w["rows"]]
    scores = np.array([r["clip_l14_similarity_score"] for r in w["rows"]], np.float32)
    threshold = -np.sort(-scores)[int(len(scores) * 0.5)]
    import torch
    target = np.concatenate([torch.load(w["assets"] / f"in1k_clip_vit_l14_{i}.pt")
                             ["image_features"].float().numpy() for i in range(5)])
    want = _datacomp_image_based(uids, texts, w["emb"], DIRECTIONS, target, scores >= threshold)
    np.save(tmp_path / "centroids.npy", DIRECTIONS)
    out = tmp_path / "ibc.npy"
    res = run_filter(w["pools"], out, FilterSpec(
        name="image_based_intersect_clip_score", imagenet_features=str(w["assets"]),
        centroids=str(tmp_path / "centroids.npy"), arch="l14", fraction=0.5))
    assert loaded(out) == want and len(want) > 0
    assert res.description["parameters"]["threshold"] == pytest.approx(float(threshold))


def test_image_based_needs_embeddings_and_features(model_world, tmp_path: Path):
    w = model_world
    (w["pools"][1] / "metadata" / "00000000.npz").unlink()
    with pytest.raises(FileNotFoundError, match="datacomp-sci embed"):
        run_filter(w["pools"], tmp_path / "x.npy",
                   FilterSpec(name="image_based", imagenet_features=str(w["assets"])))
    r = CliRunner().invoke(main, ["filter", str(w["pools"][0]), "--name", "image_based",
                                  "--imagenet-features", str(tmp_path), "-o",
                                  str(tmp_path / "y.npy")])
    assert r.exit_code == 1 and "download-filter-assets" in r.output


def make_wordnet(root: Path, nouns: list[list[str]]) -> list[int]:
    """A tiny WordNet 3.0 database in an NLTK data folder (root/corpora/wordnet): one noun
    synset per entry of ``nouns`` (its lemmas); returns the synsets' byte offsets."""
    wn = root / "corpora" / "wordnet"
    wn.mkdir(parents=True)
    (wn / "lexnames").write_text("00\tadj.all\t3\n01\tnoun.Tops\t1\n")
    data, offsets = "  1 tiny test database\n", []
    for lemmas in nouns:
        offsets.append(len(data.encode()))
        words = " ".join(f"{w} 0" for w in lemmas)
        data += f"{offsets[-1]:08d} 01 n {len(lemmas):02x} {words} 000 | a test synset  \n"
    (wn / "data.noun").write_text(data)
    index = "  1 tiny test database\n"
    for lemma in sorted({w for ls in nouns for w in ls}):
        offs = [o for o, ls in zip(offsets, nouns, strict=True) if lemma in ls]
        index += f"{lemma} n {len(offs)} 0 {len(offs)} 0 " + " ".join(f"{o:08d}" for o in offs) \
            + "  \n"
    (wn / "index.noun").write_text(index)
    (wn / "data.adj").write_text("  1 WordNet 3.0 Copyright 2006 by Princeton University.\n")
    for pos in ("verb", "adj", "adv"):
        if pos != "adj":
            (wn / f"data.{pos}").write_text("  1 empty\n")
        (wn / f"index.{pos}").write_text("  1 empty\n")
    for pos in ("noun", "verb", "adj", "adv"):
        (wn / f"{pos}.exc").write_text("")
    (wn / "index.sense").write_text("")
    return offsets


def test_text_based_keeps_english_captions_with_an_imagenet21k_noun(model_world, tmp_path):
    w = model_world
    offsets = make_wordnet(tmp_path / "nltk", [["dog", "domestic_dog"], ["circle"]])
    (w["assets"] / "imagenet21k_wordnet_ids.txt").write_text(f"n{offsets[0]:08d}\nn99999999\n")
    out = tmp_path / "tb.npy"
    res = run_filter(w["pools"], out, FilterSpec(name="text_based",
                                                  imagenet_features=str(w["assets"]),
                                                  wordnet=str(tmp_path / "nltk")))
    # DataComp: any word of text.split() whose first synset's offset is listed, English only
    texts = [r["text"] for r in w["rows"]]
    english = _english(texts)
    want = sorted(r["uid"] for r, e in zip(w["rows"], english, strict=True)
                  if e and "dog" in r["text"].lower().split())
    assert loaded(out) == want and len(want) > 0
    assert res.description["stats"]["in21k_ids"] == 2
    r = CliRunner().invoke(main, ["filter", str(w["pools"][0]), "--name", "text_based",
                                  "--imagenet-features", str(w["assets"]), "--wordnet",
                                  str(tmp_path), "-o", str(tmp_path / "z.npy")])
    assert r.exit_code == 1 and "nltk.downloader" in r.output
