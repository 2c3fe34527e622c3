"""``edgeunet data``: make a synthetic data set (``synth``) or check a folder data set (``check``)."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..sizes import check_synthetic_memory
from .options import deprecated_alias, int_list, positive_int

SHOWN_SIZES = 5  # image sizes listed by count in the summary; the rest are counted


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="make synthetic data or check a data set folder",
                       description="Data sets are folders DIR/images/<name>.<png|jpg|tif|npy> with "
                                   "DIR/masks/<name>.<png|tif|npy> of class ids, and an optional classes.txt.")
    p.set_defaults(func=lambda args: _help(p))
    actions = p.add_subparsers(dest="data_command", metavar="ACTION")
    synth = actions.add_parser("synth", help="write a synthetic fluorescence-nuclei data set",
                               description="Writes OUT/images/*.png (16-bit), OUT/masks/*.png and OUT/classes.txt.")
    synth.add_argument("out", help="new or empty output folder")
    synth.add_argument("--num-images", type=positive_int, default=200, help="number of images (default 200)")
    deprecated_alias(synth, "--n", "--num-images", dest="num_images", type=positive_int)
    synth.add_argument("--img-size", type=positive_int, default=256, help="image side in pixels (default 256)")
    deprecated_alias(synth, "--size", "--img-size", dest="img_size", type=positive_int)
    synth.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    synth.add_argument("--num-classes", type=int, default=2,
                       help="2: background/nucleus; 3: + elongated; 4: + mitotic (default 2)")
    synth.add_argument("--3d", dest="volumes", action="store_true",
                       help="write volumes (OUT/images/*.nii.gz stacks and masks); --img-size is the cube's side")
    synth.add_argument("--volume-size", type=int_list, metavar="D,H,W",
                       help="--3d: volume shape instead of an --img-size cube")
    synth.add_argument("--format", choices=["nii.gz", "nii", "tiff", "npy"], default="nii.gz",
                       help="--3d: file format of the volumes (default nii.gz)")
    synth.set_defaults(func=run_synth)
    check = actions.add_parser("check", help="read every pixel of a data set folder and list every problem "
                                             "(exit 1 if any)")
    check.add_argument("dir", help="data set folder with images/ and masks/")
    check.add_argument("--num-classes", type=positive_int, default=None,
                       help="also check that class ids are below this")
    check.add_argument("--3d", dest="volumes", action="store_true",
                       help="a folder of volumes (TIFF stacks, .npy); NIfTI folders are read as volumes anyway")
    check.add_argument("--json", metavar="FILE",
                       help="also write the fingerprint (sizes, dtypes, intensities, foreground, spacings) and the "
                            "normalization auto picks to FILE as JSON")
    check.set_defaults(func=run_check)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic import synthetic_class_names, write_synthetic

    if args.volumes:
        return _synth_volumes(args)
    if args.volume_size:
        raise UserError("--volume-size is for volumes: add --3d, or give --img-size for 2-D images")
    check_synthetic_memory("--img-size", (args.img_size,) * 2)  # before anything is written
    out = write_synthetic(args.out, n=args.num_images, size=args.img_size, seed=args.seed,
                          num_classes=args.num_classes)
    print(f"wrote {args.num_images} synthetic {args.img_size}x{args.img_size} images and masks to {out} "
          f"(classes: {', '.join(synthetic_class_names(args.num_classes))})")
    return 0


def _synth_volumes(args: argparse.Namespace) -> int:
    from ..data.synthetic import synthetic_class_names, write_synthetic

    size = tuple(args.volume_size) if args.volume_size else (args.img_size,) * 3
    check_synthetic_memory("--volume-size" if args.volume_size else "--img-size", size, one_side=not args.volume_size)
    out = write_synthetic(args.out, n=args.num_images, size=size, seed=args.seed, num_classes=args.num_classes,
                          spatial_dims=3, fmt=args.format)
    print(f"wrote {args.num_images} synthetic {'x'.join(map(str, size))} volumes and masks ({args.format}) to {out} "
          f"(classes: {', '.join(synthetic_class_names(args.num_classes))})")
    return 0


def _sizes(report) -> list[str]:
    counts = report.sizes.most_common()
    if counts and len(counts[0][0]) == 3:
        listed = ", ".join(f"{'x'.join(map(str, shape))} ({n})" for shape, n in counts[:SHOWN_SIZES])
        return [f"shapes    {listed} (D x H x W), {len(counts)} distinct shape(s)"]
    listed = ", ".join(f"{h}x{w} ({n})" for (h, w), n in counts[:SHOWN_SIZES])
    more = f", +{len(counts) - SHOWN_SIZES} more" if len(counts) > SHOWN_SIZES else ""
    (min_h, min_w), (max_h, max_w) = report.size_range
    return [f"sizes     {listed}{more}",
            f"          height {min_h}-{max_h} px, width {min_w}-{max_w} px, {len(counts)} distinct size(s)"]


def _classes(report) -> list[str]:
    total = sum(report.class_pixels.values()) or 1
    shares = ", ".join(f"{cls} ({100.0 * n / total:.1f}%)" for cls, n in sorted(report.class_pixels.items()))
    names = f" ({', '.join(report.class_names)})" if report.class_names else ""
    unit = f"{report.unit}s"  # pixels, or voxels for volumes
    lines = [f"classes   {shares} of {unit}; num_classes {report.num_classes}{names}"]
    for cls in range(report.num_classes):
        named = report.class_names and cls < len(report.class_names)
        name = report.class_names[cls] if named else ("background" if cls == 0 else f"class{cls}")
        pixels, images = report.class_pixels.get(cls, 0), report.class_images.get(cls, 0)
        lines.append(f"          {cls} {name}: {pixels:,} {unit} in {images} of {len(report.pairs)} masks")
    return lines


def _dims(values) -> str:
    """(2.5, 0.8, 0.8) -> "2.5x0.8x0.8"."""
    return "x".join(f"{v:g}" for v in values)


def _numbers(values) -> str:
    return ", ".join(f"{v:.5g}" for v in values)


def _fingerprint(fingerprint, unit: str) -> list[str]:
    """The lines of a ``data.fingerprint.Fingerprint``: sizes, spacings, intensities, foreground."""
    from ..data.fingerprint import CLIP_PERCENTILES, PERCENTILES, SAMPLES_PER_CASE

    axes, item = ("D x H x W", "volume") if fingerprint.spatial_dims == 3 else ("H x W", "image")
    lines = [f"size      median {_dims(fingerprint.size_median)}, min {_dims(fingerprint.size_min)}, "
             f"max {_dims(fingerprint.size_max)} ({axes})"]
    if fingerprint.spacing_median is not None:
        unit_axes = f"{fingerprint.spacing_unit} ({axes})" if fingerprint.spacing_unit else f"({axes}, unit unknown)"
        lines.append(f"spacing   median {_dims(fingerprint.spacing_median)}, min {_dims(fingerprint.spacing_min)}, "
                     f"max {_dims(fingerprint.spacing_max)} {unit_axes}")
    dtypes = ", ".join(name for name, _ in fingerprint.dtypes)
    lines.append(f"intensity {dtypes}{' (signed integers)' if fingerprint.signed else ''}; percentiles "
                 f"{'/'.join(f'{q:g}' for q in PERCENTILES)} of up to {SAMPLES_PER_CASE:,} {unit}s per {item}")
    share = f"{100.0 * fingerprint.foreground_fraction:.1f}% of {unit}s"
    low, high = CLIP_PERCENTILES
    for index, channel in enumerate(fingerprint.channels):
        lines.append(f"          channel {index}: range {channel.min:g}..{channel.max:g}; percentiles "
                     f"{_numbers(channel.all.percentiles)}")
        fg = channel.foreground
        lines.append(f"          channel {index} foreground (mask > 0, {share}): mean {fg.mean:.5g}, std {fg.std:.5g}, "
                     f"{low:g}-{high:g}th percentiles {fg.percentile(low):.5g}..{fg.percentile(high):.5g}" if fg else
                     f"          channel {index} foreground: none (no mask holds a class id > 0)")
    return lines


def run_check(args: argparse.Namespace) -> int:
    """Prints every problem (one line each, with its file) and exits 1 when there is any; else a summary,
    the data set's fingerprint and the normalization ``auto`` picks (also written as JSON with ``--json``)."""
    from ..atomic import write_json
    from ..data.fingerprint import compute_fingerprint, resolve_normalization
    from ..data.sources import holds_nifti
    from ..data.validate import validate_folder

    volumes = args.volumes or holds_nifti(args.dir)
    report = validate_folder(args.dir, args.num_classes, spatial_dims=3 if volumes else 2)
    for problem in report.problems:
        print(problem)
    if report.problems:
        print(f"{len(report.problems)} problem(s) in {args.dir}")
        return 1
    print(f"{args.dir}: {len(report.pairs)} {'volume' if volumes else 'image'}/mask pairs, no problems")
    lines = _sizes(report) + [
        f"channels  {', '.join(f'{key} ({n})' for key, n in report.channels.most_common())}",
        f"dtypes    {', '.join(f'{key} ({n})' for key, n in report.dtypes.most_common())}",
    ] + _classes(report)
    fingerprint = compute_fingerprint(report.pairs, 3 if volumes else 2)
    spec, reason = resolve_normalization("auto", fingerprint)
    lines += _fingerprint(fingerprint, report.unit) + [f"normalize {reason}"]
    for line in lines + [f"warning   {warning}" for warning in report.warnings]:
        print(line)
    if args.json:
        write_json(args.json, {**fingerprint.to_dict(), "normalization": {"auto": spec, "reason": reason}})
        print(f"wrote {args.json}")
    return 0
