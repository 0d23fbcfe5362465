"""Pictures: colours, contours where the boundaries are, legends that add up."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import optuna
import pytest

from segclust.render import (
    BEST_RGB,
    POINT_RGB,
    captioned,
    cluster_colours,
    cluster_map_picture,
    colour_labels,
    contour_panel,
    draw_contours,
    fitted_size,
    grey_picture,
    history_picture,
    legend_entries,
    legend_panel,
    png_bytes,
    side_by_side,
    text_size,
    upscale_factor,
)

WHITE = (255, 255, 255)


def texts(entries):
    return [text for text, _ in entries]


def halves(height: int = 6, width: int = 6) -> np.ndarray:
    labels = np.zeros((height, width), np.int32)
    labels[:, width // 2 :] = 1
    return labels


def test_colours_are_distinct_for_qualitative_maps():
    colours = cluster_colours(10, "tab10")
    assert colours.shape == (10, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours}) == 10


def test_colours_are_the_colour_maps_own():
    for cmap, n in (("tab10", 13), ("viridis", 5)):
        colormap = matplotlib.colormaps[cmap]
        at = [i % colormap.N for i in range(n)] if cmap == "tab10" else np.linspace(0, 1, n)
        expected = [[round(c * 255) for c in colormap(x)[:3]] for x in at]
        assert cluster_colours(n, cmap).tolist() == expected


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


def test_outlines_cover_every_traced_boundary_pixel():
    # smooth random regions (blurred noise, quantised), outlines 1 and 3 pixels wide
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.normal(size=(90, 120)), (0, 0), 6)
    labels = np.digitize(noise, np.quantile(noise, [0.2, 0.45, 0.7, 0.9])).astype(np.int32)
    labels[40:50, 10:30] = -1
    colours = cluster_colours(5)
    rgb = np.full((90, 120, 3), 128, np.uint8)
    for thickness in (1, 3):
        expected = rgb.copy()
        masks = [(labels == k).astype(np.uint8) for k in range(5)]
        traced = [cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0] for m in masks]
        for contours in traced:
            cv2.drawContours(expected, contours, -1, (0, 0, 0), thickness + 2)
        for k, contours in enumerate(traced):
            cv2.drawContours(expected, contours, -1, tuple(int(c) for c in colours[k]), thickness)
        np.testing.assert_array_equal(draw_contours(rgb, labels, colours, thickness), expected)


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
    colours = cluster_colours(2)
    entries = legend_entries(labels, colours)
    assert texts(entries) == ["0: 60.0%", "1: 30.0%", "noise: 10.0%"]
    assert [swatch for _, swatch in entries] == [tuple(colours[0]), tuple(colours[1]), (0, 0, 0)]


def test_legend_lists_the_largest_first():
    labels = np.array([0] * 2 + [1] * 5 + [2] * 3)
    assert texts(legend_entries(labels, cluster_colours(3))) == ["1: 50.0%", "2: 30.0%", "0: 20.0%"]


def test_cluster_map_picture_colours_each_panel_from_the_colour_table():
    labels = halves(6, 8)
    colours = cluster_colours(2, "tab10")
    picture = cluster_map_picture(
        [("configured", labels), ("tuned", None)], cmap="tab10", title="t", min_width=64
    )
    # the left panel's map (6×8 enlarged 8 times): each half in its cluster's colour
    title_and_caption = round(1.85 * round(1.2 * 14)) + round(1.85 * 14)
    shown = picture[title_and_caption : title_and_caption + 48, :64]
    assert np.all(shown[:, :32] == colours[0]) and np.all(shown[:, 32:] == colours[1])
    # the tuned panel has no labels: a grey panel the map's size says so, no map colours
    right = picture[:, 64 + 8 :]
    assert right.shape[1] == 64
    assert np.all(right == 235, axis=2).sum() > 0.8 * 48 * 64
    assert not np.all(right == colours[0], axis=2).any()
    message = np.any(right < 200, axis=2) & np.all(right == right[..., :1], axis=2)
    assert message.any(), "'no valid clustering' must be written"


def test_side_by_side_and_caption_shapes():
    a, b = np.zeros((10, 5, 3), np.uint8), np.zeros((7, 4, 3), np.uint8)
    joined = side_by_side([a, b], gap=2)
    assert joined.shape == (10, 11, 3)
    assert captioned(a, "x", height=20).shape == (30, 5, 3)


def test_legend_is_capped_and_counts_the_rest():
    labels = np.repeat(np.arange(15), 2)
    entries = legend_entries(labels, cluster_colours(15), limit=12)
    assert len(entries) == 13 and entries[-1] == ("+3 more", None)


def test_all_noise_renders_black_with_a_noise_legend():
    labels = np.full((6, 8), -1, np.int32)
    colours = cluster_colours(0)
    assert colours.shape == (0, 3)
    assert not colour_labels(labels, colours).any()
    assert legend_entries(labels, colours) == [("noise: 100.0%", (0, 0, 0))]
    picture = cluster_map_picture([("configured", labels)], cmap="tab10", title="t", min_width=64)
    below_map = picture[-40:]
    assert (np.all(below_map == 0, axis=2).sum()) > 20, "the noise swatch is drawn"
    rgb = np.full((6, 8, 3), 90, np.uint8)
    panel = contour_panel(rgb, labels, colours, min_width=8, thickness=1)
    np.testing.assert_array_equal(panel, rgb)


def test_a_long_legend_shows_every_swatch_at_any_width():
    rng = np.random.default_rng(0)
    many = rng.integers(0, 30, size=(60, 60)).astype(np.int32)
    many[:5] = -1  # noise adds one more entry
    colours = cluster_colours(30, "viridis")
    entries = legend_entries(many, colours)
    assert len(entries) == 12 and entries[10][0] == "+20 more"  # 10 + "+20 more" + noise
    for width in (480, 200, 90):
        legend = legend_panel(entries, width, size=11)
        assert legend.shape[1] == width
        for _, swatch in entries:
            if swatch is not None:
                assert np.all(legend == swatch, axis=2).sum() >= 10, (width, swatch)
        # the last row's text is inside the strip, with white below it
        inked = np.flatnonzero(np.any(legend != 255, axis=(1, 2)))
        assert inked[-1] < legend.shape[0] - 1
    assert legend_panel(entries, 90, 11).shape[0] > legend_panel(entries, 480, 11).shape[0]


def test_titles_and_captions_are_written_in_their_strips():
    rgb = np.full((20, 30, 3), 200, np.uint8)
    grey = np.full((20, 30), 0.5, np.float32)
    size = text_size(100)
    assert size == 14  # matplotlib's default 10 pt at 100 dpi
    picture = grey_picture(rgb, grey, title="astronaut", min_width=120, size=size)
    title = picture[: round(1.85 * round(1.2 * size))]
    inked = np.flatnonzero(np.any(title < 128, axis=(0, 2)))
    assert inked.size and abs((inked[0] + inked[-1]) / 2 - picture.shape[1] / 2) < 10, "centred"
    below = picture[title.shape[0] :]
    caption = below[: round(1.85 * size)]
    assert np.any(caption[:, :120] < 128) and np.any(caption[:, 128:] < 128), "both captions"
    panel = below[caption.shape[0] :]
    assert panel.shape[0] == 20 * 4 and np.all(panel[:, :120] == 200)
    assert np.all(panel[:, 128:] == 128), "grey 0.5 is 128"


def test_long_captions_shrink_to_fit():
    caption = "cut at threshold=0.3677, colour_weight=0.5: 12 regions"
    assert fitted_size(caption, 14, 1000) == 14
    smaller = fitted_size(caption, 14, 200)
    assert 8 <= smaller < 14
    narrow = captioned(np.zeros((5, 200, 3), np.uint8), caption)
    assert np.any(narrow[:-5, -20:] < 128), "the caption reaches the right of the panel"


def test_pictures_are_deterministic_png_bytes():
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 5, size=(30, 40)).astype(np.int32)

    def draw() -> bytes:
        picture = cluster_map_picture(
            [("configured kmeans · regions", labels), ("tuned", labels)],
            cmap="tab10",
            title="t: lab features",
        )
        return png_bytes(picture)

    first = draw()
    assert first == draw()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and b"tEXt" not in first and b"tIME" not in first
    picture = cluster_map_picture([("c", labels)], cmap="tab10", title="t")
    decoded = cv2.imdecode(np.frombuffer(png_bytes(picture), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded[:, :, ::-1], picture)  # lossless, RGB order kept


# --- the optimisation history (tune stage) ---------------------------------------------------


def _study(direction: str, values: list[float | None]) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for value in values:
        trial = study.ask()
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    return study


@pytest.mark.parametrize(
    ("direction", "best"),
    [("maximize", [0.5, 0.5, 0.7, 0.7]), ("minimize", [0.5, 0.2, 0.2, 0.2])],
)
def test_the_history_is_the_complete_trials_and_the_best_so_far(direction, best):
    from segclust.stages.tune import history_values

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(direction, [0.5, 0.2, None, 0.7, 0.3])
    trials, values, running = history_values(study)
    assert trials == [0, 1, 3, 4] and values == [0.5, 0.2, 0.7, 0.3]
    assert running == best


def test_the_history_picture_draws_one_point_per_trial_and_the_best_line():
    trials, values = [0, 1, 2, 3], [0.2, 0.8, 0.5, 0.4]
    best = [0.2, 0.8, 0.8, 0.8]
    picture = history_picture(trials, values, best, title="t", ylabel="silhouette", dpi=100)
    assert picture.shape == (400, 640, 3)
    points = np.all(picture == POINT_RGB, axis=2).astype(np.uint8)
    count, _ = cv2.connectedComponents(points)
    assert count - 1 == len(trials) + 1  # one blob per trial, and the legend's marker
    assert np.all(picture == BEST_RGB, axis=2).sum() > 100  # the line of the best so far
    again = history_picture(trials, values, best, title="t", ylabel="silhouette", dpi=100)
    assert np.array_equal(picture, again)


def test_a_study_without_a_complete_trial_still_has_a_picture():
    picture = history_picture([], [], [], title="t", ylabel="silhouette", dpi=100)
    assert picture.shape == (400, 640, 3)
    assert not np.all(picture == POINT_RGB, axis=2)[:, : int(0.7 * 640)].any()
