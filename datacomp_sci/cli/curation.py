"""Commands of the curation stage: curate metaclip, curate entities, kg fetch."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import main, run_library
from datacomp_sci.cli.options import _POOLS_ARG, progress_option


def _common(fn):
    """Options every curate command shares (one vocabulary with `filter`)."""
    opts = [
        click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
                     help="Subset file to write (.npy, DataComp's sorted u8,u8 uids), with "
                          "OUTPUT.json, OUTPUT.entry_counts.parquet and OUTPUT.counts.png beside "
                          "it; with several --t, one OUTPUT_t<T>.npy (and files) per threshold."),
        click.option("--t", "t", default="20000", show_default=True, metavar="T[,T...]",
                     help="Balancing threshold: a concept matched by more than T pairs keeps each "
                          "with p = T / max(count, T), about T of them; a comma list sweeps "
                          "several at once."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the per-uid draws (same seed, same subset, for any workers, "
                          "order or split of the pools)."),
        click.option("--text-columns", default="text", show_default=True, metavar="COL[,COL...]",
                     help="Metadata columns to match (string or list of strings); a pair matches "
                          "when any of its texts does, e.g. text,mentions for arXiv/PMC pools."),
        click.option("--counts", "counts_file", default=None,
                     type=click.Path(exists=True, dir_okay=False),
                     help="Reuse the per-concept counts of an earlier run's "
                          "OUTPUT.entry_counts.parquet (e.g. counted over a larger pool)."),
        click.option("--and", "and_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False),
                     help="Keep only samples also in this subset .npy (repeatable)."),
        click.option("--not", "not_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False),
                     help="Drop samples in this subset .npy (repeatable)."),
        click.option("--plot/--no-plot", default=True, show_default=True,
                     help="Write OUTPUT.counts.png (log-log counts before/after, t marked)."),
        click.option("--workers", "-j", type=int, default=None,
                     help="Processes matching metadata files (default: all cores); the subset "
                          "does not depend on it."),
        progress_option("Show a progress bar."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _run(pools, output, src, t, seed, text_columns, counts_file, and_files, not_files, plot,
         workers, progress, kg_captions=False):
    import os

    from tqdm import tqdm

    from datacomp_sci.curation.curate import (
        CurateOptions,
        CurateSpec,
        parse_thresholds,
        run_curation,
    )

    thresholds = run_library(parse_thresholds, t)
    columns = tuple(c.strip() for c in text_columns.split(",") if c.strip())
    spec = CurateSpec(src=src, thresholds=thresholds, seed=seed, text_columns=columns,
                      counts_file=counts_file, and_files=list(and_files),
                      not_files=list(not_files), kg_captions=kg_captions)
    bar = tqdm(desc="match", unit="row", unit_scale=True, dynamic_ncols=True, disable=not progress)

    def on_file(rows: int, cached: bool) -> None:
        bar.update(rows)

    opts = CurateOptions(workers=workers or os.cpu_count() or 1, on_file=on_file, plot=plot)
    try:
        res = run_library(run_curation, list(pools), output, spec, opts)
    finally:
        bar.close()
    _summary(res)


def _summary(res) -> None:
    s = res.stats
    click.echo(f"rows        {s['rows']:,} ({s['rows_without_uid']:,} without uid skipped), "
               f"{s['rows_matched']:,} matched at least one concept")
    click.echo(f"concepts    {s['concepts']:,}, {s['concepts_matched']:,} matched; match sidecars "
               f"{s['match_sidecars_computed']} computed, {s['match_sidecars_reused']} reused")
    for out in res.outputs:
        d = out.result.description
        st = d["stats"]
        click.echo(f"t={out.t:<9g} kept {st['kept']:,} (expected {st['expected_kept']:,.1f}); "
                   f"{st['head_concepts']:,} head concepts above t; after --and/--not "
                   f"{out.result.count:,}")
        total = max(st["kept"], 1)
        click.echo("  by pool   " + ", ".join(f"{name} {n:,} ({100 * n / total:.1f}%)"
                                            for name, n in st["kept_by_pool"].items()))
        click.echo(f"  wrote     {out.result.output} (sha256 {out.result.npy_sha256[:12]}), "
                   f"{out.result.sidecar.name}, {out.counts_path.name}"
                   + (f", {out.plot_path.name}" if out.plot_path else "")
                   + (f", {out.kg_captions_path.name}" if out.kg_captions_path else ""))


@main.group("curate")
def curate_group() -> None:
    """Curate pools by the concepts their captions name (MetaCLIP, knowledge-graph entities)."""


@curate_group.command("metaclip")
@_POOLS_ARG
@click.option("--metadata", required=True, metavar="FILE|NAME",
              help="MetaCLIP metadata: a JSON list of strings (metadata.json) or a text file "
                   "with one entry per line; or a name in kg/ (shipped: sci_terms).")
@_common
def metaclip_cmd(pools, metadata, output, t, seed, text_columns, counts_file, and_files,
                 not_files, plot, workers, progress):
    """MetaCLIP's balancing over POOL... together: match entries (case-sensitive, MetaCLIP's
    spacing), count pairs per entry, keep a pair with probability 1 - prod(1 - t/max(count, t)).

    Examples:

      datacomp-sci curate metaclip commonpool pools/arxiv pools/pmc --metadata metadata.json
      --t 20000 -o metaclip.npy

      datacomp-sci curate metaclip pools/arxiv --metadata sci_terms --text-columns text,mentions
      --t 50,100,200 -o sweep.npy
    """
    from datacomp_sci.curation.curate import ConceptSource, resolve_source

    metadata = run_library(resolve_source, metadata, "metaclip")
    _run(pools, output, ConceptSource("metaclip", metadata), t, seed, text_columns, counts_file,
         and_files, not_files, plot, workers, progress)


@curate_group.command("entities")
@_POOLS_ARG
@click.option("--kg", required=True, metavar="FILE|NAME",
              help="Knowledge-graph entities, JSON lines (id, label, aliases, description, "
                   "types, sitelinks), e.g. from `kg fetch`; or a name in kg/ (shipped: "
                   "sci_concepts).")
@click.option("--casefold/--no-casefold", default=True, show_default=True,
              help="Match names case-insensitively (KG labels are lower-case, captions not).")
@click.option("--min-sitelinks", type=int, default=None,
              help="Only entities with at least this many Wikipedia sitelinks.")
@click.option("--types", default=None, metavar="TYPE[,TYPE...]",
              help="Only entities with one of these types (case-insensitive).")
@click.option("--kg-captions", is_flag=True,
              help="Also write OUTPUT.kg_captions.parquet: per kept pair, KG-derived texts "
                   "(alias swap, description, type) for `reshard --text-from kg_captions`.")
@_common
def entities_cmd(pools, kg, casefold, min_sitelinks, types, kg_captions, output, t, seed,
                 text_columns, counts_file, and_files, not_files, plot, workers, progress):
    """Entity-balanced curation (EntityNet): match entity labels and aliases, resolve hits to
    entities, balance per entity with --t as `curate metaclip` does.

    Example:

      datacomp-sci curate entities pools/arxiv pools/pmc --kg sci_concepts --t 100
      --kg-captions -o entities.npy
    """
    from datacomp_sci.curation.curate import ConceptSource, resolve_source

    kg = run_library(resolve_source, kg, "entities")
    type_list = tuple(x.strip() for x in (types or "").split(",") if x.strip())
    src = ConceptSource("entities", kg, casefold=casefold, min_sitelinks=min_sitelinks,
                        types=type_list)
    _run(pools, output, src, t, seed, text_columns, counts_file, and_files, not_files, plot,
         workers, progress, kg_captions=kg_captions)


@main.group("kg")
def kg_group() -> None:
    """Knowledge-graph entities for `curate entities`."""


@kg_group.command("fetch")
@click.option("--root", "roots", multiple=True, required=True, metavar="QID",
              help="Wikidata item whose subclasses (P279*) to fetch, e.g. Q11862 (repeatable).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Entities file to write (JSON lines: id, label, aliases, description, types, "
                   "sitelinks).")
@click.option("--endpoint", default="https://query.wikidata.org/sparql", show_default=True,
              help="SPARQL endpoint (Wikidata's, or a compatible one such as QLever's).")
@click.option("--min-sitelinks", type=int, default=None,
              help="Only entities with at least this many Wikipedia sitelinks.")
@click.option("--page-size", type=int, default=10000, show_default=True,
              help="Rows per request (LIMIT/OFFSET paging).")
@click.option("--retries", type=int, default=5, show_default=True,
              help="Retries of a failed request (connection errors, HTTP 429/5xx), with "
                   "exponential back-off.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for one answer.")
@progress_option("Show a progress bar.")
def kg_fetch_cmd(roots, output, endpoint, min_sitelinks, page_size, retries, timeout, progress):
    """Fetch the entities under the given roots from a Wikidata SPARQL endpoint
    (EntityNet-style: subclass-of* the roots, English label, aliases, description,
    sitelinks).

    Example:

      datacomp-sci kg fetch --root Q7239 --root Q11173 --min-sitelinks 5 -o kg/bio_chem.jsonl
    """
    from tqdm import tqdm

    from datacomp_sci.cli.app import UserError
    from datacomp_sci.curation.sparql import FetchOptions, fetch_entities

    bar = tqdm(desc="kg fetch", unit="row", unit_scale=True, dynamic_ncols=True,
               disable=not progress)
    opts = FetchOptions(endpoint=endpoint, page_size=page_size, min_sitelinks=min_sitelinks,
                        retries=retries, timeout_s=timeout,
                        on_page=lambda root, n: bar.update(n))
    try:
        res = run_library(fetch_entities, list(roots), output, opts)
    except ConnectionError as e:
        raise UserError(str(e)) from e
    finally:
        bar.close()
    click.echo(f"fetched     {res.entities:,} entities in {res.pages} pages ({res.retried} retries)")
    for root, n in res.per_root.items():
        click.echo(f"  {root:<10} {n:,} new")
    click.echo(f"wrote       {res.output}")
