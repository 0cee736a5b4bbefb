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
        "on_images": lambda n: bar("descriptors", "img").update(n),
    }
    return hooks, bars


_POOLS_ARG = click.argument("pools", nargs=-1, required=True, metavar="POOL...",
                            type=click.Path(exists=True, file_okay=False))
_THREADS_OPT = click.option("--threads", type=int, default=None,
                            help="DuckDB threads (default: all cores).")
_MEMORY_OPT = click.option("--memory-limit", default=None, metavar="SIZE",
                           help="DuckDB memory limit, e.g. 4GB (default: 80% of RAM); larger "
                                "work spills to disk.")
