"""The learned boundary model: cues, thinning, training, its file, its stages' errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from segclust.boundaries import boundary_map
from segclust.boundary_cues import CueSpec, cue_stack, half_disc_tensor, tensor_extremes
from segclust.boundary_maps import boundary_maps, thin_boundaries
from segclust.boundary_model import (
    BoundariesConfig,
    BoundaryModel,
    boundary_targets,
    load_model,
    model_bytes,
)
from segclust.errors import ConfigError, ModelFileError, TrainingDataError
from segclust.execution import ExecutionConfig
from segclust.groundtruth import training_pairs
from segclust.imageio import IMAGE_EXTENSIONS
from segclust.stages.train_boundaries import TrainSettings, train_model
from tests.conftest import REPO_ROOT, write_image

BASE_MODEL = REPO_ROOT / "models" / "boundaries_base.npz"
SMALL = {
    "cues": {"colour_bins": 6, "textons": 4, "scales": 2, "sigma": 2.0, "cnn": ""},
    "classifier": {"name": "mlp", "hidden": "8", "epochs": 3, "batch_size": 128},
}


def regions_photo(seed: int, height: int = 48, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A BGR photo of four seeded rectangles of different colour and texture, and its labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.int32)
    cy, cx = rng.integers(height // 3, 2 * height // 3), rng.integers(width // 3, 2 * width // 3)
    labels[:cy, cx:] = 1
    labels[cy:, :cx] = 2
    labels[cy:, cx:] = 3
    colours = rng.integers(30, 226, size=(4, 3))
    photo = colours[labels].astype(np.float64)
    photo += rng.normal(0, 1, size=(height, width, 1)) * (4 + 8 * (labels % 2))[:, :, None]
    return np.clip(photo, 0, 255).astype(np.uint8), labels


@pytest.fixture
def training_folder(tmp_path: Path) -> Path:
    """Three small photos with label-map ground truth, in the BSDS layout."""
    root = tmp_path / "train"
    for i in range(3):
        photo, labels = regions_photo(i)
        write_image(root / "images" / f"img{i}.png", photo)
        write_image(root / "truth" / f"img{i}.png", labels.astype(np.uint8))
    return root


def settings_for(folder: Path, jobs: int = 1, seed: int = 0, **train) -> TrainSettings:
    boundaries = BoundariesConfig.from_dict(
        {
            "model": "small",
            "models": {"small": SMALL},
            "train": {
                "images": str(folder / "images"),
                "ground_truth": str(folder / "truth"),
                "pixels_per_image": 400,
                "texton_pixels": 200,
                **train,
            },
        }
    )
    return TrainSettings(seed, boundaries, ExecutionConfig(jobs=jobs), "small")


def trained(folder: Path, **kwargs) -> BoundaryModel:
    settings = settings_for(folder, **kwargs)
    train = settings.boundaries.train
    pairs = training_pairs(train["images"], train["ground_truth"], IMAGE_EXTENSIONS)
    return train_model(settings, pairs)


# --- thinning and cues ----------------------------------------------------------------------------


def distance_to(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the Euclidean distance to the nearest pixel of ``mask``."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def ridge_of(step: np.ndarray) -> np.ndarray:
    """The gradient magnitude of a blurred step: a soft boundary a few pixels wide."""
    blurred = cv2.GaussianBlur(step, (0, 0), 2.0)
    gx, gy = cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
    return np.sqrt(gx * gx + gy * gy)


@pytest.mark.parametrize("direction", ["vertical", "horizontal", "diagonal"])
def test_nms_thins_a_blurred_step_to_one_pixel(direction):
    size = 40
    rows, cols = np.indices((size, size))
    edge = {"vertical": cols >= 20, "horizontal": rows >= 20, "diagonal": cols > rows}[direction]
    ridge = ridge_of(edge.astype(np.float32))
    wide = ridge > 0.5 * ridge.max()
    thin = thin_boundaries(ridge, smooth=0.0, border=0) > 0.5 * ridge.max()
    inner = np.zeros(thin.shape, bool)
    inner[6:-6, 6:-6] = True  # away from the frame, where the blur is cut off
    blocks = thin[:-1, :-1] & thin[1:, :-1] & thin[:-1, 1:] & thin[1:, 1:]
    assert not blocks.any()  # nowhere two pixels wide (a diagonal is a 4-connected staircase)
    assert np.count_nonzero(wide[inner]) >= 3 * np.count_nonzero(thin[inner])
    if direction != "diagonal":  # one pixel per row (per column) exactly
        lines = thin[6:-6] if direction == "vertical" else thin[:, 6:-6].T
        assert all(np.count_nonzero(line) == 1 for line in lines)
    # ... on the step, and all along it
    truth = boundary_map(edge.astype(int))
    to_truth, to_thin = distance_to(truth), distance_to(thin)
    assert to_truth[thin & inner].max() <= 1.0 and to_thin[truth & inner].max() <= 1.0


def test_half_disc_difference_is_largest_across_the_boundary_and_turns_with_it():
    photo = np.zeros((40, 40, 3), np.float32)
    photo[:, 20:] = (0.9, 0.2, 0.1)
    spec = CueSpec(colour_bins=8, textons=0, scales=2)
    cues = cue_stack(photo, spec)
    assert cues.shape == (40, 40, len(spec.names()))
    strongest = cues[:, :, spec.names().index("L_s0_max")]
    assert set(np.argmax(strongest[5:35], axis=1)) <= {19, 20}
    # rotating the photo by 90 degrees rotates the cue: every orientation counts the same
    turned = cue_stack(np.ascontiguousarray(np.rot90(photo)), spec)
    np.testing.assert_allclose(np.rot90(cues), turned, atol=1e-4)
    # the tensor's extremes are the max and min over orientations of the quadratic form
    stack = np.random.default_rng(0).random((16, 16, 5)).astype(np.float32)
    axx, axy, ayy = half_disc_tensor(stack, 1.5)
    theta = np.linspace(0, np.pi, 361)[:, None, None]
    chi2 = axx * np.cos(theta) ** 2 + 2 * axy * np.cos(theta) * np.sin(theta)
    chi2 += ayy * np.sin(theta) ** 2
    high, low = tensor_extremes(axx, axy, ayy)
    np.testing.assert_allclose(high**2, chi2.max(axis=0), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(low**2, chi2.min(axis=0), rtol=1e-3, atol=1e-6)


def test_targets_mark_boundaries_consensus_and_far_pixels():
    a = np.zeros((10, 10), bool)
    a[:, 5] = True
    b = np.roll(a, 1, axis=1)  # a second annotator, one pixel to the right
    on, consensus, far = boundary_targets([a, b], negative_distance=2.0)
    assert on[:, 5].all() and on[:, 6].all() and not on[:, 0].any()
    assert consensus[0, 5] == consensus[0, 6] == 1.0  # each within one pixel of the other
    assert consensus[0, 8] == 0.0 and consensus[0, 7] == 0.5
    assert far[:, :3].all() and not far[:, 3:9].any()


# --- the committed model --------------------------------------------------------------------------


def test_the_committed_model_finds_the_boundaries_of_known_regions():
    model = load_model(BASE_MODEL)
    hits, found = [], []
    for seed in range(3):
        photo, labels = regions_photo(seed, 96, 128)
        maps = boundary_maps(photo, model, BoundariesConfig())
        assert maps.shape == (2, 96, 128) and maps.dtype == np.float32
        truth = boundary_map(labels)
        thin = maps[1] > 0.3
        to_truth, to_thin = distance_to(truth), distance_to(thin)
        frame = np.zeros(truth.shape, bool)
        frame[6:-6, 6:-6] = True  # the thin map fades out at the frame
        hits.append(np.mean(to_truth[thin] <= 2))  # precision within 2 pixels
        found.append(np.mean(to_thin[truth & frame] <= 2))  # recall within 2 pixels
    assert min(hits) > 0.9, hits
    assert min(found) > 0.9, found


def test_model_file_round_trip_predicts_the_same_bytes(training_folder, tmp_path):
    model = trained(training_folder)
    path = tmp_path / "m.npz"
    path.write_bytes(model_bytes(model))
    again = load_model(path)
    assert model_bytes(again) == path.read_bytes()
    photo, _ = regions_photo(7)
    config = BoundariesConfig()
    np.testing.assert_array_equal(
        boundary_maps(photo, model, config), boundary_maps(photo, again, config)
    )


def test_training_is_deterministic_for_one_or_two_workers(training_folder):
    once = model_bytes(trained(training_folder, jobs=1))
    assert model_bytes(trained(training_folder, jobs=1)) == once
    assert model_bytes(trained(training_folder, jobs=2)) == once
    assert model_bytes(trained(training_folder, jobs=1, seed=1)) != once  # the seed matters


# --- bad input: one line naming the file, nothing half-written -----------------------------------


def test_a_training_folder_without_ground_truth(training_folder):
    for png in (training_folder / "truth").glob("*.png"):
        png.unlink()
    with pytest.raises(TrainingDataError, match="no ground truth for any of the 3 photos"):
        training_pairs(training_folder / "images", training_folder / "truth", IMAGE_EXTENSIONS)


def test_photos_and_ground_truth_that_do_not_pair_up(training_folder):
    images, truth = training_folder / "images", training_folder / "truth"
    (truth / "img1.png").rename(truth / "other.png")
    with pytest.raises(TrainingDataError, match=r"no ground truth for 1 of the photos.*img1"):
        training_pairs(images, truth, IMAGE_EXTENSIONS)
    (images / "img1.png").unlink()
    with pytest.raises(TrainingDataError, match=r"match no photo.*other"):
        training_pairs(images, truth, IMAGE_EXTENSIONS)


def test_ground_truth_of_the_wrong_size(training_folder):
    write_image(training_folder / "truth" / "img2.png", np.zeros((20, 20), np.uint8))
    with pytest.raises(TrainingDataError, match=r"img2\.png: ground truth is 20x20.*64x48"):
        trained(training_folder)


def run_train_stage(work: Path, name: str = "small") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segclust.stages.train_boundaries", name],
        cwd=work, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def stage_params(folder: Path) -> dict:
    return {
        "seed": 0,
        "execution": {"jobs": 1},
        "boundaries": {
            "model": "small",
            "models": {"small": SMALL},
            "train": {
                "images": str(folder / "images"),
                "ground_truth": str(folder / "truth"),
                "pixels_per_image": 400,
                "texton_pixels": 200,
            },
        },
    }


def test_the_training_stage_writes_the_model_and_fails_in_one_line(training_folder, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(stage_params(training_folder)))
    result = run_train_stage(work)
    assert result.returncode == 0, result.stderr
    model = work / "models" / "boundaries_small.npz"
    summary = json.loads((work / "metrics" / "train_boundaries_small.json").read_text())
    assert summary["images"] == 3 and summary["cues"] == 25
    # 200 negatives a photo; up to 200 positives (these small photos have fewer boundary pixels)
    assert summary["rows"] - summary["positives"] == 600 and 0 < summary["positives"] <= 600
    assert len(summary["sha256"]) == 64
    before = model.read_bytes()
    # a broken annotation: one line naming it, and the model of the last run stays whole
    (training_folder / "truth" / "img1.png").write_bytes(b"not a png")
    result = run_train_stage(work)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "img1.png" in errors[0], result.stderr
    assert model.read_bytes() == before
    assert sorted(p.name for p in (work / "models").iterdir()) == ["boundaries_small.npz"]
    result = run_train_stage(work, "nonesuch")
    assert result.returncode == 2 and "no model 'nonesuch' in boundaries.models" in result.stderr


def rewrite_header(source: Path, target: Path, change) -> Path:
    """A copy of a model file with its JSON header changed by ``change(header)``."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with np.load(source) as arrays:
        header = json.loads(arrays["header"].tobytes())
    change(header)
    import io

    payload = io.BytesIO()
    np.save(payload, np.frombuffer(json.dumps(header).encode(), np.uint8))
    members["header.npy"] = payload.getvalue()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda p: p, "no boundary model here; train one with `dvc repro train_boundaries`"),
        (lambda p: (p.write_bytes(b"\x00" * 100), p)[1], "not a segclust boundary model"),
        (lambda p: np.savez(p, weights=np.zeros(3)) or p, "not a segclust boundary model"),
        (
            lambda p: rewrite_header(BASE_MODEL, p, lambda h: h["libraries"].update(numpy="1.0")),
            "made with numpy 1.0, this is",
        ),
        (
            lambda p: rewrite_header(BASE_MODEL, p, lambda h: h.update(code="0" * 64)),
            "made by other code than this",
        ),
        (
            lambda p: rewrite_header(BASE_MODEL, p, lambda h: h.update(version=99)),
            "model format 99, this code reads 1",
        ),
        (
            lambda p: rewrite_header(
                BASE_MODEL, p, lambda h: h["model"]["classifier"].update(name="forest")
            ),
            "its model description is not valid here",
        ),
    ],
)
def test_a_missing_corrupt_or_foreign_model_file_is_one_line(tmp_path, make, text):
    path = make(tmp_path / "model.npz")
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and text in message and "\n" not in message


def test_the_stage_reads_the_trained_spec_without_scikit_learn():
    """The boundaries stage's main process checks its model from the header alone, so a run
    whose photos all come from the cache never imports scikit-learn (about 2 s)."""
    code = (
        "import sys\n"
        "from segclust.stages.boundaries import trained_spec\n"
        f"spec = trained_spec(__import__('pathlib').Path({str(BASE_MODEL)!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n"
        "print(spec.as_dict() == __import__('segclust.boundary_model', fromlist=['x'])"
        ".load_model(" + repr(str(BASE_MODEL)) + ").spec.as_dict())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "True"]


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p,
        lambda p: (p.write_bytes(b"\x00" * 100), p)[1],
        lambda p: rewrite_header(BASE_MODEL, p, lambda h: h.update(model={"cues": 1})),
    ],
)
def test_a_bad_model_file_is_named_by_the_stage_header_check(tmp_path, make):
    from segclust.stages.boundaries import trained_spec

    path = make(tmp_path / "model.npz")
    with pytest.raises(ModelFileError) as caught:
        trained_spec(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_learned_edges_without_a_model_stop_the_boundaries_stage(tmp_path, tiny_image_dir):
    from tests.test_stages import assert_one_line_error, leftovers, make_workdir, run_stage

    work = make_workdir(tmp_path, tiny_image_dir)
    assert run_stage(work, "features").returncode == 0
    (work / "models").unlink()  # the work folder's link to the committed models
    result = run_stage(work, "boundaries")
    assert_one_line_error(result, "boundaries", "models/boundaries_base.npz: no boundary model")
    assert not (work / "data" / "boundaries").exists()
    result = run_stage(work, "hierarchy")  # nor can the hierarchy run on learned edges
    assert_one_line_error(result, "hierarchy", "hierarchy.edges=learned needs the learned")
    assert [p for p in leftovers(work) if not p.startswith(("data/features", "metrics"))] == []


@pytest.mark.parametrize(
    ("section", "text"),
    [
        ({"model": "forest"}, "boundaries.model: unknown value 'forest'; allowed: base"),
        ({"models": {"base": {"classifier": {"name": "svm"}}}}, "allowed: mlp, logistic"),
        ({"models": {"base": {"classifier": {"hidden": "64+0"}}}}, "positive integers"),
        ({"models": {"base": {"cues": {"cnn": "9"}}}}, "boundaries.models.base.cues.cnn"),
        ({"models": {"base": {"cues": {"scales": 0}}}}, "cues.scales must be an integer"),
        ({"train": {"pixels_per_image": 1}}, "boundaries.train.pixels_per_image"),
        ({"smooth": -1}, "boundaries.smooth must be a finite number >= 0"),
        ({"thin": 1}, "boundaries: unknown key(s) thin"),
    ],
)
def test_wrong_boundary_settings_name_the_key(section, text):
    with pytest.raises(ConfigError) as caught:
        BoundariesConfig.from_dict(section)
    assert text in str(caught.value)


def test_the_committed_config_is_valid_and_names_both_models():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    config = BoundariesConfig.from_dict(params["boundaries"])
    assert set(config.models) == {"base", "cnn"} and config.model == "base"
    assert config.models["cnn"].cues.cnn_stages == (1, 2, 3, 4)
    assert not config.models["base"].cues.cnn_stages  # the base install runs it without torch
    for name in config.models:
        assert (REPO_ROOT / config.model_path(name)).is_file(), name


@pytest.mark.slow
@pytest.mark.shared_data
def test_training_on_a_few_bsds_train_photos_is_the_same_bytes_on_one_or_two_workers(tmp_path):
    """The committed model is trained on the whole split (benchmarks/reproduce_boundaries.py
    checks it bit for bit); here three of its photos, twice, with the committed settings."""
    split = REPO_ROOT.parent / "shared" / "data" / "bsds500-train"
    if not split.is_dir():
        pytest.skip(
            "../shared/data/bsds500-train is absent: BSDS500 is licensed for research use and "
            "lives beside the project, never inside it"
        )
    for sub in ("images", "groundTruth"):
        (tmp_path / sub).mkdir()
        for path in sorted((split / sub).iterdir())[:3]:
            (tmp_path / sub / path.name).symlink_to(path)
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["boundaries"]["train"] |= {
        "images": str(tmp_path / "images"),
        "ground_truth": str(tmp_path / "groundTruth"),
    }
    runs = []
    for jobs in (1, 2):
        settings = TrainSettings.load_dict({**params, "execution": {"jobs": jobs}}, "base")
        train = settings.boundaries.train
        pairs = training_pairs(train["images"], train["ground_truth"], IMAGE_EXTENSIONS)
        runs.append(model_bytes(train_model(settings, pairs)))
    assert runs[0] == runs[1]


def test_a_model_trained_on_other_settings_than_the_config_is_refused(tmp_path, tiny_image_dir):
    from tests.test_stages import assert_one_line_error, make_workdir, run_stage

    work = make_workdir(tmp_path, tiny_image_dir, boundaries__models__base__cues__colour_bins=16)
    assert run_stage(work, "features").returncode == 0
    result = run_stage(work, "boundaries")
    assert_one_line_error(
        result, "boundaries", "trained with other settings than boundaries.models.base"
    )
    assert "cues.colour_bins" in result.stderr and "train_boundaries@base" in result.stderr
