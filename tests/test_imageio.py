"""Bad and odd input files: each gets a one-line error naming the file, or is handled."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from segclust.errors import ImageInputError
from segclust.imageio import list_images, read_image, safe_join
from segclust.pixels import to_display_rgb, to_grey
from tests.conftest import three_region_bgr, two_region_grey, write_image

EXTS = (".png", ".jpg", ".jpeg")


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width×height (8-bit RGB) but holds no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture")
    with pytest.raises(ImageInputError, match=r"notes\.png: not an image file"):
        read_image(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"empty\.png: empty file"):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageInputError, match="cannot read"):
        read_image(tmp_path / "gone.png")


def test_truncated_jpeg(tmp_path):
    ok, encoded = cv2.imencode(".jpg", three_region_bgr(64, 64))
    assert ok
    path = tmp_path / "cut.jpg"
    path.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(ImageInputError, match=r"cut\.jpg: truncated or corrupt"):
        read_image(path)


def test_header_claiming_billions_of_pixels_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header(100_000, 100_000))
    with pytest.raises(ImageInputError, match=r"bomb\.png: header says 100000x100000"):
        read_image(path, max_pixels=100_000_000)


def test_max_pixels_is_ours_to_set(tmp_path):
    path = write_image(tmp_path / "small.png", two_region_grey(20, 20))
    with pytest.raises(ImageInputError, match=r"above data\.max_pixels = 100"):
        read_image(path, max_pixels=100)


def test_one_pixel_image(tmp_path):
    path = write_image(tmp_path / "dot.png", np.zeros((1, 1), np.uint8))
    with pytest.raises(ImageInputError, match=r"dot\.png: image is 1x1"):
        read_image(path)


def test_sixteen_bit_png_keeps_its_depth_and_matches_8_bit(tmp_path):
    grey8 = two_region_grey()
    path = write_image(tmp_path / "deep.png", grey8.astype(np.uint16) * 257)
    image = read_image(path)
    assert image.dtype == np.uint16
    np.testing.assert_allclose(to_grey(image), to_grey(grey8), atol=1e-6)


def test_rgba_png_drops_alpha(tmp_path):
    bgr = three_region_bgr()
    alpha = np.full(bgr.shape[:2], 128, np.uint8)
    path = write_image(tmp_path / "rgba.png", np.dstack([bgr, alpha]))
    image = read_image(path)
    assert image.shape[2] == 4
    np.testing.assert_array_equal(to_grey(image), to_grey(bgr))
    assert to_display_rgb(image).shape == (*bgr.shape[:2], 3)


def test_grey_png_is_read_as_one_channel(tmp_path):
    grey = two_region_grey()
    image = read_image(write_image(tmp_path / "grey.png", grey))
    assert image.shape == grey.shape
    np.testing.assert_allclose(to_grey(image), grey / 255.0, atol=1e-6)


def test_colour_grey_conversion_keeps_256_levels():
    grey = to_grey(three_region_bgr(64, 64))
    assert grey.dtype == np.float32
    assert np.unique(grey).size <= 256
    assert 0.0 <= grey.min() and grey.max() <= 1.0


def test_empty_folder(tmp_path):
    with pytest.raises(ImageInputError, match="no images in"):
        list_images(tmp_path, None, EXTS)


def test_folder_missing(tmp_path):
    with pytest.raises(ImageInputError, match="is not a folder"):
        list_images(tmp_path / "nope", None, EXTS)


def test_listing_is_sorted_and_filtered(tiny_image_dir):
    (tiny_image_dir / "readme.txt").write_text("not an image")
    names = [p.name for p in list_images(tiny_image_dir, None, EXTS)]
    assert names == ["bands.png", "bands_jpeg.jpg", "halves.png"]


@pytest.mark.parametrize("name", ["../outside.png", "a/../../outside.png", "/etc/passwd", ""])
def test_names_escaping_the_data_folder_are_refused(tmp_path, name):
    with pytest.raises(ImageInputError, match=r"escapes the data folder|relative file name"):
        safe_join(tmp_path, name)


def test_listed_names_inside_the_folder_are_fine(tiny_image_dir):
    paths = list_images(tiny_image_dir, ["halves.png", "./bands.png"], EXTS)
    assert [p.name for p in paths] == ["halves.png", "bands.png"]


def test_listed_name_that_does_not_exist(tiny_image_dir):
    with pytest.raises(ImageInputError, match="no such file"):
        list_images(tiny_image_dir, ["missing.png"], EXTS)


def test_two_files_with_the_same_stem_are_refused(tiny_image_dir):
    write_image(tiny_image_dir / "halves.jpg", two_region_grey())
    with pytest.raises(ImageInputError, match="share the name 'halves'"):
        list_images(tiny_image_dir, None, EXTS)


def test_read_returns_header_size(tiny_image_dir: Path):
    image = read_image(tiny_image_dir / "bands_jpeg.jpg")
    assert image.shape == (30, 36, 3) and image.dtype == np.uint8
