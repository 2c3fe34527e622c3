"""What an export refuses before it writes anything (image sides, masks of other classes), what sizes the
fixed-size files, and what its console output leaves out (the libraries' own lines)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from edgeunet.errors import UserError
from edgeunet.export import ExportOptions, export_model
from tests.badinput import assert_user_error

pytest.importorskip("torch", reason="export needs the train extra")
ROLES = ("--calib-images", "2", "--search-images", "2", "--val-images", "2", "--no-int8-search", "--no-progress")


def _folder(root, labels: tuple[int, ...], n: int = 6):
    """A one-folder data set of ``n`` 64 px images whose masks hold ``labels``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)).save(root / "images" / f"cell{i}.png")
        mask = np.zeros((64, 64), np.uint8)
        for k, label in enumerate(labels):
            mask[16 * k:16 * k + 12, 8:40] = label
        Image.fromarray(mask).save(root / "masks" / f"cell{i}.png")
    return root


def test_calibration_masks_with_more_classes_than_the_model_are_refused_before_anything(tiny_checkpoint, tmp_path,
                                                                                      cli):
    data, out = _folder(tmp_path / "three", (1, 2)), tmp_path / "out"
    line = assert_user_error(cli("export", tiny_checkpoint[0], "--out", out, "--int8", "--calib", data, *ROLES),
                             f"--calib {data}", "holds label 2", "the model has 2 classes",
                             "give masks labelled with this model's classes")
    assert line.startswith("edgeunet export: error:")
    assert not out.exists()


def test_verification_masks_with_more_classes_are_refused_naming_val(tiny_checkpoint, tmp_path, cli):
    data, out = _folder(tmp_path / "three", (3,)), tmp_path / "out"
    assert_user_error(cli("export", tiny_checkpoint[0], "--out", out, "--int8", "--calib", "synthetic", "--val", data,
                          *ROLES), f"--val {data}", "holds label 3", "2 classes")
    assert not out.exists()


def test_masks_of_the_model_classes_pass(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    report = export_model(tiny_checkpoint[0], out, ExportOptions(calib=str(_folder(tmp_path / "two", (1,))),
                                                                 val_images=2), progress=False)
    assert report["verification"]["count"] == 2 and (out / "model.onnx").is_file()


@pytest.mark.parametrize("options, flag", [
    (dict(search_img_size=250), "--search-img-size 250"),  # no INT8 search runs: checked all the same
    (dict(int8=True, int8_search=False, search_img_size=250), "--search-img-size 250"),
    (dict(formats="ort", fixed_img_size=250), "--fixed-img-size 250"),
    (dict(img_size=250), "--img-size 250"),
])
def test_image_sides_are_checked_before_anything_is_written(tiny_checkpoint, tmp_path, options, flag):
    out = tmp_path / "out"
    with pytest.raises(UserError, match=f"{flag} is not a multiple of 8"):
        export_model(tiny_checkpoint[0], out, ExportOptions(**options), progress=False)
    assert not out.exists()


def test_auto_refuses_a_fixed_side_other_than_the_one_it_times_at(tiny_checkpoint, tmp_path):
    with pytest.raises(UserError, match="--fixed-img-size 128 differs from the side --formats auto times .*256 px"):
        export_model(tiny_checkpoint[0], tmp_path / "out", ExportOptions(formats="auto", fixed_img_size=128),
                     progress=False)
    assert not (tmp_path / "out").exists()


def test_search_img_size_no_longer_sizes_the_fixed_size_files(capsys):
    from edgeunet.cli import main

    litert = ExportOptions(formats="litert", search_img_size=128)
    assert (litert.search_side(8), litert.fixed_side(8)) == (128, 256)
    assert ExportOptions(formats="litert", fixed_img_size=96).fixed_side(8) == 96
    assert ExportOptions(formats="litert", img_size=64).fixed_side(8) == 64
    assert ExportOptions(formats="auto", search_img_size=128).fixed_side(8) == 128  # auto times files at one side
    assert ExportOptions(formats="litert").fixed_side(24) == 240  # 256 rounded down to the size multiple
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "--fixed-img-size PX" in capsys.readouterr().out  # the flag comes from the ExportOptions field


def test_ort_export_shows_no_library_lines(tiny_checkpoint, tmp_path, capfd):
    handler = logging.StreamHandler(sys.stderr)  # as `edgeunet` configures logging: records reach the terminal
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    capfd.readouterr()
    try:
        export_model(tiny_checkpoint[0], tmp_path / "out",
                     ExportOptions(int8=True, int8_search=False, formats="ort", calib_images=2, search_images=2,
                                   val_images=2), progress=True)
    finally:
        logging.getLogger().removeHandler(handler)
    captured = capfd.readouterr()
    lines = [line.strip() for line in (captured.out + captured.err).splitlines()]
    assert (tmp_path / "out" / "model.int8.ort").is_file()
    assert "ort fp32" not in lines and "ort int8" not in lines, lines
    assert not [line for line in lines if "Created config in" in line or "ort_format_model" in line], lines
