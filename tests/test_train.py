"""`datacomp-sci train`: DataComp's scales and argv, data resolution, a real tiny CPU run."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from datacomp_sci.cli import main as cli_main
from datacomp_sci.core.util import sha256_file
from datacomp_sci.training.scales import SCALES, get_scale
from datacomp_sci.training.train import (
    TrainOptions,
    load_train_data_spec,
    make_plan,
    resolve_data,
    train,
)

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220),
          "yellow": (230, 220, 30), "black": (10, 10, 10), "white": (245, 245, 245),
          "purple": (140, 30, 160), "orange": (250, 140, 20)}


def make_shards(folder: Path, n_shards: int, per_shard: int, offset: int = 0) -> Path:
    """img2dataset's webdataset layout: {N:08d}.tar (jpg, json, txt) + {N:08d}_stats.json."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(COLORS)
    for s in range(n_shards):
        with tarfile.open(folder / f"{s:08d}.tar", "w") as tar:
            for i in range(per_shard):
                key = f"{s:08d}{i:04d}"
                color = names[(5 * i + s + offset) % len(names)]
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), COLORS[color]).save(buf, "JPEG")
                caption = f"a {color} square"
                meta = {"uid": f"{offset * 10**6 + s * 1000 + i:032x}", "caption": caption,
                        "key": key, "status": "success"}
                for ext, data in (("jpg", buf.getvalue()), ("json", json.dumps(meta).encode()),
                                  ("txt", caption.encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        stats = {"count": per_shard, "successes": per_shard, "failed_to_download": 0,
                 "failed_to_resize": 0}
        (folder / f"{s:08d}_stats.json").write_text(json.dumps(stats))
    return folder


def tiny_opts(output: Path, **kw) -> TrainOptions:
    return TrainOptions(output=str(output), **kw)


# ---- scales and the OpenCLIP argument list ------------------------------------------


def test_scales_carry_datacomp_values():
    got = {n: (s.model, s.batch_size, s.learning_rate, s.warmup, s.samples_seen, s.beta2)
           for n, s in SCALES.items() if s.standard}
    assert got == {
        "debug": ("ViT-B-32", 1024, 1e-4, 500, 128_000, None),
        "small": ("ViT-B-32", 4096, 5e-4, 500, 12_800_000, None),
        "medium": ("ViT-B-32", 4096, 5e-4, 500, 128_000_000, None),
        "large": ("ViT-B-16", 8192, 5e-4, 500, 1_280_000_000, None),
        "xlarge": ("ViT-L-14", 90112, 1e-3, 10_000, 12_800_000_000, 0.95),
    }
    assert get_scale("small").steps == 3125
    tiny = get_scale("tiny")
    assert (tiny.model, tiny.precision, tiny.workers, tiny.standard) == (
        "datacomp-sci-tiny", "fp32", 0, False)
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        get_scale("huge")
    with pytest.raises(AttributeError):
        tiny.batch_size = 1  # frozen


def test_small_argv_equals_datacomp(tmp_path):
    data = make_shards(tmp_path / "pool", 3, 2)
    plan = make_plan(get_scale("small"), tiny_opts(tmp_path / "out"), data=str(data), world=(0, 1))
    assert plan.argv() == [
        "--save-frequency", "0",
        "--ddp-static-graph",
        "--local-loss",
        "--gather-with-grad",
        "--grad-checkpointing",
        "--train-data", f"{data}/{{00000000..00000002}}.tar",
        "--train-num-samples", "2560000",
        "--warmup", "500",
        "--dataset-type", "webdataset",
        "--precision", "amp",
        "--workers", "4",
        "--model", "ViT-B-32",
        "--batch-size", "4096",
        "--epochs", "5",
        "--lr", "0.0005",
        "--logs", str(tmp_path / "out"),
        "--name", "small_scale",
        "--seed", "0",
        "--accum-freq", "1",
        "--log-every-n-steps", "100",
        "--save-most-recent",
        "--resume", "latest",
        "--dataset-resampled",
    ]  # fmt: skip


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_argv_per_scale_world_size_and_accumulation(tmp_path):
    data = str(make_shards(tmp_path / "pool", 1, 2))
    out = tmp_path / "out"
    xl = make_plan(get_scale("xlarge"), tiny_opts(out, accum_freq=2, precision="amp_bf16"),
                   data=data, world=(0, 256))
    argv = xl.argv()
    assert [_flag(argv, f) for f in ("--batch-size", "--lr", "--warmup", "--model",
                                     "--train-num-samples", "--precision", "--beta2")] == [
        "176", "0.001", "10000", "ViT-L-14", "2560000000", "amp_bf16", "0.95"]
    assert argv[-2:] == ["--beta2", "0.95"]
    for name, batch, lr in (("debug", "128", "0.0001"), ("medium", "512", "0.0005"),
                            ("large", "1024", "0.0005")):
        argv = make_plan(get_scale(name), tiny_opts(out), data=data, world=(3, 8)).argv()
        assert (_flag(argv, "--batch-size"), _flag(argv, "--lr")) == (batch, lr)
        assert "--beta2" not in argv and "--train-data-upsampling-factors" not in argv
    with pytest.raises(ValueError, match="not divisible by world size 3"):
        make_plan(get_scale("small"), tiny_opts(out), data=data, world=(0, 3))
    with pytest.raises(ValueError, match="exactly one of --data"):
        make_plan(get_scale("small"), tiny_opts(out), world=(0, 1))
    with pytest.raises(FileNotFoundError, match="--resume /nope.pt: no such checkpoint"):
        make_plan(get_scale("small"), tiny_opts(out, resume="/nope.pt"), data=data, world=(0, 1))
    with pytest.raises(ValueError, match="--exp-name 'a/b'"):
        make_plan(get_scale("small"), tiny_opts(out, exp_name="a/b"), data=data, world=(0, 1))


def test_multi_process_without_cuda_is_refused_before_training(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: multi-process training is allowed")
    data = str(make_shards(tmp_path / "pool", 1, 2))
    plan = make_plan(get_scale("tiny"), tiny_opts(tmp_path / "out"), data=data, world=(0, 2))
    assert plan.per_device_batch == 16
    with pytest.raises(ValueError, match="world size 2 without CUDA"):
        train(plan)
    assert not (tmp_path / "out").exists()


# ---- data resolution -----------------------------------------------------------------


def test_resolve_meta_json_wins_over_files_present(tmp_path):
    reshard = make_shards(tmp_path / "reshard", 3, 4)
    (reshard / "meta.json").write_text(json.dumps(
        {"output_shard_count": 2, "output_shard_format": "{:08d}.tar", "processed_count": 12,
         "output_count": 8}))
    files = make_shards(tmp_path / "files", 3, 5)
    data = resolve_data(f"{reshard}::{files}")
    assert [(s.name, s.found_by, s.pattern, s.n_shards, s.n_samples) for s in data.sources] == [
        ("reshard", "meta.json", f"{reshard}/{{00000000..00000001}}.tar", 2, 8),
        ("files", "files", f"{files}/{{00000000..00000002}}.tar", 3, 15),
    ]
    assert data.train_data == f"{reshard}/{{00000000..00000001}}.tar::{files}/{{00000000..00000002}}.tar"
    assert data.upsampling_factors is None
    assert data.shares() == [8 / 23, 15 / 23]
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        resolve_data(str(tmp_path / "nope"))


def _write_spec(path: Path, sources: list[tuple[str, Path, float]], factors: bool) -> Path:
    rows = []
    for name, folder, factor in sources:
        s = resolve_data(str(folder)).sources[0]
        rows.append({"name": name, "path": str(folder), "pattern": s.pattern,
                     "n_shards": s.n_shards, "n_samples": s.n_samples, "factor": factor,
                     "proportion": 0.5})
    spec = {"format": "datacomp-sci/data-spec/1",
            "train_data": "::".join(r["pattern"] for r in rows),
            "upsampling_factors": "::".join(f"{f:g}" for _, _, f in sources) if factors else None,
            "total_samples": sum(r["n_samples"] for r in rows), "sources": rows}
    path.write_text(json.dumps(spec))
    return path


def test_data_spec_with_upsampling_factors(tmp_path):
    a = make_shards(tmp_path / "arxiv", 2, 4)
    b = make_shards(tmp_path / "pmc", 1, 2)
    spec = _write_spec(tmp_path / "mix.json", [("arxiv", a, 1.0), ("pmc", b, 3.0)], factors=True)
    plan = make_plan(get_scale("small"), tiny_opts(tmp_path / "out"), data_spec=str(spec),
                     world=(0, 1))
    argv = plan.argv()
    assert argv[-2:] == ["--train-data-upsampling-factors", "1::3"]
    assert _flag(argv, "--train-data") == (
        f"{a}/{{00000000..00000001}}.tar::{b}/00000000.tar")
    # expected share of samples: factor * size; 1*8 : 3*2
    assert plan.data.shares() == [8 / 14, 6 / 14]
    # the printed plan: repeats = samples seen * share / source size
    from datacomp_sci.training.train import format_plan

    text = format_plan(plan)
    assert "steps          3,125 (OpenCLIP runs 3,140" in text
    assert re.search(r"arxiv\s+data-spec\s+2\s+8\s+1\s+57\.1%\s+914285\.71", text)
    assert re.search(r"pmc\s+data-spec\s+1\s+2\s+3\s+42\.9%\s+2742857\.14", text)

    unweighted = _write_spec(tmp_path / "plain.json", [("arxiv", a, 1.0), ("pmc", b, 1.0)],
                             factors=False)
    plain = load_train_data_spec(unweighted)
    assert plain.upsampling_factors is None and plain.shares() == [0.8, 0.2]

    # the spec written by `datacomp-sci mix` reaches OpenCLIP verbatim
    from datacomp_sci.resharding.mix import mix_sources

    written = mix_sources([f"arxiv={a}", f"pmc={b}"], "arxiv=0.25,pmc=0.75",
                          output=tmp_path / "mixed.json")
    mixed = make_plan(get_scale("small"), tiny_opts(tmp_path / "out"),
                      data_spec=str(tmp_path / "mixed.json"), world=(0, 1))
    assert _flag(mixed.argv(), "--train-data-upsampling-factors") == written.upsampling_factors
    assert mixed.data.shares() == pytest.approx([0.25, 0.75])

    (b / "00000000.tar").unlink()
    with pytest.raises(FileNotFoundError, match="pmc: 1 of 1 shards missing"):
        load_train_data_spec(spec)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="is not 'datacomp-sci/data-spec/1'"):
        load_train_data_spec(bad)


def test_cli_dry_run_prints_plan_and_argv(tmp_path):
    data = make_shards(tmp_path / "pool", 2, 3)
    res = CliRunner().invoke(cli_main, ["train", "--scale", "small", "--data", str(data),
                                        "--output", str(tmp_path / "out"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "model          ViT-B-32" in res.output
    assert "global 4,096 = 1 device(s) x 4,096 per device" in res.output
    assert "--train-num-samples 2560000 --warmup 500" in res.output
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(cli_main, ["train", "--scale", "small", "--output", str(tmp_path)])
    assert res.exit_code == 1 and "exactly one of --data" in res.output


# ---- a real tiny run on CPU ------------------------------------------------------------


def _losses(log: Path) -> list[float]:
    return [float(x) for x in re.findall(r"Contrastive_loss: ([0-9.]+) \(", log.read_text())]


def _weights(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_tiny_run_interrupt_resume_complete(tmp_path, monkeypatch, capfd):
    """Interrupted, resumed and completed, with --deterministic: the resumed run's weights
    equal those of an uninterrupted run bit for bit (without --deterministic OpenCLIP's
    sample-shuffle buffer is seeded from the clock, and they differ)."""
    import open_clip
    import open_clip_train.data as oc_data
    import open_clip_train.main as oc_main
    import torch

    data = make_shards(tmp_path / "pool", 2, 64)
    sample_ids = np.array([(0, 1), (0, 2)], dtype=np.dtype("u8,u8"))
    np.save(data / "sample_ids.npy", sample_ids)
    (data / "meta.json").write_text(json.dumps(
        {"output_shard_count": 2, "output_shard_format": "{:08d}.tar"}))
    plan = make_plan(get_scale("tiny"), tiny_opts(tmp_path / "runs", deterministic=True),
                     data=str(data), world=(0, 1))
    exp = tmp_path / "runs" / "tiny_scale"
    shuffle = (oc_data._SAMPLE_SHUFFLE_SIZE, oc_data._SAMPLE_SHUFFLE_INITIAL)

    # 1) interrupted after 2 of 5 epochs (as a killed job would be)
    real_epoch = oc_main.train_one_epoch

    def interrupt_at_2(model, data_, loss, epoch, *args, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(model, data_, loss, epoch, *args, **kwargs)

    monkeypatch.setattr(oc_main, "train_one_epoch", interrupt_at_2)
    printed: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(plan, echo=printed.append)
    assert "steps          30" in printed[0] and "deterministic" in printed[0]
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ["epoch_latest.pt"]
    assert not (exp / "info.json").exists()
    monkeypatch.setattr(oc_main, "train_one_epoch", real_epoch)

    # 2) the same command resumes at epoch 2 instead of restarting
    result = train(plan, echo=printed.append)
    log = (exp / "out.log").read_text()
    assert result.status == "trained"
    assert "=> resuming checkpoint" in log and "(epoch 2)" in log
    # epochs 0 and 1 ran once; epoch 2 was started, interrupted and run again
    assert [log.count(f"Start epoch {e}") for e in range(5)] == [1, 1, 2, 1, 1]
    losses = _losses(exp / "out.log")
    assert len(losses) == 30 and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:3])

    info = json.loads((exp / "info.json").read_text())
    assert (info["model"], info["checkpoint"], info["scale"]) == (
        "datacomp-sci-tiny", "checkpoints/epoch_5.pt", "tiny")
    assert info["checkpoint_sha256"] == sha256_file(exp / "checkpoints/epoch_5.pt")
    assert info["openclip_argv"] == plan.argv() and info["world_size"] == 1
    assert info["fingerprint"]["deterministic"] is True
    assert info["scale_config"]["samples_seen"] == 960
    assert info["data"]["sources"][0]["found_by"] == "meta.json"
    assert info["subset_files"] == [{"source": "pool", "path": str(data / "sample_ids.npy"),
                                     "sha256": sha256_file(data / "sample_ids.npy")}]
    assert set(info["versions"]) >= {"torch", "open_clip_torch", "webdataset"}
    assert "git_revision" in info

    model, _, _ = open_clip.create_model_and_transforms(
        "datacomp-sci-tiny", pretrained=str(exp / info["checkpoint"]))
    saved = torch.load(exp / info["checkpoint"], map_location="cpu", weights_only=True)
    assert saved["epoch"] == 5
    loaded = model.state_dict()
    assert sorted(loaded) == sorted(saved["state_dict"])
    assert all(torch.equal(loaded[k], v) for k, v in saved["state_dict"].items())

    # 3) a completed run is not trained again (OpenCLIP is not even called)
    def must_not_run(argv):
        raise AssertionError("OpenCLIP called for a completed run")

    monkeypatch.setattr(oc_main, "main", must_not_run)
    again = train(plan, echo=printed.append)
    assert again.status == "already complete" and again.info == info

    # a different configuration in the same experiment folder is refused
    other = make_plan(get_scale("tiny"), tiny_opts(tmp_path / "runs", seed=1, deterministic=True),
                      data=str(data), world=(0, 1))
    with pytest.raises(ValueError, match="different fingerprint|different seed"):
        train(other)
    plain = make_plan(get_scale("tiny"), tiny_opts(tmp_path / "runs"), data=str(data), world=(0, 1))
    with pytest.raises(ValueError, match="different deterministic"):
        train(plain)
    monkeypatch.undo()

    # 4) an uninterrupted deterministic run ends with the same weights, and the process's
    #    OpenCLIP and torch settings are put back afterwards
    straight = make_plan(get_scale("tiny"), tiny_opts(tmp_path / "runs", exp_name="straight",
                                                      deterministic=True),
                         data=str(data), world=(0, 1))
    capfd.readouterr()
    done = train(straight, echo=printed.append, quiet=True)
    console = capfd.readouterr()
    # quietly: OpenCLIP's INFO lines go to out.log only, but the last line of each epoch
    info_lines = [x for x in (console.out + console.err).splitlines() if "| INFO |" in x]
    straight_log = (tmp_path / "runs" / "straight" / "out.log").read_text()
    assert "| INFO | Params:" in straight_log
    assert info_lines and all("Train Epoch:" in x and "(100%)]" in x for x in info_lines)
    assert len(info_lines) == straight_log.count("(100%)]") == 5
    resumed, uninterrupted = _weights(exp / info["checkpoint"]), _weights(Path(done.checkpoint))
    assert all(torch.equal(resumed[k], v) for k, v in uninterrupted.items())
    assert _losses(tmp_path / "runs" / "straight" / "out.log")[-1] == losses[-1]
    assert shuffle == (oc_data._SAMPLE_SHUFFLE_SIZE, oc_data._SAMPLE_SHUFFLE_INITIAL)
    assert not torch.are_deterministic_algorithms_enabled()


def test_quiet_console_keeps_warnings_and_one_line_per_epoch():
    from datacomp_sci.training.train import epoch_lines_only

    def rec(level, msg):
        return logging.LogRecord("x", level, __file__, 1, msg, None, None)

    assert epoch_lines_only(rec(logging.WARNING, "careful"))
    assert epoch_lines_only(rec(logging.INFO, "Train Epoch: 2 [  64/64 (100%)] Loss: 1.0"))
    assert not epoch_lines_only(rec(logging.INFO, "Train Epoch: 2 [  32/64 (50%)] Loss: 1.2"))
    assert not epoch_lines_only(rec(logging.INFO, "Params:"))
