"""``edgeunet predict`` with a 3-D model: volumes in, masks of the same format out, montages, folders, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeunet.errors import UserError
from edgeunet.runtime.volume_files import read_volume, write_volume
from tests.badinput import assert_user_error, run_cli

pytest.importorskip("torch", reason="building the fixture model needs the train extra")


@pytest.fixture(scope="module")
def model3d():
    from tests.tiny3d import onnx_3d

    return onnx_3d()


@pytest.fixture(scope="module")
def volume():
    from tests.tiny3d import volumes

    return volumes(1, seed=5)[0][0]


def _spaced_like(volume):
    from edgeunet.runtime.volume_files import Volume, spacing_affine

    return Volume(volume, spacing_affine((2.0, 0.5, 0.25)), spacing=(2.0, 0.5, 0.25))


def test_predict_writes_each_format_like_its_input(tmp_path, model3d, volume):
    pytest.importorskip("nibabel")
    from edgeunet.runtime import Segmenter, predict_files

    src = tmp_path / "in"
    src.mkdir()
    import nibabel

    affine = np.diag([0.25, 0.5, 2.0, 1.0])
    affine[:3, 3] = (10.0, -5.0, 3.0)
    image = nibabel.Nifti1Image(volume.transpose(2, 1, 0), affine)  # nibabel's (i, j, k) = (W, H, D)
    image.header["descrip"] = b"scanner 7"
    nibabel.save(image, str(src / "scan.nii.gz"))
    write_volume(src / "stack.tif", volume, like=_spaced_like(volume))
    np.save(src / "raw.npy", volume)
    seg = Segmenter(model3d, threads=1, tile=16)
    summary = predict_files(seg, [src], tmp_path / "out", overlays=True)
    assert summary["images"] == 3 and not summary["failed"]
    expected = seg(volume)
    for name in ("scan.nii.gz", "stack.tif", "raw.npy"):
        out = read_volume(tmp_path / "out" / name)
        np.testing.assert_array_equal(out.array, expected)
    nifti = read_volume(tmp_path / "out" / "scan.nii.gz")
    np.testing.assert_allclose(nifti.affine, affine)
    assert nifti.array.dtype == np.uint8 and bytes(nifti.header["descrip"]).startswith(b"scanner 7")
    np.testing.assert_allclose(read_volume(tmp_path / "out" / "stack.tif").spacing, (2.0, 0.5, 0.25), rtol=1e-4)
    picture = np.asarray(Image.open(tmp_path / "out" / "scan_overlay.png"))
    assert picture.ndim == 3 and picture.shape[0] == volume.shape[1] and picture.shape[1] > 3 * volume.shape[2]


def test_predict_cli_goes_on_past_a_bad_volume(tmp_path, model3d, volume):
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "good.npy", volume)
    (src / "broken.npy").write_bytes(b"not a numpy file")
    (src / "notes.txt").write_text("x")
    result = run_cli("predict", str(model3d), str(src), "--out", str(tmp_path / "out"), "--tile", "16",
                     "--threads", "1", "--no-progress")
    assert result.returncode == 1, result.stderr
    assert "broken.npy" in result.stderr and "segmented 1 image(s)" in result.stdout
    assert "1 non-volume file" in result.stdout
    assert read_volume(tmp_path / "out" / "good.npy").shape == volume.shape
    assert not (tmp_path / "out" / "broken.npy").exists()


def test_3d_model_given_a_2d_image_file_is_a_user_error(tmp_path, model3d):
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "cells.png")
    result = run_cli("predict", str(model3d), str(tmp_path / "cells.png"), "--out", str(tmp_path / "out"))
    assert_user_error(result, "cells.png is a 2-D image and this is a 3-D model", "2-D model")


def test_2d_model_given_a_nifti_volume_is_a_user_error(tmp_path, runtime_models):
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    result = run_cli("predict", str(runtime_models["dynamic"]), str(tmp_path / "scan.nii.gz"),
                     "--out", str(tmp_path / "out"))
    assert_user_error(result, "scan.nii.gz is a volume and this is a 2-D model", "3-D model")


def test_3d_model_given_a_2d_array_raises(model3d):
    from edgeunet.runtime import Segmenter

    with pytest.raises(UserError, match="2-D image"):
        Segmenter(model3d, threads=1)(np.zeros((16, 16), np.float32))
