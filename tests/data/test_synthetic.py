"""Built-in synthetic nuclei: deterministic, exact masks, debris as background, files on disk."""

import argparse
import subprocess
import sys

import numpy as np
import pytest

from edgeunet.cli import data as data_cli
from edgeunet.data.io import read_image, read_mask
from edgeunet.data.sources import load_samples
from edgeunet.data.synthetic import (
    SyntheticLayout,
    render_layout,
    synthetic_class_names,
    synthetic_layout,
    synthetic_sample,
    write_synthetic,
)
from edgeunet.errors import UserError


def test_same_seed_and_index_give_identical_samples():
    a, b = synthetic_sample(3, size=64, seed=7), synthetic_sample(3, size=64, seed=7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_other_index_or_seed_gives_other_samples():
    image = synthetic_sample(3, size=64, seed=7)[0]
    assert not np.array_equal(image, synthetic_sample(4, size=64, seed=7)[0])
    assert not np.array_equal(image, synthetic_sample(3, size=64, seed=8)[0])


def test_sample_is_12bit_uint16_with_uint8_mask():
    image, mask = synthetic_sample(0, size=96)
    assert image.shape == mask.shape == (96, 96)
    assert image.dtype == np.uint16 and image.max() <= 4095
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_mask_is_the_drawn_geometry():
    layout = synthetic_layout(5, size=128)
    _, mask = synthetic_sample(5, size=128)
    assert np.array_equal(mask, render_layout(layout, 128)[1])
    top = layout.nuclei[-1]  # drawn last, so nothing covers its center
    cy, cx = int(top[0]), int(top[1])
    if 0 <= cy < 128 and 0 <= cx < 128:
        assert mask[cy, cx] == int(top[6])


def test_circle_mask_has_the_circle_area():
    layout = SyntheticLayout(np.array([[32.0, 32.0, 10.0, 10.0, 0.3, 1.0, 1.0]]), np.zeros((0, 4)))
    _, mask = render_layout(layout, 64)
    assert abs(int(mask.sum()) - np.pi * 100) < 12
    assert np.array_equal(mask, mask.T) and np.array_equal(mask, mask[::-1, ::-1])


def test_nuclei_are_brighter_than_background():
    image, mask = synthetic_sample(1, size=128)
    inside, outside = np.median(image[mask > 0]), np.median(image[mask == 0])
    assert inside - outside > 2 * image[mask == 0].std()  # clear contrast despite noise
    assert inside > 2 * outside


def test_debris_is_bright_but_class_0():
    seen = 0
    for index in range(4):
        layout = synthetic_layout(index, size=128)
        image, mask = synthetic_sample(index, size=128)
        background = np.median(image[mask == 0])
        for cy, cx, radius, _ in layout.debris:
            y, x = int(cy), int(cx)
            if radius > 1.2 and mask[max(0, y - 4):y + 5, max(0, x - 4):x + 5].max() == 0:
                seen += 1
                assert mask[y, x] == 0 and image[y, x] > background * 1.5
    assert seen >= 3


def test_more_classes_add_elongated_and_mitotic_nuclei():
    found = set()
    for index in range(4):
        found |= set(np.unique(synthetic_sample(index, size=128, num_classes=4)[1]).tolist())
    assert found == {0, 1, 2, 3}
    assert synthetic_class_names(3) == ["background", "nucleus", "elongated"]


def test_unsupported_class_count_names_the_range():
    with pytest.raises(UserError, match="synthetic data has 2 to 4 classes, not 5: pick --num-classes between 2 and 4"):
        synthetic_sample(0, num_classes=5)


def test_splits_use_distinct_images():
    train, val, calib = (load_samples("synthetic", n=1, size=32, split=s)[0] for s in ("train", "val", "calib"))
    assert val[0] == "synthetic-val-0000"
    assert not np.array_equal(train[1], val[1]) and not np.array_equal(val[1], calib[1])
    assert np.array_equal(train[1], synthetic_sample(0, size=32, seed=0)[0])


def test_write_synthetic_writes_pairs_and_class_names(tmp_path):
    out = write_synthetic(tmp_path / "ds", n=3, size=32, num_classes=3)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["synth_0000.png", "synth_0001.png", "synth_0002.png"]
    image, mask = synthetic_sample(1, size=32, num_classes=3)
    assert np.array_equal(read_image(out / "images" / "synth_0001.png"), image)
    assert np.array_equal(read_mask(out / "masks" / "synth_0001.png"), mask)
    assert (out / "classes.txt").read_text().split() == ["background", "nucleus", "elongated"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary folder left


def test_write_synthetic_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists and is not empty: choose another folder or remove it"):
        write_synthetic(tmp_path, n=1, size=16)


def test_cli_synth_in_process(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="edgeunet")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "synth", str(tmp_path / "d"), "--n", "2", "--size", "16", "--num-classes", "4"])
    assert args.func(args) == 0
    assert "wrote 2 synthetic 16x16 images" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "masks").iterdir())) == 2


@pytest.mark.slow
def test_cli_synth_then_check_as_a_subprocess(tmp_path):
    out = tmp_path / "d"
    synth = subprocess.run([sys.executable, "-m", "edgeunet", "data", "synth", str(out), "--n", "2", "--size", "16"],
                           capture_output=True, text=True, timeout=120)
    assert synth.returncode == 0, synth.stderr
    check = subprocess.run([sys.executable, "-m", "edgeunet", "data", "check", str(out), "--num-classes", "2"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "2 image/mask pairs, no problems" in check.stdout


def test_write_synthetic_gives_files_and_folders_the_umask_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = write_synthetic(tmp_path / "ds", n=2, size=16)
    finally:
        os.umask(old)
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert [mode(out), mode(out / "images"), mode(out / "masks")] == [0o755, 0o755, 0o755]
    files = [out / "classes.txt", *(out / "images").iterdir(), *(out / "masks").iterdir()]
    assert len(files) == 5 and {mode(path) for path in files} == {0o644}


def test_cli_synth_takes_num_images_and_img_size(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="edgeunet")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "synth", str(tmp_path / "d"), "--num-images", "3", "--img-size", "24"])
    assert args.func(args) == 0
    assert "wrote 3 synthetic 24x24 images" in capsys.readouterr().out
    assert read_image(tmp_path / "d" / "images" / "synth_0002.png").shape == (24, 24)
