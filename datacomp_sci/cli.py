"""The ``datacomp-sci`` command line: a thin click layer.

Each command parses its options and calls one library function. The library never
imports click; long work reports progress through tqdm and ends with a summary.
"""

from __future__ import annotations

import sys

import click

from . import __version__, tarscan


class UserError(click.ClickException):
    """An error the user can fix; printed without a traceback."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="datacomp-sci")
def main() -> None:
    """Scientific figure-caption pairs for DataComp: build pools from arXiv and PubMed
    Central packages, filter and mix them with CommonPool, train with OpenCLIP's
    small-scale recipe, evaluate on DataComp's 38 tasks and report.

    Run `datacomp-sci COMMAND --help` for the options of each command.
    """


def run_library(fn, *args, **kwargs):
    """Call a library function, turning the errors a user can fix into clean messages."""
    try:
        return fn(*args, **kwargs)
    except (FileNotFoundError, ValueError, FileExistsError, PermissionError) as e:
        raise UserError(str(e)) from e
    except KeyboardInterrupt:
        click.echo("\ninterrupted: rerun the same command to resume", err=True)
        sys.exit(130)


# ==== build-pool (issue 2) ===========================================================
@main.command("build-pool")
@click.argument("source", type=click.Choice(["arxiv", "pmc"]))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Pool folder to write (shards/, metadata/, pool.json, build_report.json).")
@click.option("--config", default=None, metavar="NAME|PATH",
              help="Pool definition: pools/NAME.yaml or a path. Default: pools/SOURCE.yaml.")
@click.option("--name", default=None, help="Pool name recorded in pool.json (default: the config's).")
@click.option("--workers", "-j", type=int, default=None,
              help="Parallel worker processes, one input archive each. Default: all cores. "
                   "The output is identical for any value.")
@click.option("--shard-size", type=int, default=None,
              help="Samples per shard (default 10000, as DataComp/img2dataset).")
@click.option("--image-size", type=int, default=None,
              help="Longest image side in pixels; larger images shrink, smaller are kept (default 512).")
@click.option("--keep-multi-panel/--skip-multi-panel", default=None,
              help="arXiv: a figure with several graphics but no sub-captions yields one pair per "
                   "panel with the shared caption (default: skipped and counted, as the paper).")
@click.option("--converter-timeout", type=float, default=None, metavar="SECONDS",
              help="Wall-clock limit for ghostscript on one EPS/PS figure (default 30); a figure "
                   "that takes longer is skipped and counted as converter_timeout.")
@click.option("--overwrite", is_flag=True, help="Delete an existing OUTPUT and build again.")
@click.option("--keep-work", is_flag=True,
              help="Keep OUTPUT/_work (per-archive intermediate results) after a successful build.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def build_pool_cmd(source, inputs, output, config, name, workers, shard_size, image_size,
                   keep_multi_panel, converter_timeout, overwrite, keep_work, progress):
    """Turn arXiv LaTeX packages or PMC Open Access packages into a DataComp pool.

    INPUT is a file, a folder or an fsspec URL (https://..., s3://... with globs): arXiv
    bulk tars (arXiv_src_YYMM_NNN.tar), per-paper .gz / .tar.gz files, unpacked LaTeX
    project folders; PMC .tar.gz packages or folders of them.

    Writes OUTPUT/shards/{N:08d}.tar|.parquet|_stats.json (img2dataset's webdataset layout),
    OUTPUT/metadata/{N:08d}.parquet (CommonPool's columns, then ours), OUTPUT/pool.json,
    OUTPUT/build_report.json and OUTPUT/skipped.jsonl (every skipped item and why).
    Interrupt it at any time: rerunning the same command resumes and gives the same bytes.
    """
    from .build import build_pool, options_from_config
    from .progress import BuildProgress, print_build_summary

    opts = run_library(options_from_config, source, config, name=name, shard_size=shard_size,
                       image_size=image_size, keep_multi_panel=keep_multi_panel,
                       converter_timeout_s=converter_timeout)
    bar = BuildProgress(enabled=progress)
    try:
        result = run_library(build_pool, list(inputs), output, opts, workers=workers,
                             overwrite=overwrite, keep_work=keep_work, progress=bar.update,
                             on_units=bar.start)
    finally:
        bar.close()
    print_build_summary(result)
# ==== end build-pool =================================================================

# ==== query / filter / dedup / download-pool / reshard / mix (issue 3) ================
# ---- part A: query / filter / dedup ----
def _tqdm_hooks(enabled: bool):
    """RunOptions callbacks that drive tqdm bars (created lazily, closed by the caller)."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def bar(name: str, unit: str) -> tqdm:
        if name not in bars:
            bars[name] = tqdm(desc=name, unit=unit, dynamic_ncols=True, disable=not enabled,
                              unit_scale=True)
        return bars[name]

    hooks = {
        "on_lang_file": lambda path, rows: bar("language id", "row").update(rows),
        "on_shard": lambda res: bar("phash", "img").update(len(res.uids)),
        "on_eval_tar": lambda res: bar("eval phash", "img").update(len(res.phashes)),
        "on_rows": lambda n: bar("uids", "row").update(n),
    }
    return hooks, bars


_POOLS_ARG = click.argument("pools", nargs=-1, required=True, metavar="POOL...",
                            type=click.Path(exists=True, file_okay=False))
_THREADS_OPT = click.option("--threads", type=int, default=None,
                            help="DuckDB threads (default: all cores).")
_MEMORY_OPT = click.option("--memory-limit", default=None, metavar="SIZE",
                           help="DuckDB memory limit, e.g. 4GB (default: 80% of RAM); larger "
                                "work spills to disk.")


@main.command("query")
@_POOLS_ARG
@click.option("--sql", default=None, help="SQL over the views: one per pool (named after it) "
              "and `pools` (their union by column name, with a `pool` column).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]),
              default="table", show_default=True,
              help="table prints to the terminal; csv, json (one object per line) and parquet "
                   "write --output.")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="File for --format csv|json|parquet (written atomically).")
@click.option("--db", default=None, type=click.Path(dir_okay=False),
              help="Also save the views in a DuckDB database FILE.duckdb (absolute paths) to "
                   "open with the duckdb CLI or duckdb.connect().")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Bind a variable read in SQL as getvariable('NAME') (repeatable).")
@click.option("--max-rows", type=int, default=50, show_default=True,
              help="Rows printed by --format table.")
@_THREADS_OPT
@_MEMORY_OPT
def query_cmd(pools, sql, fmt, output, db, params, max_rows, threads, memory_limit):
    """Run DuckDB SQL over the metadata parquet of one or more pools.

    POOL is a pool folder (pool.json + metadata/*.parquet), a CommonPool download
    (metadata/*.parquet) or a folder of parquet files. Example:

      datacomp-sci query pools/arxiv pools/pmc --sql "SELECT pool, count(*),
      avg(length(text)) FROM pools GROUP BY pool"
    """
    from .query import format_table, parse_params, run_query

    res = run_library(run_query, list(pools), sql, fmt=fmt, output=output, db=db,
                      threads=threads, memory_limit=memory_limit, max_rows=max_rows,
                      params=run_library(parse_params, params))
    if res.catalog is not None:
        views = ", ".join([p.name for p in res.pools] + ["pools"])
        click.echo(f"catalog {res.catalog} (views: {views})", err=True)
    if not sql:
        return
    if fmt == "table":
        click.echo(format_table(res.columns, res.rows))
        more = f" (first {max_rows}; raise --max-rows)" if res.truncated else ""
        click.echo(f"{res.row_count} rows{more}", err=True)
    else:
        click.echo(f"wrote {res.row_count} rows to {res.output} ({fmt})", err=True)


@main.command("filter")
@_POOLS_ARG
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Subset file to write (.npy, DataComp's sorted u8,u8 uids); OUTPUT.json "
                   "beside it describes how it was made.")
@click.option("--sql", default=None, help="SQL returning a uid column (views: each pool, `pools`).")
@click.option("--sql-file", default=None, metavar="NAME|PATH",
              help="Named SQL filter filters/NAME.sql (e.g. arxiv_only, caption_length, "
                   "license) or a path.")
@click.option("--name", default=None,
              type=click.Choice(["no_filter", "basic_filter", "clip_score", "laion2b", "dedup",
                                 "decontaminate"]),
              help="A DataComp baseline; dedup (exact sha256 + perceptual-hash duplicates); or "
                   "decontaminate (drop copies of evaluation images: needs --evalsets).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Filter parameter, read in SQL as getvariable('NAME') (repeatable).")
@click.option("--arch", type=click.Choice(["b32", "l14"]), default="l14", show_default=True,
              help="clip_score: which CLIP score column.")
@click.option("--fraction", type=float, default=None,
              help="clip_score: keep this top share of the scored rows (ties broken by uid).")
@click.option("--threshold", type=float, default=None,
              help="clip_score: keep scores >= this; laion2b: b32 threshold (default 0.28).")
@click.option("--radius", type=int, default=4, show_default=True,
              help="dedup, decontaminate: near-duplicate Hamming radius on the 64-bit phash "
                   "(0: exact phash).")
@click.option("--evalsets", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="decontaminate: the evaluation sets, as `download-evalsets DIR` writes them.")
@click.option("--suite", default="datacomp38", show_default=True, metavar="NAME|PATH",
              help="decontaminate: the suite whose tasks' test images count "
                   "(eval_suites/NAME.yaml).")
@click.option("--and", "and_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Keep only samples also in this subset .npy (repeatable).")
@click.option("--not", "not_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Drop samples in this subset .npy (repeatable).")
@click.option("--workers", "-j", type=int, default=None,
              help="Processes for language id / phash computation (default: all cores).")
@_THREADS_OPT
@_MEMORY_OPT
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def filter_cmd(pools, output, sql, sql_file, name, params, arch, fraction, threshold, radius,
               evalsets, suite, and_files, not_files, workers, threads, memory_limit, progress):
    """Select samples of POOL... and write a DataComp subset file.

    Examples:

      datacomp-sci filter commonpool --name basic_filter -o basic.npy

      datacomp-sci filter pools/arxiv --sql-file caption_length --param min_chars=20 -o long.npy

      datacomp-sci filter commonpool --name clip_score --arch l14 --fraction 0.3
      --not dups.npy -o clip30.npy

      datacomp-sci filter pools/arxiv --name decontaminate --evalsets evalsets -o clean.npy
    """
    import os

    from .filters import FilterSpec, RunOptions, run_filter
    from .query import parse_params

    spec = FilterSpec(sql=sql, sql_file=sql_file, name=name,
                      params=run_library(parse_params, params), arch=arch, fraction=fraction,
                      threshold=threshold, radius=radius, evalsets=evalsets, suite=suite,
                      and_files=list(and_files), not_files=list(not_files))
    hooks, bars = _tqdm_hooks(progress)
    opts = RunOptions(threads=threads, memory_limit=memory_limit,
                      workers=workers or os.cpu_count() or 1, **hooks)
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
        click.echo(f"matches     {res.sidecar.parent / d['matches']} (uid, task, eval_shard, "
                   "eval_member, distance)")


@main.command("dedup")
@_POOLS_ARG
@click.option("--radius", type=int, default=4, show_default=True,
              help="Near-duplicate Hamming radius on the 64-bit phash (0: identical phash only).")
@click.option("--groups", default=None, type=click.Path(dir_okay=False),
              help="Write the duplicate groups as parquet (group = kept uid, uid, kept).")
@click.option("--workers", "-j", type=int, default=None,
              help="Processes hashing shards (default: all cores).")
@_THREADS_OPT
@_MEMORY_OPT
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def dedup_cmd(pools, radius, groups, workers, threads, memory_limit, progress):
    """Hash the images of POOL... (phash, cached in sidecars/*.phash.parquet) and report
    exact (sha256) and near (phash) duplicate groups within and across the pools.

    To write the deduplicated subset: `datacomp-sci filter POOL... --name dedup -o FILE.npy`.
    """
    import os

    from .filters import RunOptions, dedup_report

    hooks, bars = _tqdm_hooks(progress)
    opts = RunOptions(threads=threads, memory_limit=memory_limit,
                      workers=workers or os.cpu_count() or 1, **hooks)
    try:
        rep = run_library(dedup_report, list(pools), radius=radius, opts=opts, groups_output=groups)
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
# ---- end part A ----
# ---- part B: download-pool / reshard / mix ----
@main.command("download-pool")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Pool folder: OUTPUT/metadata/*.parquet, OUTPUT/shards/, coverage.json, "
                   "failed_uids.npy.")
@click.option("--metadata-dir", type=click.Path(file_okay=False), default=None,
              help="Local metadata parquets (columns url, text; uid and face_bboxes when present).")
@click.option("--scale", type=click.Choice(["small", "medium", "large", "xlarge", "datacomp_1b"]),
              default=None, help="Fetch DataComp's CommonPool metadata for this scale "
                                 "(Hugging Face dataset mlfoundations/datacomp_pools; network).")
@click.option("--processes", type=int, default=16, show_default=True,
              help="img2dataset processes (DataComp's default).")
@click.option("--threads", type=int, default=128, show_default=True,
              help="img2dataset download threads per process (DataComp's default).")
@click.option("--shard-size", type=int, default=10000, show_default=True,
              help="Samples per shard; keep 10000 to match DataComp.")
@click.option("--retries", type=int, default=2, show_default=True,
              help="Download retries per URL.")
@click.option("--timeout", type=int, default=10, show_default=True,
              help="Seconds per HTTP request.")
@click.option("--skip-bbox-blurring", is_flag=True,
              help="Do not blur the face boxes of the face_bboxes column (DataComp blurs them).")
@click.option("--coverage-only", is_flag=True,
              help="Download nothing: only recount coverage.json / failed_uids.npy from the shards.")
def download_pool_cmd(output, metadata_dir, scale, processes, threads, shard_size, retries, timeout,
                      skip_bbox_blurring, coverage_only):
    """Download a URL-based pool into webdataset shards with img2dataset and DataComp's
    parameters (512 px keep_ratio_largest, only if bigger, jpg, 10000/shard, 8-digit shard
    names, uid saved, faces blurred), then report coverage. img2dataset shows its own
    progress. Rerun the same command to resume: finished shards are kept.
    """
    from .download import DownloadOptions, download_pool

    opts = DownloadOptions(processes=processes, threads=threads, shard_size=shard_size,
                           retries=retries, timeout=timeout, blur_faces=not skip_bbox_blurring)
    res = run_library(download_pool, output, metadata_dir=metadata_dir, scale=scale, opts=opts,
                      skip_shards=coverage_only)
    c = res.coverage
    click.echo(f"pool        {res.output}")
    click.echo(f"rows        {c.rows:,} in metadata; {c.attempted:,} attempted in "
               f"{c.finished_shards} finished shards; {c.not_attempted:,} not yet (rerun to resume)")
    click.echo(f"downloaded  {c.downloaded:,} ({100 * c.fraction:.1f} %)")
    click.echo(f"failed      {c.failed_to_download:,} to download, {c.failed_to_resize:,} to decode/resize")
    for msg, n in list(c.errors.items())[:5]:
        click.echo(f"  {n:>9,}  {msg[:90]}")
    if c.failed_uids is not None:
        click.echo(f"failed uids {c.failed_uids:,} -> {res.output}/failed_uids.npy")
    click.echo(f"details     {res.output}/coverage.json")


@main.command("reshard")
@click.option("--input", "-i", "inputs", multiple=True, required=True, metavar="SHARDS",
              help="Pool folder, folder of shards, reshard output, tar, glob or brace pattern; "
                   "local or an fsspec URL. Repeat to combine several pools.")
@click.option("--subset", required=True, type=click.Path(dir_okay=False),
              help="DataComp subset file (.npy of u8,u8 uids; a uid listed k times is written k times).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Output folder ({N:08d}.tar, _stats.json, meta.json, sample_ids.npy, missing_uids.npy).")
@click.option("--shard-size", type=int, default=10000, show_default=True,
              help="Samples per output shard.")
@click.option("--workers", "-j", type=int, default=None,
              help="Processes reading input shards (default: all cores). Output bytes do not depend on it.")
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
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def reshard_cmd(inputs, subset, output, shard_size, workers, overwrite, keep_work, index_cache,
                no_index_cache, tar_reader, progress):
    """Keep the samples whose uid is in SUBSET and write them as new shards, with DataComp's
    resharder semantics (keys {uid}-{j}, members copied unchanged, meta.json). Deterministic
    for any --workers; rerun the same command to resume after an interruption.
    """
    import os

    from tqdm import tqdm

    from .reshard import ReshardOptions, reshard

    opts = ReshardOptions(shard_size=shard_size, workers=workers or os.cpu_count() or 1,
                          overwrite=overwrite, keep_work=keep_work, index_cache=index_cache,
                          use_index_cache=not no_index_cache, tar_reader=tar_reader)
    bar = tqdm(unit="shard", desc="reshard", disable=not progress, dynamic_ncols=True)

    def update(done: int, total: int, totals: dict) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix(read=totals.get("processed", 0), written=totals.get("written", 0), refresh=False)
        bar.refresh()

    try:
        res = run_library(reshard, list(inputs), subset, output, opts, progress=update)
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
    if tr := res.tar_reader:
        click.echo(f"tar reader  {tr['reader']}; listed {tr['libarchive']} input shards with "
                   f"libarchive, {tr['tarfile']} with tarfile")
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
    from .reshard import prune_index_cache

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
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Data spec to write (mix.json), read by `datacomp-sci train`.")
def mix_cmd(sources, proportions, samples_seen, output):
    """Mix pools / reshard outputs into OpenCLIP's --train-data ('::'-joined shard patterns)
    and --train-data-upsampling-factors (per shard weights) so that resampled training sees
    each source at the given proportion, accounting for unequal shard sizes.

    A source is PATH (named after its folder) or NAME=PATH.
    """
    from .mix import mix_sources

    spec = run_library(mix_sources, list(sources), proportions, samples_seen, output)
    click.echo(f"{'source':<14}{'samples':>14}{'shards':>9}{'factor':>12}{'share':>9}{'epochs':>10}")
    for s in spec.sources:
        click.echo(f"{s.name:<14}{s.n_samples:>14,}{s.n_shards:>9,}{s.factor:>12.6g}"
                   f"{100 * s.proportion:>8.2f}%{s.epochs:>10.2f}")
    click.echo(f"total       {spec.total_samples:,} samples; epochs at {samples_seen:,} samples seen")
    click.echo(f"wrote       {output}")
# ---- end part B ----
# ==== end issue 3 ====================================================================

# ==== train (issue 4) ================================================================
def _scale_names() -> list[str]:
    from .scales import available_scales

    return available_scales()


@main.command("train")
@click.option("--scale", required=True, type=click.Choice(_scale_names()),
              help="DataComp scale (debug, small, medium, large, xlarge: DataComp's exact "
                   "hyper-parameters) or tiny (CPU tests and demos).")
@click.option("--data", default=None, metavar="DIR[::DIR...]",
              help="Shard folders joined with '::': a reshard output (meta.json), a pool "
                   "(DIR/shards/) or a folder of {N:08d}.tar. Each source's share is "
                   "proportional to its size. Exclusive with --data-spec.")
@click.option("--data-spec", default=None, type=click.Path(dir_okay=False), metavar="MIX.JSON",
              help="Data specification written by `datacomp-sci mix` (patterns and "
                   "upsampling factors). Exclusive with --data.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for experiments: the run goes to OUTPUT/EXP/.")
@click.option("--exp-name", default=None, help="Experiment name (default: SCALE_scale).")
@click.option("--workers", type=int, default=None,
              help="Data loading workers per device (default: 4; tiny: 0).")
@click.option("--precision", default=None,
              type=click.Choice(["amp", "amp_bf16", "amp_bfloat16", "bf16", "fp16", "fp32"]),
              help="Numeric precision (default: amp as DataComp; tiny: fp32).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--num-checkpoints", type=int, default=5, show_default=True,
              help="Checkpoints (OpenCLIP epochs) over the run; samples seen stay the same.")
@click.option("--accum-freq", type=int, default=1, show_default=True,
              help="Gradient accumulation steps; the global batch stays the scale's.")
@click.option("--resume", default="latest", show_default=True, metavar="latest|CHECKPOINT",
              help="Resume from OUTPUT/EXP/checkpoints/epoch_latest.pt when present, or "
                   "from a given checkpoint.")
@click.option("--report-to", default=None, type=click.Choice(["tensorboard", "wandb"]),
              help="Also log to TensorBoard or Weights & Biases (needs the package).")
@click.option("--dry-run", is_flag=True, help="Print the plan and the OpenCLIP arguments; do not train.")
@click.option("--quiet", "-q", is_flag=True,
              help="Show only OpenCLIP's warnings and errors on the console (OUTPUT/EXP/out.log "
                   "keeps every line).")
def train_cmd(scale, data, data_spec, output, exp_name, workers, precision, seed,
              num_checkpoints, accum_freq, resume, report_to, dry_run, quiet):
    """Train CLIP with OpenCLIP's trainer on DataComp's recipe for SCALE.

    Calls open_clip_train.main.main() with DataComp's argument list: samples seen, global
    batch, learning rate, warmup, model and beta2 are fixed per scale; as in DataComp only
    --precision and --workers may change them for the standard scales. The global batch is
    split over the world size (torchrun, SLURM) and --accum-freq.

    Prints the plan, trains (resuming if OUTPUT/EXP has checkpoints), then writes
    OUTPUT/EXP/info.json (model, final checkpoint, scale, data, versions) for `evaluate`.
    A completed run is not trained again.
    """
    from .scales import get_scale
    from .train import TrainingError, TrainOptions, format_plan, make_plan, train

    opts = TrainOptions(output=output, exp_name=exp_name, workers=workers, precision=precision,
                        seed=seed, num_checkpoints=num_checkpoints, accum_freq=accum_freq,
                        resume=resume, report_to=report_to)
    plan = run_library(make_plan, get_scale(scale), opts, data=data, data_spec=data_spec)
    if dry_run:
        if plan.rank == 0:
            click.echo(format_plan(plan))
            click.echo("openclip argv: " + " ".join(plan.argv()))
        return
    try:
        result = run_library(train, plan, echo=click.echo, quiet=quiet)
    except TrainingError as e:
        raise UserError(str(e)) from e
    if result is not None:
        if result.status != "trained":
            click.echo(f"{result.exp_dir}: {result.status}; nothing to do (a new --exp-name trains again)")
        info = result.info
        click.echo(f"model       {info['model']} ({info['scale']} scale, "
                   f"{info['samples_seen']:,} samples seen)\n"
                   f"checkpoint  {result.checkpoint} (sha256 {info['checkpoint_sha256'][:12]})\n"
                   f"info        {result.info_path}")
# ==== end train ======================================================================

# ==== evaluate / download-evalsets / report / experiment / submission (issue 5) ======
@main.command()
@click.option("--train-output", type=click.Path(file_okay=False), help="Output folder of `train` (reads its info.json: model, checkpoint).")
@click.option("--model", "model_arch", help="OpenCLIP architecture (with --checkpoint), e.g. ViT-B-32.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint file (with --model).")
@click.option("--suite", default="datacomp38", show_default=True, help="Suite name in eval_suites/ or a path to a suite YAML.")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="Folder holding the evaluation sets (see download-evalsets).")
@click.option("--output", type=click.Path(file_okay=False), help="Where eval_results.jsonl / eval_meta.json go [default: --train-output].")
@click.option("--batch-size", default=64, show_default=True, help="Images per forward pass.")
@click.option("--workers", default=4, show_default=True, help="DataLoader workers (capped by shard count).")
@click.option("--device", default=None, help="torch device: cpu, cuda, cuda:1 [default: cuda if available].")
def evaluate(train_output, model_arch, checkpoint, suite, data_dir, output, batch_size, workers, device):
    """Zero-shot evaluation of a CLIP checkpoint on an evaluation suite (resumable)."""
    from . import evaluate as ev

    if bool(train_output) == bool(model_arch and checkpoint) or bool(model_arch) != bool(checkpoint):
        raise UserError("give either --train-output DIR, or both --model ARCH and --checkpoint FILE")
    opts = dict(batch_size=batch_size, workers=workers, device=device)
    if train_output:
        summary = run_library(ev.evaluate_train_output, train_output, suite, data_dir, output, **opts)
    else:
        if not output:
            raise UserError("--output is required with --model/--checkpoint")
        summary = run_library(ev.evaluate_model, model_arch, checkpoint, suite, data_dir, output, **opts)
    click.echo(summary.table())
    click.echo(f"{len(summary.evaluated)} evaluated, {len(summary.skipped)} already done; results in {summary.output / ev.RESULTS_FILE}")
    for p in summary.missing + summary.failed:
        click.echo(f"  {p.key}: {p.reason}", err=True)
    if not summary.complete:
        sys.exit(3)


@main.command("download-evalsets")
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--suite", default="datacomp38", show_default=True, help="Suite name in eval_suites/ or a path to a suite YAML.")
@click.option("--base-url", default=None, help="URL template with {repo} [default: the model hub's resolve/main URL].")
@click.option("--verify-only", is_flag=True, help="Check what is on disk; download nothing.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per HTTP request.")
def download_evalsets(data_dir, suite, base_url, verify_only, timeout):
    """Fetch a suite's evaluation sets into DATA_DIR (webdataset layout) and verify them."""
    from .evalsets import download_evalsets as fetch
    from .suites import DEFAULT_BASE_URL

    summary = run_library(fetch, data_dir, suite, base_url or DEFAULT_BASE_URL, verify_only, timeout)
    click.echo(summary.table())
    if summary.count("failed"):
        sys.exit(3)


# ---- report / submit / experiment (issue 5 part B) ----
@main.command("report")
@click.argument("results", nargs=-1, required=False, metavar="[RESULTS...]")
@click.option("--baseline", default=None, metavar="NAME|PATH",
              help="Run Table 4 and the per-task deltas compare against: one of RESULTS by name, "
                   "or another results file/folder. Default: the first of several RESULTS.")
@click.option("--suite", default=None, metavar="NAME|PATH",
              help="Suite the groups come from (default: the one recorded with the results, "
                   "else datacomp38).")
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "csv"]), default="md",
              show_default=True, help="Table format.")
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Write table3/table4, report.png, report.pdf and report.json here "
                   "(default: print the tables).")
@click.option("--paper", is_flag=True,
              help="Add the published Table 3 and 4 of arXiv 2311.04711 for comparison.")
@click.option("--figure/--no-figure", default=True, help="With --output: draw report.png/pdf.")
def report_cmd(results, baseline, suite, fmt, output, paper, figure):
    """Table 3 (DataComp's aggregate scores), Table 4 (tasks that beat the baseline) and a
    figure for one or more runs.

    RESULTS are eval_results.jsonl files or folders holding one (a training output);
    name a run with NAME=PATH, otherwise it is named after its folder. With --paper and
    no RESULTS, prints the published tables alone.
    """
    from .report import build_report, render_tables, write_report

    rep = run_library(build_report, list(results), baseline=baseline, suite=suite,
                      with_paper=paper)
    if output:
        for path in run_library(write_report, rep, output, fmt, figure=figure):
            click.echo(f"wrote {path}")
    else:
        tables = render_tables(rep, fmt)
        click.echo(tables["table3"])
        click.echo(tables["table4"], nl=False)
    partial = [a.run for a in rep.runs if a.partial]
    click.echo(f"{len(rep.runs)} run(s) on suite {rep.suite.name}, baseline "
               f"{rep.baseline or '(none)'}" + (f"; PARTIAL: {', '.join(partial)}" if partial else ""),
               err=True)


@main.command("submit")
@click.option("--train-output", required=True, type=click.Path(file_okay=False),
              help="Training output folder holding info.json (and eval_results.jsonl).")
@click.option("--track", required=True, type=click.Choice(["filtering", "byod"]),
              help="DataComp track: filtering (uid files) or byod (bring your own data).")
@click.option("--method", required=True, help="Method name shown on the leaderboard.")
@click.option("--authors", required=True, help="Author names shown on the leaderboard.")
@click.option("--contact", required=True, help="Contact e-mail (not shown publicly).")
@click.option("--writeup", default=None, help="Optional http(s) link to a paper or blog post.")
@click.option("--samples", multiple=True, type=click.Path(dir_okay=False),
              help="Sample file: uid .npy (DataComp subset) or, for byod, .parquet with url and "
                   "text. Repeat for several. Default: the subset files recorded in info.json.")
@click.option("--results", default=None, type=click.Path(),
              help="eval_results.jsonl (default: the one in --train-output).")
@click.option("--hf-repo", default=None, metavar="USER/NAME",
              help="Model-hub repository you will upload to (recorded in submission.json).")
@click.option("--include-checkpoint", is_flag=True, help="Put the checkpoint in the folder too.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Submission folder to write.")
@click.option("--dry-run/--upload", default=True, show_default=True,
              help="Prepare and validate only (default). --upload explains the manual upload: "
                   "this tool does not upload.")
def submit_cmd(train_output, track, method, authors, contact, writeup, samples, results,
               hf_repo, include_checkpoint, output, dry_run):
    """Validate a DataComp leaderboard submission and write it as a folder (dry run)."""
    from pathlib import Path

    from .submission import SubmissionRequest, describe_submission, prepare_submission

    req = SubmissionRequest(
        train_output=Path(train_output), track=track, method=method, authors=authors,
        contact=contact, output=Path(output), writeup=writeup,
        samples=tuple(Path(s) for s in samples), results=Path(results) if results else None,
        include_checkpoint=include_checkpoint, hf_repo=hf_repo)
    sub = run_library(prepare_submission, req, dry_run=dry_run)
    click.echo(describe_submission(sub))


@main.command("experiment")
@click.argument("file", metavar="FILE|NAME")
@click.option("--workdir", default=None, type=click.Path(file_okay=False),
              help="Where every step writes (default: the file's `workdir`).")
@click.option("--dry-run", is_flag=True, help="Show which steps would run, which are done and "
                                              "which are blocked by a missing input.")
@click.option("--keep-going", "-k", is_flag=True,
              help="Run every step that can run instead of stopping at the first missing input.")
@click.option("--quiet", "-q", is_flag=True,
              help="Show only OpenCLIP's warnings and errors while training (each run's "
                   "out.log keeps every line).")
def experiment_cmd(file, workdir, dry_run, keep_going, quiet):
    """Run an experiment file (experiments/NAME.yaml): build, filter, reshard, train,
    evaluate and report, skipping the steps whose outputs exist."""
    from .experiment import DEFAULT_ACTIONS, QUIET_ACTIONS, run_experiment

    res = run_library(run_experiment, file, workdir=workdir, dry_run=dry_run,
                      keep_going=keep_going, log=click.echo,
                      act=QUIET_ACTIONS if quiet else DEFAULT_ACTIONS)
    click.echo(f"{res.name}: {res.count('ran')} ran, {res.count('skipped')} already done, "
               f"{res.count('would run')} to run, {res.count('blocked')} blocked")
    if res.count("blocked") and not dry_run:
        sys.exit(2)


# ==== end issue 5 ====================================================================

# ==== demo ===========================================================================
@main.command("demo")
@click.option("--output", "-o", default="demo_output", show_default=True,
              type=click.Path(file_okay=False), help="Folder for everything the demo writes.")
def demo_cmd(output):
    """Run the whole pipeline on the bundled sample data (a few minutes on 2 CPU cores).

    \b
    1. generate a small CommonPool-like URL pool and download it with img2dataset
       (DataComp's parameters) from a loopback HTTP server;
    2. run experiments/demo_tiny.yaml, the paper's three runs at the `tiny` scale:
       build the arXiv and PMC pools from the bundled sample packages (LaTeX projects
       and JATS articles generated for this project, hostile and corrupt ones
       included), filter, reshard, mix, train three tiny CLIP models with OpenCLIP,
       evaluate them on a tiny suite in clip_benchmark's layout, and report;
    3. print a DuckDB summary of the pools and the report's Table 3.

    Rerunning reuses finished steps. Outputs: OUTPUT/pools, OUTPUT/commonpool_tiny,
    OUTPUT/subsets, OUTPUT/shards, OUTPUT/runs, OUTPUT/report (table3.md, report.png).
    """
    from .demo import run_demo
    from .progress import print_table

    res = run_library(run_demo, output, log=click.echo)
    cov = res.coverage
    if cov is not None:
        click.echo(f"\nCommonPool-like download: {cov.downloaded}/{cov.rows} images "
                   f"({cov.failed_to_download} failed to download, "
                   f"{cov.failed_to_resize} failed to resize)")
    click.echo("\n== Pools (datacomp-sci query: the paper's Table 1 on the demo pools) ==")
    print_table(res.summary_columns, res.summary)
    table3 = res.output / "report" / "table3.md"
    if table3.exists():
        click.echo("\n== Table 3 (tiny scale; the paper's published rows for comparison) ==")
        click.echo(table3.read_text().rstrip())
    click.echo("\nReport files:")
    for f in res.report_files:
        click.echo(f"  {f}")
# ==== end demo =======================================================================


if __name__ == "__main__":  # pragma: no cover
    main()
