"""Shards (segclust.shards): photos placed stably, the pipeline derived per shard, and the
real thing: `dvc repro` of the shards writes the unsharded pipeline's per-image bytes, and a
photo added later leaves every other shard's stages up to date."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from segclust.errors import SegclustError
from segclust.shards import (
    GATHERED,
    assign,
    gather_pipeline,
    lay_out,
    placed,
    repro_hint,
    shard_pipeline,
)
from tests.conftest import (
    commit_all,
    copy_project,
    sh,
    three_region_bgr,
    two_region_grey,
    write_image,
)


def test_photos_keep_their_shard_and_new_ones_fill_the_last_first():
    first = assign({}, [f"{i:02d}.png" for i in range(5)], 2)
    assert first == {
        "s0000": ["00.png", "01.png"],
        "s0001": ["02.png", "03.png"],
        "s0002": ["04.png"],
    }
    # "000.png" sorts before every placed photo: it still goes to the last shard
    later = assign(first, [*(f"{i:02d}.png" for i in range(5)), "000.png", "99.png", "98.png"], 2)
    assert {k: later[k] for k in first if k != "s0002"} == {
        k: v for k, v in first.items() if k != "s0002"
    }
    assert later["s0002"] == ["000.png", "04.png"]
    assert later["s0003"] == ["98.png", "99.png"]
    with pytest.raises(SegclustError, match="shard size must be >= 1"):
        assign({}, ["a.png"], 0)


def test_the_pipeline_per_shard_leaves_training_out_and_points_code_at_the_project():
    pipeline = {
        "stages": {
            "train": {"foreach": ["a"], "do": {"cmd": "train ${item}"}},
            "cluster": {
                "cmd": "python -m segclust.stages.cluster",
                "deps": [
                    "${data.root}",
                    "data/features",
                    "src/segclust/x.py",
                    {"models/m.npz": {"cache": False}},
                ],
                "params": ["cluster"],
                "outs": ["data/labels"],
                "metrics": [{"metrics/cluster.json": {"cache": False}}],
                "plots": [{"plots/images/cluster.csv": {"cache": False, "x": "silhouette"}}],
            },
        }
    }
    sharded = shard_pipeline(pipeline)["stages"]
    assert list(sharded) == ["cluster"]  # one shard's pipeline: the same for every shard
    gather = gather_pipeline(pipeline, ["s0000", "s0001"])["stages"]["gather"]
    assert gather["cmd"] == "python -m segclust.stages.gather s0000 s0001"
    assert {"s0000/metrics/evaluate.json", "s0001/plots/images/cluster.csv",
            "s0001/data/evaluation", "s0001/data/evaluation_boundaries",
            "s0000/metrics/evaluate_boundaries.json"} <= set(gather["deps"])  # fmt: skip
    assert {"../src/segclust/x.py", "../src/segclust/stages/gather.py"} <= set(gather["deps"])
    assert "train" not in gather["cmd"] and "wdir" not in sharded["cluster"]
    do = sharded["cluster"]
    assert do["deps"] == [
        "${data.root}",
        "data/features",
        "../../src/segclust/x.py",
        {"../../models/m.npz": {"cache": False}},
    ]
    assert do["params"] == ["cluster"]
    # a shard's summary and table are plain outputs; gather's are the metrics and plots
    assert do["outs"] == [
        "data/labels",
        {"metrics/cluster.json": {"cache": False}},
        {"plots/images/cluster.csv": {"cache": False}},
    ]
    assert "metrics" not in do and "plots" not in do
    assert {"metrics/cluster.json": {"cache": False}} in gather["metrics"]
    assert {"plots/images/cluster.csv": {"cache": False, "x": "silhouette"}} in gather["plots"]
    assert pipeline["stages"]["cluster"]["deps"][2] == "src/segclust/x.py"  # not changed


def _project_of_three_photos(folder):
    """A project of one stage and a collection of a.png, b.png, c.png beside it: the photos'
    folder."""
    params = {"data": {"root": "data/samples", "ground_truth": "data/ground_truth",
                       "images": None, "extensions": [".png"]}}  # fmt: skip
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {"cmd": "true"}}}))
    photos = folder / "photos"
    for name in ("a", "b", "c"):
        write_image(photos / f"{name}.png", two_region_grey())
    return photos


def _pipelines(project):
    """The shards with a ``dvc.yaml``, and the shards ``gather`` pools."""
    shards = sorted(p.parent.name for p in (project / "shards").glob("s*/dvc.yaml"))
    gather = yaml.safe_load((project / "shards/dvc.yaml").read_text())["stages"]["gather"]
    return shards, gather["cmd"].split()[3:]


def test_a_shard_left_without_photos_leaves_the_pipeline(tmp_path):
    photos = _project_of_three_photos(tmp_path)
    assert list(lay_out(tmp_path, photos, 1)) == ["s0000", "s0001", "s0002"]
    assert _pipelines(tmp_path) == (["s0000", "s0001", "s0002"],) * 2
    shard = yaml.safe_load((tmp_path / "shards/s0001/dvc.yaml").read_text())
    assert shard == {"stages": {"s": {"cmd": "true"}}}
    (tmp_path / "shards/s0002/dvc.lock").write_text("schema: '2.0'\n")  # as DVC leaves it
    (tmp_path / "shards/s0002/data/samples/c.png").unlink()  # its only photo
    (photos / "c.png").unlink()
    shards = lay_out(tmp_path, photos, 1)
    assert shards == {"s0000": ["a.png"], "s0001": ["b.png"]}
    assert _pipelines(tmp_path) == (["s0000", "s0001"],) * 2
    assert not (tmp_path / "shards/s0002/dvc.lock").exists()  # DVC forgets it; its folder stays
    assert (tmp_path / "shards/s0002/data/samples").is_dir()
    # a photo still in the collection but in no shard is placed again, after the last shard
    (tmp_path / "shards/s0000/data/samples/a.png").unlink()
    write_image(photos / "d.png", two_region_grey())
    shards = lay_out(tmp_path, photos, 1)
    assert shards == {"s0001": ["b.png"], "s0002": ["a.png"], "s0003": ["d.png"]}
    assert _pipelines(tmp_path) == (["s0001", "s0002", "s0003"],) * 2


def test_a_lay_out_of_one_foreach_has_its_lock_split_over_the_shards(tmp_path):
    photos = _project_of_three_photos(tmp_path)
    (tmp_path / "shards/s0000/data/samples").mkdir(parents=True)
    (tmp_path / "shards/s0001/data/samples").mkdir(parents=True)
    for name, shard in (("a", "s0000"), ("b", "s0000"), ("c", "s0001")):
        (tmp_path / f"shards/{shard}/data/samples/{name}.png").write_bytes(
            (photos / f"{name}.png").read_bytes()
        )
    entry = {"cmd": "true", "outs": [{"path": "x", "md5": "0" * 32}]}
    old = {"schema": "2.0", "stages": {"s@s0000": entry, "s@s0001": entry | {"cmd": "1"},
                                        "s@s0009": entry, "gather": {"cmd": "g"}}}  # fmt: skip
    (tmp_path / "shards/dvc.lock").write_text(yaml.safe_dump(old))
    assert lay_out(tmp_path, photos, 2) == {"s0000": ["a.png", "b.png"], "s0001": ["c.png"]}
    lock = yaml.safe_load((tmp_path / "shards/s0001/dvc.lock").read_text())
    assert lock == {"schema": "2.0", "stages": {"s": entry | {"cmd": "1"}}}
    assert yaml.safe_load((tmp_path / "shards/s0000/dvc.lock").read_text())["stages"] == {
        "s": entry
    }
    # gather's entry stays; a shard without a folder (s0009) is dropped
    kept = yaml.safe_load((tmp_path / "shards/dvc.lock").read_text())
    assert kept == {"schema": "2.0", "stages": {"gather": {"cmd": "g"}}}


def test_a_photo_deleted_from_its_shard_names_that_shard_and_an_emptied_one_leaves(tmp_path):
    photos = _project_of_three_photos(tmp_path)
    lay_out(tmp_path, photos, 2)
    for gone in ("b", "c"):  # b from s0000 (a stays), c: s0001's only photo
        (photos / f"{gone}.png").unlink()
    (tmp_path / "shards/s0000/data/samples/b.png").unlink()
    (tmp_path / "shards/s0001/data/samples/c.png").unlink()
    before = placed(tmp_path)  # the last lay-out, not the folders as they are now
    assert before == {"s0000": ["a.png", "b.png"], "s0001": ["c.png"]}
    after = lay_out(tmp_path, photos, 2)
    assert after == {"s0000": ["a.png"]}
    assert repro_hint(before, after).splitlines()[1] == (
        "  dvc repro --downstream shards/s0000/dvc.yaml"
    )
    assert placed(tmp_path) == after


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"root": "/abs/photos"}, "data.root is '/abs/photos': shards need a relative path"),
        ({"root": "../photos"}, "data.root is '../photos'"),
        ({"images": ["a.png"]}, "data.images lists photos by name"),
    ],
)
def test_a_data_root_outside_the_shard_is_refused_in_one_line(tmp_path, data, message):
    params = {"data": {"root": "data/samples", "ground_truth": "data/ground_truth",
                       "images": None, "extensions": [".png"], **data}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {}}))
    photos = tmp_path / "photos"
    write_image(photos / "a.png", two_region_grey())
    with pytest.raises(SegclustError, match=message):
        lay_out(tmp_path, photos, 10)
    assert not (tmp_path / "shards").exists()  # nothing written


def test_outside_a_project_or_without_photos_it_says_so_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "segclust.shards", "--photos", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    expected = f"shards: error: no params.yaml in {tmp_path}: run this in the project's folder"
    assert done.stderr.strip() == expected
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"root": "data/samples",
        "ground_truth": "data/ground_truth", "extensions": [".png"]}}))  # fmt: skip
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {}}))
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "segclust.shards", "--photos", "empty"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("shards: error: no images in empty"), done.stderr


@pytest.mark.slow
def test_shards_write_the_unsharded_bytes_and_a_new_photo_reruns_one_shard(tmp_path):
    repo = copy_project(tmp_path / "repo")
    samples = repo / "data" / "samples"
    for image in samples.glob("*.*"):
        if image.suffix != ".md":
            image.unlink()
    write_image(samples / "halves.png", two_region_grey(24, 32))
    write_image(samples / "bands.jpg", three_region_bgr(30, 36))
    photos = tmp_path / "photos"  # the collection, outside the project
    shutil.copytree(samples, photos, ignore=shutil.ignore_patterns("*.md"))
    halves, bands = np.zeros((24, 32), np.uint8), np.zeros((30, 36), np.uint8)
    halves[:, 16:], bands[:, 12:24], bands[:, 24:] = 1, 1, 2
    truth = tmp_path / "truth"
    for folder in (truth, repo / "data" / "ground_truth"):
        write_image(folder / "halves.png", halves)
        write_image(folder / "bands.png", bands)
    commit_all(repo, "tiny copy")

    def dvc(*args: str):
        return sh(repo, sys.executable, "-m", "dvc", *args)

    def shards_status() -> dict:
        return json.loads(dvc("status", "--json", "-R", "shards").stdout or "{}")

    def assert_gathered_is_unsharded():
        for stage in GATHERED:
            for name in (f"metrics/{stage}.json", f"plots/images/{stage}.csv"):
                assert (repo / "shards" / name).read_bytes() == (repo / name).read_bytes(), name

    def printed_commands(printed: str) -> list[list[str]]:
        return [line.split() for line in printed.splitlines() if line.startswith("  dvc repro")]

    dvc("repro", "--allow-missing", "--downstream", "features")
    shards_cli = (
        sys.executable, "-m", "segclust.shards", "--photos", str(photos), "--ground-truth",
        str(truth),
    )  # fmt: skip
    printed = sh(repo, *shards_cli, "--size", "1").stdout
    assert sorted(p.name for p in (repo / "shards").iterdir() if p.is_dir()) == ["s0000", "s0001"]
    hint = printed_commands(printed)  # every shard is new: one command for them all
    assert hint == [["dvc", "repro", "--downstream", "-R", "shards"]], printed
    dvc(*hint[0][1:], "--allow-missing")

    compared = 0
    for shard, photo in (("s0000", "bands"), ("s0001", "halves")):
        folder = repo / "shards" / shard
        assert sorted(p.name for p in (folder / "data/samples").iterdir()) == [
            next(photos.glob(f"{photo}.*")).name
        ]
        for path in sorted(folder.glob("data/*/**/*")) + sorted(folder.glob("plots/*/*")):
            relative = path.relative_to(folder)
            # the shard's own
            skip = ("samples", "ground_truth", "images", "evaluation", "evaluation_boundaries")
            if not path.is_file() or relative.parts[1] in skip:
                continue
            other = "halves" if photo == "bands" else "bands"
            assert other not in path.name, relative  # a shard holds its own photo's files only
            assert path.read_bytes() == (repo / relative).read_bytes(), relative
            compared += 1
    assert compared >= 20  # features, labels, tuned, studies, regions, hierarchy, renders...
    # gather: the collection's tables and summaries, the unsharded pipeline's bytes
    flat = json.loads((repo / "metrics/evaluate.json").read_text())
    assert flat["images_evaluated"] == 2 and "hierarchy_levels" in flat  # truth was scored
    assert_gathered_is_unsharded()
    one = json.loads((repo / "shards/s0000/metrics/evaluate.json").read_text())
    assert one["images_evaluated"] == 1  # a shard's own summary is of its photo only
    shown = dvc("metrics", "show", "--json").stdout  # the collection's, not each shard's
    assert "shards/metrics/evaluate.json" in shown and "s0000/metrics" not in shown

    # a lay-out of one `foreach` over the shards (as this module wrote them before): the
    # next lay-out splits its lock, and DVC finds every stage up to date
    shard_stages = yaml.safe_load((repo / "shards/s0000/dvc.yaml").read_text())["stages"]
    old = {"stages": {name: {"foreach": ["s0000", "s0001"], "do": stage | {"wdir": "${item}"}}
                      for name, stage in shard_stages.items()}}  # fmt: skip
    old["stages"] |= yaml.safe_load((repo / "shards/dvc.yaml").read_text())["stages"]
    lock = yaml.safe_load((repo / "shards/dvc.lock").read_text())
    for shard in ("s0000", "s0001"):
        for name, entry in yaml.safe_load((repo / f"shards/{shard}/dvc.lock").read_text())[
            "stages"
        ].items():
            lock["stages"][f"{name}@{shard}"] = entry
        for made in ("dvc.yaml", "dvc.lock"):
            (repo / "shards" / shard / made).unlink()
    (repo / "shards/dvc.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    (repo / "shards/dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    assert shards_status() == {}  # DVC reads the one-foreach lay-out as up to date
    printed = sh(repo, *shards_cli, "--size", "1").stdout
    assert "no shard changed" in printed, printed
    assert (repo / "shards/s0001/dvc.lock").is_file() and "@" not in (
        repo / "shards/dvc.lock"
    ).read_text()
    assert shards_status() == {}  # and the split one, with nothing rerun

    write_image(photos / "later.png", two_region_grey(26, 30, seed=5))
    printed = sh(repo, *shards_cli, "--size", "1").stdout
    status = shards_status()
    assert status and all(name.startswith("shards/s0002/") or name.endswith(":gather")
                          for name in status), status  # fmt: skip
    # the command it prints runs the new shard and gather, and visits no other shard
    hint = printed_commands(printed)
    assert hint == [["dvc", "repro", "--downstream", "shards/s0002/dvc.yaml"]], printed
    ran = dvc(*hint[0][1:], "--allow-missing").stdout
    assert "s0002/dvc.yaml:features" in ran and "gather" in ran and "shards/s0000" not in ran, ran
    assert shards_status() == {}
    rows = (repo / "shards/plots/images/cluster.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and any(row.startswith("later,") for row in rows), rows

    # the photo dropped again (from the collection and its shard): s0002 leaves the pipeline,
    # and the printed command pools the other two, the unsharded pipeline's bytes once more
    (photos / "later.png").unlink()
    (repo / "shards/s0002/data/samples/later.png").unlink()
    printed = sh(repo, *shards_cli, "--size", "1").stdout
    hint = printed_commands(printed)
    assert hint == [["dvc", "repro", "--downstream", "shards/dvc.yaml:gather"]], printed
    assert "s0002 left" in printed, printed
    ran = dvc(*hint[0][1:], "--allow-missing").stdout
    assert "gather" in ran and "shards/s0" not in ran, ran
    assert shards_status() == {}
    assert_gathered_is_unsharded()
