"""The torch-free runtime on volumes: metadata, volume preprocessing, streamed windows, Segmenter on 3-D models."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from edgeunet.errors import UserError
from edgeunet.runtime.metadata import ModelMetadata
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess, volume_normalizer
from edgeunet.runtime.window import sliding_window, sliding_window_mask

BASE = dict(in_channels=1, num_classes=2, size_multiple=8, preprocessing=DEFAULT_PREPROCESSING,
            class_names=["background", "nucleus"])


def _linear_run(weights: np.ndarray):
    """A fake model: per-voxel linear logits plus a shift along the last axis (so windows matter)."""
    def run(x):
        y = np.einsum("kc,bc...->bk...", weights, x).astype(np.float32)
        return y + np.roll(y, 1, axis=-1)
    return run


def test_metadata_records_spatial_dims_and_per_axis_multiples():
    meta = ModelMetadata(**{**BASE, "size_multiple": 4}, spatial_dims=3, size_multiples=(2, 4, 4))
    props = meta.to_props()
    assert props["spatial_dims"] == "3" and json.loads(props["size_multiples"]) == [2, 4, 4]
    assert props["size_multiple"] == "4"  # the lcm, for readers that predate 3-D models
    again = ModelMetadata.from_props(props)
    assert again.is_3d and again.size_multiples == (2, 4, 4)


def test_metadata_of_old_files_reads_as_2d():
    props = ModelMetadata(**BASE).to_props()
    del props["spatial_dims"], props["size_multiples"]
    meta = ModelMetadata.from_props(props)
    assert meta.spatial_dims == 2 and meta.size_multiples == (8, 8) and not meta.is_3d


def test_metadata_rejects_multiples_of_the_wrong_length():
    with pytest.raises(UserError, match="size_multiples"):
        ModelMetadata(**BASE, spatial_dims=3, size_multiples=(8, 8))


def test_volume_preprocessing_uses_whole_volume_percentiles_per_channel():
    rng = np.random.default_rng(0)
    volume = np.stack([rng.integers(0, 100, (6, 8, 10)), rng.integers(1000, 5000, (6, 8, 10))], -1).astype(np.uint16)
    x = preprocess(volume, DEFAULT_PREPROCESSING, 2, spatial_dims=3)
    assert x.shape == (2, 6, 8, 10) and x.dtype == np.float32
    for c in range(2):
        lo, hi = np.percentile(volume[..., c], [1.0, 99.8])
        np.testing.assert_allclose(x[c], (volume[..., c] - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    planes = volume_normalizer(volume, DEFAULT_PREPROCESSING).planes(np.array([4, 1]))
    np.testing.assert_array_equal(planes, x[:, [4, 1]])


def test_streamed_mask_equals_argmax_of_blended_probabilities():
    rng = np.random.default_rng(1)
    run = _linear_run(rng.normal(size=(3, 2)).astype(np.float32))
    for shape in [(2, 37, 29, 41), (2, 5, 8, 8), (2, 30, 40)]:
        x = rng.normal(size=shape).astype(np.float32)
        expected = np.argmax(sliding_window(x, run, 3, 16, 0.3, 4, batch=3, normalize=False), 0)
        np.testing.assert_array_equal(sliding_window_mask(x, run, 3, 16, 0.3, 4, batch=3), expected)


class _Planes:
    """A lazy (C, D, H, W) source that records which planes were asked for."""

    def __init__(self, x):
        self.x, self.shape, self.requests = x, x.shape, []

    def planes(self, index):
        self.requests.append(len(index))
        return self.x[:, index]


def test_streamed_mask_memory_is_bounded_by_the_window_not_the_volume():
    """Two classes on 192 x 64 x 64 voxels: a (K, D, H, W) float32 accumulator alone would be 6 MB."""
    rng = np.random.default_rng(2)
    source = _Planes(rng.normal(size=(1, 192, 64, 64)).astype(np.float32))
    run = _linear_run(rng.normal(size=(2, 1)).astype(np.float32))
    tracemalloc.start()
    mask = sliding_window_mask(source, run, 2, 16, 0.25, 4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert mask.shape == (192, 64, 64) and max(source.requests) == 16
    full_accumulator = 4 * 2 * 192 * 64 * 64
    assert peak < full_accumulator / 3


@pytest.fixture(scope="module")
def seg3d():
    pytest.importorskip("torch", reason="building the fixture model needs the train extra")
    from edgeunet.runtime import Segmenter
    from tests.tiny3d import onnx_3d

    return Segmenter(onnx_3d(), threads=1, tile=16)


def test_segmenter_reads_3d_metadata_of_an_exported_model(seg3d):
    assert seg3d.metadata.is_3d and seg3d.metadata.size_multiples == (4, 4, 4) and seg3d.tile == 16


def test_segmenter_volume_mask_follows_the_volume(seg3d):
    from edgeunet.metrics import dice_iou
    from tests.tiny3d import volumes

    volume, truth = volumes(1, seed=7, size=(20, 36, 28))[0]
    mask = seg3d(volume)
    assert mask.shape == volume.shape and mask.dtype == np.uint8
    assert dice_iou(mask, truth, 2)["mean_dice"] > 0.7
    probs = seg3d.predict_probs(volume)
    assert probs.shape == (2, 20, 36, 28)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    assert (np.argmax(probs, 0) == mask).mean() > 0.999


def test_windowed_volume_agrees_with_one_window(seg3d):
    from edgeunet.runtime import Segmenter
    from tests.tiny3d import onnx_3d, volumes

    volume = volumes(1, seed=8)[0][0]
    whole = Segmenter(onnx_3d(), threads=1, tile=32)(volume)  # 16 x 32 x 32 fits one 32^3 window
    assert (seg3d(volume) == whole).mean() > 0.97


def test_3d_model_given_a_2d_image_names_the_fix(seg3d):
    with pytest.raises(UserError, match="3-D model and got a 2-D image"):
        seg3d(np.zeros((32, 32), np.uint16))


def test_2d_model_given_a_volume_names_the_fix(runtime_models):
    from edgeunet.runtime import Segmenter

    seg = Segmenter(runtime_models["dynamic"], threads=1)
    with pytest.raises(UserError, match="2-D model and got a volume"):
        seg(np.zeros((4, 32, 32, 1), np.uint16))
    with pytest.raises(UserError, match=r"2-D model and got a volume of shape \(4, 32, 32\)"):
        seg.segment_volume(np.zeros((4, 32, 32), np.uint16))


def test_segment_slices_runs_a_2d_model_slice_by_slice(runtime_models):
    from edgeunet.runtime import Segmenter
    from tests.tiny3d import volumes

    seg = Segmenter(runtime_models["dynamic"], threads=1)
    volume = volumes(1, seed=9)[0][0][:3]
    masks = seg.segment_slices(volume)
    assert masks.shape == volume.shape
    for z in range(3):
        np.testing.assert_array_equal(masks[z], seg(volume[z]))
