"""Outputs on object storage: build-pool, reshard, embed and download-pool write to an
``s3://`` location (a loopback moto server) exactly the bytes they write to a local
folder, on the local and the Ray engine; a killed build resumes from the state it left
there; build-pool and reshard do the same on ``gs://`` (a loopback GCS emulator); and an
unusable location is refused with one line.

The fake stores and (for the Ray tests) a 2-CPU Ray cluster are started once for this
module.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import kill_build_and_rerun

import datacomp_sci
from datacomp_sci.cli import main
from datacomp_sci.core.resources import resource_path
from datacomp_sci.core.storage import Location, location, parse_storage_options
from datacomp_sci.engines import EngineOptions
from datacomp_sci.pool.build import build_pool, options_from_config

SAMPLES = resource_path("samples")
TESTS = Path(__file__).resolve().parent
REPO = Path(datacomp_sci.__file__).resolve().parents[1]


def local_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def digest(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


@pytest.fixture(scope="module")
def ray_s3(fake_s3):
    """A local 2-CPU Ray cluster started after the fake S3's variables are set (its workers
    inherit them, and PYTHONPATH with this tree), in a private temp folder."""
    pytest.importorskip("ray")
    from helpers import local_ray

    with local_ray(tempfile.mkdtemp(prefix="ray-s3-", dir="/tmp")) as address:
        yield address


# ------------------------------------------------------------- the location itself
def test_a_location_writes_whole_objects_and_lists_reads_and_deletes_them():
    loc = location("memory://dcs-test/out")
    assert not loc.local and loc.protocol == "memory"
    loc.write_json("_work/state.json", {"a": 1})
    with loc.writer("shards/00000000.tar") as f:
        f.write(b"x" * 10)
    with pytest.raises(RuntimeError), loc.writer("shards/00000001.tar") as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert loc.listdir("shards") == ["00000000.tar"]  # nothing of the failed write
    assert loc.read_bytes("shards/00000000.tar") == b"x" * 10
    assert loc.is_file("_work/state.json") and not loc.is_file("_work")
    assert loc.child("shards").listdir() == ["00000000.tar"]
    loc.rmtree("_work")
    assert loc.listdir() == ["shards"] and loc.listdir("nothing") == []
    loc.rmtree()


def test_local_locations_keep_their_spelling_and_storage_options_parse():
    assert location("pool").url == "pool" and location(Path("a/b/")).path == Path("a/b")
    assert location("file:///tmp/x").path == Path("/tmp/x")
    assert parse_storage_options(["endpoint_url=http://h:9", "requester_pays=true",
                                  "anon=false"]) == {"endpoint_url": "http://h:9",
                                                     "requester_pays": True, "anon": False}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_storage_options(["endpoint_url"])
    with pytest.raises(ValueError, match="bucket and a prefix"):
        location("s3://")
    with pytest.raises(ValueError, match=r"write s3://b/x\)"):
        location("s3:/b/x")  # a slash lost: never a local folder "s3:"


def test_fsspec_environment_configures_the_location(monkeypatch):
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    loc = location("s3://b/p", {"requester_pays": True})
    assert loc.options["endpoint_url"] == "http://127.0.0.1:1"
    assert loc.options["requester_pays"] is True
    assert location("s3://b/p", {"endpoint_url": "http://x"}).options["endpoint_url"] == "http://x"


def test_a_location_pickles_without_its_file_system():
    import pickle

    loc = location("memory://dcs-test/pickled")
    loc.write_text("a.txt", "hi")
    again = pickle.loads(pickle.dumps(loc))
    assert isinstance(again, Location) and again.read_text("a.txt") == "hi"
    loc.rmtree()


# ------------------------------------------------------------- refused outputs
def _build_cli(out: str, *extra: str):
    return CliRunner().invoke(main, ["build-pool", "pmc", str(SAMPLES / "pmc" / "PMC9000001.tar.gz"),
                                     "-o", out, "--no-progress", "--workers", "1", *extra])


def test_a_missing_bucket_is_one_line_and_a_failure(fake_s3):
    res = _build_cli("s3://no-such-bucket/pool")
    assert res.exit_code != 0 and "Traceback" not in res.output
    (line,) = res.output.strip().splitlines()
    assert "bucket 'no-such-bucket' does not exist" in line and "create it first" in line


def test_an_endpoint_that_does_not_answer_is_one_line(fake_s3):
    res = _build_cli("s3://pools/x", "--storage-option", "endpoint_url=http://127.0.0.1:9",
                     "--storage-option", 'config_kwargs={"retries": {"max_attempts": 1}}',
                     "--storage-option", "connect_timeout=1")
    assert res.exit_code != 0 and "Traceback" not in res.output
    (line,) = res.output.strip().splitlines()
    assert "cannot use the output location" in line and "endpoint" in line


def test_missing_credentials_are_one_line(fake_s3, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    fake_s3.bucket("pools")
    res = _build_cli("s3://pools/no-creds", "--storage-option", "skip_instance_cache=true")
    assert res.exit_code != 0 and "Traceback" not in res.output
    (line,) = res.output.strip().splitlines()
    assert "NoCredentialsError" in line and "AWS_ACCESS_KEY_ID" in line


def test_an_unknown_protocol_and_a_missing_file_system_package_are_one_line(monkeypatch):
    res = _build_cli("nosuchproto://b/x")
    assert res.exit_code != 0 and "unknown protocol 'nosuchproto'" in res.output
    import fsspec

    def no_gcsfs(protocol):
        raise ImportError("Install gcsfs to access Google Storage")

    monkeypatch.setattr(fsspec, "get_filesystem_class", no_gcsfs)
    res = _build_cli("gs://bucket/pool")
    assert res.exit_code != 0
    assert res.output.strip() == ("Error: this step needs gcsfs, which is not installed: pip install "
                                  "'datacomp-sci[gcs]' (or 'datacomp-sci[all]')")


class _PrefixOnlyFS:
    """A memory file system whose credential may list and write ``bucket/allowed/...``
    only (an IAM policy with an ``s3:prefix`` condition): the bucket root is denied."""

    @staticmethod
    def make():
        from fsspec.implementations.memory import MemoryFileSystem

        class PrefixOnly(MemoryFileSystem):
            protocol = ("prefixonly",)
            store: dict = {}
            pseudo_dirs = [""]

            def _check(self, path):
                if not self._strip_protocol(path).startswith("/bucket/allowed"):
                    raise PermissionError(f"AccessDenied: {path}")

            def ls(self, path, detail=True, **kwargs):
                self._check(path)
                return super().ls(path, detail=detail, **kwargs)

            def pipe_file(self, path, value, **kwargs):
                self._check(path)
                return super().pipe_file(path, value, **kwargs)

        return PrefixOnly


def test_a_credential_limited_to_the_output_prefix_is_enough(monkeypatch):
    import importlib

    cls = _PrefixOnlyFS.make()
    registry = importlib.import_module("fsspec.registry")  # the module, not its mapping
    monkeypatch.setitem(registry._registry, "prefixonly", cls)
    new = location("prefixonly://bucket/allowed/pool")
    new.check_writable()  # nothing there yet: a probe object is written and deleted
    assert new.listdir() == [] and not cls.store.get("/bucket/allowed/pool/.datacomp-sci-write-check")
    new.write_json("pool.json", {})
    new.check_writable()  # an existing output: its own prefix is listed
    with pytest.raises(ValueError, match=r"^prefixonly://bucket/other/pool: access denied \(AccessDenied"):
        location("prefixonly://bucket/other/pool").check_writable()


# ------------------------------------------------------------- build-pool
@pytest.fixture(scope="module")
def local_pmc_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "pmc"
    opts = options_from_config("pmc", None, converter_timeout_s=3, shard_size=7)
    build_pool([str(SAMPLES / "pmc")], out, opts, engine=EngineOptions(workers=2))
    return out


@pytest.fixture(scope="module")
def local_pmc(local_pmc_folder):
    return local_files(local_pmc_folder)


@pytest.mark.slow
@pytest.mark.parametrize("store", ["fake_s3", "fake_gcs"])
def test_build_pool_to_object_storage_equals_the_local_build_byte_for_byte(store, local_pmc,
                                                                         request):
    objects = request.getfixturevalue(store)  # s3:// or gs:// on loopback
    url = objects.bucket("pools") + "/pmc-local-engine"
    opts = options_from_config("pmc", None, converter_timeout_s=3, shard_size=7)
    res = build_pool([str(SAMPLES / "pmc")], url, opts, engine=EngineOptions(workers=2))
    assert res.output == url and not res.already_complete
    assert digest(objects.files(url)) == digest(local_pmc)  # _work/ is gone too
    again = build_pool([str(SAMPLES / "pmc")], url + "/", opts, engine=EngineOptions(workers=2))
    assert again.already_complete and again.report == res.report
    other = options_from_config("pmc", None, converter_timeout_s=3, shard_size=8)
    with pytest.raises(FileExistsError, match="shard_size|options"):
        build_pool([str(SAMPLES / "pmc")], url, other, engine=EngineOptions(workers=1))


@pytest.mark.slow
def test_build_pool_on_ray_to_s3_equals_the_local_build(fake_s3, ray_s3, local_pmc):
    url = fake_s3.bucket("pools") + "/pmc-ray"
    opts = options_from_config("pmc", None, converter_timeout_s=3, shard_size=7)
    build_pool([str(SAMPLES / "pmc")], url, opts, engine=EngineOptions(name="ray", workers=2),
               keep_work=True)
    files = fake_s3.files(url)
    units = [k for k in files if k.startswith("_work/units/")]
    assert units and all(k.endswith((".arrow", ".json")) for k in units)  # written by workers
    assert digest({k: v for k, v in files.items() if not k.startswith("_work/")}) == \
        digest(local_pmc)


@pytest.mark.slow
def test_a_killed_build_to_s3_resumes_to_the_same_bytes(fake_s3, local_pmc):
    url = fake_s3.bucket("pools") + "/pmc-killed"
    cmd = [sys.executable, "-m", "datacomp_sci.cli", "build-pool", "pmc", str(SAMPLES / "pmc"),
           "-o", url, "--workers", "1", "--shard-size", "7", "--converter-timeout", "3",
           "--no-progress"]
    done = kill_build_and_rerun(cmd, url, units=4, seconds=120, list_files=fake_s3.names)
    assert "resuming: " in done.stderr
    assert digest(fake_s3.files(url)) == digest(local_pmc)


# ------------------------------------------------------------- reshard
@pytest.fixture(scope="module")
def shards_and_subset(tmp_path_factory):
    """4 img2dataset-layout shards, a subset with repeats and an absent uid, and the local
    reshard of them (the reference bytes)."""
    from helpers import make_shards

    from datacomp_sci.core.uids import save_subset, uids_to_u8u8
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    root = tmp_path_factory.mktemp("reshard")
    samples = make_shards(root / "pool", 4, [6, 3, 7, 5])
    uids = [s.uid for shard in samples for s in shard[::2]] + [samples[2][1].uid] * 2 + ["f" * 32]
    save_subset(root / "subset.npy", uids_to_u8u8(uids))
    reshard([str(root / "pool")], root / "subset.npy", root / "local",
            ReshardOptions(shard_size=4, workers=1, use_index_cache=False))
    return root


@pytest.mark.parametrize("source", ["local-input", "s3-input"])
def test_reshard_to_s3_equals_the_local_output(fake_s3, shards_and_subset, source):
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    root = shards_and_subset
    bucket = fake_s3.bucket("subsets")
    inputs = [str(root / "pool")]
    if source == "s3-input":
        fake_s3.fs.put(str(root / "pool") + "/", "subsets/pool-copy/", recursive=True)
        inputs = [f"{bucket}/pool-copy"]
    url = f"{bucket}/{source}"
    res = reshard(inputs, root / "subset.npy", url,
                  ReshardOptions(shard_size=4, workers=2, use_index_cache=False))
    assert res.output == url and res.meta["output_count"] > 0
    expected = local_files(root / "local")
    got = fake_s3.files(url)
    if source == "s3-input":  # the report names the inputs as given
        expected.pop("reshard_report.json")
        got.pop("reshard_report.json")
        meta = __import__("json").loads(got.pop("meta.json"))
        ref = __import__("json").loads(expected.pop("meta.json"))
        assert {k: v for k, v in meta.items() if k != "fingerprint"} == \
            {k: v for k, v in ref.items() if k != "fingerprint"}
    assert digest(got) == digest(expected)
    again = reshard(inputs, root / "subset.npy", url,
                    ReshardOptions(shard_size=4, workers=1, use_index_cache=False))
    assert again.already_complete


@pytest.mark.slow
def test_reshard_on_ray_to_s3_equals_the_local_output(fake_s3, ray_s3, shards_and_subset):
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    root = shards_and_subset
    url = fake_s3.bucket("subsets") + "/ray"
    reshard([str(root / "pool")], root / "subset.npy", url,
            ReshardOptions(shard_size=4, use_index_cache=False,
                           engine=EngineOptions(name="ray", workers=2)))
    assert digest(fake_s3.files(url)) == digest(local_files(root / "local"))


# ------------------------------------------------------------- embed
@pytest.mark.slow
def test_embed_on_ray_of_a_pool_on_s3_writes_the_local_bytes_there(fake_s3, ray_s3,
                                                                  local_pmc_folder, tmp_path):
    import shutil

    torch = pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from helpers import tiny_clip_weights

    from datacomp_sci.annotate.embed import EmbedOptions, embed_pools
    from datacomp_sci.core.models import TINY_MODEL

    weights = tiny_clip_weights(tmp_path / "tiny.pt")
    base = dict(archs={"b32": TINY_MODEL, "l14": TINY_MODEL},
                pretrained={"b32": str(weights), "l14": str(weights)}, device="cpu",
                batch_size=8, workers=0)
    shutil.copytree(local_pmc_folder, tmp_path / "pmc")
    url = fake_s3.bucket("embedded") + "/pmc"
    fake_s3.fs.put(str(local_pmc_folder) + "/", "embedded/pmc/", recursive=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray task's (num_cpus=1): matmuls split alike, same floats
    try:
        local = embed_pools([tmp_path / "pmc"], EmbedOptions(**base))
    finally:
        torch.set_num_threads(threads)
    on_ray = embed_pools([url], EmbedOptions(**base, engine=EngineOptions(name="ray", workers=2)))
    assert [f.action for f in on_ray.files] == [f.action for f in local.files]
    assert on_ray.images == local.images > 0
    assert digest(fake_s3.files(url)) == digest(local_files(tmp_path / "pmc"))


# ------------------------------------------------------------- gs:// (a GCS emulator)
def test_a_missing_gcs_bucket_is_one_line(fake_gcs):
    res = _build_cli("gs://no-such-bucket/pool")
    assert res.exit_code != 0 and "Traceback" not in res.output
    (line,) = res.output.strip().splitlines()
    assert "bucket 'no-such-bucket' does not exist" in line
    assert "GOOGLE_APPLICATION_CREDENTIALS" in line and "FSSPEC_GS_ENDPOINT_URL" in line


def test_reshard_between_gcs_locations_equals_the_local_output(fake_gcs, shards_and_subset):
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    root = shards_and_subset
    bucket = fake_gcs.bucket("gsubsets")
    fake_gcs.fs.put(str(root / "pool") + "/", "gsubsets/pool/", recursive=True)
    url = f"{bucket}/out"
    reshard([f"{bucket}/pool"], root / "subset.npy", url,
            ReshardOptions(shard_size=4, workers=2, use_index_cache=False))
    expected, got = local_files(root / "local"), fake_gcs.files(url)
    for name in ("reshard_report.json", "meta.json"):  # they name the inputs as given
        assert name in got
        expected.pop(name), got.pop(name)
    assert digest(got) == digest(expected)
