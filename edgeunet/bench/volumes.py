"""The volumes ``edgeunet bench`` scores 3-D models on: synthetic nuclei volumes or a folder of volumes.

Whole volumes go through ``Segmenter`` (windows, blending), so the Dice, the time per volume and the
peak memory are those of the code users run. ``--data synthetic`` gives ``--num-images`` volumes of
``SYNTHETIC_SHAPE`` voxels (the validation seed); a folder gives its ``images/`` + ``masks/`` volumes
(``.nii.gz``, ``.nii``, TIFF stacks, ``.npy``; ``val/`` when split), the first ``--num-images`` by name.
"""

from __future__ import annotations

from pathlib import Path

SYNTHETIC_SHAPE = (32, 96, 96)  # (D, H, W): one 64^3 window row deep, 2 x 2 windows across at overlap 0.25


def bench_volumes(data: str, count: int, num_classes: int = 2) -> list[tuple[str, object, object]]:
    """(name, volume (D, H, W), mask (D, H, W)) samples to score a 3-D model on.

    Raises:
        UserError: A folder without paired volumes (``export.samples.volume_pairs``).
    """
    from ..data.sources import dataset_folder, is_synthetic, split_seed
    from ..data.synthetic import synthetic_volume
    from ..export.samples import is_synthetic_volumes, read_volume_pairs, volume_pairs

    if is_synthetic(data) or is_synthetic_volumes(data):
        classes = num_classes if num_classes <= 4 else 2
        return [(f"synthetic3d-val-{i:04d}", *synthetic_volume(i, size=SYNTHETIC_SHAPE, seed=split_seed(0, "val"),
                                                                num_classes=classes))
                for i in range(count)]
    folder = Path(data)
    if not (folder / "images").is_dir() and dataset_folder(folder, "val") != folder:
        folder = dataset_folder(folder, "val")
    return read_volume_pairs(volume_pairs(folder)[:count])


def volume_lines(rows: list[dict]) -> list[str]:
    """The whole-volume figures of the 3-D rows (``volume_ms`` ...), one line each, for the printed table; the
    table's own columns time one ``size``^3 patch."""
    lines = []
    for row in rows:
        if row.get("volume_ms") is None:
            continue
        window = row.get("window")
        side = f", {window}^3 windows" if isinstance(window, int) else ""
        peak = row.get("volume_peak_rss_mb")
        lines.append(f"  {row['model']} ({row['precision']}): {row['volume_ms']:.0f} ms per volume, "
                     f"{row['volume_voxels_per_s'] / 1e6:.2f} Mvoxel/s, peak RSS "
                     f"{'-' if peak is None else f'{peak:.0f}'} MB, Dice {row['mean_dice']:.4f} over "
                     f"{len(row.get('dice_per_volume') or [])} volumes{side}")
    if lines:
        lines.insert(0, f"whole volumes through Segmenter (the table times one {rows[0]['size']}^3 patch per call):")
    return lines
