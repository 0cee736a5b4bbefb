"""The click group every command registers with, and the one place that turns library
errors into one-line messages."""

from __future__ import annotations

import sys

import click

from datacomp_sci import __version__
from datacomp_sci.core.deps import missing_extra_message
from datacomp_sci.engines import TaskError


class UserError(click.ClickException):
    """An error the user can fix; printed without a traceback."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100,
                                "show_default": True})
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
    except ModuleNotFoundError as e:
        message = missing_extra_message(e)
        if message is None:
            raise
        raise UserError(message) from e
    except (FileNotFoundError, ValueError, FileExistsError, PermissionError) as e:
        raise UserError(str(e)) from e
    except TaskError as e:  # a task failed on every attempt; the message says what to do
        raise UserError(str(e)) from e
    except KeyboardInterrupt:
        # one line; on a terminal, after the ^C the terminal echoed (workers print nothing:
        # core.util.worker_pool)
        lead = "\n" if sys.stderr.isatty() else ""
        click.echo(f"{lead}interrupted: rerun the same command to resume", err=True)
        sys.exit(130)
    except Exception as e:
        message = storage_error_message(e)
        if message is None:
            raise
        raise UserError(message) from e


def storage_error_message(e: BaseException) -> str | None:
    """One line for an object-storage client error (botocore's, raised through s3fs), or
    None; recognised by class name, so botocore is not imported here."""
    names = {c.__name__ for c in type(e).__mro__}
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return (f"object storage: {e}: set AWS credentials (AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); s3://arxiv is requester-pays "
                "and needs them, the transfer is billed to you")
    if "BotoCoreError" in names:
        return f"object storage: {e}"
    return None


def resuming(what: str):
    """``on_resume`` callback printing ``resuming: 12 of 40 units done`` on stderr."""
    return lambda done, total: click.echo(f"resuming: {done} of {total} {what} done", err=True)




def echo_cache_written(what: str, folder, prune: str) -> None:
    """The end-summary line of a command that wrote to a cache (e.g. ~/.cache/datacomp-sci):
    what it wrote, the folder and its size now, and how to prune it."""
    from pathlib import Path

    root = Path(folder)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    click.echo(f"cache       wrote {what} to {root} (now {size / 1e6:.1f} MB); prune: {prune}")
