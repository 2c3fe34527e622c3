"""``edgeunet info``: what a checkpoint, ONNX model or engine is; ``--models`` lists the zoo."""

from __future__ import annotations

import argparse
import json

from .options import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a checkpoint, ONNX model or engine; --models lists the variants")
    p.add_argument("path", nargs="?", help="best.pt, model.onnx, model.int8.onnx or a TensorRT engine")
    p.add_argument("--img-size", type=positive_int, default=256,
                   help="square side (px) at which MACs are counted, rounded down to the size multiple (default 256)")
    p.add_argument("--img-size-3d", type=positive_int, default=64,
                   help="cube side (voxels) at which the MACs of 3-D variants and checkpoints are counted (default 64)")
    p.add_argument("--models", action="store_true", help="list the registered variants (2-D and 3-D)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..describe import describe, describe_variants

    if args.models or not args.path:
        rows, rows_3d = describe_variants(args.img_size), describe_variants(args.img_size_3d, spatial_dims=3)
        if args.json:
            print(json.dumps(rows + [{**r, "spatial_dims": 3} for r in rows_3d], indent=2))
            return 0
        _print_variants(rows, args.img_size)
        if rows_3d:
            print()
            _print_variants(rows_3d, f"{args.img_size_3d}^3")
        return 0
    info = describe(args.path, args.img_size, args.img_size_3d)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    _print_info(info)
    return 0


def _print_variants(rows: list[dict], img_size: int | str) -> None:
    name = max([len("model"), *(len(r["name"]) for r in rows)]) + 2
    encoder = max([len("encoder"), *(len(r.get("encoder") or "-") for r in rows)]) + 2
    print(f"{'model':<{name}}{'encoder':<{encoder}}{'block':<7}{'fused':>6}{'s2d':>5}  {'upsample':<14}{'attn':<6}"
          f"{'vit':<5}{'params (M)':>11}{f'GMACs@{img_size}':>12}  widths")
    for r in rows:
        print(f"{r['name']:<{name}}{r.get('encoder') or '-':<{encoder}}{r['block']:<7}{r['fused_levels']:>6}"
              f"{r['space_to_depth']:>5}  {_upsample(r):<14}{str(r['attention']):<6}{_levels(r):<5}"
              f"{r['parameters'] / 1e6:>11.3f}{r['gmacs']:>12.3f}  {r['widths']}")


def _levels(cfg: dict) -> str:
    """The levels with Transformer blocks, ``2,3``, or ``-``."""
    return ",".join(map(str, cfg.get("attention_levels") or ())) or "-"


def _transformer(cfg: dict) -> str:
    """``, Transformer blocks at levels 2,3 (1 each, 4 heads)`` for a config with them, else empty."""
    if not cfg.get("attention_levels"):
        return ""
    return (f", Transformer blocks at levels {_levels(cfg)} ({cfg.get('attention_blocks', 1)} each, "
            f"{cfg.get('heads', 4)} heads)")


def _upsample(cfg: dict) -> str:
    """``bilinear``, or ``bilinear+act`` when BN + ReLU follow the up-sampling conv (``up_act``)."""
    return f"{cfg.get('upsample')}{'+act' if cfg.get('up_act') else ''}"


def _print_info(info: dict) -> None:
    cfg = info.get("model_config", {})
    print(f"{info['kind']}: {info['path']}")
    if cfg:
        encoder = f"encoder {cfg['encoder']}, " if cfg.get("encoder") else ""
        print(f"  model       {cfg.get('name')} ({encoder}block {cfg.get('block')}, widths {cfg.get('widths')}, "
              f"fused levels {cfg.get('fused_levels', 0)}, space-to-depth {cfg.get('space_to_depth', 1)}, "
              f"upsample {_upsample(cfg)}, attention {cfg.get('attention')}{_transformer(cfg)})")
        if cfg.get("layer_widths"):
            print(f"  pruned      {len(cfg['layer_widths'])} layer widths differ from the design")
    if "parameters" in info:
        shape = "x".join(map(str, info.get("cost_shape") or [info["img_size"]] * 2))
        print(f"  parameters  {info['parameters'] / 1e6:.3f} M, {info['gmacs']:.3f} GMACs at {shape}")
    for key in ("precision", "opset", "size_mb", "nodes"):
        if info.get(key) is not None:
            print(f"  {key:<11} {info[key]}")
    if info["kind"] == "onnx" and info.get("nodes") is None:
        print("  graph       opset and op counts need the onnx package: pip install 'edgeunet[train]'")
    if info.get("epochs_completed") is not None:
        print(f"  epochs      {info['epochs_completed']} completed")
    if info.get("class_names"):
        print(f"  classes     {', '.join(info['class_names'])}")
    if info.get("preprocessing"):
        print(f"  preprocess  {json.dumps(info['preprocessing'])}")
    metrics = info.get("metrics") or {}
    if metrics.get("mean_dice") is not None:
        print(f"  val Dice    {metrics['mean_dice']:.4f} (IoU {metrics['mean_iou']:.4f})")
