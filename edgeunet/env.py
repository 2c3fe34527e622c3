"""The environment a result was measured in: CPU, cores, GPU and toolchain versions.

Imports nothing heavy unless it is installed; missing packages read "not installed".
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from functools import lru_cache


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
                if key in ("model name", "Model", "Hardware") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "neon", "asimd", "asimddp", "i8mm")
    return {
        "model": model,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": [f for f in wanted if f in flags],
    }


def has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI on x86, dot-product on ARM)."""
    flags = set(cpu_info()["flags"])
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


def gpu_info() -> dict | None:
    """Name, memory and compute capability of GPU 0 through torch, or None without one."""
    if "torch" not in sys.modules and package_version("torch") == "not installed":
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1), "compute_capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count(), "cuda": torch.version.cuda}


def environment(with_gpu: bool = True) -> dict:
    """Everything ``edgeunet checks`` prints and benchmark results record."""
    providers = []
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "gpu": gpu_info() if with_gpu else None,
        "versions": {name: package_version(name) for name in ("edgeunet", "numpy", "torch", "onnxruntime", "onnx", "onnxslim", "torch-pruning", "tensorrt")},
        "onnxruntime_providers": providers,
    }


def machine_name() -> str:
    """A short name for result files: CPU model (or GPU) and core count, filesystem-safe."""
    info = environment()
    base = info["gpu"]["name"] if info["gpu"] else f"{info['cpu']['model']}-{info['cpu']['usable_cores']}c"
    return "".join(c if c.isalnum() else "-" for c in base).strip("-").lower().replace("--", "-")
