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
# ==== end build-pool =================================================================

# ==== query / filter / dedup / download-pool / reshard / mix (issue 3) ================
# ==== end issue 3 ====================================================================

# ==== train (issue 4) ================================================================
# ==== end train ======================================================================

# ==== evaluate / download-evalsets / report / experiment / submission (issue 5) ======
# ==== end issue 5 ====================================================================

# ==== demo ===========================================================================
# ==== end demo =======================================================================


if __name__ == "__main__":  # pragma: no cover
    main()
