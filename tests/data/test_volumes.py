"""Volume files (NIfTI, TIFF stacks, .npy) and synthetic volumes."""

from __future__ import annotations

import gzip
import importlib.util
import sys

import numpy as np
import pytest
import tifffile
from badinput import leftovers

from edgeunet.data.synthetic import synthetic_volume, write_synthetic_volumes
from edgeunet.errors import MissingExtraError, MissingFileError, UserError
from edgeunet.runtime.imageio import ImageReadError
from edgeunet.runtime.volume_files import read_volume, write_volume

if importlib.util.find_spec("nibabel"):
    import nibabel as nib
# nibabel comes with the "volumes" extra (and "dev"); TIFF and .npy need nothing beyond the base install.
needs_nibabel = pytest.mark.skipif(not importlib.util.find_spec("nibabel"), reason="pip install 'edgeunet[volumes]'")

# An oblique affine with voxel sizes 0.25 (x), 0.5 (y), 2 (z): axes permuted, one flipped, an origin.
AFFINE = np.array([[0.0, 0.0, -2.0, 10.0], [0.0, 0.5, 0.0, -3.0], [0.25, 0.0, 0.0, 7.0], [0.0, 0.0, 0.0, 1.0]])


def xyz_data(shape=(7, 6, 5), dtype=np.uint16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(dtype)


def save_nifti(path, data, affine=AFFINE, **header):
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    for key, value in header.items():
        image.header[key] = value
    nib.save(image, path)
    return path


@needs_nibabel
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_reads_as_d_h_w_with_the_files_affine_and_spacing(tmp_path, suffix):
    data = xyz_data()
    volume = read_volume(save_nifti(tmp_path / f"scan{suffix}", data))
    assert volume.shape == (5, 6, 7) and volume.array.dtype == np.uint16
    assert volume.array[4, 3, 2] == data[2, 3, 4]  # array[d, h, w] is nibabel's data[w, h, d]
    assert np.array_equal(volume.affine, AFFINE) and volume.spacing == (2.0, 0.5, 0.25) and volume.unit == "mm"
    assert volume.source_format == suffix[1:]
    d, h, w = 4, 3, 2
    assert np.allclose(volume.affine_dhw @ [d, h, w, 1], AFFINE @ [w, h, d, 1])


@needs_nibabel
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_round_trip_keeps_array_affine_and_header(tmp_path, suffix):
    volume = read_volume(save_nifti(tmp_path / f"scan{suffix}", xyz_data(), descrip=b"edgeunet test"))
    again = read_volume(write_volume(tmp_path / f"copy{suffix}", volume.array, like=volume))
    assert np.array_equal(again.array, volume.array) and again.array.dtype == volume.array.dtype
    assert np.array_equal(again.affine, volume.affine) and again.spacing == volume.spacing
    for key in ("dim", "pixdim", "qform_code", "sform_code", "srow_x", "descrip", "xyzt_units"):
        assert np.array_equal(again.header[key], volume.header[key]), key
    is_gzip = (tmp_path / f"copy{suffix}").read_bytes()[:2] == b"\x1f\x8b"
    assert is_gzip == (suffix == ".nii.gz")  # the temporary name did not change the format
    assert not leftovers(tmp_path)


@needs_nibabel
def test_mask_written_like_a_scaled_float_image_keeps_its_labels(tmp_path):
    scan = save_nifti(tmp_path / "ct.nii.gz", xyz_data(dtype=np.int16), scl_slope=2.0, scl_inter=-1024.0,
                      cal_min=-1000.0, cal_max=3000.0)
    volume = read_volume(scan)
    assert volume.array.dtype.kind == "f"  # nibabel applies the scaling
    mask = (volume.array > 2000).astype(np.uint8)
    written = nib.load(write_volume(tmp_path / "mask.nii.gz", mask, like=volume))
    assert written.get_data_dtype() == np.uint8 and written.header["cal_max"] == 0
    assert np.array_equal(read_volume(tmp_path / "mask.nii.gz").array, mask)
    assert np.array_equal(written.affine, AFFINE)


@needs_nibabel
def test_multichannel_nifti_is_d_h_w_c(tmp_path):
    data = xyz_data((7, 6, 5, 2), np.float32)
    volume = read_volume(save_nifti(tmp_path / "two.nii.gz", data))
    assert volume.array.shape == (5, 6, 7, 2) and volume.channels == 2
    assert np.array_equal(read_volume(write_volume(tmp_path / "out.nii.gz", volume.array, like=volume)).array,
                          volume.array)


def test_imagej_stack_spacing_is_read_and_a_mask_keeps_it(tmp_path):
    stack = xyz_data((5, 6, 7))  # (Z, Y, X)
    tifffile.imwrite(tmp_path / "stack.tif", stack, imagej=True, resolution=(1 / 0.25, 1 / 0.5),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    volume = read_volume(tmp_path / "stack.tif")
    assert np.array_equal(volume.array, stack) and volume.spacing == (2.0, 0.5, 0.25) and volume.unit == "um"
    mask = (stack > 2000).astype(np.uint8)
    again = read_volume(write_volume(tmp_path / "mask.tif", mask, like=volume))
    assert np.array_equal(again.array, mask) and again.spacing == volume.spacing and again.unit == "um"
    with tifffile.TiffFile(tmp_path / "mask.tif") as tif:
        assert tif.is_imagej  # Fiji opens it as a stack with the same calibration


def test_tiff_hyperstack_channels_and_plain_stacks(tmp_path):
    hyper = xyz_data((4, 2, 6, 7))  # (Z, C, Y, X)
    tifffile.imwrite(tmp_path / "hyper.tif", hyper, imagej=True, metadata={"axes": "ZCYX"})
    assert np.array_equal(read_volume(tmp_path / "hyper.tif").array, np.moveaxis(hyper, 1, 3))
    plain = xyz_data((6, 5, 7), np.int32)
    tifffile.imwrite(tmp_path / "plain.tif", plain, metadata={"axes": "ZYX", "spacing": 3.0})
    volume = read_volume(tmp_path / "plain.tif")
    assert np.array_equal(volume.array, plain) and volume.spacing[0] == 3.0
    tifffile.imwrite(tmp_path / "page.tif", plain[0])
    assert read_volume(tmp_path / "page.tif").shape == (1, 5, 7)
    channels = np.stack([plain, plain], axis=-1).astype(np.float32)
    assert np.array_equal(read_volume(write_volume(tmp_path / "c.tiff", channels)).array, channels)


@needs_nibabel
def test_npy_round_trip_and_nifti_spacing_carried_into_tiff(tmp_path):
    array = xyz_data((3, 4, 5, 2))
    assert np.array_equal(read_volume(write_volume(tmp_path / "v.npy", array)).array, array)
    volume = read_volume(save_nifti(tmp_path / "scan.nii.gz", xyz_data()))
    assert read_volume(write_volume(tmp_path / "as.tif", volume.array, like=volume)).spacing == (2.0, 0.5, 0.25)


@needs_nibabel
def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = write_volume(tmp_path / "mask.nii.gz", np.zeros((2, 3, 4), np.uint8))
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        write_volume(target, np.ones((2, 3, 4), np.uint8))
    assert target.read_bytes() == before and not leftovers(tmp_path)


@pytest.mark.parametrize("name, content, exc, message", [
    ("missing.nii.gz", None, MissingFileError, "missing.nii.gz does not exist"),
    ("scan.mha", b"x", UserError, r"scan.mha: unsupported volume file type: use one of .nii.gz, .nii"),
    ("cut.nii.gz", "truncated", ImageReadError, r"cannot read .*cut.nii.gz: not a readable NIfTI file .*complete"),
    ("junk.nii", b"not a nifti header" * 30, ImageReadError, r"junk.nii: not a readable NIfTI file"),
    ("junk.tif", b"II*\x00garbage", ImageReadError, r"junk.tif: not a readable TIFF file"),
    ("flat.npy", "2d", ImageReadError, r"flat.npy: shape \(4, 5\) is not a \(D, H, W\)"),
    ("junk.npy", b"\x93NUMPY garbage", ImageReadError, r"junk.npy: not a readable .npy file"),
])
def test_bad_files_name_the_file_and_the_fix(tmp_path, name, content, exc, message):
    if ".nii" in name and not importlib.util.find_spec("nibabel"):
        pytest.skip("needs nibabel")
    path = tmp_path / name
    if content == "truncated":
        save_nifti(tmp_path / "whole.nii.gz", xyz_data((20, 20, 20)))
        path.write_bytes((tmp_path / "whole.nii.gz").read_bytes()[:400])
    elif content == "2d":
        np.save(path, np.zeros((4, 5)))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(exc, match=message):
        read_volume(path)


def test_time_series_tiff_is_not_a_volume(tmp_path):
    tifffile.imwrite(tmp_path / "movie.tif", xyz_data((3, 4, 5, 6)), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(ImageReadError, match="save one volume per file"):
        read_volume(tmp_path / "movie.tif")


def test_nifti_without_nibabel_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "scan.nii.gz").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "nibabel", None)  # import nibabel now raises ImportError
    with pytest.raises(MissingExtraError, match=r"nibabel is not installed: run `pip install 'edgeunet\[volumes\]'`"):
        read_volume(tmp_path / "scan.nii.gz")


@needs_nibabel
def test_mask_of_another_shape_is_refused(tmp_path):
    volume = read_volume(save_nifti(tmp_path / "scan.nii.gz", xyz_data()))
    with pytest.raises(UserError, match=r"shape \(5, 6, 8\) differs from the input's \(5, 6, 7\)"):
        write_volume(tmp_path / "mask.nii.gz", np.zeros((5, 6, 8), np.uint8), like=volume)


def test_synthetic_volume_is_deterministic_and_12_bit():
    volume, mask = synthetic_volume(3, (16, 32, 24), seed=7)
    again, again_mask = synthetic_volume(3, (16, 32, 24), seed=7)
    assert np.array_equal(volume, again) and np.array_equal(mask, again_mask)
    assert volume.shape == mask.shape == (16, 32, 24) and volume.dtype == np.uint16 and mask.dtype == np.uint8
    assert volume.max() <= 4095
    assert not np.array_equal(synthetic_volume(4, (16, 32, 24), seed=7)[1], mask)
    assert not np.array_equal(synthetic_volume(3, (16, 32, 24), seed=8)[1], mask)


def test_synthetic_nuclei_fill_part_of_the_volume_and_are_brighter():
    for index in range(3):
        volume, mask = synthetic_volume(index, (32, 48, 48), seed=0)
        assert 0.08 < (mask > 0).mean() < 0.45
        assert volume[mask > 0].mean() > 1.8 * volume[mask == 0].mean()


def test_synthetic_volumes_have_the_requested_classes():
    found = set()
    for index in range(4):
        found |= set(np.unique(synthetic_volume(index, (24, 48, 48), seed=1, num_classes=4)[1]).tolist())
    assert found == {0, 1, 2, 3}


@pytest.mark.parametrize("size, message", [((4, 32, 32), "too small: use at least 8"), (32, "three sides")])
def test_bad_synthetic_size_is_named(size, message):
    with pytest.raises(UserError, match=message):
        synthetic_volume(0, size)


@pytest.mark.parametrize("fmt, suffix", [pytest.param("nii.gz", ".nii.gz", marks=needs_nibabel), ("tiff", ".tif")])
def test_write_synthetic_volumes_writes_images_masks_and_classes(tmp_path, fmt, suffix):
    out = write_synthetic_volumes(tmp_path / "vol", n=2, size=(8, 16, 16), seed=2, fmt=fmt, num_classes=3)
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"synth_0000{suffix}", f"synth_0001{suffix}"]
    volume, mask = synthetic_volume(1, (8, 16, 16), seed=2, num_classes=3)
    assert np.array_equal(read_volume(out / "images" / f"synth_0001{suffix}").array, volume)
    assert np.array_equal(read_volume(out / "masks" / f"synth_0001{suffix}").array, mask)
    assert (out / "classes.txt").read_text().split() == ["background", "nucleus", "elongated"]
    assert not leftovers(tmp_path)
    with pytest.raises(UserError, match="already exists and is not empty"):
        write_synthetic_volumes(out, n=1, size=(8, 16, 16))
    with pytest.raises(UserError, match="unknown volume format 'mha'"):
        write_synthetic_volumes(tmp_path / "other", n=1, fmt="mha")


@needs_nibabel
def test_gzip_is_not_confused_with_its_content(tmp_path):
    """A .nii.gz holding a gzip stream of garbage is refused with the file named."""
    (tmp_path / "bad.nii.gz").write_bytes(gzip.compress(b"garbage" * 100))
    with pytest.raises(ImageReadError, match="bad.nii.gz: not a readable NIfTI file"):
        read_volume(tmp_path / "bad.nii.gz")
