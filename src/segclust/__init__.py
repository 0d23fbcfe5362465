"""Image segmentation by clustering pixel features.

The notebook face is :func:`segment` (and :func:`segment_with` a whole config from
:func:`compose_config`); the DVC stages in :mod:`segclust.stages` use the same core functions.

The public names load lazily (PEP 562): ``python -m segclust.stages.features`` imports only
what the features stage uses, which keeps each stage's DVC dependencies (its import closure,
``make deps``) to the modules it really runs. Importing the package pins the numerical
libraries' CPU kernels first (:mod:`segclust.kernels`), so that outputs are byte-identical
across x86-64 machines.
"""

from __future__ import annotations

from typing import Any

from segclust.kernels import pin_kernels

# before anything loads NumPy: the same CPU kernels, so the same bytes, on every x86-64 machine
pin_kernels()

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "ImageInputError",
    "InputTooLargeError",
    "SegclustError",
    "Segmentation",
    "compose_config",
    "segment",
    "segment_with",
]
__version__ = "0.1.0"

_API = ("Segmentation", "compose_config", "segment", "segment_with")


def __getattr__(name: str) -> Any:
    if name in _API:
        from segclust import api

        return getattr(api, name)
    if name in __all__:
        from segclust import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'segclust' has no attribute {name!r}")
