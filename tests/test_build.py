"""build-pool end to end on the bundled sample corpus: exact pairs, DataComp/img2dataset
formats, upstream readers, determinism across workers, and resume after an interruption."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import dead_pid, kill_build_and_rerun
from loopback import http_server  # noqa: F401  (fixture)
from PIL import Image

from datacomp_sci.cli import main
from datacomp_sci.core.resources import resource_path
from datacomp_sci.core.schema import METADATA_SCHEMA, SHARD_PARQUET_SCHEMA
from datacomp_sci.core.uids import pair_uid
from datacomp_sci.pool.build import build_pool, options_from_config
from datacomp_sci.pool.shards import sample_key

SAMPLES = resource_path("samples")
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())

# CommonPool's metadata columns and types, written out literally from docs/formats.md, "CommonPool metadata".
COMMONPOOL_COLUMNS = [
    ("uid", pa.string()), ("url", pa.string()), ("text", pa.string()),
    ("original_width", pa.int64()), ("original_height", pa.int64()),
    ("clip_b32_similarity_score", pa.float32()), ("clip_l14_similarity_score", pa.float32()),
    ("face_bboxes", pa.list_(pa.list_(pa.float64()))), ("sha256", pa.string()),
]
OUR_COLUMNS = ["source", "paper_id", "figure_path", "label", "parent_caption", "mentions",
               "license", "caption_length", "image_format", "shard", "key"]
IMG2DATASET_KEYS = ["uid", "caption", "url", "key", "status", "error_message", "width", "height",
                    "original_width", "original_height", "exif", "sha256"]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def metadata(pool: Path) -> pa.Table:
    files = sorted((pool / "metadata").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def make_options(source, **kw):
    kw.setdefault("converter_timeout_s", 3)  # keep hostile EPS cheap in tests
    return options_from_config(source, None, **kw)


def build(inputs, out, source, workers=1, **kw):
    return build_pool([str(i) for i in inputs], out, make_options(source, **kw), workers=workers)


@pytest.fixture(scope="module")
def arxiv_pool(tmp_path_factory):
    out = tmp_path_factory.mktemp("arxiv") / "pool"
    result = build([SAMPLES / "arxiv"], out, "arxiv", workers=2)
    return out, result


@pytest.fixture(scope="module")
def pmc_pool(tmp_path_factory):
    out = tmp_path_factory.mktemp("pmc") / "pool"
    result = build([SAMPLES / "pmc"], out, "pmc", workers=1, shard_size=7)
    return out, result


def rows_by_paper(table: pa.Table) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for r in table.to_pylist():
        out[r["paper_id"]].append(r)
    return out


def test_arxiv_pool_holds_exactly_the_expected_pairs(arxiv_pool):
    pool, _ = arxiv_pool
    got = rows_by_paper(metadata(pool))
    for paper_id, exp in EXPECTED["arxiv"].items():
        rows = got.get(paper_id, [])
        simple = [{k: r[k] for k in ("figure_path", "caption", "label", "parent_caption",
                                     "mentions")} for r in
                  [{**r, "caption": r["text"]} for r in rows]]
        assert simple == exp["pairs"], paper_id
        for r in rows:
            assert r["uid"] == pair_uid("arxiv", paper_id, r["figure_path"])
            assert r["url"] == f"https://arxiv.org/e-print/{paper_id}#{r['figure_path']}"
            assert r["caption_length"] == len(r["text"])
    assert set(got) <= set(EXPECTED["arxiv"])


def test_pmc_pool_holds_exactly_the_expected_pairs_with_licences(pmc_pool):
    from datacomp_sci.extract.jats import pmc_figure_url

    pool, _ = pmc_pool
    got = rows_by_paper(metadata(pool))
    for pmcid, exp in EXPECTED["pmc"].items():
        rows = got.get(pmcid, [])
        simple = [{"figure_path": r["figure_path"], "caption": r["text"], "label": r["label"],
                   "parent_caption": r["parent_caption"], "mentions": r["mentions"]} for r in rows]
        keys = ("figure_path", "caption", "label", "parent_caption", "mentions")
        assert simple == [{k: p[k] for k in keys} for p in exp["pairs"]], pmcid
        for r, p in zip(rows, exp["pairs"], strict=True):
            assert r["license"] == exp["license"]
            assert r["url"] == pmc_figure_url(pmcid, p.get("anchor"))


def test_report_counts_every_skip_by_reason(arxiv_pool, pmc_pool):
    for (pool, result), source in ((arxiv_pool, "arxiv"), (pmc_pool, "pmc")):
        report = json.loads((pool / "build_report.json").read_text())
        assert report == result.report
        exp = EXPECTED[source]
        assert report["pairs_written"] == sum(len(e["pairs"]) for e in exp.values())
        paper_skips = defaultdict(int)
        for e in exp.values():
            if e.get("paper_skip"):
                paper_skips[e["paper_skip"]] += 1
        for reason, n in paper_skips.items():
            found = report["skipped"].get("paper", {}).get(reason, 0) + \
                report["skipped"].get("unit", {}).get(reason, 0)
            assert found == n, (source, reason)
        lines = (pool / "skipped.jsonl").read_text().splitlines()
        assert len(lines) == report["skipped_total"]
        assert all({"stage", "reason", "item", "paper_id"} <= set(json.loads(x)) for x in lines)


def test_hostile_arxiv_inputs_are_counted_and_never_fatal(arxiv_pool):
    pool, result = arxiv_pool
    sk = result.report["skipped"]
    assert sk["archive"]["unsafe_path"] == 2
    assert sk["archive"]["link_or_special_member"] == 1
    assert sk["paper"]["decompression_bomb"] == 1
    assert sk["paper"]["corrupt_gzip"] == 1
    assert sk["paper"]["archive_damage"] == 1  # the truncated bulk tar's last member
    assert result.report["papers_lost_to_damage"] == 2  # and the corrupt gzip
    assert not list(pool.parent.rglob("escape.tex")) and not (pool.parent.parent / "escape.tex").exists()


def test_metadata_schema_is_commonpool_then_ours(arxiv_pool):
    pool, _ = arxiv_pool
    for f in sorted((pool / "metadata").glob("*.parquet")):
        schema = pq.read_schema(f)
        assert schema.equals(METADATA_SCHEMA, check_metadata=False)
        assert [(x.name, x.type) for x in list(schema)[:9]] == COMMONPOOL_COLUMNS
        assert schema.names[9:] == OUR_COLUMNS
    table = metadata(pool)
    assert table.column("clip_b32_similarity_score").null_count == len(table)
    assert all(b == [] for b in table.column("face_bboxes").to_pylist())


def test_shards_are_img2dataset_layout(pmc_pool):
    pool, result = pmc_pool
    shards = pool / "shards"
    n = result.report["shards"]
    assert n == -(-result.report["pairs_written"] // 7) > 1
    table = metadata(pool)
    for sid in range(n):
        name = f"{sid:08d}"
        stats = json.loads((shards / f"{name}_stats.json").read_text())
        assert set(stats) == {"count", "successes", "failed_to_download", "failed_to_resize",
                              "duration", "start_time", "end_time", "status_dict"}
        sp = pq.read_table(shards / f"{name}.parquet")
        assert sp.schema.equals(SHARD_PARQUET_SCHEMA, check_metadata=False)
        assert sp.schema.names[:12] == IMG2DATASET_KEYS
        assert stats["successes"] == stats["count"] == sp.num_rows
        with tarfile.open(shards / f"{name}.tar") as tf:
            names = tf.getnames()
            keys = [sample_key(sid, i, 7) for i in range(sp.num_rows)]
            assert names == [f"{k}.{ext}" for k in keys for ext in ("jpg", "json", "txt")]
            for k in keys:
                meta = json.loads(tf.extractfile(f"{k}.json").read())
                assert list(meta)[:12] == IMG2DATASET_KEYS and meta["key"] == k
                assert tf.extractfile(f"{k}.txt").read().decode() == meta["caption"]
                img = Image.open(io.BytesIO(tf.extractfile(f"{k}.jpg").read()))
                assert img.format == "JPEG" and img.mode == "RGB"
                assert (img.width, img.height) == (meta["width"], meta["height"])
                assert max(img.size) <= 512
    # 12-digit keys at DataComp's 10,000 per shard: shard 1 row 23 -> 000000010023
    assert sample_key(1, 23, 10_000) == "000000010023"
    assert table.column("key").to_pylist()[:2] == [sample_key(0, 0, 7), sample_key(0, 1, 7)]


def test_shards_read_by_webdataset_and_openclip_loader(pmc_pool):
    import webdataset as wds
    from open_clip_train.data import get_wds_dataset

    pool, result = pmc_pool
    n = result.report["shards"]
    pattern = str(pool / "shards" / f"{{00000000..{n - 1:08d}}}.tar")
    samples = list(wds.WebDataset(pattern, shardshuffle=False).decode("pil").to_tuple("jpg", "txt", "json"))
    assert len(samples) == result.report["pairs_written"]
    assert all(isinstance(t, str) and j["caption"] == t for _, t, j in samples)

    class Args:
        train_data = pattern
        train_data_upsampling_factors = None
        train_num_samples = result.report["pairs_written"]
        dataset_resampled = False
        batch_size = 4
        workers = 0
        world_size = 1
        seed = 0

    import torchvision.transforms as T

    preprocess = T.Compose([T.Resize((32, 32)), T.ToTensor()])
    info = get_wds_dataset(Args(), preprocess, is_train=True, epoch=0,
                           tokenizer=lambda texts: np.zeros((len(texts), 4), dtype=np.int64))
    images, texts = next(iter(info.dataloader))
    assert tuple(images.shape) == (4, 3, 32, 32) and tuple(texts.shape) == (4, 4)


def test_same_inputs_give_identical_bytes_for_any_workers(arxiv_pool, tmp_path):
    pool, _ = arxiv_pool
    other = tmp_path / "pool"
    build([SAMPLES / "arxiv"], other, "arxiv", workers=1)
    assert tree_digest(other) == tree_digest(pool)


def test_interrupted_build_resumes_to_identical_bytes(pmc_pool, tmp_path):
    pool, _ = pmc_pool
    out = tmp_path / "pool"
    opts = make_options("pmc", shard_size=7)

    def stop_after_five(done, totals):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_pool([str(SAMPLES / "pmc")], out, opts, workers=1, progress=stop_after_five)
    assert (out / "_work" / "units").is_dir() and not (out / "pool.json").exists()
    assert len(list((out / "_work" / "units").glob("*.json"))) == 5
    # a half-written temp file of a killed writer (its pid no longer runs) is removed
    junk = out / "shards" / f".00000009.tar.tmp-{dead_pid()}"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"junk")
    result = build_pool([str(SAMPLES / "pmc")], out, opts, workers=2)
    assert not result.already_complete
    assert not junk.exists()
    assert tree_digest(out) == tree_digest(pool)
    again = build_pool([str(SAMPLES / "pmc")], out, opts, workers=2)
    assert again.already_complete


def test_other_options_in_the_same_output_are_refused(pmc_pool, tmp_path):
    out = tmp_path / "pool"
    shutil.copytree(pmc_pool[0], out)
    with pytest.raises(FileExistsError, match="--overwrite"):
        build([SAMPLES / "pmc"], out, "pmc", shard_size=3)


def test_remote_inputs_give_the_same_pool(pmc_pool, http_server, tmp_path):  # noqa: F811
    pool, _ = pmc_pool
    base = http_server(SAMPLES / "pmc")
    names = sorted(p.name for p in (SAMPLES / "pmc").glob("*.tar.gz"))
    out = tmp_path / "remote"
    build([f"{base}/{n}" for n in names] + [f"{base}/hostile/{n}" for n in
          sorted(p.name for p in (SAMPLES / "pmc" / "hostile").glob("*.tar.gz"))],
          out, "pmc", shard_size=7)
    for sub in ("metadata", "shards"):
        assert tree_digest(out / sub) == tree_digest(pool / sub)


def test_cli_build_pool_prints_a_summary_and_resumes(tmp_path):
    runner = CliRunner()
    out = tmp_path / "pool"
    args = ["build-pool", "pmc", str(SAMPLES / "pmc"), "--output", str(out), "--workers", "1",
            "--no-progress"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "written" in first.output and "skipped" in first.output
    second = runner.invoke(main, args)
    assert second.exit_code == 0 and "already complete" in second.output
    bad = runner.invoke(main, ["build-pool", "pmc", str(tmp_path / "nothing"), "-o",
                               str(tmp_path / "p2"), "--no-progress"])
    assert bad.exit_code != 0 and "no such file" in bad.output


def test_build_killed_with_sigkill_resumes_to_identical_bytes(arxiv_pool, tmp_path):
    """The real thing: kill -9 the CLI mid-build, rerun the same command."""
    import sys

    pool, _ = arxiv_pool
    out = tmp_path / "pool"
    cmd = [sys.executable, "-m", "datacomp_sci.cli", "build-pool", "arxiv", str(SAMPLES / "arxiv"),
           "-o", str(out), "--workers", "1", "--converter-timeout", "3", "--no-progress"]
    kill_build_and_rerun(cmd, out, seconds=120)
    assert tree_digest(out) == tree_digest(pool)


# --- exit status: nothing readable is an error, an empty pool of readable papers is not --

def _cli_build(tmp_path, source, *inputs, out="out"):
    args = ["build-pool", source, *map(str, inputs), "-o", str(tmp_path / out), "-j", "1",
            "--no-progress"]
    return CliRunner().invoke(main, args)


def test_entirely_corrupt_input_exits_non_zero_with_the_skip_summary(tmp_path):
    import random

    (tmp_path / "x.tar").write_bytes(random.Random(3).randbytes(30_000))
    good = gzip_bytes(TEX_ONLY)
    (tmp_path / "2101.00001.tar.gz").write_bytes(good[: len(good) // 2])  # truncated
    res = _cli_build(tmp_path, "arxiv", tmp_path / "x.tar", tmp_path / "2101.00001.tar.gz")
    assert res.exit_code == 1, res.output
    assert "skipped" in res.output and "archive_damage" in res.output
    assert "not one readable paper in 2 input archive(s)" in res.output
    assert "Traceback" not in res.output
    rerun = _cli_build(tmp_path, "arxiv", tmp_path / "x.tar", tmp_path / "2101.00001.tar.gz")
    assert rerun.exit_code == 1 and "already complete" in rerun.output  # the same verdict


def test_corrupt_pmc_package_alone_exits_non_zero(tmp_path):
    (tmp_path / "PMC1.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(100))
    res = _cli_build(tmp_path, "pmc", tmp_path / "PMC1.tar.gz")
    assert res.exit_code == 1 and "not one readable paper" in res.output, res.output


def test_pool_of_pdf_only_papers_is_empty_but_not_an_error(tmp_path):
    for i in (1, 2):
        (tmp_path / f"2101.0000{i}.gz").write_bytes(gzip_bytes(b"%PDF-1.4\n%%EOF\n"))
    res = _cli_build(tmp_path, "arxiv", tmp_path)
    assert res.exit_code == 0, res.output
    assert "note: empty pool: 2 paper(s) read, none with a figure-caption pair (pdf_only 2)" \
        in res.output
    assert json.loads((tmp_path / "out" / "pool.json").read_text())["counts"]["samples"] == 0


def test_damaged_bulk_tar_reports_papers_lost_in_summary_and_skipped_jsonl(tmp_path):
    bulk = io.BytesIO()
    with tarfile.open(fileobj=bulk, mode="w") as tf:
        for i in (1, 2, 3):
            data = gzip_bytes(TEX_ONLY)
            ti = tarfile.TarInfo(f"2101/2101.0000{i}.gz")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    raw = bytearray(bulk.getvalue())
    second = 512 + -(-len(gzip_bytes(TEX_ONLY)) // 512) * 512
    raw[second + 148:second + 156] = b"0000000\0"  # break the second header's checksum
    (tmp_path / "arXiv_src_2101_001.tar").write_bytes(bytes(raw))
    res = _cli_build(tmp_path, "arxiv", tmp_path / "arXiv_src_2101_001.tar")
    assert res.exit_code == 0, res.output
    assert "3 seen" in res.output and "1 lost to archive damage" in res.output
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert report["papers_read"] == 2 and report["papers_lost_to_damage"] == 1
    items = [json.loads(x) for x in (tmp_path / "out" / "skipped.jsonl").read_text().splitlines()]
    (lost,) = [x for x in items if x["reason"] == "archive_damage"]
    assert lost["paper_id"] == "2101.00002" and f"bytes {second}-" in lost["detail"]


TEX_ONLY = (b"\\documentclass{article}\\begin{document}No figures here.\\end{document}\n")


def gzip_bytes(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def test_pages_of_one_pdf_become_two_samples_with_stable_distinct_uids(tmp_path):
    from helpers import pdf_pages

    proj = tmp_path / "in" / "2101.00042"
    proj.mkdir(parents=True)
    (proj / "x.pdf").write_bytes(pdf_pages("0 0 200 100", [
        b"1 0 0 rg 0 0 200 100 re f", b"0 0 1 rg 0 0 200 100 re f"]))
    (proj / "main.tex").write_text(
        "\\documentclass{article}\\begin{document}\n"
        "\\begin{figure}\\includegraphics[page=1]{x.pdf}\\caption{Red panel}\\end{figure}\n"
        "\\begin{figure}\\includegraphics[page=2,viewport=0 0 100 100,clip]{x.pdf}"
        "\\caption{Blue panel}\\end{figure}\n\\end{document}\n")
    build([tmp_path / "in"], tmp_path / "pool", "arxiv")
    rows = metadata(tmp_path / "pool").to_pylist()
    assert [(r["figure_path"], r["uid"], r["original_width"]) for r in rows] == [
        ("x.pdf", pair_uid("arxiv", "2101.00042", "x.pdf"), 200),
        ("x.pdf#page=2", pair_uid("arxiv", "2101.00042", "x.pdf#page=2"), 100)]
    assert rows[1]["url"] == "https://arxiv.org/e-print/2101.00042#x.pdf%23page=2"


def test_any_exception_from_one_unit_is_counted_and_the_run_goes_on(tmp_path, monkeypatch):
    from datacomp_sci.pool import build as build_mod

    real = build_mod.iter_unit_papers

    def flaky(unit, limits):
        if unit.name == "PMC9000001.tar.gz":
            raise OverflowError("Python int too large to convert to C ssize_t")
        return real(unit, limits)

    monkeypatch.setattr(build_mod, "iter_unit_papers", flaky)
    inputs = [SAMPLES / "pmc" / "PMC9000001.tar.gz", SAMPLES / "pmc" / "PMC9000002.tar.gz"]
    result = build(inputs, tmp_path / "pool", "pmc")
    assert result.report["skipped"]["unit"] == {"corrupt_tar": 1}
    assert {r["paper_id"] for r in metadata(tmp_path / "pool").to_pylist()} == {"PMC9000002"}
    items = [json.loads(x) for x in (tmp_path / "pool" / "skipped.jsonl").read_text().splitlines()]
    assert any("OverflowError" in (x["detail"] or "") for x in items)


@pytest.mark.parametrize("ext", ["webp", "bmp", "pdf"])
def test_pmc_figure_shipped_only_in_another_decodable_format_is_a_pair(tmp_path, ext):
    from helpers import pdf_pages

    if ext == "pdf":
        data = pdf_pages("0 0 100 50", [b"0 1 0 rg 0 0 100 50 re f"])
    else:
        buf = io.BytesIO()
        Image.new("RGB", (60, 30), (0, 200, 0)).save(buf, format=ext.upper())
        data = buf.getvalue()
    xml = (b'<?xml version="1.0"?><article><body><fig id="F1"><caption><p>Green.</p></caption>'
           b'<graphic xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="g1"/></fig>'
           b"</body></article>")
    files = {"PMC7/PMC7.nxml": xml, f"PMC7/g1.{ext}": data}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, content in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(content)
            tf.addfile(ti, io.BytesIO(content))
    (tmp_path / "PMC7.tar.gz").write_bytes(gzip_bytes(buf.getvalue()))
    build([tmp_path / "PMC7.tar.gz"], tmp_path / "pool", "pmc")
    (row,) = metadata(tmp_path / "pool").to_pylist()
    assert (row["figure_path"], row["image_format"]) == (f"PMC7/g1.{ext}", ext)


def test_latin1_member_names_resolve_and_garbage_names_cost_nothing_else(tmp_path):
    png = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 0, 0)).save(png, format="PNG")
    tex = ("\\documentclass{article}\\begin{document}\\begin{figure}"
           "\\includegraphics{fig\u00e9.png}\\caption{Caf\u00e9 figure}\\end{figure}"
           "\\end{document}\n").encode("latin-1")
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="latin-1") as tf:
        for name, data in (("main.tex", tex), ("fig\u00e9.png", png.getvalue())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    paper = gzip_bytes(inner.getvalue())
    bulk = io.BytesIO()
    with tarfile.open(fileobj=bulk, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="latin-1") as tf:
        for name in ("2101/2101.00001.gz", "2101/\udcff\udcfe\x01junk.gz", "2101/2101.00003.gz"):
            ti = tarfile.TarInfo(name)
            ti.size = len(paper)
            tf.addfile(ti, io.BytesIO(paper))
    (tmp_path / "arXiv_src_2101_001.tar").write_bytes(bulk.getvalue())
    result = build([tmp_path / "arXiv_src_2101_001.tar"], tmp_path / "pool", "arxiv")
    rows = metadata(tmp_path / "pool").to_pylist()
    assert [(r["paper_id"], r["figure_path"]) for r in rows] == [
        ("2101.00001", "fig\u00e9.png"), ("\u00ff\u00fe\x01junk", "fig\u00e9.png"),
        ("2101.00003", "fig\u00e9.png")]
    assert result.report["skipped_total"] == 0
