"""The one number format of every JSON score, so that stages and the core cannot drift."""

from __future__ import annotations


def rounded(value: float) -> float:
    """Round to 6 significant digits: stable JSON across runs, readable in ``dvc exp show``.

    >>> rounded(0.123456789)
    0.123457
    """
    return float(f"{value:.6g}")
