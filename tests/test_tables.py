"""Per-image tables and the summaries that keep metrics files narrow."""

from __future__ import annotations

import numpy as np
import pytest

from segclust.stages._common import reason_counts, summarise
from segclust.tables import read_table, spread, table_bytes


def flat_keys(d: dict, prefix: str = "") -> set[str]:
    """The columns `dvc exp show` makes of a metrics dict (nested keys joined by dots)."""
    keys: set[str] = set()
    for k, v in d.items():
        if isinstance(v, dict) and v:
            keys |= flat_keys(v, f"{prefix}{k}.")
        else:
            keys.add(prefix + k)
    return keys


def fake_cluster_scores(n: int, seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    rows = {}
    for i in range(n):
        k = int(rng.integers(2, 9))
        rows[f"img{i:05d}"] = {
            "algorithm": "kmeans",
            "backend": "sklearn",
            "n_clusters": k,
            "silhouette": float(rng.uniform(0.1, 0.9)),
            "calinski_harabasz": float(rng.uniform(100, 9000)),
            "davies_bouldin": float(rng.uniform(0.3, 2.0)),
            "noise_fraction": 0.0,
        }
    rows["img00000"] |= {"silhouette": None, "undefined_reason": "all 768 points are noise"}
    return rows


def test_summary_width_does_not_grow_with_the_images():
    small, large = summarise(fake_cluster_scores(5)), summarise(fake_cluster_scores(2000))
    assert flat_keys(small) == flat_keys(large)
    assert len(flat_keys(large)) <= 16
    assert large["images"] == 2000 and large["silhouette_undefined"] == 1


def test_the_summary_is_the_tables_statistics():
    rows = fake_cluster_scores(101, seed=3)
    summary = summarise(rows)
    silhouettes = [r["silhouette"] for r in rows.values() if r["silhouette"] is not None]
    assert summary["silhouette"]["median"] == pytest.approx(np.median(silhouettes), rel=1e-5)
    assert summary["silhouette"]["p10"] == pytest.approx(np.percentile(silhouettes, 10), rel=1e-5)
    assert summary["n_clusters"] == {
        "mean": pytest.approx(np.mean([r["n_clusters"] for r in rows.values()]), rel=1e-5),
        "median": np.median([r["n_clusters"] for r in rows.values()]),
    }


def test_table_round_trip_keeps_every_value(tmp_path):
    rows = fake_cluster_scores(7)
    rows["img00003"]["notes"] = ["subsampled", "refit"]
    path = tmp_path / "t.csv"
    path.write_bytes(table_bytes(rows, first=("algorithm",)))
    back = read_table(path)
    assert set(back) == set(rows)
    for image, row in rows.items():
        expected = {k: v for k, v in row.items() if v is not None}
        if "notes" in expected:
            expected["notes"] = "subsampled; refit"
        assert back[image] == expected
    header = path.read_text().splitlines()[0].split(",")
    assert header[:2] == ["image", "algorithm"]


def test_same_rows_same_bytes_in_any_order():
    rows = fake_cluster_scores(9)
    shuffled = dict(reversed(list(rows.items())))
    assert table_bytes(rows) == table_bytes(shuffled)


def test_an_empty_table_still_names_its_columns():
    assert table_bytes({}, first=("covering", "pri")) == b"image,covering,pri\n"


def test_spread_and_reasons():
    assert spread([None, float("nan")]) is None
    assert spread([4.0, 2.0], ("mean", "median")) == {"mean": 3.0, "median": 3.0}
    reasons = ["all 768 points are noise", "all 1,024 points are noise", "one cluster"]
    assert reason_counts(reasons) == {"all N points are noise": 2, "one cluster": 1}


def test_the_summary_records_the_devices_the_features_were_computed_on():
    rows = fake_cluster_scores(4)
    assert summarise(rows)["feature_device"] == ""  # older tables carry no device
    for i, row in enumerate(rows.values()):
        row["feature_device"] = "cuda" if i % 2 else "cpu"
    assert summarise(rows)["feature_device"] == "cpu,cuda"
    rows = {k: v | {"feature_device": "cpu"} for k, v in rows.items()}
    assert summarise(rows)["feature_device"] == "cpu"
