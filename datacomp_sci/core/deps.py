"""Optional dependencies: which extra of the package brings which import.

The core install (extract, build-pool, query, filter, dedup, reshard, mix) needs none
of them. A command that reaches a missing one fails with one line naming the extra to
install, never a traceback.
"""

from __future__ import annotations

# top-level import name -> (pip name, extra that installs it)
OPTIONAL: dict[str, tuple[str, str]] = {
    "torch": ("torch", "train"),
    "torchvision": ("torchvision", "train"),
    "open_clip": ("open_clip_torch", "train"),
    "open_clip_train": ("open_clip_torch", "train"),
    "clip_benchmark": ("clip-benchmark", "eval"),
    "sklearn": ("scikit-learn", "eval"),
    "matplotlib": ("matplotlib", "report"),
    "img2dataset": ("img2dataset", "download"),
    "huggingface_hub": ("huggingface_hub", "download"),
    "ahocorasick": ("pyahocorasick", "curate"),
    "timm": ("timm", "embed"),
    "faiss": ("faiss-cpu", "embed"),
    "nltk": ("nltk", "embed"),
    "insightface": ("insightface", "embed"),
    "onnxruntime": ("onnxruntime", "embed"),
    "onnx": ("onnx", "embed"),
    "cv2": ("opencv-python-headless", "embed"),
    "s3fs": ("s3fs", "s3"),
    "gcsfs": ("gcsfs", "gcs"),
    "ray": ("ray", "ray"),
    "fastapi": ("fastapi", "web"),
    "starlette": ("fastapi", "web"),
    "uvicorn": ("uvicorn", "web"),
    "jinja2": ("jinja2", "web"),
    "multipart": ("python-multipart", "web"),
    "python_multipart": ("python-multipart", "web"),
    "httpx": ("httpx", "web"),
}


def extra_for(module: str) -> tuple[str, str] | None:
    """(pip name, extra) of an optional import name such as ``open_clip.model``."""
    return OPTIONAL.get(module.split(".")[0])


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """One line telling which extra brings the module that failed to import, or None
    when it is not one of this package's optional dependencies."""
    found = extra_for(exc.name or "")
    if found is None:
        return None
    pip_name, extra = found
    return (f"this step needs {pip_name}, which is not installed: "
            f"pip install 'datacomp-sci[{extra}]' (or 'datacomp-sci[all]')")


def require(module: str):
    """Import an optional module, raising ModuleNotFoundError with the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        message = missing_extra_message(e)
        if message is None:
            raise
        raise ModuleNotFoundError(message, name=e.name) from e
