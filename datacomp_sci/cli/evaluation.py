"""Commands of the evaluation stage: evaluate, download-evalsets."""

from __future__ import annotations

import sys

import click

from datacomp_sci.cli.app import UserError, main, run_library


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
    from datacomp_sci.evaluation import evaluate as ev

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
    from datacomp_sci.core.suites import DEFAULT_BASE_URL
    from datacomp_sci.evaluation.evalsets import download_evalsets as fetch

    summary = run_library(fetch, data_dir, suite, base_url or DEFAULT_BASE_URL, verify_only, timeout)
    click.echo(summary.table())
    if summary.count("failed"):
        sys.exit(3)
