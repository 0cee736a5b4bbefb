"""tqdm progress bars for the library's progress callbacks, shared by the command line and
the pipeline (``experiment``/``demo`` show each step's own bars through them)."""

from __future__ import annotations

from collections.abc import Callable


def subset_hooks(enabled: bool) -> tuple[dict[str, Callable], dict]:
    """``RunOptions`` callbacks of filter/dedup driving tqdm bars (created lazily; close
    the returned ``bars`` when done)."""
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


class ReshardBar:
    """The ``progress`` callback of :func:`datacomp_sci.resharding.reshard.reshard`: input
    shards done, samples read and written."""

    def __init__(self, enabled: bool = True, desc: str = "reshard"):
        from tqdm import tqdm

        self.bar = tqdm(unit="shard", desc=desc, disable=not enabled, dynamic_ncols=True)

    def __call__(self, done: int, total: int, totals: dict) -> None:
        self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix(read=totals.get("processed", 0), written=totals.get("written", 0),
                             refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class BuildBar:
    """The ``on_units``/``progress`` callbacks of :func:`datacomp_sci.pool.build.build_pool`:
    input archives done, papers and pairs so far."""

    def __init__(self, enabled: bool = True, desc: str = "build-pool"):
        self.enabled, self.desc = enabled, desc
        self.bar = None

    def start(self, units) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(units), unit="archive", dynamic_ncols=True, desc=self.desc)

    def update(self, done: int, totals: dict) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix(papers=totals["papers"], pairs=totals["pairs"], refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EmbedBar:
    """The ``on_total``/``on_images`` callbacks of
    :func:`datacomp_sci.annotate.embed.embed_pools`: rows annotated of those left to do
    (known before the first model loads), so the bar has a rate and an ETA."""

    def __init__(self, enabled: bool = True, desc: str = "embed"):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit="img", dynamic_ncols=True, disable=not enabled,
                        unit_scale=True)

    def total(self, n: int) -> None:
        self.bar.total = n
        self.bar.refresh()

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
