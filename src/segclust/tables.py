"""Per-image tables and their summaries: the detail and the digest of every stage's scores.

A stage's ``metrics/<stage>.json`` holds what experiments are compared by — a few
statistics of each score over images (:func:`spread`) and counts — so ``dvc exp show`` and
``dvc metrics diff`` stay a few dozen columns wide whatever the number of images. The
per-image scores go to ``plots/images/<stage>.csv``, one row per image (:func:`table_bytes`),
which ``dvc plots`` draws and pandas reads (``pd.read_csv(path, index_col="image")``).
The standard library's :mod:`csv` writes and reads them: plain CSV is what DVC's plots read
natively, and it diffs line by line in Git.

>>> rows = {"b": {"covering": 0.5, "n": 3}, "a": {"covering": 0.25, "note": "x, y"}}
>>> print(table_bytes(rows).decode(), end="")
image,covering,n,note
a,0.25,,"x, y"
b,0.5,3,
>>> spread([1.0, 2.0, 3.0, 10.0])
{'mean': 4.0, 'median': 2.5, 'p10': 1.3, 'p90': 7.9}
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segclust.report import rounded


def table_bytes(rows: Mapping[str, Mapping[str, Any]], first: Sequence[str] = ()) -> bytes:
    """CSV bytes: an ``image`` column, then ``first`` (always, so that an empty table still
    has the columns its plots name), then every other key sorted.

    Rows are sorted by image name so that the same scores give the same bytes; a score an
    image lacks (undefined, or a key another algorithm has) is an empty cell. Lists are
    joined with ``"; "``.
    """
    keys = {key for row in rows.values() for key in row}
    columns = ["image", *first, *sorted(keys - set(first))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for image in sorted(rows):
        row = rows[image]
        writer.writerow([image, *(_cell(row.get(c)) for c in columns[1:])])
    return out.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return value


def _value(text: str) -> Any:
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_table(path: str | Path) -> dict[str, dict[str, Any]]:
    """A table written by :func:`table_bytes`: ``{image: {column: value}}``, numbers as
    numbers, empty cells left out (as the image never had that score)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["image"]: {k: _value(v) for k, v in row.items() if k != "image" and v != ""}
            for row in csv.DictReader(handle)
        }


SPREAD = ("mean", "median", "p10", "p90")


def spread(
    values: Iterable[float | None], stats: Sequence[str] = SPREAD
) -> dict[str, float] | None:
    """Mean, median, 10th and 90th percentiles (or the ``stats`` among them) of the defined
    values, None when there are none: the shape of a score over images in a few numbers,
    rounded as metrics are."""
    data = np.array([v for v in values if v is not None and not _nan(v)], dtype=np.float64)
    if data.size == 0:
        return None
    p10, median, p90 = np.percentile(data, [10, 50, 90])
    every = {"mean": data.mean(), "median": median, "p10": p10, "p90": p90}
    return {name: rounded(every[name]) for name in stats}


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
