"""A loopback HTTP server for tests of "remote" inputs (no other network is used)."""

from __future__ import annotations

import contextlib
import os

import pytest

# gcsfs >= 2026.10 probes every bucket over gRPC for hierarchical namespaces unless this is
# off (read when gcsfs is imported); the loopback GCS emulator speaks only the JSON API
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from datacomp_sci.core.util import serve_folder


@pytest.fixture
def http_server():
    """``http_server(folder) -> "http://127.0.0.1:PORT"`` serving ``folder`` until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(serve_folder(folder))


class FakeStore:
    """An object store on loopback (a fake S3 or GCS server) through its fsspec file
    system ``fs``, with fsspec configured to use it (environment): create buckets, list
    and read what a test wrote there."""

    def __init__(self, fs, protocol: str, endpoint: str) -> None:
        self.fs, self.protocol, self.endpoint = fs, protocol, endpoint

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (if absent); returns ``PROTOCOL://name``."""
        if not self.fs.exists(name):
            self.fs.mkdir(name)
        return f"{self.protocol}://{name}"

    def names(self, url: str) -> list[str]:
        """Names directly below ``url`` ([] when there are none)."""
        try:
            return [k.rstrip("/").rsplit("/", 1)[-1]
                    for k in self.fs.ls(url.split("://", 1)[1], refresh=True)]
        except FileNotFoundError:
            return []

    def files(self, url: str) -> dict[str, bytes]:
        """Every object below ``url``: relative key -> bytes."""
        root = url.split("://", 1)[1].rstrip("/")
        return {key[len(root) + 1:]: self.fs.cat_file(key)
                for key in sorted(self.fs.find(root))}

    def download(self, url: str, dest) -> None:
        """Copy every object below ``url`` into the local folder ``dest``."""
        from pathlib import Path

        for rel, data in self.files(url).items():
            path = Path(dest) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@contextlib.contextmanager
def fsspec_environment(protocol: str, env: dict[str, str]):
    """Set ``env`` for this process and the processes it starts, and give fsspec's
    configuration of ``protocol`` the ``FSSPEC_<PROTOCOL>_*`` values among them (fsspec
    reads those variables once, at import); both are restored afterwards."""
    import fsspec.config

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    prefix = f"FSSPEC_{protocol.upper()}_"
    old_conf = fsspec.config.conf.get(protocol)
    fsspec.config.conf[protocol] = {**(old_conf or {}), **{
        k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}}
    try:
        yield
    finally:
        if old_conf is None:
            fsspec.config.conf.pop(protocol, None)
        else:
            fsspec.config.conf[protocol] = old_conf
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def fake_s3():
    """A fake S3 (moto's ThreadedMotoServer on 127.0.0.1, a free port) for one test module.
    fsspec finds it through ``FSSPEC_S3_ENDPOINT_URL`` and s3fs its credentials through
    ``AWS_*`` variables, set here for this process and the processes it starts."""
    server_mod = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    try:
        with fsspec_environment("s3", env):
            import s3fs

            fs = s3fs.S3FileSystem(endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"], key="testing",
                                   secret="testing", use_listings_cache=False,
                                   skip_instance_cache=True)
            yield FakeStore(fs, "s3", env["FSSPEC_S3_ENDPOINT_URL"])
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fake_gcs():
    """A fake Google Cloud Storage (gcp-storage-emulator in memory on 127.0.0.1, a free
    port) for one test module. fsspec finds it through ``FSSPEC_GS_ENDPOINT_URL`` and
    anonymous access through ``FSSPEC_GS_TOKEN``, set here for this process and the
    processes it starts."""
    import logging
    import socket

    emulator = pytest.importorskip("gcp_storage_emulator.server")
    pytest.importorskip("gcsfs")
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = emulator.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"FSSPEC_GS_ENDPOINT_URL": endpoint, "FSSPEC_GS_TOKEN": "anon",
           "FSSPEC_GS_PROJECT": "test"}  # (and the gRPC probe off: top of this module)
    try:
        with fsspec_environment("gs", env):
            import gcsfs

            fs = gcsfs.GCSFileSystem(endpoint_url=endpoint, token="anon", project="test",
                                     use_listings_cache=False, skip_instance_cache=True)
            yield FakeStore(fs, "gs", endpoint)
    finally:
        server.stop()
