"""Scale-out beyond one process per image: the per-image cache, parallel Optuna trials on a
shared study storage, and the dashboard that watches them."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from segclust import imagecache
from segclust.config import ClusterConfig, ConfigError, ExecutionConfig, MetricsConfig, TuneConfig
from segclust.imagecache import ImageCache
from segclust.silhouette import silhouette_sampled
from segclust.stages._common import read_pipeline, stage_code
from segclust.tuning import make_objective, tune_clustering
from tests.conftest import REPO_ROOT, three_region_bgr, write_image
from tests.test_stages import (
    CACHE_DIR,
    PARALLEL_STAGES,
    leftovers,
    make_workdir,
    outputs_of,
    run_all,
    run_stage,
)

# --- the per-image cache -------------------------------------------------------------------


def _writer(calls: list[str], text: str):
    def work(folders):
        calls.append(text)
        (folders["out"] / "a.txt").write_text(text)
        (folders["out"] / "sub").mkdir()
        (folders["out"] / "sub" / "b.txt").write_text(text * 2)
        return {"text": text}

    return work


def test_a_second_run_links_the_stored_files_instead_of_computing(tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    cache = ImageCache.for_stage("demo", {"k": 2}, tmp_path / "cache")
    calls: list[str] = []
    for run in ("first", "second"):
        out = tmp_path / run
        out.mkdir()
        result, hit = cache.run("img", [source], {"out": out}, _writer(calls, "x"))
        assert result == {"text": "x"} and hit == (run == "second")
        assert (out / "a.txt").read_text() == "x" and (out / "sub" / "b.txt").read_text() == "xx"
    assert calls == ["x"]


@pytest.mark.parametrize(
    "change", ["input bytes", "params", "extra", "stem", "missing input", "off"]
)
def test_anything_an_image_depends_on_misses_the_cache(tmp_path, change):
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    root = tmp_path / "cache"
    calls: list[str] = []
    first = tmp_path / "first"
    first.mkdir()
    ImageCache.for_stage("demo", {"k": 2}, root).run(
        "img", [source], {"out": first}, _writer(calls, "x")
    )
    params, extra, stem, inputs = {"k": 2}, None, "img", [source]
    if change == "input bytes":
        source.write_bytes(b"other pixels")
    elif change == "params":
        params = {"k": 3}
    elif change == "extra":
        extra = [1.0, 2.0]
    elif change == "stem":
        stem = "other"
    elif change == "missing input":
        inputs = [source, tmp_path / "absent.npy"]
    cache = ImageCache.for_stage("demo", params, None if change == "off" else root, extra)
    second = tmp_path / "second"
    second.mkdir()
    _, hit = cache.run(stem, inputs, {"out": second}, _writer(calls, "y"))
    assert not hit and calls == ["x", "y"]
    assert (second / "a.txt").read_text() == "y"


def test_the_key_follows_the_code_the_stage_runs_not_every_module(tmp_path, monkeypatch):
    package = tmp_path / "segclust"  # a copy of the package, so that modules can be edited
    shutil.copytree(imagecache.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(imagecache, "PACKAGE", package)
    monkeypatch.setattr(imagecache, "code_fingerprint", imagecache.code_fingerprint.__wrapped__)

    def key(code):
        return ImageCache.for_stage("demo", {}, tmp_path / "cache", code=code).key("img", [])

    own, every = key(("labels.py",)), key(None)
    assert own != every and own != key(("labels.py", "tables.py"))
    with (package / "shards.py").open("a") as handle:  # a module the stage does not run
        handle.write("# edited\n")
    assert key(("labels.py",)) == own and key(None) != every
    with (package / "labels.py").open("a") as handle:  # one it runs
        handle.write("# edited\n")
    assert key(("labels.py",)) != own


def test_a_stage_of_the_pipeline_is_keyed_on_its_own_code(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    code = stage_code("cluster", read_pipeline())
    assert {"stages/cluster.py", "imagecache.py", "stages/_common.py"} <= set(code)
    assert "shards.py" not in code and "stages/evaluate.py" not in code
    assert stage_code("cluster", None) is None  # a work folder: every source file


def test_a_failed_image_stores_nothing(tmp_path):
    cache = ImageCache.for_stage("demo", {}, tmp_path / "cache")
    out = tmp_path / "out"
    out.mkdir()

    def fails(folders):
        (folders["out"] / "half.txt").write_text("half")
        raise ValueError("unreadable")

    with pytest.raises(ValueError, match="unreadable"):
        cache.run("img", [], {"out": out}, fails)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []
    assert list(out.iterdir()) == []
    calls: list[str] = []
    assert cache.run("img", [], {"out": out}, _writer(calls, "z")) == ({"text": "z"}, False)


def _cache_hits(stderr: str) -> int:
    lines = [line for line in stderr.splitlines() if "from the per-image cache" in line]
    return int(lines[0].split(": ")[1].split(" of ")[0]) if lines else 0


@pytest.mark.slow
def test_adding_an_image_computes_only_that_image(tmp_path, tiny_image_dir):
    """Every per-image stage: a rerun after adding one image takes the others from the
    cache, and the outputs are the bytes of a run without any cache."""
    stages = (*PARALLEL_STAGES, "evaluate", "evaluate_boundaries")
    truth = tmp_path / "truth"
    for name in ("halves", "bands", "bands_jpeg", "added"):
        labels = np.zeros((30, 36), np.uint8) if name != "halves" else np.zeros((24, 32), np.uint8)
        labels[:, labels.shape[1] // 2 :] = 1
        write_image(truth / f"{name}.png", labels)
    (tmp_path / "cached").mkdir()
    work = make_workdir(tmp_path / "cached", tiny_image_dir, data__ground_truth=str(truth))
    run_all(work, stages)
    assert (work / CACHE_DIR / "tune").is_dir()
    write_image(tiny_image_dir / "added.png", three_region_bgr(seed=5))
    hits = {}
    for stage in stages:
        result = run_stage(work, stage)
        assert result.returncode == 0, result.stderr
        hits[stage] = _cache_hits(result.stderr)
    # evaluate too: its hierarchy levels are a fixed grid, not placed by the other images
    assert hits == {s: 3 for s in stages}
    (tmp_path / "uncached").mkdir()
    fresh = make_workdir(
        tmp_path / "uncached",
        tiny_image_dir,
        data__ground_truth=str(truth),
        execution={"jobs": -1, "cache": False},
    )
    run_all(fresh, stages)
    assert not (fresh / CACHE_DIR).exists()
    assert outputs_of(work) == outputs_of(fresh)
    assert leftovers(work) == leftovers(fresh)


@pytest.mark.slow
def test_a_changed_parameter_recomputes_its_stage(tmp_path, tiny_image_dir):
    """Keys are made of the stage's own params in dvc.yaml (without one: all of them)."""
    work = make_workdir(tmp_path, tiny_image_dir)
    shutil.copyfile(REPO_ROOT / "dvc.yaml", work / "dvc.yaml")
    run_all(work, ("features", "cluster"))
    params = (work / "params.yaml").read_text()
    (work / "params.yaml").write_text(params.replace("n_clusters: 4", "n_clusters: 3"))
    result = run_stage(work, "features")
    assert _cache_hits(result.stderr) == 3  # features do not depend on cluster.*
    result = run_stage(work, "cluster")
    assert result.returncode == 0 and _cache_hits(result.stderr) == 0
    assert json.loads((work / "metrics/cluster.json").read_text())["n_clusters"]["mean"] <= 3


@pytest.mark.parametrize(
    ("execution", "text"),
    [
        ({"cache": "yes"}, "execution.cache must be true or false"),
        ({"cache_dir": ""}, "execution.cache_dir"),
        ({"study_storage": "studies.db"}, "execution.study_storage must be an Optuna RDB URL"),
    ],
)
def test_bad_execution_settings_are_one_line(execution, text):
    with pytest.raises(ConfigError, match=text):
        ExecutionConfig.from_dict(execution)


# --- trials ---------------------------------------------------------------------------------


def _blobs(n: int = 3000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]])
    return centres[rng.integers(0, 4, n)] + rng.normal(size=(n, 2))


def test_trials_are_scored_with_the_tune_sample_not_the_reported_one():
    x = _blobs(8000)
    tune = TuneConfig(n_trials=1, silhouette_sample_size=300, silhouette_reference_size=900)
    metrics = MetricsConfig(silhouette_max_exact=100)
    objective = make_objective(
        x, ClusterConfig("kmeans", {"n_clusters": 4}), tune, backend="sklearn", seed=0,
        metrics=metrics,
    )  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    from segclust.clustering import cluster_features

    labels = cluster_features(
        x, "kmeans", {"n_clusters": trial.params["n_clusters"], "n_init": 4, "max_iter": 300},
        backend="sklearn", seed=0,
    ).labels  # fmt: skip
    small = silhouette_sampled(x, labels, n_query=300, n_reference=900, seed=0)[0]
    large = silhouette_sampled(x, labels, n_query=5000, n_reference=20000, seed=0)[0]
    assert small != large
    assert trial.value == pytest.approx(small, abs=1e-6)


def test_the_winner_is_reported_with_the_metrics_sample():
    x = _blobs(8000)
    tune = TuneConfig(n_trials=4, silhouette_sample_size=300, silhouette_reference_size=900)
    metrics = MetricsConfig(silhouette_max_exact=100, silhouette_sample_size=2000)
    result = tune_clustering(x, (80, 100), ClusterConfig("kmeans", {}), tune, metrics=metrics)
    assert result.best.metrics["silhouette_sample_size"] == 2000


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_parallel_trials_share_one_study(tmp_path, storage):
    """tune.workers processes each load the study from the shared storage and run their
    share: all trials land in one study, and the winner is refitted as in the serial case."""
    x = _blobs(2000)
    url = (
        str(tmp_path / "live.journal")
        if storage == "journal"
        else f"sqlite:///{tmp_path / 'studies.db'}"
    )
    tune = TuneConfig(n_trials=7, workers=2)
    result = tune_clustering(
        x, (40, 50), ClusterConfig("kmeans", {}), tune, storage=url, study_name="img"
    )
    assert len(result.study.trials) == 7
    assert sorted(t.number for t in result.study.trials) == list(range(7))
    assert result.best_params["n_clusters"] == result.study.best_params["n_clusters"]
    assert result.best.labels.shape == (40, 50)
    shared = optuna.load_study(
        study_name="img",
        storage=url
        if storage == "sqlite"
        else optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url)),
    )
    assert len(shared.trials) == 7


def test_parallel_trials_need_a_storage_to_share():
    with pytest.raises(ValueError, match="storage the workers share"):
        tune_clustering(_blobs(500), (20, 25), ClusterConfig("kmeans", {}), TuneConfig(workers=2))


@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_bad_trial_workers(workers):
    with pytest.raises(ConfigError, match=r"tune\.workers"):
        TuneConfig.from_dict({"workers": workers})


@pytest.mark.slow
def test_the_tune_stage_with_parallel_trials(tmp_path, tiny_image_dir):
    work = make_workdir(tmp_path, tiny_image_dir, tune__workers=2, tune__n_trials=4)
    run_all(work, ("features",))
    result = run_stage(work, "tune", log="debug")  # the per-image lines
    assert result.returncode == 0, result.stderr
    assert "2 trial workers share" in result.stderr
    for stem in ("halves", "bands", "bands_jpeg"):
        study = optuna.load_study(
            study_name=stem,
            storage=optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(
                    str(work / f"data/studies/{stem}.journal")
                )
            ),
        )
        assert len(study.trials) == 4
    assert not list((work / "data/studies").glob(".*"))  # the live journals are gone
    assert not [p for p in leftovers(work) if p.endswith(".tmp")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_opens_a_stored_study(tmp_path):
    """The README's command: `optuna-dashboard data/studies/<stem>.journal` serves the study."""
    from segclust.tuning import study_journal_bytes

    study = optuna.create_study(study_name="img", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    path = tmp_path / "img.journal"
    path.write_bytes(study_journal_bytes(study))
    port = _free_port()
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    process = subprocess.Popen(
        [str(dashboard), str(path), "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        body = None
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as reply:
                    body = json.loads(reply.read())
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.1)
        assert body is not None
        assert [s["study_name"] for s in body["study_summaries"]] == ["img"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_trial_metrics_keep_the_exact_threshold():
    metrics = MetricsConfig(silhouette_max_exact=123)
    scored = TuneConfig().trial_metrics(metrics)
    assert scored == replace(metrics, silhouette_sample_size=1000, silhouette_reference_size=5000)


def test_a_dask_stage_holds_a_bounded_window_of_futures():
    """10,000 images must not be 10,000 futures on the scheduler: at most ``window`` are
    submitted and unread at any time, and results still come back in input order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from segclust.parallel import windowed

    lock, in_flight, peak = threading.Lock(), [0], [0]

    def submit(item):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        return pool.submit(lambda: item * 2)

    with ThreadPoolExecutor(3) as pool:
        out = []
        for future in windowed(submit, range(500), 8):
            out.append(future.result())
            with lock:
                in_flight[0] -= 1
    assert out == [i * 2 for i in range(500)]
    assert peak[0] == 8


def test_an_image_runs_on_one_thread_in_every_pool_it_loads():
    """A fresh process runs one image whose work imports KMeans: inside it every OpenMP and
    BLAS pool has one thread, and getting there did not import scikit-learn (about 2 s per
    stage process) where its wheel ships the OpenMP runtime."""
    probe = """
import json, sys
from segclust.parallel import _bundled_openmp_runtime, _one_thread, load_thread_pools

def work(_):
    import sklearn.cluster
    from threadpoolctl import threadpool_info
    return [(pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()]

load_thread_pools()
imported = "sklearn" in sys.modules
print(json.dumps({
    "bundled": _bundled_openmp_runtime() is not None,
    "imported": imported,
    "inside": _one_thread(work, None),
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    seen = json.loads(result.stdout)
    assert {"openmp", "openblas"} <= {api for api, _ in seen["inside"]}
    assert [threads for _, threads in seen["inside"]] == [1] * len(seen["inside"])
    assert seen["imported"] is not seen["bundled"]


def _square(item: int, out: Path) -> int:
    (out / f"{item}.txt").write_text(str(item * item))
    return item * item


def test_cached_images_are_settled_in_the_stage_and_only_misses_go_to_workers(
    tmp_path, monkeypatch
):
    """Hits are linked in the stage's own process; workers get the misses alone, so adding
    one photo to thousands hands one task to one worker (none is started for zero)."""
    from segclust.config import load_config
    from segclust.stages import _common

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["execution"] = {**params.get("execution", {}), "jobs": 2, "cache": True}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    config = load_config(tmp_path / "params.yaml")
    dispatched: list[list[int]] = []
    real = _common.map_images

    def recording(fn, items, **kwargs):
        dispatched.append(list(items))
        return real(fn, items, **kwargs)

    monkeypatch.setattr(_common, "map_images", recording)
    for item in range(5):
        (tmp_path / f"in{item}.bin").write_bytes(bytes([item]))

    def run(items: list[int]) -> list[int]:
        out = tmp_path / f"out{len(dispatched)}"
        out.mkdir()
        results = list(
            _common.map_cached(
                "demo",
                config,
                items,
                inputs_of=lambda i: (f"img{i}", [tmp_path / f"in{i}.bin"]),
                image_fn=_square,
                outs={"out": out},
            )
        )
        assert sorted(p.name for p in out.iterdir()) == sorted(f"{i}.txt" for i in items)
        return results

    assert run([0, 1, 2, 3]) == [0, 1, 4, 9]
    assert run([0, 1, 2, 3]) == [0, 1, 4, 9]
    assert run([0, 1, 4, 2, 3]) == [0, 1, 16, 4, 9]  # order kept around the new one
    assert dispatched == [[0, 1, 2, 3], [], [4]]


def test_a_lone_image_runs_here_rather_than_on_a_new_local_cluster(monkeypatch):
    """One image (one photo added to a cached collection) would wait seconds for a
    LocalCluster to start; it runs in the stage's process. Two go to the cluster, and an
    address is always used."""
    from segclust import parallel

    started: list[object] = []

    class Started(Exception):
        pass

    def no_cluster(address, workers):
        started.append((address, workers))
        raise Started

    monkeypatch.setattr(parallel, "_dask_client", no_cluster)
    local = ExecutionConfig(jobs=2, engine="dask")
    assert list(parallel.map_images(abs, [-3], execution=local, desc="t")) == [3]
    assert started == []
    with pytest.raises(Started):
        list(parallel.map_images(abs, [-3, 4], execution=local, desc="t"))
    remote = ExecutionConfig(jobs=2, engine="dask", address="tcp://127.0.0.1:1")
    with pytest.raises(Started):
        list(parallel.map_images(abs, [-3], execution=remote, desc="t"))
    assert started == [(None, 2), ("tcp://127.0.0.1:1", 1)]
