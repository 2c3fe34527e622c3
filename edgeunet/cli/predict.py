"""``edgeunet predict``: segment image files with an ONNX model or TensorRT engine, torch-free."""

from __future__ import annotations

import argparse

from ..runtime.backends import BACKENDS


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="segment images into mask PNGs (and overlays) with a model.onnx or model.engine",
                       description="Writes <out>/<stem>.png (class ids, uint8) for every input image, and with "
                                   "--overlay <out>/<stem>_overlay.png to look at. Folders are scanned for images "
                                   "(not recursively). Needs only the base install (numpy + ONNX Runtime).")
    p.add_argument("model", help="model.onnx from `edgeunet export`, or model.engine from `edgeunet build-engine`")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files (.png .jpg .tif .npy) or folders of them")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.png: classes colored over the image")
    p.add_argument("--tile", type=int, default=None, help="tile side for large images, a multiple of the model's size multiple (default 512)")
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction in [0, 1) (default 0.25)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: ONNX Runtime's choice)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="default auto: TensorRT for .engine, else ONNX Runtime")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime import Segmenter, predict_files

    seg = Segmenter(args.model, backend=args.backend, threads=args.threads, tile=args.tile, overlap=args.overlap)
    summary = predict_files(seg, args.inputs, args.out, overlays=args.overlay, progress=True)
    what = "masks and overlays" if args.overlay else "masks"
    print(f"segmented {summary['images']} image(s) into {what} in {summary['out_dir']}: "
          f"{summary['mean_ms']:.1f} ms per image on average ({seg.backend}, {', '.join(seg.providers)})")
    return 0
