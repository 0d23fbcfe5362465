"""Error types that the stages turn into one-line messages instead of tracebacks."""


class SegclustError(Exception):
    """Base class: anything a user can fix by changing input or config."""


class ConfigError(SegclustError, ValueError):
    """A config key is missing, unknown, of the wrong type or out of range."""


class ImageInputError(SegclustError, ValueError):
    """An input file cannot be used as an image (unreadable, truncated, too large, ...)."""


class BackendUnavailableError(SegclustError, RuntimeError):
    """A compute back-end was asked for explicitly but cannot run here."""


class InputTooLargeError(SegclustError, ValueError):
    """An input is larger than an algorithm's measured limit (see benchmarks/results)."""


class ModelFileError(SegclustError, ValueError):
    """A trained model file is missing, unreadable, foreign, or made by other code, cues or
    library versions than the ones running now."""


class TrainingDataError(SegclustError, ValueError):
    """A training folder has no usable images with ground truth, or they do not pair up."""
