"""Commands of the subsets stage: filter, dedup."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import main, run_library
from datacomp_sci.cli.options import (
    _MEMORY_OPT,
    _POOLS_ARG,
    _THREADS_OPT,
    deprecated_alias,
    evalsets_option,
    output_option,
    progress_option,
    workers_option,
)
from datacomp_sci.core.bars import subset_hooks as _tqdm_hooks


@main.command("filter")
@_POOLS_ARG
@output_option("Subset file to write (.npy, DataComp's sorted u8,u8 uids); OUTPUT.json "
               "beside it describes how it was made.", dir_okay=False)
@click.option("--sql", default=None, help="SQL returning a uid column (views: each pool, `pools`).")
@click.option("--sql-file", default=None, metavar="NAME|PATH",
              help="Named SQL filter filters/NAME.sql (e.g. arxiv_only, caption_length, "
                   "license) or a path.")
@click.option("--name", default=None,
              type=click.Choice(["no_filter", "basic_filter", "clip_score", "laion2b",
                                 "image_based", "image_based_intersect_clip_score",
                                 "text_based", "dedup", "decontaminate"]),
              help="A DataComp baseline (image_based*: needs `embed` and --imagenet-features; "
                   "text_based: --imagenet-features and --wordnet); dedup (exact sha256 + "
                   "perceptual-hash duplicates); or decontaminate (drop copies of evaluation "
                   "images: needs --evalsets).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Filter parameter, read in SQL as getvariable('NAME') (repeatable).")
@click.option("--arch", type=click.Choice(["b32", "l14"]), default="l14", show_default=True,
              help="clip_score, image_based_intersect_clip_score: which CLIP score column.")
@click.option("--fraction", type=float, default=None,
              help="clip_score: keep this top share of the scored rows (ties broken by uid).")
@click.option("--threshold", type=float, default=None,
              help="clip_score: keep scores >= this; laion2b: b32 threshold (default 0.28).")
@click.option("--radius", type=int, default=4, show_default=True,
              help="dedup, decontaminate: near-duplicate Hamming radius on the 64-bit phash "
                   "(0: exact phash).")
@evalsets_option("decontaminate: the evaluation sets, as `download-evalsets -o DIR` writes "
                 "them.")
@click.option("--suite", default="datacomp38", show_default=True, metavar="NAME|PATH",
              help="decontaminate: the suite whose tasks' test images count "
                   "(eval_suites/NAME.yaml).")
@click.option("--method", type=click.Choice(["phash", "isc"]), default="phash",
              show_default=True,
              help="decontaminate: phash (perceptual hash, no weights) or isc (the paper's "
                   "copy-detection descriptor, isc_ft_v107).")
@click.option("--isc-weights", default=None, type=click.Path(dir_okay=False), metavar="PATH",
              help="decontaminate --method isc: checkpoint file isc_ft_v107.pth.tar "
                   "[default: torch hub's folder, downloaded there when missing].")
@click.option("--isc-threshold", type=float, default=0.604169, show_default=True,
              help="decontaminate --method isc: remove samples whose best match scores >= this.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
              show_default=True, help="Where models run (decontaminate --method isc).")
@click.option("--batch-size", type=int, default=64, show_default=True,
              help="Images per forward pass (decontaminate --method isc).")
@click.option("--imagenet-features", default=None, type=click.Path(file_okay=False),
              metavar="DIR",
              help="image_based*, text_based: DataComp's filter assets (in1k_clip_vit_l14_*.pt, "
                   "imagenet21k_wordnet_ids.txt), as `download-filter-assets DIR` writes them.")
@click.option("--centroids", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="image_based*: use these centroids (DataComp's *_centroids_l14.pt or .npy) "
                   "instead of k-means over the pools.")
@click.option("--clusters", type=int, default=100_000, show_default=True,
              help="image_based*: k-means clusters of the pools' l14_img (capped at the rows).")
@click.option("--wordnet", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="text_based: an NLTK data folder holding corpora/wordnet "
                   "(python -m nltk.downloader -d DIR wordnet).")
@click.option("--and", "and_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Keep only samples also in this subset .npy (repeatable).")
@click.option("--not", "not_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Drop samples in this subset .npy (repeatable).")
@workers_option("Processes for language id / phash computation (default: all cores).")
@_THREADS_OPT
@_MEMORY_OPT
@progress_option()
def filter_cmd(pools, output, sql, sql_file, name, params, arch, fraction, threshold, radius,
               evalsets, suite, method, isc_weights, isc_threshold, device, batch_size,
               imagenet_features, centroids, clusters, wordnet, and_files, not_files, workers, threads, memory_limit, progress):
    """Select samples of POOL... and write a DataComp subset file.

    Examples:

      datacomp-sci filter commonpool --name basic_filter -o basic.npy

      datacomp-sci filter pools/arxiv --sql-file caption_length --param min_chars=20 -o long.npy

      datacomp-sci filter commonpool --name clip_score --arch l14 --fraction 0.3
      --not dups.npy -o clip30.npy

      datacomp-sci filter pools/arxiv --name decontaminate --evalsets evalsets -o clean.npy
    """
    import os

    from datacomp_sci.pool.query import parse_params
    from datacomp_sci.subsets.filters import FilterSpec, RunOptions, run_filter

    spec = FilterSpec(sql=sql, sql_file=sql_file, name=name,
                      params=run_library(parse_params, params), arch=arch, fraction=fraction,
                      threshold=threshold, radius=radius, evalsets=evalsets, suite=suite,
                      method=method, isc_weights=isc_weights, isc_threshold=isc_threshold,
                      imagenet_features=imagenet_features, centroids=centroids,
                      clusters=clusters, wordnet=wordnet,
                      and_files=list(and_files), not_files=list(not_files))
    hooks, bars = _tqdm_hooks(progress)
    opts = RunOptions(threads=threads, memory_limit=memory_limit,
                      workers=workers or os.cpu_count() or 1, device=device,
                      batch_size=batch_size, **hooks)
    try:
        res = run_library(run_filter, list(pools), output, spec, opts)
    finally:
        for b in bars.values():
            b.close()
    d = res.description
    click.echo(f"filter      {d['filter']} {d['parameters'] or ''}".rstrip())
    click.echo("pools       " + ", ".join(f"{p['name']} ({p['path']})" for p in d["pools"]))
    for k, v in d["stats"].items():
        if isinstance(v, dict | list) and len(v) > 4:
            v = f"{len(v)} entries (in {res.sidecar.name})"
        click.echo(f"  {k:<24} {v}")
    if d["and"] or d["not"]:
        click.echo(f"selected    {d['selected']:,}; after --and/--not {res.count:,}")
    click.echo(f"wrote       {res.count:,} uids to {res.output} (sha256 {res.npy_sha256[:12]})")
    click.echo(f"described   {res.sidecar}")
    if "matches" in d:
        last = "similarity" if d["parameters"].get("method") == "isc" else "distance"
        click.echo(f"matches     {res.sidecar.parent / d['matches']} (uid, task, eval_shard, "
                   f"eval_member, {last})")


@main.command("dedup")
@_POOLS_ARG
@click.option("--radius", type=int, default=4, show_default=True,
              help="Near-duplicate Hamming radius on the 64-bit phash (0: identical phash only).")
@output_option("Write the duplicate groups as parquet (group = kept uid, uid, kept).",
               required=False, dir_okay=False)
@deprecated_alias("--groups", "output", "-o/--output", type=click.Path(dir_okay=False))
@workers_option("Processes hashing shards (default: all cores).")
@_THREADS_OPT
@_MEMORY_OPT
@progress_option()
def dedup_cmd(pools, radius, output, workers, threads, memory_limit, progress):
    """Hash the images of POOL... (phash, cached in sidecars/*.phash.parquet) and report
    exact (sha256) and near (phash) duplicate groups within and across the pools.

    To write the deduplicated subset: `datacomp-sci filter POOL... --name dedup -o FILE.npy`.
    """
    import os

    from datacomp_sci.subsets.duplicates import dedup_report
    from datacomp_sci.subsets.options import RunOptions

    hooks, bars = _tqdm_hooks(progress)
    opts = RunOptions(threads=threads, memory_limit=memory_limit,
                      workers=workers or os.cpu_count() or 1, **hooks)
    try:
        rep = run_library(dedup_report, list(pools), radius=radius, opts=opts, groups_output=output)
    finally:
        for b in bars.values():
            b.close()
    ph = rep.phash
    click.echo(f"phash       hashed {ph.images:,} images in {ph.shards} shards "
               f"({ph.errors} undecodable, {ph.missing} without image/uid); "
               f"cached: {', '.join(ph.pools_reused) or '-'}; "
               f"no shards: {', '.join(ph.pools_without_shards) or '-'}")
    for k, v in rep.stats.items():
        click.echo(f"  {k:<24} {v:,}")
    if rep.groups_output:
        click.echo(f"groups      {rep.groups_output}")
