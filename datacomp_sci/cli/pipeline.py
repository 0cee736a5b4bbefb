"""Commands of the pipeline stage: experiment, demo."""

from __future__ import annotations

import sys

import click

from datacomp_sci.cli.app import main, run_library
from datacomp_sci.cli.options import (
    deprecated_alias,
    output_option,
    progress_option,
    workers_option,
)


@main.command("experiment")
@click.argument("file", metavar="FILE|NAME")
@output_option("Where every step writes (default: the file's `workdir`).", required=False,
               file_okay=False)
@deprecated_alias("--workdir", "output", "-o/--output", type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="Show which steps would run, which are done and "
                                              "which are blocked by a missing input.")
@click.option("--keep-going", "-k", is_flag=True,
              help="Run every step that can run instead of stopping at the first missing input.")
@click.option("--quiet", "-q", is_flag=True,
              help="While training, show OpenCLIP's warnings, errors and one line per epoch "
                   "(each run's out.log keeps every line).")
@progress_option("Show each step's progress bars.")
def experiment_cmd(file, output, dry_run, keep_going, quiet, progress):
    """Run an experiment file (experiments/NAME.yaml): build, filter, reshard, train,
    evaluate and report, skipping the steps whose outputs exist."""
    from datacomp_sci.pipeline.experiment import make_actions, run_experiment

    res = run_library(run_experiment, file, workdir=output, dry_run=dry_run,
                      keep_going=keep_going, log=click.echo,
                      act=make_actions(progress=progress, quiet=quiet))
    click.echo(f"{res.name}: {res.count('ran')} ran, {res.count('skipped')} already done, "
               f"{res.count('would run')} to run, {res.count('blocked')} blocked")
    if res.count("blocked") and not dry_run:
        sys.exit(2)

@main.command("demo")
@output_option("Folder for everything the demo writes.", required=False, file_okay=False,
               default="demo_output")
@workers_option("Worker processes of the build, filter and reshard steps [default: the "
                "experiment file's `workers`].")
@progress_option("Show each step's progress bars.")
def demo_cmd(output, workers, progress):
    """Run the whole pipeline on the bundled sample data (about 5 minutes on 2 CPU cores).

    \b
    1. generate a small CommonPool-like URL pool and download it with img2dataset
       (DataComp's parameters) from a loopback HTTP server;
    2. run experiments/demo_tiny.yaml, the paper's three runs at the `tiny` scale plus
       a CLIP-score-filtered mix: build the arXiv and PMC pools from the bundled sample
       packages (LaTeX projects and JATS articles generated for this project, hostile
       and corrupt ones included), embed every pool with a randomly initialised tiny
       CLIP, filter, reshard, mix, train four tiny CLIP models with OpenCLIP, evaluate
       them on a tiny suite in clip_benchmark's layout, and report;
    3. print a DuckDB summary of the pools and the report's Table 3;
    4. import the runs into a local leaderboard (OUTPUT/leaderboard) and export its
       static site (OUTPUT/leaderboard_site).

    Rerunning reuses finished steps. Outputs: OUTPUT/pools, OUTPUT/commonpool,
    OUTPUT/subsets, OUTPUT/shards, OUTPUT/runs, OUTPUT/report (table3.md, report.png),
    OUTPUT/submissions, OUTPUT/leaderboard, OUTPUT/leaderboard_site.
    """
    from datacomp_sci.cli.progress import print_table
    from datacomp_sci.pipeline.demo import run_demo

    res = run_library(run_demo, output, workers=workers, log=click.echo, progress=progress)
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
    if res.leaderboard_site is not None:
        click.echo(f"\nLeaderboard: {res.leaderboard_site}/index.html (static copy); live: "
                   f"datacomp-sci leaderboard serve --db {res.leaderboard}")
