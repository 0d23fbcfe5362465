"""Size limits: how wall time and peak memory grow with pixels for three scikit-learn clusterers.

Measures, on every pixel of a realistic photo (no row compression), the plain scikit-learn
estimators the pipeline may be asked to run, to set the size above which it refuses them:

* ``ward``: ``AgglomerativeClustering(n_clusters=4, linkage="ward",
  connectivity=grid_to_graph(h, w))``, the spatially constrained Ward. Its time includes
  building the grid graph.
* ``hdbscan``: ``HDBSCAN(min_cluster_size=round(0.005 * N), min_samples=None)``, so
  ``min_samples`` is also 0.5 % of the rows (at least 5).
* ``minibatch-kmeans``: ``MiniBatchKMeans(n_clusters=4, random_state=0, n_init=3,
  batch_size=4096)``, without and with ``sample_weight`` (seeded integer weights 1..4, like
  the counts of compressed rows).

Features come from the bundled ``data/samples/chelsea.png`` resized with ``cv2.INTER_LINEAR``
to the target pixel count (a downscale at 10k, an upscale above), plus seeded Gaussian noise
(sigma 2 grey levels) rounded back to uint8, so rows are mostly distinct as in a real photo:

* ``lab``: 3 columns, CIE Lab (``cv2.cvtColor`` on float32 BGR in [0, 1]), standardised per
  column (``StandardScaler``), float32.
* ``grey``: 1 column, the uint8 grey intensity, standardised, float32 (at most 256 distinct
  values: many duplicate rows).

Every size runs in a fresh process; its peak memory is that process's own ``VmHWM`` from
``/proc/self/status``. The parent kills a run whose fit passes ``--timeout`` seconds or whose
resident memory passes ``--kill-gb`` GB, and stops growing a series after the first size that
took more than ``--stop-seconds`` (120 s) or ``--stop-gb`` (8 GB), or was killed. Prints one
Markdown table. Nothing here is a test: numbers are measured, not asserted.

    python benchmarks/limits.py                            # everything (~30 min on 2 cores)
    python benchmarks/limits.py --sizes 10k 25k --methods ward hdbscan   # a quick look
    python benchmarks/limits.py --out benchmarks/results/limits.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "chelsea.png"
NOISE_SIGMA = 2.0  # grey levels (of 255)
PREP_TIMEOUT = 600.0  # seconds to build the features, before the fit's own timeout starts
HDBSCAN_FRACTION = 0.005  # min_cluster_size (and so min_samples) as a fraction of the rows
SMALL_SIZES = ("10k", "25k", "50k", "100k", "250k", "500k", "1M")
LARGE_SIZES = ("0.25M", "1M", "4M", "12M")
SERIES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "ward": (("lab", SMALL_SIZES),),
    "hdbscan": (("lab", SMALL_SIZES), ("grey", SMALL_SIZES)),
    "minibatch-kmeans": (("lab", LARGE_SIZES), ("lab+weights", LARGE_SIZES)),
}


def parse_size(text: str) -> int:
    """``10k`` / ``2.5M`` / ``250000`` → a pixel count."""
    scale = {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1.0)
    number = text[:-1] if scale != 1.0 else text
    return round(float(number) * scale)


def make_photo(pixels: int, seed: int = 0) -> np.ndarray:
    """A uint8 BGR photo of about ``pixels`` pixels, the sample's aspect, with mild noise."""
    import cv2

    small = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    aspect = small.shape[1] / small.shape[0]
    height = max(1, round((pixels / aspect) ** 0.5))
    width = max(1, round(pixels / height))
    photo = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(seed)
    noisy = photo.astype(np.float32) + rng.normal(0.0, NOISE_SIGMA, photo.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def features(photo: np.ndarray, kind: str) -> np.ndarray:
    """Standardised float32 pixel features: ``lab`` (3 columns) or ``grey`` (1 column)."""
    import cv2
    from sklearn.preprocessing import StandardScaler

    if kind == "grey":
        x = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).reshape(-1, 1).astype(np.float32)
    else:
        lab = cv2.cvtColor(photo.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
        x = lab.reshape(-1, 3)
    return StandardScaler().fit_transform(x).astype(np.float32)


def peak_gb() -> float:
    """This process's own peak resident memory (VmHWM), in GiB (not ``ru_maxrss``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_gb(pid: int) -> float:
    """Another process's current resident memory (VmRSS), in GiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def warm_up() -> None:
    """Tiny fits, so no run pays OpenMP / BLAS / first-import start-up inside its timing."""
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering, MiniBatchKMeans
    from sklearn.feature_extraction.image import grid_to_graph

    x = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
    AgglomerativeClustering(4, linkage="ward", connectivity=grid_to_graph(20, 20)).fit(x)
    HDBSCAN(min_cluster_size=5, copy=False).fit(x)
    MiniBatchKMeans(4, random_state=0, n_init=1, batch_size=100).fit(x)


def distinct_rows(photo: np.ndarray, kind: str) -> int:
    """Distinct feature rows: distinct colours (``lab``) or grey levels (``grey``).

    Each feature row is a function of the pixel's uint8 colour, so this counts them exactly
    (up to two colours landing on the same float32 Lab value) without sorting N rows.
    """
    import cv2

    if kind == "grey":
        grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
        return int(np.count_nonzero(np.bincount(grey.ravel(), minlength=256)))
    bgr = photo.reshape(-1, 3)
    codes = (bgr[:, 0].astype(np.int32) << 16) | (bgr[:, 1].astype(np.int32) << 8) | bgr[:, 2]
    return int(np.unique(codes).size)


def run_one(method: str, kind: str, pixels: int, queue: Any = None) -> dict[str, Any]:
    """Build the features, then time the estimator on them; returns one table row's data."""
    from sklearn.cluster import HDBSCAN, AgglomerativeClustering, MiniBatchKMeans
    from sklearn.feature_extraction.image import grid_to_graph

    photo = make_photo(pixels)
    height, width = photo.shape[:2]
    x = features(photo, "grey" if kind == "grey" else "lab")
    distinct = distinct_rows(photo, "grey" if kind == "grey" else "lab")
    warm_up()
    if queue is not None:
        queue.put({"fitting": True})  # the parent's timeout counts from here
    params = ""
    started = time.perf_counter()
    if method == "ward":
        connectivity = grid_to_graph(height, width)
        labels = AgglomerativeClustering(
            n_clusters=4, linkage="ward", connectivity=connectivity
        ).fit_predict(x)
        params = "n_clusters=4"
    elif method == "hdbscan":
        size = max(5, round(HDBSCAN_FRACTION * x.shape[0]))
        labels = HDBSCAN(min_cluster_size=size, min_samples=None, copy=False).fit_predict(x)
        params = f"min_cluster_size=min_samples={size}"
    else:
        weights = None
        if kind == "lab+weights":
            rng = np.random.default_rng(1)
            weights = rng.integers(1, 5, x.shape[0]).astype(np.float64)
        labels = MiniBatchKMeans(
            n_clusters=4, random_state=0, n_init=3, batch_size=4096
        ).fit_predict(x, sample_weight=weights)
        params = "n_clusters=4" + (", weights 1..4" if weights is not None else "")
    seconds = time.perf_counter() - started
    return {
        "ok": True,
        "pixels": int(x.shape[0]),
        "shape": f"{height}×{width}",
        "distinct": distinct,
        "seconds": seconds,
        "peak_gb": peak_gb(),
        "clusters": len(set(labels.tolist()) - {-1}),
        "noise": float(np.mean(labels == -1)),
        "params": params,
        "load": os.getloadavg()[0],
    }


def _child(method: str, kind: str, pixels: int, queue: Any) -> None:
    try:
        queue.put(run_one(method, kind, pixels, queue))
    except MemoryError:
        queue.put({"ok": False, "why": "MemoryError", "peak_gb": peak_gb()})
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:80]
        queue.put({"ok": False, "why": why, "peak_gb": peak_gb()})


def in_fresh_process(
    method: str, kind: str, pixels: int, timeout: float, kill_gb: float
) -> dict[str, Any]:
    """Run one size in a new process; kill it past ``timeout`` s or ``kill_gb`` GB resident.

    The timeout counts from the start of the fit (features and warm-up are not in it), with
    a generous ``PREP_TIMEOUT`` for the part before.
    """
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(method, kind, pixels, queue))
    process.start()
    started = time.perf_counter()
    fitting = False
    highest = 0.0
    try:
        while True:
            try:
                message = queue.get(timeout=0.2)
            except Exception:  # noqa: BLE001 - queue.Empty: still running
                message = None
            if message is not None and message.get("fitting"):
                fitting, started = True, time.perf_counter()
            elif message is not None:
                return message
            highest = max(highest, rss_gb(process.pid))
            elapsed = time.perf_counter() - started
            if not process.is_alive() and queue.empty():
                code = process.exitcode
                return {"ok": False, "why": f"died (exit {code})", "peak_gb": highest}
            if elapsed > (timeout if fitting else PREP_TIMEOUT):
                process.kill()
                what = "fit" if fitting else "features"
                why = f"timed out: {what} killed after {elapsed:.0f} s"
                return {"ok": False, "why": why, "peak_gb": highest}
            if highest > kill_gb:
                process.kill()
                why = f"killed at {highest:.1f} GB resident (> {kill_gb:g} GB), {elapsed:.0f} s"
                return {"ok": False, "why": why, "peak_gb": highest}
    finally:
        process.join()


def machine_line(started: float) -> str:
    """Command, date and machine (cores, RAM), the header of the written table."""
    import platform

    import sklearn

    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    command = " ".join(["python", *sys.argv])
    when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(started))
    minutes = (time.time() - started) / 60
    return (
        f"Command: `{command}` — run {when} ({minutes:.0f} min) on {os.cpu_count()} cores "
        f"(nproc), {memory_kb / 2**20:.1f} GiB RAM, Python {platform.python_version()}, "
        f"scikit-learn {sklearn.__version__}."
    )


def fmt_row(method: str, kind: str, pixels: int, result: dict[str, Any]) -> str:
    if not result["ok"]:
        peak = f"≥ {result['peak_gb']:.2f}" if result.get("peak_gb") else "—"
        cells = [method, kind, f"{pixels:,}", "—", "—", peak, "—", "—", "—", result["why"]]
    else:
        cells = [
            method,
            kind,
            f"{result['pixels']:,} ({result['shape']})",
            f"{result['distinct']:,}",
            f"{result['seconds']:.2f}",
            f"{result['peak_gb']:.2f}",
            str(result["clusters"]),
            f"{result['noise']:.3f}",
            result["params"],
            f"load {result['load']:.1f}",
        ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    parser.add_argument(
        "--sizes",
        nargs="+",
        help="pixel counts (10k, 0.25M, 1M, …) for every series, instead of each one's default",
    )
    parser.add_argument("--methods", nargs="+", choices=list(SERIES), default=list(SERIES))
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per run")
    parser.add_argument("--kill-gb", type=float, default=11.0, help="resident GB per run")
    parser.add_argument("--stop-seconds", type=float, default=120.0)
    parser.add_argument("--stop-gb", type=float, default=8.0)
    args = parser.parse_args()
    started = time.time()

    header = (
        "| method | features | pixels (h×w) | distinct rows | seconds | peak GB | clusters found "
        "| noise fraction | parameters | note |"
    )
    lines = [header, "|" + "---|" * 10]
    print("\n".join(lines), flush=True)
    for method in args.methods:
        for kind, default_sizes in SERIES[method]:
            stopped = ""
            for size in args.sizes or default_sizes:
                pixels = parse_size(size)
                if stopped:
                    result = {"ok": False, "why": f"not run: {stopped}"}
                else:
                    result = in_fresh_process(method, kind, pixels, args.timeout, args.kill_gb)
                    if not result["ok"]:
                        stopped = "a smaller size failed or was killed"
                    elif result["seconds"] > args.stop_seconds:
                        stopped = f"a smaller size took > {args.stop_seconds:g} s"
                    elif result["peak_gb"] > args.stop_gb:
                        stopped = f"a smaller size used > {args.stop_gb:g} GB"
                line = fmt_row(method, kind, pixels, result)
                lines.append(line)
                print(line, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(machine_line(started) + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
