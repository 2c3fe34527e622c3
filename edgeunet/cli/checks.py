"""``edgeunet checks``: what this machine has, for bug reports and benchmark context."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

GIB = 2**30


def add_parser(sub) -> None:
    p = sub.add_parser("checks", help="print the environment: Python, CPU, memory, disk, GPU, libraries, "
                                      "and which commands the installed extras allow")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (Linux); empty elsewhere."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def _cgroup_limit() -> int | None:
    """The container's memory limit in bytes (cgroup v2 or v1), None when unlimited or unknown."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def memory() -> dict:
    """``total_gb``, ``available_gb`` (None when unknown) and ``limit_gb`` (a container limit, or None)."""
    info = _meminfo()
    total = info.get("MemTotal")
    if total is None and hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            total = None
    limit = _cgroup_limit()
    return {"total_gb": _gb(total), "available_gb": _gb(info.get("MemAvailable")),
            "limit_gb": _gb(limit) if limit is not None and (total is None or limit < total) else None}


def _gb(size: int | None) -> float | None:
    return round(size / GIB, 1) if size is not None else None


def disk(folder: str | os.PathLike = ".") -> dict:
    """Free and total space of the file system holding ``folder`` (GB)."""
    usage = shutil.disk_usage(folder)
    return {"folder": str(Path(folder).resolve()), "free_gb": round(usage.free / GIB, 1),
            "total_gb": round(usage.total / GIB, 1)}


def extras() -> dict[str, dict]:
    """Per extra: the commands it enables, its modules that are missing, and whether those commands run here."""
    from . import EXTRA_COMMANDS, EXTRAS, missing_modules

    rows = {}
    for extra in EXTRAS:
        missing = missing_modules(extra)
        rows[extra] = {"commands": EXTRA_COMMANDS[extra], "missing": missing, "ok": not missing}
    return rows


def _extra_line(extra: str, row: dict) -> str:
    if row["ok"]:
        return f"{row['commands']}: ok ('edgeunet[{extra}]' installed)"
    return f"{row['commands']}: need 'edgeunet[{extra}]' ({', '.join(row['missing'])} missing)"


def run(args: argparse.Namespace) -> int:
    from ..env import environment, has_vnni

    env = {**environment(), "memory": memory(), "disk": disk("."), "extras": extras()}
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    cpu, gpu, mem, free = env["cpu"], env["gpu"], env["memory"], env["disk"]
    print(f"python        {env['python']} on {env['platform']}")
    print(f"cpu           {cpu['model']} ({cpu['arch']}), {cpu['usable_cores']} usable of {cpu['cores']} cores, "
          f"flags: {', '.join(cpu['flags']) or 'none of note'}")
    print(f"int8 dot      {'yes (VNNI/dot-product)' if has_vnni() else 'no VNNI: INT8 uses reduce_range on x86'}")
    limit = f", container limit {mem['limit_gb']} GB" if mem["limit_gb"] is not None else ""
    print(f"memory        {mem['total_gb']} GB total, {mem['available_gb'] or 'unknown'} GB available{limit}")
    print(f"disk          {free['free_gb']} GB free of {free['total_gb']} GB in {free['folder']}")
    if gpu:
        print(f"gpu           {gpu['name']}, {gpu['memory_gb']} GB, sm {gpu['compute_capability']}, CUDA {gpu['cuda']}")
    else:
        print("gpu           none")
    for name, version in env["versions"].items():
        print(f"{name:<13} {version}")
    print(f"ORT providers {', '.join(env['onnxruntime_providers']) or 'none'}")
    print("commands      predict, info MODEL.onnx, checks, data: base install")
    for extra, row in env["extras"].items():
        print(f"              {_extra_line(extra, row)}")
    return 0
