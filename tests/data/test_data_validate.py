"""Folder data sets: every problem is reported with its file; sources read folders and splits."""

import argparse

import numpy as np
import pytest

from edgeunet.cli import data as data_cli
from edgeunet.data.io import write_image, write_mask
from edgeunet.data.sources import dataset_folder, dataset_info, load_samples
from edgeunet.data.validate import check_folder, validate_folder
from edgeunet.errors import UserError


def _pair(root, name, image=None, mask=None, image_suffix=".png", mask_suffix=".png"):
    image = np.full((8, 8), 50, np.uint8) if image is None else image
    mask = np.eye(8, dtype=np.uint8) if mask is None else mask
    write_image(root / "images" / f"{name}{image_suffix}", image)
    if mask_suffix == ".npy":
        (root / "masks").mkdir(exist_ok=True)
        np.save(root / "masks" / f"{name}.npy", mask)
    else:
        write_mask(root / "masks" / f"{name}{mask_suffix}", mask)


def _messages(folder, num_classes=None):
    return [str(p) for p in validate_folder(folder, num_classes).problems]


def test_clean_folder_has_no_problems_and_reports_facts(tmp_path):
    _pair(tmp_path, "a")
    _pair(tmp_path, "b", image=np.zeros((8, 8), np.uint16), mask=np.full((8, 8), 2, np.uint8))
    report = validate_folder(tmp_path)
    assert report.problems == []
    assert [p[0] for p in report.pairs] == ["a", "b"]
    assert report.sizes == {(8, 8): 2} and report.channels == {1: 2}
    assert report.dtypes == {"uint8": 1, "uint16": 1}
    assert report.num_classes == 3 and report.in_channels == 1


def test_missing_folder(tmp_path):
    assert _messages(tmp_path / "nope") == [f"{tmp_path / 'nope'}: folder not found: pass a folder holding "
                                            "images/ and masks/ (or make one with `edgeunet data synth DIR`)"]


def test_missing_masks_subfolder(tmp_path):
    (tmp_path / "images").mkdir()
    assert _messages(tmp_path) == [f"masks/: subfolder missing: put the masks in {tmp_path / 'masks'}"]


def test_empty_subfolders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    messages = _messages(tmp_path)
    assert messages[0].startswith("images/: no image files (.png")
    assert messages[1].startswith("masks/: no mask files (.png")


def test_image_without_mask_and_mask_without_image(tmp_path):
    _pair(tmp_path, "a")
    write_image(tmp_path / "images" / "lonely.png", np.zeros((8, 8), np.uint8))
    write_mask(tmp_path / "masks" / "orphan.png", np.zeros((8, 8), np.uint8))
    assert _messages(tmp_path) == ["images/lonely.png: no mask (add masks/lonely.png)",
                                   "masks/orphan.png: no image (add images/orphan.png or delete the mask)"]


def test_duplicate_names(tmp_path):
    _pair(tmp_path, "a")
    write_image(tmp_path / "images" / "a.tif", np.zeros((8, 8), np.uint8))
    assert _messages(tmp_path) == ["images/a.tif: same name as images/a.png (keep one)"]


def test_shape_mismatch(tmp_path):
    _pair(tmp_path, "b", image=np.zeros((64, 64), np.uint8), mask=np.zeros((32, 32), np.uint8))
    assert _messages(tmp_path) == ["images/b.png: image 64x64 vs mask 32x32 (masks/b.png): "
                                   "a mask must match its image's height and width"]


def test_class_id_above_num_classes(tmp_path):
    _pair(tmp_path, "c", mask=np.full((8, 8), 5, np.uint8))
    assert _messages(tmp_path, num_classes=3) == ["masks/c.png: class id 5 >= num_classes 3 "
                                                  "(use --num-classes 6 or fix the mask)"]


def test_negative_class_id(tmp_path):
    _pair(tmp_path, "d", mask=np.full((8, 8), -1, np.int16), mask_suffix=".npy")
    assert _messages(tmp_path) == ["masks/d.npy: negative class id -1: class ids must be 0..num_classes-1"]


def test_unreadable_file(tmp_path):
    _pair(tmp_path, "a")
    (tmp_path / "images" / "e.png").write_bytes(b"garbage")
    write_mask(tmp_path / "masks" / "e.png", np.zeros((8, 8), np.uint8))
    [message] = _messages(tmp_path)
    assert message.startswith("images/e.png: not a valid .png file")


def test_mixed_channel_counts(tmp_path):
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    _pair(tmp_path, "f", image=np.zeros((8, 8, 3), np.uint8))
    assert _messages(tmp_path) == ["images/f.png: 3 channel(s) but most images have 1: "
                                   "give all images the same channel count"]


def test_classes_txt_disagreeing_with_num_classes(tmp_path):
    _pair(tmp_path, "a")
    (tmp_path / "classes.txt").write_text("background\ncell\n")
    assert _messages(tmp_path, num_classes=3) == ["classes.txt: lists 2 classes but num_classes is 3: make them agree"]


def test_check_folder_raises_one_line_with_the_count_and_the_rest(tmp_path):
    for i in range(7):
        write_image(tmp_path / "images" / f"x{i}.png", np.zeros((8, 8), np.uint8))
    write_mask(tmp_path / "masks" / "y.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(UserError) as info:
        check_folder(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"dataset {tmp_path} has 8 problems: images/x0.png: no mask (add masks/x0.png); ")
    assert message.endswith(f"(+3 more; run `edgeunet data check {tmp_path}` to list all)")


def test_dataset_info_uses_classes_txt(tmp_path):
    _pair(tmp_path, "a", image=np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "classes.txt").write_text("background\ncell\nmembrane\n")
    assert dataset_info(tmp_path) == {"num_classes": 3, "in_channels": 3,
                                      "class_names": ["background", "cell", "membrane"]}


def test_dataset_info_infers_classes_from_masks(tmp_path):
    _pair(tmp_path, "a", mask=np.full((8, 8), 3, np.uint8))
    assert dataset_info(tmp_path) == {"num_classes": 4, "in_channels": 1,
                                      "class_names": ["background", "class1", "class2", "class3"]}


def test_load_samples_reads_the_first_n_sorted(tmp_path):
    for name in ["c", "a", "b"]:
        _pair(tmp_path, name)
    samples = load_samples(tmp_path, n=2)
    assert [s[0] for s in samples] == ["a", "b"]
    assert samples[0][1].dtype == np.uint8 and samples[0][2].dtype == np.int64


def test_load_samples_on_a_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(UserError, match="folder not found: pass a folder holding images/ and masks/"):
        load_samples(tmp_path / "missing")


def test_train_val_layout_picks_the_split_folder(tmp_path):
    _pair(tmp_path / "train", "a")
    _pair(tmp_path / "val", "b")
    assert dataset_folder(tmp_path, "train") == tmp_path / "train"
    assert [s[0] for s in load_samples(tmp_path, split="val")] == ["b"]


def _run_cli(argv):
    parser = argparse.ArgumentParser(prog="edgeunet")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_check_prints_every_problem_and_exits_1(tmp_path, capsys):
    _pair(tmp_path, "a", mask=np.full((8, 8), 4, np.uint8))
    write_image(tmp_path / "images" / "b.png", np.zeros((8, 8), np.uint8))
    assert _run_cli(["data", "check", str(tmp_path), "--num-classes", "2"]) == 1  # problems found: exit 1 (was 2)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["images/b.png: no mask (add masks/b.png)",
                     "masks/a.png: class id 4 >= num_classes 2 (use --num-classes 5 or fix the mask)",
                     f"2 problem(s) in {tmp_path}"]


def test_cli_check_summarizes_a_clean_folder(tmp_path, capsys):
    _pair(tmp_path, "a")
    assert _run_cli(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}: 1 image/mask pairs, no problems" in out
    assert "sizes     8x8 (1)" in out and "classes   0 (87.5%), 1 (12.5%) of pixels; num_classes 2" in out


def test_nan_and_inf_pixels_are_problems(tmp_path):
    image = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    image[1, 1], image[2, 2] = np.nan, np.inf
    _pair(tmp_path, "a", image=image, image_suffix=".npy")
    assert _messages(tmp_path) == ["images/a.npy: 2 NaN/Inf pixel(s) of 64: replace them (e.g. np.nan_to_num) "
                                   "or remove the image"]


def test_constant_image_is_a_warning_not_a_problem(tmp_path):
    _pair(tmp_path, "a")  # every pixel 50
    report = validate_folder(tmp_path)
    assert report.problems == []
    assert [str(w) for w in report.warnings] == ["images/a.png: constant image (every pixel is 50): it shows "
                                                 "nothing to segment; check the file or remove it"]


def test_class_ids_that_skip_values_are_a_problem_without_classes_txt(tmp_path):
    varied = np.arange(64, dtype=np.uint8).reshape(8, 8)
    _pair(tmp_path, "a", image=varied)
    mask = np.zeros((8, 8), np.uint8)
    mask[0], mask[1] = 1, 7
    _pair(tmp_path, "b", image=varied, mask=mask)
    assert _messages(tmp_path) == ["masks/b.png: class id 7 (in 1 mask(s)) but no mask holds ids 2-6: renumber "
                                   "the classes 0..2 without gaps, or list all 8 class names in classes.txt"]
    (tmp_path / "classes.txt").write_text("\n".join(f"c{i}" for i in range(8)) + "\n")
    assert _messages(tmp_path) == []  # the names fix the class count: absent classes are allowed


def test_class_id_beyond_the_names_of_classes_txt(tmp_path):
    _pair(tmp_path, "a", mask=np.full((8, 8), 2, np.uint8))
    (tmp_path / "classes.txt").write_text("background\ncell\n")
    assert _messages(tmp_path) == ["masks/a.png: class id 2 but classes.txt names only 2 classes (ids 0..1): "
                                   "add the missing names to classes.txt or fix the mask"]


def test_channel_first_arrays_are_named_as_such(tmp_path):
    for name, shape in (("a", (1, 8, 8)), ("b", (3, 8, 8))):
        _pair(tmp_path, name)
        (tmp_path / "images" / f"{name}.png").unlink()
        np.save(tmp_path / "images" / f"{name}.npy", np.zeros(shape, np.float32))  # write_image refuses this shape
    fix = "looks channel-first (C, H, W): save as (H, W, C), e.g. np.moveaxis(image, 0, -1)"
    assert _messages(tmp_path) == [f"images/a.npy: shape (1, 8, 8) {fix}", f"images/b.npy: shape (3, 8, 8) {fix}"]


def test_truncated_png_is_a_problem(tmp_path):
    _pair(tmp_path, "a", image=np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)
    data = (tmp_path / "images" / "a.png").read_bytes()
    (tmp_path / "images" / "a.png").write_bytes(data[: len(data) // 2])
    [message] = _messages(tmp_path)
    assert message.startswith("images/a.png: not a valid .png file")


def test_report_counts_pixels_and_images_per_class_and_the_size_range(tmp_path):
    _pair(tmp_path, "a", image=np.zeros((8, 12), np.uint8), mask=np.zeros((8, 12), np.uint8))
    _pair(tmp_path, "b", image=np.zeros((16, 4), np.uint8), mask=np.ones((16, 4), np.uint8))
    _pair(tmp_path, "c")
    report = validate_folder(tmp_path)
    assert report.class_pixels == {0: 96 + 56, 1: 64 + 8} and report.class_images == {0: 2, 1: 2}
    assert report.size_range == ((8, 4), (16, 12)) and len(report.sizes) == 3


def test_cli_check_summary_lists_sizes_classes_and_warnings(tmp_path, capsys):
    _pair(tmp_path, "a")
    (tmp_path / "classes.txt").write_text("background\ncell\n")
    assert _run_cli(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "          height 8-8 px, width 8-8 px, 1 distinct size(s)" in out
    assert "          1 cell: 8 pixels in 1 of 1 masks" in out
    assert out[-1].startswith("warning   images/a.png: constant image")
