"""Stage entry points run as DVC runs them: one-line errors, no partial outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from segclust.algorithms import ALGORITHMS
from segclust.tables import read_table
from tests.conftest import REPO_ROOT, three_region_bgr, write_image, write_tiny_images


def run_stage(workdir: Path, stage: str, log: str | None = None) -> subprocess.CompletedProcess:
    """``python -m segclust.stages.<stage>`` in ``workdir``; ``log="debug"`` adds the
    per-image lines (``SEGCLUST_LOG``)."""
    env = {**os.environ, "SEGCLUST_LOG": log} if log else None
    return subprocess.run(
        [sys.executable, "-m", f"segclust.stages.{stage}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def make_workdir(tmp_path: Path, images: Path, **changes) -> Path:
    """A folder with params.yaml (the committed one, edited) pointing at ``images``."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["root"] = str(images)
    params["tune"]["n_trials"] = 3
    for dotted, value in changes.items():
        target = params
        *parents, leaf = dotted.split("__")
        for part in parents:
            target = target[part]
        target[leaf] = value
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    (work / "models").symlink_to(REPO_ROOT / "models")  # the trained boundary models
    return work


def assert_one_line_error(result: subprocess.CompletedProcess, stage: str, text: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"{stage}: error: "), result.stderr
    assert text in errors[0]


CACHE_DIR = ".segclust-cache"  # the per-image cache: not an output (segclust.imagecache)


def leftovers(work: Path) -> list[str]:
    """Files (and temporary folders) a stage left besides params.yaml and its cache."""
    return sorted(
        str(p.relative_to(work))
        for p in work.rglob("*")
        if p.name != "params.yaml"
        and CACHE_DIR not in p.relative_to(work).parts
        and (p.is_file() or p.name.endswith(".tmp"))
    )


@pytest.mark.slow
def test_all_stages_in_order(tmp_path, tiny_image_dir):
    work = make_workdir(tmp_path, tiny_image_dir, regions__method="clusters")
    for stage in ("features", "boundaries", "cluster", "tune", "regions", "hierarchy", "render"):
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
    labels = np.load(work / "data/labels/halves.npy")
    # regions=clusters: the segments are the labels, byte for byte
    for which, folder in (("configured", "labels"), ("tuned", "tuned")):
        for path in (work / "data" / folder).glob("*.npy"):
            segments = work / "data/regions" / which / path.name
            assert segments.read_bytes() == path.read_bytes()
    assert labels.shape == (24, 32) and labels.dtype == np.int32
    metrics = json.loads((work / "metrics/cluster.json").read_text())
    assert set(read_table(work / "plots/images/cluster.csv")) == {"halves", "bands", "bands_jpeg"}
    assert metrics["images"] == 3
    tuned = yaml.safe_load((work / "data/tuned/halves.yaml").read_text())
    assert tuned["algorithm"] == "kmeans" and tuned["search"] == "full"
    rendered = sorted(p.name for p in (work / "plots/render").iterdir())
    assert len(rendered) == 12 and all(name.endswith(".png") for name in rendered)
    ucm = np.load(work / "data/hierarchy/ucm/halves.npy")
    assert ucm.shape == (2, 24, 32) and ucm.dtype == np.float32
    assert not list(work.rglob("*.tmp")), "temporary folders must not survive"


def test_corrupt_second_image_leaves_no_features(tmp_path, tiny_image_dir):
    (tiny_image_dir / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    work = make_workdir(tmp_path, tiny_image_dir)
    result = run_stage(work, "features")
    assert_one_line_error(result, "features", "zz_broken.png")
    assert leftovers(work) == [], "a failed stage must leave nothing half-written"


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_stage(make_workdir(tmp_path, empty), "features")
    assert_one_line_error(result, "features", "no images in")


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"cluster__n_clusters": 1}, "cluster.n_clusters must be an integer >= 2, got 1"),
        ({"cluster__algorithm": "meanshift"}, f"allowed: {', '.join(ALGORITHMS)}"),
        ({"backend": "gpu"}, "allowed: auto, sklearn, cuml"),
        ({"features__blocks": {"hog": {}}}, "features.blocks: unknown value 'hog'"),
        ({"features__blocks": {"lbp": {"window": 4}}}, "features.blocks.lbp.window must be odd"),
        ({"scaler__name": "quantile"}, "allowed: standard, minmax, robust"),
        ({"data__images": ["../../etc/passwd"]}, "escapes the data folder"),
    ],
)
def test_bad_params_are_one_line_errors(tmp_path, tiny_image_dir, change, text):
    result = run_stage(make_workdir(tmp_path, tiny_image_dir, **change), "features")
    assert_one_line_error(result, "features", text)


def test_cluster_before_features_says_what_to_do(tmp_path, tiny_image_dir):
    result = run_stage(make_workdir(tmp_path, tiny_image_dir), "cluster")
    assert_one_line_error(result, "cluster", "run the features stage first")


def test_cuml_asked_for_without_cuml(tmp_path, tiny_image_dir):
    from segclust.backends import cuml_status

    if cuml_status()[0]:
        pytest.skip("cuML is usable here; this test checks the message where it is not")
    work = make_workdir(tmp_path, tiny_image_dir, backend="cuml")
    assert run_stage(work, "features").returncode == 0
    result = run_stage(work, "cluster")
    assert_one_line_error(result, "cluster", "backend=cuml was asked for but")
    assert not (work / "data/labels").exists()


def test_odd_modes_all_go_through(tmp_path):
    from tests.conftest import three_region_bgr, two_region_grey

    folder = tmp_path / "odd"
    write_image(folder / "deep.png", two_region_grey().astype(np.uint16) * 257)
    write_image(
        folder / "rgba.png", np.dstack([three_region_bgr(), np.full((30, 36), 200, np.uint8)])
    )
    write_image(folder / "grey.png", two_region_grey())
    work = make_workdir(tmp_path, folder)
    assert run_stage(work, "features").returncode == 0
    sidecars = {p.stem: json.loads(p.read_text()) for p in (work / "data/features").glob("*.json")}
    assert sidecars["deep"]["source_dtype"] == "uint16"
    assert sidecars["rgba"]["source_channels"] == 4
    assert sidecars["grey"]["source_channels"] == 1


@pytest.mark.slow
def test_all_noise_and_no_valid_trial_still_render(tmp_path, tiny_image_dir):
    work = make_workdir(
        tmp_path,
        tiny_image_dir,
        cluster={"algorithm": "dbscan", "eps": 0.01, "min_samples": 5000},
        tune__space__dbscan={"min_samples": {"low": 4000, "high": 5000}},
        hierarchy__leaves="clusters",
    )
    for stage in ("features", "boundaries", "cluster", "tune", "regions", "hierarchy", "render"):
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
    halves = read_table(work / "plots/images/cluster.csv")["halves"]
    assert halves["noise_fraction"] == 1.0 and "silhouette" not in halves  # empty cell
    assert halves["undefined_reason"] == "all 768 points are noise"
    summary = json.loads((work / "metrics/cluster.json").read_text())
    assert summary["silhouette"] is None and summary["silhouette_undefined"] == 3
    assert summary["silhouette_undefined_why"]["all N points are noise"] == 3  # grouped
    tune = json.loads((work / "metrics/tune.json").read_text())
    tune_rows = read_table(work / "plots/images/tune.csv")
    assert tune_rows["halves"]["status"] == "no valid clustering in any trial"
    assert tune["images_without_valid_trial"] == 3
    assert not (work / "data/tuned/halves.npy").exists()
    assert (work / "plots/render/halves_clusters.png").stat().st_size > 1000
    # no tuned clusters: the leaves are the configured ones, all noise, so one region
    assert np.load(work / "data/hierarchy/cut/halves.npy").max() == 0
    assert (work / "plots/render/halves_hierarchy.png").stat().st_size > 1000


@pytest.mark.slow
def test_evaluate_scores_against_png_ground_truth(tmp_path, tiny_image_dir):
    truth = tmp_path / "truth"
    halves = np.zeros((24, 32), np.uint8)
    halves[:, 16:] = 1
    write_image(truth / "halves.png", halves)  # one annotator: the two halves
    write_image(truth / "halves_2.png", halves * 7)  # a second, same regions, other labels
    work = make_workdir(
        tmp_path,
        tiny_image_dir,
        data__ground_truth=str(truth),
        tune__space__kmeans={"n_clusters": {"low": 2, "high": 2}},
        # the hand-made cue: its cut of two flat halves is known (the learned model's, on a
        # 24x32 toy, is whatever it learned from photos; test_learned_boundaries covers it)
        hierarchy=yaml.safe_load((REPO_ROOT / "conf/hierarchy/gradient.yaml").read_text()),
    )
    for stage in ("features", "boundaries", "cluster", "tune", "regions", "hierarchy", "evaluate"):
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
    scores = json.loads((work / "metrics/evaluate.json").read_text())
    assert scores["images_evaluated"] == 1
    assert scores["images_without_ground_truth"] == 2
    rows = read_table(work / "plots/images/evaluate.csv")
    assert set(rows) == {"halves"}
    entry = rows["halves"]
    assert entry["n_annotators"] == 2
    perfect = {"covering": 1.0, "pri": 1.0, "vi": 0.0, "ari": 1.0}
    perfect |= {"boundary_p": 1.0, "boundary_r": 1.0, "boundary_f": 1.0}
    assert {k: entry[f"tuned_{k}"] for k in perfect} == perfect
    assert entry["configured_covering"] < 1.0  # 4 clusters over-segment two halves
    assert entry["configured_boundary_p"] < 1.0  # ... and draw boundaries people did not
    # the hierarchy of two flat halves: its configured cut and its best level are the halves
    assert {k: entry[f"hierarchy_{k}"] for k in perfect} == perfect
    # the tuned clustering's silhouette beside its Covering, from the tune stage's table
    assert (
        entry["tuned_silhouette"]
        == read_table(work / "plots/images/tune.csv")["halves"]["silhouette"]
    )
    assert scores["tuned"]["covering"]["mean"] == 1.0 and scores["tuned"]["boundary_f"] == 1.0
    levels = scores["hierarchy_levels"]
    assert levels["ods"]["covering"] == 1.0 and levels["ods"]["boundary_f"] == 1.0


def test_evaluate_writes_its_timings_beside_its_metrics(tmp_path, tiny_image_dir):
    # the earlier stages' outputs made by hand: a sidecar, two segment maps, a UCM
    work = make_workdir(tmp_path, tiny_image_dir, data__ground_truth=str(tmp_path / "truth"))
    halves = np.zeros((24, 32), np.int32)
    halves[:, 16:] = 1
    write_image(tmp_path / "truth" / "halves.png", halves.astype(np.uint8))
    (work / "data/features").mkdir(parents=True)
    for stem in ("halves", "bands"):  # bands has no ground truth
        (work / f"data/features/{stem}.json").write_text("{}")
    for which in ("configured", "tuned"):
        (work / "data/regions" / which).mkdir(parents=True)
        np.save(work / "data/regions" / which / "halves.npy", halves)
    ucm = np.zeros((2, 24, 32), np.float32)
    ucm[0, :, 15] = 0.5  # the two halves join at 0.5
    (work / "data/hierarchy/ucm").mkdir(parents=True)
    np.save(work / "data/hierarchy/ucm/halves.npy", ucm)
    result = run_stage(work, "evaluate")
    assert result.returncode == 0, result.stderr
    timings = json.loads((work / "metrics/timings/evaluate.json").read_text())
    assert set(timings) == {"seconds"} and set(timings["seconds"]) == {"halves"}
    assert timings["seconds"]["halves"] >= 0
    scores = json.loads((work / "metrics/evaluate.json").read_text())
    assert scores["tuned"]["boundary_f"] == 1.0
    assert scores["hierarchy_levels"]["ois"]["covering"] == 1.0
    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    assert "timings" not in json.dumps(stage)  # not a DVC output: it changes every run


@pytest.mark.slow
@pytest.mark.shared_data
def test_evaluate_on_two_bsds_images(tmp_path):
    bsds = REPO_ROOT.parent / "shared" / "data" / "bsds500"
    if not bsds.is_dir():
        pytest.skip("../shared/data/bsds500 is absent (BSDS500 is never part of the project)")
    work = make_workdir(
        tmp_path,
        bsds / "images",
        data__ground_truth=str(bsds / "groundTruth"),
        data__images=["100007.jpg", "100039.jpg"],
    )
    for stage in (
        "features", "boundaries", "cluster", "tune", "regions", "hierarchy", "evaluate",
        "evaluate_boundaries",
    ):  # fmt: skip
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
    scores = json.loads((work / "metrics/evaluate.json").read_text())
    assert scores["images_evaluated"] == 2
    # the learned map as an edge map: both photos at their ground truth's size, scored
    edges = json.loads((work / "metrics/evaluate_boundaries.json").read_text())
    assert edges["images"] == 2 and edges["images_other_size"] == 0
    # (ODS interpolates between thresholds, OIS does not: either may be the larger)
    assert all(0 < edges[k] < 1 for k in ("ap", "ods_f", "ois_f", "ods_threshold"))
    best = read_table(work / "plots/images/evaluate_boundaries.csv")
    assert set(best) == {"100007", "100039"}
    assert all(0 < row["best_f"] < 1 and 0 < row["best_threshold"] < 1 for row in best.values())
    rows = read_table(work / "plots/images/evaluate.csv")
    assert len(rows) == 2
    for entry in rows.values():
        assert entry["n_annotators"] >= 4
        for which in ("configured", "tuned", "hierarchy"):
            assert 0 < entry[f"{which}_covering"] < 1 and 0 < entry[f"{which}_pri"] < 1
            assert entry[f"{which}_vi"] > 0
            assert 0 < entry[f"{which}_boundary_f"] < 1
        # the summary's mean is the mean of the table's column
    mean = sum(e["hierarchy_covering"] for e in rows.values()) / 2
    assert scores["hierarchy"]["covering"]["mean"] == pytest.approx(mean, abs=1e-6)
    levels = scores["hierarchy_levels"]
    # OIS picks each image's best level, so it can only be as good as ODS or better
    assert levels["ois"]["covering"] >= levels["ods"]["covering"] > 0
    assert levels["ois"]["vi"] <= levels["ods"]["vi"]
    assert 0 < levels["ods"]["boundary_f"] <= levels["ois"]["boundary_f"] < 1


def test_tune_stage_searches_the_algorithm_and_colour_features(tmp_path, tiny_image_dir):
    work = make_workdir(
        tmp_path,
        tiny_image_dir,
        features__name="lab_xy",
        features__blocks={"lab": {"weight": 1.0}, "xy": {"weight": 0.5}},
        scaler__scope="block",
        tune__algorithms=["kmeans", "birch"],
        tune__objective="davies_bouldin",
    )
    assert run_stage(work, "features").returncode == 0
    result = run_stage(work, "tune")
    assert result.returncode == 0, result.stderr
    tuned = {p.stem: yaml.safe_load(p.read_text()) for p in (work / "data/tuned").glob("*.yaml")}
    assert tuned and all(t["algorithm"] in ("kmeans", "birch") for t in tuned.values())
    metrics = read_table(work / "plots/images/tune.csv")
    for stem, scores in metrics.items():
        assert scores["objective"] == "davies_bouldin"
        assert scores["algorithm"] == tuned[stem]["algorithm"]
        assert scores["search_value"] == pytest.approx(scores["davies_bouldin"], rel=1e-3)
    header = (work / "plots/trials").glob("*.csv").__next__().read_text().splitlines()[0]
    assert header.startswith("trial,state,value,best_value,algorithm")


@pytest.mark.slow
def test_connected_regions_and_meanshift_through_the_stages(tmp_path, tiny_image_dir):
    truth = tmp_path / "truth"
    bands = np.zeros((30, 36), np.uint8)
    bands[:, 12:24], bands[:, 24:] = 1, 2
    write_image(truth / "bands.png", bands)
    work = make_workdir(
        tmp_path,
        tiny_image_dir,
        smoothing={"method": "meanshift", "spatial_radius": 5, "colour_radius": 20},
        features={"name": "lab", "blocks": {"lab": {"weight": 1.0}}},
        cluster={"algorithm": "kmeans", "n_clusters": 6, "n_init": 2, "max_iter": 100},
        regions={"method": "connected", "min_area_fraction": 0.05, "connectivity": 1},
        data__ground_truth=str(truth),
    )
    for stage in (
        "features",
        "boundaries",
        "cluster",
        "tune",
        "regions",
        "hierarchy",
        "render",
        "evaluate",
    ):
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
    counts = json.loads((work / "metrics/regions.json").read_text())
    assert counts["method"] == "connected"
    bands_counts = read_table(work / "plots/images/regions.csv")["bands"]
    assert bands_counts["configured_clusters"] == 6
    assert bands_counts["configured_segments"] == 3  # six colour clusters, three bands
    segments = np.load(work / "data/regions/configured/bands.npy")
    assert np.bincount(segments.ravel()).min() >= 0.05 * segments.size
    scores = json.loads((work / "metrics/evaluate.json").read_text())
    assert scores["segments"] == "connected"
    assert read_table(work / "plots/images/evaluate.csv")["bands"]["configured_covering"] == 1.0


@pytest.mark.parametrize(
    ("stage", "change", "text"),
    [
        ("regions", {"regions": {"method": "connected", "min_area_fraction": 2}}, "< 1"),
        ("features", {"smoothing": {"method": "meanshift", "sigma": 1}}, "unknown key"),
    ],
)
def test_bad_regions_and_smoothing_params(tmp_path, tiny_image_dir, stage, change, text):
    work = make_workdir(tmp_path, tiny_image_dir, **change)
    assert_one_line_error(run_stage(work, stage), stage, text)
    assert leftovers(work) == []


def test_the_tuned_panel_is_named_after_the_studys_winner(tmp_path, monkeypatch):
    from segclust.config import load_config
    from segclust.stages import render

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    config = load_config("params.yaml")
    (tmp_path / "data" / "tuned").mkdir(parents=True)
    (tmp_path / "data" / "tuned" / "a.yaml").write_text("algorithm: dbscan\neps: 0.1\n")
    assert config.cluster.algorithm == "kmeans"
    assert render._tuned_algorithm("a", config) == "dbscan"
    assert render._tuned_algorithm("b", config) == "kmeans"  # no study winner: configured


def test_cluster_config_defaults_are_the_registrys():
    from segclust.config import ClusterConfig

    assert ClusterConfig().params == {"n_clusters": 4, "n_init": 4, "max_iter": 300}


def outputs_of(work: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(work)): p.read_bytes()
        for p in sorted(work.rglob("*"))
        if p.is_file()
        and "timings" not in p.parts
        and CACHE_DIR not in p.parts
        and p.name != "params.yaml"
    }


def run_all(work: Path, stages: tuple[str, ...]) -> None:
    for stage in stages:
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr


PARALLEL_STAGES = ("features", "boundaries", "cluster", "tune", "regions", "hierarchy", "render")


@pytest.fixture(scope="module")
def one_worker_run(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """The tiny images and what the stages write from them on one joblib worker: the
    reference that every other way of running them must give again (run once per module)."""
    base = tmp_path_factory.mktemp("one-worker")
    images = write_tiny_images(base / "images")
    work = make_workdir(base, images, execution={"jobs": 1})
    run_all(work, PARALLEL_STAGES)
    return images, outputs_of(work)


@pytest.mark.slow
def test_one_worker_two_or_a_dask_cluster_write_the_same_bytes(tmp_path, one_worker_run):
    """Images run in parallel (execution.jobs, execution.engine); results must not depend on
    who ran what: joblib with 1 and 2 workers and a Dask LocalCluster of 2."""
    images, one = one_worker_run
    assert len(one) > 40
    for name, execution in (
        ("two", {"jobs": 2}),
        ("dask", {"jobs": 2, "engine": "dask", "address": None}),
    ):
        (tmp_path / name).mkdir()
        work = make_workdir(tmp_path / name, images, execution=execution)
        run_all(work, PARALLEL_STAGES)
        outputs = outputs_of(work)
        assert outputs.keys() == one.keys()
        assert [k for k in one if one[k] != outputs[k]] == []


@pytest.mark.slow
def test_a_dask_scheduler_and_two_workers_over_tcp(tmp_path, one_worker_run):
    """A real cluster on this machine: `dask scheduler` and two `dask worker` processes,
    started apart from the stage, reached over TCP; the stage's outputs are the same bytes."""
    images, one = one_worker_run
    (tmp_path / "cluster").mkdir()
    scheduler_file = tmp_path / "scheduler.json"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(300):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        work = make_workdir(
            tmp_path / "cluster", images,
            execution={"jobs": 2, "engine": "dask", "address": address},
        )  # fmt: skip
        for _ in range(2):  # workers run from the project folder, as the README says
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                    ],
                    cwd=work,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        run_all(work, PARALLEL_STAGES)
        assert outputs_of(work) == one
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True])
def test_bad_jobs_is_a_config_error(tmp_path, tiny_image_dir, jobs):
    work = make_workdir(tmp_path, tiny_image_dir, execution={"jobs": jobs})
    assert_one_line_error(run_stage(work, "features"), "features", "execution.jobs")


@pytest.mark.slow
def test_a_stage_killed_mid_run_leaves_nothing_and_reruns_cleanly(tmp_path, tiny_image_dir):
    """SIGKILL (an out-of-memory kill, a cancelled job) while a stage is writing: its output
    folder does not exist (never half-written), and the next run sweeps the dead run's
    temporary files and writes the bytes of an uninterrupted run."""
    import os
    import signal

    for i in range(24):  # enough photos that the stage is caught half way
        write_image(tiny_image_dir / f"more_{i:02d}.png", three_region_bgr(60, 80, seed=i))
    work = make_workdir(tmp_path, tiny_image_dir, execution={"jobs": 1, "cache": False})
    process = subprocess.Popen(
        [sys.executable, "-m", "segclust.stages.features"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(p.suffix == ".npy" for p in (work / "data").glob(".features.*.tmp/*")):
            assert process.poll() is None and time.monotonic() < deadline, "not caught running"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (work / "data/features").exists()
    left = [p.name for p in (work / "data").iterdir()]
    assert len(left) == 1 and left[0].startswith(".features."), left  # the dead run's
    assert run_stage(work, "features").returncode == 0
    assert not list(work.rglob("*.tmp")), "the dead run's temporary folder must be swept"
    (tmp_path / "clean").mkdir()
    clean = make_workdir(tmp_path / "clean", tiny_image_dir, execution={"jobs": 1, "cache": False})
    assert run_stage(clean, "features").returncode == 0
    done = {p.name: p.read_bytes() for p in (work / "data/features").iterdir()}
    assert done == {p.name: p.read_bytes() for p in (clean / "data/features").iterdir()}
