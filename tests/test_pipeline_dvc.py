"""The real thing: `dvc repro` and `dvc exp run` in a throw-away copy of this repository.

Tiny images and `tune=quick` keep it to about a minute. Nothing here is mocked: DVC runs
the stages from dvc.yaml, composes params.yaml with Hydra for the experiment, and checks
its caches.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segclust.tables import read_table
from tests.conftest import (
    commit_all,
    copy_project,
    sh,
    three_region_bgr,
    two_region_grey,
    write_image,
)

pytestmark = pytest.mark.slow


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``dvc <args>``; ``repro`` and ``exp run`` with ``--allow-missing``, as a user runs them
    without the boundary model's training split beside the project (see the README)."""
    if args[:1] == ("repro",) or args[:2] == ("exp", "run"):
        at = 1 if args[0] == "repro" else 2
        args = (*args[:at], "--allow-missing", *args[at:])
    return sh(repo, sys.executable, "-m", "dvc", *args, check=check)


# Every stage but the training of the boundary models, whose data a copy does not have:
# `dvc repro --force` would retrain them.
PIPELINE = (
    "features", "boundaries", "cluster", "tune", "regions", "hierarchy", "render", "evaluate",
    "evaluate_boundaries",
)  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git + DVC repository holding this project's files, with two tiny sample images."""
    return make_repo(tmp_path_factory.mktemp("pipeline") / "repo")


def make_repo(repo: Path) -> Path:
    """Copy this project's files into ``repo`` (a new folder), with two tiny samples, as a
    git repository on ``main`` with one commit."""
    copy_project(repo)
    samples = repo / "data" / "samples"
    for image in samples.glob("*.*"):
        if image.suffix != ".md":
            image.unlink()
    write_image(samples / "halves.png", two_region_grey(24, 32))
    write_image(samples / "bands.jpg", three_region_bgr(30, 36))
    commit_all(repo, "tiny copy")
    return repo


def read_outputs(repo: Path) -> dict[str, bytes]:
    """Every file whose bytes must not change between runs with the same params."""
    paths = [
        *repo.glob("data/features/*"),
        *repo.glob("data/boundaries/*"),
        *repo.glob("data/labels/*"),
        *repo.glob("data/tuned/*"),
        *repo.glob("data/studies/*"),
        *repo.glob("data/regions/*/*"),
        *repo.glob("data/hierarchy/*/*"),
        *repo.glob("data/evaluation/*"),
        *repo.glob("data/evaluation_boundaries/*"),
        *repo.glob("plots/trials/*"),
        *repo.glob("plots/render/*"),
        repo / "metrics/cluster.json",
        repo / "metrics/tune.json",
        repo / "metrics/evaluate.json",
        repo / "metrics/evaluate_boundaries.json",
        repo / "metrics/regions.json",
        repo / "metrics/hierarchy.json",
        repo / "metrics/boundaries.json",
        *repo.glob("plots/images/*.csv"),
    ]
    return {str(p.relative_to(repo)): p.read_bytes() for p in paths}


def test_repro_runs_every_stage_and_writes_the_outputs(repo):
    result = dvc(repo, "repro")
    for stage in PIPELINE:
        assert f"Running stage '{stage}'" in result.stdout
    assert "Running stage 'train_boundaries" not in result.stdout  # the committed models
    for name in ("halves", "bands"):
        assert (repo / f"data/features/{name}.npy").exists()
        assert (repo / f"data/labels/{name}.npy").exists()
        assert (repo / f"data/tuned/{name}.yaml").exists()
        assert (repo / f"data/studies/{name}.journal").exists()
        assert (repo / f"plots/trials/{name}.csv").exists()
        assert (repo / f"plots/history/{name}.png").exists()
        assert (repo / f"data/hierarchy/ucm/{name}.npy").exists()
        for kind in ("grey", "clusters", "contours", "hierarchy"):
            assert (repo / f"plots/render/{name}_{kind}.png").stat().st_size > 1000
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    cluster = shown[""]["data"]["metrics/cluster.json"]["data"]
    assert cluster["images"] == 2 and cluster["backend"] == "sklearn"
    per_image = read_table(repo / "plots/images/cluster.csv")
    assert per_image["halves"]["n_clusters"] == 4
    assert per_image["halves"]["backend"] == "sklearn"
    # the per-image tables are drawn by `dvc plots`, one row of the table a bar
    plots = json.loads(dvc(repo, "plots", "show", "--json").stdout)["data"]
    bars = plots["plots/images/hierarchy.csv"][0]["content"]["data"]["values"]
    assert sorted(row["image"] for row in bars) == ["bands", "halves"]
    assert "Silhouette against Covering, per image (tuned clusters)" in plots


def test_second_repro_does_nothing(repo):
    result = dvc(repo, "repro")
    assert "Running stage" not in result.stdout
    # `dvc status` has no --allow-missing: in a copy without the training split it lists
    # only that split, missing, under the training stages, and nothing else
    status = json.loads(dvc(repo, "status", "--json").stdout or "{}")
    for stage, changes in status.items():
        assert stage.startswith("train_boundaries@"), (stage, changes)
        for change in changes:
            assert set(change["changed deps"].values()) == {"deleted"}, (stage, change)
            assert all("bsds500-train" in path for path in change["changed deps"]), change


def test_a_repro_without_the_training_split_fails_and_loses_nothing(repo):
    """Without --allow-missing, a copy that lacks the training split cannot retrain: DVC
    stops on the missing split, and the committed model and its metrics stay in place
    (``persist: true``; DVC would otherwise delete them before it found the split missing)."""
    kept = ("models/boundaries_base.npz", "metrics/train_boundaries_base.json")
    before = {name: (repo / name).read_bytes() for name in kept}
    result = sh(repo, sys.executable, "-m", "dvc", "repro", "train_boundaries@base", check=False)
    assert result.returncode != 0
    assert "bsds500-train" in result.stdout + result.stderr
    assert {name: (repo / name).read_bytes() for name in kept} == before
    assert sh(repo, "git", "status", "--porcelain", *kept).stdout == ""


def test_forced_rerun_gives_byte_identical_outputs(repo):
    before = read_outputs(repo)
    shutil.rmtree(repo / ".segclust-cache")  # recompute every image, not link it back
    dvc(repo, "repro", "--force", "--single-item", *PIPELINE)
    after = read_outputs(repo)
    # 47 + data/evaluation, then evaluate_boundaries' metrics, table and parts.json
    assert before.keys() == after.keys() and len(before) == 51
    changed = [name for name in before if before[name] != after[name]]
    assert changed == []


def test_unchanged_outputs_are_linked_from_dvcs_own_objects(repo):
    """.dvc/config links DVC's cache with hard links, so every output file is DVC's object of
    its MD5. A stage run by DVC (``DVC_ROOT`` set) links an unchanged photo's files from those
    same objects (segclust.dvcstore): same inode and mtime, so DVC's state answers for them
    without reading a byte; run by hand it links the per-image cache's own files."""
    import os

    from dvc.repo import Repo

    from segclust.dvcstore import md5_of, object_path

    with Repo(str(repo)) as opened:
        store = Path(opened.cache.local.path)

    def linked_to_objects() -> dict[str, bool]:
        files = sorted(p for p in (repo / "data" / "labels").iterdir() if p.is_file())
        assert len(files) >= 2
        return {
            p.name: p.stat().st_ino == object_path(store, md5_of(p)).stat().st_ino for p in files
        }

    assert set(linked_to_objects().values()) == {True}  # DVC's own doing, after its commit
    stage = (sys.executable, "-m", "segclust.stages.cluster")
    env = {k: v for k, v in os.environ.items() if k != "DVC_ROOT"}
    subprocess.run(stage, cwd=repo, env=env, check=True, capture_output=True)
    assert set(linked_to_objects().values()) == {False}  # the per-image cache's files
    env["DVC_ROOT"] = str(repo)
    subprocess.run(stage, cwd=repo, env=env, check=True, capture_output=True)
    assert set(linked_to_objects().values()) == {True}
    assert "Running stage" not in dvc(repo, "repro").stdout  # the same bytes


def test_uncached_outputs_keep_the_per_image_cache_files(repo):
    """``plots/render`` is ``cache: false``, yet DVC's run-cache stores its files and checks
    the workspace out again with ``copy``, which replaces a file that is a hard link to one
    of its objects by a fresh copy. So those PNGs are linked from the per-image cache's
    entries, never from DVC's objects: a forced rerun keeps every PNG the entry's own inode
    (linked from the objects, each came back a single-linked copy)."""
    dvc(repo, "repro", "--force", "--single-item", "render")
    pngs = sorted((repo / "plots" / "render").glob("*.png"))
    assert pngs
    assert all(p.stat().st_nlink >= 2 for p in pngs)  # shared with its per-image cache entry
    before = {p.name: p.stat().st_ino for p in pngs}
    dvc(repo, "repro", "--force", "--single-item", "render")
    assert {p.name: p.stat().st_ino for p in pngs} == before


def test_a_rerun_leaves_git_clean_and_times_out_of_the_lock(repo):
    """What a fresh clone's `make run` must do: same code and params, same committed bytes."""
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "results", check=False)
    dvc(repo, "repro", "--force", "--single-item", *PIPELINE)
    assert sh(repo, "git", "status", "--porcelain").stdout == ""
    timings = json.loads((repo / "metrics/timings/tune.json").read_text())
    assert set(timings["seconds"]) == {"halves", "bands"}
    assert "timings" not in (repo / "dvc.lock").read_text()


def test_optuna_study_can_be_reloaded(repo):
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(repo / "data/studies/halves.journal"))
    )
    study = optuna.load_study(study_name="halves", storage=storage)
    assert len(study.trials) == 5


def test_regions_sweep_reruns_only_what_depends_on_it(repo):
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline results", check=False)
    result = dvc(repo, "exp", "run", "-S", "regions=clusters", "-n", "regions-try")
    for stage in ("regions", "render", "evaluate"):
        assert f"Running stage '{stage}'" in result.stdout
    # the boundary maps' own benchmark does not read the segmentations
    for stage in ("features", "cluster", "tune", "evaluate_boundaries"):
        assert f"Running stage '{stage}'" not in result.stdout
    counts = json.loads((repo / "metrics/regions.json").read_text())
    assert counts["method"] == "clusters"
    assert "method: clusters" in (repo / "params.yaml").read_text()


def test_hierarchy_sweep_reruns_only_the_cascade(repo):
    """Cut the same hierarchy another way from the command line: no clustering reruns."""
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline results", check=False)
    # a count the threshold cut does not already give, so the cut (and what reads it) changes;
    # the tiny photos (~800 px) are one leaf at the train-chosen leaf_area (400), so smaller
    before = {e["regions"] for e in read_table(repo / "plots/images/hierarchy.csv").values()}
    wanted = 1 if before != {1} else 2
    result = dvc(
        repo, "exp", "run", "-S", "hierarchy.cut=regions", "-S", f"hierarchy.n_regions={wanted}",
        "-S", "hierarchy.leaf_area=50", "-n", "cut-try",
    )  # fmt: skip
    for stage in ("hierarchy", "render", "evaluate"):
        assert f"Running stage '{stage}'" in result.stdout
    for stage in ("features", "cluster", "tune", "regions", "evaluate_boundaries"):
        assert f"Running stage '{stage}'" not in result.stdout
    composed = yaml.safe_load((repo / "params.yaml").read_text())
    assert composed["hierarchy"]["cut"] == "regions"
    assert composed["hierarchy"]["n_regions"] == wanted
    counts = json.loads((repo / "metrics/hierarchy.json").read_text())
    assert counts["cut"] == "regions"
    after = {e["regions"] for e in read_table(repo / "plots/images/hierarchy.csv").values()}
    assert after == {wanted}
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    names = {exp.get("name") for entry in shown for exp in (entry.get("experiments") or [])}
    assert "cut-try" in names


def test_the_seed_experiment_runs_from_its_hydra_group(repo):
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline results", check=False)
    dvc(repo, "exp", "run", "-S", "+experiment=seed", "-n", "seed-way")
    composed = yaml.safe_load((repo / "params.yaml").read_text())
    assert composed["features"]["name"] == "intensity"
    assert composed["regions"]["method"] == "clusters"
    assert composed["smoothing"]["method"] == "none"
    features = json.loads((repo / "data/features/halves.json").read_text())
    assert features["feature_names"] == ["intensity"]


def test_exp_run_with_a_hydra_override(repo):
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline results", check=False)
    dvc(repo, "exp", "run", "-S", "cluster=dbscan", "-n", "dbscan-try")
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    experiments = [exp for entry in shown for exp in (entry.get("experiments") or [])]
    names = {exp.get("name") for exp in experiments}
    assert "dbscan-try" in names
    composed = (repo / "params.yaml").read_text()
    assert "algorithm: dbscan" in composed
    assert read_table(repo / "plots/images/cluster.csv")["halves"]["algorithm"] == "dbscan"
    diff = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)
    assert "metrics/cluster.json" in diff


def test_a_retrained_boundary_model_reruns_what_reads_it(repo):
    """The models are DVC outputs like any other: retraining one (here on a small split of
    synthetic photos inside the repository) reruns the maps, the hierarchy and what reads
    them, not the clustering; the new model's digest is in the metrics."""
    from tests.test_learned_boundaries import regions_photo

    # back to the default composition (earlier tests applied their experiments here), as
    # `dvc exp run` composes params.yaml from conf/ and only this run's overrides
    sh(repo, sys.executable, "scripts/compose_params.py")
    dvc(repo, "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline results", check=False)
    assert "Running stage" not in dvc(repo, "repro").stdout  # nothing changed, nothing runs
    committed = hashlib.sha256((repo / "models/boundaries_base.npz").read_bytes()).hexdigest()
    for i in range(3):
        photo, labels = regions_photo(i)
        write_image(repo / "train" / "images" / f"p{i}.png", photo)
        write_image(repo / "train" / "truth" / f"p{i}.png", labels.astype("uint8"))
    sh(repo, "git", "add", "train")
    sh(repo, "git", "commit", "-qm", "a small training split")
    result = dvc(
        repo, "exp", "run", "-n", "retrained",
        "-S", "boundaries.train.images=train/images",
        "-S", "boundaries.train.ground_truth=train/truth",
        "-S", "boundaries.train.pixels_per_image=400", "-S", "boundaries.train.texton_pixels=200",
    )  # fmt: skip
    # evaluate reads the hierarchy, not the maps: it reruns only if the cuts changed
    for stage in (
        "train_boundaries@base", "boundaries", "hierarchy", "render", "evaluate_boundaries",
    ):  # fmt: skip
        assert f"Running stage '{stage}'" in result.stdout, stage
    for stage in ("features", "cluster", "tune", "regions"):
        assert f"Running stage '{stage}'" not in result.stdout, stage
    retrained = hashlib.sha256((repo / "models/boundaries_base.npz").read_bytes()).hexdigest()
    assert retrained != committed
    maps = json.loads((repo / "metrics/boundaries.json").read_text())
    hierarchy = json.loads((repo / "metrics/hierarchy.json").read_text())
    assert maps["sha256"] == hierarchy["boundary_model"]["sha256"] == retrained
    assert maps["device"] == "cpu" and hierarchy["edges"] == "learned"
    trained = json.loads((repo / "metrics/train_boundaries_base.json").read_text())
    assert trained["images"] == 3 and trained["sha256"] == retrained
