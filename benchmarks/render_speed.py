"""Render stage, seconds per image: pictures drawn into arrays (ours) against the matplotlib
``Figure`` per picture that the stage built before (old, reimplemented below as it was at
commit 1e87485: grey and cluster-map figures saved by ``savefig``, OpenCV Hershey captions,
``cv2.imwrite`` with OpenCV's default PNG settings).

Runs the stages ``features`` to ``hierarchy`` once in a scratch folder (the repository's
params.yaml, ``tune.n_trials`` 3, the given images; ``--work`` reuses a folder where they
ran), then times one image's four pictures both ways, alternately (the order flips every
repeat), on one OpenCV thread, after one warm-up of each. Prints a Markdown table (``--out``
appends it to a file): the median seconds per image, old / ours, and the bytes of the four
PNGs.

    python benchmarks/render_speed.py --images data/samples --repeats 5 \\
        --out benchmarks/results/render_speed.md

Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.patches import Patch

ROOT = Path(__file__).resolve().parents[1]
BEFORE_RENDER = ("features", "boundaries", "cluster", "tune", "regions", "hierarchy")
PNG_METADATA = {"Software": None}


# --- the old path: a matplotlib figure per picture -------------------------------------


def old_captioned(panel: np.ndarray, caption: str, height: int = 26) -> np.ndarray:
    strip = np.full((height, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(
        strip, caption, (4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
    )
    return np.concatenate([strip, panel], axis=0)


def old_grey_figure(rgb: np.ndarray, grey: np.ndarray, *, title: str, dpi: int) -> Figure:
    fig = Figure(figsize=(8, 4.2), dpi=dpi, layout="constrained")
    ax_rgb, ax_grey = fig.subplots(1, 2)
    ax_rgb.imshow(rgb, interpolation="nearest")
    ax_rgb.set_title("original")
    ax_grey.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax_grey.set_title("grey (features start here)")
    for ax in (ax_rgb, ax_grey):
        ax.set_axis_off()
    fig.suptitle(title)
    return fig


def old_legend_handles(labels: np.ndarray, colours: np.ndarray, limit: int = 10) -> list[Patch]:
    from segclust.labels import NOISE
    from segclust.render import NOISE_RGB

    total = labels.size
    ids, counts = np.unique(labels[labels != NOISE], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    handles = [
        Patch(color=colours[k] / 255, label=f"{k}: {100 * count / total:.1f}%")
        for k, count in zip(ids[order][:limit], counts[order][:limit], strict=True)
    ]
    if len(ids) > limit:
        handles.append(Patch(color="white", label=f"+{len(ids) - limit} more"))
    noise = int((labels == NOISE).sum())
    if noise:
        handles.append(
            Patch(color=np.array(NOISE_RGB) / 255, label=f"noise: {100 * noise / total:.1f}%")
        )
    return handles


def old_cluster_map_figure(
    panels: list[tuple[str, np.ndarray | None]], *, cmap: str, title: str, dpi: int
) -> Figure:
    from segclust.labels import NOISE
    from segclust.render import cluster_colours, colour_labels

    drawn = []
    for caption, labels in panels:
        if labels is None:
            drawn.append((caption, None, None, []))
            continue
        colours = cluster_colours(int(labels.max(initial=NOISE)) + 1, cmap)
        drawn.append((caption, labels, colours, old_legend_handles(labels, colours)))
    aspect = max(
        (lab.shape[0] / lab.shape[1] for _, lab, *_ in drawn if lab is not None), default=1
    )
    rows = max((-(-len(handles) // 4) for *_, handles in drawn), default=1)
    height = 0.8 + 5 * aspect + 0.3 * rows
    fig = Figure(figsize=(5 * len(panels), height), dpi=dpi, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (caption, labels, colours, handles) in zip(axes, drawn, strict=True):
        ax.set_axis_off()
        ax.set_title(caption)
        if labels is None:
            ax.text(
                0.5, 0.5, "no valid clustering", ha="center", va="center", transform=ax.transAxes
            )
            continue
        ax.imshow(colour_labels(labels, colours), interpolation="nearest")
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.01),
            ncol=min(4, max(len(handles), 1)),
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(title)
    return fig


def old_render_image(entry: tuple[str, dict], config, out: Path) -> None:
    """The stage's per-image function as it was, on today's unchanged helpers."""
    from segclust.hierarchy import boundary_strength
    from segclust.imageio import read_image
    from segclust.pixels import to_display_rgb, to_grey
    from segclust.render import side_by_side, ucm_panel
    from segclust.stages import render as stage

    stem, sidecar = entry
    suffix = " · regions" if config.regions.method == "connected" else ""
    image = read_image(Path(sidecar["source"]), max_pixels=config.data.max_pixels)
    rgb, grey = to_display_rgb(image), to_grey(image)
    configured = np.load(stage.REGIONS_DIR / "configured" / f"{stem}.npy")
    tuned_path = stage.REGIONS_DIR / "tuned" / f"{stem}.npy"
    tuned = np.load(tuned_path) if tuned_path.exists() else None
    configured_name = f"configured {config.cluster.algorithm}{suffix}"
    tuned_name = f"tuned {stage._tuned_algorithm(stem, config)}{suffix}"
    dpi = config.render.dpi
    fig = old_grey_figure(rgb, grey, title=stem, dpi=dpi)
    fig.savefig(out / f"{stem}_grey.png", metadata=PNG_METADATA)
    fig = old_cluster_map_figure(
        [(configured_name, configured), (tuned_name, tuned)],
        cmap=config.render.cmap,
        title=f"{stem}: {config.features.name} features",
        dpi=dpi,
    )
    fig.savefig(out / f"{stem}_clusters.png", metadata=PNG_METADATA)
    panels = [
        old_captioned(stage._contours(rgb, labels, config), caption)
        for caption, labels in ((configured_name, configured), (tuned_name, tuned))
        if labels is not None
    ]
    _old_write(out / f"{stem}_contours.png", side_by_side(panels))
    ucm_path = stage.HIERARCHY_DIR / "ucm" / f"{stem}.npy"
    if not ucm_path.exists():
        return
    ucm, cut = np.load(ucm_path), np.load(stage.HIERARCHY_DIR / "cut" / f"{stem}.npy")
    settings, min_width = config.hierarchy, config.render.min_width
    value = ", ".join(f"{k}={v:g}" for k, v in settings.cut_params.items())
    hierarchy = []
    if settings.edges == "learned":
        thin = np.load(stage.BOUNDARIES_DIR / f"{stem}.npy", mmap_mode="r")[1]
        if thin.shape != ucm.shape[1:]:
            thin = cv2.resize(np.asarray(thin), ucm.shape[:0:-1], interpolation=cv2.INTER_LINEAR)
        hierarchy.append(
            old_captioned(
                ucm_panel(np.asarray(thin), min_width=min_width, gamma=1.0),
                "learned boundaries (thinned)",
            )
        )
    hierarchy += [
        old_captioned(
            ucm_panel(boundary_strength(ucm), min_width=min_width),
            f"hierarchy on {settings.edges} edges (UCM)",
        ),
        old_captioned(
            stage._contours(rgb, cut, config), f"cut at {value}: {int(cut.max()) + 1} regions"
        ),
    ]
    _old_write(out / f"{stem}_hierarchy.png", side_by_side(hierarchy))


def _old_write(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"OpenCV could not write {path}")


# --- the measurement ------------------------------------------------------------------


def prepare(images: Path, work: Path) -> None:
    """Run the stages before render in ``work`` (a fresh folder) on ``images``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["data"]["root"] = str(images.resolve())
    params["tune"]["n_trials"] = 3
    work.mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (work / "models").symlink_to(ROOT / "models")
    for stage in BEFORE_RENDER:
        print(f"{stage} ...", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, "-m", f"segclust.stages.{stage}"],
            cwd=work,
            check=True,
            capture_output=True,
        )


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def measure(work: Path, repeats: int) -> list[dict]:
    """Median seconds per image of the old and the new render, alternating."""
    from segclust.config import load_config
    from segclust.stages._common import feature_entries
    from segclust.stages.render import render_image

    os.chdir(work)
    config = load_config("params.yaml")
    ways = {"old": old_render_image, "ours": render_image}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        outs = {name: Path(tmp) / name for name in ways}
        for folder in outs.values():
            folder.mkdir()
        for entry in feature_entries():
            for name, fn in ways.items():  # warm-up: imports, fonts, caches
                fn(entry, config, outs[name])
            seconds: dict[str, list[float]] = {name: [] for name in ways}
            for r in range(repeats):
                for name in list(ways)[:: 1 if r % 2 == 0 else -1]:
                    seconds[name].append(timed(ways[name], entry, config, outs[name]))
            stem = entry[0]
            row = {
                "image": stem,
                "pixels": int(np.load(f"data/regions/configured/{stem}.npy").size),
            }
            for name in ways:
                row[name] = statistics.median(seconds[name])
                row[f"{name}_bytes"] = sum(p.stat().st_size for p in outs[name].glob(f"{stem}_*"))
            rows.append(row)
            print(f"{stem}: old {row['old']:.3f} s, ours {row['ours']:.3f} s", file=sys.stderr)
    return rows


def table(rows: list[dict], repeats: int, images: str) -> str:
    lines = [
        f"Render stage on {images}, seconds per image (median of {repeats}, alternating, one "
        "OpenCV thread; four PNGs each): `python benchmarks/render_speed.py`.",
        "",
        "| image | pixels | old (matplotlib figures) s | ours (arrays) s | old / ours "
        "| old KiB | ours KiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['image']} | {row['pixels']} | {row['old']:.3f} | {row['ours']:.3f} "
            f"| {row['old'] / row['ours']:.1f}× | {row['old_bytes'] // 1024} "
            f"| {row['ours_bytes'] // 1024} |"
        )
    old, ours = (statistics.mean(r[k] for r in rows) for k in ("old", "ours"))
    lines.append(
        f"| **mean** | | {old:.3f} | {ours:.3f} | {old / ours:.1f}× "
        f"| {sum(r['old_bytes'] for r in rows) // 1024 // len(rows)} "
        f"| {sum(r['ours_bytes'] for r in rows) // 1024 // len(rows)} |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=ROOT / "data" / "samples")
    parser.add_argument("--work", type=Path, help="a folder where the earlier stages ran")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label", help="what the images are, for the table's first line")
    parser.add_argument("--out", type=Path, help="also append the table to this file")
    args = parser.parse_args()
    out = args.out.resolve() if args.out else None  # measure() works inside the folder
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work
        if work is None:
            work = Path(tmp) / "work"
            prepare(args.images, work)
        params = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
        images = Path(params["data"]["root"])
        label = images.relative_to(ROOT) if images.is_relative_to(ROOT) else images.name
        label = args.label or f"`{label}`"
        text = table(measure(work.resolve(), args.repeats), args.repeats, label)
    print(text)
    if out:
        with out.open("a", encoding="utf-8") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    main()
