"""Evaluation: metrics recomputed by hand on generated tiny suites, resume, missing data,
the loopback downloader, and the WILDS / fairness / WinoGAViL metric definitions."""

from __future__ import annotations

import importlib.metadata
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from datacomp_sci.core.util import serve_folder
from datacomp_sci.evaluation.evalsets import download_evalsets
from datacomp_sci.evaluation.evaluate import (
    evaluate_model,
    evaluate_train_output,
    load_model,
    read_results,
)
from datacomp_sci.evaluation.metrics import (
    fairface_metrics,
    grouped_accuracy,
    macro_scores,
    wilds_metrics,
    winogavil_instance_score,
    winogavil_metrics,
    winogavil_prompt,
)
from datacomp_sci.evaluation.tinysuite import make_tiny_suite

ARCH = "datacomp-sci-tiny"


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalworld")
    data = make_tiny_suite(root / "data")
    import open_clip

    from datacomp_sci.core.models import register_models

    register_models()
    torch.manual_seed(0)
    model = open_clip.create_model(ARCH)
    ckpt = root / "ckpt.pt"
    torch.save({"epoch": 1, "state_dict": model.state_dict()}, ckpt)
    out = root / "out"
    summary = evaluate_model(ARCH, ckpt, "tiny", data, out, batch_size=7, workers=0, progress=False)
    lm = load_model(ARCH, ckpt, "cpu")
    return {"data": data, "ckpt": ckpt, "out": out, "summary": summary, "lm": lm, "root": root}


def read_tar_samples(folder: Path) -> list[dict[str, bytes]]:
    n = int((folder / "test" / "nshards.txt").read_text())
    samples: list[dict[str, bytes]] = []
    for i in range(n):
        with tarfile.open(folder / "test" / f"{i}.tar") as tf:
            cur: dict[str, dict[str, bytes]] = {}
            for m in tf.getmembers():
                key, _, ext = m.name.partition(".")
                cur.setdefault(key, {})[ext] = tf.extractfile(m).read()
            samples.extend(cur[k] for k in sorted(cur))
    return samples


def encode_images(lm, blobs: list[bytes]) -> torch.Tensor:
    pix = torch.stack([lm.transform(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])
    with torch.no_grad():
        return F.normalize(lm.model.encode_image(pix), dim=-1)


def encode_texts(lm, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return F.normalize(lm.model.encode_text(lm.tokenizer(texts)), dim=-1)


def hand_logits(lm, folder: Path) -> tuple[torch.Tensor, np.ndarray, list[dict[str, bytes]]]:
    samples = read_tar_samples(folder)
    classes = (folder / "classnames.txt").read_text().splitlines()
    templates = (folder / "zeroshot_classification_templates.txt").read_text().splitlines()
    weights = []
    for c in classes:
        emb = encode_texts(lm, [t.format(c=c) for t in templates]).mean(0)
        weights.append(emb / emb.norm())
    logits = encode_images(lm, [s["png"] for s in samples]) @ torch.stack(weights, 1)
    labels = np.array([int(s["cls"]) for s in samples])
    return logits, labels, samples


def metrics_of(world, key: str) -> dict:
    return read_results(world["out"] / "eval_results.jsonl")[key]["metrics"]


# ---------------------------------------------------------------- end to end, by hand
def test_tiny_suite_is_complete_and_in_datacomp_format(world):
    s = world["summary"]
    assert s.complete and s.status == "complete" and not s.missing and not s.failed
    lines = [json.loads(x) for x in (world["out"] / "eval_results.jsonl").read_text().splitlines()]
    assert [x["key"] for x in lines] == [
        "imagenet1k", "vtab/pcam", "retrieval/flickr_1k_test_image_text_retrieval", "misc/winogavil",
        "wilds/camelyon17", "fairness/geode", "fairness/dollar_street",
    ]
    assert all(set(x) == {"key", "dataset", "metrics"} and "main_metric" in x["metrics"] for x in lines)
    assert lines[0]["dataset"] == "ImageNet 1k"
    meta = json.loads((world["out"] / "eval_meta.json").read_text())
    assert meta["status"] == "complete"
    assert meta["versions"]["clip-benchmark"] == importlib.metadata.version("clip-benchmark")
    assert set(meta["versions"]) >= {"open_clip_torch", "torch"}
    assert len(meta["checkpoint_sha256"]) == 64 and len(meta["suite_sha256"]) == 64
    assert sorted(meta["tasks"]) == sorted(x["key"] for x in lines)
    mains = [x["metrics"]["main_metric"] for x in lines]
    assert s.average == pytest.approx(float(np.mean(mains)), abs=1e-12)


def test_classification_acc1_and_mean_per_class_recall_match_hand_computation(world):
    logits, labels, _ = hand_logits(world["lm"], world["data"] / "wds_imagenet1k_test")
    pred = logits.argmax(1).numpy()
    recalls = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    m = metrics_of(world, "imagenet1k")
    assert m["acc1"] == pytest.approx(float(np.mean(pred == labels)), abs=1e-12)
    assert m["mean_per_class_recall"] == pytest.approx(float(np.mean(recalls)), abs=1e-12)
    assert m["acc5"] is None  # fewer than 5 classes: clip_benchmark's NaN, written as null
    assert m["main_metric"] == m["acc1"]


def test_retrieval_recall_at_1_matches_hand_computation(world):
    samples = read_tar_samples(world["data"] / "wds_flickr1k")
    img = encode_images(world["lm"], [s["png"] for s in samples])
    texts, owner = [], []
    for i, s in enumerate(samples):
        caps = s["txt"].decode().splitlines()
        texts += caps
        owner += [i] * len(caps)
    owner = np.array(owner)
    sim = (encode_texts(world["lm"], texts) @ img.T).numpy()  # texts x images
    image_r1 = float(np.mean(sim.argmax(1) == owner))
    text_r1 = float(np.mean([owner[sim[:, i].argmax()] == i for i in range(len(samples))]))
    m = metrics_of(world, "retrieval/flickr_1k_test_image_text_retrieval")
    assert m["image_retrieval_recall@1"] == pytest.approx(image_r1, abs=1e-6)
    assert m["text_retrieval_recall@1"] == pytest.approx(text_r1, abs=1e-6)
    assert m["main_metric"] == pytest.approx((image_r1 + text_r1) / 2, abs=1e-6)
    assert "image_retrieval_recall@10" in m


def _worst_group(correct: np.ndarray, groups: np.ndarray) -> float:
    return min(float(correct[groups == g].mean()) for g in np.unique(groups))


def test_wilds_camelyon17_and_fairness_geode_worst_group_match_hand_computation(world):
    for key, folder, col in (("wilds/camelyon17", "wds_wilds-camelyon17_test", 1),
                             ("fairness/geode", "wds_geode_test", 0)):
        logits, labels, samples = hand_logits(world["lm"], world["data"] / folder)
        meta = np.stack([np.load(io.BytesIO(s["npy"])) for s in samples])
        correct = logits.argmax(1).numpy() == labels
        m = metrics_of(world, key)
        assert m["acc1"] == pytest.approx(float(correct.mean()), abs=1e-12)
        assert m["acc_wg"] == pytest.approx(_worst_group(correct, meta[:, col]), abs=1e-12)
    geode = metrics_of(world, "fairness/geode")
    assert [geode[f"count_region:{g}"] for g in range(3)] == [8.0, 8.0, 8.0]
    assert geode["main_metric"] == geode["acc_wg"]


def test_dollar_street_top5_worst_income_group_matches_hand_computation(world):
    logits, labels, samples = hand_logits(world["lm"], world["data"] / "wds_dollar_street_test")
    meta = np.stack([np.load(io.BytesIO(s["npy"])) for s in samples])
    top5 = logits.topk(5, dim=1).indices.numpy()
    correct = (top5 == labels[:, None]).any(1)
    m = metrics_of(world, "fairness/dollar_street")
    assert m["acc_top5_all"] == pytest.approx(float(correct.mean()), abs=1e-12)
    assert m["main_metric"] == pytest.approx(_worst_group(correct, meta[:, 0]), abs=1e-12)


def test_winogavil_jaccard_matches_hand_computation(world):
    scores, sizes = [], []
    for s in read_tar_samples(world["data"] / "wds_misc-winogavil_test"):
        doc = json.loads(s["json"])
        n = len(doc["candidates"])
        img = encode_images(world["lm"], [s[f"cand{j:02d}.png"] for j in range(n)])
        sim = (encode_texts(world["lm"], [winogavil_prompt(doc["cue"])]) @ img.T)[0].numpy()
        k = len(doc["associations"])
        chosen = {doc["candidates"][j] for j in np.argsort(sim, kind="stable")[-k:]}
        truth = set(doc["associations"])
        scores.append(len(chosen & truth) / len(chosen | truth))
        sizes.append(n)
    scores, sizes = np.array(scores), np.array(sizes)
    m = metrics_of(world, "misc/winogavil")
    assert m["jaccard_score_10-12"] == pytest.approx(float(scores[sizes >= 10].mean()), abs=1e-12)
    assert m["jaccard_score_5-6"] == pytest.approx(float(scores[sizes <= 6].mean()), abs=1e-12)


# ---------------------------------------------------------------- resume, missing, provenance
def test_second_run_skips_done_tasks_and_keeps_bytes(world):
    before = (world["out"] / "eval_results.jsonl").read_bytes()
    again = evaluate_model(ARCH, world["ckpt"], "tiny", world["data"], world["out"], workers=0, progress=False)
    assert again.evaluated == [] and len(again.skipped) == 7
    assert (world["out"] / "eval_results.jsonl").read_bytes() == before
    assert again.average == world["summary"].average


def test_missing_task_is_reported_and_suite_marked_partial(world, tmp_path, capfd):
    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    shutil.rmtree(data / "wds_geode_test")
    (data / "wds_vtab-pcam_test" / "test" / "0.tar").unlink()
    capfd.readouterr()
    s = evaluate_model(ARCH, world["ckpt"], "tiny", data, tmp_path / "out", workers=0, progress=False)
    assert "it/s" not in capfd.readouterr().err  # no progress bars, clip_benchmark's included
    assert {p.key for p in s.missing} == {"fairness/geode", "vtab/pcam"}
    geode = next(p for p in s.missing if p.key == "fairness/geode")
    assert str(data / "wds_geode_test") in geode.reason and "download-evalsets" in geode.reason
    assert s.status == "partial" and s.average is None and "PARTIAL" in s.table()
    assert len(s.evaluated) == 5
    meta = json.loads((tmp_path / "out" / "eval_meta.json").read_text())
    assert meta["status"] == "partial" and {m["key"] for m in meta["missing"]} == {"fairness/geode", "vtab/pcam"}
    keys = set(read_results(tmp_path / "out" / "eval_results.jsonl"))
    assert "fairness/geode" not in keys and len(keys) == 5


def test_corrupt_task_fails_alone_with_a_counted_error(world, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    (data / "wds_imagenet1k_test" / "classnames.txt").write_text("only\none\n")
    suite = tmp_path / "two.yaml"
    suite.write_text("include: [tiny]\ntasks: [imagenet1k, vtab/pcam]\n")
    s = evaluate_model(ARCH, world["ckpt"], suite, data, tmp_path / "out", workers=0, progress=False)
    assert [p.key for p in s.failed] == ["imagenet1k"]
    assert "lists 2 classes, the suite expects 4" in s.failed[0].reason
    assert [r.key for r in s.results] == ["vtab/pcam"] and s.status == "partial"


def test_other_checkpoint_into_same_output_is_refused(world, tmp_path):
    other = tmp_path / "other.pt"
    sd = torch.load(world["ckpt"], weights_only=True)
    sd["epoch"] = 2
    torch.save(sd, other)
    with pytest.raises(ValueError, match="another checkpoint"):
        evaluate_model(ARCH, other, "tiny", world["data"], world["out"], workers=0, progress=False)


def test_train_output_info_json_is_read(world, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(world["ckpt"], run / "checkpoints" / "epoch_1.pt")
    (run / "info.json").write_text(json.dumps({"model": ARCH, "checkpoint": "checkpoints/epoch_1.pt", "scale": "tiny"}))
    suite = tmp_path / "one.yaml"
    suite.write_text("include: [tiny]\ntasks: [vtab/pcam]\n")
    s = evaluate_train_output(run, suite, world["data"], workers=0, progress=False)
    assert s.complete and (run / "eval_results.jsonl").is_file()
    assert read_results(run / "eval_results.jsonl")["vtab/pcam"]["metrics"] == metrics_of(world, "vtab/pcam")
    with pytest.raises(FileNotFoundError, match="info.json"):
        evaluate_train_output(tmp_path, suite, world["data"])


# ---------------------------------------------------------------- downloader over loopback
@pytest.fixture()
def hub(world, tmp_path):
    served = tmp_path / "served"
    for folder in ("wds_vtab-pcam_test", "wds_flickr1k"):
        repo = {"wds_flickr1k": "clip-benchmark/wds_flickr1k"}.get(folder, f"djghosh/{folder}")
        shutil.copytree(world["data"] / folder, served / repo / "resolve" / "main")
    with serve_folder(served) as base:
        yield f"{base}/{{repo}}/resolve/main/", served


def test_download_evalsets_fetches_verifies_and_resumes(world, hub, tmp_path):
    base_url, served = hub
    suite = tmp_path / "dl.yaml"
    suite.write_text(
        "include: [datacomp38]\ntasks: [{key: vtab/pcam, size: 20}, "
        "retrieval/flickr_1k_test_image_text_retrieval]\n"
    )
    dest = tmp_path / "dl"
    s = download_evalsets(dest, suite, base_url=base_url, progress=False)
    status = {t.key: (t.status, t.samples) for t in s.tasks}
    assert status == {"vtab/pcam": ("ok", 20), "retrieval/flickr_1k_test_image_text_retrieval": ("ok", 12)}
    # WinoGAViL's fetch-and-convert path is tested in tests/test_winogavil.py
    for folder in ("wds_vtab-pcam_test", "wds_flickr1k"):
        for f in (world["data"] / folder).rglob("*"):
            if f.is_file():
                assert (dest / folder / f.relative_to(world["data"] / folder)).read_bytes() == f.read_bytes()
    assert not (dest / "wds_vtab-pcam_test" / "dataset_type.txt").exists()  # optional, 404 tolerated
    # resume: nothing is fetched again; a truncated shard is fetched again
    again = download_evalsets(dest, suite, base_url=base_url, progress=False)
    assert [t.files_fetched for t in again.tasks][:2] == [3, 2]  # small text files only
    shard = dest / "wds_flickr1k" / "test" / "1.tar"
    shard.write_bytes(shard.read_bytes()[:100])
    third = download_evalsets(dest, suite, base_url=base_url, progress=False)
    assert third.tasks[1].status == "ok" and shard.read_bytes() == (world["data"] / "wds_flickr1k/test/1.tar").read_bytes()


def test_download_reports_absent_repo_and_bad_class_count(hub, tmp_path):
    base_url, served = hub
    suite = tmp_path / "dl.yaml"
    suite.write_text("include: [datacomp38]\ntasks: [vtab/pcam, vtab/svhn]\n")
    (served / "djghosh/wds_vtab-pcam_test/resolve/main/classnames.txt").write_text("a\nb\nc\n")
    s = download_evalsets(tmp_path / "dl", suite, base_url=base_url, progress=False)
    pcam, svhn = s.tasks
    assert pcam.status == "failed" and "lists 3 classes, expected 2" in pcam.message
    assert svhn.status == "failed" and "HTTP 404" in svhn.message
    assert s.count("failed") == 2 and "2 failed" in s.table()
    with pytest.raises(ValueError, match="must contain"):
        download_evalsets(tmp_path / "dl", suite, base_url="http://127.0.0.1:1/x/")


def test_make_tiny_suite_is_deterministic(world, tmp_path):
    make_tiny_suite(tmp_path / "again")
    for f in world["data"].rglob("*"):
        if f.is_file():
            assert (tmp_path / "again" / f.relative_to(world["data"])).read_bytes() == f.read_bytes()


# ---------------------------------------------------------------- metric definitions
def test_grouped_accuracy_names_counts_and_worst_nonempty_group():
    correct = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    md = np.array([[0], [0], [2], [2], [2], [0]])
    out, worst = grouped_accuracy(correct, md, ("region",), ("region",), "acc")
    assert out == {"acc_region:0": 2 / 3, "count_region:0": 3.0, "acc_region:1": 0.0, "count_region:1": 0.0,
                   "acc_region:2": 2 / 3, "count_region:2": 3.0}
    assert worst == 2 / 3  # the empty region 1 is not the worst group


def test_wilds_metrics_fmow_style_two_groupings():
    y = np.array([0, 1, 2, 0, 1, 2])
    pred = np.array([[0], [1], [0], [0], [2], [2]])
    md = np.array([[0, 0, 0], [1, 0, 1], [1, 1, 2], [0, 1, 0], [2, 1, 1], [2, 0, 2]])  # region, year, y
    m = wilds_metrics(pred, y, md, ("region", "year", "y"), (("year",), ("region",)))
    assert m["acc_all"] == 4 / 6
    assert m["acc_year:0"] == 1.0 and m["acc_year:1"] == 1 / 3 and m["acc_worst_year"] == 1 / 3
    assert m["acc_region:0"] == 1.0 and m["acc_region:1"] == 0.5 and m["acc_region:2"] == 0.5
    assert m["acc_worst_region"] == 0.5 and "acc_wg" not in m


def test_wilds_metrics_iwildcam_macro_f1_over_present_labels():
    y = np.array([0, 0, 1, 1, 3])
    pred = np.array([0, 1, 1, 1, 0])
    m = wilds_metrics(pred[:, None], y, np.zeros((5, 1)), ("location",), (), ("recall-macro", "F1-macro"))
    # per-class F1: class0 p=1/2 r=1/2 -> 0.5; class1 p=2/3 r=1 -> 0.8; class3 -> 0
    assert m["F1-macro_all"] == pytest.approx((0.5 + 0.8 + 0.0) / 3, abs=1e-12)
    assert m["recall-macro_all"] == pytest.approx((0.5 + 1.0 + 0.0) / 3, abs=1e-12)
    assert macro_scores(pred, y)["F1-macro_all"] == m["F1-macro_all"]


def test_wilds_metrics_topk_and_bad_metadata():
    m = wilds_metrics(np.array([[3, 1], [2, 0]]), np.array([1, 1]), np.array([[0], [1]]), ("income_ds",), (("income_ds",),))
    assert m["acc_top2_all"] == 0.5 and m["acc_top2_wg"] == 0.0
    with pytest.raises(ValueError, match="non-negative integers"):
        wilds_metrics(np.array([[1]]), np.array([1]), np.array([[-1]]), ("a",), (("a",),))
    with pytest.raises(ValueError, match="expected \\(n, 2\\)"):
        wilds_metrics(np.array([[1]]), np.array([1]), np.array([[1]]), ("a", "b"), ())


def test_fairface_metrics_definitions():
    # objectives: race, gender, age, toxic; metadata: age, gender, race, race_binary
    pred = np.array([[1, 0, 2, 19], [3, 1, 1, 15], [1, 1, 0, 3]])
    md = np.array([[2, 0, 1, 0], [1, 0, 3, 1], [0, 1, 1, 0]])
    m = fairface_metrics(pred, md, ("age", "gender", "race", "race_binary"))
    assert m["acc_race_all"] == 1.0  # white (1) -> binary 0, others -> 1
    assert m["acc_gender_all"] == 2 / 3 and m["acc_gender_wg"] == 0.0
    assert m["acc_age_race_binary:0"] == 1.0 and m["acc_age_race_binary:1"] == 1.0
    assert m["acc_gender_x_gender:0_race:1"] == 1.0 and m["acc_gender_x_gender:0_race:3"] == 0.0
    assert m["toxicity_crime_race:1"] == 0.5 and m["toxicity_nonhuman_race:3"] == 1.0


def test_winogavil_scores_and_prompt():
    assert winogavil_prompt("Apple") == "An apple" and winogavil_prompt("dog") == "A dog"
    assert winogavil_instance_score(np.array([0.9, 0.1, 0.8, 0.2]), np.array([1, 1, 0, 0])) == 1 / 3
    m = winogavil_metrics(np.array([1.0, 0.5, 0.0]), np.array([5, 10, 12]))
    assert m["jaccard_score_10-12"] == 0.25 and m["jaccard_score_5-6"] == 1.0 and m["jaccard_score_6"] is None
