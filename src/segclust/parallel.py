"""Images in parallel: every stage maps its per-image work over worker processes.

joblib does the heavy lifting on one machine (its ``loky`` process pool, the one
scikit-learn uses), with ``execution.jobs`` workers (``-1``: every core, at most one per two
images). With
``execution.engine: dask`` the images go to a Dask distributed cluster instead: the one at
``execution.address`` (``tcp://host:8786``, started with ``dask scheduler`` and
``dask worker``), or a ``LocalCluster`` of ``jobs`` single-threaded worker processes when no
address is given (a lone image runs in the stage's process: starting a cluster for it would
cost more than its work). Either way the stage stays the unit DVC caches: it submits its images,
gathers the results and writes its outputs atomically.

Results come back in the order of the input, whatever the order the workers finish in, and
every random choice is seeded from the config alone, never from the order of work. Each
image's numerical libraries run on one thread in every mode (threadpoolctl): scikit-learn's
KMeans sums in OpenMP threads, and a different thread count changes the last bits and so
some labels (measured on BSDS photos: 1 worker with 2 threads against 2 workers with 1
differed). The parallelism is across images, and outputs are byte-identical for any number
of workers and either engine. A worker holds one
image at a time. An error in a worker is re-raised in the stage as it was raised (a
:class:`segclust.errors.SegclustError` stays a one-line error).

>>> from segclust.execution import ExecutionConfig
>>> list(map_images(abs, [-2, 3, -1], execution=ExecutionConfig(jobs=2), desc="demo"))
[2, 3, 1]
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tqdm import tqdm

if TYPE_CHECKING:
    from segclust.execution import ExecutionConfig

Item = TypeVar("Item")
Result = TypeVar("Result")

# Futures in flight per Dask worker: enough to keep every worker busy while the stage reads
# results in order, few enough that 10,000 images are never 10,000 futures on the scheduler.
WINDOW_PER_WORKER = 4


def _one_thread(fn: Callable[[Item], Result], item: Item) -> Result:
    from threadpoolctl import threadpool_limits

    load_thread_pools()
    with threadpool_limits(limits=1):
        return fn(item)


@cache
def load_thread_pools() -> None:
    """Load the thread pools an image's work may start, so that one limit reaches them all.

    A limit set before a library is loaded does not reach it, and the first image would run
    on every core: SciPy's OpenBLAS (``scipy.linalg``; NumPy's loads with NumPy) and
    scikit-learn's OpenMP runtime. The runtime bundled with scikit-learn's wheel is loaded on
    its own (ctypes, 30 ms) rather than by importing ``sklearn.cluster`` (about 2 s of
    imports, paid by every stage process even when every image comes from the cache); where
    there is no such file (a conda or source build) scikit-learn is imported as before.
    Either way ``threadpoolctl`` then sees the same pools.
    """
    import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS)

    runtime = _bundled_openmp_runtime()
    if runtime is None:
        import sklearn.cluster  # noqa: F401
    else:
        ctypes.CDLL(str(runtime), mode=ctypes.RTLD_GLOBAL)


def _bundled_openmp_runtime() -> Path | None:
    """The OpenMP library shipped inside scikit-learn's wheel, if there is one: Linux wheels
    keep it in ``scikit_learn.libs/`` beside the package, macOS wheels in ``sklearn/.dylibs``.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    found = sorted(package.parent.glob("scikit_learn.libs/libgomp*.so*"))
    found += sorted(package.glob(".dylibs/libomp*.dylib"))
    return found[0] if found else None


# Starting a worker process, and importing a stage's libraries in it, costs about as much as
# the stage's work on one or two photos (1-2.5 s per stage on this project's 2-core machine,
# measured with cProfile: the main process sleeps on the pool while the workers start), so
# ``jobs: -1`` gives each worker at least this many images; an explicit count is obeyed.
MIN_IMAGES_PER_AUTO_WORKER = 2


def worker_count(jobs: int, n_items: int) -> int:
    """Workers to start: ``jobs``, or with ``-1`` every core but at most one per
    :data:`MIN_IMAGES_PER_AUTO_WORKER` images; never more than there are items.

    >>> worker_count(-1, 2), worker_count(2, 2), worker_count(4, 1)
    (1, 2, 1)
    """
    cores = os.cpu_count() or 1
    wanted = min(cores, n_items // MIN_IMAGES_PER_AUTO_WORKER) if jobs == -1 else jobs
    return max(1, min(wanted, n_items))


@contextlib.contextmanager
def _dask_client(address: str | None, workers: int) -> Iterator[object]:
    import dask
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers; any such variable turns off
    # glibc's adaptive mmap threshold, and then every block of a few MB is mapped and
    # faulted in afresh: the stages ran 15-35 % slower per image than in joblib's workers
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def windowed(
    submit: Callable[[Item], object], items: Iterable[Item], window: int
) -> Iterator[object]:
    """``submit(item)`` for every item, at most ``window`` of them submitted and not yet
    read: yields each returned future in input order, submitting the next item as one is
    taken (so a stage of any size holds ``window`` futures, not one per image).

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     [f.result() for f in windowed(lambda x: pool.submit(abs, x), [-1, 2, -3], 2)]
    [1, 2, 3]
    """
    pending: deque[object] = deque()
    for item in items:
        if len(pending) >= window:
            yield pending.popleft()
        pending.append(submit(item))
    while pending:
        yield pending.popleft()


def map_images(
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    execution: ExecutionConfig,
    desc: str,
    done: int = 0,
) -> Iterator[Result]:
    """``fn(item)`` for every item, in order, on worker processes, with one tqdm bar (which
    starts at ``done``: images the caller settled itself).

    ``fn`` must be a module-level function (it is pickled to the workers) and its results
    small (scores, not pixels): outputs are written by ``fn`` itself, so with Dask the
    workers must see the project folder at the same path (a shared file system).
    """
    workers = worker_count(execution.jobs, len(items))
    bar = tqdm(total=len(items) + done, initial=done, desc=desc, unit="image", disable=None)
    # a LocalCluster of one worker would only add its start (seconds) to one image's work: a
    # lone image (one photo added to a cached collection) runs here; a cluster at
    # ``execution.address`` always gets the images
    use_dask = execution.engine == "dask" and bool(items) and (execution.address or workers > 1)
    try:
        if use_dask:
            with _dask_client(execution.address, workers) as client:
                task = partial(_one_thread, fn)
                cluster_workers = len(client.scheduler_info().get("workers", {})) or workers
                window = WINDOW_PER_WORKER * max(cluster_workers, workers)
                for future in windowed(lambda item: client.submit(task, item, pure=False),
                                       items, window):  # fmt: skip
                    result = future.result()
                    future.release()
                    bar.update()
                    yield result
            return
        if workers == 1:
            results: Iterable[Result] = map(partial(_one_thread, fn), items)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=workers, return_as="generator")(
                delayed(_one_thread)(fn, item) for item in items
            )
        for result in results:
            bar.update()
            yield result
    finally:
        bar.close()
