"""WinoGAViL download + conversion against a loopback copy of the upstream files
(``winogavil_dataset.csv`` + ``winogavil_images.zip`` in nlphuji/winogavil's format)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from loopback import http_server  # noqa: F401
from PIL import Image

from datacomp_sci.evaluation import winogavil
from datacomp_sci.evaluation.evalsets import download_evalsets
from datacomp_sci.evaluation.evaluate import evaluate_model, load_model, read_results
from datacomp_sci.evaluation.metrics import winogavil_prompt

ARCH = "datacomp-sci-tiny"
FOLDER = "wds_misc-winogavil_test"
HEADER = ["", "candidates", "cue", "associations", "score_fool_the_ai", "num_associations",
          "num_candidates", "solvers_jaccard_mean", "solvers_jaccard_std", "ID"]
# (cue, candidates, associations): 5, 6, 10 and 12 candidates, one name with a space
ROWS = [
    ("red", ["red0", "green1", "blue2", "yellow3", "tea party"], ["red0", "tea party"]),
    ("apple", ["red0", "green1", "blue2", "yellow3", "purple4", "orange5"], ["green1", "purple4", "red0"]),
    ("blue", [f"c{j}" for j in range(10)], ["c2", "c7"]),
    ("orange", [f"c{j}" for j in range(12)], ["c1", "c5", "c11"]),
]
COLORS = [(220, 40, 40), (40, 180, 60), (40, 70, 220), (230, 210, 40), (150, 50, 190), (240, 140, 30)]


def _jpeg(i: int) -> bytes:
    img = Image.new("RGB", (32, 32), COLORS[i % len(COLORS)])
    img.paste((i * 19 % 256, 0, 0), (i % 16, 4, i % 16 + 12, 16))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _images() -> dict[str, bytes]:
    names = sorted({c for _, cands, _ in ROWS for c in cands})
    return {n: _jpeg(i) for i, n in enumerate(names)}


def make_upstream(root: Path, rows=ROWS, drop_image: str | None = None) -> Path:
    """``root/nlphuji/winogavil/resolve/main/{csv,zip}`` as on the hub (pandas-style CSV)."""
    repo = root / "nlphuji" / "winogavil" / "resolve" / "main"
    repo.mkdir(parents=True)
    with open(repo / "winogavil_dataset.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i, (cue, cands, assoc) in enumerate(rows):
            w.writerow([i, json.dumps(cands), cue, json.dumps(assoc), 50, len(assoc), len(cands), 1.0, 0.0, 100 + i])
    with zipfile.ZipFile(repo / "winogavil_images.zip", "w") as zf:
        for name, data in _images().items():
            if name != drop_image:
                zf.writestr(f"winogavil_images/{name}.jpg", data)
    return repo


@pytest.fixture
def upstream(tmp_path, http_server, monkeypatch):  # noqa: F811
    monkeypatch.setattr(winogavil, "PER_SHARD", 3)
    make_upstream(tmp_path / "hub")
    return http_server(tmp_path / "hub") + "/{repo}/resolve/main/"


def _suite(tmp_path: Path) -> Path:
    p = tmp_path / "wino.yaml"
    p.write_text("include: [datacomp38]\ntasks: [{key: misc/winogavil, size: 4}]\n")
    return p


def _members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers()}


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_download_converts_to_exact_layout_and_resumes(tmp_path, upstream):
    dest = tmp_path / "data"
    s = download_evalsets(dest, _suite(tmp_path), base_url=upstream, progress=False)
    (t,) = s.tasks
    assert (t.status, t.samples, t.files_fetched, t.message) == ("ok", 4, 2, "")
    folder = dest / FOLDER
    assert sorted(_tree(folder)) == ["test/0.tar", "test/1.tar", "test/nshards.txt",
                                     "upstream/winogavil_dataset.csv", "upstream/winogavil_images.zip"]
    assert (folder / "test/nshards.txt").read_text() == "2\n"
    images = _images()
    shard0 = _members(folder / "test/0.tar")
    assert list(shard0)[:6] == [f"s0000000.cand0{j}.jpg" for j in range(5)] + ["s0000000.json"]
    assert len(shard0) == (5 + 1) + (6 + 1) + (10 + 1)
    assert json.loads(shard0["s0000000.json"]) == {
        "cue": "red", "candidates": ROWS[0][1], "associations": ROWS[0][2], "id": "100"}
    assert shard0["s0000000.cand04.jpg"] == images["tea party"]  # upstream bytes, unchanged
    shard1 = _members(folder / "test/1.tar")
    assert sorted(shard1) == sorted([f"s0000003.cand{j:02d}.jpg" for j in range(12)] + ["s0000003.json"])
    assert json.loads(shard1["s0000003.json"])["associations"] == ["c1", "c5", "c11"]
    with tarfile.open(folder / "test/1.tar") as tf:
        assert {(m.mtime, m.mode, m.uid) for m in tf.getmembers()} == {(0, 0o644, 0)}

    # rerun: converted and verifiable -> nothing fetched or written
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.tar")}
    again = download_evalsets(dest, _suite(tmp_path), base_url=upstream, progress=False)
    assert (again.tasks[0].status, again.tasks[0].files_fetched, again.tasks[0].message) == ("ok", 0, "already converted")
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # interrupted conversion (shard 1 and nshards missing): only shard 1 is rebuilt, no download
    reference = _tree(folder)
    (folder / "test/1.tar").unlink()
    (folder / "test/nshards.txt").unlink()
    third = download_evalsets(dest, _suite(tmp_path), base_url=upstream, progress=False)
    assert (third.tasks[0].status, third.tasks[0].files_fetched) == ("ok", 0)
    assert (folder / "test/0.tar").stat().st_mtime_ns == before[folder / "test/0.tar"]
    assert _tree(folder) == reference
    # byte-deterministic: a fresh download gives identical bytes
    other = download_evalsets(tmp_path / "other", _suite(tmp_path), base_url=upstream, progress=False)
    assert other.ok and _tree(tmp_path / "other" / FOLDER) == reference
    # verify-only reads the converted layout
    assert download_evalsets(dest, _suite(tmp_path), base_url=upstream, verify_only=True,
                             progress=False).tasks[0].samples == 4


def test_truncated_zip_part_is_refetched(tmp_path, upstream):
    src = tmp_path / "data" / FOLDER / "upstream"
    src.mkdir(parents=True)
    (src / "winogavil_images.zip.part").write_bytes(b"PK garbage")
    s = download_evalsets(tmp_path / "data", _suite(tmp_path), base_url=upstream, progress=False)
    assert s.tasks[0].status == "ok" and not (src / "winogavil_images.zip.part").exists()
    assert (src / "winogavil_images.zip").read_bytes() == (
        tmp_path / "hub/nlphuji/winogavil/resolve/main/winogavil_images.zip").read_bytes()


@pytest.mark.parametrize("case", ["bad_rows", "missing_image"])
def test_hostile_upstream_gives_counted_error(tmp_path, http_server, case):  # noqa: F811
    rows = list(ROWS)
    if case == "bad_rows":
        rows[1] = ("x", ["a", "b"], ["zzz"])
        rows[2] = ("", ["a"], ["a"])
    make_upstream(tmp_path / "hub", rows, drop_image="c7" if case == "missing_image" else None)
    base = http_server(tmp_path / "hub") + "/{repo}/resolve/main/"
    s = download_evalsets(tmp_path / "data", _suite(tmp_path), base_url=base, progress=False)
    (t,) = s.tasks
    assert t.status == "failed" and not (tmp_path / "data" / FOLDER / "test" / "nshards.txt").exists()
    if case == "bad_rows":
        assert "2 bad lines: 1 association not among candidates (line 3); 1 empty cue (line 4)" in t.message
    else:
        assert "1 candidate image(s) missing (needed by 2 candidate slots), e.g. winogavil_images/c7.jpg" in t.message


def test_evaluate_reads_converted_layout_with_hand_computed_jaccard(tmp_path, upstream):
    dest = tmp_path / "data"
    assert download_evalsets(dest, _suite(tmp_path), base_url=upstream, progress=False).ok
    import open_clip

    from datacomp_sci.core.models import register_models

    register_models()
    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"epoch": 1, "state_dict": open_clip.create_model(ARCH).state_dict()}, ckpt)
    summary = evaluate_model(ARCH, ckpt, _suite(tmp_path), dest, tmp_path / "out", batch_size=8,
                             workers=0, device="cpu", progress=False)
    assert summary.complete
    lm = load_model(ARCH, ckpt, "cpu")
    images = _images()
    scores = []
    for cue, cands, assoc in ROWS:
        pix = torch.stack([lm.transform(Image.open(io.BytesIO(images[c])).convert("RGB")) for c in cands])
        with torch.no_grad():
            img = F.normalize(lm.model.encode_image(pix), dim=-1)
            txt = F.normalize(lm.model.encode_text(lm.tokenizer([winogavil_prompt(cue)])), dim=-1)
        sim = (txt @ img.T)[0].numpy()
        chosen = {cands[j] for j in np.argsort(sim, kind="stable")[-len(assoc):]}
        scores.append(len(chosen & set(assoc)) / len(chosen | set(assoc)))
    m = read_results(tmp_path / "out" / "eval_results.jsonl")["misc/winogavil"]["metrics"]
    assert m["jaccard_score_5"] == pytest.approx(scores[0], abs=1e-9)
    assert m["jaccard_score_6"] == pytest.approx(scores[1], abs=1e-9)
    assert m["main_metric"] == m["jaccard_score_10-12"] == pytest.approx((scores[2] + scores[3]) / 2, abs=1e-9)
    assert m["avg_jaccard_score"] == pytest.approx(float(np.mean(scores)), abs=1e-9)
