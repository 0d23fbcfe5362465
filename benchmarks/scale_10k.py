"""Ten thousand photos through one ``dvc repro``: wall time per stage, DVC's own share, peak
memory per process, a no-op repro, and adding one photo.

Two steps:

    # 1. the photos, outside the project and never committed: crops, flips and rescales of
    #    the BSDS500 photos at 0.05-0.15 MP (or --megapixels LOW HIGH), their human
    #    segmentations cut the same way
    python benchmarks/scale_10k.py make --count 10000 --out ../scale10k --jobs 2
    # 2. the whole pipeline on them (`dvc repro` in a clone of this repository's last
    #    commit, default params, data.root and data.ground_truth pointed at them)
    python benchmarks/scale_10k.py run --photos ../scale10k --engine joblib --jobs 2 \\
        --workdir ../scale10k-run --out benchmarks/results/scale_10k.md

(``make bench-10k`` does both.) With ``run --shards 1000`` (``make bench-10k SHARDS=1000``) the
clone lays the photos out in shards of 1,000 (``python -m segclust.shards``) and runs the
pipeline over them; the tables add up each stage's runs in every shard. Disk: about 8 MB per 0.1
MP photo (DVC's hard-linked cache and the per-image cache share the outputs' bytes), so 10,000
photos at 0.05-0.15 MP need about 80 GB; at 0.05-0.08 MP about 55 GB. With ``--workdir`` the
clone and every measurement so far stay there, and the same command, run again after it was
killed (a session that ends), goes on where it stopped: the killed ``dvc repro`` continues (the
per-image cache keeps each photo finished) and its parts' times are added up.

``run`` streams DVC's output with a time stamp per line: a stage's span runs from DVC's
``Running stage`` line to the next; the stage's own wall time is its ``done in N s`` line, so
the rest of the span is DVC's (hashing the stage's dependencies and outputs, caching them,
writing ``dvc.lock``). Memory: the resident set of every process of the run (DVC, the stage,
its joblib or Dask workers) sampled every 0.2 s with psutil; the table gives the peak of each
kind. Then, in the same clone: a second ``dvc repro`` (nothing to do), ``dvc status``,
``dvc exp show``; one more photo added to the folder and ``dvc repro`` again, against that
photo alone in a fresh clone.

Nothing here is a test: numbers are measured, not asserted. ``make run`` of the project does
not need any of it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT.parent / "shared/data/bsds500-train", ROOT.parent / "shared/data/bsds500")
MEGAPIXELS = (0.05, 0.15)


# --- make ----------------------------------------------------------------------------------------


def _source_pairs(folders: list[Path]) -> list[tuple[Path, Path]]:
    pairs = []
    for folder in folders:
        for image in sorted((folder / "images").glob("*.jpg")):
            truth = folder / "groundTruth" / f"{image.stem}.mat"
            if truth.is_file():
                pairs.append((image, truth))
    if not pairs:
        raise SystemExit(f"no BSDS500 photos in {', '.join(map(str, folders))}")
    return pairs


def variant(photo: np.ndarray, labels: list[np.ndarray], seed: int, megapixels=MEGAPIXELS):
    """One crop (55-100 % of each side), maybe mirrored, rescaled to a size drawn from
    ``megapixels``; the annotations cut and resized (nearest label) the same way."""
    import cv2

    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    h = round(height * rng.uniform(0.55, 1.0))
    w = round(width * rng.uniform(0.55, 1.0))
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    flip = bool(rng.random() < 0.5)
    scale = np.sqrt(rng.uniform(*megapixels) * 1e6 / (h * w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))

    def cut(a: np.ndarray, interpolation: int) -> np.ndarray:
        a = a[top : top + h, left : left + w]
        a = a[:, ::-1] if flip else a
        return cv2.resize(np.ascontiguousarray(a), size, interpolation=interpolation)

    smooth = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cut(photo, smooth), [cut(a.astype(np.uint16), cv2.INTER_NEAREST) for a in labels]


def write_mat(path: Path, labels: list[np.ndarray]) -> None:
    """A Berkeley ``groundTruth`` file: a 1×K struct array with each annotator's
    ``Segmentation`` (what :func:`segclust.groundtruth.read_bsds_mat` reads)."""
    import scipy.io

    records = np.empty((1, len(labels)), dtype=[("Segmentation", object)])
    for k, a in enumerate(labels):
        records[0, k]["Segmentation"] = a.astype(np.uint16)
    scipy.io.savemat(path, {"groundTruth": records}, do_compression=True)


def make_one(task: tuple[int, Path, Path, Path, tuple[float, float]]) -> None:
    import cv2

    from segclust.groundtruth import read_bsds_mat

    index, image, truth, out, megapixels = task
    name = f"s{index:05d}"
    photo, labels = variant(cv2.imread(str(image)), read_bsds_mat(truth), index, megapixels)
    cv2.imwrite(str(out / "images" / f"{name}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 92])
    write_mat(out / "groundTruth" / f"{name}.mat", labels)


def made_megapixels(out: Path) -> tuple[float, float]:
    """The size range ``make`` drew the photos in ``out`` from."""
    record = out / "megapixels.json"
    return tuple(json.loads(record.read_text())) if record.is_file() else MEGAPIXELS


def make(
    count: int, out: Path, jobs: int, first: int = 0, sources=SOURCES, megapixels=None
) -> list[str]:
    """Photos ``first`` .. ``first + count - 1`` (each one's seed is its number), of sizes
    drawn from ``megapixels`` (default: the range the folder was made with)."""
    pairs = _source_pairs([Path(s) for s in sources])
    for sub in ("images", "groundTruth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if megapixels is None:
        megapixels = made_megapixels(out)
    else:
        (out / "megapixels.json").write_text(json.dumps(list(megapixels)))
    tasks = [
        (i, *pairs[i % len(pairs)], out, tuple(megapixels)) for i in range(first, first + count)
    ]
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(make_one, tasks, chunksize=64))
    return [f"s{i:05d}" for i in range(first, first + count)]


# --- run -----------------------------------------------------------------------------------------


def role(process: psutil.Process) -> str:
    """What a process of the run is: dvc, the stage, or one of its workers."""
    try:
        line = " ".join(process.cmdline())
    except psutil.Error:
        return "other"
    if "segclust.stages." in line:
        return "stage"
    if "resource_tracker" in line:  # Python's and loky's helpers that clean up shared memory
        return "resource tracker"
    if "loky" in line or "joblib" in line:
        return "worker (joblib)"
    # a LocalCluster's workers are multiprocessing spawns (spawn_main), a remote one `dask`
    if "distributed" in line or "dask" in line or "spawn_main" in line:
        return "worker (dask)"
    if "dvc" in line:
        return "dvc"
    return "other"


class Memory:
    """Peak resident set per process of a process tree, sampled every 0.2 s."""

    def __init__(self, root: int, dump: Path | None = None) -> None:
        self.root, self.peaks, self.roles, self.dump = root, {}, {}, dump
        self._started = self._saved = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(self.root)
                for process in (parent, *parent.children(recursive=True)):
                    with contextlib.suppress(psutil.Error):
                        rss = process.memory_info().rss
                        if process.pid not in self.roles:
                            self.roles[process.pid] = role(process)
                        self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)
            if self.dump and time.perf_counter() - self._saved > 1:
                self.save()
            time.sleep(0.2)

    def save(self) -> None:
        """The peaks so far, for a run that may be killed (written whole, then renamed)."""
        seconds = time.perf_counter() - self._started
        partial = self.dump.with_suffix(".partial")
        partial.write_text(json.dumps({"seconds": seconds, "by_role": self.by_role()}))
        partial.replace(self.dump)
        self._saved = time.perf_counter()

    def by_role(self) -> dict[str, tuple[float, int]]:
        """Role -> (peak GB of any one such process, how many there were)."""
        out: dict[str, tuple[float, int]] = {}
        for pid, peak in self.peaks.items():
            name = self.roles.get(pid, "other")
            gb, n = out.get(name, (0.0, 0))
            out[name] = (max(gb, peak / 2**30), n + 1)
        return out

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.dump:
            self.save()


# what `make run` runs: every stage from `features` on (the boundary models are in Git; a
# fresh clone has no cached outputs, so `--allow-missing` would skip every stage)
REPRO = ("repro", "--downstream", "features")
# the same over the shards that `python -m segclust.shards` lays out (``run --shards``)
REPRO_SHARDS = ("repro", "--downstream", "-R", "shards")


def stage_name(name: str) -> str:
    """A stage's name without its pipeline file and shard: ``shards/s0003/dvc.yaml:tune``
    (and ``shards/dvc.yaml:tune@s0003``, a lay-out of one ``foreach``) is ``tune``.

    >>> stage_name("shards/s0003/dvc.yaml:tune"), stage_name("shards/dvc.yaml:tune@s0003")
    ('tune', 'tune')
    >>> stage_name("features")
    'features'
    """
    return name.rsplit(":", 1)[-1].split("@", 1)[0]


def by_stage(spans: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Spans of the same stage in every shard added up (one row per stage in the tables)."""
    out: dict[str, dict[str, float]] = {}
    for name, span in spans.items():
        total = out.setdefault(stage_name(name), {"span": 0.0, "own": 0.0, "parts": 0})
        total["span"] += span["span"]
        total["own"] += span["own"]  # NaN while one of them still runs
        total["parts"] = max(total["parts"], span["parts"])
    return out


def environment(repo: Path | None = None) -> dict[str, str]:
    """The stages' `python` must be this one, and (with ``repo``) import the clone's own
    ``src`` rather than the editable install's, so the run measures the committed code."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "DVC_NO_ANALYTICS": "1",
    }
    if repo is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(repo / "src"), os.environ.get("PYTHONPATH")) if p
        )
    return env


def dvc(
    repo: Path, *args: str, watch: bool = False, log: Path | None = None
) -> tuple[float, list[tuple[float, str]], dict]:
    """``dvc <args>`` in ``repo``: wall seconds, its output lines with their times (seconds
    from the start), and with ``watch`` the peak memory per kind of process.

    With ``log``, each line is also appended there as it comes (``seconds<TAB>text``) and the
    memory peaks so far are rewritten beside it every few seconds, so that a run killed
    half-way (a session that ends) leaves what it measured for :func:`resumed_part`."""
    command = [str(Path(sys.executable).parent / "dvc"), *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=repo, env=environment(repo), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
    )  # fmt: skip
    lines: list[tuple[float, str]] = []
    journal = log.open("a") if log else contextlib.nullcontext()
    memory = (
        Memory(process.pid, dump=log.with_suffix(".memory.json") if log else None)
        if watch
        else contextlib.nullcontext()
    )
    with memory, journal:
        assert process.stdout is not None
        for line in process.stdout:
            for part in line.replace("\r", "\n").split("\n"):
                if part.strip():
                    lines.append((time.perf_counter() - started, part.rstrip()))
                    if log:
                        journal.write(f"{lines[-1][0]:.3f}\t{lines[-1][1]}\n")
                        journal.flush()
        process.wait()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        if log:  # not a part of a run: it did nothing
            log.unlink()
            log.with_suffix(".memory.json").unlink(missing_ok=True)
        tail = "\n".join(text for _, text in lines[-30:])
        raise SystemExit(f"dvc {' '.join(args)} failed after {seconds:.0f} s:\n{tail}")
    if log:
        log.with_suffix(".done").write_text(json.dumps({"seconds": seconds}))
    return seconds, lines, (memory.by_role() if watch else {})


def resumed_part(log: Path) -> tuple[float, list[tuple[float, str]], dict]:
    """What a ``dvc`` call logged by :func:`dvc` measured before it was killed: its seconds
    (the last line or memory sample), its lines and its memory peaks so far."""
    lines = []
    for row in log.read_text().splitlines():
        at, _, text = row.partition("\t")
        with contextlib.suppress(ValueError):
            lines.append((float(at), text))
    dump = log.with_suffix(".memory.json")
    saved = json.loads(dump.read_text()) if dump.is_file() else {"seconds": 0, "by_role": {}}
    seconds = max([saved["seconds"], *(at for at, _ in lines)])
    return seconds, lines, {k: tuple(v) for k, v in saved["by_role"].items()}


def stage_spans(lines: list[tuple[float, str]], total: float) -> dict[str, dict[str, float]]:
    """Per stage DVC ran: its span (Running stage .. next) and its own ``done in`` seconds.

    A stage that starts twice (a run resumed after it was killed mid-stage) adds up both
    spans; the killed part counts as the stage's own time, since the stage was working."""
    spans: dict[str, dict[str, float]] = {}
    current, killed = None, 0.0

    def close(at: float) -> None:
        span = spans[current]
        span["span"] += at - span.pop("start")

    for at, text in lines:
        started = re.match(r"Running stage '([^']+)'", text)
        if started:
            if current:
                close(at)
            restarted = started.group(1) in spans
            if restarted:
                killed = spans[started.group(1)]["span"]
            current = started.group(1)
            spans.setdefault(current, {"span": 0.0, "own": float("nan"), "parts": 0})
            spans[current]["start"] = at
            spans[current]["parts"] += 1
            continue
        done = re.match(r"(\S+): done in ([\d.]+) s", text)
        if done and current:
            spans[current]["own"] = float(done.group(2)) + (
                killed if spans[current]["parts"] > 1 else 0.0
            )
    if current:
        close(total)
    return spans


def joined(parts: list[tuple[float, list[tuple[float, str]], dict]]):
    """One run from the parts of a resumed one: seconds added up, lines on one clock, and the
    highest memory peak of each kind (process counts added up)."""
    total, lines, memory = 0.0, [], {}
    for seconds, part_lines, part_memory in parts:
        lines += [(total + at, text) for at, text in part_lines]
        total += seconds
        for kind, (gb, n) in part_memory.items():
            old_gb, old_n = memory.get(kind, (0.0, 0))
            memory[kind] = (max(gb, old_gb), n + old_n)
    return total, lines, memory


def clone(into: Path, images: Path, truth: Path, execution: dict, shard_size: int = 0) -> Path:
    """A clone of this repository's last commit with the photos as its data: ``data.root``
    pointed at them, or with ``shard_size``, laid out in shards of that many
    (:func:`place_shards`)."""
    repo = into / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    if not shard_size:
        params["data"]["root"] = str(images)
        params["data"]["ground_truth"] = str(truth)
    params["execution"] = {**params["execution"], **execution}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if shard_size:
        place_shards(repo, images, truth, shard_size)
    return repo


def place_shards(repo: Path, images: Path, truth: Path, shard_size: int) -> None:
    """``python -m segclust.shards`` in the clone: the photos no shard holds yet placed."""
    subprocess.run(
        [sys.executable, "-m", "segclust.shards", "--photos", str(images),
         "--ground-truth", str(truth), "--size", str(shard_size)],
        cwd=repo, env=environment(repo), check=True, capture_output=True,
    )  # fmt: skip


def per_image_seconds(repo: Path) -> dict[str, float]:
    """Sum over images of each stage's per-image seconds (metrics/timings), every shard's
    added up."""
    out: dict[str, float] = {}
    timings = [*(repo / "metrics" / "timings").glob("*.json")]
    timings += (repo / "shards").glob("*/metrics/timings/*.json")
    for path in sorted(timings):
        seconds = sum(json.loads(path.read_text()).get("seconds", {}).values())
        out[path.stem] = out.get(path.stem, 0.0) + seconds
    return out


class Journal:
    """A ``run``'s measurements kept in its work folder, so that rerunning the same command
    after it was killed (a session that ends) goes on where it stopped: finished DVC calls
    are read back, the one that was killed is resumed as another part of the same call."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "journal.json"
        self.done = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def call(self, name: str, repo: Path, *args: str, watch: bool = False):
        """``dvc(repo, *args)`` once: its parts so far, resumed and joined."""
        if name in self.done:
            seconds, lines, memory = self.done[name]
            return seconds, [tuple(x) for x in lines], {k: tuple(v) for k, v in memory.items()}
        parts = []
        for log in sorted(self.folder.glob(f"{name}.part*.log")):
            seconds, lines, memory = resumed_part(log)
            finished = log.with_suffix(".done")
            if finished.is_file():  # finished, but killed before the journal was written
                seconds = json.loads(finished.read_text())["seconds"]
            parts.append((seconds, lines, memory))
        if not parts or not (self.folder / f"{name}.part{len(parts) - 1}.done").is_file():
            if parts:  # the killed DVC's locks (its processes are gone with the session)
                for lock in ("rwlock", "lock"):
                    (repo / ".dvc" / "tmp" / lock).unlink(missing_ok=True)
            log = self.folder / f"{name}.part{len(parts)}.log"
            parts.append(dvc(repo, *args, watch=watch, log=log))
        self.done[name] = joined(parts)
        self.done[f"{name}.parts"] = len(parts)
        self.path.write_text(json.dumps(self.done))
        return self.call(name, repo, *args, watch=watch)


def run(args: argparse.Namespace, command: str) -> str:
    images, truth = args.photos / "images", args.photos / "groundTruth"
    for left in images.glob("s1?????.jpg"):  # the extra photo of a killed run (see below)
        left.unlink()
        (truth / f"{left.stem}.mat").unlink(missing_ok=True)
    photos = sorted(p.stem for p in images.glob("*.jpg"))
    execution = {"jobs": args.jobs, "engine": args.engine}
    repro = REPRO_SHARDS if args.shards else REPRO
    low, high = made_megapixels(args.photos)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            folder = args.workdir.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.scratch)))
        repo = folder / "project"
        if not repo.is_dir():
            clone(folder, images, truth, execution, args.shards)
        leftovers = list((repo / "shards").glob("*/data/*/s1?????.*"))
        for left in leftovers:  # a killed run's extra photo, placed in a shard
            left.unlink()
        if leftovers:
            place_shards(repo, images, truth, args.shards)
        journal = Journal(folder)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        lines_out = [
            f"`{command}` at commit {commit}: {len(photos)} photos "
            f"({low}-{high} MP crops, flips and rescales of BSDS500 photos, "
            f"made by `scale_10k.py make`), default params, execution {execution}, "
            f"{os.cpu_count()} cores"
            + (
                f"; in shards of {args.shards} photos (`python -m segclust.shards`), each "
                "stage's rows adding up its runs in every shard."
                if args.shards
                else "."
            ),
            "",
        ]
        total, lines, memory = journal.call("repro", repo, *repro, watch=True)
        parts = journal.done["repro.parts"]
        spans = by_stage(stage_spans(lines, total))
        if "work" not in journal.done:  # read now: adding a photo rewrites a shard's timings
            journal.done["work"] = per_image_seconds(repo)
            journal.path.write_text(json.dumps(journal.done))
        work = journal.done["work"]
        resumed = [k for k, v in spans.items() if v["parts"] > 1]
        lines_out += [
            f"**One `dvc repro`**: {total:.0f} s wall ({total / len(photos):.3f} s per photo)"
            + (
                f", in {parts} parts: it was killed (the session ended) and the same command "
                "resumed it with the same clone; the times of the parts are added up, the gap "
                "between them is not. A stage that was running when it was killed "
                f"({', '.join(resumed) or 'none'}) counts the killed part as its own time, and "
                "its second part found the photos the first had finished in the per-image "
                "cache."
                if parts > 1
                else "."
            ),
            "",
            "| stage | span s | stage's own s | DVC's s | per-image work s (sum) | "
            "s / photo (span) |",
            "|---|---|---|---|---|---|",
        ]
        for stage, span in spans.items():
            own = span["own"]
            lines_out.append(
                f"| {stage} | {span['span']:.0f} | {own:.0f} | {span['span'] - own:.0f} | "
                f"{work.get(stage, float('nan')):.0f} | {span['span'] / len(photos):.3f} |"
            )
        dvc_share = total - sum(s["own"] for s in spans.values() if s["own"] == s["own"])
        lines_out += [
            f"| all | {total:.0f} | | {dvc_share:.0f} | | {total / len(photos):.3f} |",
            "",
            "Peak resident memory of any one process of each kind (how many there were):",
            "",
            "| process | peak GB | processes |",
            "|---|---|---|",
            *(f"| {k} | {gb:.2f} | {n} |" for k, (gb, n) in sorted(memory.items())),
            "",
        ]
        noop, noop_lines, _ = journal.call("noop", repo, *repro)
        ran = [t for _, t in noop_lines if t.startswith("Running stage")]
        status, _, _ = journal.call("status", repo, "status")
        show, _, _ = journal.call("show", repo, "exp", "show", "--json")
        metrics, _, _ = journal.call("metrics", repo, "metrics", "show")
        lines_out += [
            "| DVC command on the finished pipeline | s |",
            "|---|---|",
            f"| `dvc repro` again (no-op{'' if not ran else ': RAN ' + ', '.join(ran)}) "
            f"| {noop:.1f} |",
            f"| `dvc status` | {status:.1f} |",
            f"| `dvc exp show --json` | {show:.1f} |",
            f"| `dvc metrics show` | {metrics:.1f} |",
            "",
        ]
        # one more photo: added to the folder, against that photo alone
        extra = args.extra_from or len(photos) + 100_000
        added, alone, added_lines, held = add_one(args, journal, repo, "added", repro, first=extra)
        added_spans = by_stage(stage_spans(added_lines, added))
        lines_out += [
            f"**Adding one photo** to the {len(photos)}: `dvc {' '.join(repro)}` {added:.1f} s, "
            f"against {alone:.1f} s for the same photo alone in a fresh clone: "
            f"**{added / alone:.2f}×**. Per stage (span / stage's own s): "
            + per_stage(added_spans)
            + "."
            + (f" It landed in shard `{held[0]}`, then {held[1]} photos." if held else ""),
        ]
        named_add = None
        if args.shards:  # another new photo, running only the shard it landed in (and gather)
            named, named_alone, named_lines, held = add_one(
                args, journal, repo, "added_shard", repro, first=extra + 1,
                name_shard=True,
            )  # fmt: skip
            named_spans = by_stage(stage_spans(named_lines, named))
            named_add = (named, named_alone, named_spans.get("gather", {}).get("span", 0.0))
            lines_out += [
                "",
                f"**Adding one photo, naming its shard** (another new photo, so that the "
                f"per-image cache does not hold it): `dvc repro --downstream "
                f"shards/{held[0]}/dvc.yaml`, the command `python -m segclust.shards` "
                f"prints, {named:.1f} s against {named_alone:.1f} s for the same photo alone in "
                f"a fresh clone: **{named / named_alone:.2f}×**. It landed in shard "
                f"`{held[0]}`, then {held[1]} photos. Per stage (span / stage's own s): "
                + per_stage(named_spans)
                + ".",
            ]
        lines_out += million(
            len(photos), work, dvc_share, memory, noop, added, alone, args.jobs, args.shards,
            named=named_add,
        )  # fmt: skip
    return "\n".join(lines_out) + "\n"


def per_stage(spans: dict[str, dict[str, float]]) -> str:
    """``stage span/own`` for each stage, as the add-one lines give them.

    >>> per_stage({"features": {"span": 5.46, "own": 0.6}})
    'features 5.5/0.6'
    """
    return ", ".join(f"{k} {v['span']:.1f}/{v['own']:.1f}" for k, v in spans.items())


def add_one(
    args: argparse.Namespace,
    journal: Journal,
    repo: Path,
    name: str,
    repro: tuple[str, ...],
    first: int,
    name_shard: bool = False,
) -> tuple[float, float, list[tuple[float, str]], tuple[str, int] | None]:
    """One new photo (``make``'s photo number ``first``) added to the collection: the timed
    ``dvc repro`` (journal step ``name``; with ``name_shard`` only the stages downstream of
    the shard it landed in), the same photo alone in a fresh clone (step
    ``name`` + ``_alone``; ``alone`` for the first), its lines, and the shard it landed in
    with that shard's photo count (None unsharded). The photo leaves again afterwards."""
    images, truth = args.photos / "images", args.photos / "groundTruth"
    execution = {"jobs": args.jobs, "engine": args.engine}
    alone_step = "alone" if name == "added" else f"{name}_alone"
    folder = journal.folder
    if name not in journal.done:
        for log in folder.glob(f"{name}.part*"):  # killed while adding: start that again
            log.unlink()
        dvc(repo, *repro)  # back to the collection without it (nothing to do if it is)
    extra = make(1, args.photos, 1, first=first)[0]
    try:
        if args.shards and name not in journal.done:
            place_shards(repo, images, truth, args.shards)
            for placed in (repo / "shards").glob(f"*/data/*/{extra}.jpg"):
                count = len(list(placed.parent.glob("*.jpg")))
                journal.done[f"{name}.in"] = [placed.parents[2].name, count]
                journal.path.write_text(json.dumps(journal.done))
        held = tuple(journal.done[f"{name}.in"]) if f"{name}.in" in journal.done else None
        command = repro
        if name_shard:
            if held is None:
                raise SystemExit(f"the new photo {extra} is in no shard of {repo / 'shards'}")
            command = ("repro", "--downstream", f"shards/{held[0]}/dvc.yaml")
        added, added_lines, _ = journal.call(name, repo, *command)
        alone_dir = folder / alone_step
        if alone_step not in journal.done:  # always a fresh clone, even after a killed one
            shutil.rmtree(alone_dir, ignore_errors=True)
            for log in folder.glob(f"{alone_step}.part*"):
                log.unlink()
            for sub, suffix in (("images", ".jpg"), ("groundTruth", ".mat")):
                (alone_dir / sub).mkdir(parents=True)
                shutil.copy(args.photos / sub / f"{extra}{suffix}", alone_dir / sub)
            clone(alone_dir, alone_dir / "images", alone_dir / "groundTruth", execution)
        alone, _, _ = journal.call(alone_step, alone_dir / "project", *REPRO)
    finally:
        for sub, suffix in (("images", ".jpg"), ("groundTruth", ".mat")):
            (args.photos / sub / f"{extra}{suffix}").unlink(missing_ok=True)
        for placed in (repo / "shards").glob(f"*/data/*/{extra}.*"):  # its shard's links
            placed.unlink()
        if args.shards:  # and a shard made for it alone leaves the pipeline
            place_shards(repo, images, truth, args.shards)
    return added, alone, added_lines, held


def progress(folder: Path) -> str:
    """What a ``run --workdir folder`` has measured of its ``dvc repro`` so far (while it
    runs, or after it was killed): each stage's span and own time, the one still running
    marked, and the memory peaks so far. Reads the journal's logs only."""
    parts = [resumed_part(log) for log in sorted(folder.glob("repro.part*.log"))]
    if not parts:
        return f"no `dvc repro` logged in {folder} yet\n"
    total, lines, memory = joined(parts)
    spans = by_stage(stage_spans(lines, total))
    work = per_image_seconds(folder / "project")
    out = [
        f"`dvc repro` so far: {total:.0f} s in {len(parts)} part(s) (the one running or "
        "killed counts up to its last line or memory sample).",
        "",
        "| stage | span s | stage's own s | DVC's s | per-image work s (sum) |",
        "|---|---|---|---|---|",
    ]
    for stage, span in spans.items():
        own = span["own"]
        if own != own:  # no `done in` line: still running, or killed
            out.append(f"| {stage} | {span['span']:.0f} so far | running | | |")
            continue
        out.append(
            f"| {stage} | {span['span']:.0f} | {own:.0f} | {span['span'] - own:.0f} | "
            f"{work.get(stage, float('nan')):.0f} |"
        )
    out += ["", "| process | peak GB so far | processes |", "|---|---|---|"]
    out += [f"| {k} | {gb:.2f} | {n} |" for k, (gb, n) in sorted(memory.items())]
    return "\n".join(out) + "\n"


def shard_size(n: int, added: float, alone: float, target: float = 3.0) -> int:
    """The photo count at which adding one photo reaches ``target``× that photo alone, when
    the extra time grows linearly with the count (measured ``added`` at ``n`` photos).

    >>> shard_size(1000, 40.0, 30.0)
    6000
    """
    growing = max(added - alone, 1e-9) / n  # seconds per photo already there
    return int(round((target - 1) * alone / growing, -3 if n >= 1000 else -2))


def million(
    n: int,
    work: dict[str, float],
    dvc_share: float,
    memory: dict[str, tuple[float, int]],
    noop: float,
    added: float,
    alone: float,
    jobs: int,
    shards: int = 0,
    photos: int = 1_000_000,
    named: tuple[float, float, float] | None = None,
) -> list[str]:
    """1 million photos, extrapolated linearly from this run's measurements (not measured).
    With ``shards`` (photos per shard) a new photo reruns one shard, so its cost is not
    extrapolated with the collection: only the visit of every shard (the no-op) grows.
    ``named``: (seconds, alone, gather's span) of adding a photo with its shard named, when
    DVC visits only that shard's stages and ``gather``, which reads every shard's tables."""
    core = sum(work.values()) / n  # per-image work, one core, every stage
    serial = dvc_share / n  # DVC's hashing and caching, in its one process
    scale = photos / n
    lines = [
        "",
        f"## 1 million photos, extrapolated from this run ({n} photos)",
        "",
        "Linear in the photo count, from the figures above; nothing here was run at that size. "
        f"Work: {core:.2f} core-seconds per photo over all stages (per-image work, "
        "`metrics/timings`), on single-threaded workers (Dask `--nthreads 1`, one per core). "
        f"DVC: {serial * 1000:.0f} ms per photo of hashing and caching in the one `dvc` process, "
        "which no worker count shortens.",
        "",
        "| workers (cores) | work h | DVC h (serial) | one `dvc repro`, h |",
        "|---|---|---|---|",
    ]
    for workers in (jobs, 100, 1000, 3200):
        work_h = photos * core / workers / 3600
        dvc_h = photos * serial / 3600
        lines.append(f"| {workers} | {work_h:.1f} | {dvc_h:.1f} | {work_h + dvc_h:.1f} |")
    stage_peak = memory.get("stage", (float("nan"), 0))[0]
    worker_peak = max((gb for k, (gb, _) in memory.items() if k.startswith("worker")), default=0)
    if shards:
        lines += [
            "",
            f"- **Adding one photo**: here {added:.0f} s against {alone:.0f} s alone "
            f"({added / alone:.2f}×), in shards of {shards}: it reruns one shard's stages, "
            "whatever the collection's size. What grows with the collection is DVC visiting "
            f"every shard's stages (the no-op below, {noop:.1f} s here), about "
            f"{noop * scale / 60:.0f} min at 1 million.",
        ]
        if named:
            seconds, alone_named, gather = named
            lines += [
                f"- **Adding one photo, naming its shard**: here {seconds:.0f} s against "
                f"{alone_named:.0f} s alone ({seconds / alone_named:.2f}×). DVC then visits only "
                "that shard's stages and `gather`; what grows with the collection is `gather` "
                f"reading every shard's tables ({gather:.1f} s here, span), about "
                f"{gather * scale / 60:.0f} min at 1 million if it stays linear.",
            ]
    else:
        lines += [
            "",
            f"- **Adding one photo**: here {added:.0f} s against {alone:.0f} s alone. The part "
            "that grows with the collection (DVC stating and looking up every output file, the "
            f"stages keying and linking every photo) is {added - alone:.0f} s at {n} photos, so "
            f"about {(added - alone) * scale / 3600:.1f} h at 1 million "
            f"({added / alone + (added - alone) * (scale - 1) / alone:.0f}× the photo alone). "
            "The 3× target holds while that part stays under twice the photo alone: up to about "
            f"{shard_size(n, added, alone):,} photos on this line. Past that, split the "
            "collection into shards of at most that many photos (`python -m segclust.shards`, "
            "`run --shards`), so that a new photo touches one shard.",
        ]
    lines += [
        f"- **No-op `dvc repro`**: {noop:.1f} s here, about {noop * scale / 60:.0f} min at "
        "1 million (DVC stats every output file).",
        f"- **Memory**: a worker peaked at {worker_peak:.2f} GB and does not grow with the "
        f"collection; a stage's main process at {stage_peak:.2f} GB here, holding one row of "
        "scores per photo (how that grows with the count is not measured here).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    maker = sub.add_parser("make", help="write the photos and their ground truth")
    maker.add_argument("--count", type=int, default=10_000)
    maker.add_argument("--out", type=Path, required=True)
    maker.add_argument("--jobs", type=int, default=2)
    maker.add_argument(
        "--megapixels",
        type=float,
        nargs=2,
        default=MEGAPIXELS,
        metavar=("LOW", "HIGH"),
        help="photo sizes are drawn uniformly from this range (default: %(default)s)",
    )
    status = sub.add_parser("progress", help="what a run with --workdir has measured so far")
    status.add_argument("--workdir", type=Path, required=True)
    runner = sub.add_parser("run", help="dvc repro on them, measured")
    runner.add_argument("--photos", type=Path, required=True, help="the folder `make` wrote")
    runner.add_argument("--engine", choices=("joblib", "dask"), default="joblib")
    runner.add_argument("--jobs", type=int, default=2)
    runner.add_argument("--scratch", type=Path, default=None, help="where the clone goes")
    runner.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the clone and the measurements here; the same command again resumes a run "
        "that was killed (default: a temporary folder under --scratch, removed at the end)",
    )
    runner.add_argument(
        "--shards",
        type=int,
        default=0,
        metavar="SIZE",
        help="lay the photos out in shards of SIZE (`python -m segclust.shards`) and run "
        "their pipeline; 0 (the default): one pipeline over the whole folder",
    )
    runner.add_argument(
        "--extra-from",
        type=int,
        default=0,
        metavar="N",
        help="make's number of the first photo added to the collection (the second is N+1); "
        "another number than an earlier run's gives photos that no run added before, so DVC's "
        "run cache holds no stage run with them (default: the photo count + 100,000)",
    )
    runner.add_argument("--out", type=Path, help="markdown results (appended)")
    args = parser.parse_args()
    command = "python benchmarks/scale_10k.py " + " ".join(sys.argv[1:])
    if args.mode == "make":
        started = time.perf_counter()
        made = make(args.count, args.out.resolve(), args.jobs, megapixels=args.megapixels)
        print(f"{len(made)} photos in {args.out} in {time.perf_counter() - started:.0f} s")
        return
    if args.mode == "progress":
        print(progress(args.workdir.resolve()))
        return
    args.photos = args.photos.resolve()
    text = run(args, command)
    print(text)
    if args.out:
        with args.out.open("a") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
