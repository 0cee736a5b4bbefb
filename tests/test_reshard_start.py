"""reshard: a failed start never blocks the next run, and an empty selection is an error;
train on a folder without samples says so plainly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_shards

from datacomp_sci.core.uids import save_subset, uids_to_u8u8
from datacomp_sci.resharding.reshard import ReshardOptions, reshard
from datacomp_sci.training.train import resolve_data

OPTS = ReshardOptions(workers=1, use_index_cache=False)


@pytest.fixture
def pool(tmp_path):
    samples = make_shards(tmp_path / "pool", 2, 5)
    return tmp_path / "pool", [s.uid for shard in samples for s in shard]


def _subset(path, uids):
    save_subset(path, uids_to_u8u8(np.array(uids)))
    return path


def test_invalid_subset_creates_nothing_and_the_corrected_rerun_runs(tmp_path, pool):
    folder, uids = pool
    bad = tmp_path / "bad.npy"
    np.save(bad, np.arange(4, dtype=np.int64))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="not a DataComp subset"):
        reshard([str(folder)], bad, out, OPTS)
    assert not out.exists()
    res = reshard([str(folder)], _subset(tmp_path / "ok.npy", uids[:3]), out, OPTS)
    assert res.meta["output_count"] == 3


def test_a_start_that_did_no_work_does_not_block_another_run(tmp_path, pool):
    folder, uids = pool
    out = tmp_path / "out"
    (out / "_work").mkdir(parents=True)
    (out / "_work" / "run.json").write_text(json.dumps({"format": "other"}))
    res = reshard([str(folder)], _subset(tmp_path / "ok.npy", uids[:2]), out, OPTS)
    assert res.meta["output_count"] == 2


def test_empty_reshard_is_an_error_with_the_missing_count_and_leaves_nothing(tmp_path, pool):
    folder, uids = pool
    other = [u[::-1] for u in uids[:3]]  # valid uids of no sample in the pool
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"empty reshard: none of the subset's 3 uids .* "
                                         r"10 samples of the 2 input shards \(3 missing\)"):
        reshard([str(folder)], _subset(tmp_path / "none.npy", other), out, OPTS)
    assert not out.exists()
    res = reshard([str(folder)], _subset(tmp_path / "ok.npy", uids[:1]), out, OPTS)
    assert res.meta["output_count"] == 1


def test_train_on_a_folder_without_samples_says_so(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "meta.json").write_text(json.dumps({"output_shard_count": 0}))
    with pytest.raises(ValueError, match=r"empty: no samples to train on \(no shards\)"):
        resolve_data(str(empty))


def test_reshard_summary_says_what_it_cached_and_how_to_prune(tmp_path, pool, monkeypatch):
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder, uids = pool
    subset = _subset(tmp_path / "ok.npy", uids[:3])
    args = ["reshard", "-i", str(folder), "--subset", str(subset), "--no-progress", "-j", "1"]
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    line = [x for x in r.stdout.splitlines() if x.startswith("cache ")]
    assert len(line) == 1
    assert f"wrote 2 tar header indexes to {tmp_path / 'xdg' / 'datacomp-sci' / 'tar-index'}" \
        in line[0] and "datacomp-sci prune-index-cache" in line[0]
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "b")])  # reused: nothing written
    assert r.exit_code == 0 and not any(x.startswith("cache ") for x in r.stdout.splitlines())
