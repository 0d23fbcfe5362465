"""Unchanged per-photo outputs are DVC's own cache objects again, and input digests are
remembered, so that adding one photo to thousands costs DVC and the stage next to nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from segclust import imagecache
from segclust.dvcstore import dvc_object_store, md5_of, object_path
from segclust.imagecache import ImageCache, remembered_digest
from tests.conftest import REPO_ROOT


def dvc_repo(root: Path, cache_type: str | None) -> Path:
    root.mkdir(parents=True)
    run = [sys.executable, "-m", "dvc"]
    subprocess.run([*run, "init", "--no-scm", "-q"], cwd=root, check=True)
    if cache_type:
        subprocess.run([*run, "config", "cache.type", cache_type], cwd=root, check=True)
    return root


@pytest.mark.parametrize("cache_dir", [None, "../elsewhere"])
def test_the_object_name_is_dvcs_own(tmp_path, cache_dir):
    from dvc.repo import Repo

    root = dvc_repo(tmp_path / "repo", "hardlink")
    if cache_dir:
        subprocess.run(
            [sys.executable, "-m", "dvc", "cache", "dir", cache_dir], cwd=root, check=True
        )
    store = dvc_object_store(str(root))
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    with Repo(str(root)) as repo:
        assert store is not None and store.resolve() == Path(repo.cache.local.path).resolve()
        assert object_path(store, md5).resolve() == Path(repo.cache.local.oid_to_path(md5))


def test_the_store_is_used_only_under_dvc_with_hard_links(tmp_path, monkeypatch):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert dvc_object_store() is None  # not run by DVC
    assert dvc_object_store(str(dvc_repo(tmp_path / "copies", None))) is None  # reflink,copy
    assert dvc_object_store(str(tmp_path / "not-a-repo")) is None
    linked = dvc_repo(tmp_path / "links", "hardlink,copy")
    monkeypatch.setenv("DVC_ROOT", str(linked))
    assert dvc_object_store() == linked / ".dvc" / "cache" / "files" / "md5"


def test_this_project_links_its_dvc_cache():
    """.dvc/config asks for hard links: the add-one-photo cost rests on it (README)."""
    assert dvc_object_store(str(REPO_ROOT)) is not None


def _writer(text: str):
    def work(folders):
        (folders["out"] / "a.txt").write_text(text)
        (folders["out"] / "sub").mkdir()
        (folders["out"] / "sub" / "b.txt").write_text(text * 2)
        return text

    return work


def test_a_hit_links_dvcs_object_where_there_is_one(tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    store = tmp_path / "objects"
    cache = ImageCache.for_stage("demo", {}, tmp_path / "cache", objects=store)
    first = tmp_path / "first"
    first.mkdir()
    cache.run("img", [source], {"out": first}, _writer("x"))
    # DVC commits a.txt (its object: a read-only copy); b.txt's object is a wrong size
    a_object = object_path(store, md5_of(first / "a.txt"))
    a_object.parent.mkdir(parents=True)
    a_object.write_text("x")
    b_object = object_path(store, md5_of(first / "sub" / "b.txt"))
    b_object.parent.mkdir(parents=True)
    b_object.write_text("truncated")
    second = tmp_path / "second"
    second.mkdir()
    result, hit = cache.run("img", [source], {"out": second}, _writer("never"))
    assert (result, hit) == ("x", True)
    assert os.stat(second / "a.txt").st_ino == os.stat(a_object).st_ino
    b_inode = os.stat(second / "sub" / "b.txt").st_ino
    assert b_inode != os.stat(b_object).st_ino  # the entry's own file instead
    assert b_inode == os.stat(first / "sub" / "b.txt").st_ino
    assert (second / "sub" / "b.txt").read_text() == "xx"


def test_outputs_dvc_does_not_cache_are_never_linked_from_its_objects(tmp_path):
    """An output DVC does not cache (e.g. the PNGs kept in Git) gets the entry's own file
    even where DVC's run-cache left an object of the same bytes: DVC would replace a file
    linked to its object by a copy after the run. A cached output beside it still gets the
    object."""
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    store = tmp_path / "objects"
    cache = ImageCache.for_stage(
        "demo", {}, tmp_path / "cache", objects=store, uncached=["pictures"]
    )
    first = {"out": tmp_path / "first" / "out", "pictures": tmp_path / "first" / "pictures"}
    for folder in first.values():
        folder.mkdir(parents=True)
    cache.run("img", [source], first, _two_writer)
    objects = {}
    for name in first:
        made = first[name] / "a.txt"
        objects[name] = object_path(store, md5_of(made))
        objects[name].parent.mkdir(parents=True, exist_ok=True)
        objects[name].write_bytes(made.read_bytes())
    second = {k: tmp_path / "second" / k for k in first}
    for folder in second.values():
        folder.mkdir(parents=True)
    assert cache.run("img", [source], second, _two_writer) == ("both", True)
    assert os.stat(second["out"] / "a.txt").st_ino == os.stat(objects["out"]).st_ino
    picture = os.stat(second["pictures"] / "a.txt").st_ino
    assert picture != os.stat(objects["pictures"]).st_ino
    assert picture == os.stat(first["pictures"] / "a.txt").st_ino


def _two_writer(folders):
    (folders["out"] / "a.txt").write_text("labels")
    (folders["pictures"] / "a.txt").write_text("png")
    return "both"


def test_input_digests_are_remembered_until_the_file_changes(tmp_path, monkeypatch):
    computed: list[Path] = []
    real = imagecache.file_digest

    def counting(path: Path) -> str:
        computed.append(path)
        return real(path)

    monkeypatch.setattr(imagecache, "file_digest", counting)
    photo, memo = tmp_path / "photo.npy", tmp_path / "memo"
    photo.write_bytes(b"first")
    first = remembered_digest(photo, memo)
    assert remembered_digest(photo, memo) == first == real(photo)
    assert len(computed) == 1
    photo.write_bytes(b"second, longer")  # new size and mtime
    assert remembered_digest(photo, memo) == real(photo) != first
    assert len(computed) == 2
    replaced = tmp_path / "other.npy"
    replaced.write_bytes(b"first")
    os.replace(replaced, photo)  # same size, another inode
    assert remembered_digest(photo, memo) == first
    assert len(computed) == 3


@pytest.mark.parametrize("memoised", [True, False])
def test_a_cache_key_is_the_same_with_or_without_the_memo(tmp_path, memoised):
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    cache = ImageCache.for_stage("demo", {"k": 1}, tmp_path / "cache")
    if memoised:
        cache.key("img", [source])  # the memo is written
    expected = ImageCache.for_stage("demo", {"k": 1}, tmp_path / "other").key("img", [source])
    assert cache.key("img", [source]) == expected


def test_a_damaged_entry_is_a_miss_and_links_nothing(tmp_path):
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    cache = ImageCache.for_stage("demo", {}, tmp_path / "cache")
    first = tmp_path / "first"
    first.mkdir()
    cache.run("img", [source], {"out": first}, _writer("x"))
    (result,) = (tmp_path / "cache").rglob(imagecache.RESULT_FILE)
    result.write_bytes(b"not a pickle")
    second = tmp_path / "second"
    second.mkdir()
    assert cache.lookup("img", [source], {"out": second}) == (False, None)
    assert list(second.iterdir()) == []


def test_a_file_already_in_the_output_is_replaced_not_written_through(tmp_path):
    """A target that exists (say, a hard link to one of DVC's read-only objects) is unlinked
    first: the bytes of whatever it linked to stay as they were."""
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")
    cache = ImageCache.for_stage("demo", {}, tmp_path / "cache")
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "dvc-object"
    elsewhere.write_text("someone else's bytes")
    os.link(elsewhere, out / "a.txt")
    cache.run("img", [source], {"out": out}, _writer("x"))
    assert (out / "a.txt").read_text() == "x"
    assert elsewhere.read_text() == "someone else's bytes"


def _tree(root: Path) -> list[tuple[str, str]]:
    return sorted(
        (p.relative_to(root).as_posix(), "dir" if p.is_dir() else p.read_text())
        for p in root.rglob("*")
    )


def test_a_hit_rebuilds_the_tree_from_its_entry_without_listing_it(tmp_path, monkeypatch):
    """An entry is its files and one pickle naming them, with every folder (empty ones too):
    a hit opens that pickle and lists no folder (at 10,000 photos the listings and extra
    reads were most of a cached stage's time)."""
    source = tmp_path / "input.bin"
    source.write_bytes(b"pixels")

    def nested(folders):
        out = folders["out"]
        (out / "deep" / "er").mkdir(parents=True)
        (out / "deep" / "er" / "c.txt").write_text("c")
        (out / "empty").mkdir()
        (out / "a.txt").write_text("a")
        return "tree"

    cache = ImageCache.for_stage("demo", {}, tmp_path / "cache")
    first = tmp_path / "first"
    first.mkdir()
    assert cache.run("img", [source], {"out": first}, nested) == ("tree", False)
    (entry,) = (p.parent for p in (tmp_path / "cache").rglob(imagecache.RESULT_FILE))
    assert sorted(p.name for p in entry.iterdir()) == [imagecache.FILES_DIR, imagecache.RESULT_FILE]

    def no_listing(*args, **kwargs):
        raise AssertionError("a hit listed a folder")

    monkeypatch.setattr(Path, "rglob", no_listing)
    monkeypatch.setattr(Path, "iterdir", no_listing)
    monkeypatch.setattr(os, "scandir", no_listing)
    second = tmp_path / "second"
    assert cache.lookup("img", [source], {"out": second}) == (True, "tree")
    monkeypatch.undo()
    assert _tree(second) == _tree(first)
    assert (
        os.stat(second / "deep" / "er" / "c.txt").st_ino
        == os.stat(first / "deep" / "er" / "c.txt").st_ino
    )


def test_a_folder_table_is_not_trusted_for_a_file_changed_since(tmp_path, monkeypatch):
    computed: list[str] = []
    real = imagecache.file_digest

    def counting(path):
        computed.append(str(path))
        return real(path)

    monkeypatch.setattr(imagecache, "file_digest", counting)
    monkeypatch.setattr(imagecache, "_TABLES", {})  # this process's tables: this test's only
    monkeypatch.setattr(imagecache, "_CHANGED", set())
    photo, memo = tmp_path / "photos" / "a.npy", tmp_path / "memo"
    photo.parent.mkdir()
    photo.write_bytes(b"first")
    first = remembered_digest(photo, memo)
    assert imagecache.save_remembered_digests() == 1
    imagecache._TABLES.clear()  # as a new process: the table is read from disk
    assert remembered_digest(photo, memo) == first
    assert len(computed) == 1
    photo.write_bytes(b"second, longer")
    imagecache._TABLES.clear()
    assert remembered_digest(photo, memo) == real(photo) != first
    assert len(computed) == 2
    tables = list((memo / imagecache.FOLDER_TABLES).iterdir())
    assert len(tables) == 1
    tables[0].write_bytes(b"damaged")  # an unreadable table is an empty one
    imagecache._TABLES.clear()
    assert remembered_digest(photo, memo) == real(photo)
