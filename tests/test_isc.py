"""decontaminate --method isc: the copy-detection descriptor (isc_ft_v107 architecture)
with random weights, saved in the upstream checkpoint layout, on a tiny suite.

The EfficientNetV2-M backbone at 512 px takes seconds per image on a CPU, so the tests
put a smaller timm backbone (tf_efficientnetv2_b0) at 32 px in the checkpoint: the same
code path (the checkpoint names its arch and input size, as the real file does)."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import make_shards
from PIL import Image

from datacomp_sci.core.schema import COMMONPOOL_SCHEMA

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from datacomp_sci.annotate import isc as iscmod  # noqa: E402
from datacomp_sci.cli import main  # noqa: E402
from datacomp_sci.evaluation.evalsets import make_tiny_suite  # noqa: E402
from datacomp_sci.subsets.filters import FilterSpec, RunOptions, run_filter  # noqa: E402

ARCH, SIZE = "tf_efficientnetv2_b0", 32


def _texture(seed: int) -> bytes:
    rng = np.random.default_rng(5000 + seed)
    arr = (rng.random((10, 10, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).resize((80, 80), Image.NEAREST).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights whose BatchNorm statistics are those of the descriptors of random
    textures (as training would set them), so that unrelated images are not all alike."""
    torch.manual_seed(0)
    model = iscmod.build_iscnet(ARCH).eval()
    from torchvision import transforms

    pre = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor(),
                              transforms.Normalize((0.485, 0.456, 0.406),
                                                   (0.229, 0.224, 0.225))])
    x = torch.stack([pre(Image.open(io.BytesIO(_texture(100 + i)))) for i in range(32)])
    with torch.no_grad():
        f = model.backbone(x)[-1].clamp(min=1e-6).mean(dim=(-2, -1))
        z = model.fc(f)
    model.bn.running_mean.copy_(z.mean(0))
    model.bn.running_var.copy_(z.var(0) + 1e-5)
    path = tmp_path_factory.mktemp("isc") / "isc_random.pth.tar"
    iscmod.save_checkpoint(model, ARCH, SIZE, path)
    return path


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    evalsets = make_tiny_suite(tmp_path / "evalsets")
    tar = evalsets / "wds_imagenet1k_test" / "test" / "0.tar"
    with tarfile.open(tar) as tf:
        copied = tf.extractfile("s0000003.png").read()
    image_fn = lambda s, i: copied if (s, i) == (0, 1) else _texture(10 * s + i)  # noqa: E731
    samples = [x for shard in make_shards(tmp_path / "pool" / "shards", 2, 4, image_fn=image_fn)
               for x in shard]
    (tmp_path / "pool" / "metadata").mkdir()
    rows = [{"uid": x.uid, "text": x.caption} for x in samples]
    rows.append({"uid": "f" * 32, "text": "no image in the shards"})
    import pyarrow as pa
    pq.write_table(pa.table({n: [r.get(n) for r in rows] for n in COMMONPOOL_SCHEMA.names},
                            schema=COMMONPOOL_SCHEMA),
                   tmp_path / "pool" / "metadata" / "00000000.parquet")
    return {"evalsets": evalsets, "pool": tmp_path / "pool", "samples": samples,
            "copy": samples[1].uid, "xdg": tmp_path / "xdg"}


def test_checkpoint_layout_is_the_upstream_one(weights):
    with torch.serialization.safe_globals([__import__("argparse").Namespace]):
        ckpt = torch.load(weights, weights_only=True)
    assert ckpt["arch"] == ARCH and ckpt["args"].input_size == SIZE
    keys = set(ckpt["state_dict"])
    assert {"module.fc.weight", "module.bn.weight", "module.bn.bias", "module.bn.running_mean",
            "module.bn.running_var"} <= keys
    assert all(k.startswith(("module.backbone.", "module.fc.", "module.bn.")) for k in keys)
    assert ckpt["state_dict"]["module.fc.weight"].shape[0] == 256


def test_descriptor_equals_the_upstream_forward(weights):
    """The upstream computation restated: backbone's last map, GeM (p=1) by avg_pool2d,
    fc, bn, F.normalize; Resize((S, S)), ToTensor, Normalize(backbone mean/std)."""
    import torch.nn.functional as F
    from torchvision import transforms

    isc = iscmod.load_isc(str(weights))
    images = [_texture(i) for i in range(5)]
    tmp = io.BytesIO(b"".join(images))
    offsets = np.cumsum([0] + [len(b) for b in images[:-1]])
    path = weights.parent / "blob.bin"
    path.write_bytes(tmp.getvalue())
    locs = np.stack([np.zeros(5, np.int64), offsets, [len(b) for b in images]], axis=1)
    got, ok = iscmod.describe(isc, [str(path)], locs, batch_size=2)
    assert ok.all() and got.shape == (5, 256)
    m = isc.model
    cfg = m.backbone.pretrained_cfg
    pre = transforms.Compose([transforms.Resize((SIZE, SIZE)), transforms.ToTensor(),
                              transforms.Normalize(cfg["mean"], cfg["std"])])
    with torch.no_grad():
        x = torch.stack([pre(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
        f = m.backbone(x)[-1]
        f = F.avg_pool2d(f.clamp(min=1e-6).pow(1.0), (f.size(-2), f.size(-1))).pow(1.0)
        want = F.normalize(m.bn(m.fc(f.view(5, -1)))).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_isc_decontamination_removes_the_copied_evaluation_image(world, weights, tmp_path):
    out = tmp_path / "clean.npy"
    spec = FilterSpec(name="decontaminate", evalsets=str(world["evalsets"]), suite="tiny",
                      method="isc", isc_weights=str(weights))
    opts = RunOptions(device="cpu", batch_size=16, workers=1)
    res = run_filter([world["pool"]], out, spec, opts)
    st = res.description["stats"]
    assert (st["rows"], st["checked"], st["unchecked_no_image"]) == (9, 8, 1)
    matches = pq.read_table(tmp_path / "clean.matches.parquet").to_pylist()
    best = {m["uid"]: m for m in matches}
    assert best[world["copy"]]["similarity"] >= 0.9999
    assert (best[world["copy"]]["task"], best[world["copy"]]["eval_member"]) == \
        ("imagenet1k", "s0000003.png")
    kept = set(np.load(out).tolist())
    assert len(kept) == 9 - st["removed"] and 1 <= st["removed"] < 8  # not all removed
    assert res.description["parameters"]["threshold"] == 0.604169
    assert res.description["parameters"]["descriptor"]["arch"] == ARCH
    assert st["eval_shards_described"] > 0 and st["eval_shards_cached"] == 0
    # descriptors of evaluation shards are cached: a second run describes none again
    again = run_filter([world["pool"]], tmp_path / "again.npy", spec, opts)
    assert again.description["stats"]["eval_shards_described"] == 0
    assert (tmp_path / "again.npy").read_bytes() == out.read_bytes()


@pytest.mark.slow
def test_isc_cli_and_missing_weights_error(world, weights, tmp_path):
    base = ["filter", str(world["pool"]), "--name", "decontaminate", "--method", "isc",
            "--evalsets", str(world["evalsets"]), "--suite", "tiny", "--no-progress",
            "--device", "cpu"]
    r = CliRunner().invoke(main, [*base, "--isc-weights", str(tmp_path / "nope.pth.tar"),
                                  "-o", str(tmp_path / "a.npy")])
    assert r.exit_code != 0 and "--isc-weights" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, [*base, "--isc-weights", str(weights), "--isc-threshold",
                                  "0.9999", "-o", str(tmp_path / "b.npy"), "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "removed" in r.output and "similarity" in r.output
