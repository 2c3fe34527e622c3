"""``edgeunet predict``: segment image files with an ONNX model or TensorRT engine, torch-free."""

from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from ..formats import FORMATS, OPTION_NAMES, suffixes
from ..runtime.backend_openvino import PRECISIONS as OPENVINO_PRECISIONS
from ..runtime.backends import BACKENDS
from .options import name_list, nonnegative_float, positive_int

DEVICES = ("auto", "cpu", "cuda")


def provider_list(text: str) -> list[str]:
    """``"CUDAExecutionProvider,CPUExecutionProvider"`` -> a non-empty list of names."""
    names = name_list(text)
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no execution provider, e.g. CPUExecutionProvider")
    return names


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="segment images into mask PNGs (volumes into masks of their format) "
                                       "with a model.onnx or a TensorRT engine",
                       description="Writes <out>/<stem>.png (class ids, uint8) for every input image, and with "
                                   "--overlay <out>/<stem>_overlay.png to look at. Folders are scanned for images "
                                   "(not recursively). An image that cannot be read or segmented is reported and "
                                   "passed over (exit code 1 at the end); --stop-on-error stops at the first one "
                                   "(exit code 2). With a 3-D model the inputs are volumes "
                                   "(.nii.gz .nii .tif stacks .npy): "
                                   "<out>/<name> is written in the input's format (NIfTI with its affine and "
                                   "header), --overlay writes a PNG montage of a few slices. "
                                   "Needs only the base install (numpy + ONNX Runtime; nibabel for NIfTI).")
    p.add_argument("model", help=f"model.onnx (or {', '.join(suffixes(*OPTION_NAMES[1:]))}) from `edgeunet export`, "
                                 "or a TensorRT engine "
                                 "from `edgeunet build-engine`")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files (.png .jpg .tif .npy) or folders of them; volumes for a 3-D model")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--overlay", action="store_true",
                   help="also write <stem>_overlay.png: classes colored over the image")
    p.add_argument("--tile", type=positive_int, default=None,
                   help="tile side for large images, a multiple of the model's size multiple (default 512; "
                        "3-D models: the side of the cubic windows, default 64)")
    p.add_argument("--overlap", type=nonnegative_float, default=0.25,
                   help="tile overlap fraction in [0, 1) (default 0.25)")
    p.add_argument("--tta", action="store_true",
                   help="test-time mirroring: average the probabilities of the image and its mirror images (4x the "
                        "model calls in 2-D, 8x in 3-D)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="ONNX Runtime threads (default: ONNX Runtime's choice)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="default auto: by file type (" + ", ".join(f"{f.backend} for {f.suffix}" for f in FORMATS
                                                                   if f.backend != "onnxruntime") +
                        ", else onnxruntime)")
    p.add_argument("--precision", choices=(*OPENVINO_PRECISIONS, "auto"), default="f32",
                   help="OpenVINO's inference precision: f32 computes as verified (default); bf16 is faster on CPUs "
                        "with AVX-512 BF16 or AMX; auto is OpenVINO's choice. Other runtimes ignore it")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--device", choices=DEVICES, default="auto",
                       help="where ONNX Runtime runs: auto (CUDA when this onnxruntime build has it, else CPU), "
                            "cpu, or cuda (an error when missing) (default auto)")
    where.add_argument("--providers", type=provider_list, default=None, metavar="P1,P2",
                       help="ONNX Runtime execution providers, best first, e.g. CUDAExecutionProvider,"
                            "CPUExecutionProvider (each must be in this onnxruntime build)")
    p.add_argument("--stop-on-error", action="store_true",
                   help="stop at the first image that cannot be read or segmented (exit code 2)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def providers_for(args: argparse.Namespace) -> list[str] | None:
    """The ONNX Runtime providers ``--device``/``--providers`` ask for (None for the other runtimes).

    Raises:
        UserError: A provider or device this machine lacks, or one that does not apply to the model.
    """
    from pathlib import Path

    from ..runtime.backends import choose_backend
    from ..runtime.session import check_providers, providers_for_device

    if Path(args.model).is_dir():
        raise UserError(f"{args.model} is a folder: give the model.onnx (or the TensorRT engine) file in it")
    backend = choose_backend(args.model, args.backend)
    if backend == "tensorrt":
        if args.providers:
            raise UserError("--providers applies to ONNX Runtime only: leave it unset for a TensorRT engine")
        if args.device == "cpu":
            raise UserError("a TensorRT engine runs on the GPU: give the .onnx model for --device cpu")
        return None
    if backend != "onnxruntime":  # OpenVINO, ExecuTorch and LiteRT run on this CPU and pick their own kernels
        if args.providers or args.device == "cuda":
            raise UserError(f"--providers and --device cuda apply to ONNX Runtime only: leave them unset for "
                            f"{args.model} ({backend})")
        return None
    if args.providers:
        return check_providers(args.providers)
    return providers_for_device(args.device)


def _check_started(asked: list[str] | None, started: list[str]) -> None:
    """ONNX Runtime falls back to CPU when a provider cannot start (no driver, no CUDA libraries): say so."""
    lost = [p for p in asked or [] if p not in started]
    if lost:
        raise UserError(f"ONNX Runtime could not start {', '.join(lost)} (it runs on {', '.join(started)}): "
                        "check the NVIDIA driver and CUDA libraries, or use --device cpu")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..runtime import Segmenter, predict_files

    providers = providers_for(args)
    seg = Segmenter(args.model, backend=args.backend, threads=args.threads, providers=providers, tile=args.tile,
                    overlap=args.overlap, precision=None if args.precision == "auto" else args.precision,
                    tta=args.tta)
    if args.providers or args.device == "cuda":  # auto may fall back to CPU; an explicit choice may not
        _check_started(providers, seg.providers)

    def report(path, message: str) -> None:
        tqdm.write(f"edgeunet predict: {message}", file=sys.stderr)

    summary = predict_files(seg, args.inputs, args.out, overlays=args.overlay, progress=args.progress,
                            stop_on_error=args.stop_on_error, on_error=report)
    print(summary_line(summary, args.overlay, f"{seg.backend}, {', '.join(seg.providers)}"))
    return 1 if summary["failed"] else 0


def summary_line(summary: dict, overlays: bool, where: str) -> str:
    """``segmented N image(s) ...; M failed; K skipped (why)`` for the end of a run."""
    what = "masks and overlays" if overlays else "masks"
    line = f"segmented {summary['images']} image(s) into {what} in {summary['out_dir']}"
    if summary["mean_ms"] is not None:
        line += f": {summary['mean_ms']:.1f} ms per image on average ({where})"
    if summary["failed"]:
        line += f"; {len(summary['failed'])} failed (listed above)"
    if summary["skipped"]:
        reasons: dict[str, int] = {}
        for entry in summary["skipped"]:
            reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
        line += f"; {len(summary['skipped'])} skipped (" + ", ".join(f"{n} {r}" for r, n in reasons.items()) + ")"
    return line
