"""Pictures of a segmentation: coloured cluster maps (matplotlib) and contours (OpenCV).

Pure functions: arrays in, RGB arrays or matplotlib ``Figure`` objects out; nothing here
writes files. Figures are built with ``matplotlib.figure.Figure`` directly, which needs no
display and no global pyplot state.
"""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from segclust.labels import NOISE

NOISE_RGB = (0, 0, 0)


def cluster_colours(n_clusters: int, cmap: str = "tab10") -> np.ndarray:
    """(n_clusters, 3) uint8 RGB colours; a qualitative map cycles past its length."""
    colormap = matplotlib.colormaps[cmap]
    if getattr(colormap, "N", 256) < 256:  # qualitative: take its colours in order
        picks = [colormap(i % colormap.N) for i in range(n_clusters)]
    else:
        picks = [colormap(x) for x in np.linspace(0, 1, max(n_clusters, 1))][:n_clusters]
    rgb = [[round(c * 255) for c in rgba[:3]] for rgba in picks]
    return np.array(rgb, dtype=np.uint8).reshape(n_clusters, 3)


def colour_labels(labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB image with each cluster in its colour and noise in black."""
    out = np.empty((*labels.shape, 3), dtype=np.uint8)
    out[...] = NOISE_RGB
    valid = labels != NOISE
    out[valid] = colours[labels[valid]]
    return out


def upscale_factor(width: int, min_width: int) -> int:
    """Integer factor that brings a small image to at least ``min_width`` pixels wide."""
    return max(1, -(-min_width // max(width, 1)))


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so labels and pixels stay crisp."""
    if factor == 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def draw_contours(
    rgb: np.ndarray, labels: np.ndarray, colours: np.ndarray, thickness: int = 1
) -> np.ndarray:
    """Copy of ``rgb`` with each cluster's outline in the cluster's colour over a dark halo.

    ``cv2.findContours`` traces each cluster's mask; ``cv2.drawContours`` draws the traces.
    """
    canvas = np.ascontiguousarray(rgb.copy())
    traced = []
    for k in range(int(labels.max(initial=NOISE)) + 1):
        mask = (labels == k).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        traced.append((contours, tuple(int(c) for c in colours[k])))
    # A dark halo first, so an outline stays visible on a region of its own colour.
    for contours, _ in traced:
        cv2.drawContours(canvas, contours, -1, (0, 0, 0), thickness + 2)
    for contours, colour in traced:
        cv2.drawContours(canvas, contours, -1, colour, thickness)
    return canvas


def contour_panel(
    rgb: np.ndarray, labels: np.ndarray, colours: np.ndarray, *, min_width: int, thickness: int
) -> np.ndarray:
    """Contours over the original, enlarged first so thin outlines stay visible."""
    factor = upscale_factor(rgb.shape[1], min_width)
    return draw_contours(enlarge(rgb, factor), enlarge(labels, factor), colours, thickness)


def captioned(panel: np.ndarray, caption: str, height: int = 26) -> np.ndarray:
    """``panel`` under a white strip with ``caption`` written by OpenCV."""
    strip = np.full((height, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(
        strip, caption, (4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
    )
    return np.concatenate([strip, panel], axis=0)


def side_by_side(panels: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels of equal height joined left to right with white gaps."""
    height = max(p.shape[0] for p in panels)
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, panel in enumerate(panels):
        if i:
            parts.append(spacer)
        pad = height - panel.shape[0]
        if pad:
            panel = np.pad(panel, ((0, pad), (0, 0), (0, 0)), constant_values=255)
        parts.append(panel)
    return np.concatenate(parts, axis=1)


def grey_figure(rgb: np.ndarray, grey: np.ndarray, *, title: str, dpi: int = 100) -> Figure:
    """The original beside the grey transform the features start from."""
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


def cluster_map_figure(
    panels: list[tuple[str, np.ndarray | None]], *, cmap: str, title: str, dpi: int = 100
) -> Figure:
    """One coloured cluster map per (caption, labels) with a legend of cluster sizes.

    A panel whose labels are ``None`` (e.g. tuning found no valid clustering) says so.
    """
    drawn = []
    for caption, labels in panels:
        if labels is None:
            drawn.append((caption, None, None, []))
            continue
        colours = cluster_colours(int(labels.max(initial=NOISE)) + 1, cmap)
        drawn.append((caption, labels, colours, legend_handles(labels, colours)))
    # 5 in wide maps, as tall as the image makes them, titles above and room below for the
    # tallest legend (four entries a row): a fixed height cut long legends off
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


def legend_handles(labels: np.ndarray, colours: np.ndarray, limit: int = 10) -> list[Patch]:
    """Legend entries "cluster k: share%" (largest first), plus noise when present.

    At most ``limit`` + 2 entries (three rows of four below a map): more would be cut off.
    """
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


def ucm_panel(strength: np.ndarray, *, min_width: int, gamma: float = 0.5) -> np.ndarray:
    """The ultrametric contour map as a picture: darker where a boundary survives to a higher
    level of the hierarchy (BSDS's way of showing a UCM), on white.

    ``strength`` is the per-pixel boundary height (:func:`segclust.hierarchy.boundary_strength`)
    or any boundary map; it is scaled by its maximum, to the power ``gamma`` (a square root by
    default, so that weak boundaries stay visible).
    """
    top = float(strength.max(initial=0.0))
    level = (strength / top) ** gamma if top > 0 else np.zeros_like(strength)
    grey = np.round(255 * (1 - level)).astype(np.uint8)
    factor = upscale_factor(strength.shape[1], min_width)
    return enlarge(np.repeat(grey[:, :, None], 3, axis=2), factor)
