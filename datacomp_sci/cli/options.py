"""Options and argument declarations shared by several commands (one vocabulary, one
default each) and the deprecated spellings kept for one release.

The vocabulary: ``-o/--output`` is what a command writes; ``-j/--workers`` is a number of
processes; ``--loader-workers`` is a number of PyTorch DataLoader workers; ``--threads`` is
DuckDB's threads; ``--evalsets DIR`` is the folder of evaluation sets (``evalsets:`` in
experiment files); ``--progress/--no-progress`` switches the bars of long commands.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

_DEPRECATED = "datacomp_sci.deprecated"  # ctx.meta key: new param name -> (old flag, value)


def deprecation_warning(old: str, new: str) -> None:
    """The one-line message every deprecated spelling prints (on stderr)."""
    click.echo(f"warning: {old} is deprecated and will be removed in the next release; "
               f"use {new}", err=True)


class VocabOption(click.Option):
    """An option that a deprecated spelling (:func:`deprecated_alias`) may also set."""

    def consume_value(self, ctx, opts):
        old = ctx.meta.get(_DEPRECATED, {}).get(self.name)
        if old is not None:
            if self.name in opts:
                raise click.UsageError(f"give {self.opts[-1]} or {old[0]}, not both")
            return old[1], ParameterSource.COMMANDLINE
        return super().consume_value(ctx, opts)


class _DeprecatedAlias(click.Option):
    def __init__(self, decls, *, target: str, replacement: str, **kwargs):
        super().__init__(decls, hidden=True, expose_value=False, **kwargs)
        self.target, self.replacement = target, replacement

    def handle_parse_result(self, ctx, opts, args):
        value, args = super().handle_parse_result(ctx, opts, args)
        if self.name in opts:
            if ctx.get_parameter_source(self.target) == ParameterSource.COMMANDLINE:
                raise click.UsageError(f"give {self.replacement} or {self.opts[0]}, not both")
            deprecation_warning(self.opts[0], self.replacement)
            ctx.meta.setdefault(_DEPRECATED, {})[self.target] = (self.opts[0], value)
        return value, args


def deprecated_alias(old: str, target: str, replacement: str, **kwargs):
    """A hidden old spelling ``old`` of the option whose parameter is ``target`` (declared
    with ``cls=VocabOption``); using it prints a deprecation line and sets ``target``."""
    return click.option(old, "_deprecated_" + old.lstrip("-").replace("-", "_"),
                        cls=_DeprecatedAlias, target=target, replacement=replacement, **kwargs)


def output_option(help: str, required: bool = True, dir_okay: bool = True,
                  file_okay: bool = True, default=None):
    """``-o/--output``: what the command writes."""
    extra = {} if default is None else {"default": default}  # an explicit None counts as given
    return click.option("--output", "-o", cls=VocabOption, required=required,
                        type=click.Path(dir_okay=dir_okay, file_okay=file_okay), help=help, **extra)


def workers_option(help: str, default: int | None = None):
    """``-j/--workers``: worker processes."""
    extra = {} if default is None else {"default": default}
    return click.option("--workers", "-j", type=click.IntRange(min=1), cls=VocabOption,
                        help=help, **extra)


def loader_workers_option(help: str, default: int | None = None):
    """``--loader-workers``: PyTorch DataLoader worker processes (``--workers`` before)."""
    def decorate(f):
        extra = {} if default is None else {"default": default}
        f = click.option("--loader-workers", "loader_workers", type=click.IntRange(min=0),
                         cls=VocabOption, help=help, **extra)(f)
        return deprecated_alias("--workers", "loader_workers", "--loader-workers",
                                type=click.IntRange(min=0))(f)
    return decorate


def progress_option(help: str = "Show progress bars."):
    return click.option("--progress/--no-progress", default=True, show_default=True, help=help)


def evalsets_option(help: str, required: bool = False, old: str | None = None):
    """``--evalsets DIR``: the evaluation sets as `download-evalsets` writes them."""
    def decorate(f):
        f = click.option("--evalsets", "evalsets", type=click.Path(file_okay=False),
                         metavar="DIR", required=required, cls=VocabOption, help=help)(f)
        if old:
            f = deprecated_alias(old, "evalsets", "--evalsets",
                                 type=click.Path(file_okay=False))(f)
        return f
    return decorate


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


def storage_options_option(what: str = "OUTPUT"):
    """``--storage-option KEY=VALUE`` (repeatable): options of the file system of ``what``
    (OUTPUT, or embed's POOL) when it is an object-storage URL, over fsspec's own
    configuration."""
    return click.option(
        "--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
        help=f"Option of the object-storage file system of an s3://, gs://... {what}, e.g. "
             "endpoint_url=http://127.0.0.1:9000 (MinIO) or requester_pays=true; repeat for "
             "several. fsspec's FSSPEC_S3_ENDPOINT_URL-style variables work too; credentials "
             "come from the environment as s3fs/gcsfs read them.")


def engine_from_options(engine: str, ray_address: str | None, task_retries: int = 2,
                        workers: int | None = None):
    from datacomp_sci.engines import EngineOptions

    return EngineOptions(name=engine, workers=workers, address=ray_address,
                         retries=task_retries)
