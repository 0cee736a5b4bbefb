"""``datacomp-sci embed``: CLIP embeddings and similarity scores, as CommonPool ships them.

For every metadata file ``DIR/metadata/{stem}.parquet`` of a pool this writes
``DIR/metadata/{stem}.npz`` with ``b32_img``, ``b32_txt`` (n x 512) and ``l14_img``,
``l14_txt`` (n x 768), float16, row i = parquet row i, and fills
``clip_b32_similarity_score`` / ``clip_l14_similarity_score`` (float32, the plain cosine
of the two L2-normalised features) in the parquet itself, rewritten atomically with its
schema unchanged (docs/formats.md, "Model-derived metadata").

* Models: OpenCLIP ``ViT-B-32`` and ``ViT-L-14`` with ``pretrained="openai"`` (QuickGELU,
  OpenAI preprocessing: shortest side to 224 bicubic, centre crop 224, OpenAI mean/std;
  text tokenised to 77 tokens, truncated) or a local checkpoint file (the offline path;
  for the two default architectures a local file is taken to hold OpenAI's weights and
  gets QuickGELU too). Any other OpenCLIP model name can stand in (``--b32-model``:
  tests and the demo use the tiny model), each slot keeping its npz key names.
* Images come from the pool's shards by uid (:mod:`.shardimages`), texts from ``text``
  (NULL reads as ""). A row whose uid has no image in the shards, or whose image does
  not decode, gets an all-zero image embedding and a NULL score (counted).
* Resumable per metadata file: ``pool.json`` (created when absent) records under
  ``embeddings`` the weights of each slot (``arch``, ``pretrained`` tag or file name,
  its sha256) and each finished file; a finished file is not recomputed. A metadata file
  that already has both arrays of a slot in its npz and a full score column, and that
  ``pool.json`` does not list (a CommonPool download), is kept unless ``overwrite``.
  Other weights than the recorded ones are refused unless ``overwrite``.
* Deterministic: the batches are the same whatever the number of decoding workers.
* ``faces`` (with or without the CLIP slots): the ``face_bboxes`` column, from insightface's
  SCRFD with dataset2metadata's settings (:mod:`.faces`); recorded, resumed, kept for a
  download and refused with other weights exactly as a CLIP slot is.
* A pool on object storage (``s3://bucket/pool``: ``metadata/``, ``shards/``,
  ``pool.json``): its metadata files and ``pool.json`` are copied to a temp folder of
  this machine, images are read from the shards there by ranged reads, and each
  finished file is uploaded whole (npz, sidecars, parquet), then ``pool.json`` recording
  it: a killed run resumes from the ``pool.json`` on object storage. On an engine, each
  task fetches its file, writes it and uploads it itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.annotate import faces as face_det
from datacomp_sci.annotate.shardimages import (
    DecodedImages,
    ImageIndex,
    ImageReader,
    pool_image_index,
)
from datacomp_sci.core.storage import Location, is_url, output_location
from datacomp_sci.core.util import (
    atomic_open,
    atomic_write_json,
    remove_stale_temps,
    sha256_file,
)
from datacomp_sci.engines import Engine, EngineOptions, TaskFailed, engine_session
from datacomp_sci.pool.pools import (
    SIDECAR_KINDS,
    Pool,
    discover_pools,
    sidecar_fresh,
    sidecar_metadata,
    sidecar_path,
)

SLOTS = ("b32", "l14")
FACES = "faces"
ALL_SLOTS = (*SLOTS, FACES)
DEFAULT_ARCH = {"b32": "ViT-B-32", "l14": "ViT-L-14"}
SCORE_COLUMN = {"b32": "clip_b32_similarity_score", "l14": "clip_l14_similarity_score"}
_OPENAI_ARCHS = ("ViT-B-32", "ViT-L-14")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ModelChoice:
    """Which network fills one slot (``b32`` or ``l14``)."""

    slot: str
    arch: str
    pretrained: str  # an OpenCLIP pretrained tag, or a local checkpoint (faces: .onnx) file


@dataclass
class EmbedOptions:
    models: tuple[str, ...] = SLOTS
    archs: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ARCH))
    pretrained: dict[str, str] = field(default_factory=lambda: {s: "openai" for s in SLOTS})
    faces_weights: str | None = None  # an SCRFD .onnx file; None: insightface's buffalo_l
    device: str = "auto"
    precision: str | None = None  # fp16 | fp32; None: fp16 on cuda, fp32 on cpu
    batch_size: int = 256
    workers: int = 4  # image decoding processes (0: in the main process)
    overwrite: bool = False
    storage_options: dict = field(default_factory=dict)  # pools on object storage (--storage-option)
    on_images: Callable[[int], None] | None = None
    on_total: Callable[[int], None] | None = None  # rows to annotate, known before any work
    on_file: Callable[[str, str], None] | None = None  # (file, "embedded"|"kept"|"done")
    # None or local: files one after the other in this process; ray: one task per file,
    # each on a GPU (num_gpus=1) when the device is cuda, else on a CPU slot
    engine: EngineOptions | None = None


@dataclass
class FileReport:
    pool: str
    file: str
    rows: int
    action: str  # embedded | done (earlier run) | kept (existing embeddings)
    slots: list[str] = field(default_factory=list)
    no_image: int = 0
    undecodable: int = 0
    faces: int | None = None  # boxes found (faces detected in this run)
    images_with_faces: int | None = None


@dataclass
class EmbedResult:
    files: list[FileReport]
    models: dict[str, dict]
    device: str
    precision: str
    images: int = 0
    seconds: float = 0.0
    damaged_shards: list[str] = field(default_factory=list)

    @property
    def faces_found(self) -> int | None:
        """Boxes found in this run's files; None when no file had its faces detected."""
        counts = [f.faces for f in self.files if f.faces is not None]
        return sum(counts) if counts else None

    @property
    def images_with_faces(self) -> int:
        return sum(f.images_with_faces or 0 for f in self.files)


# --- weights ------------------------------------------------------------------------------
def weights_identity(choice: ModelChoice) -> dict[str, Any]:
    """What pool.json records for a slot: arch, the tag or file name, the file's sha256
    (for faces, the detector's settings too)."""
    path = Path(choice.pretrained).expanduser()
    if choice.slot == FACES:
        return face_det.weights_identity(path)
    if path.is_file():
        return {"arch": choice.arch, "pretrained": path.name, "sha256": sha256_file(path)}
    return {"arch": choice.arch, "pretrained": choice.pretrained, "sha256": None}


def _offline_message(choice: ModelChoice, err: Exception) -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover
        HF_HUB_CACHE = "~/.cache/huggingface/hub"
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"cannot load {choice.arch} weights {choice.pretrained!r} ({first[:160]}): without "
            f"network, put them in OpenCLIP's cache ({HF_HUB_CACHE}) or pass "
            f"--{choice.slot}-pretrained PATH to a local checkpoint file")


def resolve_weights(choice: ModelChoice) -> tuple[str, dict[str, Any]]:
    """The checkpoint file for a slot (a local file as given; a tag's file from OpenCLIP's
    cache, downloaded when missing) and the model options it needs. Cheap checks first:
    an unknown model or tag, or missing weights without network, fail before any model is
    built."""
    if choice.slot == FACES:
        return str(face_det.resolve_weights(choice.pretrained)), {}
    import open_clip

    from datacomp_sci.core.models import register_models

    register_models()
    if choice.arch not in open_clip.list_models():
        raise ValueError(f"--{choice.slot}-model {choice.arch!r} is not an OpenCLIP model name")
    path = Path(choice.pretrained).expanduser()
    if path.is_file():
        # a local file for the default architectures holds OpenAI's weights (QuickGELU)
        return str(path), {"force_quick_gelu": True} if choice.arch in _OPENAI_ARCHS else {}
    tags = open_clip.list_pretrained_tags_by_model(choice.arch)
    if choice.pretrained not in tags:
        raise ValueError(
            f"--{choice.slot}-pretrained {choice.pretrained!r} is neither a file nor an "
            f"OpenCLIP tag of {choice.arch} ({', '.join(tags) or 'none'})")
    cfg = open_clip.get_pretrained_cfg(choice.arch, choice.pretrained)
    try:
        file = open_clip.pretrained.download_pretrained(cfg)
    except Exception as e:  # huggingface_hub / urllib errors differ by version and cause
        raise ValueError(_offline_message(choice, e)) from e
    if not file:
        raise ValueError(_offline_message(choice, FileNotFoundError("no weights file")))
    return file, {"force_quick_gelu": bool(cfg.get("quick_gelu", False))}


def load_model(choice: ModelChoice, device: str, precision: str):
    """(model in eval mode, image preprocess, tokenizer) for a slot, through OpenCLIP; for
    faces, (insightface's SCRFD detector, None, None)."""
    if choice.slot == FACES:
        return face_det.load_detector(choice.pretrained, device), None, None
    import open_clip

    file, kwargs = resolve_weights(choice)
    pretrained = Path(choice.pretrained).expanduser()
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            choice.arch, pretrained=str(pretrained) if pretrained.is_file()
            else choice.pretrained, device=device,
            precision="fp16" if precision == "fp16" else "fp32", **kwargs)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise ValueError(f"cannot load {file} into {choice.arch}: "
                         f"{(str(e).splitlines() or [type(e).__name__])[0][:200]}") from e
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(choice.arch)


# --- npz and parquet ------------------------------------------------------------------------
def npz_path(metadata_file: Path) -> Path:
    return metadata_file.with_suffix(".npz")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return {}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``np.load``-able npz (arrays in name order, fixed timestamps: same arrays, same
    bytes), written atomically."""
    with atomic_open(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]),
                                      allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def face_bboxes_array(boxes: list) -> pa.Array:
    """``face_bboxes`` values (a list of [x1, y1, x2, y2] per row, None for NULL) as the
    column's Arrow type, list<list<float64>>."""
    return pa.array(boxes, pa.list_(pa.list_(pa.float64())))


def rewrite_columns(metadata_file: Path, columns: dict[str, pa.Array]) -> None:
    """Replace (or append) columns of a metadata parquet; the schema, its metadata and the
    compression stay as they were. Fresh sidecars stay fresh: the rows did not change."""
    pf = pq.ParquetFile(metadata_file)
    table = pf.read()
    compression = "zstd"
    if pf.metadata.num_row_groups and pf.metadata.num_columns:
        compression = pf.metadata.row_group(0).column(0).compression.lower()
    fresh = [k for k in SIDECAR_KINDS if sidecar_fresh(metadata_file, k)]
    for col, arr in columns.items():
        i = table.schema.get_field_index(col)
        if i < 0:
            table = table.append_column(pa.field(col, arr.type), arr)
        else:
            table = table.set_column(i, table.schema.field(i), arr.cast(table.schema.field(i).type))
    with atomic_open(metadata_file) as f:
        pq.write_table(table, f, compression=compression)
    for kind in fresh:  # the sidecar still describes these rows: point it at the new file
        side = sidecar_path(metadata_file, kind)
        t = pq.read_table(side)
        t = t.replace_schema_metadata({**(t.schema.metadata or {}),
                                       **sidecar_metadata(metadata_file)})
        with atomic_open(side) as f:
            pq.write_table(t, f, compression="zstd")


# --- the data path --------------------------------------------------------------------------
class _ClipInput:
    """The ``convert`` of :class:`~.shardimages.DecodedImages` for a CLIP pass: the image
    preprocessed for the model and, with ``faces``, prepared for the face detector too
    (from the same decode)."""

    def __init__(self, transform, faces: bool):
        self.transform, self.faces = transform, faces

    def __call__(self, img):
        return self.transform(img), face_det.prepare(img) if self.faces else None


class _Collate:
    """A batch of a CLIP pass: (image tensors, all-zero for rows without a decoded
    image; face-detector inputs or None; status per row)."""

    def __init__(self, shape: tuple[int, int, int]):
        self.shape = shape

    def __call__(self, batch):
        import torch

        zeros = torch.zeros(self.shape)
        return (torch.stack([v[0] if v is not None else zeros for v, _ in batch]),
                [v[1] if v is not None else None for v, _ in batch],
                np.array([code for _, code in batch], np.int8))


def _shape_of(transform) -> tuple[int, int, int]:
    from PIL import Image

    return tuple(transform(Image.new("RGB", (8, 8))).shape)


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device cpu)")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cuda or cpu (got {device!r})")
    return device


def _encode_file(rows_loc, texts: list[str], models: dict[str, tuple], reader: ImageReader,
                 opts: EmbedOptions, device: str, precision: str, detector=None
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, list | None]:
    """Features of one file's rows for each CLIP slot in ``models``; image status per row
    (0 no image, 1 ok, 2 undecodable); with a face ``detector``, the rows' face boxes
    (None where there is no image), from the images decoded for the first slot. Progress
    (``on_images``) counts the rows of that first decoding pass."""
    import torch
    from torch.utils.data import DataLoader

    shard, offset, size = rows_loc
    n = len(texts)
    # slots whose preprocessing is the same share one decoding pass
    groups: dict[str, list[str]] = {}
    for slot, (_m, pre, _t) in models.items():
        groups.setdefault(repr(pre), []).append(slot)
    out: dict[str, np.ndarray] = {}
    status = np.zeros(n, np.int8)
    boxes: list | None = [] if detector is not None else None
    dtype = torch.float16 if precision == "fp16" else torch.float32
    for g, slots in enumerate(groups.values()):
        pre = models[slots[0]][1]
        convert = _ClipInput(pre, faces=g == 0 and detector is not None)
        loader = DataLoader(DecodedImages(reader, shard, offset, size, convert),
                            batch_size=opts.batch_size, shuffle=False,
                            num_workers=opts.workers, pin_memory=device == "cuda",
                            collate_fn=_Collate(_shape_of(pre)), persistent_workers=False)
        feats = {s: [] for s in slots}
        start = 0
        with torch.inference_mode():
            for images, prepared, codes in loader:
                b = len(codes)
                status[start:start + b] = codes
                x = images.to(device, non_blocking=True).to(dtype)
                for s in slots:
                    f = models[s][0].encode_image(x).float()
                    feats[s].append(torch.nn.functional.normalize(f, dim=-1).cpu().numpy())
                if convert.faces:
                    boxes.extend(face_det.detect(detector, p)[0] if p is not None else None
                                 for p in prepared)
                if opts.on_images and g == 0:
                    opts.on_images(b)
                start += b
        for s in slots:
            img = np.concatenate(feats[s]) if feats[s] else np.zeros((0, 0), np.float32)
            img[status == 0] = 0.0
            img[status == 2] = 0.0
            out[f"{s}_img"] = img
    with torch.inference_mode():
        for slot, (model, _pre, tok) in models.items():
            parts = []
            for i in range(0, n, opts.batch_size):
                t = tok(texts[i:i + opts.batch_size]).to(device)
                f = model.encode_text(t).float()
                parts.append(torch.nn.functional.normalize(f, dim=-1).cpu().numpy())
            out[f"{slot}_txt"] = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return out, status, boxes


# --- the run -------------------------------------------------------------------------------
def _load_pool_json(pool: Pool) -> dict:
    path = pool.root / "pool.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def _check_weights(pool: Pool, record: dict, ident: dict[str, dict], overwrite: bool) -> None:
    for slot, want in ident.items():
        have = record.get("models", {}).get(slot)
        if have is not None and have != want and not overwrite:
            raise FileExistsError(
                f"pool {pool.name} ({pool.root}) was embedded with other {slot} weights "
                f"({have['arch']} {have['pretrained']}): pass --overwrite to recompute it with "
                f"{want['arch']} {want['pretrained']}")


def _existing_complete(pool: Pool, meta: Path, slot: str, rows: int) -> bool:
    """True when the file already has both arrays of ``slot`` and a full score column
    (faces: boxes that came with a download)."""
    if slot == FACES:
        return face_det.has_upstream_boxes(pool, meta)
    arrays = read_npz(npz_path(meta))
    if any(k not in arrays or len(arrays[k]) != rows for k in (f"{slot}_img", f"{slot}_txt")):
        return False
    schema = pq.read_schema(meta)
    col = SCORE_COLUMN[slot]
    if col not in schema.names:
        return False
    return pq.read_table(meta, columns=[col]).column(col).null_count == 0


def embed_pools(pool_paths: list[str | Path], opts: EmbedOptions) -> EmbedResult:
    """Embed every metadata file of the pools (see the module docstring)."""
    for slot in opts.models:
        if slot not in ALL_SLOTS:
            raise ValueError(f"--models takes b32, l14 and/or faces (got {slot!r})")
    if not opts.models:
        raise ValueError("--models: give one or more of b32, l14, faces")
    if opts.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1 (got {opts.batch_size})")
    choices = {s: ModelChoice(s, opts.archs[s], opts.pretrained[s])
               for s in opts.models if s != FACES}
    if FACES in opts.models:  # the file first: its sha256 is the weights' identity
        choices[FACES] = ModelChoice(FACES, face_det.DETECTOR,
                                     str(face_det.resolve_weights(opts.faces_weights)))
    ident = {s: weights_identity(c) for s, c in choices.items()}
    for c in choices.values():  # unknown names, missing weights: fail before any work
        resolve_weights(c)
    with contextlib.ExitStack() as stack:
        remotes: dict[Path, _Remote] = {}
        local_paths: list[str | Path] = []
        for p in pool_paths:
            if not is_url(p):
                local_paths.append(p)
                continue
            stage = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="datacomp-sci-embed-")))
            remote = _stage_pool(str(p), stage, opts.storage_options)
            remotes[remote.stage.resolve()] = remote
            local_paths.append(remote.stage)
        return _embed_pools(discover_pools(local_paths), choices, ident, opts, remotes)


def _embed_pools(pools: list[Pool], choices: dict[str, ModelChoice], ident: dict[str, dict],
                 opts: EmbedOptions, remotes: dict[Path, _Remote]) -> EmbedResult:
    for pool in pools:  # refuse before computing anything
        if pool.root in remotes:
            if not remotes[pool.root].shards:
                raise FileNotFoundError(
                    f"pool {pool.name} ({remotes[pool.root].loc}) has no shards/*.tar with its "
                    "images: download them first (datacomp-sci download-pool)")
        elif not pool.shards_dir.is_dir():
            raise FileNotFoundError(
                f"pool {pool.name} ({pool.root}) has no shards/ folder with its images: "
                "download them first (datacomp-sci download-pool)")
        _check_weights(pool, _load_pool_json(pool).get("embeddings", {}), ident, opts.overwrite)
    on_engine = opts.engine is not None and opts.engine.name != "local"
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(engine_session(opts.engine)) if on_engine else None
        return _embed_all(pools, choices, ident, opts, engine, remotes)


# --- pools on object storage ------------------------------------------------------------------
@dataclass(frozen=True)
class _Remote:
    """A pool on object storage and its local copy (metadata files, pool.json)."""

    loc: Location
    stage: Path
    shards: tuple[str, ...]  # URLs of its shards/*.tar, sorted


def _stage_pool(url: str, tmp: Path, storage_options: dict | None = None) -> _Remote:
    """Copy a remote pool's ``pool.json``, ``metadata/`` and ``sidecars/`` files into
    ``tmp/<its name>``; its shards stay where they are."""
    loc = output_location(url, storage_options)
    stage = tmp / url.rstrip("/").rsplit("/", 1)[-1]
    for sub in ("metadata", "sidecars"):
        for name in loc.listdir(sub):
            if name.endswith((".parquet", ".npz")):
                with atomic_open(stage / sub / name, fsync=False) as f:
                    f.write(loc.read_bytes(f"{sub}/{name}"))
    if not (stage / "metadata").is_dir():
        raise FileNotFoundError(f"{url} holds no metadata/*.parquet: give a pool (run "
                                "`datacomp-sci build-pool` or `download-pool` first)")
    if loc.is_file("pool.json"):
        (stage / "pool.json").write_bytes(loc.read_bytes("pool.json"))
    shards = tuple(loc.join("shards", n) for n in loc.listdir("shards") if n.endswith(".tar"))
    return _Remote(loc, stage.resolve(), shards)


def _publish(remote: _Remote | None, meta: Path) -> None:
    """Upload one written metadata file, whole: its npz and fresh sidecars, then itself."""
    if remote is None:
        return
    rel = meta.relative_to(remote.stage)
    if npz_path(meta).exists():  # (faces alone write no npz)
        remote.loc.put_file(npz_path(meta), str(rel.with_suffix(".npz")))
    for kind in SIDECAR_KINDS:
        side = sidecar_path(meta, kind)
        if side.exists():
            remote.loc.put_file(side, str(side.relative_to(remote.stage)))
    remote.loc.put_file(meta, str(rel))


def _save_pool_json(pool: Pool, info: dict, remote: _Remote | None) -> None:
    atomic_write_json(pool.root / "pool.json", info)
    if remote is not None:
        remote.loc.put_file(pool.root / "pool.json", "pool.json")


def _embed_all(pools: list[Pool], choices: dict[str, ModelChoice], ident: dict[str, dict],
               opts: EmbedOptions, engine: Engine | None,
               remotes: dict[Path, _Remote] | None = None) -> EmbedResult:
    import time

    if engine is not None:  # the workers' devices count, not this machine's
        device = opts.device
        if device == "auto":
            device = "cuda" if getattr(engine, "gpus", 0) > 0 else "cpu"
        if device not in ("cpu", "cuda"):
            raise ValueError(f"--device must be auto, cuda or cpu (got {device!r})")
    else:
        device = _device(opts.device)
    precision = opts.precision or ("fp16" if device == "cuda" else "fp32")
    if precision not in ("fp16", "fp32"):
        raise ValueError(f"--precision must be fp16 or fp32 (got {precision!r})")
    if precision == "fp16" and device == "cpu":
        raise ValueError("--precision fp16 needs a CUDA device; use fp32 on the CPU")
    loaded: dict[str, tuple] = {}
    result = EmbedResult([], ident, device, precision)
    t0 = time.perf_counter()
    plans = [_plan_pool(pool, choices, ident, opts, (remotes or {}).get(pool.root))
             for pool in pools]
    if opts.on_total:
        opts.on_total(sum(f.rows for plan in plans for f in plan.files if f.todo))
    for plan in plans:
        if engine is None:
            _embed_pool(plan, choices, ident, loaded, opts, device, precision, result)
        else:
            _embed_pool_on_engine(plan, choices, ident, opts, device, precision, result, engine)
    result.seconds = time.perf_counter() - t0
    return result


@dataclass
class _FilePlan:
    meta: Path
    rows: int
    todo: list[str]  # slots to compute
    prior: list[str]  # slots already done in this file, kept
    kept: list[str]  # slots kept from a download (nothing to do)


@dataclass
class _PoolPlan:
    pool: Pool
    info: dict  # pool.json, its "embeddings" record updated as files finish
    files: list[_FilePlan]
    remote: _Remote | None = None

    @property
    def record(self) -> dict:
        return self.info["embeddings"]


def _plan_pool(pool: Pool, choices: dict[str, ModelChoice], ident: dict[str, dict],
               opts: EmbedOptions, remote: _Remote | None) -> _PoolPlan:
    """What is left to do in one pool, from its ``pool.json`` (nothing is written but
    the removal of a killed run's temp files)."""
    remove_stale_temps(pool.root / "metadata")
    info = _load_pool_json(pool)
    record = info.setdefault("embeddings", {"models": {}, "files": {}})
    record.setdefault("models", {})
    record.setdefault("files", {})
    if opts.overwrite:  # slots recomputed: earlier records of them no longer hold
        for slot in choices:
            if record["models"].get(slot) != ident[slot]:
                for f in record["files"].values():
                    if slot in f.get("slots", []):
                        f["slots"].remove(slot)
    files = [_plan_file(pool, meta, record, choices, opts) for meta in pool.metadata_files]
    return _PoolPlan(pool, info, files, remote)


def _report_unchanged(plan: _PoolPlan, f: _FilePlan, result: EmbedResult,
                      opts: EmbedOptions) -> None:
    action = "kept" if f.kept else "done"
    result.files.append(FileReport(plan.pool.name, str(f.meta), f.rows, action, f.kept))
    if opts.on_file:
        opts.on_file(str(f.meta), action)


def _plan_file(pool: Pool, meta: Path, record: dict, choices: dict[str, ModelChoice],
               opts: EmbedOptions) -> _FilePlan:
    """What is left to do in one metadata file, from its ``pool.json`` record."""
    stem = meta.stem
    rows = pq.ParquetFile(meta).metadata.num_rows
    done = record["files"].get(stem, {})
    todo, kept = [], []
    for slot in choices:
        if done.get("state") == "done" and slot in done.get("slots", []) \
                and done.get("rows") == rows and not opts.overwrite:
            continue
        if stem not in record["files"] and not opts.overwrite \
                and _existing_complete(pool, meta, slot, rows):
            kept.append(slot)
            continue
        todo.append(slot)
    prior = [s for s in done.get("slots", []) if s not in todo]
    return _FilePlan(meta, rows, todo, prior, kept)


def _annotate_file(rows_loc, texts: list[str], models: dict[str, tuple], reader: ImageReader,
                   opts: EmbedOptions, device: str, precision: str):
    """(CLIP features, face boxes or None, image status per row) of one file's rows for
    the slots in ``models``; each image is decoded once for the CLIP slots and the face
    detector together (once per distinct CLIP preprocessing)."""
    clip = {s: m for s, m in models.items() if s != FACES}
    detector = models[FACES][0] if FACES in models else None
    if clip:
        feats, status, boxes = _encode_file(rows_loc, texts, clip, reader, opts, device,
                                            precision, detector)
        return feats, boxes, status
    boxes, status = face_det.detect_rows(rows_loc, reader, detector, opts.batch_size,
                                         opts.workers, opts.on_images)
    return {}, boxes, status


def _write_file(meta: Path, rows: int, todo: list[str], feats: dict[str, np.ndarray],
                status: np.ndarray, boxes: list | None = None) -> None:
    """The npz arrays, score columns and face boxes of one metadata file (one parquet
    rewrite), from its features and boxes."""
    columns: dict[str, pa.Array] = {}
    if boxes is not None:
        columns[face_det.COLUMN] = face_bboxes_array(boxes)
    clip = [s for s in todo if s != FACES]
    if not clip:
        rewrite_columns(meta, columns)
        return
    arrays = read_npz(npz_path(meta))
    arrays = {k: v for k, v in arrays.items() if len(v) == rows}
    for slot in clip:
        img, txt = feats[f"{slot}_img"], feats[f"{slot}_txt"]
        s = np.einsum("ij,ij->i", img, txt, dtype=np.float32).astype(np.float32)
        s[status != 1] = np.nan
        columns[SCORE_COLUMN[slot]] = pa.array(s, pa.float32(), mask=np.isnan(s))
        arrays[f"{slot}_img"] = img.astype(np.float16)
        arrays[f"{slot}_txt"] = txt.astype(np.float16)
    write_npz(npz_path(meta), arrays)
    rewrite_columns(meta, columns)


def _embed_pool(plan: _PoolPlan, choices: dict[str, ModelChoice], ident: dict[str, dict],
                loaded: dict[str, tuple], opts: EmbedOptions, device: str, precision: str,
                result: EmbedResult) -> None:
    pool, info, record, remote = plan.pool, plan.info, plan.record, plan.remote
    index: ImageIndex | None = None
    reader: ImageReader | None = None
    try:
        for f in plan.files:
            if not f.todo:
                _report_unchanged(plan, f, result, opts)
                continue
            if index is None:
                index = pool_image_index(remote.shards if remote else pool.shards_dir,
                                         workers=max(1, opts.workers),
                                         storage_options=opts.storage_options)
                result.damaged_shards += index.damaged
                reader = ImageReader(index.shards, opts.storage_options)
            for slot in f.todo:
                if slot not in loaded:
                    loaded[slot] = load_model(choices[slot], device, precision)
            table = pq.read_table(f.meta, columns=["uid", "text"])
            uids = table.column("uid").to_pylist()
            texts = [t or "" for t in table.column("text").to_pylist()]
            loc = index.locate(uids)
            # mark the file as being rewritten before touching it (a kill in between
            # must not leave it looking like someone else's finished embeddings)
            record["files"][f.meta.stem] = {"state": "writing", "rows": f.rows,
                                            "slots": f.prior}
            _save_pool_json(pool, info, remote)
            feats, boxes, status = _annotate_file(loc, texts, {s: loaded[s] for s in f.todo},
                                                  reader, opts, device, precision)
            _write_file(f.meta, f.rows, f.todo, feats, status, boxes)
            _publish(remote, f.meta)
            _record_done(pool, info, record, result, f.meta, f.rows, f.todo, f.prior,
                         (status, _face_counts(boxes)), ident, opts, remote)
    finally:
        if reader is not None:
            with contextlib.suppress(OSError):
                reader.close()


# --- on an engine (Ray): one task per metadata file -------------------------------------------
_LOADED: dict[tuple, tuple] = {}  # per worker process: models stay loaded between files


def _embed_file_task(args: tuple) -> tuple[np.ndarray, tuple[int, int] | None]:
    """One metadata file on an engine worker: load the slots' models (once per worker
    process), encode the rows, write the npz, the scores and the face boxes exactly as
    the local path does; returns the image status per row and the face counts. For a pool
    on object storage (``remote``) the task fetches the file (and what belongs to it),
    writes it in a temp folder and uploads it."""
    meta, rows, todo, choices, opts, device, precision, loc, shards, remote = args
    if remote is not None:
        with tempfile.TemporaryDirectory(prefix="datacomp-sci-embed-") as tmp:
            rel = Path(meta).relative_to(remote.stage)
            staged = _Remote(remote.loc, Path(tmp), remote.shards)
            names = [str(rel), str(rel.with_suffix(".npz"))] + \
                [str(sidecar_path(rel, k)) for k in SIDECAR_KINDS]
            for name in names:
                if staged.loc.is_file(name):
                    with atomic_open(staged.stage / name, fsync=False) as f:
                        f.write(staged.loc.read_bytes(name))
            local = staged.stage / rel
            outcome = _embed_file_task((str(local), rows, todo, choices, opts, device,
                                        precision, loc, shards, None))
            _publish(staged, local)
            return outcome
    models = {}
    for slot in todo:
        key = (choices[slot], device, precision)
        if key not in _LOADED:
            _LOADED[key] = load_model(choices[slot], device, precision)
        models[slot] = _LOADED[key]
    texts = [t or "" for t in pq.read_table(meta, columns=["text"]).column("text").to_pylist()]
    reader = ImageReader(shards, opts.storage_options)
    try:
        feats, boxes, status = _annotate_file(loc, texts, models, reader, opts, device,
                                              precision)
    finally:
        with contextlib.suppress(OSError):
            reader.close()
    _write_file(Path(meta), rows, todo, feats, status, boxes)
    return status, _face_counts(boxes)


def _embed_pool_on_engine(plan: _PoolPlan, choices: dict[str, ModelChoice],
                          ident: dict[str, dict], opts: EmbedOptions, device: str,
                          precision: str, result: EmbedResult, engine: Engine) -> None:
    """The files of one pool as engine tasks; the driver keeps ``pool.json`` (files marked
    as being written before their task starts, done as their results come in, in file
    order), so a killed driver resumes as the local path does."""
    import dataclasses

    pool, info, record, remote = plan.pool, plan.info, plan.record, plan.remote
    todo = [f for f in plan.files if f.todo]
    for f in plan.files:
        if not f.todo:
            _report_unchanged(plan, f, result, opts)
    if not todo:
        return
    index = pool_image_index(remote.shards if remote else pool.shards_dir,
                             workers=max(1, opts.workers),
                             storage_options=opts.storage_options)
    result.damaged_shards += index.damaged
    shipped = dataclasses.replace(opts, on_images=None, on_total=None, on_file=None,
                                  engine=None)
    tasks = []
    for f in todo:
        uids = pq.read_table(f.meta, columns=["uid"]).column("uid").to_pylist()
        tasks.append((str(f.meta), f.rows, f.todo, {s: choices[s] for s in f.todo}, shipped,
                      device, precision, index.locate(uids), index.shards, remote))
        record["files"][f.meta.stem] = {"state": "writing", "rows": f.rows, "slots": f.prior}
    _save_pool_json(pool, info, remote)
    gpus = 1.0 if device == "cuda" else 0.0
    for pos, outcome in engine.map(_embed_file_task, tasks, ordered=True, name="embed file",
                                  gpus=gpus):
        f = todo[pos]
        if isinstance(outcome, TaskFailed):
            outcome.raise_error(f"embedding {f.meta}")
        if opts.on_images:
            opts.on_images(f.rows)
        _record_done(pool, info, record, result, f.meta, f.rows, f.todo, f.prior, outcome,
                     ident, opts, remote)


def _face_counts(boxes: list | None) -> tuple[int, int] | None:
    """(boxes, images with at least one box) of a file's detections."""
    if boxes is None:
        return None
    return sum(len(b) for b in boxes if b), sum(1 for b in boxes if b)


def _record_done(pool, info: dict, record: dict, result, meta: Path, rows: int,
                 todo: list[str], prior: list[str], outcome: tuple, ident: dict,
                 opts, remote: _Remote | None = None) -> None:
    """A metadata file is embedded: its record in ``pool.json`` (written at once, so a
    killed run resumes after it), the run's counts and the caller's callback.
    ``outcome``: (image status per row, (boxes, images with faces) or None)."""
    status, faces = outcome
    no_image, undecodable = int((status == 0).sum()), int((status == 2).sum())
    for slot in todo:
        record["models"][slot] = ident[slot]
    entry = {"state": "done", "rows": rows, "slots": sorted(set(prior) | set(todo)),
             "no_image": no_image, "undecodable": undecodable}
    if faces is not None:
        entry["faces"], entry["images_with_faces"] = faces
    record["files"][meta.stem] = entry
    _save_pool_json(pool, info, remote)
    result.images += int((status == 1).sum())
    result.files.append(FileReport(pool.name, str(meta), rows, "embedded", todo, no_image,
                                   undecodable, *(faces or (None, None))))
    if opts.on_file:
        opts.on_file(str(meta), "embedded")
