"""Benchmark: `datacomp-sci embed` against the bare model's forward rate.

Writes a synthetic pool (JPEG photos-like scenes of about 512 x 384 in img2dataset-layout
shards, CommonPool-schema metadata), saves randomly initialised weights of the chosen
OpenCLIP architecture to a local file (the offline path real weights take), then prints:

* bare forward: ``encode_image`` images/s on pre-decoded tensors at the same batch size;
* embed: images/s of ``embed_pools`` in steady state (first to last batch: decoding,
  forward, text encoding, npz and parquet writing included) and end to end;
* the ratio of the two (target >= 0.9) and the peak RSS of the process.

    python benchmarks/embed.py --model ViT-B-32 --images 512 --batch-size 64 --workers 2
    python benchmarks/embed.py --model ViT-L-14 --device cuda --images 20000 --batch-size 256
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def write_pool(root: Path, n: int, per_shard: int = 1000) -> None:
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds
    from PIL import Image

    from datacomp_sci.core.schema import COMMONPOOL_SCHEMA

    rng = np.random.default_rng(0)
    (root / "shards").mkdir(parents=True)
    (root / "metadata").mkdir()
    rows = []
    for s in range(-(-n // per_shard)):
        with open(root / "shards" / f"{s:08d}.tar", "wb") as f:
            w = wds.TarWriter(f, mtime=0.0)
            for i in range(min(per_shard, n - s * per_shard)):
                small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
                img = Image.fromarray(small).resize((512, 384), Image.BICUBIC)
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=90)
                uid = hashlib.sha256(f"{s}:{i}".encode()).hexdigest()[:32]
                text = f"a synthetic figure number {i} of shard {s}"
                key = f"{s:08d}{i:04d}"
                w.write({"__key__": key, "jpg": buf.getvalue(), "txt": text.encode(),
                         "json": json.dumps({"uid": uid, "caption": text}).encode()})
                rows.append({"uid": uid, "text": text, "original_width": 512,
                             "original_height": 384})
            w.close()
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in COMMONPOOL_SCHEMA.names},
                            schema=COMMONPOOL_SCHEMA), root / "metadata" / "00000000.parquet")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ViT-B-32", help="OpenCLIP architecture (random init)")
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="decoding processes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default=None, help="fp16 | fp32 (default: fp16 on cuda)")
    args = ap.parse_args(argv)

    import open_clip
    import torch
    from datacomp_sci.training.models import register_models

    from datacomp_sci.annotate.embed import EmbedOptions, ModelChoice, embed_pools, load_model

    register_models()
    precision = args.precision or ("fp16" if args.device == "cuda" else "fp32")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        write_pool(tmp / "pool", args.images)
        print(f"pool        {args.images} JPEGs 512x384 written in {time.perf_counter() - t0:.1f} s")
        torch.manual_seed(0)
        weights = tmp / "weights.pt"
        torch.save(open_clip.create_model(args.model).state_dict(), weights)

        model, pre, _ = load_model(ModelChoice("b32", args.model, str(weights)), args.device,
                                   precision)
        size = pre.transforms[0].size if hasattr(pre.transforms[0], "size") else 224
        size = size if isinstance(size, int) else size[0]
        x = torch.randn(args.batch_size, 3, size, size, device=args.device)
        x = x.half() if precision == "fp16" else x
        reps = max(2, args.images // args.batch_size)
        with torch.inference_mode():
            model.encode_image(x)  # warm-up
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                model.encode_image(x)
            if args.device == "cuda":
                torch.cuda.synchronize()
            bare = reps * args.batch_size / (time.perf_counter() - t0)
        del model
        print(f"bare        {bare:,.1f} img/s  ({args.model}, batch {args.batch_size}, "
              f"{args.device}, {precision}, pre-decoded tensors)")

        stamps: list[tuple[float, int]] = []
        opts = EmbedOptions(models=("b32",), archs={"b32": args.model},
                            pretrained={"b32": str(weights)}, device=args.device,
                            precision=precision, batch_size=args.batch_size,
                            workers=args.workers,
                            on_images=lambda n: stamps.append((time.perf_counter(), n)))
        t0 = time.perf_counter()
        res = embed_pools([tmp / "pool"], opts)
        total = time.perf_counter() - t0
        if len(stamps) > 1:
            steady = sum(n for _, n in stamps[1:]) / (stamps[-1][0] - stamps[0][0])
        else:
            steady = float("nan")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"embed       {steady:,.1f} img/s steady ({steady / bare:.0%} of bare); "
              f"{res.images / total:,.1f} img/s end to end ({total:.1f} s, model load and "
              f"shard index included); {args.workers} decoding workers")
        print(f"peak RSS    {rss:.2f} GiB")


if __name__ == "__main__":
    main()
