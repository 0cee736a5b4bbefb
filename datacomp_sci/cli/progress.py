"""Progress bars and end-of-run summaries for the command line (tqdm, plain text)."""

from __future__ import annotations

import click
from tqdm import tqdm

from datacomp_sci.core.tables import format_table


class BuildProgress:
    """A bar over input archives showing papers and pairs, with rate and ETA."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def start(self, units) -> None:
        if self.enabled:
            self.bar = tqdm(total=len(units), unit="archive", dynamic_ncols=True,
                            desc="build-pool")

    def update(self, done: int, totals: dict) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix(papers=totals["papers"], pairs=totals["pairs"], refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
