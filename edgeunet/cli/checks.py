"""``edgeunet checks``: what this machine has, for bug reports and benchmark context."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("checks", help="print the environment: Python, torch, ONNX Runtime, TensorRT, CPU, GPU")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..env import environment, has_vnni

    env = environment()
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    cpu, gpu = env["cpu"], env["gpu"]
    print(f"python        {env['python']} on {env['platform']}")
    print(f"cpu           {cpu['model']} ({cpu['arch']}), {cpu['usable_cores']} usable of {cpu['cores']} cores, flags: {', '.join(cpu['flags']) or 'none of note'}")
    print(f"int8 dot      {'yes (VNNI/dot-product)' if has_vnni() else 'no VNNI: INT8 uses reduce_range on x86'}")
    print(f"gpu           {gpu['name'] + ', ' + str(gpu['memory_gb']) + ' GB, sm ' + gpu['compute_capability'] + ', CUDA ' + str(gpu['cuda']) if gpu else 'none'}")
    for name, version in env["versions"].items():
        print(f"{name:<13} {version}")
    print(f"ORT providers {', '.join(env['onnxruntime_providers']) or 'none'}")
    return 0
