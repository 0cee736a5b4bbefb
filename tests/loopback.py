"""A loopback HTTP server for tests of "remote" inputs (no other network is used)."""

from __future__ import annotations

import contextlib

import pytest

from datacomp_sci.core.util import serve_folder


@pytest.fixture
def http_server():
    """``http_server(folder) -> "http://127.0.0.1:PORT"`` serving ``folder`` until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(serve_folder(folder))
