"""``python -m datacomp_sci.samplegen [ROOT]``: (re)write the bundled sample corpus.

Default ROOT is the package's ``resources/samples`` folder (what ``datacomp-sci demo`` and the
tests use).
"""

import sys

from datacomp_sci.core.resources import resource_path

from .bundle import write_samples

if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else resource_path("samples")
    print(write_samples(root))
