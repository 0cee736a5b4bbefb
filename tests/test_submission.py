"""submit: validation first, dataset_size computed, DataComp's record, dry run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import make_train_output, uid_file

from datacomp_sci.cli import main
from datacomp_sci.core.uids import SUBSET_DTYPE
from datacomp_sci.reporting.submission import (
    SubmissionRequest,
    prepare_submission,
    validate_submission,
)


def request(tmp_path: Path, run: Path, samples: tuple[Path, ...], track: str = "filtering",
            **kw) -> SubmissionRequest:
    fields = {"method": "arXiv+PMC", "authors": "A. Author", "contact": "a@example.org",
              "output": tmp_path / "sub", "timestamp": "2026-11-22_00:00:00", **kw}
    return SubmissionRequest(train_output=run.parent, track=track, samples=samples, **fields)


def test_dataset_size_counts_duplicates_and_parquet_rows(tmp_path):
    run = make_train_output(tmp_path)
    npy = uid_file(tmp_path / "s" / "uids.npy", 5, dup=2)
    pq.write_table(pa.table({"url": ["u1", "u2", "u3"], "text": ["a", "b", "c"]}),
                   tmp_path / "s" / "byod.parquet")
    sub = prepare_submission(request(tmp_path, run, (npy, tmp_path / "s" / "byod.parquet"),
                                     track="byod", include_checkpoint=True, hf_repo="me/dc"))
    rec = json.loads((tmp_path / "sub" / "submission.json").read_text())
    assert rec["dataset_size"] == 10 and sub.manifest["dataset_size"] == 10
    assert [s["rows"] for s in sub.manifest["samples"]] == [7, 3]
    assert rec["scale"] == "small" and rec["model"] == "ViT-B-32" and rec["batch_size"] == 4096
    assert rec["hf_username"] == "me" and rec["hf_repo_name"] == "dc" and rec["track"] == "byod"
    assert rec["ImageNet 1k"] == 0.12 and rec["Camelyon17"] == 0.35 and "FairFace" not in rec
    assert len(rec) == 14 + 38  # DataComp's 14 fields + one main metric per task
    files = sorted(p.relative_to(tmp_path / "sub").as_posix()
                   for p in (tmp_path / "sub").rglob("*") if p.is_file())
    assert files == ["manifest.json", "small_scale/checkpoint.pt", "small_scale/results.jsonl",
                     "small_scale/samples/byod.parquet", "small_scale/samples/uids.npy",
                     "submission.json"]
    assert (tmp_path / "sub/small_scale/samples/uids.npy").read_bytes() == npy.read_bytes()


def test_every_problem_is_reported_at_once(tmp_path):
    run = make_train_output(tmp_path, scale="tiny", drop=("MNIST", "GeoDE"))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(3, dtype=np.int64))
    unsorted = tmp_path / "unsorted.npy"
    arr = np.zeros(3, dtype=SUBSET_DTYPE)
    arr["f0"] = [3, 1, 2]
    np.save(unsorted, arr)
    pq.write_table(pa.table({"url": ["u"]}), tmp_path / "x.parquet")
    req = request(tmp_path, run, (bad, unsorted, tmp_path / "x.parquet", tmp_path / "no.npy"),
                  contact="nobody")
    with pytest.raises(ValueError) as e:
        validate_submission(req)
    msg = str(e.value)
    assert "(7 problems)" in msg
    assert "2 of 38 tasks of datacomp38 have no main metric (MNIST, GeoDE)" in msg
    assert "scale 'tiny' is not a DataComp leaderboard scale" in msg
    assert "bad.npy: dtype int64" in msg and "unsorted.npy: uids are not sorted (1 descents)" in msg
    assert "x.parquet: parquet sample files (url, text) belong to the byod track" in msg
    assert "no.npy: sample file not found" in msg and "'nobody' is not an e-mail" in msg
    assert not (tmp_path / "sub").exists()


def test_byod_parquet_needs_url_and_text_and_checkpoint_must_match(tmp_path):
    run = make_train_output(tmp_path)
    pq.write_table(pa.table({"url": ["u"]}), tmp_path / "x.parquet")
    (run / "checkpoints" / "epoch_5.pt").write_bytes(b"changed")
    with pytest.raises(ValueError) as e:
        validate_submission(request(tmp_path, run, (tmp_path / "x.parquet",), track="byod"))
    assert "needs columns ['url', 'text']; missing ['text']" in str(e.value)
    assert "differs from info.json's" in str(e.value)


def test_upload_is_a_clear_error_after_preparing(tmp_path):
    run = make_train_output(tmp_path)
    npy = uid_file(tmp_path / "uids.npy", 4)
    with pytest.raises(ValueError, match="huggingface-cli upload USER/REPO"):
        prepare_submission(request(tmp_path, run, (npy,)), dry_run=False)
    assert json.loads((tmp_path / "sub" / "submission.json").read_text())["dataset_size"] == 4


def test_cli_submit_dry_run(tmp_path):
    run = make_train_output(tmp_path)
    npy = uid_file(tmp_path / "uids.npy", 4)
    args = ["submit", "--train-output", str(run), "--track", "filtering", "--method", "m",
            "--authors", "a", "--contact", "a@b.c", "--samples", str(npy),
            "--output", str(tmp_path / "sub")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "dataset     4 samples" in r.output and "small_scale/samples/uids.npy" in r.output
    r = CliRunner().invoke(main, [*args[:-2], "--output", str(tmp_path / "sub2"), "--upload"])
    assert r.exit_code == 1 and "not supported" in r.output
