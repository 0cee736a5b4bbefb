"""Commands of the evaluation stage: evaluate, download-evalsets."""

from __future__ import annotations

import sys

import click

from datacomp_sci.cli.app import UserError, main, run_library
from datacomp_sci.cli.options import (
    deprecation_warning,
    evalsets_option,
    loader_workers_option,
    output_option,
    progress_option,
)


@main.command()
@click.option("--train-output", type=click.Path(file_okay=False), help="Output folder of `train` (reads its info.json: model, checkpoint).")
@click.option("--model", "model_arch", help="OpenCLIP architecture (with --checkpoint), e.g. ViT-B-32.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Checkpoint file (with --model).")
@click.option("--suite", default="datacomp38", show_default=True, help="Suite name in eval_suites/ or a path to a suite YAML.")
@evalsets_option("Folder holding the evaluation sets (see download-evalsets).", required=True,
                 old="--data-dir")
@output_option("Where eval_results.jsonl / eval_meta.json go [default: --train-output].",
               required=False, file_okay=False)
@click.option("--batch-size", default=64, show_default=True, help="Images per forward pass.")
@loader_workers_option("DataLoader workers (capped by shard count).", default=4)
@click.option("--device", default=None, help="torch device: cpu, cuda, cuda:1 [default: cuda if available].")
@progress_option()
def evaluate(train_output, model_arch, checkpoint, suite, evalsets, output, batch_size,
             loader_workers, device, progress):
    """Zero-shot evaluation of a CLIP checkpoint on an evaluation suite (resumable)."""
    from datacomp_sci.evaluation import evaluate as ev

    if bool(train_output) == bool(model_arch and checkpoint) or bool(model_arch) != bool(checkpoint):
        raise UserError("give either --train-output DIR, or both --model ARCH and --checkpoint FILE")
    opts = dict(batch_size=batch_size, workers=loader_workers, device=device, progress=progress)
    if train_output:
        summary = run_library(ev.evaluate_train_output, train_output, suite, evalsets, output, **opts)
    else:
        if not output:
            raise UserError("--output is required with --model/--checkpoint")
        summary = run_library(ev.evaluate_model, model_arch, checkpoint, suite, evalsets, output, **opts)
    click.echo(summary.table())
    click.echo(f"{len(summary.evaluated)} evaluated, {len(summary.skipped)} already done; results in {summary.output / ev.RESULTS_FILE}")
    for p in summary.missing + summary.failed:
        click.echo(f"  {p.key}: {p.reason}", err=True)
    if not summary.complete:
        sys.exit(3)


@main.command("download-evalsets")
@click.argument("data_dir", type=click.Path(file_okay=False), required=False,
                metavar="[DATA_DIR]")
@output_option("The evaluation-sets folder to fill (what --evalsets reads in other commands).",
               required=False, file_okay=False)
@click.option("--suite", default="datacomp38", show_default=True, help="Suite name in eval_suites/ or a path to a suite YAML.")
@click.option("--base-url", default=None, help="URL template with {repo} [default: the model hub's resolve/main URL].")
@click.option("--verify-only", is_flag=True, help="Check what is on disk; download nothing.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per HTTP request.")
@progress_option()
def download_evalsets(data_dir, output, suite, base_url, verify_only, timeout, progress):
    """Fetch a suite's evaluation sets into OUTPUT (webdataset layout) and verify them.

    DATA_DIR, the positional spelling of --output, is deprecated.
    """
    from datacomp_sci.core.suites import DEFAULT_BASE_URL
    from datacomp_sci.evaluation.evalsets import download_evalsets as fetch

    if data_dir is not None:
        if output is not None:
            raise UserError("give the folder once: -o/--output DIR (DATA_DIR is deprecated)")
        deprecation_warning("the DATA_DIR argument", "-o/--output DIR")
        output = data_dir
    if output is None:
        raise UserError("missing -o/--output DIR: the folder to fill with evaluation sets")
    summary = run_library(fetch, output, suite, base_url or DEFAULT_BASE_URL, verify_only, timeout,
                          progress=progress)
    click.echo(summary.table())
    if summary.count("failed"):
        sys.exit(3)
