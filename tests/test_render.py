"""Pictures: colours, contours where the boundaries are, legends that add up."""

from __future__ import annotations

import numpy as np

from segclust.render import (
    captioned,
    cluster_colours,
    cluster_map_figure,
    colour_labels,
    contour_panel,
    draw_contours,
    legend_handles,
    side_by_side,
    upscale_factor,
)


def test_colours_are_distinct_for_qualitative_maps():
    colours = cluster_colours(10, "tab10")
    assert colours.shape == (10, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours}) == 10


def test_continuous_colormap_spreads_colours():
    colours = cluster_colours(3, "viridis")
    assert len({tuple(c) for c in colours}) == 3


def test_colour_labels_paints_noise_black():
    labels = np.array([[0, 1], [-1, 0]])
    colours = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    out = colour_labels(labels, colours)
    assert out[1, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [0, 255, 0]


def test_contours_follow_the_cluster_boundary():
    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    rgb = np.full((20, 20, 3), 128, np.uint8)
    colours = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    out = draw_contours(rgb, labels, colours, thickness=1)
    blue = np.all(out == (0, 0, 255), axis=2)
    assert blue[5, 5:15].all() and blue[14, 5:15].all() and not blue[10, 10]
    assert (rgb == 128).all(), "the input must not be drawn on"


def test_contour_panel_enlarges_small_images():
    labels = np.zeros((10, 16), np.int32)
    labels[:, 8:] = 1
    out = contour_panel(
        np.zeros((10, 16, 3), np.uint8), labels, cluster_colours(2), min_width=64, thickness=1
    )
    assert out.shape == (40, 64, 3)
    assert upscale_factor(16, 64) == 4 and upscale_factor(500, 64) == 1


def test_legend_shares_add_up_and_name_noise():
    labels = np.array([0] * 6 + [1] * 3 + [-1])
    texts = [h.get_label() for h in legend_handles(labels, cluster_colours(2))]
    assert texts == ["0: 60.0%", "1: 30.0%", "noise: 10.0%"]


def test_cluster_map_figure_has_a_panel_per_labelling():
    labels = np.zeros((6, 6), np.int32)
    labels[:, 3:] = 1
    fig = cluster_map_figure([("configured", labels), ("tuned", None)], cmap="tab10", title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["configured", "tuned"]
    assert fig.axes[1].texts[0].get_text() == "no valid clustering"


def test_side_by_side_and_caption_shapes():
    a, b = np.zeros((10, 5, 3), np.uint8), np.zeros((7, 4, 3), np.uint8)
    joined = side_by_side([a, b], gap=2)
    assert joined.shape == (10, 11, 3)
    assert captioned(a, "x", height=20).shape == (30, 5, 3)


def test_legend_is_capped_and_counts_the_rest():
    labels = np.repeat(np.arange(15), 2)
    texts = [h.get_label() for h in legend_handles(labels, cluster_colours(15), limit=12)]
    assert len(texts) == 13 and texts[-1] == "+3 more"


def test_all_noise_renders_black_with_a_noise_legend():
    labels = np.full((6, 8), -1, np.int32)
    colours = cluster_colours(0)
    assert colours.shape == (0, 3)
    assert not colour_labels(labels, colours).any()
    fig = cluster_map_figure([("configured", labels)], cmap="tab10", title="t")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["noise: 100.0%"]
    rgb = np.full((6, 8, 3), 90, np.uint8)
    panel = contour_panel(rgb, labels, colours, min_width=8, thickness=1)
    np.testing.assert_array_equal(panel, rgb)


def test_a_long_legend_fits_inside_the_figure():
    rng = np.random.default_rng(0)
    many = rng.integers(0, 30, size=(60, 60)).astype(np.int32)
    many[:5] = -1  # noise adds one more entry
    few = np.repeat(np.arange(4, dtype=np.int32), 900).reshape(60, 60)
    fig = cluster_map_figure([("many", many), ("few", few)], cmap="tab10", title="t")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        box = ax.get_legend().get_window_extent(renderer)
        assert box.y0 >= 0, "the legend's last row is cut off"
    assert len(fig.axes[0].get_legend().get_texts()) == 12  # 10 + "+20 more" + noise
