"""``edgeunet train``: a thin shell over ``edgeunet.train.train``."""

from __future__ import annotations

import argparse


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Model knobs shared by train and quickstart."""
    p.add_argument("--model", default="unet-ds", help="variant (see `edgeunet info --models`); default unet-ds")
    p.add_argument("--base-width", type=int, help="channels of the first stage (doubles per stage)")
    p.add_argument("--depth", type=int, help="number of 2x down-samplings")
    p.add_argument("--upsample", choices=["transpose", "bilinear", "nearest"], help="decoder up-sampling")
    p.add_argument("--attention", action=argparse.BooleanOptionalAction, default=None, help="attention gates on the skips")
    p.add_argument("--fused-levels", type=int, help="highest-resolution levels built from plain 3x3 convs (0: none)")
    p.add_argument("--space-to-depth", type=int, help="stem factor: 2 runs the network at half resolution, losslessly (1: off)")


def model_options(args: argparse.Namespace) -> dict:
    keys = ("base_width", "depth", "upsample", "attention", "fused_levels", "space_to_depth")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a U-Net on a folder of images and masks, or on synthetic data",
                       description="Train a U-Net. Writes RUN_DIR/best.pt, last.pt, metrics.jsonl and config.json.")
    p.add_argument("--data", default="synthetic", help="DIR with images/ and masks/, or 'synthetic' (default)")
    add_model_options(p)
    split = p.add_mutually_exclusive_group()
    split.add_argument("--val", help="separate validation DIR")
    split.add_argument("--val-fraction", type=float, default=0.1, help="fraction of --data held out (default 0.1)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--img-size", type=int, default=256, help="square training crop (default 256)")
    p.add_argument("--num-classes", type=int, help="classes incl. background (default: read from the masks)")
    p.add_argument("--samples-per-epoch", type=int, help="random crops per epoch")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--schedule", choices=["onecycle", "cosine"], default="onecycle")
    p.add_argument("--init", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under torchrun")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--out", required=True, help="run folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import TrainSettings, train
    from ..train.distributed import DistContext

    settings = TrainSettings(
        data=args.data, model=args.model, out=args.out, model_options=model_options(args), val=args.val,
        val_fraction=args.val_fraction, epochs=args.epochs, batch_size=args.batch_size, img_size=args.img_size,
        num_classes=args.num_classes, samples_per_epoch=args.samples_per_epoch, lr=args.lr, schedule=args.schedule,
        init=args.init, resume=args.resume, seed=args.seed, device=args.device, workers=args.workers,
        sync_bn=args.sync_bn, progress=args.progress,
    )
    result = train(settings)
    if DistContext.from_env().is_main:
        print(f"trained {args.model} ({result['parameters'] / 1e6:.3f} M parameters) for {result['epochs_run']} epoch(s)")
        print(f"best validation Dice {result['best_dice']:.4f} at epoch {result['best_epoch'] + 1}")
        print(f"wrote {result['best_path']}, {result['last_path']}, metrics.jsonl and config.json in {args.out}")
    return 0
