"""Shared fixtures: small synthetic images and the paths tests need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import segclust  # noqa: F401  (first: it pins the CPU kernels before NumPy loads)

# isort: split
import cv2
import numpy as np
import pytest
import yaml

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


# Written by the pipeline: left out of a project copy so that `dvc repro` makes them.
GENERATED = (
    "dvc.lock",
    "metrics",
    "plots",
    "data/features",
    "data/boundaries",
    "data/labels",
    "data/tuned",
    "data/studies",
    "data/regions",
    "data/hierarchy",
    "data/evaluation",
)
# ... but for the trained boundary models, which a copy has as a user's clone has them: the
# models in Git, their training stages' lock entries and metrics (the training split is not
# beside the copy, so `dvc repro --allow-missing` keeps them, as it does in a fresh clone).
TRAINED = "train_boundaries"


def sh(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in ``repo`` with :func:`repo_env`; a failure shows its output."""
    result = subprocess.run(
        list(args), cwd=repo, env=repo_env(), capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def copy_project(repo: Path) -> Path:
    """This project's files (tracked, or untracked and not ignored; pipeline outputs left
    out) copied into ``repo``, with ``tune=quick`` as the default so that tests stay short.
    The caller makes it a git repository once it has changed what it needs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in listed.stdout.splitlines():
        source = REPO_ROOT / name
        generated = name.startswith(GENERATED) and not name.endswith(".gitignore")
        if source.is_file() and (not generated or name.startswith(f"metrics/{TRAINED}_")):
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    lock = yaml.safe_load((REPO_ROOT / "dvc.lock").read_text())
    lock["stages"] = {k: v for k, v in lock["stages"].items() if k.startswith(f"{TRAINED}@")}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    config = repo / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("- tune: default", "- tune: quick"))
    return repo


def commit_all(repo: Path, message: str) -> None:
    """Compose params.yaml from conf/ and commit everything as the first commit on main."""
    sh(repo, sys.executable, str(repo / "scripts" / "compose_params.py"))
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", message)


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), f"could not write {path}"
    return path


def write_tiny_images(folder: Path) -> Path:
    """``folder`` with a grey PNG, a colour PNG and a colour JPEG."""
    write_image(folder / "halves.png", two_region_grey())
    write_image(folder / "bands.png", three_region_bgr())
    write_image(folder / "bands_jpeg.jpg", three_region_bgr(seed=2))
    return folder


@pytest.fixture
def tiny_image_dir(tmp_path: Path) -> Path:
    """A folder with a grey PNG, a colour PNG and a colour JPEG."""
    return write_tiny_images(tmp_path / "images")
