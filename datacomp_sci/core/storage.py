"""Output locations: a local (or shared) folder, or a prefix on object storage.

A :class:`Location` is an fsspec file system plus a root, and the few operations the
writing steps need: read a file, write a whole file, check that one exists, list a
folder, delete a tree. build-pool, reshard, embed and the output-folder rule
(:mod:`.outdir`) use it, so a step writes ``s3://bucket/pool`` (or ``gs://``, or any
fsspec URL) the same way it writes ``/data/pool``.

Writes are whole: a local file is written to a temp name and renamed
(:func:`~datacomp_sci.core.util.atomic_open`, unchanged bytes and behaviour); an object
is written to a temp file on the writing machine's own disk and uploaded once complete
(an S3/GCS PUT, or a multipart upload completed at the end, makes the object appear
whole or not at all). So a reader, or a resumed run, never sees a partial file, and a
step's "finished" marker (a unit's ``.json``, a shard's ``_stats.json``) written last
means what it means locally.

Storage options (endpoint, credentials, region) are fsspec's: ``FSSPEC_<PROTOCOL>_<KWARG>``
environment variables (``FSSPEC_S3_ENDPOINT_URL=http://minio:9000``) or
``FSSPEC_<PROTOCOL>`` holding a JSON object, then the options a caller passes. They are
read once on the machine that starts the step and travel with the location to every
worker; credentials themselves are left to s3fs/gcsfs (``AWS_*`` variables, ``~/.aws``,
instance roles; ``GOOGLE_APPLICATION_CREDENTIALS``), read where the worker runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from datacomp_sci.core.util import atomic_open, dumps_stable

# protocol -> (pip name, extra) for the messages of a missing file-system package
_PACKAGES = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"),
             "gcs": ("gcsfs", "gcs")}


def is_url(text: str | os.PathLike) -> bool:
    """True for ``proto://...`` other than ``file://`` (a local path otherwise)."""
    text = os.fspath(text)
    return "://" in text and not text.startswith("file://")


def parse_storage_options(pairs: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings (``--storage-option``) as keyword arguments of the file
    system; a VALUE that parses as JSON (``true``, ``3``, ``{"a": 1}``) is used as such."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--storage-option {pair!r}: expected KEY=VALUE, e.g. "
                             "endpoint_url=http://127.0.0.1:9000")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _config_options(protocol: str) -> dict[str, Any]:
    """fsspec's configuration for ``protocol``: its config files and ``FSSPEC_*``
    variables as imported, then the ``FSSPEC_*`` variables as they are now."""
    import fsspec.config

    now: dict[str, dict] = {}
    fsspec.config.set_conf_env(now)
    return {**fsspec.config.conf.get(protocol, {}), **now.get(protocol, {})}


@dataclass(frozen=True)
class Location:
    """A folder: ``url`` is a local path or an fsspec URL (no trailing slash);
    ``options`` the file system's keyword arguments. Picklable: a worker rebuilds the
    file system from them (fsspec caches one instance per process and options)."""

    url: str
    options: dict = field(default_factory=dict, compare=False)

    @property
    def local(self) -> bool:
        return not is_url(self.url)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0] if not self.local else "file"

    @property
    def path(self) -> Path:
        """The local folder (only for a local location)."""
        if not self.local:
            raise ValueError(f"{self.url} is not a local folder")
        return Path(self.url)

    @property
    def fs(self):
        import fsspec

        try:
            cls = fsspec.get_filesystem_class(self.protocol)
        except ImportError as e:
            pip_name, extra = _PACKAGES.get(self.protocol, (None, None))
            if pip_name is None:
                raise ValueError(f"{self.url}: {e}") from None
            raise ModuleNotFoundError(f"No module named {pip_name!r}",
                                      name=pip_name.replace("-", "_")) from None
        except ValueError:
            raise ValueError(f"{self.url}: unknown protocol {self.protocol!r}: give a local "
                             "folder or an fsspec URL such as s3://bucket/prefix") from None
        return cls(**self.options)

    def __str__(self) -> str:
        return self.url

    def __truediv__(self, rel: str) -> Location:
        return self.child(rel)

    # --- paths --------------------------------------------------------------------------

    def child(self, *parts: str) -> Location:
        return Location(self.join(*parts), self.options)

    def join(self, *parts: str) -> str:
        """The full path (local) or URL of ``parts`` below the root."""
        rel = "/".join(p.strip("/") for p in parts if p)
        if not rel:
            return self.url
        if self.local:
            return str(Path(self.url) / rel)
        return f"{self.url}/{rel}"

    def _fspath(self, rel: str = "") -> str:
        """What the file system takes (s3fs: ``bucket/key``, without the protocol)."""
        full = self.join(rel)
        return full if self.local else full.split("://", 1)[1]

    # --- reading ------------------------------------------------------------------------

    def exists(self, rel: str = "") -> bool:
        if self.local:
            return Path(self.join(rel)).exists()
        return self.fs.exists(self._fspath(rel))

    def is_file(self, rel: str) -> bool:
        if self.local:
            return Path(self.join(rel)).is_file()
        return self.fs.isfile(self._fspath(rel))

    def read_bytes(self, rel: str) -> bytes:
        if self.local:
            return Path(self.join(rel)).read_bytes()
        return self.fs.cat_file(self._fspath(rel))

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def open(self, rel: str, mode: str = "rb") -> IO:
        """A file to read (object storage: fsspec's buffered, seekable reader)."""
        if self.local:
            return open(self.join(rel), mode)
        return self.fs.open(self._fspath(rel), mode)

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly below ``rel`` (sorted); [] when it does not exist."""
        if self.local:
            folder = Path(self.join(rel))
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        try:
            entries = self.fs.ls(self._fspath(rel), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        base = self._fspath(rel).rstrip("/")
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries
                      if e.rstrip("/") != base)

    # --- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, rel: str, mode: str = "wb", fsync: bool = True) -> Iterator[IO]:
        """A file to write ``rel`` whole: local, the atomic temp-then-rename; object
        storage, a temp file on this machine uploaded once the block ends without error
        (nothing is uploaded otherwise)."""
        if self.local:
            with atomic_open(self.join(rel), mode, fsync=fsync) as f:
                yield f
            return
        fd, tmp = tempfile.mkstemp(prefix=".datacomp-sci-upload-")
        try:
            with os.fdopen(fd, mode) as f:
                yield f
            self.fs.put_file(tmp, self._fspath(rel))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def write_bytes(self, rel: str, data: bytes, fsync: bool = True) -> None:
        if self.local:
            with atomic_open(self.join(rel), "wb", fsync=fsync) as f:
                f.write(data)
        else:
            self.fs.pipe_file(self._fspath(rel), data)

    def write_text(self, rel: str, text: str, fsync: bool = True) -> None:
        self.write_bytes(rel, text.encode("utf-8"), fsync=fsync)

    def write_json(self, rel: str, obj: Any, fsync: bool = True) -> None:
        self.write_text(rel, dumps_stable(obj), fsync=fsync)

    def put_file(self, local: str | os.PathLike, rel: str) -> None:
        """Copy a finished local file to ``rel`` (whole)."""
        if self.local:
            with atomic_open(self.join(rel)) as f, open(local, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 22)
        else:
            self.fs.put_file(os.fspath(local), self._fspath(rel))

    def makedirs(self, rel: str = "") -> None:
        """Create the folder (object storage has none: nothing to do)."""
        if self.local:
            Path(self.join(rel)).mkdir(parents=True, exist_ok=True)

    def rmtree(self, rel: str = "") -> None:
        """Delete ``rel`` and everything below it (absent: nothing to do)."""
        if self.local:
            shutil.rmtree(self.join(rel), ignore_errors=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._fspath(rel), recursive=True)

    def remove(self, rel: str) -> None:
        if self.local:
            Path(self.join(rel)).unlink(missing_ok=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._fspath(rel))

    def check_writable(self) -> None:
        """Fail early, with one line, when an object-storage location cannot be used: no
        file-system package, a bucket that does not exist, no or wrong credentials, an
        endpoint that does not answer. (A local folder is checked when it is written.)

        Only the location's own prefix is touched, so a credential limited to that prefix
        (an IAM policy with an ``s3:prefix`` condition, a managed folder) is enough: an
        existing output is listed; a new one gets an empty probe object written and
        deleted, which is what the step is about to do anyway."""
        if self.local:
            return
        fs = self.fs
        prefix = self._fspath()
        bucket = prefix.split("/", 1)[0]
        hint = (f"check the bucket name, the credentials ({_CREDENTIALS.get(self.protocol, 'see the file system docs')}) "
                f"and the endpoint (FSSPEC_{self.protocol.upper()}_ENDPOINT_URL or "
                "--storage-option endpoint_url=...)")
        try:
            try:
                fs.ls(prefix, refresh=True)
            except FileNotFoundError:  # nothing there yet (or no bucket): try a write
                probe = f"{prefix}/{_WRITE_PROBE}"
                fs.pipe_file(probe, b"")
                fs.rm_file(probe)
        except FileNotFoundError:
            raise ValueError(f"{self.url}: bucket {bucket!r} does not exist: create it first, "
                             f"or {hint}") from None
        except PermissionError as e:
            raise ValueError(f"{self.url}: access denied ({_one_line(e)}): {hint}") from None
        except Exception as e:  # botocore's NoCredentialsError, connection errors, ...
            raise ValueError(f"{self.url}: cannot use the output location "
                             f"({type(e).__name__}: {_one_line(e)}): {hint}") from None


# the empty object check_writable writes and deletes under a new output prefix
_WRITE_PROBE = ".datacomp-sci-write-check"
_CREDENTIALS = {"s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws",
                "gs": "GOOGLE_APPLICATION_CREDENTIALS or gcloud auth application-default login",
                "gcs": "GOOGLE_APPLICATION_CREDENTIALS or gcloud auth application-default login"}


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


def _refuse_mangled_url(text: str) -> None:
    """``s3:/bucket/x`` (a slash lost, or a path joined by ``os.path``) must not become
    a local folder named ``s3:``."""
    import re

    from fsspec.registry import known_implementations

    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/+", text)
    if m and m.group(1).lower() in known_implementations:
        raise ValueError(f"{text}: not a URL (write {m.group(1)}://{text[m.end():]}) and not "
                         "meant as a local folder")


def location(output: str | os.PathLike | Location,
             storage_options: dict[str, Any] | None = None) -> Location:
    """The output location for a path or URL. A local path keeps its spelling; a URL
    loses a trailing slash and gets fsspec's configured options for its protocol, then
    ``storage_options``."""
    if isinstance(output, Location):
        return output
    text = os.fspath(output)
    if text.startswith("file://"):
        text = text[len("file://"):]
    if not is_url(text):
        _refuse_mangled_url(text)
        return Location(str(Path(text)), {})
    proto = text.split("://", 1)[0]
    if not text.split("://", 1)[1].strip("/"):
        raise ValueError(f"{text}: give a bucket and a prefix, e.g. {proto}://my-bucket/pools/x")
    opts = {**_config_options(proto), **(storage_options or {})}
    # workers write beside the driver: a listing cached by one process would hide their
    # objects from it, so every listing asks the store
    opts.setdefault("use_listings_cache", False)
    return Location(text.rstrip("/"), opts)


def output_location(output: str | os.PathLike | Location,
                    storage_options: dict[str, Any] | None = None,
                    resolve: bool = False) -> Location:
    """A step's output: a local folder (as it is given, or absolute with ``~`` expanded
    when ``resolve``), or an object-storage location checked for use
    (:meth:`Location.check_writable`)."""
    out = location(output, storage_options)
    if not out.local:
        out.check_writable()
    elif resolve:
        out = Location(str(out.path.expanduser().resolve()), {})
    return out
