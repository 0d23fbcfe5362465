"""Image segmentation by clustering pixel features.

The notebook face is :func:`segment`; the DVC stages in :mod:`segclust.stages` use the same
core functions.
"""

from segclust.api import Segmentation, segment
from segclust.errors import (
    BackendUnavailableError,
    ConfigError,
    ImageInputError,
    SegclustError,
)

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "ImageInputError",
    "SegclustError",
    "Segmentation",
    "segment",
]
__version__ = "0.1.0"
