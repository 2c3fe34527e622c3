"""``edgeunet predict model.onnx scan.nii.gz --out DIR``: the mask NIfTI has the scan's shape and affine, read
back with nibabel itself (not edgeunet's reader), for a non-cubic volume with an oblique, shifted affine."""

from __future__ import annotations

import numpy as np
import pytest

from tests.badinput import run_cli

pytest.importorskip("torch", reason="building the fixture model needs the train extra")
nibabel = pytest.importorskip("nibabel")


def _oblique_affine() -> np.ndarray:
    """Voxel sizes 0.3 x 0.7 x 2.5 mm, rotated 20 degrees about the z axis, shifted."""
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.3, 0.7, 2.5])
    affine[:3, 3] = (-12.5, 40.0, 7.25)
    return affine


@pytest.mark.slow
def test_predict_cli_writes_a_nifti_mask_with_the_scans_shape_and_affine(tmp_path):
    from edgeunet.runtime import Segmenter
    from tests.tiny3d import onnx_3d, volumes

    volume = volumes(1, seed=7, size=(20, 28, 36))[0][0]  # (D, H, W), no side a multiple of the window
    affine = _oblique_affine()
    scan = tmp_path / "scan.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume.transpose(2, 1, 0), affine), str(scan))  # nibabel: (W, H, D)
    result = run_cli("predict", str(onnx_3d()), str(scan), "--out", str(tmp_path / "out"), "--tile", "16",
                     "--threads", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    mask = nibabel.load(str(tmp_path / "out" / "scan.nii.gz"))
    assert mask.shape == (36, 28, 20) == nibabel.load(str(scan)).shape
    np.testing.assert_allclose(mask.affine, affine, atol=1e-6)
    data = np.asarray(mask.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1}
    expected = Segmenter(onnx_3d(), threads=1, tile=16)(volume)
    np.testing.assert_array_equal(data.transpose(2, 1, 0), expected)
    assert 0 < expected.mean() < 1  # the tiny trained model finds nuclei and background
