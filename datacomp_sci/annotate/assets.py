"""``datacomp-sci download-filter-assets DIR``: the public files DataComp's embedding- and
WordNet-based baselines read (named, with their sha256, in DataComp's baselines/utils.py):
ImageNet-1k training-image L/14 features ``in1k_clip_vit_l14_{0..4}.pt``, the ImageNet-21k
WordNet ids ``imagenet21k_wordnet_ids.txt``, and optionally DataComp's pool centroids
``{scale}_centroids_l14.pt``. Each file is downloaded atomically and checked against its
sha256; a file already present with the right sha256 is not fetched again.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datacomp_sci.core.util import atomic_open, sha256_file

RELEASE = "https://github.com/sagadre/datacomp_baseline_assets/releases/download/v0.1.0-alpha"
# file name -> sha256 (DataComp's baselines/utils.py)
ASSETS: dict[str, str] = {
    "imagenet21k_wordnet_ids.txt":
        "66362bdedf36d933382edca5493fc562dcc17128ce36403c9e730a75f48cb2f2",
    "in1k_clip_vit_l14_0.pt": "304990fd492f40ba90072b80af78d6e8edcab9d042476ef513e03441cf53743b",
    "in1k_clip_vit_l14_1.pt": "72f008e6aa3bfb54174fa322963215337f843fc90fd642a9dccc815dd9e7ee76",
    "in1k_clip_vit_l14_2.pt": "83c3cc6503b8a50a22cac7023ca6cd61b130ab9725db2a7519f1bec5cabf5493",
    "in1k_clip_vit_l14_3.pt": "83faa289f847799ddcd438e5b74df1cb5973c345674896d10ba31ea48bc63804",
    "in1k_clip_vit_l14_4.pt": "067a45f4a140a93371876510a2fd9198a89ac1d194ae4063a51b45a6da69cadf",
    "small_centroids_l14.pt": "23c66a05e49ad77283c1e2b33355c7eb088ac332a944c97ff85d5dfd48a5b251",
    "medium_centroids_l14.pt": "028b1721b1d0f139c565b6b0ac99f8a1756f4bae89c36b0ec6d1c6ea9b6f112d",
    "large_centroids_l14.pt": "04eeab1069d3540c246cf7ce69323147351a474017fc472e4c50a018ca32240b",
    "xlarge_centroids_l14.pt": "3f62e5f8ae3a715ce84e422846fcfce1536d184455ea234790c4a6465c4c6726",
}
DEFAULT_FILES = ("imagenet21k_wordnet_ids.txt",) + tuple(f"in1k_clip_vit_l14_{i}.pt"
                                                         for i in range(5))
SCALES = ("small", "medium", "large", "xlarge")


@dataclass
class AssetStatus:
    name: str
    path: Path
    status: str  # present | downloaded | failed | missing | mismatch
    detail: str = ""


def download_filter_assets(folder: str | Path, centroids: tuple[str, ...] = (),
                           base_url: str = RELEASE, verify_only: bool = False,
                           timeout: float = 60.0,
                           on_file: Callable[[AssetStatus], None] | None = None
                           ) -> list[AssetStatus]:
    root = Path(folder).expanduser()
    for scale in centroids:
        if scale not in SCALES:
            raise ValueError(f"--centroids {scale!r}: choose among {', '.join(SCALES)}")
    names = list(DEFAULT_FILES) + [f"{s}_centroids_l14.pt" for s in centroids]
    out = []
    for name in names:
        path = root / name
        st = _one(name, path, base_url, verify_only, timeout)
        out.append(st)
        if on_file:
            on_file(st)
    return out


def _one(name: str, path: Path, base_url: str, verify_only: bool, timeout: float) -> AssetStatus:
    want = ASSETS[name]
    if path.is_file():
        if sha256_file(path) == want:
            return AssetStatus(name, path, "present")
        if verify_only:
            return AssetStatus(name, path, "mismatch", "sha256 differs from DataComp's")
    elif verify_only:
        return AssetStatus(name, path, "missing")
    url = f"{base_url.rstrip('/')}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, atomic_open(path) as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    except OSError as e:
        return AssetStatus(name, path, "failed", f"{url}: {e}")
    if sha256_file(path) != want:
        path.unlink()
        return AssetStatus(name, path, "failed", f"{url}: sha256 differs from DataComp's")
    return AssetStatus(name, path, "downloaded")
