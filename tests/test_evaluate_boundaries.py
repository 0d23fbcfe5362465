"""The evaluate_boundaries stage: the learned boundary maps scored as edge maps (ODS, OIS, AP)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segclust.boundaries import boundary_counts_over_thresholds, boundary_scores, human_boundaries
from segclust.groundtruth import find_ground_truth
from segclust.stages import evaluate_boundaries as stage
from segclust.stages.gather import pooled_edges
from segclust.tables import read_table
from tests.conftest import write_image
from tests.test_stages import assert_one_line_error, leftovers, make_workdir, run_stage


def _halves_truth(folder: Path) -> np.ndarray:
    halves = np.zeros((24, 32), np.uint8)
    halves[:, 16:] = 1
    write_image(folder / "halves.png", halves)
    write_image(folder / "small.png", halves)
    return halves


def _map(thin: np.ndarray) -> np.ndarray:
    """A boundaries-stage map: probability, then thin probability."""
    return np.stack([thin, thin]).astype(np.float32)


@pytest.fixture
def scored(tmp_path, tiny_image_dir) -> tuple[Path, np.ndarray]:
    """A work folder with three photos' sidecars and maps: ``halves`` (its human boundary at
    0.9, four stray pixels at 0.3), ``small`` (a map at half its ground truth's size) and
    ``bands`` (no ground truth); the stage run on it. Returns (folder, halves' thin map)."""
    truth = tmp_path / "truth"
    _halves_truth(truth)
    work = make_workdir(tmp_path, tiny_image_dir, data__ground_truth=str(truth))
    (work / "data/features").mkdir(parents=True)
    (work / "data/boundaries").mkdir(parents=True)
    for stem in ("halves", "small", "bands"):
        (work / f"data/features/{stem}.json").write_text("{}")
    human = human_boundaries(find_ground_truth(truth, "halves"))[0]
    thin = np.where(human, 0.9, 0.0)
    thin[[2, 2, 20, 20], [3, 28, 3, 28]] = 0.3  # far from the boundary: wrong below 0.3
    np.save(work / "data/boundaries/halves.npy", _map(thin))
    np.save(work / "data/boundaries/small.npy", _map(thin[::2, ::2]))
    np.save(work / "data/boundaries/bands.npy", _map(np.zeros((30, 36))))
    result = run_stage(work, "evaluate_boundaries")
    assert result.returncode == 0, result.stderr
    return work, thin


def test_the_stage_scores_the_learned_map_as_an_edge_map(scored):
    work, thin = scored
    summary = json.loads((work / "metrics/evaluate_boundaries.json").read_text())
    assert summary["images"] == 1
    assert summary["images_other_size"] == 1  # small: its map is not at its truth's size
    assert summary["images_without_ground_truth"] == 1  # bands
    assert summary["thresholds"] == stage.EDGE_THRESHOLDS.size
    # above the strays' 0.3 the map is the human boundary itself: every F is 1
    assert summary["ods_f"] == summary["ois_f"] == 1.0
    assert summary["ods_threshold"] > 0.3
    # the benchmark's own functions on the same map give the same numbers
    humans = human_boundaries(find_ground_truth(work.parent / "truth", "halves"))
    counts = boundary_counts_over_thresholds(thin, humans, stage.EDGE_THRESHOLDS)
    expected = boundary_scores(counts[None], stage.EDGE_THRESHOLDS)
    assert summary["ap"] == pytest.approx(expected.ap, abs=1e-6)
    assert summary["ap"] < 1.0  # the strays cost precision at the low thresholds
    saved = stage.load_parts(work / stage.EVALUATION_DIR)
    assert np.array_equal(saved.counts["halves"], counts)
    rows = read_table(work / "plots/images/evaluate_boundaries.csv")
    assert set(rows) == {"halves", "small"}
    assert rows["halves"]["n_annotators"] == 1
    assert rows["halves"]["best_f"] == 1.0 and rows["halves"]["best_threshold"] > 0.3
    assert rows["small"].get("best_f") in (None, "")  # scored at no threshold
    timings = json.loads((work / "metrics/timings/evaluate_boundaries.json").read_text())
    assert set(timings["seconds"]) == {"halves", "small"}
    written = [p for p in leftovers(work) if not p.startswith(("data/features", "data/boundaries"))]
    assert written == [  # its outputs and timings, nothing half-written beside them
        "data/evaluation_boundaries/counts.npy", "data/evaluation_boundaries/parts.json",
        "metrics/evaluate_boundaries.json", "metrics/timings/evaluate_boundaries.json",
        "plots/images/evaluate_boundaries.csv",
    ]  # fmt: skip


def test_a_photo_without_its_map_is_a_one_line_error(scored):
    work, _thin = scored
    (work / "data/boundaries/halves.npy").unlink()
    result = run_stage(work, "evaluate_boundaries")
    assert_one_line_error(result, "evaluate_boundaries", "run the boundaries stage first")
    # the last run's outputs are still there, whole
    assert json.loads((work / "metrics/evaluate_boundaries.json").read_text())["images"] == 1
    assert stage.load_parts(work / stage.EVALUATION_DIR).counts.keys() == {"halves"}


@pytest.mark.parametrize("name", ["evaluate", "evaluate_boundaries"])
def test_a_ground_truth_that_is_not_a_folder_is_a_one_line_error(scored, name):
    """Both evaluation stages pick their photos the same way (``stages._truth``)."""
    work, _thin = scored
    before = (work / "metrics/evaluate_boundaries.json").read_bytes()
    params = work / "params.yaml"
    params.write_text(params.read_text().replace(str(work.parent / "truth"), "nowhere/truth"))
    result = run_stage(work, name)
    assert_one_line_error(result, name, "data.ground_truth nowhere/truth is not a folder")
    assert (work / "metrics/evaluate_boundaries.json").read_bytes() == before


def test_gather_pools_the_shards_counts_not_their_scores(tmp_path):
    """ODS over two shards is that of their photos together: counts summed per threshold."""
    rng = np.random.default_rng(0)
    parts = []
    for shard in ("s0000", "s0001"):
        totals = rng.integers(50, 100, size=(stage.EDGE_THRESHOLDS.size, 1))
        matched = rng.integers(0, 50, size=(stage.EDGE_THRESHOLDS.size, 1))
        counts = np.hstack([matched, totals, matched, totals + 10])
        part = stage.EdgeParts(counts={f"{shard}_a": counts}, missing=1)
        folder = tmp_path / shard / stage.EVALUATION_DIR
        folder.mkdir(parents=True)
        stage.save_parts(folder, part)
        parts.append(part)
    whole = stage.EdgeParts()
    for part in parts:
        whole.merge(part)
    pooled = pooled_edges([tmp_path / "s0000", tmp_path / "s0001"])
    assert pooled == stage.edge_summary(whole)
    assert pooled["images"] == 2 and pooled["images_without_ground_truth"] == 2
    separate = [stage.edge_summary(p)["ods_f"] for p in parts]
    assert pooled["ods_f"] != pytest.approx(np.mean(separate), abs=1e-9)
