"""Benchmark: `datacomp-sci embed --models faces` on the CPU, with random weights.

Writes a synthetic pool (the JPEGs of about 512 x 384 that benchmarks/embed.py writes),
then prints images/s at the default input size (224 x 224, dataset2metadata's):

* detector: insightface's ``SCRFD.detect`` (blob, onnxruntime, anchor decoding, NMS) on
  one prepared image, repeated, for two random-weight models: the tiny SCRFD-shaped model
  of the tests (the cost of everything but the network) and a stand-in of about the
  real network's cost (random 3x3 convolutions, ~1.6 G multiply-adds at 224 x 224: the
  10 GFLOPs SCRFD-10G is named after are counted at 640 x 480);
* embed: ``embed_pools(models=("faces",))`` end to end with the stand-in (decoding, the
  square padding and resize, detection, the parquet rewrite, pool.json).

``--weights PATH`` measures a real detector file (e.g. insightface's det_10g.onnx) instead
of the stand-in.

    python benchmarks/faces.py --images 200 --workers 1
    python benchmarks/faces.py --images 200 --weights ~/.insightface/models/buffalo_l/det_10g.onnx
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # write_pool of benchmarks/embed.py
sys.path.insert(0, str(HERE.parent / "tests"))  # the random-weight SCRFD model of the tests

STAND_IN = {"trunk": 12, "width": 128}


def stand_in_macs(trunk: int, width: int, size: int = 224) -> float:
    """Multiply-adds of the stand-in's trunk (the heads are negligible)."""
    macs, side, cin = 0.0, size, 3
    for i in range(trunk):
        side = side // 2 if i < 3 else side
        macs += side * side * width * cin * 9
        cin = width
    return macs


def detector_rate(detector, image, reps: int) -> float:
    from datacomp_sci.annotate.faces import detect

    detect(detector, image)  # warm-up: the static-shape session is made on first use
    t0 = time.perf_counter()
    for _ in range(reps):
        detect(detector, image)
    return reps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1, help="decoding processes")
    ap.add_argument("--reps", type=int, default=100, help="detector-only repetitions")
    ap.add_argument("--weights", default=None, help="a real SCRFD .onnx file instead of the "
                                                    "random stand-in")
    args = ap.parse_args(argv)

    import io

    from embed import write_pool
    from PIL import Image
    from scrfd_model import tiny_scrfd

    from datacomp_sci.annotate import faces
    from datacomp_sci.annotate.embed import EmbedOptions, embed_pools

    print(f"machine     {os.cpu_count()} CPUs; onnxruntime CPUExecutionProvider; "
          f"input {faces.INPUT_SIZE} x {faces.INPUT_SIZE}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_pool(tmp / "pool", args.images)
        img = Image.new("RGB", (512, 384), (120, 110, 100))
        buf = io.BytesIO()
        img.save(buf, format="JPEG")
        image = faces.prepare(Image.open(io.BytesIO(buf.getvalue())))

        tiny = faces.load_detector(tiny_scrfd(tmp / "tiny.onnx"))
        print(f"detector    {detector_rate(tiny, image, args.reps):,.1f} img/s  tiny "
              "SCRFD-shaped model (insightface's decoding and NMS, no network to speak of)")
        if args.weights:
            weights, what = Path(args.weights).expanduser(), Path(args.weights).name
        else:
            weights = tiny_scrfd(tmp / "stand_in.onnx", **STAND_IN)
            what = (f"random stand-in, {stand_in_macs(**STAND_IN) / 1e9:.2f} G multiply-adds "
                    "per image")
        det = faces.load_detector(weights)
        print(f"detector    {detector_rate(det, image, max(10, args.reps // 4)):,.1f} img/s  "
              f"{what}")

        t0 = time.perf_counter()
        res = embed_pools([tmp / "pool"], EmbedOptions(
            models=("faces",), faces_weights=str(weights), device="cpu", batch_size=32,
            workers=args.workers))
        total = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"embed       {res.images / total:,.1f} img/s end to end ({res.images} images, "
              f"{total:.1f} s, shard index and detector load included; {args.workers} "
              f"decoding workers; {what})")
        print(f"peak RSS    {rss:.2f} GiB")


if __name__ == "__main__":
    main()
