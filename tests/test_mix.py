"""mix: upsampling factors and the proportions OpenCLIP's real loader draws with them."""

from __future__ import annotations

import json
import math
from argparse import Namespace

import pytest
import torch

from datacomp_sci.resharding.mix import (
    expected_shares,
    load_data_spec,
    mix_sources,
    parse_proportions,
)
from datacomp_sci.resharding.shardsets import resolve_shards

SIZES = {"a": [5, 30, 12], "b": [40, 4], "c": [9]}  # unequal shard sizes per source


@pytest.fixture
def sources(shard_factory):
    paths = {}
    for sid, (name, sizes) in enumerate(SIZES.items()):
        folder, _ = shard_factory(
            f"{name}/shards", len(sizes), sizes,
            uid_fn=lambda s, i, sid=sid: f"{sid:016x}{s * 1000 + i:016x}",
            caption_fn=lambda s, i, sid=sid: f"source {sid}",
        )
        paths[name] = str(folder.parent)
    return paths


def test_factors_reproduce_target_shares_exactly(sources, tmp_path):
    spec = mix_sources(list(sources.values()), "a=0.5,b=0.3,c=0.2", samples_seen=1000,
                       output=tmp_path / "mix.json")
    assert spec.total_samples == 100
    assert [s.name for s in spec.sources] == ["a", "b", "c"]
    assert [s.factor for s in spec.sources] == pytest.approx([0.5 * 100 / 47, 0.3 * 100 / 44, 0.2 * 100 / 9], rel=1e-9)
    assert [s.proportion for s in spec.sources] == pytest.approx([0.5, 0.3, 0.2], abs=1e-9)
    assert [s.epochs for s in spec.sources] == pytest.approx([500 / 47, 300 / 44, 200 / 9], rel=1e-6)
    assert spec.upsampling_factors == "1.063829787::0.6818181818::2.222222222"
    root = {k: resolve_shards(v).root for k, v in sources.items()}
    assert spec.train_data == (f"{root['a']}/{{00000000..00000002}}.tar::"
                               f"{root['b']}/{{00000000..00000001}}.tar::{root['c']}/00000000.tar")
    data = json.loads((tmp_path / "mix.json").read_text())
    assert data["format"] == "datacomp-sci/data-spec/1"
    assert {"train_data", "upsampling_factors", "total_samples", "sources"} <= set(data)
    assert set(data["sources"][0]) >= {"name", "path", "pattern", "n_shards", "n_samples", "factor", "proportion"}
    assert load_data_spec(tmp_path / "mix.json") == spec


def test_natural_mix_has_no_factors_and_sample_shares(sources):
    spec = mix_sources(list(sources.values()), "natural")
    assert spec.upsampling_factors is None
    assert [s.proportion for s in spec.sources] == pytest.approx([0.47, 0.44, 0.09])
    assert [s.factor for s in spec.sources] == [1.0, 1.0, 1.0]
    sets = [resolve_shards(p) for p in sources.values()]
    assert expected_shares(sets, [1.0, 1.0, 1.0]) == pytest.approx([0.47, 0.44, 0.09])


def test_bad_proportions_say_what_to_write():
    with pytest.raises(ValueError, match="sum to 0.9"):
        parse_proportions("a=0.5,b=0.4", ["a", "b"])
    with pytest.raises(ValueError, match="sources are"):
        parse_proportions("a=0.5,x=0.5", ["a", "b"])
    with pytest.raises(ValueError, match="NAME=SHARE"):
        parse_proportions("a=half,b=0.5", ["a", "b"])
    assert parse_proportions("a=0.25, b=0.75", ["a", "b"]) == {"a": 0.25, "b": 0.75}


def _draw_with_openclip(spec, n_samples: int) -> list[int]:
    """Samples per source drawn by OpenCLIP's own resampled webdataset loader."""
    from open_clip_train.data import get_wds_dataset

    args = Namespace(
        train_data=spec.train_data, train_data_upsampling_factors=spec.upsampling_factors,
        dataset_resampled=True, train_num_samples=n_samples, batch_size=250, workers=0,
        world_size=1, seed=0, val_data=None,
    )
    torch.manual_seed(0)
    info = get_wds_dataset(args, lambda img: torch.zeros(1), is_train=True, epoch=0,
                           tokenizer=lambda text: torch.tensor([[int(text.split()[-1])]]))
    counts = [0, 0, 0]
    for _, texts in info.dataloader:
        for sid in texts.view(-1).tolist():
            counts[sid] += 1
    return counts


def _ratio_sigma(sizes_by_source: list[list[int]], weights: list[float], target: int, n_draws: float) -> float:
    """Std of a source's sample share over n_draws weighted shard draws (delta method)."""
    shards = [(w, sz, sid) for sid, (w, sizes) in enumerate(zip(weights, sizes_by_source, strict=True)) for sz in sizes]
    z = sum(w for w, _, _ in shards)
    mean_t = sum(w * sz for w, sz, _ in shards) / z
    p = sum(w * sz for w, sz, sid in shards if sid == target) / z / mean_t
    var = sum(w * ((sz if sid == target else 0) - p * sz) ** 2 for w, sz, sid in shards) / z
    return math.sqrt(var / n_draws) / mean_t


def test_openclip_loader_draws_the_requested_shares(sources):
    spec = mix_sources(list(sources.values()), "a=0.2,b=0.2,c=0.6")
    n = 7000
    counts = _draw_with_openclip(spec, n)
    assert sum(counts) == n
    sizes = list(SIZES.values())
    weights = [s.factor for s in spec.sources]
    mean_size = sum(w * sum(sz) for w, sz in zip(weights, sizes, strict=True)) / sum(w * len(sz) for w, sz in zip(weights, sizes, strict=True))
    for sid, target in enumerate([0.2, 0.2, 0.6]):
        sigma = _ratio_sigma(sizes, weights, sid, n / mean_size)
        assert abs(counts[sid] / n - target) < 4 * sigma, (sid, counts, sigma)
    # the natural mix would give c only 9 %: the factors moved it to 60 %
    assert counts[2] / n > 0.5
