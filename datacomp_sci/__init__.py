"""datacomp-sci: scientific figure-caption pairs as DataComp pools.

The version lives in one place, ``setup.cfg``; it is read here from the installed
package metadata.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("datacomp-sci")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
