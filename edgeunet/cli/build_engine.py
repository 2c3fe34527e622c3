"""``edgeunet build-engine MODEL.onnx``: a TensorRT engine, built on the device that will run it."""

from __future__ import annotations

import argparse

from ..formats import model_file_name
from .options import add_fields, field_values

DESCRIPTION = """Builds a TensorRT engine (TensorRT >=10,<12) from an edgeunet ONNX file on this machine's GPU and
writes <engine>.json (GPU, TensorRT version, profile, model metadata). The equivalent trtexec command is always
written to <engine>.trtexec.txt and printed, so devices without Python TensorRT (e.g. a Jetson) can use trtexec.
INT8 files must be the TensorRT flavour (`edgeunet export --int8 --target tensorrt`)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..export.tensorrt import EngineOptions

    p = subparsers.add_parser("build-engine", help="build a TensorRT engine on the target device",
                              description=DESCRIPTION)
    p.add_argument("model", help="edgeunet ONNX file (model.onnx, model.fp16.onnx or model.int8.onnx)")
    add_fields(p, EngineOptions)  # the flags of EngineOptions' fields: --shapes, --workspace, --timing-cache ...
    p.add_argument("--out", help=f"engine path (default {model_file_name('tensorrt', '<precision>')} next to MODEL)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..export.tensorrt import EngineOptions, build_engine

    options = EngineOptions(**field_values(args, EngineOptions))
    result = build_engine(args.model, args.out, options)
    print(f"trtexec equivalent (saved to {result['trtexec_file']}):\n  {result['trtexec']}")
    if not args.dry_run:
        print(f"built {result['engine']} ({result['size_bytes'] / 1e6:.1f} MB); facts in {result['sidecar']}")
    return 0
