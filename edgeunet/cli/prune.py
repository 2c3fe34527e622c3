"""``edgeunet prune``: a thin shell over ``edgeunet.prune.prune_checkpoint`` and ``sensitivity``.

Defaults come from ``PruneSettings``; values are checked as they are parsed.
"""

from __future__ import annotations

import argparse

from ..prune import IMPORTANCES, PruneSettings
from .options import field_default, finite_float, int_list, nonnegative_int, positive_int
from .train import epoch_printer


def _default(name: str):
    return field_default(PruneSettings, name)


def ratio_fraction(text: str) -> float:
    """A fraction of channels to remove, in [0, 1)."""
    value = finite_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a fraction of channels to remove: use a value in [0, 1), "
                                         "e.g. 0.5")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be greater than 0")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "prune", help="remove channels from a trained checkpoint and fine-tune it",
        description="Structured channel pruning with Torch-Pruning's dependency graph, then fine-tuning with the "
                    "`edgeunet train` trainer. Writes RUN_DIR/best.pt, last.pt, metrics.jsonl, results.csv, "
                    "results.png and prune.json (or sensitivity.json with --sensitivity).",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="best.pt or last.pt of a training run")
    p.add_argument("--data", default=_default("data"),
                   help="DIR with images/ and masks/, 'synthetic' or 'synthetic3d' (default: the built-in "
                        "synthetic data of the checkpoint's dimensionality)")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--ratio", type=ratio_fraction,
                        help=f"fraction of channels removed from every layer, in [0, 1) (default {_default('ratio')})")
    amount.add_argument("--target-macs", help="prune until MACs per image at --img-size are at most this "
                                              "(e.g. 0.5G, 400M)")
    amount.add_argument("--target-params", help="prune until the parameters are at most this (e.g. 150k, 1.2M)")
    p.add_argument("--importance", choices=IMPORTANCES, default=_default("importance"),
                   help="channel ranking (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=_default("steps"),
                   help="prune in K steps with fine-tuning in between (default %(default)s)")
    p.add_argument("--finetune-epochs", type=nonnegative_int, default=_default("finetune_epochs"),
                   help="fine-tuning epochs after each step (default %(default)s; 0 = none)")
    p.add_argument("--round-to", type=positive_int, default=_default("round_to"),
                   help="kept channel counts are multiples of this (default %(default)s)")
    p.add_argument("--min-channels", type=positive_int, default=_default("min_channels"),
                   help="no layer is pruned below this many channels (default %(default)s; "
                        "1 prunes every layer)")
    p.add_argument("--img-size", type=positive_int,
                   help="training crop and MAC-counting size (default: the checkpoint's, else 256; 3-D: the "
                        "side of the cube MACs are counted on, default the patch's largest side)")
    p.add_argument("--patch", type=int_list, metavar="D,H,W",
                   help="3-D models: fine-tuning patch (default: the checkpoint's)")
    p.add_argument("--batch-size", type=positive_int, default=_default("batch_size"))
    p.add_argument("--samples-per-epoch", type=positive_int, help="random crops per fine-tuning epoch")
    p.add_argument("--lr", type=positive_float, default=_default("lr"),
                   help="fine-tuning learning rate (default %(default)s, as for training; cosine decay)")
    p.add_argument("--seed", type=int, default=_default("seed"))
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default=_default("device"))
    p.add_argument("--sensitivity", action="store_true",
                   help="only report the Dice drop when each stage alone is pruned by --ratio")
    p.add_argument("--exist-ok", action="store_true", help="overwrite a run already in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--out", required=True, help="run folder")
    p.set_defaults(func=run)


def _run_sensitivity(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..prune import sensitivity

    if args.target_macs or args.target_params:
        raise UserError("--sensitivity prunes each stage by --ratio: drop --target-macs/--target-params")
    ratio = _default("ratio") if args.ratio is None else args.ratio
    rows = sensitivity(args.checkpoint, args.data, ratio, out=args.out, importance=args.importance,
                       round_to=args.round_to, min_channels=args.min_channels, img_size=args.img_size,
                       batch_size=args.batch_size, samples_per_epoch=args.samples_per_epoch, seed=args.seed,
                       device=args.device, exist_ok=args.exist_ok)
    print(f"Dice drop when one stage is pruned by {ratio:.0%} (no fine-tuning):")
    print(f"{'stage':<6} {'widths':<24} {'params removed':>15} {'MACs removed':>14} {'Dice':>8} {'drop':>8}")
    for row in rows:
        widths = "/".join(f"{row['widths_before'][k]}>{row['widths_after'][k]}" for k in row["widths_before"])
        dice = "n/a" if row["dice"] is None else f"{row['dice']:.4f}"
        drop = "n/a" if row["dice_drop"] is None else f"{row['dice_drop']:+.4f}"
        print(f"{row['stage']:<6} {widths:<24} {row['parameters_removed']:>15,} {row['macs_removed']:>14,} "
              f"{dice:>8} {drop:>8}")
    print(f"wrote {args.out}/sensitivity.json")
    return 0


def _dice(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    if args.sensitivity:
        return _run_sensitivity(args)
    from ..prune import prune_checkpoint
    from ..train.distributed import DistContext

    settings = PruneSettings(
        data=args.data, ratio=_default("ratio") if args.ratio is None else args.ratio, target_macs=args.target_macs,
        target_params=args.target_params, importance=args.importance, steps=args.steps,
        finetune_epochs=args.finetune_epochs, round_to=args.round_to, min_channels=args.min_channels,
        img_size=args.img_size, patch=tuple(args.patch) if args.patch else None, batch_size=args.batch_size,
        samples_per_epoch=args.samples_per_epoch, lr=args.lr,
        seed=args.seed, device=args.device, progress=args.progress, exist_ok=args.exist_ok,
    )
    main = DistContext.from_env().is_main
    report = prune_checkpoint(args.checkpoint, args.out, settings,
                              on_epoch=epoch_printer(args.progress) if main else None)
    if not main:
        return 0
    params, macs, dice = report["parameters"], report["macs"], report["dice"]
    print(f"pruned {report['model']} at ratio {report['ratio']:.3f} in {len(report['steps'])} step(s)")
    print(f"parameters {params['before']:,} -> {params['after']:,} (-{params['reduction']:.1%}); "
          f"MACs at {report['img_size']}{'^3 voxels' if report.get('patch') else ' px'} "
          f"{macs['before'] / 1e6:.1f} M -> {macs['after'] / 1e6:.1f} M "
          f"(-{macs['reduction']:.1%})")
    print(f"Dice {_dice(dice['before'])} before, {_dice(dice['pruned'])} right after pruning, "
          f"{_dice(dice['finetuned'])} after fine-tuning")
    written = ("best.pt, last.pt, metrics.jsonl, results.csv, results.png" if report["outputs"]["metrics"]
               else "best.pt, last.pt")
    print(f"wrote {written} and prune.json in {args.out}")
    return 0
