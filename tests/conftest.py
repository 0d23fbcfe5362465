"""Shared fixtures: small synthetic images and the paths tests need."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def two_region_grey(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    """Dark left half, bright right half, mild seeded noise: two obvious segments."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width), 60, dtype=np.int16)
    image[:, width // 2 :] = 190
    image += rng.integers(-6, 7, size=image.shape).astype(np.int16)
    return image.clip(0, 255).astype(np.uint8)


def three_region_bgr(height: int = 30, width: int = 36, seed: int = 1) -> np.ndarray:
    """Three vertical colour bands with noise (BGR, as OpenCV holds colour)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), dtype=np.int16)
    third = width // 3
    image[:, :third] = (200, 40, 40)
    image[:, third : 2 * third] = (40, 200, 40)
    image[:, 2 * third :] = (40, 40, 200)
    image += rng.integers(-8, 9, size=image.shape).astype(np.int16)
    return image.clip(0, 255).astype(np.uint8)


def repo_env() -> dict[str, str]:
    """The environment for git and DVC in a throw-away repository: this interpreter's tools
    first on PATH, a fixed git identity, no DVC analytics."""
    out = dict(os.environ)
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    out.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
        DVC_NO_ANALYTICS="1",
    )
    return out


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), f"could not write {path}"
    return path


@pytest.fixture
def tiny_image_dir(tmp_path: Path) -> Path:
    """A folder with a grey PNG, a colour PNG and a colour JPEG."""
    folder = tmp_path / "images"
    write_image(folder / "halves.png", two_region_grey())
    write_image(folder / "bands.png", three_region_bgr())
    write_image(folder / "bands_jpeg.jpg", three_region_bgr(seed=2))
    return folder
