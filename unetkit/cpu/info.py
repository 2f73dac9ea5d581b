"""What CPU this is: model name and the SIMD flags that decide which kernels oneDNN and MKL run.

Every benchmark row and every training summary names the processor, because the fast paths and the
numbers differ between, e.g., an AMD EPYC with AVX2 only and one (or an Intel Xeon) with AVX-512/bf16.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# the flags that change which float32/bf16 kernels run; the full /proc/cpuinfo list is ~100 entries
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
              "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "sve2")


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor's ``key: value`` lines of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


@functools.lru_cache(maxsize=1)
def _fields() -> dict[str, str]:
    try:
        return _cpuinfo_fields(Path("/proc/cpuinfo").read_text())
    except OSError:  # macOS, Windows: no /proc
        return {}


def cpu_model() -> str:
    """e.g. ``AMD EPYC`` or ``Intel(R) Xeon(R) Platinum 8480+``; the platform's processor string elsewhere."""
    fields = _fields()
    for key in ("model name", "cpu model", "hardware"):
        if fields.get(key):
            return " ".join(fields[key].split())
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> list[str]:
    """The SIMD flags of ``SIMD_FLAGS`` this CPU reports (x86 ``flags`` or ARM ``Features``), in that order."""
    fields = _fields()
    present = set((fields.get("flags") or fields.get("features") or "").split())
    return [flag for flag in SIMD_FLAGS if flag in present]


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512_BF16 or AMX-BF16): there bf16 autocast roughly
    halves a training step; elsewhere bf16 is emulated in software."""
    flags = set(cpu_flags())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def describe() -> str:
    """One line for table headers and summaries: ``AMD EPYC (avx2 fma avx512f ...), 2 logical CPUs``."""
    import os

    flags = " ".join(cpu_flags()) or "no SIMD flags read"
    return f"{cpu_model()} ({flags}), {os.cpu_count()} logical CPUs"


def torch_threads() -> int:
    """Threads torch's CPU kernels use in this process (``OMP_NUM_THREADS`` / ``torch.set_num_threads``)."""
    import torch

    return torch.get_num_threads()
