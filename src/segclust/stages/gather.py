"""Stage ``gather`` (shards only): every shard's tables and summaries as the collection's.

``python -m segclust.stages.gather s0000 s0001 ...`` runs in ``shards/`` (the sharded
pipeline that :mod:`segclust.shards` writes) and writes there what the unsharded pipeline
writes in the project over the same photos:

- ``plots/images/<stage>.csv``: the shards' rows in one table, ordered by image;
- ``metrics/<stage>.json``: each stage's summary recomputed over every photo by the stage's
  own ``summary`` function from the rows (the fields that come from the config or the model
  are the shards' own, the same in each); for ``evaluate``, from every shard's
  ``data/evaluation/`` (per-image boundary counts and hierarchy levels, so ODS, OIS and AP
  are those of the whole collection, not an average of shards'), and for
  ``evaluate_boundaries`` from every shard's ``data/evaluation_boundaries/`` likewise.

So ``dvc metrics show shards/metrics`` and ``dvc exp show`` compare experiments over the
whole collection. The standard library's :mod:`csv` (through :mod:`segclust.tables`) and
NumPy do the work.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segclust.errors import SegclustError
from segclust.stages import (
    boundaries,
    cluster,
    evaluate,
    evaluate_boundaries,
    hierarchy,
    regions,
    tune,
)
from segclust.stages._base import run_stage
from segclust.stages._common import (
    IMAGES_DIR,
    METRICS_DIR,
    read_json,
    write_json,
    write_table,
)
from segclust.tables import read_table

log = logging.getLogger("segclust")

# stage -> (its summary of the images' rows, its table's first columns)
POOLED: dict[str, tuple[Callable[[dict[str, dict]], dict], tuple[str, ...]]] = {
    "boundaries": (boundaries.summary, boundaries.TABLE_FIRST),
    "cluster": (cluster.summary, cluster.TABLE_FIRST),
    "tune": (tune.summary, tune.TABLE_FIRST),
    "regions": (regions.summary, regions.TABLE_FIRST),
    "hierarchy": (hierarchy.summary, hierarchy.TABLE_FIRST),
}


def pooled_rows(shards: list[Path], stage: str) -> dict[str, dict[str, Any]]:
    """Every shard's rows of ``plots/images/<stage>.csv``, ordered by image."""
    rows: dict[str, dict[str, Any]] = {}
    for shard in shards:
        path = shard / IMAGES_DIR / f"{stage}.csv"
        if not path.is_file():
            raise SegclustError(f"{shard}: no {path.relative_to(shard)}; run its stages first")
        table = read_table(path)
        twice = rows.keys() & table.keys()
        if twice:
            raise SegclustError(f"{shard}: photo(s) {sorted(twice)[:3]} also in another shard")
        rows |= table
    return dict(sorted(rows.items()))


def pooled_summary(shards: list[Path], stage: str, rows: dict[str, dict]) -> dict[str, Any]:
    """The stage's summary over every shard's rows, on top of the fields the shards share."""
    summarise = POOLED[stage][0]
    first = read_json(shards[0] / METRICS_DIR / f"{stage}.json")
    return first | summarise(rows)


def pooled_evaluation(shards: list[Path]) -> dict[str, Any]:
    """``metrics/evaluate.json`` over every shard's photos, from their ``data/evaluation``."""
    parts, levels = evaluate.load_parts(shards[0] / evaluate.EVALUATION_DIR)
    for shard in shards[1:]:
        more, its_levels = evaluate.load_parts(shard / evaluate.EVALUATION_DIR)
        if (levels is None) != (its_levels is None) or (
            levels is not None and list(levels) != list(its_levels)
        ):
            raise SegclustError(f"{shard}: evaluated at other hierarchy levels than {shards[0]}")
        parts.merge(more)
    segments = read_json(shards[0] / METRICS_DIR / "evaluate.json")["segments"]
    return evaluate.evaluation_summary(parts, levels, segments)


def pooled_edges(shards: list[Path]) -> dict[str, Any]:
    """``metrics/evaluate_boundaries.json`` over every shard's photos, from their
    ``data/evaluation_boundaries``."""
    parts = evaluate_boundaries.EdgeParts()
    for shard in shards:
        parts.merge(evaluate_boundaries.load_parts(shard / evaluate_boundaries.EVALUATION_DIR))
    return evaluate_boundaries.edge_summary(parts)


def main(names: list[str]) -> None:
    if not names:
        raise SegclustError("name the shards to gather: python -m segclust.stages.gather s0000 ...")
    shards = [Path(name) for name in names]
    for stage, (_summary, first) in POOLED.items():
        rows = pooled_rows(shards, stage)
        write_table(stage, rows, first=first)
        write_json(METRICS_DIR / f"{stage}.json", pooled_summary(shards, stage, rows))
    rows = pooled_rows(shards, "evaluate")
    write_table("evaluate", rows, first=evaluate.TABLE_FIRST)
    write_json(METRICS_DIR / "evaluate.json", pooled_evaluation(shards))
    edge_rows = pooled_rows(shards, "evaluate_boundaries")
    write_table("evaluate_boundaries", edge_rows, first=evaluate_boundaries.TABLE_FIRST)
    write_json(METRICS_DIR / "evaluate_boundaries.json", pooled_edges(shards))
    log.info("%d shard(s), %d photo(s) evaluated", len(shards), len(rows))


def shard_names(_params: Path) -> list[str]:
    """The shards to gather: the command line's arguments (gather reads no params)."""
    return sys.argv[1:]


if __name__ == "__main__":
    # as every stage: one-line errors, exit 2, and the closing "done in N s" line
    run_stage("gather", main, shard_names)
