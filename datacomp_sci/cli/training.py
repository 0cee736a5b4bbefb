"""Commands of the training stage: train."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import UserError, main, run_library
from datacomp_sci.cli.options import loader_workers_option, output_option


def _scale_names() -> list[str]:
    from datacomp_sci.training.scales import available_scales

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
@output_option("Folder for experiments: the run goes to OUTPUT/EXP/.", file_okay=False)
@click.option("--exp-name", default=None, help="Experiment name (default: SCALE_scale).")
@loader_workers_option("DataLoader workers per device (default: 4; tiny: 0).")
@click.option("--precision", default=None,
              type=click.Choice(["amp", "amp_bf16", "amp_bfloat16", "bf16", "fp16", "fp32"]),
              help="Numeric precision (default: amp as DataComp; tiny: fp32).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--deterministic", is_flag=True,
              help="Same data, options and --seed give the same checkpoint: no sample-shuffle "
                   "buffer (samples in seeded shard order; reshard output is already shuffled) "
                   "and torch's deterministic algorithms. Bit-identical on CPU (tiny scale).")
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
def train_cmd(scale, data, data_spec, output, exp_name, loader_workers, precision, seed,
              deterministic, num_checkpoints, accum_freq, resume, report_to, dry_run, quiet):
    """Train CLIP with OpenCLIP's trainer on DataComp's recipe for SCALE.

    Calls open_clip_train.main.main() with DataComp's argument list: samples seen, global
    batch, learning rate, warmup, model and beta2 are fixed per scale; as in DataComp only
    --precision and --loader-workers may change them for the standard scales. The global batch is
    split over the world size (torchrun, SLURM) and --accum-freq.

    Prints the plan, trains (resuming if OUTPUT/EXP has checkpoints), then writes
    OUTPUT/EXP/info.json (model, final checkpoint, scale, data, versions) for `evaluate`.
    A completed run is not trained again.
    """
    from datacomp_sci.training.scales import get_scale
    from datacomp_sci.training.train import (
        TrainingError,
        TrainOptions,
        format_plan,
        make_plan,
        train,
    )

    opts = TrainOptions(output=output, exp_name=exp_name, workers=loader_workers, precision=precision,
                        seed=seed, num_checkpoints=num_checkpoints, accum_freq=accum_freq,
                        resume=resume, report_to=report_to, deterministic=deterministic)
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
