"""Commands of the reporting stage: report, submit."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import main, run_library
from datacomp_sci.cli.options import output_option


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
@output_option("Write table3/table4, report.png, report.pdf and report.json here "
               "(default: print the tables).", required=False, file_okay=False)
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
    from datacomp_sci.reporting.report import build_report, render_tables, write_report

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
@output_option("Submission folder to write.", file_okay=False)
@click.option("--dry-run/--upload", default=True, show_default=True,
              help="Prepare and validate only (default). --upload explains the manual upload "
                   "to DataComp's hosted board: this tool does not upload there.")
@click.option("--suite", default="datacomp38", show_default=True, metavar="NAME|PATH",
              help="Suite every task of which must be scored. Another suite than datacomp38 "
                   "(a custom board, e.g. tiny) also accepts any scale name.")
@click.option("--to", "to_url", default=None, metavar="URL",
              help="Upload the folder to a `datacomp-sci leaderboard serve` board at URL "
                   "(one streamed tar, retried on network errors).")
@click.option("--token", default=None, envvar="DATACOMP_SCI_LEADERBOARD_TOKEN",
              show_envvar=True, help="Upload token of that board (from its admin).")
@click.option("--retries", default=3, show_default=True, type=int,
              help="With --to: retries after a dropped connection or a server error.")
def submit_cmd(train_output, track, method, authors, contact, writeup, samples, results,
               hf_repo, include_checkpoint, output, dry_run, suite, to_url, token, retries):
    """Validate a DataComp leaderboard submission and write it as a folder (dry run); with
    --to, upload it to a self-hosted board and print its page."""
    from pathlib import Path

    from datacomp_sci.reporting.submission import (
        LEADERBOARD_SCALES,
        SUITE,
        SubmissionRequest,
        describe_submission,
        prepare_submission,
        upload_submission,
    )

    if to_url and not token:
        raise click.UsageError("--to needs --token (or DATACOMP_SCI_LEADERBOARD_TOKEN)")
    req = SubmissionRequest(
        train_output=Path(train_output), track=track, method=method, authors=authors,
        contact=contact, output=Path(output), writeup=writeup,
        samples=tuple(Path(s) for s in samples), results=Path(results) if results else None,
        include_checkpoint=include_checkpoint, hf_repo=hf_repo)
    scales = LEADERBOARD_SCALES if suite == SUITE else None
    sub = run_library(prepare_submission, req, dry_run=dry_run or bool(to_url), suite=suite,
                      scales=scales)
    click.echo(describe_submission(sub))
    if to_url:
        res = run_library(upload_submission, sub.output, to_url, token, retries=retries,
                          log=lambda m: click.echo(m, err=True))
        click.echo(f"{'accepted' if res.created else 'already on the board'}: {res.url}")
