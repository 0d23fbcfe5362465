"""Pin the numerical libraries' CPU kernels, so the same params give the same bytes on every
x86-64 machine with AVX2.

OpenBLAS (NumPy's and SciPy's BLAS) chooses its matrix kernels by CPU when it loads, and the
AVX-512 kernels (``SkylakeX``) sum in a different order from the AVX2 ones (``Haswell``).
Measured on the bundled samples: the boundary model's probabilities, then ``data/boundaries``
and ``data/hierarchy``, differed in the last bits between an AVX2 and an AVX-512 machine, so
a fresh clone's ``dvc repro`` rewrote ``dvc.lock`` and DVC's caches missed. With
``OPENBLAS_CORETYPE=Haswell`` the AVX-512 machine wrote the AVX2 machine's bytes.

Each library reads its variable once, when it loads, so :func:`pin_kernels` runs when
``segclust`` is imported, before NumPy is (``python -m segclust.stages.<name>`` imports the
package first). Child processes (joblib's workers, a ``LocalCluster``) inherit the
variables. A variable the user has set is left alone, and a CPU without AVX2 and FMA (which
the pinned kernels need), or a platform other than Linux on x86-64, is not pinned: bytes
are reproducible across machines of one kind, and the timings and metrics files say nothing
different. PyTorch (the optional CNN cues) is pinned the same way: ``ATEN_CPU_CAPABILITY``
for its own kernels, ``ONEDNN_MAX_CPU_ISA`` for oneDNN and ``MKL_CBWR`` for MKL. Only the
standard library is used here, since nothing numerical may load first.

>>> env = {}
>>> pin_kernels(env, cpu_flags=frozenset({"avx2", "fma"}), machine="x86_64")["OPENBLAS_CORETYPE"]
'Haswell'
>>> pin_kernels({}, cpu_flags=frozenset({"sse2"}), machine="x86_64")
{}
"""

from __future__ import annotations

import os
import platform
from collections.abc import MutableMapping
from pathlib import Path

# variable -> value: each library's switch to its AVX2 kernels (one entry per library)
PINNED_KERNELS: dict[str, str] = {
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and SciPy's OpenBLAS
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (PyTorch's convolutions)
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility
}
# CPU flags (as /proc/cpuinfo spells them) the pinned kernels need
REQUIRED_FLAGS = frozenset({"avx2", "fma"})
X86_64 = ("x86_64", "amd64")


def linux_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's flags from ``/proc/cpuinfo``; empty where there is no such file."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def pin_kernels(
    environ: MutableMapping[str, str] | None = None,
    cpu_flags: frozenset[str] | None = None,
    machine: str | None = None,
) -> dict[str, str]:
    """Set each of :data:`PINNED_KERNELS` in ``environ`` that is not set already.

    Parameters
    ----------
    environ : the environment to change (``os.environ`` by default).
    cpu_flags : the CPU's flags (read from ``/proc/cpuinfo`` by default).
    machine : ``platform.machine()`` by default.

    Returns
    -------
    The variables this call set (empty where the CPU or platform is not pinned).
    """
    environ = os.environ if environ is None else environ
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in X86_64:
        return {}
    flags = linux_cpu_flags() if cpu_flags is None else cpu_flags
    if not REQUIRED_FLAGS <= flags:
        return {}
    pinned = {name: value for name, value in PINNED_KERNELS.items() if name not in environ}
    environ.update(pinned)
    return pinned
