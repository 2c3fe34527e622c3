"""``edgeunet prune``: a thin shell over ``edgeunet.prune.prune_checkpoint`` and ``sensitivity``.

The flags are made from the fields of ``PruneSettings`` (``options.add_fields``); values are checked as
they are parsed.
"""

from __future__ import annotations

import argparse

from ..prune import PruneSettings
from .options import add_fields, field_values
from .train import epoch_printer


def add_parser(sub) -> None:
    p = sub.add_parser(
        "prune", help="remove channels from a trained checkpoint and fine-tune it",
        description="Structured channel pruning with Torch-Pruning's dependency graph, then fine-tuning with the "
                    "`edgeunet train` trainer. Writes RUN_DIR/best.pt, last.pt, metrics.jsonl, results.csv, "
                    "results.png and prune.json (or sensitivity.json with --sensitivity).",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="best.pt or last.pt of a training run")
    add_fields(p, PruneSettings)
    p.add_argument("--sensitivity", action="store_true",
                   help="only report the Dice drop when each stage alone is pruned by --ratio")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--out", required=True, help="run folder")
    p.set_defaults(func=run)


def _run_sensitivity(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..prune import sensitivity

    if args.target_macs or args.target_params:
        raise UserError("--sensitivity prunes each stage by --ratio: drop --target-macs/--target-params")
    rows = sensitivity(args.checkpoint, args.data, args.ratio, out=args.out, importance=args.importance,
                       round_to=args.round_to, min_channels=args.min_channels, img_size=args.img_size,
                       batch_size=args.batch_size, samples_per_epoch=args.samples_per_epoch, seed=args.seed,
                       device=args.device, exist_ok=args.exist_ok)
    print(f"Dice drop when one stage is pruned by {args.ratio:.0%} (no fine-tuning):")
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

    settings = PruneSettings(**field_values(args, PruneSettings), progress=args.progress)
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
