"""Engines: the local process pool and Ray give the same outputs, retry failed tasks and
dead workers (bounded), report tasks that still fail, and resume after the driver dies.

One local Ray cluster (2 CPUs, loopback, no dashboard) is started for this module only,
on first use; the rest of the suite never starts Ray.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import tarfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from engine_tasks import square_after_failures, user_error
from helpers import kill_build_and_rerun, make_shards

import datacomp_sci
import datacomp_sci.pool.build as build_mod
from datacomp_sci.cli import main
from datacomp_sci.core.resources import resource_path
from datacomp_sci.core.uids import save_subset, uids_to_u8u8
from datacomp_sci.engines import EngineOptions, TaskError, TaskFailed, engine_session
from datacomp_sci.pool.build import build_pool, options_from_config
from datacomp_sci.pool.download import DownloadOptions, download_pool
from datacomp_sci.resharding.reshard import ReshardOptions, reshard
from datacomp_sci.samplegen.commonpool import BASE_URL, write_commonpool_source

SAMPLES = resource_path("samples")
TESTS = Path(__file__).resolve().parent
REPO = Path(datacomp_sci.__file__).resolve().parents[1]


def tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


def _attempts(folder: Path, i: int) -> int:
    return (folder / f"{i}.attempts").stat().st_size


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray cluster for this module; yields its address. Its workers import
    this tree and the tests folder (they inherit PYTHONPATH from the driver)."""
    pytest.importorskip("ray")
    from helpers import local_ray

    with local_ray() as address:
        yield address


ENGINES = [
    pytest.param(("local", 1), id="local-inline"),
    pytest.param(("local", 2), id="local-pool"),
    pytest.param(("ray", 2), id="ray", marks=pytest.mark.slow),
]


@pytest.fixture(params=ENGINES)
def engine_opts(request):
    name, workers = request.param
    if name == "ray":
        request.getfixturevalue("ray_cluster")
    return EngineOptions(name=name, workers=workers, retries=2)


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "as-finished"])
def test_engine_retries_failed_tasks_and_reports_those_that_still_fail(engine_opts, ordered,
                                                                       tmp_path):
    # item 1 fails once, item 3 fails on every one of its 3 attempts, the others never
    items = [(str(tmp_path), i, {1: 1, 3: 99}.get(i, 0), "raise") for i in range(6)]
    with engine_session(engine_opts) as engine:
        out = list(engine.map(square_after_failures, items, ordered=ordered))
    if ordered:
        assert [pos for pos, _ in out] == list(range(6))
    got = dict(out)
    assert {p: v for p, v in got.items() if p != 3} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}
    assert isinstance(got[3], TaskFailed) and "flaky task 3" in got[3].error
    assert got[3].attempts == 3 and _attempts(tmp_path, 3) == 3
    assert _attempts(tmp_path, 1) == 2 and _attempts(tmp_path, 0) == 1


def test_engine_retries_a_task_whose_worker_process_died(engine_opts, tmp_path):
    if engine_opts.workers == 1:
        pytest.skip("inline tasks run in this process")
    items = [(str(tmp_path), i, 1 if i == 2 else 0, "kill") for i in range(5)]
    with engine_session(engine_opts) as engine:
        got = dict(engine.map(square_after_failures, items))
    assert got == {i: i * i for i in range(5)}
    assert _attempts(tmp_path, 2) == 2


def test_user_errors_are_not_retried_and_are_raised_as_they_are(engine_opts):
    with engine_session(engine_opts) as engine:
        (pos, failed), = list(engine.map(user_error, [7]))
    assert isinstance(failed, TaskFailed)
    with pytest.raises(FileExistsError, match="--overwrite"):
        failed.raise_error("task 7")
    if engine_opts.name == "local":
        assert failed.attempts == 1
    with pytest.raises(TaskError, match="rerun the same command"):
        TaskFailed("OSError: disk on fire", 3).raise_error("writing shard 1")


def test_engine_options_are_checked():
    with pytest.raises(ValueError, match="unknown engine"):
        EngineOptions(name="spark")
    with pytest.raises(ValueError, match="--ray-address needs --engine ray"):
        EngineOptions(address="auto")
    with pytest.raises(ValueError, match="--workers"):
        EngineOptions(workers=0)



def test_ray_that_cannot_start_here_is_one_line(tmp_path):
    """ray.init's OSError (here: a RAY_TMPDIR too long for its AF_UNIX sockets) is a
    message naming the fix, not a traceback; the run stops before any work."""
    pytest.importorskip("ray")
    import subprocess

    long_tmp = tmp_path / ("r" * 90)
    env = {**os.environ, "RAY_TMPDIR": str(long_tmp), "RAY_ADDRESS": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run([sys.executable, "-m", "datacomp_sci.cli", "build-pool", "arxiv",
                          str(SAMPLES / "arxiv"), "-o", str(tmp_path / "out"), "--engine", "ray",
                          "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "set RAY_TMPDIR to a shorter folder" in res.stderr
    assert "Traceback" not in res.stderr


# ------------------------------------------------------------- build-pool
def _build(source: str, out: Path, engine: EngineOptions, **kw):
    opts = options_from_config(source, None, converter_timeout_s=3, **kw)
    return build_pool([str(SAMPLES / source)], out, opts, engine=engine)


@pytest.fixture(scope="module")
def local_pools(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    _build("arxiv", root / "arxiv", EngineOptions(workers=2))
    _build("pmc", root / "pmc", EngineOptions(workers=2), shard_size=7)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("source", ["arxiv", "pmc"])
def test_build_pool_on_ray_equals_local_byte_for_byte(source, local_pools, ray_cluster,
                                                      tmp_path):
    kw = {"shard_size": 7} if source == "pmc" else {}
    seen: list[int] = []
    opts = options_from_config(source, None, converter_timeout_s=3, **kw)
    res = build_pool([str(SAMPLES / source)], tmp_path / "ray", opts,
                     engine=EngineOptions(name="ray", workers=2),
                     progress=lambda done, totals: seen.append(done))
    assert tree_digest(tmp_path / "ray") == tree_digest(local_pools / source)
    assert seen == list(range(1, res.report["units"] + 1))  # one progress step per unit


@pytest.mark.slow
def test_build_pool_on_ray_workers_read_remote_inputs_themselves(local_pools, ray_cluster,
                                                                  http_server, tmp_path):
    """Inputs given as URLs (a loopback server here, s3:// in production) are opened by
    the tasks; the pool equals the local build of the same files."""
    base = http_server(SAMPLES / "pmc")
    names = sorted(p.name for p in (SAMPLES / "pmc").glob("*.tar.gz"))
    hostile = sorted(p.name for p in (SAMPLES / "pmc" / "hostile").glob("*.tar.gz"))
    opts = options_from_config("pmc", None, converter_timeout_s=3, shard_size=7)
    build_pool([f"{base}/{n}" for n in names] + [f"{base}/hostile/{n}" for n in hostile],
               tmp_path / "remote", opts, engine=EngineOptions(name="ray", workers=2))
    for sub in ("metadata", "shards"):
        assert tree_digest(tmp_path / "remote" / sub) == tree_digest(local_pools / "pmc" / sub)


def test_a_unit_that_always_fails_is_skipped_and_counted_and_the_others_kept(local_pools,
                                                                        tmp_path, monkeypatch):
    real = build_mod.process_unit
    victim = "PMC9000004.tar.gz"

    def broken(unit, opts, work):
        if unit.name == victim:
            raise RuntimeError("worker bug")
        return real(unit, opts, work)

    monkeypatch.setattr(build_mod, "process_unit", broken)
    res = _build("pmc", tmp_path / "pool", EngineOptions(workers=1, retries=1), shard_size=7)
    assert res.report["skipped"]["unit"] == {"task_failed": 1}
    lines = [json.loads(x) for x in (tmp_path / "pool" / "skipped.jsonl").read_text().splitlines()]
    failed = [x for x in lines if x["reason"] == "task_failed"]
    assert len(failed) == 1 and failed[0]["item"].endswith(victim)
    assert failed[0]["detail"] == "RuntimeError: worker bug (after 2 attempts)"
    reference = json.loads((local_pools / "pmc" / "build_report.json").read_text())
    assert res.report["units"] == reference["units"]
    assert 0 < res.report["pairs_written"] < reference["pairs_written"]


def _ray_task_pids(title: str) -> list[int]:
    """Pids of Ray worker processes now running a task named ``title`` (Ray sets the
    process title to ``ray::<task name>`` while a task runs)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(f"ray::{title}".encode()):
                pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_build_pool_on_ray_survives_a_worker_killed_mid_job(local_pools, ray_cluster, tmp_path):
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and not killed:
            for pid in _ray_task_pids("build-pool unit"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        _build("arxiv", tmp_path / "pool", EngineOptions(name="ray", workers=2))
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was running a unit when the killer looked"
    assert tree_digest(tmp_path / "pool") == tree_digest(local_pools / "arxiv")


@pytest.mark.slow
def test_build_pool_on_ray_resumes_after_the_driver_is_killed(local_pools, ray_cluster,
                                                              tmp_path):
    out = tmp_path / "pool"
    cmd = [sys.executable, "-m", "datacomp_sci.cli", "build-pool", "arxiv", str(SAMPLES / "arxiv"),
           "-o", str(out), "--workers", "2", "--converter-timeout", "3", "--no-progress",
           "--engine", "ray", "--ray-address", ray_cluster]
    done = kill_build_and_rerun(cmd, out, seconds=240)
    assert "written" in done.stdout
    assert tree_digest(out) == tree_digest(local_pools / "arxiv")


# ------------------------------------------------------------- reshard
@pytest.fixture(scope="module")
def commonpool_like(tmp_path_factory):
    """5 img2dataset-layout shards of unequal size and a subset with repeats and absents."""
    root = tmp_path_factory.mktemp("shards")
    samples = make_shards(root / "pool", 5, [9, 4, 11, 7, 6])
    uids = [s.uid for shard in samples for s in shard[::2]]
    uids += [samples[2][1].uid] * 3 + ["f" * 32]
    save_subset(root / "subset.npy", uids_to_u8u8(uids))
    return root


@pytest.mark.slow
def test_reshard_on_ray_equals_local_byte_for_byte(commonpool_like, ray_cluster, tmp_path):
    inputs, subset = [str(commonpool_like / "pool")], commonpool_like / "subset.npy"
    local = reshard(inputs, subset, tmp_path / "local",
                    ReshardOptions(shard_size=4, workers=2, use_index_cache=False))
    steps: list[tuple[int, int]] = []
    on_ray = reshard(inputs, subset, tmp_path / "ray",
                     ReshardOptions(shard_size=4, use_index_cache=False,
                                    engine=EngineOptions(name="ray", workers=2)),
                     progress=lambda done, total, totals: steps.append((done, total)))
    assert tree_digest(tmp_path / "ray") == tree_digest(tmp_path / "local")
    assert on_ray.meta["output_shard_count"] == local.meta["output_shard_count"] > 3
    assert steps[-1] == (5, 5)
    runner = CliRunner()
    res = runner.invoke(main, ["reshard", "-i", inputs[0], "--subset", str(subset), "-o",
                               str(tmp_path / "cli"), "--shard-size", "4", "--engine", "ray",
                               "--no-index-cache", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert tree_digest(tmp_path / "cli") == tree_digest(tmp_path / "local")


# ------------------------------------------------------------- download-pool
def _shard_contents(shards: Path) -> dict:
    """What img2dataset wrote, without what differs between any two runs (tar mtimes,
    the order threads finished in, timings in _stats.json)."""
    out = {}
    for tar in sorted(shards.glob("*.tar")):
        with tarfile.open(tar) as tf:
            out[tar.name] = sorted((m.name, tf.extractfile(m).read()) for m in tf.getmembers())
        table = pq.read_table(tar.with_suffix(".parquet")).sort_by("key")
        out[tar.with_suffix(".parquet").name] = table.to_pylist()
        stats = json.loads((shards / f"{tar.stem}_stats.json").read_text())
        out[f"{tar.stem}_stats.json"] = {k: v for k, v in stats.items()
                                         if k not in ("start_time", "end_time", "duration")}
    return out


def _urls_on(source: Path, base: str) -> Path:
    """The source's metadata with its URLs pointing at the loopback server ``base``
    (Ray's worker processes do not see the demo's http_proxy)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(source / "metadata" / "commonpool_tiny.parquet")
    urls = [u.replace(BASE_URL, base) for u in t.column("url").to_pylist()]
    t = t.set_column(t.schema.get_field_index("url"), "url", pa.array(urls, pa.string()))
    out = source / "loopback_metadata"
    out.mkdir(exist_ok=True)
    pq.write_table(t, out / "commonpool_tiny.parquet")
    return out


@pytest.mark.slow
def test_download_pool_on_ray_equals_local(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    source = write_commonpool_source(tmp_path / "cp", n=45)
    opts = DownloadOptions(processes=2, threads=4, shard_size=16, retries=0, timeout=5)
    from datacomp_sci.core.util import serve_folder

    with serve_folder(source) as base:
        meta = _urls_on(source, base)
        local = download_pool(tmp_path / "local", metadata_dir=meta, opts=opts)
        on_ray = download_pool(tmp_path / "ray", metadata_dir=meta, opts=opts,
                               engine=EngineOptions(name="ray"))
    assert on_ray.coverage == local.coverage
    assert local.coverage.downloaded > 30 and local.coverage.finished_shards == 3
    assert _shard_contents(tmp_path / "ray" / "shards") == \
        _shard_contents(tmp_path / "local" / "shards")
    ray_cov, local_cov = ((tmp_path / d / "coverage.json").read_text() for d in ("ray", "local"))
    assert ray_cov.replace(str(tmp_path / "ray"), "OUT") == \
        local_cov.replace(str(tmp_path / "local"), "OUT")  # the same call, but for its folder
    assert (tmp_path / "ray" / "failed_uids.npy").read_bytes() == \
        (tmp_path / "local" / "failed_uids.npy").read_bytes()


def test_no_module_outside_engines_imports_ray():
    root = Path(datacomp_sci.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.parent.name != "engines"
                 and any(line.strip().startswith(("import ray", "from ray"))
                         for line in p.read_text().splitlines())]
    assert offenders == []


# ------------------------------------------------------------- embed
def _embed_pool_folder(root: Path) -> None:
    """A CommonPool-like pool: 3 shards, one metadata parquet each (scores NULL), one row
    without an image."""
    import pyarrow as pa

    from datacomp_sci.core.schema import COMMONPOOL_SCHEMA

    samples = make_shards(root / "shards", 3, [5, 4, 6])
    (root / "metadata").mkdir(parents=True)
    for s, shard in enumerate(samples):
        rows = [{"uid": x.uid, "url": f"http://example.invalid/{x.key}.jpg", "text": x.caption,
                 "original_width": 8, "original_height": 8, "clip_b32_similarity_score": None,
                 "clip_l14_similarity_score": None, "face_bboxes": [], "sha256": None}
                for x in shard]
        if s == 1:
            rows.append({**rows[0], "uid": "f" * 32, "text": None})
        pq.write_table(pa.Table.from_pylist(rows, schema=COMMONPOOL_SCHEMA),
                       root / "metadata" / f"{s:08d}.parquet")


@pytest.mark.slow
def test_embed_on_ray_writes_the_same_files_as_local(ray_cluster, tmp_path):
    pytest.importorskip("open_clip")
    from helpers import tiny_clip_weights

    from datacomp_sci.annotate.embed import EmbedOptions, embed_pools
    from datacomp_sci.core.models import TINY_MODEL

    weights = tiny_clip_weights(tmp_path / "tiny.pt")
    for name in ("local", "ray"):
        _embed_pool_folder(tmp_path / name)
    base = dict(archs={"b32": TINY_MODEL, "l14": TINY_MODEL},
                pretrained={"b32": str(weights), "l14": str(weights)}, device="cpu",
                batch_size=4, workers=0)
    local = embed_pools([tmp_path / "local"], EmbedOptions(**base))
    seen: list[int] = []
    on_ray = embed_pools([tmp_path / "ray"], EmbedOptions(
        **base, engine=EngineOptions(name="ray", workers=2), on_images=seen.append))
    assert [f.action for f in on_ray.files] == ["embedded"] * 3
    assert on_ray.images == local.images == 15 and sum(seen) == 16
    assert tree_digest(tmp_path / "ray") == tree_digest(tmp_path / "local")
    again = embed_pools([tmp_path / "ray"], EmbedOptions(**base, engine=EngineOptions(name="ray")))
    assert [f.action for f in again.files] == ["done"] * 3


def test_engine_mistakes_are_one_line_errors(tmp_path, monkeypatch):
    runner = CliRunner()
    base = ["build-pool", "pmc", str(SAMPLES / "pmc"), "-o", str(tmp_path / "p"), "--no-progress"]
    res = runner.invoke(main, base + ["--ray-address", "auto"])
    assert res.exit_code != 0 and "--ray-address needs --engine ray" in res.output
    assert "Traceback" not in res.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    res = runner.invoke(main, base + ["--engine", "ray"])
    assert res.exit_code != 0 and "pip install 'datacomp-sci[ray]'" in res.output
    assert not (tmp_path / "p" / "pool.json").exists()


@pytest.mark.parametrize("command", [
    ["build-pool", "pmc", str(SAMPLES / "pmc")],
    ["reshard", "-i", str(SAMPLES), "--subset", str(SAMPLES / "expected.json")],
    ["download-pool", "--metadata-dir", str(SAMPLES)],
], ids=["build-pool", "reshard", "download-pool"])
def test_an_output_url_of_an_unknown_protocol_is_refused_in_one_line(command, tmp_path,
                                                                     monkeypatch):
    # (object-storage outputs themselves: tests/test_storage.py, against a loopback S3)
    monkeypatch.chdir(tmp_path)
    out = "nosuchproto://bucket/pool"
    res = CliRunner().invoke(main, command + ["-o", out, "--no-progress"]
                             if command[0] != "download-pool" else command + ["-o", out])
    assert res.exit_code != 0 and "unknown protocol 'nosuchproto'" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not (tmp_path / "nosuchproto:").exists()
    mangled = CliRunner().invoke(main, command + ["-o", "s3:/bucket/pool", "--no-progress"]
                                 if command[0] != "download-pool" else command + ["-o", "s3:/b/p"])
    assert mangled.exit_code != 0 and "not a URL (write s3://" in mangled.output
    assert not (tmp_path / "s3:").exists()
