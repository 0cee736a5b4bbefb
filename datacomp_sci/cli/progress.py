"""End-of-run summaries for the command line (the progress bars are in core/bars.py)."""

from __future__ import annotations

import click

from datacomp_sci.core.tables import format_table


def print_build_summary(result) -> None:
    r = result.report
    if result.already_complete:
        click.echo(f"{result.output}: already complete (same inputs and options); nothing to do.")
    lines = [
        f"pool        {result.output}",
        f"archives    {r['units']}",
        f"papers      {r['papers_seen']} seen, "
        f"{r.get('papers_with_latex') or r.get('papers_with_nxml') or 0} with LaTeX/JATS"
        + (f", {r['papers_lost_to_damage']} lost to archive damage"
           if r.get("papers_lost_to_damage") else ""),
        f"figures     {r['figures_found']} found, {r['pairs_extracted']} pairs extracted",
        f"written     {r['pairs_written']} pairs in {r['shards']} shards",
        f"skipped     {r['skipped_total']} (details: skipped.jsonl)",
    ]
    for stage, reasons in r["skipped"].items():
        top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
        lines.append(f"  {stage:<9} {top}")
    if not result.already_complete:
        lines.append(f"time        {result.elapsed_s:.1f} s")
    click.echo("\n".join(lines))


def print_table(columns: list[str], rows: list[tuple]) -> None:
    """A plain aligned text table (:func:`datacomp_sci.core.tables.format_table`)."""
    click.echo(format_table(columns, rows))
