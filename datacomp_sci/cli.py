"""The ``datacomp-sci`` command line: a thin click layer.

Each command parses its options and calls one library function. The library never
imports click; long work reports progress through tqdm and ends with a summary.
"""

from __future__ import annotations

import sys

import click

from . import __version__


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
@click.option("--overwrite", is_flag=True, help="Delete an existing OUTPUT and build again.")
@click.option("--keep-work", is_flag=True,
              help="Keep OUTPUT/_work (per-archive intermediate results) after a successful build.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def build_pool_cmd(source, inputs, output, config, name, workers, shard_size, image_size,
                   keep_multi_panel, overwrite, keep_work, progress):
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
                       image_size=image_size, keep_multi_panel=keep_multi_panel)
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
# ==== end issue 3 ====================================================================

# ==== train (issue 4) ================================================================
# ==== end train ======================================================================

# ==== evaluate / download-evalsets / report / experiment / submission (issue 5) ======
# ==== end issue 5 ====================================================================

# ==== demo ===========================================================================
@main.command("demo")
@click.option("--output", "-o", default="demo_output", show_default=True,
              type=click.Path(file_okay=False), help="Folder for everything the demo writes.")
@click.option("--workers", "-j", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def demo_cmd(output, workers, progress):
    """Run the pipeline on the bundled sample packages and print what came out.

    Builds the arXiv and PMC pools from the sample packages shipped with datacomp-sci
    (LaTeX projects and JATS articles generated for this project, including hostile and
    corrupt inputs) and prints a DuckDB summary. Rerunning reuses finished steps.
    """
    from .demo import run_demo
    from .progress import BuildProgress, print_build_summary, print_table

    res = run_library(run_demo, output, workers=workers, log=click.echo,
                      progress_factory=lambda: BuildProgress(enabled=progress))
    for source, r in res.pools.items():
        click.echo(f"\n== {source} ==")
        print_build_summary(r)
    click.echo("\n== DuckDB summary of the pools' metadata ==")
    print_table(res.summary_columns, res.summary)
# ==== end demo =======================================================================


if __name__ == "__main__":  # pragma: no cover
    main()
