"""Commands of the leaderboard stage: leaderboard serve | token | hide | unhide | export | import."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import main, run_library
from datacomp_sci.cli.options import progress_option

_DB = click.option("--db", "db", required=True, type=click.Path(file_okay=False),
                   metavar="DIR", help="Board folder (board.sqlite + objects/).")
_SUITE = click.option("--suite", default=None, metavar="NAME|PATH",
                      help="Evaluation suite of a NEW board  [default: datacomp38]; an existing "
                           "board keeps its own.")
_SCALES = click.option("--scales", default=None, metavar="LIST",
                       help="Comma-separated scales a NEW board accepts, or 'any'  [default: "
                            "small,medium,large,xlarge].")
_TITLE = click.option("--title", default=None, help="Title of a NEW board  [default: "
                                                    "DataComp-like leaderboard].")


def _settings(suite, scales, title):
    from datacomp_sci.leaderboard.store import BoardSettings

    if suite is None and scales is None and title is None:
        return None
    d = BoardSettings()
    if scales is None:
        parsed = d.scales
    elif scales.strip().lower() == "any":
        parsed = None
    else:
        parsed = tuple(s.strip() for s in scales.split(",") if s.strip())
    return BoardSettings(suite or d.suite, parsed, title or d.title)


def _open(db, suite=None, scales=None, title=None, create=True):
    from datacomp_sci.leaderboard.store import Store

    if create:
        return run_library(Store.open, db, _settings(suite, scales, title))
    return run_library(Store, db)


@main.group("leaderboard")
def leaderboard_group():
    """A self-hosted DataComp-like leaderboard: serve it, hand out upload tokens, import
    submission folders and baselines, hide entries, export a static copy."""


@leaderboard_group.command("serve")
@_DB
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put TLS in front).")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--max-upload-mb", default=2048, show_default=True, type=int,
              help="Largest accepted upload (archive and unpacked) in MiB.")
@click.option("--max-files", default=64, show_default=True, type=int,
              help="Most members an uploaded archive may hold.")
@click.option("--public-url", default=None,
              help="Base URL given back to uploaders (default: the address they used).")
@_SUITE
@_SCALES
@_TITLE
def serve_cmd(db, host, port, max_upload_mb, max_files, public_url, suite, scales, title):
    """Run the web application on HOST:PORT (Ctrl-C stops it). Creates the board in DIR
    when it does not exist."""
    from datacomp_sci.core.deps import require

    run_library(require, "fastapi")
    from datacomp_sci.leaderboard.app import ServerOptions, serve
    from datacomp_sci.leaderboard.ingest import Limits

    store = _open(db, suite, scales, title)
    n = len(store.entries(include_hidden=True))
    click.echo(f"board {store.folder} (suite {store.settings.suite}, {n} entries, "
               f"{len(store.tokens())} tokens): http://{host}:{port}/", err=True)
    if not store.tokens():
        click.echo(f"no upload tokens yet: datacomp-sci leaderboard token add NAME --db {db}",
                   err=True)
    opts = ServerOptions(Limits(max_bytes=max_upload_mb << 20, max_files=max_files), public_url)
    run_library(serve, store.folder, host=host, port=port, options=opts)


@leaderboard_group.group("token")
def token_group():
    """Upload tokens (stored hashed; a token is shown once, when it is made)."""


@token_group.command("add")
@click.argument("name")
@_DB
def token_add_cmd(name, db):
    """Make an upload token for NAME (a person or team) and print it."""
    store = _open(db)
    token = run_library(store.add_token, name)
    click.echo(token)
    click.echo(f"token for {name!r} added to {store.folder}; it is not stored in clear and "
               "cannot be shown again", err=True)


@token_group.command("list")
@_DB
def token_list_cmd(db):
    """Names of the tokens and when they were made."""
    for name, created in _open(db, create=False).tokens():
        click.echo(f"{name}\t{created}")


@token_group.command("remove")
@click.argument("name")
@_DB
def token_remove_cmd(name, db):
    """Revoke NAME's token."""
    run_library(_open(db, create=False).remove_token, name)
    click.echo(f"token {name!r} removed")


def _set_hidden(db, entry_ids, hidden):
    store = _open(db, create=False)
    for entry_id in entry_ids:
        e = run_library(store.set_hidden, entry_id, hidden)
        click.echo(f"{'hidden' if hidden else 'shown'}: {e.id} {e.method} "
                   f"({e.scale}/{e.track})")


@leaderboard_group.command("hide")
@click.argument("entry_ids", nargs=-1, required=True, metavar="ID...")
@_DB
def hide_cmd(entry_ids, db):
    """Hide entries from every page, export and API answer (kept in the store)."""
    _set_hidden(db, entry_ids, True)


@leaderboard_group.command("unhide")
@click.argument("entry_ids", nargs=-1, required=True, metavar="ID...")
@_DB
def unhide_cmd(entry_ids, db):
    """Show hidden entries again."""
    _set_hidden(db, entry_ids, False)


@leaderboard_group.command("export")
@_DB
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for the static site.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@progress_option("Show a progress bar.")
def export_cmd(db, output, overwrite, progress):
    """Write a static copy of the board (HTML, CSV, JSON, plots) for any static web server."""
    from tqdm import tqdm

    from datacomp_sci.leaderboard.export import export_site

    store = _open(db, create=False)
    with tqdm(total=len(store.entries()), unit="entry", desc="export",
              disable=not progress) as bar:
        res = run_library(export_site, store, output, overwrite=overwrite, progress=bar.update)
    click.echo(f"wrote {res.pages} pages, {len(res.files)} files to {res.output}")


@leaderboard_group.command("import")
@click.argument("paths", nargs=-1, required=True, metavar="FOLDER|CSV...",
                type=click.Path(exists=True))
@_DB
@click.option("--baseline", is_flag=True,
              help="Show the imported submission folders as baseline rows (no rank).")
@_SUITE
@_SCALES
@_TITLE
def import_cmd(paths, db, baseline, suite, scales, title):
    """Add submission folders (written by `datacomp-sci submit`) or baseline rows from a CSV
    (e.g. DataComp's published baselines) to the board; creates the board when new."""
    from datacomp_sci.leaderboard.ingest import import_paths

    store = _open(db, suite, scales, title)
    done = run_library(import_paths, store, list(paths), baseline=baseline)
    for acc in done:
        e = acc.entry
        avg = e.groups.get("Average")
        click.echo(f"{'added' if acc.created else 'already there'}: {e.id} {e.method} "
                   f"({e.kind}, {e.scale}/{e.track}, Average "
                   f"{'–' if avg is None else f'{avg:.3f}'})")
    click.echo(f"{sum(a.created for a in done)} added, {sum(not a.created for a in done)} "
               f"already on the board {store.folder}", err=True)
