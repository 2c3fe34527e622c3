"""Reading and writing images and masks in every supported format and dtype."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from edgeunet.data.io import ImageReadError, read_image, read_mask, write_image, write_mask


def _ramp(shape, dtype, top):
    values = np.linspace(0, top, num=int(np.prod(shape)))
    return values.reshape(shape).astype(dtype)


def test_png_8bit_gray_round_trip(tmp_path):
    image = _ramp((20, 30), np.uint8, 255)
    out = read_image(write_image(tmp_path / "a.png", image))
    assert out.dtype == np.uint8 and np.array_equal(out, image)


def test_png_16bit_gray_round_trip(tmp_path):
    image = _ramp((20, 30), np.uint16, 65535)
    out = read_image(write_image(tmp_path / "a.png", image))
    assert out.dtype == np.uint16 and np.array_equal(out, image)


def test_png_rgb_round_trip(tmp_path):
    image = _ramp((10, 12, 3), np.uint8, 255)
    out = read_image(write_image(tmp_path / "a.png", image))
    assert out.shape == (10, 12, 3) and np.array_equal(out, image)


def test_png_rgba_keeps_four_channels(tmp_path):
    image = _ramp((10, 12, 4), np.uint8, 255)
    assert read_image(write_image(tmp_path / "a.png", image)).shape == (10, 12, 4)


def test_palette_image_reads_as_rgb(tmp_path):
    Image.fromarray(_ramp((8, 8, 3), np.uint8, 255)).convert("P").save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8


def test_jpeg_gray_and_rgb_read_close_to_original(tmp_path):
    gray = np.full((16, 16), 120, np.uint8)
    rgb = np.zeros((16, 16, 3), np.uint8) + np.array([200, 100, 50], np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.jpg")
    Image.fromarray(rgb).save(tmp_path / "c.jpeg")
    out_gray, out_rgb = read_image(tmp_path / "g.jpg"), read_image(tmp_path / "c.jpeg")
    assert out_gray.shape == (16, 16) and abs(int(out_gray.mean()) - 120) <= 3
    assert out_rgb.shape == (16, 16, 3) and np.abs(out_rgb.mean(axis=(0, 1)) - [200, 100, 50]).max() <= 4


def test_tiff_16bit_round_trip(tmp_path):
    image = _ramp((20, 30), np.uint16, 4095)
    out = read_image(write_image(tmp_path / "a.tif", image))
    assert out.dtype == np.uint16 and np.array_equal(out, image)


def test_signed_ct_slice_keeps_its_negative_values_as_int16(tmp_path):
    image = np.array([[-1024, -500], [40, 3071]], dtype=np.int16)
    tifffile.imwrite(tmp_path / "ct.tif", image)
    np.save(tmp_path / "ct.npy", image.astype(np.int32))
    for name in ("ct.tif", "ct.npy"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.int16 and np.array_equal(out, image)


def test_signed_values_beyond_int16_name_the_fix(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[-40000, 0]], dtype=np.int32))
    with pytest.raises(ImageReadError, match="do not fit int16: save as float32 or rescale"):
        read_image(tmp_path / "a.npy")


def test_tiff_planar_rgb_becomes_channels_last(tmp_path):
    image = _ramp((3, 20, 30), np.uint16, 60000)
    tifffile.imwrite(tmp_path / "a.tiff", image, photometric="minisblack")
    out = read_image(tmp_path / "a.tiff")
    assert out.shape == (20, 30, 3) and np.array_equal(out[:, :, 1], image[1])


def test_npy_float_round_trip(tmp_path):
    image = np.random.default_rng(0).random((9, 11, 2)).astype(np.float32)
    out = read_image(write_image(tmp_path / "a.npy", image))
    assert out.dtype == np.float32 and np.array_equal(out, image)


def test_npy_float64_becomes_float32(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((4, 5)))
    assert read_image(tmp_path / "a.npy").dtype == np.float32


def test_mask_round_trip_is_int64(tmp_path):
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    out = read_mask(write_mask(tmp_path / "m.png", mask))
    assert out.dtype == np.int64 and np.array_equal(out, mask)


def test_mask_above_255_is_written_16bit(tmp_path):
    mask = np.array([[0, 300], [2, 1]])
    assert np.array_equal(read_mask(write_mask(tmp_path / "m.png", mask)), mask)


def test_palette_mask_keeps_indices(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [2, 3]], np.uint8), mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    image.save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), [[0, 1], [2, 3]])


def test_mask_with_identical_channels_is_reduced(tmp_path):
    mask = np.repeat((np.arange(6, dtype=np.uint8).reshape(2, 3) % 2)[:, :, None], 3, axis=2)
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask[:, :, 0])


def test_mask_with_differing_channels_is_an_error_naming_the_file(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8) + np.array([1, 2, 3], np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match=r"rgb\.png: mask channels differ: save masks as one channel"):
        read_mask(tmp_path / "rgb.png")


def test_mask_with_fractions_is_an_error(tmp_path):
    np.save(tmp_path / "m.npy", np.array([[0.0, 0.5]]))
    with pytest.raises(ImageReadError, match="non-integer values"):
        read_mask(tmp_path / "m.npy")


def test_corrupt_file_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match=r"cannot read .*bad\.png: not a valid \.png file"):
        read_image(tmp_path / "bad.png")


def test_unsupported_suffix_names_the_allowed_ones(tmp_path):
    (tmp_path / "a.bmp").write_bytes(b"x")
    with pytest.raises(ImageReadError, match=r"unsupported file type '\.bmp': use one of \.png"):
        read_image(tmp_path / "a.bmp")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image(tmp_path / "none.png")


def test_3d_stack_is_rejected(tmp_path):
    np.save(tmp_path / "stack.npy", np.zeros((5, 8, 8, 8), np.uint8))
    with pytest.raises(ImageReadError, match="save one 2D image per file"):
        read_image(tmp_path / "stack.npy")


def test_float_png_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"convert the image or write \.tif/\.npy"):
        write_image(tmp_path / "a.png", np.zeros((4, 4), np.float32))


def test_negative_mask_is_refused(tmp_path):
    with pytest.raises(ValueError, match="negative class ids"):
        write_mask(tmp_path / "m.png", np.array([[-1, 0]]))


def test_writes_leave_no_temporary_files(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    write_mask(tmp_path / "m.png", np.zeros((4, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "m.png"]


def test_channel_first_npy_is_refused_with_the_fix(tmp_path):
    np.save(tmp_path / "cf.npy", np.zeros((1, 32, 32), np.float32))
    with pytest.raises(ImageReadError, match=r"shape \(1, 32, 32\) looks channel-first \(C, H, W\): save as"):
        read_image(tmp_path / "cf.npy")


def test_channel_first_array_is_not_written(tmp_path):
    with pytest.raises(ValueError, match=r"looks channel-first"):
        write_image(tmp_path / "a.tif", np.zeros((3, 16, 16), np.uint8))


def test_written_files_get_the_umask_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
        write_mask(tmp_path / "m.tif", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    assert {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("a.png", "m.tif")} == {0o644}
