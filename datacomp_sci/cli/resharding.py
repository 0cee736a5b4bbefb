"""Commands of the resharding stage: reshard, prune-index-cache, mix."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import echo_cache_written, main, resuming, run_library
from datacomp_sci.cli.options import (
    engine_from_options,
    engine_options,
    output_option,
    progress_option,
    storage_options_option,
    workers_option,
)
from datacomp_sci.core import tarscan


@main.command("reshard")
@click.option("--input", "-i", "inputs", multiple=True, required=True, metavar="SHARDS",
              help="Pool folder, folder of shards, reshard output, tar, glob or brace pattern; "
                   "local or an fsspec URL. Repeat to combine several pools.")
@click.option("--subset", required=True, type=click.Path(dir_okay=False),
              help="DataComp subset file (.npy of u8,u8 uids; a uid listed k times is written k times).")
@output_option("Output folder ({N:08d}.tar, _stats.json, meta.json, sample_ids.npy, "
               "missing_uids.npy): local or shared, or an object-storage URL (s3://bucket/x, "
               "gs://...).", file_okay=False)
@click.option("--shard-size", type=int, default=10000, show_default=True,
              help="Samples per output shard.")
@workers_option("Processes reading input shards and writing output shards (--engine ray: "
                "tasks in flight). Default: all cores (the cluster's CPUs). Output bytes do "
                "not depend on it.")
@click.option("--overwrite", is_flag=True, help="Delete OUTPUT first.")
@click.option("--keep-work", is_flag=True, help="Keep OUTPUT/_work (per-input-shard results).")
@click.option("--index-cache", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder of reusable per-input-shard header indexes, so the next reshard of the "
                   "same local pool skips walking the tars (default: $XDG_CACHE_HOME/datacomp-sci/"
                   "tar-index, else ~/.cache/datacomp-sci/tar-index).")
@click.option("--no-index-cache", is_flag=True,
              help="Neither read nor write header indexes (always walk the tars).")
@click.option("--tar-reader", type=click.Choice(tarscan.READERS), default=None,
              help="Who lists the members of local tars: libarchive (about 7x faster; used only "
                   "for tars it reads exactly as tarfile does, others go to tarfile), or Python's "
                   "tarfile. auto: libarchive if its shared library is installed. Output bytes do "
                   "not depend on it. [default: $DATACOMP_SCI_TAR_READER, else auto]")
@click.option("--text-from", default=None, metavar="kg_captions|PATH",
              help="Replace the .txt of some samples by KG-derived texts: kg_captions reads "
                   "SUBSET.kg_captions.parquet (`curate entities --kg-captions`), or give its path. "
                   "Such shards are bring-your-own-data (submit --track filtering refuses them).")
@click.option("--text-mix", type=float, default=0.5, show_default=True,
              help="With --text-from: share of the uids with KG texts whose caption is replaced "
                   "(EntityNet: 0.5).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="With --text-from: seed of the per-uid text draws.")
@progress_option("Show a progress bar.")
@engine_options()
@storage_options_option()
def reshard_cmd(inputs, subset, output, shard_size, workers, overwrite, keep_work, index_cache,
                no_index_cache, tar_reader, text_from, text_mix, seed, progress, engine,
                ray_address, task_retries, storage_options):
    """Keep the samples whose uid is in SUBSET and write them as new shards, with DataComp's
    resharder semantics (keys {uid}-{j}, members copied unchanged, meta.json). Deterministic
    for any --workers; rerun the same command to resume after an interruption.
    """
    import os

    from datacomp_sci.core.bars import ReshardBar
    from datacomp_sci.core.storage import parse_storage_options
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    engine_opts = run_library(engine_from_options, engine, ray_address, task_retries, workers)
    opts = ReshardOptions(shard_size=shard_size, workers=workers or os.cpu_count() or 1,
                          overwrite=overwrite, keep_work=keep_work, index_cache=index_cache,
                          use_index_cache=not no_index_cache, tar_reader=tar_reader,
                          engine=engine_opts, text_from=text_from, text_mix=text_mix,
                          seed=seed,
                          storage_options=run_library(parse_storage_options, storage_options))
    bar = ReshardBar(progress)
    try:
        res = run_library(reshard, list(inputs), subset, output, opts, progress=bar,
                          on_resume=resuming("input shards"))
    finally:
        bar.close()
    m, r = res.meta, res.report
    if res.already_complete:
        click.echo(f"{res.output}: already complete (same inputs, subset and shard size).")
    click.echo(f"output      {res.output}")
    click.echo(f"read        {m['processed_count']:,} samples in {m['input_shard_count']} input shards")
    click.echo(f"written     {m['output_count']:,} samples in {m['output_shard_count']} shards "
               f"({r['kept']:,} distinct input samples)")
    click.echo(f"subset      {r['subset_size']:,} uids; {r['missing_uids']:,} not found "
               "(missing_uids.npy)")
    if ic := res.index_cache:
        click.echo(f"index cache {ic['reused']} input shards reused, {ic['built']} indexed and "
                   f"saved, {ic['not saved']} not saved ({ic['dir']})" if ic["dir"] else
                   "index cache off")
        if ic["dir"] and ic["built"]:
            echo_cache_written(f"{ic['built']} tar header indexes", ic["dir"],
                               "`datacomp-sci prune-index-cache` (drops indexes of tars that "
                               "are gone or changed), or delete the folder")
    if tr := res.tar_reader:
        click.echo(f"tar reader  {tr['reader']}; listed {tr['libarchive']} input shards with "
                   f"libarchive, {tr['tarfile']} with tarfile")
    if cc := m.get("captions_changed"):
        click.echo(f"captions    {cc['samples_replaced']:,} samples got a KG text "
                   f"(mix {cc['mix']:g}, seed {cc['seed']}; {cc['uids_with_candidates']:,} uids "
                   "had candidates): bring-your-own-data shards")
    for w in res.warnings:
        click.echo(f"WARNING     {w}", err=True)


@main.command("prune-index-cache")
@click.option("--index-cache", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="The cache folder (default: $XDG_CACHE_HOME/datacomp-sci/tar-index, else "
                   "~/.cache/datacomp-sci/tar-index).")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def prune_index_cache_cmd(index_cache, dry_run):
    """Delete reshard header indexes that will never be read again: those of tars that are
    gone or changed since, of another index format, unreadable, and temp files of killed
    runs (whose process no longer runs). Indexes of tars that are still there are kept; deleting the
    whole folder is also safe (indexes are rebuilt on demand).
    """
    from datacomp_sci.resharding.index import prune_index_cache

    res = run_library(prune_index_cache, index_cache, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    why = ", ".join(f"{n} {reason}" for reason, n in res["reasons"].items())
    click.echo(f"{res['dir']}: {verb} {res['removed']} files ({res['removed_bytes'] / 1e6:.1f} MB"
               f"{'; ' + why if why else ''}), kept {res['kept']} indexes")


@main.command("mix")
@click.argument("sources", nargs=-1, required=True, metavar="[NAME=]PATH...")
@click.option("--proportions", "-p", default="natural", show_default=True,
              help="'natural' (shares follow sample counts) or NAME=SHARE,... summing to 1, "
                   "e.g. commonpool=0.86,arxiv=0.08,pmc=0.06.")
@click.option("--samples-seen", type=int, default=12_800_000, show_default=True,
              help="Training samples seen, to report how often each source repeats "
                   "(DataComp small scale: 12.8M).")
@output_option("Data spec to write (mix.json), read by `datacomp-sci train`.", dir_okay=False)
def mix_cmd(sources, proportions, samples_seen, output):
    """Mix pools / reshard outputs into OpenCLIP's --train-data ('::'-joined shard patterns)
    and --train-data-upsampling-factors (per shard weights) so that resampled training sees
    each source at the given proportion, accounting for unequal shard sizes.

    A source is PATH (named after its folder) or NAME=PATH.
    """
    from datacomp_sci.resharding.mix import mix_sources

    spec = run_library(mix_sources, list(sources), proportions, samples_seen, output)
    click.echo(f"{'source':<14}{'samples':>14}{'shards':>9}{'factor':>12}{'share':>9}{'epochs':>10}")
    for s in spec.sources:
        click.echo(f"{s.name:<14}{s.n_samples:>14,}{s.n_shards:>9,}{s.factor:>12.6g}"
                   f"{100 * s.proportion:>8.2f}%{s.epochs:>10.2f}")
    click.echo(f"total       {spec.total_samples:,} samples; epochs at {samples_seen:,} samples seen")
    click.echo(f"wrote       {output}")
