"""Model configs shipped with datacomp-sci, registered with OpenCLIP's registry.

``datacomp-sci-tiny`` is a 2-layer ViT on 32x32 images with a 2-layer text tower: the
``tiny`` scale's model, for CPU tests and the demo. It is a real OpenCLIP model config
(the same JSON layout as ``open_clip/model_configs/*.json``), added with
``open_clip.add_model_config``.
"""

from __future__ import annotations

from datacomp_sci.core.resources import resource_path

TINY_MODEL = "datacomp-sci-tiny"
_registered = False


def register_models() -> None:
    """Add ``datacomp_sci/resources/model_configs/*.json`` to OpenCLIP's model registry (idempotent)."""
    global _registered
    if _registered:
        return
    import open_clip

    open_clip.add_model_config(resource_path("model_configs"))
    _registered = True
