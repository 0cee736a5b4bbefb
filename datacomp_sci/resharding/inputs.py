"""Input resolution for resharding: pool folders, shard folders, reshard outputs
(``meta.json``), single tars, globs, brace patterns and fsspec URLs, in order and
de-duplicated; a shard counts only once its ``_stats.json`` exists, as in img2dataset's
layout (docs/formats.md, "Shard layout")."""

from __future__ import annotations

import json
from dataclasses import dataclass

OUTPUT_SHARD_FORMAT = "{:08d}.tar"


@dataclass(frozen=True)
class InputShard:
    index: int  # position in the run's input order
    url: str  # local path or fsspec URL of the tar


@dataclass
class ResolvedInputs:
    specs: list[str]
    shards: list[InputShard]
    skipped: list[str]  # "url (reason)"


def _is_pattern(spec: str) -> bool:
    return any(c in spec for c in "*?[")


def _meta_shards(fs, folder: str) -> list[str] | None:
    meta = f"{folder}/meta.json"
    if not fs.exists(meta):
        return None
    with fs.open(meta, "rb") as f:
        info = json.load(f)
    fmt = info.get("output_shard_format", OUTPUT_SHARD_FORMAT)
    return [f"{folder}/{fmt.format(i)}" for i in range(int(info["output_shard_count"]))]


def _expand_spec(spec: str) -> tuple[object, list[str], bool]:
    """(filesystem, tar paths, explicit) for one input argument."""
    import braceexpand
    import fsspec

    fs, _ = fsspec.core.url_to_fs(spec)
    if "{" in spec:
        items = list(braceexpand.braceexpand(spec))
        return fs, [fsspec.core.url_to_fs(i)[1] for i in items], False
    path = fsspec.core.url_to_fs(spec)[1]
    if _is_pattern(spec):
        return fs, sorted(p for p in fs.glob(path) if p.endswith(".tar")), False
    if fs.isdir(path):
        listed = _meta_shards(fs, path.rstrip("/"))
        if listed is not None:
            return fs, listed, False
        if fs.isdir(f"{path.rstrip('/')}/shards"):
            path = f"{path.rstrip('/')}/shards"
        return fs, sorted(p for p in fs.glob(f"{path.rstrip('/')}/*.tar")), False
    if fs.exists(path):
        return fs, [path], True
    raise FileNotFoundError(f"{spec}: no such input (give a pool, a folder of shards, a tar, "
                            "a glob or a brace pattern)")


def resolve_inputs(specs: list[str]) -> ResolvedInputs:
    """Input arguments -> ordered, de-duplicated shard list (tars need ``_stats.json``)."""
    if not specs:
        raise ValueError("give at least one input (--input)")
    shards: list[InputShard] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        fs, tars, explicit = _expand_spec(spec)
        if not tars:
            raise FileNotFoundError(f"{spec}: no shards ({{N:08d}}.tar) found")
        stats_by_dir: dict[str, set[str]] = {}
        for tar in tars:
            url = tar if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(tar)
            if url in seen:
                skipped.append(f"{url} (given twice)")
                continue
            folder = tar.rsplit("/", 1)[0]
            if folder not in stats_by_dir:
                stats_by_dir[folder] = set(fs.glob(f"{folder}/*_stats.json"))
            if not explicit and f"{tar[:-4]}_stats.json" not in stats_by_dir[folder]:
                skipped.append(f"{url} (no _stats.json)")
                continue
            seen.add(url)
            shards.append(InputShard(len(shards), url))
    if not shards:
        raise FileNotFoundError(f"no finished input shards in {specs} ({len(skipped)} skipped)")
    return ResolvedInputs(list(specs), shards, skipped)


def is_local(url: str) -> bool:
    import fsspec.utils

    return fsspec.utils.get_protocol(url) in ("file", "local")
