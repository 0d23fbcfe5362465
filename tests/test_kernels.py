"""The CPU kernels are pinned before NumPy loads, so bytes match across x86-64 machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from segclust.kernels import PINNED_KERNELS, linux_cpu_flags, pin_kernels

HASWELL_FLAGS = frozenset({"avx2", "fma", "sse2"})


def test_every_kernel_variable_is_set_on_an_avx2_cpu() -> None:
    environ: dict[str, str] = {}
    pinned = pin_kernels(environ, cpu_flags=HASWELL_FLAGS, machine="x86_64")
    assert pinned == PINNED_KERNELS
    assert environ == PINNED_KERNELS


def test_a_variable_the_user_set_is_left_alone() -> None:
    environ = {"OPENBLAS_CORETYPE": "Zen"}
    pinned = pin_kernels(environ, cpu_flags=HASWELL_FLAGS, machine="AMD64")
    assert environ["OPENBLAS_CORETYPE"] == "Zen"
    assert "OPENBLAS_CORETYPE" not in pinned
    assert set(pinned) == set(PINNED_KERNELS) - {"OPENBLAS_CORETYPE"}


@pytest.mark.parametrize(
    ("flags", "machine"),
    [
        (frozenset({"sse2", "avx"}), "x86_64"),
        (frozenset({"avx2"}), "x86_64"),
        (HASWELL_FLAGS, "arm64"),
    ],
)
def test_nothing_is_pinned_where_the_kernels_cannot_run(
    flags: frozenset[str], machine: str
) -> None:
    environ: dict[str, str] = {}
    assert pin_kernels(environ, cpu_flags=flags, machine=machine) == {}
    assert environ == {}


def test_cpu_flags_are_read_from_cpuinfo(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nbugs\t: none\n")
    assert linux_cpu_flags(cpuinfo) == frozenset({"fpu", "sse2", "avx2", "fma"})
    assert linux_cpu_flags(tmp_path / "absent") == frozenset()


def test_importing_segclust_first_gives_numpy_and_scipy_the_pinned_blas() -> None:
    if not pin_kernels(environ={}):
        pytest.skip("this CPU or platform is not pinned (needs Linux on x86-64 with AVX2 and FMA)")
    code = (
        "import segclust, numpy, scipy.linalg, json\n"
        "from threadpoolctl import threadpool_info\n"
        "print(json.dumps([i.get('architecture') for i in threadpool_info()"
        " if i['internal_api'] == 'openblas']))"
    )
    env = {k: v for k, v in os.environ.items() if k not in PINNED_KERNELS}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    architectures = json.loads(out.stdout)
    assert len(architectures) >= 2  # NumPy's OpenBLAS and SciPy's
    assert set(architectures) == {PINNED_KERNELS["OPENBLAS_CORETYPE"]}


def test_the_test_process_runs_the_pinned_blas_too() -> None:
    """conftest imports segclust before NumPy, so in-process results match the stages'."""
    if os.environ.get("OPENBLAS_CORETYPE") != PINNED_KERNELS["OPENBLAS_CORETYPE"]:
        pytest.skip("OpenBLAS is not pinned to Haswell in this process (user setting or CPU)")
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    architectures = {
        i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"
    }
    assert architectures == {PINNED_KERNELS["OPENBLAS_CORETYPE"]}
