"""What DVC itself costs when one photo joins N: stages over the whole folder against the
same stages over shards of it (DVC ``foreach``), stage commands that cost next to nothing.

Adding one photo to 10,000 cost 153-177 s against 13-15 s for that photo alone
(``benchmarks/results/scale_10k*.md``), about half of it in DVC: each stage's dependencies
and outputs are hashed, cached and checked out file by file, whichever files changed. The
remedy the issue names is shards: one stage per shard, so that a new photo touches one
shard's files. Before building that into the pipeline, this measures the part of the
remedy that DVC decides, with nothing of ours in the way.

A throw-away Git + DVC repository holds ``--photos`` photos of ``--files`` small files each
(seeded random bytes, so every file has its own hash) and a chain of ``--stages`` stages;
each stage hard-links its input folder's files into its output folder (what the per-image
cache does for photos it has seen), so a stage's command costs little beside DVC. With
``--shards 1`` the stages run over the whole folder, as the pipeline's do today; with S
shards, over S sub-folders through ``foreach`` (S stages per step). Measured for each: the
first ``dvc repro``, a second one (nothing to do), ``dvc status``, and ``dvc repro`` after
one photo is added to the last shard; the stage commands time themselves, and the rest of
the wall time is DVC's.

    python benchmarks/dvc_shards.py --photos 10000 --shards 1 10 100 \\
        --out benchmarks/results/dvc_shards.md

Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

LINK = '''"""Hard-link every file of IN into OUT; append this process's seconds, its start
included (Linux /proc, 10 ms ticks), to LOG."""
import os, sys
source, target, log = sys.argv[1:4]
os.makedirs(target, exist_ok=True)
for name in sorted(os.listdir(source)):
    os.link(os.path.join(source, name), os.path.join(target, name))
with open("/proc/self/stat") as f:
    started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
with open("/proc/uptime") as f:
    seconds = float(f.read().split()[0]) - started
with open(log, "a") as f:
    f.write(f"{seconds}\\n")
'''


def dvc_bin() -> str:
    return str(Path(sys.executable).parent / "dvc")


def shard_names(shards: int) -> list[str]:
    return ["all"] if shards == 1 else [f"s{i:03d}" for i in range(shards)]


def write_photos(folder: Path, first: int, count: int, files: int, seed: int) -> None:
    """``count`` photos numbered from ``first``: ``files`` files of 2 KiB each, seeded."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in range(first, first + count):
        rng = np.random.default_rng([seed, photo])
        for f in range(files):
            (folder / f"{photo:06d}.{f}.bin").write_bytes(rng.bytes(2048))


def pipeline(shards: int, stages: int, log: Path) -> dict:
    """dvc.yaml: a chain of link stages, over the whole folder or ``foreach`` shard."""
    out: dict = {"stages": {}}
    for step in range(stages):
        source = "data/in" if step == 0 else f"data/step{step - 1}"
        target = f"data/step{step}"
        if shards == 1:
            out["stages"][f"step{step}"] = {
                "cmd": f"python link.py {source}/all {target}/all {log}",
                "deps": ["link.py", f"{source}/all"],
                "outs": [f"{target}/all"],
            }
        else:
            out["stages"][f"step{step}"] = {
                "foreach": "${shards}",
                "do": {
                    "cmd": f"python link.py {source}/${{item}} {target}/${{item}} {log}",
                    "deps": ["link.py", f"{source}/${{item}}"],
                    "outs": [f"{target}/${{item}}"],
                },
            }
    return out


def timed(repo: Path, *args: str) -> float:
    started = time.perf_counter()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run([dvc_bin(), *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed in {repo}:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def own_seconds(log: Path) -> float:
    """The stage commands' seconds logged since the log was last emptied; empties it."""
    if not log.exists():
        return 0.0
    total = sum(float(line) for line in log.read_text().split())
    log.unlink()
    return total


def measure(tmp: Path, photos: int, shards: int, stages: int, files: int) -> dict:
    repo = tmp / f"shards{shards}"
    log = tmp / f"shards{shards}.log"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([dvc_bin(), "init", "-q"], cwd=repo, check=True)
    subprocess.run([dvc_bin(), "config", "cache.type", "hardlink,copy"], cwd=repo, check=True)
    (repo / "link.py").write_text(LINK)
    names = shard_names(shards)
    (repo / "params.yaml").write_text(yaml.safe_dump({"shards": names}))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline(shards, stages, log), sort_keys=False))
    per_shard = photos // shards
    for i, name in enumerate(names):
        count = per_shard if i < shards - 1 else photos - per_shard * (shards - 1)
        write_photos(repo / "data/in" / name, i * per_shard, count, files, seed=0)
    result = {"first": timed(repo, "repro"), "first_own": own_seconds(log)}
    result["noop"] = timed(repo, "repro")
    own_seconds(log)
    result["status"] = timed(repo, "status")
    write_photos(repo / "data/in" / names[-1], photos, 1, files, seed=0)
    result["add"] = timed(repo, "repro")
    result["add_own"] = own_seconds(log)
    result["lock_kb"] = (repo / "dvc.lock").stat().st_size / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--files", type=int, default=3, help="files per photo per folder")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    version = subprocess.run([dvc_bin(), "--version"], capture_output=True, text=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shards in args.shards:
            r = measure(Path(tmp), args.photos, shards, args.stages, args.files)
            rows.append((shards, r))
            print(shards, json.dumps({k: round(v, 2) for k, v in r.items()}), flush=True)
    lines = [
        f"Command: `python benchmarks/dvc_shards.py {' '.join(sys.argv[1:])}`; DVC "
        f"{version.stdout.strip()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores. {args.photos} photos of {args.files} files (2 KiB each), "
        f"a chain of {args.stages} stages that hard-link their input folder into their output "
        "folder; one photo added to the last shard. DVC's seconds = wall - the stage "
        "commands' own (each from its process's start).",
        "",
        "| shards | photos / shard | stages in dvc.lock | first repro s | no-op repro s "
        "| status s | add one photo: repro s | of which DVC s | dvc.lock KiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shards, r in rows:
        lines.append(
            f"| {shards} | {args.photos // shards} | {shards * args.stages} | {r['first']:.1f} "
            f"| {r['noop']:.1f} | {r['status']:.1f} | {r['add']:.1f} "
            f"| {r['add'] - r['add_own']:.1f} | {r['lock_kb']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
