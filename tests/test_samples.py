"""The bundled sample corpus (package data used by the demo and the tests) is exactly what
``python -m datacomp_sci.samplegen`` writes, so it can be regenerated and reviewed."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacomp_sci.core.resources import resource_path
from datacomp_sci.samplegen.bundle import write_samples


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_bundled_samples_are_what_the_generator_writes(tmp_path):
    written = _files(write_samples(tmp_path / "samples"))
    bundled = _files(resource_path("samples"))
    assert sorted(written) == sorted(bundled)
    differing = [name for name in written if written[name] != bundled[name]]
    assert differing == [], "regenerate with: python -m datacomp_sci.samplegen"
