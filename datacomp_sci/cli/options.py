"""Options and argument declarations shared by several commands (one vocabulary, one
default each), and the tqdm hooks that drive their progress bars."""

from __future__ import annotations

import click


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


def engine_options(task_retries: bool = True):
    """``--engine``, ``--ray-address`` and (unless the command's tasks retry by their own
    rules) ``--task-retries``: one spelling on every command."""

    def decorate(fn):
        if task_retries:
            fn = click.option(
                "--task-retries", type=int, default=2, show_default=True,
                help="Further attempts of a task that raised or whose worker died; a task "
                     "that still fails is reported (and redone by a rerun).")(fn)
        fn = click.option(
            "--ray-address", default=None, metavar="ADDRESS",
            help="Ray cluster to join with --engine ray: auto, HOST:PORT or ray://HOST:PORT. "
                 "[default: auto when $RAY_ADDRESS is set, else a Ray instance started on "
                 "this machine for the run]")(fn)
        return click.option(
            "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
            help="Where the work runs: this machine's processes, or a Ray cluster (pip install "
                 "'datacomp-sci[ray]'). The output is the same.")(fn)

    return decorate


def engine_from_options(engine: str, ray_address: str | None, task_retries: int = 2,
                        workers: int | None = None):
    from datacomp_sci.engines import EngineOptions

    return EngineOptions(name=engine, workers=workers, address=ray_address,
                         retries=task_retries)
