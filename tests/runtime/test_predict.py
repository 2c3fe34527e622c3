"""``edgeunet predict`` and the runtime's image files: inputs, masks, overlays, errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from edgeunet.cli import predict as predict_cli
from edgeunet.data.synthetic import synthetic_sample
from edgeunet.runtime import Segmenter, collect_inputs, overlay, predict_files, read_image, write_mask
from edgeunet.runtime.predict import PALETTE, output_paths


@pytest.fixture(scope="module")
def seg(runtime_model) -> Segmenter:
    return Segmenter(runtime_model, tile=64)


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """Three 16-bit PNGs (one larger than a 64 px tile), a TIFF and a non-image file."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, size in enumerate([48, 56, 96]):
        Image.fromarray(synthetic_sample(i, size=size, seed=5)[0]).save(folder / f"cell{i}.png")
    tifffile.imwrite(folder / "stack.tif", synthetic_sample(3, size=40, seed=5)[0])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "sub").mkdir()
    return folder


def test_folders_are_scanned_for_images_sorted_and_not_recursively(image_dir):
    assert [p.name for p in collect_inputs([image_dir])] == ["cell0.png", "cell1.png", "cell2.png", "stack.tif"]


def test_a_non_image_file_is_named(image_dir):
    with pytest.raises(ValueError, match=r"notes.txt is not an image file: give \.png"):
        collect_inputs([image_dir / "notes.txt"])


def test_a_missing_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png does not exist"):
        collect_inputs([tmp_path / "nothing.png"])


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no images"):
        collect_inputs([tmp_path])


def test_inputs_with_the_same_stem_are_refused(tmp_path):
    inputs = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.tif"]
    with pytest.raises(ValueError, match="would both be written to .*x.png: predict them into separate --out folders"):
        output_paths(inputs, tmp_path / "out")


def test_writing_over_an_input_is_refused(image_dir):
    with pytest.raises(ValueError, match="would overwrite an input image: choose another --out folder"):
        output_paths(collect_inputs([image_dir]), image_dir)


def test_masks_are_written_as_class_ids_equal_to_the_segmenter(seg, image_dir, tmp_path):
    out = tmp_path / "out"
    summary = predict_files(seg, [image_dir], out)
    assert summary["images"] == 4 and summary["mean_ms"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["cell0.png", "cell1.png", "cell2.png", "stack.png"]
    for source in collect_inputs([image_dir]):
        written = np.asarray(Image.open(out / f"{source.stem}.png"))
        assert written.dtype == np.uint8
        np.testing.assert_array_equal(written, seg(read_image(source)))


def test_overlays_are_rgb_pictures_next_to_the_masks(seg, image_dir, tmp_path):
    out = tmp_path / "out"
    predict_files(seg, [image_dir / "cell2.png"], out, overlays=True)
    picture = np.asarray(Image.open(out / "cell2_overlay.png"))
    assert picture.shape == (96, 96, 3) and picture.dtype == np.uint8
    assert sorted(p.name for p in out.iterdir()) == ["cell2.png", "cell2_overlay.png"]


def test_an_unreadable_image_is_named(seg, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match=r"cannot read .*broken.png: not a valid .png file"):
        predict_files(seg, [broken], tmp_path / "out")
    assert not (tmp_path / "out" / "broken.png").exists()


def test_an_image_the_model_cannot_take_is_named(seg, tmp_path):
    rgb = tmp_path / "color.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(rgb)
    with pytest.raises(ValueError, match=r"color.png: the image has 3 channel\(s\) but the model takes 1"):
        predict_files(seg, [rgb], tmp_path / "out")


def test_overlay_colors_only_the_foreground_and_outlines_it():
    image = np.full((20, 20), 100, np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    picture = overlay(image, mask)
    assert (picture[0, 0] == 100).all()  # background keeps the image
    assert (picture[5, 5] == PALETTE[1]).all()  # the border takes the class color
    inside = picture[10, 10].astype(int)
    assert inside[0] > 100 and inside[1] < 100  # blended toward red


def test_image_files_round_trip_in_their_native_dtype(tmp_path):
    gray16 = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000
    Image.fromarray(gray16).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", gray16.astype(np.float32))
    np.save(tmp_path / "c.npy", np.zeros((4, 6, 3), np.uint8))
    a, b, c = (read_image(tmp_path / n) for n in ("a.png", "b.tif", "c.npy"))
    assert a.dtype == np.uint16 and np.array_equal(a, gray16)
    assert b.dtype == np.float32 and np.array_equal(b, gray16)
    assert c.shape == (4, 6, 3) and c.dtype == np.uint8


def test_masks_are_written_atomically_as_raw_ids(tmp_path):
    mask = np.array([[0, 1], [2, 3]], np.int64)
    write_mask(tmp_path / "m.png", mask)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), mask)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temporary left behind


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeunet")
    predict_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_writes_masks_and_prints_a_summary(runtime_model, image_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = _parser().parse_args(["predict", runtime_model, str(image_dir / "cell0.png"), str(image_dir / "cell2.png"),
                                 "--out", str(out), "--overlay", "--tile", "64", "--threads", "1"])
    assert args.func(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cell0.png", "cell0_overlay.png", "cell2.png", "cell2_overlay.png"]
    assert "segmented 2 image(s) into masks and overlays in" in capsys.readouterr().out


def test_cli_runs_as_a_module(runtime_model, image_dir, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "edgeunet", "predict", runtime_model, str(image_dir),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "segmented 4 image(s)" in done.stdout
    assert len(list(out.glob("*.png"))) == 4


def test_cli_reports_a_bad_input_in_one_line(runtime_model, tmp_path, capsys):
    from edgeunet.cli import main

    assert main(["predict", runtime_model, str(tmp_path / "missing.png"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgeunet predict: error:") and "missing.png does not exist" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written for a failed run


def test_folder_entries_passed_over_are_reported_with_the_reason(image_dir):
    from edgeunet.runtime.predict import scan_inputs

    images, skipped = scan_inputs([image_dir])
    assert [p.name for p in images] == ["cell0.png", "cell1.png", "cell2.png", "stack.tif"]
    assert {p.name: reason for p, reason in skipped} == {
        ".hidden.png": "hidden file", "notes.txt": "non-image file", "sub": "sub-folder not scanned"}


def test_going_on_past_a_bad_image_reports_it_and_writes_the_others(seg, image_dir, tmp_path):
    (image_dir / "broken.png").write_bytes(b"\x89PNG but not really")
    seen = []
    out = tmp_path / "out"
    summary = predict_files(seg, [image_dir], out, overlays=True, stop_on_error=False,
                            on_error=lambda path, message: seen.append((path.name, message)))
    assert summary["images"] == 4 and len(summary["masks"]) == 4
    assert [f["path"] for f in summary["failed"]] == [str(image_dir / "broken.png")]
    assert seen == [("broken.png", summary["failed"][0]["reason"])]
    assert seen[0][1].startswith(f"{image_dir / 'broken.png'}: cannot read it: not a valid .png file")
    assert not (out / "broken.png").exists() and not (out / "broken_overlay.png").exists()
    assert len(summary["skipped"]) == 3


def test_cli_summary_names_failures_and_skips(runtime_model, image_dir, tmp_path, capsys):
    (image_dir / "broken.png").write_bytes(b"not a png")
    args = _parser().parse_args(["predict", runtime_model, str(image_dir), "--out", str(tmp_path / "out")])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert "broken.png: cannot read it" in captured.err
    assert "segmented 4 image(s)" in captured.out
    assert ("; 1 failed (listed above); 3 skipped (1 hidden file, 1 non-image file, 1 sub-folder not scanned)"
            in captured.out)
