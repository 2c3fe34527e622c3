"""``edgeunet train``: a thin shell over ``edgeunet.train.train``.

The flags are made from the fields of ``TrainSettings`` (``options.add_fields``: each flag's type, default
and help are written once, beside its field); values are checked as they are parsed where a type says it
all, and by ``TrainSettings`` (one line naming the flag) where a rule needs more. The model knobs are the
model config's, not settings fields, and are written here.
"""

from __future__ import annotations

import argparse
import sys

from ..train.settings import TrainSettings
from .options import add_fields, field_values, level_list, nonnegative_int, positive_int

MODEL_KNOBS = ("base_width", "depth", "upsample", "up_act", "attention", "fused_levels", "space_to_depth",
               "attention_levels", "attention_blocks", "heads")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model config's knobs (``TrainSettings.model_options``)."""
    p.add_argument("--base-width", type=positive_int, help="channels of the first stage (doubles per stage)")
    p.add_argument("--depth", type=positive_int, help="number of 2x down-samplings")
    p.add_argument("--upsample", choices=["transpose", "bilinear", "trilinear", "nearest"],
                   help="decoder up-sampling (trilinear for 3-D models)")
    p.add_argument("--up-act", action=argparse.BooleanOptionalAction, default=None,
                   help="BatchNorm + ReLU after the 1x1 conv of a resize up-sampling (INT8 concats become copies)")
    p.add_argument("--attention", action=argparse.BooleanOptionalAction, default=None,
                   help="attention gates on the skips")
    p.add_argument("--fused-levels", type=nonnegative_int,
                   help="highest-resolution levels built from plain 3x3 convs (0: none)")
    p.add_argument("--space-to-depth", type=positive_int,
                   help="stem factor: 2 runs the network at half resolution, losslessly (1: off)")
    p.add_argument("--attention-levels", type=level_list, metavar="L[,L...]",
                   help="encoder levels (0: full resolution) that end in Transformer blocks, e.g. 2,3 (unet-vit's)")
    p.add_argument("--attention-blocks", type=positive_int, help="Transformer blocks at each attention level")
    p.add_argument("--heads", type=positive_int, help="attention heads of each Transformer block")


def model_options(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in MODEL_KNOBS if getattr(args, k, None) is not None}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a U-Net on a folder of images and masks, or on synthetic data",
                       description="Train a U-Net. Writes RUN_DIR/best.pt, last.pt, metrics.jsonl, results.csv, "
                                   "results.png and config.json.")
    add_fields(p, TrainSettings, ("data", "model"))
    add_model_options(p)
    add_fields(p, TrainSettings, skip=("data", "model"))
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (one line per epoch is printed when stdout is not a terminal)")
    p.add_argument("--out", required=True, help="run folder")
    p.set_defaults(func=run)


def epoch_printer(progress: bool):
    """One printed line per epoch when no progress bar shows (stdout piped to a file or a log, or --no-progress)."""
    if progress and sys.stdout.isatty():
        return None
    return lambda line: print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    # checked before torch is imported: a bad flag costs no start-up time
    settings = TrainSettings(**field_values(args, TrainSettings), out=args.out, model_options=model_options(args),
                             progress=args.progress)
    from ..train import train
    from ..train.distributed import DistContext

    main = DistContext.from_env().is_main
    result = train(settings, on_epoch=epoch_printer(args.progress) if main else None)
    if main:
        print(f"trained {args.model} ({result['parameters'] / 1e6:.3f} M parameters) "
              f"for {result['epochs_run']} epoch(s)")
        print(f"best validation Dice {result['best_dice']:.4f} at epoch {result['best_epoch']} of {result['epochs']}")
        print(f"wrote {result['best_path']}, {result['last_path']}, metrics.jsonl, results.csv, results.png "
              f"and config.json in {args.out}")
    return 0
