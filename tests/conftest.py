"""Shared test fixtures (helpers live in ``tests/helpers.py``)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from helpers import make_shards
from loopback import fake_gcs, fake_s3, http_server  # noqa: F401  (fixtures: loopback GCS, S3, HTTP)


@pytest.fixture
def shard_factory(tmp_path):
    """``shard_factory(name, n_shards, per_shard, ...)`` -> (folder, samples) under tmp_path."""

    def factory(name: str, n_shards: int, per_shard: int | Sequence[int], **kwargs):
        folder = tmp_path / name
        return folder, make_shards(folder, n_shards, per_shard, **kwargs)

    return factory


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory):
    """Caches (e.g. reshard's tar-header index) go to a temp folder, never ~/.cache."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def pytest_addoption(parser):
    group = parser.getgroup("fuzz", "build-pool fuzzing (tests/test_fuzz.py)")
    group.addoption("--fuzz-cases", type=int, default=240, metavar="N",
                    help="mutated packages to run through build-pool (default 240, a few "
                         "minutes at most; raise it for a long campaign)")
    group.addoption("--fuzz-seed", type=int, default=20261204, metavar="SEED",
                    help="seed of the mutations (the same seed gives the same cases)")
    parser.getgroup("demo", "the demo's outputs (tests/test_docs_run.py)").addoption(
        "--demo-output", default=None, metavar="DIR",
        help="where the demo_run fixture runs `datacomp-sci demo` (default: a session "
             "temp folder); a finished demo there is reused")


@pytest.fixture(scope="session")
def demo_run(request, tmp_path_factory):
    """``datacomp-sci demo``'s result (a ``DemoResult``), run once per test session.

    Tests must treat its folder as read-only (copy what they change). ``--demo-output DIR``
    keeps the folder between sessions: the demo resumes there, so a finished one is reused.
    """
    from datacomp_sci.pipeline.demo import run_demo

    folder = request.config.getoption("--demo-output") or tmp_path_factory.mktemp("demo") / "out"
    return run_demo(folder, log=lambda line: None, progress=False)
