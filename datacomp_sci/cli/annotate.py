"""Commands of the annotate stage: embed (CLIP embeddings and scores),
download-filter-assets (the files of DataComp's image- and text-based baselines),
blur (faces, as img2dataset blurs them)."""

from __future__ import annotations

import click

from datacomp_sci.cli.app import main, run_library
from datacomp_sci.cli.options import (
    engine_from_options,
    engine_options,
    output_option,
    progress_option,
    storage_options_option,
)


@main.command("embed")
@click.argument("pools", nargs=-1, required=True, metavar="POOL...")
@click.option("--models", default="b32,l14", show_default=True, metavar="b32,l14,faces",
              help="What to compute: the CLIP slots b32 and l14 (npz arrays {slot}_img, "
                   "{slot}_txt and the clip_{slot}_similarity_score column) and faces (the "
                   "face_bboxes column, SCRFD-10G as dataset2metadata ran it).")
@click.option("--b32-pretrained", default="openai", show_default=True, metavar="TAG|PATH",
              help="OpenCLIP pretrained tag of the b32 model, or a local checkpoint file "
                   "(the offline path).")
@click.option("--l14-pretrained", default="openai", show_default=True, metavar="TAG|PATH",
              help="OpenCLIP pretrained tag of the l14 model, or a local checkpoint file.")
@click.option("--b32-model", default="ViT-B-32", show_default=True, metavar="NAME",
              help="OpenCLIP architecture filling the b32 slot (CommonPool: ViT-B-32).")
@click.option("--l14-model", default="ViT-L-14", show_default=True, metavar="NAME",
              help="OpenCLIP architecture filling the l14 slot (CommonPool: ViT-L-14).")
@click.option("--faces-weights", default=None, metavar="PATH",
              help="SCRFD detector .onnx file for --models faces (the offline path) "
                   "[default: det_10g.onnx of insightface's buffalo_l pack in "
                   "~/.insightface/models, fetched by insightface when missing].")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
              show_default=True, help="Where the models run (auto: cuda when available).")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default=None,
              help="Model precision [default: fp16 on cuda, as upstream; fp32 on cpu].")
@click.option("--batch-size", type=int, default=256, show_default=True,
              help="Images (and texts) per forward pass.")
@click.option("--workers", "-j", type=int, default=4, show_default=True,
              help="Image decoding processes (0: decode in the main process).")
@click.option("--overwrite", is_flag=True,
              help="Recompute files embedded with other weights, and replace a CommonPool "
                   "download's own embeddings and scores.")
@progress_option("Show a progress bar: images done of those left, images/s, ETA.")
@engine_options()
@storage_options_option("POOL")
def embed_cmd(pools, models, b32_pretrained, l14_pretrained, b32_model, l14_model,
              faces_weights, device, precision, batch_size, workers, overwrite, progress,
              engine, ray_address, task_retries, storage_options):
    """Compute CLIP B/32 and L/14 embeddings and scores, and face boxes, for every sample
    of POOL..., exactly as CommonPool ships them: metadata/{stem}.npz (b32_img, b32_txt,
    l14_img, l14_txt; float16; row i = parquet row i), the clip_*_similarity_score and
    face_bboxes columns of metadata/{stem}.parquet. Resumable per metadata file; weights
    recorded in pool.json. POOL is a pool folder or an object-storage URL (s3://bucket/pool,
    gs://...; endpoint and credentials from fsspec's FSSPEC_S3_* variables, --storage-option
    and the environment): each finished file is uploaded whole, then pool.json.

    Examples:

      datacomp-sci embed pools/arxiv pools/pmc

      datacomp-sci embed pools/pmc --models faces --faces-weights ~/weights/det_10g.onnx

      datacomp-sci embed pools/arxiv --b32-pretrained ~/weights/b32.safetensors
      --l14-pretrained ~/weights/l14.safetensors
    """
    from datacomp_sci.annotate.embed import EmbedOptions, embed_pools
    from datacomp_sci.core.bars import EmbedBar
    from datacomp_sci.core.storage import parse_storage_options

    slots = tuple(s.strip() for s in models.split(",") if s.strip())
    bar = EmbedBar(progress)
    opts = EmbedOptions(models=slots, archs={"b32": b32_model, "l14": l14_model},
                        pretrained={"b32": b32_pretrained, "l14": l14_pretrained},
                        faces_weights=faces_weights,
                        device=device, precision=precision, batch_size=batch_size,
                        workers=workers, overwrite=overwrite, on_images=bar.update,
                        on_total=bar.total,
                        storage_options=run_library(parse_storage_options, storage_options),
                        engine=run_library(engine_from_options, engine, ray_address,
                                           task_retries))
    try:
        res = run_library(embed_pools, list(pools), opts)
    finally:
        bar.close()
    for slot, ident in res.models.items():
        w = ident["pretrained"] + (f" (sha256 {ident['sha256'][:12]})" if ident["sha256"] else "")
        if slot == "faces":
            w += f", {ident['input_size']} px, score >= {ident['threshold']}"
        click.echo(f"{slot:<11} {ident['arch']} {w}")
    counts: dict[str, int] = {}
    for f in res.files:
        counts[f.action] = counts.get(f.action, 0) + 1
    click.echo(f"files       {len(res.files)}: " + ", ".join(
        f"{n} {a}" for a, n in sorted(counts.items())) + "  (kept: a download's own scores or boxes)")
    no_image = sum(f.no_image for f in res.files)
    bad = sum(f.undecodable for f in res.files)
    if res.faces_found is not None:
        click.echo(f"faces       {res.faces_found:,} boxes in {res.images_with_faces:,} images")
    rate = res.images / res.seconds if res.seconds else 0.0
    effects = (["zero image embedding, NULL score"] if set(res.models) - {"faces"} else []) \
        + (["NULL face_bboxes"] if "faces" in res.models else [])
    click.echo(f"images      {res.images:,} embedded on {res.device} ({res.precision}), "
               f"{rate:,.1f} img/s; {no_image} rows without an image, {bad} undecodable "
               f"({'; '.join(effects)})")
    if res.damaged_shards:
        click.echo(f"damaged     {len(res.damaged_shards)} shards read up to the damage: "
                   + "; ".join(res.damaged_shards[:3]), err=True)


@main.command("download-filter-assets")
@output_option("Folder to fill with the baseline assets (what --imagenet-features reads).",
               file_okay=False)
@click.option("--centroids", "scales", multiple=True,
              type=click.Choice(["small", "medium", "large", "xlarge"]),
              help="Also fetch DataComp's pool centroids for this scale (repeatable).")
@click.option("--base-url", default=None, metavar="URL",
              help="Where the files are [default: DataComp's baseline-assets release].")
@click.option("--verify-only", is_flag=True, help="Check what is on disk; download nothing.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per HTTP request.")
def download_filter_assets_cmd(output, scales, base_url, verify_only, timeout):
    """Fetch the files DataComp's image_based and text_based baselines read into OUTPUT
    (ImageNet-1k L/14 features, ImageNet-21k WordNet ids; optionally centroids), each
    checked against DataComp's sha256. Then: filter --imagenet-features OUTPUT."""
    folder = output
    import sys

    from datacomp_sci.annotate.assets import RELEASE, download_filter_assets

    res = run_library(download_filter_assets, folder, tuple(scales), base_url or RELEASE,
                      verify_only, timeout)
    for st in res:
        click.echo(f"{st.status:<11} {st.path}" + (f"  ({st.detail})" if st.detail else ""))
    bad = [st for st in res if st.status in ("failed", "missing", "mismatch")]
    click.echo(f"{len(res) - len(bad)} of {len(res)} files ready in {folder}")
    if bad:
        sys.exit(3)


@main.command("blur")
@click.argument("pool", type=click.Path(exists=True, file_okay=False))
@progress_option("Show a progress bar over shards.")
def blur_cmd(pool, progress):
    """Blur the faces listed in POOL's face_bboxes column, in its shards, exactly as
    img2dataset's blurrer does at download time (its Resizer and BoundingBoxBlurrer, JPEG
    quality 95). Resumable per shard; a rerun changes nothing. A pool whose faces were not
    detected (datacomp-sci embed POOL --models faces) is refused; a CommonPool download
    is blurred with the boxes it came with.

    Example:

      datacomp-sci embed pools/pmc --models faces && datacomp-sci blur pools/pmc
    """
    from tqdm import tqdm

    from datacomp_sci.annotate.blur import blur_pool

    bar = tqdm(desc="blur", unit="shard", disable=not progress, dynamic_ncols=True)
    try:
        res = run_library(blur_pool, pool, on_shard=lambda _s: bar.update(1))
    finally:
        bar.close()
    click.echo(f"shards      {res.shards_rewritten} rewritten, {res.shards_done_before} done "
               f"before; {res.images_blurred} images with {res.boxes} boxes blurred")
    for e in res.errors:
        click.echo(f"error       {e}", err=True)
    if res.errors:
        raise SystemExit(3)
