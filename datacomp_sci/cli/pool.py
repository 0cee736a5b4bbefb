"""Commands of the pool stage: build-pool, query, download-pool."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import UserError, main, resuming, run_library
from datacomp_sci.cli.options import (
    _MEMORY_OPT,
    _POOLS_ARG,
    _THREADS_OPT,
    VocabOption,
    deprecated_alias,
    engine_from_options,
    engine_options,
    output_option,
    progress_option,
    storage_options_option,
    workers_option,
)


@main.command("build-pool")
@click.argument("source", type=click.Choice(["arxiv", "pmc"]))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@output_option("Pool folder to write (shards/, metadata/, pool.json, build_report.json): a "
               "local or shared folder, or an object-storage URL (s3://bucket/pool, gs://...).",
               file_okay=False)
@click.option("--config", default=None, metavar="NAME|PATH",
              help="Pool definition: pools/NAME.yaml or a path. Default: pools/SOURCE.yaml.")
@click.option("--name", default=None, help="Pool name recorded in pool.json (default: the config's).")
@workers_option("Parallel worker processes (--engine ray: tasks in flight), one input archive "
                "each. Default: all cores (the cluster's CPUs). The output is identical for "
                "any value.")
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
@progress_option("Show a progress bar.")
@engine_options()
@storage_options_option()
def build_pool_cmd(source, inputs, output, config, name, workers, shard_size, image_size,
                   keep_multi_panel, converter_timeout, overwrite, keep_work, progress, engine,
                   ray_address, task_retries, storage_options):
    """Turn arXiv LaTeX packages or PMC Open Access packages into a DataComp pool.

    INPUT is a file, a folder or an fsspec URL (https://..., s3://... with globs): arXiv
    bulk tars (arXiv_src_YYMM_NNN.tar), per-paper .gz / .tar.gz files, unpacked LaTeX
    project folders; PMC .tar.gz packages or folders of them.

    Writes OUTPUT/shards/{N:08d}.tar|.parquet|_stats.json (img2dataset's webdataset layout),
    OUTPUT/metadata/{N:08d}.parquet (CommonPool's columns, then ours), OUTPUT/pool.json,
    OUTPUT/build_report.json and OUTPUT/skipped.jsonl (every skipped item and why).
    Interrupt it at any time: rerunning the same command resumes and gives the same bytes.
    """
    from datacomp_sci.cli.progress import print_build_summary
    from datacomp_sci.core.bars import BuildBar
    from datacomp_sci.core.storage import parse_storage_options
    from datacomp_sci.pool.build import build_pool, options_from_config

    opts = run_library(options_from_config, source, config, name=name, shard_size=shard_size,
                       image_size=image_size, keep_multi_panel=keep_multi_panel,
                       converter_timeout_s=converter_timeout)
    engine_opts = run_library(engine_from_options, engine, ray_address, task_retries, workers)
    storage = run_library(parse_storage_options, storage_options)
    bar = BuildBar(progress)
    try:
        result = run_library(build_pool, list(inputs), output, opts, workers=workers,
                             overwrite=overwrite, keep_work=keep_work, progress=bar.update,
                             on_units=bar.start, on_resume=resuming("units"),
                             engine=engine_opts, storage_options=storage)
    finally:
        bar.close()
    print_build_summary(result)
    _exit_on_outcome(result)


def _exit_on_outcome(result) -> None:
    """Exit 1 when inputs were given and not one paper could be read; an empty pool made
    of readable papers (e.g. all PDF-only) is a result, reported with a note (exit 0)."""
    from datacomp_sci.pool.build import build_outcome

    r = result.report
    outcome = build_outcome(r)
    if outcome == "unreadable":
        raise UserError(
            f"not one readable paper in {r['units']} input archive(s): every one is damaged, "
            f"truncated or not an archive ({r['skipped_total']} skips, each in "
            f"{result.output}/skipped.jsonl)")
    if outcome == "empty":
        reasons = {k: v for stage in r["skipped"].values() for k, v in stage.items()}
        top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        click.echo(f"note: empty pool: {r['papers_read']} paper(s) read, none with a "
                   f"figure-caption pair ({top or 'no figures'})", err=True)


@main.command("query")
@_POOLS_ARG
@click.option("--sql", default=None, help="SQL over the views: one per pool (named after it) "
              "and `pools` (their union by column name, with a `pool` column).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]),
              default="table", show_default=True,
              help="table prints to the terminal; csv, json (one object per line) and parquet "
                   "write --output.")
@output_option("File for --format csv|json|parquet (written atomically).", required=False,
               dir_okay=False)
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
    from datacomp_sci.pool.query import format_table, parse_params, run_query

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


@main.command("download-pool")
@output_option("Pool folder: OUTPUT/metadata/*.parquet, OUTPUT/shards/, coverage.json, "
               "failed_uids.npy; local or shared, or an object-storage URL (s3://bucket/pool: "
               "img2dataset writes the shards there itself).", file_okay=False)
@click.option("--metadata-dir", type=click.Path(file_okay=False), default=None,
              help="Local metadata parquets (columns url, text; uid and face_bboxes when present).")
@click.option("--scale", type=click.Choice(["small", "medium", "large", "xlarge", "datacomp_1b"]),
              default=None, help="Fetch DataComp's CommonPool metadata for this scale "
                                 "(Hugging Face dataset mlfoundations/datacomp_pools; network).")
@workers_option("img2dataset processes (DataComp's default).", default=16)
@deprecated_alias("--processes", "workers", "-j/--workers", type=click.IntRange(min=1))
@click.option("--download-threads", type=click.IntRange(min=1), default=128, cls=VocabOption,
              help="img2dataset download threads per process (DataComp's default).")
@deprecated_alias("--threads", "download_threads", "--download-threads",
                  type=click.IntRange(min=1))
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
@engine_options(task_retries=False)
@storage_options_option()
def download_pool_cmd(output, metadata_dir, scale, workers, download_threads, shard_size, retries,
                      timeout, skip_bbox_blurring, coverage_only, engine, ray_address,
                      storage_options):
    """Download a URL-based pool into webdataset shards with img2dataset and DataComp's
    parameters (512 px keep_ratio_largest, only if bigger, jpg, 10000/shard, 8-digit shard
    names, uid saved, faces blurred), then report coverage. img2dataset shows its own
    progress. Rerun the same command to resume: finished shards are kept.
    """
    from datacomp_sci.core.storage import parse_storage_options
    from datacomp_sci.pool.download import DownloadOptions, download_pool

    opts = DownloadOptions(processes=workers, threads=download_threads, shard_size=shard_size,
                           retries=retries, timeout=timeout, blur_faces=not skip_bbox_blurring)
    engine_opts = run_library(engine_from_options, engine, ray_address)
    res = run_library(download_pool, output, metadata_dir=metadata_dir, scale=scale, opts=opts,
                      skip_shards=coverage_only, engine=engine_opts,
                      storage_options=run_library(parse_storage_options, storage_options))
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
