"""Pictures of a segmentation, drawn straight into arrays.

Pure functions: arrays in, RGB uint8 arrays (or PNG bytes) out; nothing here writes files.
Colours come from a matplotlib colour map's lookup table, outlines from OpenCV and text from
Pillow in matplotlib's bundled DejaVu Sans. No figure is laid out per picture: that layout
was about 95% of the render stage's time. Same inputs, same bytes.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segclust.labels import NOISE

NOISE_RGB = (0, 0, 0)
WHITE = (255, 255, 255)
# Bundled with matplotlib, so every machine draws the same glyphs (no system font lookup).
FONT_FILE = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
LEGEND_COLUMNS = 4


def cluster_colours(n_clusters: int, cmap: str = "tab10") -> np.ndarray:
    """(n_clusters, 3) uint8 RGB colours; a qualitative map cycles past its length."""
    colormap = matplotlib.colormaps[cmap]
    if getattr(colormap, "N", 256) < 256:  # qualitative: take its colours in order
        rgba = colormap(np.arange(n_clusters) % colormap.N)
    else:
        rgba = colormap(np.linspace(0, 1, max(n_clusters, 1))[:n_clusters])
    return np.round(np.asarray(rgba)[:, :3] * 255).astype(np.uint8).reshape(n_clusters, 3)


def colour_labels(labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB image with each cluster in its colour and noise in black."""
    table = np.concatenate([np.array([NOISE_RGB], np.uint8), colours.astype(np.uint8)])
    return table[labels - NOISE]  # one lookup: noise (-1) is row 0


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
    The traces keep only the ends of straight runs: the lines between them cover the same
    pixels as every boundary point would, in about half the time.
    """
    canvas = np.ascontiguousarray(rgb.copy())
    traced = []
    for k in range(int(labels.max(initial=NOISE)) + 1):
        mask = (labels == k).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
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


def text_size(dpi: int, points: float = 10) -> int:
    """Pixel size of ``points``-point text at ``dpi``, so that ``render.dpi`` still sets how
    large the text is (10 pt at 100 dpi is 14 px, matplotlib's default)."""
    return max(6, round(points * dpi / 72))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's basic layout everywhere: with libraqm present it would shape text otherwise
    # (other widths, other pixels), and the pictures must be the same bytes on every machine
    return ImageFont.truetype(str(FONT_FILE), size, layout_engine=ImageFont.Layout.BASIC)


def fitted_size(text: str, size: int, width: int, smallest: int = 8) -> int:
    """``size``, or smaller so that ``text`` fits in ``width`` pixels (not below ``smallest``:
    past that a caption is cut off rather than unreadable)."""
    length = _font(size).getlength(text)
    if length <= width:
        return size
    return max(smallest, min(size, int(size * width / length)))


def draw_texts(
    canvas: np.ndarray, texts: list[tuple[tuple[float, float], str, int, str]]
) -> np.ndarray:
    """Copy of ``canvas`` with each (xy, text, size, Pillow anchor) written in black."""
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for xy, text, size, anchor in texts:
        draw.text(xy, text, font=_font(size), fill=(0, 0, 0), anchor=anchor)
    return np.array(image)


def captioned(
    panel: np.ndarray,
    caption: str,
    height: int | None = None,
    *,
    size: int = 14,
    align: str = "left",
) -> np.ndarray:
    """``panel`` under a white strip with ``caption`` in it (left or centred), shrunk to fit
    the panel's width."""
    height = height or round(1.85 * size)
    width = panel.shape[1]
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    fit = fitted_size(caption, size, width - 8)
    x, anchor = (4, "lm") if align == "left" else (width / 2, "mm")
    strip = draw_texts(strip, [((x, height / 2), caption, fit, anchor)])
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


def grey_picture(
    rgb: np.ndarray, grey: np.ndarray, *, title: str, min_width: int = 480, size: int = 14
) -> np.ndarray:
    """The original beside the grey transform the features start from, under ``title``."""
    factor = upscale_factor(rgb.shape[1], min_width)
    grey8 = np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)
    panels = [
        captioned(enlarge(picture, factor), caption, size=size, align="center")
        for picture, caption in (
            (rgb, "original"),
            (np.repeat(grey8[:, :, None], 3, axis=2), "grey (features start here)"),
        )
    ]
    return captioned(side_by_side(panels), title, size=round(1.2 * size), align="center")


def legend_entries(
    labels: np.ndarray, colours: np.ndarray, limit: int = 10
) -> list[tuple[str, tuple[int, int, int] | None]]:
    """Legend entries ("cluster k: share%", RGB swatch), largest first, plus noise when
    present; at most ``limit`` clusters and a swatch-less "+n more", so the legend stays
    three rows of four below a map."""
    total = labels.size
    counts = np.bincount(labels.ravel() - NOISE)  # row 0 counts noise
    noise, sizes = (int(counts[0]), counts[1:]) if counts.size else (0, counts)
    ids = np.flatnonzero(sizes)
    ids = ids[np.argsort(-sizes[ids], kind="stable")]
    entries: list[tuple[str, tuple[int, int, int] | None]] = [
        (f"{k}: {100 * sizes[k] / total:.1f}%", tuple(int(c) for c in colours[k]))
        for k in ids[:limit]
    ]
    if len(ids) > limit:
        entries.append((f"+{len(ids) - limit} more", None))
    if noise:
        entries.append((f"noise: {100 * noise / total:.1f}%", NOISE_RGB))
    return entries


def legend_panel(
    entries: list[tuple[str, tuple[int, int, int] | None]], width: int, size: int = 11
) -> np.ndarray:
    """White strip ``width`` wide with the entries as "swatch text", up to four a row
    (fewer when the strip is narrow), centred; a grey outline keeps pale swatches visible."""
    if not entries:
        return np.full((0, width, 3), 255, dtype=np.uint8)
    swatch_w, swatch_h, gap = round(1.8 * size), round(0.8 * size), round(0.6 * size)
    longest = max(_font(size).getlength(text) for text, _ in entries)
    column = swatch_w + gap + math.ceil(longest) + 2 * gap
    ncol = max(1, min(LEGEND_COLUMNS, len(entries), width // column))
    row = round(1.6 * size)
    canvas = np.full((-(-len(entries) // ncol) * row + gap, width, 3), 255, dtype=np.uint8)
    left = max(0, (width - ncol * column) // 2) + gap
    texts = []
    for i, (text, colour) in enumerate(entries):
        r, c = divmod(i, ncol)
        x, y = left + c * column, gap // 2 + r * row + row // 2
        if colour is not None:
            top, bottom = y - swatch_h // 2, y + swatch_h // 2
            cv2.rectangle(canvas, (x, top), (x + swatch_w - 1, bottom), colour, -1)
            cv2.rectangle(canvas, (x, top), (x + swatch_w - 1, bottom), (128, 128, 128), 1)
        texts.append(((x + swatch_w + gap, y), text, size, "lm"))
    return draw_texts(canvas, texts)


def blank_panel(height: int, width: int, message: str, size: int = 14) -> np.ndarray:
    """A light grey panel saying ``message`` in its middle (e.g. no valid clustering)."""
    canvas = np.full((height, width, 3), 235, dtype=np.uint8)
    fit = fitted_size(message, size, width - 8)
    return draw_texts(canvas, [((width / 2, height / 2), message, fit, "mm")])


def cluster_map_picture(
    panels: list[tuple[str, np.ndarray | None]],
    *,
    cmap: str,
    title: str,
    min_width: int = 480,
    size: int = 14,
) -> np.ndarray:
    """One coloured cluster map per (caption, labels), each with a legend of cluster sizes
    below, side by side under ``title``. A panel whose labels are ``None`` (e.g. tuning found
    no valid clustering) says so, at the size of the others."""
    shapes = [labels.shape for _, labels in panels if labels is not None]
    height, width = shapes[0] if shapes else (min_width * 3 // 4, min_width)
    factor = upscale_factor(width, min_width)
    drawn = []
    for caption, labels in panels:
        if labels is None:
            body = blank_panel(height * factor, width * factor, "no valid clustering", size)
        else:
            colours = cluster_colours(int(labels.max(initial=NOISE)) + 1, cmap)
            picture = enlarge(colour_labels(labels, colours), factor)
            legend = legend_panel(
                legend_entries(labels, colours), picture.shape[1], round(0.8 * size)
            )
            body = np.concatenate([picture, legend], axis=0)
        drawn.append(captioned(body, caption, size=size, align="center"))
    return captioned(side_by_side(drawn), title, size=round(1.2 * size), align="center")


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


def png_bytes(rgb: np.ndarray, compression: int = 1) -> bytes:
    """``rgb`` as PNG bytes, by OpenCV (no metadata, so the same array gives the same bytes).

    Encoding is most of what is left of drawing a picture. zlib level 1 with the one "up"
    filter (each row against the one above: flat maps, outlines and photos alike) was, on the
    samples and BSDS photos, both faster than OpenCV's default (level 1, "sub" filter,
    run-length matching) and about half its size; adaptive filters cost twice the time for
    no smaller files, level 9 ten times for under 10% less. OpenCV before 4.11 has no filter
    setting and chooses filters itself.
    """
    params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} {rgb.dtype} picture as PNG")
    return encoded.tobytes()


# --- Optuna's optimisation history, drawn as its matplotlib flavour looks ----------------------

PLOT_BACKGROUND = (229, 229, 229)  # the ggplot style Optuna's matplotlib plots use
POINT_RGB = (31, 119, 180)  # tab:blue, "Objective Value"
BEST_RGB = (226, 147, 141)  # tab:red at Optuna's alpha 0.5 on the plot background, "Best Value"


def _nice_ticks(lo: float, hi: float, *, integer: bool = False) -> np.ndarray:
    """matplotlib's own tick choice (``MaxNLocator``, as an axis makes it) inside [lo, hi]."""
    from matplotlib.ticker import MaxNLocator

    values = MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10], integer=integer).tick_values(lo, hi)
    return values[(values >= lo - 1e-12 * abs(hi - lo)) & (values <= hi + 1e-12 * abs(hi - lo))]


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value:.{decimals}f}"


def history_picture(
    trials: list[int],
    values: list[float],
    best: list[float],
    *,
    title: str,
    ylabel: str,
    dpi: int = 100,
) -> np.ndarray:
    """Optuna's optimisation history (each complete trial's value, the best so far as a line,
    a legend at the right) as an RGB array of 6.4 × 4 inches at ``dpi``, drawn with OpenCV and
    Pillow rather than laid out as a matplotlib figure: about a fifth of the tune stage's time
    per photo was that figure. With no complete trial the plot area says so.

    >>> picture = history_picture([0, 1, 2], [0.5, 0.7, 0.6], [0.5, 0.7, 0.7],
    ...                           title="demo", ylabel="silhouette")
    >>> picture.shape, picture.dtype
    ((400, 640, 3), dtype('uint8'))
    """
    scale = dpi / 100
    width, height = round(6.4 * dpi), round(4 * dpi)
    canvas = np.full((height, width, 3), 255, np.uint8)
    left, right = round(0.13 * width), round(0.70 * width)
    top, bottom = round(0.09 * height), round(0.88 * height)
    cv2.rectangle(canvas, (left, top), (right, bottom), PLOT_BACKGROUND, thickness=-1)
    size, small = text_size(dpi, 12), text_size(dpi, 10)
    texts: list[tuple[tuple[float, float], str, int, str]] = [
        ((width * 0.415, top / 2), title, text_size(dpi, 13), "mm"),
        (((left + right) / 2, height - 0.3 * (height - bottom)), "Trial", size, "mm"),
    ]
    if values:
        x_lo, x_hi = min(trials), max(trials)
        x_pad = max(0.5, (x_hi - x_lo) * 0.05)
        x_lo, x_hi = x_lo - x_pad, x_hi + x_pad
        y_lo, y_hi = min(values), max(values)
        y_pad = (y_hi - y_lo) * 0.05 or max(abs(y_hi) * 0.05, 0.01)
        y_lo, y_hi = y_lo - y_pad, y_hi + y_pad

        def to_px(x: float, y: float) -> tuple[int, int]:
            px = left + (x - x_lo) / (x_hi - x_lo) * (right - left)
            py = bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)
            return round(px), round(py)

        grid = max(1, round(scale))
        x_ticks = _nice_ticks(x_lo, x_hi, integer=True)
        y_ticks = _nice_ticks(y_lo, y_hi)
        y_step = float(np.diff(y_ticks).min()) if y_ticks.size > 1 else abs(y_hi - y_lo)
        for x in x_ticks:
            px, _ = to_px(x, y_lo)
            cv2.line(canvas, (px, top), (px, bottom), WHITE, grid)
            texts.append(((px, bottom + 4 * scale), f"{round(float(x))}", small, "mt"))
        for y in y_ticks:
            _, py = to_px(x_lo, y)
            cv2.line(canvas, (left, py), (right, py), WHITE, grid)
            texts.append(((left - 5 * scale, py), _tick_label(y, y_step), small, "rm"))
        line = np.array([to_px(x, y) for x, y in zip(trials, best, strict=True)], np.int32)
        cv2.polylines(canvas, [line], False, BEST_RGB, max(1, round(1.5 * scale)), cv2.LINE_AA)
        for x, y in zip(trials, values, strict=True):
            cv2.circle(canvas, to_px(x, y), max(2, round(4 * scale)), POINT_RGB, -1, cv2.LINE_AA)
    else:
        texts.append((((left + right) / 2, (top + bottom) / 2), "no complete trial", size, "mm"))
    # the legend, right of the plot area, as Optuna places it
    box_left, box_top = right + round(0.03 * width), top
    row = round(1.6 * small)
    box = (box_left, box_top, width - round(0.02 * width), box_top + 2 * row + round(8 * scale))
    cv2.rectangle(canvas, box[:2], box[2:], (240, 240, 240), -1)
    cv2.rectangle(canvas, box[:2], box[2:], (204, 204, 204), 1)
    mark_x = box_left + round(14 * scale)
    first, second = box_top + round(4 * scale) + row // 2, box_top + round(4 * scale) + 3 * row // 2
    cv2.circle(canvas, (mark_x, first), max(2, round(4 * scale)), POINT_RGB, -1, cv2.LINE_AA)
    cv2.line(canvas, (mark_x - round(10 * scale), second), (mark_x + round(10 * scale), second),
             BEST_RGB, max(1, round(1.5 * scale)), cv2.LINE_AA)  # fmt: skip
    texts += [
        ((mark_x + round(18 * scale), first), "Objective Value", small, "lm"),
        ((mark_x + round(18 * scale), second), "Best Value", small, "lm"),
    ]
    canvas = draw_texts(canvas, texts)
    # the y label, written sideways
    label_width = round(0.8 * (bottom - top))
    strip = np.full((round(1.6 * size), label_width, 3), 255, np.uint8)
    strip = draw_texts(strip, [((label_width / 2, strip.shape[0] / 2), ylabel, size, "mm")])
    strip = np.ascontiguousarray(np.rot90(strip))
    y0 = (top + bottom) // 2 - strip.shape[0] // 2
    canvas[y0 : y0 + strip.shape[0], 2 : 2 + strip.shape[1]] = np.minimum(
        canvas[y0 : y0 + strip.shape[0], 2 : 2 + strip.shape[1]], strip
    )
    return canvas
