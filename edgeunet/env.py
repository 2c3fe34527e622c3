"""The environment a result was measured in: CPU, cores, GPU and toolchain versions.

Imports nothing heavy unless it is installed; missing packages read "not installed".
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

# The ISA features that decide INT8 and bfloat16 speed: x86 (AVX2, AVX-512, VNNI, BF16, AMX) and ARM
# (NEON/ASIMD, dot-product, i8mm, bf16).
ISA_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
             "amx_bf16", "neon", "asimd", "asimddp", "i8mm", "bf16")
INT8_DOT_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"}
LIBRARIES = ("numpy", "torch", "onnxruntime", "onnx", "onnxslim", "torch-pruning", "tensorrt", "openvino", "nncf",
             "executorch", "ai-edge-litert", "monai", "nibabel")


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    """CPU model, logical cores and the SIMD flags that matter for INT8 kernels."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                generic = ("", platform.machine(), platform.processor())
                if key in ("model name", "Model", "Hardware") and model in generic:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ISA_FLAGS
    return {
        "model": model,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": [f for f in wanted if f in flags],
    }


def has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI on x86, dot-product on ARM)."""
    return bool(set(cpu_info()["flags"]) & INT8_DOT_FLAGS)


def has_bf16() -> bool:
    """Whether the CPU has bfloat16 arithmetic (AVX512-BF16 or AMX-BF16 on x86, BF16 on ARM)."""
    return bool(set(cpu_info()["flags"]) & {"avx512_bf16", "amx_bf16", "bf16"})


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout edgeunet is imported from (``+dirty`` when it has changes), else None."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance(threads: int | None = None) -> dict:
    """What every result file records: edgeunet version (as imported) and commit, CPU with its ISA
    features, threads, Python and library versions."""
    from . import __version__

    return {"edgeunet": __version__, "commit": git_commit(), "python": platform.python_version(),
            "platform": platform.platform(), "cpu": cpu_info(), "threads": threads,
            "versions": {name: package_version(name) for name in LIBRARIES}}


def gpu_info() -> dict | None:
    """Name, memory and compute capability of GPU 0 through torch, or None without one."""
    if "torch" not in sys.modules and package_version("torch") == "not installed":
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda}


def environment(with_gpu: bool = True) -> dict:
    """Everything ``edgeunet checks`` prints and benchmark results record."""
    providers = []
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return {**provenance(), "gpu": gpu_info() if with_gpu else None, "onnxruntime_providers": providers}


def machine_name() -> str:
    """A short name for result files: CPU model (or GPU) and core count, filesystem-safe."""
    info = environment()
    base = info["gpu"]["name"] if info["gpu"] else f"{info['cpu']['model']}-{info['cpu']['usable_cores']}c"
    return "".join(c if c.isalnum() else "-" for c in base).strip("-").lower().replace("--", "-")
