"""``edgeunet build-engine MODEL.onnx``: a TensorRT engine, built on the device that will run it."""

from __future__ import annotations

import argparse

from ..formats import model_file_name
from .options import field_default, positive_int

DESCRIPTION = """Builds a TensorRT engine (TensorRT >=10,<12) from an edgeunet ONNX file on this machine's GPU and
writes <engine>.json (GPU, TensorRT version, profile, model metadata). The equivalent trtexec command is always
written to <engine>.trtexec.txt and printed, so devices without Python TensorRT (e.g. a Jetson) can use trtexec.
INT8 files must be the TensorRT flavour (`edgeunet export --int8 --target tensorrt`)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..export.tensorrt import EngineOptions

    p = subparsers.add_parser("build-engine", help="build a TensorRT engine on the target device",
                              description=DESCRIPTION)
    p.add_argument("model", help="edgeunet ONNX file (model.onnx, model.fp16.onnx or model.int8.onnx)")
    p.add_argument("--shapes", help="min,opt,max input shapes BxCxHxW, e.g. 1x1x256x256,1x1x512x512,4x1x1024x1024 "
                   "(3-D models: BxCxDxHxW, default 1x1x64x64x64,1x1x96x96x96,1x1x128x128x128)")
    workspace = field_default(EngineOptions, "workspace_mb")
    p.add_argument("--workspace", type=positive_int, default=workspace,
                   help=f"builder workspace limit in MB (default {workspace})")
    p.add_argument("--timing-cache", help="timing cache file: reused when present, updated after the build")
    p.add_argument("--fp16", action="store_true", help="TensorRT 10 only: weakly typed build allowing FP16 kernels")
    p.add_argument("--int8", action="store_true",
                   help="TensorRT 10 only: weakly typed build of a Q/DQ model allowing INT8 kernels")
    p.add_argument("--out", help=f"engine path (default {model_file_name('tensorrt', '<precision>')} next to MODEL)")
    p.add_argument("--dry-run", action="store_true", help="only write and print the trtexec command")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..export.tensorrt import EngineOptions, build_engine

    options = EngineOptions(shapes=args.shapes, workspace_mb=args.workspace, timing_cache=args.timing_cache,
                            fp16=args.fp16, int8=args.int8, dry_run=args.dry_run)
    result = build_engine(args.model, args.out, options)
    print(f"trtexec equivalent (saved to {result['trtexec_file']}):\n  {result['trtexec']}")
    if not args.dry_run:
        print(f"built {result['engine']} ({result['size_bytes'] / 1e6:.1f} MB); facts in {result['sidecar']}")
    return 0
