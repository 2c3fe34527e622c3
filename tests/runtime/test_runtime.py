"""The torch-free runtime: Segmenter on a small trained ONNX model (fixture in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgeunet.data.synthetic import synthetic_sample
from edgeunet.errors import MissingExtraError
from edgeunet.runtime import Segmenter, choose_backend
from edgeunet.runtime.metadata import ModelMetadata
from edgeunet.runtime.sidecar import read_sidecar, sidecar_path


def nuclei(height: int, width: int, index: int = 0) -> np.ndarray:
    """A (height, width) uint16 synthetic fluorescence image (cropped from a square sample)."""
    return synthetic_sample(index, size=max(8, height, width), seed=3)[0][:height, :width]


@pytest.fixture(scope="module")
def seg(runtime_model) -> Segmenter:
    return Segmenter(runtime_model)


def test_importing_the_runtime_imports_neither_torch_nor_onnx():
    code = ("import edgeunet.runtime, sys; "
            "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_metadata_comes_from_the_onnx_file(seg):
    assert seg.class_names == ["background", "nucleus"]
    assert (seg.num_classes, seg.in_channels, seg.metadata.size_multiple) == (2, 1, 16)
    assert seg.backend == "onnxruntime" and "CPUExecutionProvider" in seg.providers


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (5, 3), (1, 1)])
def test_mask_has_the_image_size_for_any_size(seg, shape):
    mask = seg(nuclei(*shape))
    assert mask.shape == shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_every_image_dtype_gives_the_same_mask(seg, dtype):
    image = nuclei(64, 80)
    scaled = image.astype(np.float64) / image.max()
    converted = (
        (scaled * np.iinfo(dtype).max).round().astype(dtype) if np.dtype(dtype).kind == "u" else scaled.astype(dtype)
    )
    # Percentile normalization makes the mask independent of the value range (up to 8-bit rounding).
    assert (seg(converted) == seg(image)).mean() > 0.99


def test_masks_follow_the_nuclei(seg):
    image, truth = synthetic_sample(7, size=128, seed=3)
    mask = seg(image)
    assert (mask == truth).mean() > 0.93
    assert 0.05 < mask.mean() < 0.6  # neither empty nor everything: tiling comparisons mean something


def test_tiled_prediction_agrees_with_untiled(runtime_model, seg):
    tiled = Segmenter(runtime_model, tile=128, overlap=0.25)
    image = nuclei(300, 317)
    assert tiled.tile < 300  # 3 x 3 tiles
    assert (tiled(image) == seg(image)).mean() >= 0.995


def test_tiled_probabilities_are_blended_softmax(runtime_model):
    tiled = Segmenter(runtime_model, tile=64)
    image = nuclei(150, 170)
    probs = tiled.predict_probs(image)
    assert probs.shape == (2, 150, 170) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(axis=0), tiled(image))


def test_static_shape_model_is_tiled_at_its_fixed_size(runtime_models, seg):
    static = Segmenter(runtime_models["static"])  # input fixed to 1 x 1 x 64 x 64
    assert static.tile == 64 and static.tile_batch == 1
    for shape in [(30, 41), (100, 150)]:
        image = nuclei(*shape)
        assert (static(image) == seg(image)).mean() > 0.98


def test_batch_prediction_equals_one_by_one(runtime_model):
    seg = Segmenter(runtime_model, tile=64)
    images = [nuclei(48, 48, 0), nuclei(48, 48, 1), nuclei(40, 72, 2), nuclei(48, 48, 3), nuclei(100, 90, 4)]
    masks, probs = seg.predict(images, return_probs=True, batch_size=2)
    for image, mask, p in zip(images, masks, probs):
        np.testing.assert_array_equal(mask, seg(image))
        np.testing.assert_allclose(p, seg.predict_probs(image), atol=1e-5)
        assert p.shape == (2, *image.shape)
    assert [m.shape for m in seg.predict(images)] == [i.shape for i in images]


def test_one_segmenter_serves_several_threads(seg):
    images = [nuclei(64 + 8 * i, 72, i) for i in range(8)]
    expected = [seg(image) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(seg, images * 2))
    for got, want in zip(results, expected * 2):
        np.testing.assert_array_equal(got, want)


def test_spinning_reaches_the_onnx_runtime_session_and_keeps_the_masks(runtime_model, seg, monkeypatch):
    from edgeunet.runtime import backend_ort

    opened, real_session = [], backend_ort.ort_session
    monkeypatch.setattr(backend_ort, "ort_session",
                        lambda *a, **k: opened.append(k["spinning"]) or real_session(*a, **k))
    image = nuclei(96, 80)
    for mode in ("always", "off"):
        np.testing.assert_array_equal(Segmenter(runtime_model, spinning=mode)(image), seg(image))
    Segmenter(runtime_model)
    assert opened == ["always", "off", "run"]


def test_tiling_memory_stays_within_a_few_image_planes_and_tiles(runtime_model):
    seg = Segmenter(runtime_model, tile=256, tile_batch=4)
    image = np.random.default_rng(0).integers(0, 4096, (1024, 1024), dtype=np.uint16)
    seg(image[:64, :64])  # warm up the session outside the measurement
    plane = 1024 * 1024 * 4  # one (H, W) float32 array
    # Full-image arrays: the uint16 image, the (1, H, W) input, the (2, H, W) accumulator and the
    # (H, W) weight; per tile batch: input, logits, softmax and weighted softmax of 4 tiles.
    budget = image.nbytes + (1 + 2 + 1) * plane + 4 * 256 * 256 * 4 * (1 + 3 * 2)
    for call in (seg, seg.predict_probs):
        tracemalloc.start()
        try:
            call(image)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < budget, f"{call}: peak {peak / 2**20:.1f} MB > budget {budget / 2**20:.1f} MB"


def test_wrong_channel_count_is_refused(seg):
    with pytest.raises(ValueError, match=r"has 3 channel\(s\) but the model takes 1: convert it to grayscale"):
        seg(np.zeros((32, 32, 3), np.uint8))


def test_nan_values_are_refused(seg):
    image = np.ones((32, 32), np.float32)
    image[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values: replace them"):
        seg(image)


def test_infinite_values_are_refused_in_a_batch_before_any_work(seg):
    bad = np.full((32, 32), np.inf, np.float32)
    with pytest.raises(ValueError, match="NaN or infinite"):
        seg.predict([np.zeros((32, 32), np.float32), bad])


def test_empty_image_is_refused(seg):
    with pytest.raises(ValueError, match=r"the image is empty \(shape \(0, 10\)\)"):
        seg(np.zeros((0, 10), np.uint8))


def test_predict_refuses_a_bare_array(seg):
    with pytest.raises(ValueError, match="predict takes a list of images"):
        seg.predict(np.zeros((2, 32, 32), np.uint8))


def test_missing_model_file_is_named(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match=f"{path} does not exist: give an .onnx model"):
        Segmenter(path)


def test_onnx_without_edgeunet_metadata_is_refused(runtime_models):
    with pytest.raises(ValueError, match="is not an edgeunet model .*export it with `edgeunet export`"):
        Segmenter(runtime_models["no_metadata"])


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(
        ValueError, match="is not a loadable ONNX model .*give an .onnx file written by `edgeunet export`"
    ):
        Segmenter(path)


@pytest.mark.parametrize("kwargs,message", [
    (dict(tile=100), "tile 100 is not a multiple of 16 .*: use 96 or 112"),
    (dict(overlap=1.0), r"overlap must be in \[0, 1\)"),
    (dict(threads=0), "threads must be >= 1"),
    (dict(backend="tvm"), "unknown backend 'tvm': use one of auto, onnxruntime, tensorrt, openvino"),
    (dict(providers=["NoSuchExecutionProvider"]), "NoSuchExecutionProvider are not in this onnxruntime build"),
])
def test_bad_options_are_refused(runtime_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Segmenter(runtime_model, **kwargs)


def test_threads_option_gives_the_same_masks(runtime_model, seg):
    image = nuclei(64, 64)
    np.testing.assert_array_equal(Segmenter(runtime_model, threads=1)(image), seg(image))


def test_auto_backend_follows_the_file_type():
    assert choose_backend("model.onnx") == "onnxruntime"
    assert choose_backend("model.int8.onnx") == "onnxruntime"
    assert choose_backend("model.engine") == "tensorrt"


def test_engine_with_onnxruntime_backend_is_refused():
    with pytest.raises(ValueError, match="is a TensorRT engine: run it with backend 'tensorrt'"):
        choose_backend("model.engine", "onnxruntime")


def test_onnx_with_tensorrt_backend_is_refused():
    with pytest.raises(ValueError, match="is not a TensorRT engine: build one with `edgeunet build-engine`"):
        choose_backend("model.onnx", "tensorrt")


def _metadata() -> ModelMetadata:
    return ModelMetadata(
        in_channels=1,
        num_classes=3,
        size_multiple=16,
        preprocessing={"mode": "percentile", "low": 1.0, "high": 99.8},
        class_names=["background", "a", "b"],
        precision="fp16",
    )


def test_engine_sidecar_gives_the_metadata(tmp_path):
    engine = tmp_path / "model.engine"
    sidecar_path(engine).write_text(json.dumps({"metadata": _metadata().to_props(), "precision": "fp16"}))
    assert sidecar_path(engine).name == "model.engine.json"
    assert read_sidecar(engine) == _metadata()


def test_engine_without_sidecar_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match="has no metadata sidecar model.engine.json: rebuild the engine with `edgeunet build-engine`"
    ):
        read_sidecar(tmp_path / "model.engine")


def test_sidecar_without_metadata_is_refused(tmp_path):
    engine = tmp_path / "model.engine"
    sidecar_path(engine).write_text(json.dumps({"precision": "fp16"}))
    with pytest.raises(ValueError, match='has no "metadata" object'):
        read_sidecar(engine)


def test_engine_without_tensorrt_names_the_extra(tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed: the missing-extra message cannot be shown")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0" * 16)
    sidecar_path(engine).write_text(json.dumps({"metadata": _metadata().to_props()}))
    with pytest.raises(MissingExtraError, match=r"pip install 'edgeunet\[trt\]'"):
        Segmenter(engine)


@pytest.mark.tensorrt
def test_tensorrt_engine_matches_onnxruntime(runtime_model, tmp_path, seg):
    trt = pytest.importorskip("tensorrt", reason="needs TensorRT and an NVIDIA GPU (pip install 'edgeunet[trt]')")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(runtime_model), parser.get_error(0)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, 1, 64, 64), (4, 1, 128, 128), (4, 1, 256, 256))
    config.add_optimization_profile(profile)
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(bytes(builder.build_serialized_network(network, config)))
    sidecar_path(engine).write_text(json.dumps({"metadata": seg.metadata.to_props()}))
    on_gpu = Segmenter(engine)
    assert on_gpu.backend == "tensorrt" and on_gpu.tile == 256
    for shape in [(40, 50), (128, 128), (300, 317)]:
        image = nuclei(*shape)
        assert (on_gpu(image) == seg(image)).mean() > 0.99


class ProfileBackend:
    """Stands in for a TensorRT engine with a profile of batch <= 2 and sizes 64..128 (no GPU needed)."""

    name, providers, max_batch, fixed_size = "tensorrt", ["TensorRT"], 2, None
    min_size, max_size = (64, 64), (128, 128)

    def __init__(self, metadata: ModelMetadata):
        self.metadata = metadata
        self.shapes: list[tuple] = []

    def run(self, x: np.ndarray) -> np.ndarray:
        assert x.shape[0] <= 2 and 64 <= x.shape[2] <= 128 and 64 <= x.shape[3] <= 128, x.shape
        self.shapes.append(x.shape)
        return np.concatenate([x, -x, np.zeros_like(x)], axis=1)  # pointwise: class 0 where x > 0


def test_engine_profile_bounds_the_tiles_batches_and_padding(monkeypatch):
    metadata = ModelMetadata(
        in_channels=1, num_classes=3, size_multiple=8, preprocessing={"mode": "scale"}, class_names=["a", "b", "c"]
    )
    backend = ProfileBackend(metadata)
    monkeypatch.setattr("edgeunet.runtime.segmenter.open_backend", lambda *args, **kwargs: backend)
    seg = Segmenter("model.engine", tile_batch=4)  # more than the engine's profile allows (2)
    assert (seg.tile, seg.tile_batch) == (128, 2)
    images = [
        np.linspace(-1, 1, h * w, dtype=np.float32).reshape(h, w) for h, w in [(20, 30), (20, 30), (20, 30), (300, 200)]
    ]
    for image, mask in zip(images, seg.predict(images)):
        np.testing.assert_array_equal(mask, np.where(image > 0, 0, 1))
    assert max(shape[0] for shape in backend.shapes) == 2
    with pytest.raises(ValueError, match=r"tile 32 is outside the input sizes the engine takes \(64\.\.128\)"):
        Segmenter("model.engine", tile=32)
