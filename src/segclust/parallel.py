"""Images in parallel: every stage maps its per-image work over worker processes.

joblib does the heavy lifting (its ``loky`` process pool, the one scikit-learn uses), with
``execution.jobs`` workers (``-1``: every core). Results come back in the order of the
input, whatever the order the workers finish in, and every random choice is seeded from the
config alone, never from the order of work, so outputs are byte-identical for any number of
workers. A worker holds one image at a time. An error in a worker is re-raised in the stage
as it was raised (a :class:`segclust.errors.SegclustError` stays a one-line error).

>>> list(map_images(abs, [-2, 3, -1], jobs=2, desc="demo"))
[2, 3, 1]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")


def worker_count(jobs: int, n_items: int) -> int:
    """Workers to start: ``jobs`` (``-1`` = every core), never more than there are items."""
    cores = os.cpu_count() or 1
    wanted = cores if jobs == -1 else jobs
    return max(1, min(wanted, n_items))


def map_images(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    jobs: int,
    desc: str,
) -> Iterator[Result]:
    """``fn(item)`` for every item, in order, on ``jobs`` worker processes, with one tqdm bar.

    ``fn`` must be a module-level function (it is pickled to the workers) and its results
    small (scores, not pixels): outputs are written by ``fn`` itself.
    """
    workers = worker_count(jobs, len(items))
    bar = tqdm(total=len(items), desc=desc, unit="image", disable=None)
    try:
        if workers == 1:
            results: Iterable[Result] = map(fn, items)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=workers, return_as="generator")(
                delayed(fn)(item) for item in items
            )
        for result in results:
            bar.update()
            yield result
    finally:
        bar.close()
