"""``edgeunet data``: make a synthetic data set (``synth``) or check a folder data set (``check``)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="make synthetic data or check a data set folder",
                       description="Data sets are folders DIR/images/<name>.<png|jpg|tif|npy> with "
                                   "DIR/masks/<name>.<png|tif|npy> of class ids, and an optional classes.txt.")
    p.set_defaults(func=lambda args: _help(p))
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    synth = actions.add_parser("synth", help="write a synthetic fluorescence-nuclei data set",
                               description="Writes OUT/images/*.png (16-bit), OUT/masks/*.png and OUT/classes.txt.")
    synth.add_argument("out", help="new or empty output folder")
    synth.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    synth.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    synth.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    synth.add_argument("--num-classes", type=int, default=2,
                       help="2: background/nucleus; 3: + elongated; 4: + mitotic (default 2)")
    synth.set_defaults(func=run_synth)
    check = actions.add_parser("check", help="list every problem of a data set folder (exit 2 if any)")
    check.add_argument("dir", help="data set folder with images/ and masks/")
    check.add_argument("--num-classes", type=int, default=None, help="also check that class ids are below this")
    check.set_defaults(func=run_check)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic import synthetic_class_names, write_synthetic

    out = write_synthetic(args.out, n=args.n, size=args.size, seed=args.seed, num_classes=args.num_classes)
    print(f"wrote {args.n} synthetic {args.size}x{args.size} images and masks to {out} "
          f"(classes: {', '.join(synthetic_class_names(args.num_classes))})")
    return 0


def _counts(counter, fmt) -> str:
    return ", ".join(f"{fmt(key)} ({count})" for key, count in counter.most_common())


def run_check(args: argparse.Namespace) -> int:
    from ..data.validate import validate_folder

    report = validate_folder(args.dir, args.num_classes)
    for problem in report.problems:
        print(problem)
    if report.problems:
        print(f"{len(report.problems)} problem(s) in {args.dir}")
        return 2
    total = sum(report.class_pixels.values()) or 1
    classes = ", ".join(f"{cls} ({100.0 * n / total:.1f}%)" for cls, n in sorted(report.class_pixels.items()))
    print(f"{args.dir}: {len(report.pairs)} image/mask pairs, no problems")
    print(f"sizes     {_counts(report.sizes, lambda hw: f'{hw[0]}x{hw[1]}')}")
    print(f"channels  {_counts(report.channels, str)}")
    print(f"dtypes    {_counts(report.dtypes, str)}")
    print(f"classes   {classes} of pixels; num_classes {report.num_classes}"
          + (f" ({', '.join(report.class_names)})" if report.class_names else ""))
    return 0
