"""The paper's copy-detection descriptor: ``isc_ft_v107``, the ISC 2021 descriptor-track
winner (lyakaap/ISC21-Descriptor-Track-1st, ``isc_feature_extractor``), which DataComp's
dataset2metadata ran to decontaminate the pools against the evaluation sets.

Architecture, rebuilt here with timm (the feature extractor is not on PyPI):

* backbone ``timm.create_model(arch, features_only=True, pretrained=False)``, arch from
  the checkpoint (``tf_efficientnetv2_m_in21ft1k``); its last feature map;
* GeM pooling with p = 1 (the mean of the map clamped at 1e-6);
* ``fc``: linear to 256 without bias; ``bn``: BatchNorm1d(256) (eval statistics);
* L2 normalisation.

Input: the image resized to ``input_size`` x ``input_size`` (512; the checkpoint's
``args.input_size``; torchvision's bilinear, antialiased resize), scaled to [0, 1] and
normalised with the backbone's mean/std (0.5, 0.5, 0.5). The checkpoint file
``isc_ft_v107.pth.tar`` holds ``arch``, ``args`` (an argparse Namespace) and
``state_dict`` (keys prefixed ``module.``: ``backbone.*``, ``fc.weight``, ``bn.*``);
it is loaded with ``weights_only=True`` (Namespace allowed, nothing else executable).

The similarity of two images is the dot product of their descriptors; DataComp removed
pool samples whose best match among the evaluation images scored >= 0.604169.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datacomp_sci.annotate.shardimages import DECODED, DecodedImages, ImageReader
from datacomp_sci.core.util import atomic_open, sha256_file

WEIGHTS_URL = ("https://github.com/lyakaap/ISC21-Descriptor-Track-1st/releases/download/"
               "v1.0.1/isc_ft_v107.pth.tar")
WEIGHTS_NAME = "isc_ft_v107.pth.tar"
DEFAULT_THRESHOLD = 0.604169
DIM = 256


def default_weights_path() -> Path:
    """Where the upstream package keeps the file: torch hub's folder."""
    import torch

    return Path(torch.hub.get_dir()) / WEIGHTS_NAME


def build_iscnet(arch: str, fc_dim: int = DIM, p: float = 1.0):
    """The ISCNet module (random weights) for a timm backbone, built offline."""
    import timm
    import torch
    from torch import nn

    class ISCNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = timm.create_model(arch, features_only=True, pretrained=False)
            self.fc = nn.Linear(self.backbone.feature_info.info[-1]["num_chs"], fc_dim,
                                bias=False)
            self.bn = nn.BatchNorm1d(fc_dim)
            nn.init.xavier_normal_(self.fc.weight)
            self.p = p

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.backbone(x)[-1]
            f = f.clamp(min=1e-6).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)
            return nn.functional.normalize(self.bn(self.fc(f)))

    return ISCNet()


def save_checkpoint(model, arch: str, input_size: int, path: str | Path) -> None:
    """Write a checkpoint in the upstream file's layout (tests: random weights)."""
    import torch

    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    with atomic_open(path) as f:
        torch.save({"arch": arch, "args": argparse.Namespace(input_size=input_size),
                    "state_dict": state}, f)


@dataclass
class ISCModel:
    model: Any
    preprocess: Any
    arch: str
    input_size: int
    weights: str  # file path
    sha256: str

    @property
    def identity(self) -> dict:
        return {"model": "isc_ft_v107 architecture", "arch": self.arch,
                "input_size": self.input_size, "weights": Path(self.weights).name,
                "sha256": self.sha256}


def _fetch_default(path: Path) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(WEIGHTS_URL, timeout=60) as r, atomic_open(path) as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    except OSError as e:
        raise FileNotFoundError(
            f"the copy-detection weights {WEIGHTS_NAME} are not in {path.parent} and cannot "
            f"be downloaded ({e}): fetch {WEIGHTS_URL} elsewhere and pass --isc-weights PATH"
        ) from e


def load_isc(weights: str | None = None, device: str = "cpu") -> ISCModel:
    """The descriptor model from a checkpoint file (None: torch hub's copy of the public
    file, downloaded there when missing)."""
    import torch
    from torchvision import transforms

    path = Path(weights).expanduser() if weights else default_weights_path()
    if weights and not path.is_file():
        raise FileNotFoundError(f"--isc-weights {path}: no such file")
    if not path.is_file():
        _fetch_default(path)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        arch, input_size = str(ckpt["arch"]), int(ckpt["args"].input_size)
        state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
    except (OSError, RuntimeError, KeyError, AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not an isc_ft_v107-style checkpoint (arch, args."
                         f"input_size, state_dict): {str(e).splitlines()[0][:160]}") from e
    model = build_iscnet(arch, fc_dim=int(state["fc.weight"].shape[0]))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: its weights do not fit {arch}: "
                         f"{str(e).splitlines()[0][:160]}") from e
    model.eval().to(device)
    cfg = model.backbone.pretrained_cfg
    preprocess = transforms.Compose([
        transforms.Resize((input_size, input_size)),
        transforms.ToTensor(),
        transforms.Normalize(mean=cfg["mean"], std=cfg["std"]),
    ])
    return ISCModel(model, preprocess, arch, input_size, str(path), sha256_file(path))


class _RGBPreprocess:
    """The ``convert`` of :class:`~.shardimages.DecodedImages` for ISC: RGB, then the
    model's preprocessing."""

    def __init__(self, preprocess):
        self.preprocess = preprocess

    def __call__(self, img):
        return self.preprocess(img.convert("RGB"))


def _collate(batch):
    import torch

    ok = np.array([code == DECODED for _, code in batch], bool)
    good = [x for x, code in batch if code == DECODED]
    return (torch.stack(good) if good else None), ok


def describe(isc: ISCModel, files: list[str], locs: np.ndarray, batch_size: int = 64,
             workers: int = 0, device: str = "cpu", on_images=None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (float32, n x 256; zero rows where undecodable) and a decoded mask for
    the images at ``locs`` (rows of file index, offset, size) in ``files``."""
    import torch
    from torch.utils.data import DataLoader

    n = len(locs)
    ok_all = np.zeros(n, bool)
    if n == 0:
        return np.zeros((0, isc.model.fc.out_features), np.float32), ok_all
    reader = ImageReader(files)
    images = DecodedImages(reader, locs[:, 0], locs[:, 1], locs[:, 2],
                           _RGBPreprocess(isc.preprocess))
    loader = DataLoader(images, batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate, shuffle=False)
    parts = []
    start = 0
    try:
        with torch.inference_mode():
            for x, ok in loader:
                block = np.zeros((len(ok), isc.model.fc.out_features), np.float32)
                if x is not None:
                    block[ok] = isc.model(x.to(device)).float().cpu().numpy()
                parts.append(block)
                ok_all[start:start + len(ok)] = ok
                start += len(ok)
                if on_images:
                    on_images(len(ok))
    finally:
        reader.close()
    return np.concatenate(parts), ok_all


def best_matches(pool: np.ndarray, ref: np.ndarray, block: int = 4096
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each pool descriptor: the highest dot product with any reference descriptor
    (float32) and that reference's index (the first on ties); -inf and -1 without refs."""
    best = np.full(len(pool), -np.inf, np.float32)
    arg = np.full(len(pool), -1, np.int64)
    for i in range(0, len(pool), block):
        p = pool[i:i + block]
        for j in range(0, len(ref), 65536):
            sims = p @ ref[j:j + 65536].T
            k = sims.argmax(axis=1)
            v = sims[np.arange(len(p)), k]
            better = v > best[i:i + block]
            best[i:i + block][better] = v[better]
            arg[i:i + block][better] = k[better] + j
    return best, arg
