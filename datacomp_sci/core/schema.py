"""The one place that defines what a datacomp-sci pool holds.

Three Arrow schemas (docs/formats.md, "Shard layout" and "CommonPool metadata"):

* ``METADATA_SCHEMA``: ``DIR/metadata/*.parquet``. CommonPool's columns first, in
  CommonPool's order and types, then ours. A DataComp filter that reads CommonPool
  metadata reads ours unchanged.
* ``SHARD_PARQUET_SCHEMA``: ``DIR/shards/{N:08d}.parquet``, img2dataset's per-shard
  parquet (the additional input column ``uid``, then ``caption``, ``url``, ``key``,
  ``status``, ``error_message``, ``width``, ``height``, ``original_width``,
  ``original_height``, ``exif``, ``sha256``), then ours.
* The per-sample ``.json`` in the tar carries exactly the shard-parquet fields, in the
  same order (``SHARD_JSON_FIELDS``).

The uid is the first 128 bits of ``sha256("{source}:{paper_id}:{figure_path}")`` as 32
lowercase hex characters (see :func:`datacomp_sci.core.uids.pair_uid`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

# --- CommonPool's metadata columns (docs/formats.md, "CommonPool metadata"), in its order ----------------
COMMONPOOL_FIELDS: list[pa.Field] = [
    pa.field("uid", pa.string()),
    pa.field("url", pa.string()),
    pa.field("text", pa.string()),
    pa.field("original_width", pa.int64()),
    pa.field("original_height", pa.int64()),
    pa.field("clip_b32_similarity_score", pa.float32()),
    pa.field("clip_l14_similarity_score", pa.float32()),
    pa.field("face_bboxes", pa.list_(pa.list_(pa.float64()))),
    pa.field("sha256", pa.string()),
]

# --- datacomp-sci's own columns, after CommonPool's -----------------------------------
SCI_FIELDS: list[pa.Field] = [
    pa.field("source", pa.string()),  # "arxiv" | "pmc"
    pa.field("paper_id", pa.string()),  # arXiv id ("2101.00001", "hep-th/9901001") or PMCID
    pa.field("figure_path", pa.string()),  # path of the image inside the paper's package
    pa.field("label", pa.string()),  # \label{...} key (LaTeX) or <label> text (JATS)
    pa.field("parent_caption", pa.string()),  # the figure's caption when this is a sub-figure
    pa.field("mentions", pa.list_(pa.string())),  # body sentences that reference the figure
    pa.field("license", pa.string()),  # licence URL or statement; null when the source has none
    pa.field("caption_length", pa.int64()),  # len(text) in characters
    pa.field("image_format", pa.string()),  # format of the original figure file: png, jpeg, pdf, eps...
    pa.field("shard", pa.int64()),  # shard number N of DIR/shards/{N:08d}.tar
    pa.field("key", pa.string()),  # img2dataset key of the sample in that shard
]

METADATA_SCHEMA = pa.schema(COMMONPOOL_FIELDS + SCI_FIELDS)
COMMONPOOL_SCHEMA = pa.schema(COMMONPOOL_FIELDS)

# --- img2dataset per-shard parquet / per-sample json (docs/formats.md, "Shard layout") -----------
IMG2DATASET_FIELDS: list[pa.Field] = [
    pa.field("uid", pa.string()),  # DataComp's save_additional_columns=["uid"]
    pa.field("caption", pa.string()),
    pa.field("url", pa.string()),
    pa.field("key", pa.string()),
    pa.field("status", pa.string()),
    pa.field("error_message", pa.string()),
    pa.field("width", pa.int32()),  # int32, as img2dataset's downloader declares them
    pa.field("height", pa.int32()),
    pa.field("original_width", pa.int32()),
    pa.field("original_height", pa.int32()),
    pa.field("exif", pa.string()),
    pa.field("sha256", pa.string()),
]
# Our fields appended to each sample's json / shard parquet (not shard/key, already there).
SHARD_EXTRA_FIELDS: list[pa.Field] = [
    f for f in SCI_FIELDS if f.name not in ("shard", "key", "caption_length")
]
SHARD_PARQUET_SCHEMA = pa.schema(IMG2DATASET_FIELDS + SHARD_EXTRA_FIELDS)
SHARD_JSON_FIELDS: list[str] = SHARD_PARQUET_SCHEMA.names

SOURCES = ("arxiv", "pmc")


@dataclass
class FigurePair:
    """One figure-caption pair as an extractor finds it (before the image is encoded).

    ``figure_path`` is the path of the image file inside the paper's package, POSIX
    separators, no leading ``./``. ``caption`` is plain Unicode text.
    """

    figure_path: str
    caption: str
    label: str | None = None
    parent_caption: str | None = None
    mentions: list[str] = field(default_factory=list)
    # the figure element's id (JATS <fig id>), used for the figure's public URL
    anchor: str | None = None
    # which page of a multi-page file (PDF) is the figure, 1-based; pages after the first
    # are part of the figure's identity: figure_path is "<file>#page=N"
    page: int = 1
    # the part of the page to keep (\includegraphics' clip): ("viewport", llx, lly, urx,
    # ury) from the page's lower-left corner or ("trim", left, bottom, right, top), in bp
    clip: tuple[str, float, float, float, float] | None = None

    @property
    def file_path(self) -> str:
        """The file inside the package (``figure_path`` without its ``#page=N``)."""
        suffix = f"#page={self.page}"
        if self.page > 1 and self.figure_path.endswith(suffix):
            return self.figure_path[:-len(suffix)]
        return self.figure_path


@dataclass
class PaperPairs:
    """What an extractor returns for one paper."""

    paper_id: str
    pairs: list[FigurePair]
    license: str | None = None
    # reason -> count of things skipped inside this paper (e.g. "multi_graphic_no_subcaption")
    skipped: dict[str, int] = field(default_factory=dict)
    # figures found in the source, whether or not they became pairs
    figures_found: int = 0
    # individual skipped items (figure path or label, reason, detail) for skipped.jsonl
    skipped_items: list[dict] = field(default_factory=list)

    def skip(self, reason: str, item: str | None = None, detail: str | None = None) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.skipped_items.append({"item": item, "reason": reason, "detail": detail})
