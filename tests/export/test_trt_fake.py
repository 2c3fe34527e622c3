"""The TensorRT code paths on CPU: the engine builder and ``TrtBackend`` driven through their whole call
sequence by a fake ``tensorrt`` (10.x and 11.x API) and a fake cuda-python runtime (``tests/fake_*.py``)."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from badinput import leftovers
from fake_cudart import FakeCuda, cudaError_t, install
from fake_tensorrt import CACHE_MAGIC, make_tensorrt
from tiny_onnx import tiny_onnx

from edgeunet.data.synthetic import synthetic_sample
from edgeunet.errors import DeviceError, MissingExtraError, UserError
from edgeunet.export import build_engine
from edgeunet.runtime import Segmenter
from edgeunet.runtime.backend_trt import TrtBackend
from edgeunet.runtime.sidecar import sidecar_path

SHAPES = "1x1x64x64,2x1x128x128,2x1x128x128"


def use_tensorrt(monkeypatch, version: str, cuda: FakeCuda | None = None, layout: str = "bindings"):
    """Installs a fake TensorRT ``version`` and a fake cuda-python (shared GPU ``cuda``) in sys.modules."""
    cuda = cuda or FakeCuda()
    trt = make_tensorrt(version, cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    install(monkeypatch, cuda, layout)
    return trt


@pytest.fixture(params=["10.3.0", "11.1.0"])
def fake_trt(request, monkeypatch):
    return use_tensorrt(monkeypatch, request.param)


@pytest.fixture
def onnx_model(runtime_model, tmp_path):
    """The trained fixture U-Net (1 channel, 2 classes, size multiple 8) in a folder of its own."""
    return shutil.copy(runtime_model, tmp_path / "model.onnx")


@pytest.fixture
def engine(fake_trt, onnx_model, tmp_path):
    return build_engine(onnx_model, tmp_path / "model.engine", shapes=SHAPES)["engine"]


def in_order(calls: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` is a subsequence of ``calls``."""
    remaining = iter(calls)
    return all(any(call == wanted for call in remaining) for wanted in expected)


def test_build_calls_builder_parser_profile_cache_then_serializes(fake_trt, onnx_model, tmp_path):
    cache = tmp_path / "timing.cache"
    result = build_engine(onnx_model, tmp_path / "model.engine", shapes=SHAPES, timing_cache=cache, workspace_mb=512)
    assert in_order(fake_trt.calls, ["Builder.create_network", "OnnxParser", "OnnxParser.parse_from_file",
                                     "Builder.build_serialized_network"])
    (config,) = fake_trt.configs
    assert config.pools == {"WORKSPACE": 512 << 20} and config.flags == []
    assert config.profiles[0].shapes == {"images": ((1, 1, 64, 64), (2, 1, 128, 128), (2, 1, 128, 128))}
    assert cache.read_bytes().startswith(CACHE_MAGIC) and config.cache.entries == 1
    facts = json.loads(sidecar_path(result["engine"]).read_text())
    assert facts["tensorrt_version"] == fake_trt.__version__ and facts["strongly_typed"] is True
    assert (facts["gpu"], facts["compute_capability"]) == ("Fake GPU", "8.7")
    assert facts["profile"]["images"]["max"] == [2, 1, 128, 128] and facts["metadata"]["precision"] == "fp32"
    assert (tmp_path / "model.engine").stat().st_size == result["size_bytes"] > 0
    assert leftovers(tmp_path) == []


def test_network_is_created_strongly_typed_on_10_and_with_no_flag_on_11(fake_trt, onnx_model, tmp_path):
    captured = []
    create = fake_trt.INetworkDefinition.__init__

    def spy(self, lib, flags):
        captured.append(flags)
        create(self, lib, flags)

    fake_trt.INetworkDefinition.__init__ = spy
    try:
        build_engine(onnx_model, tmp_path / "m.engine", shapes=SHAPES)
    finally:
        fake_trt.INetworkDefinition.__init__ = create
    strongly_typed = 1 << int(fake_trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert captured == ([strongly_typed] if fake_trt.major < 11 else [0])


def test_timing_cache_is_loaded_and_saved_back(fake_trt, onnx_model, tmp_path):
    cache = tmp_path / "timing.cache"
    build_engine(onnx_model, tmp_path / "a.engine", shapes=SHAPES, timing_cache=cache)
    build_engine(onnx_model, tmp_path / "b.engine", shapes=SHAPES, timing_cache=cache)
    assert fake_trt.configs[-1].cache.entries == 2  # the second build started from the first one's timings
    assert b'"entries": 2' in cache.read_bytes()


def test_timing_cache_of_another_tensorrt_is_refused(fake_trt, onnx_model, tmp_path):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(CACHE_MAGIC + b'{"version": "9.0.0", "entries": 3}')
    with pytest.raises(UserError, match="does not fit this GPU and TensorRT version: delete it"):
        build_engine(onnx_model, tmp_path / "m.engine", shapes=SHAPES, timing_cache=cache)


def test_fp16_flag_is_a_weakly_typed_build_on_10_and_refused_on_11(fake_trt, onnx_model, tmp_path):
    if fake_trt.major >= 11:
        with pytest.raises(UserError, match="TensorRT 11 takes precision from the ONNX file"):
            build_engine(onnx_model, tmp_path / "m.engine", shapes=SHAPES, fp16=True)
        return
    result = build_engine(onnx_model, tmp_path / "m.engine", shapes=SHAPES, fp16=True)
    assert fake_trt.configs[-1].flags == ["FP16"] and result["strongly_typed"] is False


def test_int8_flag_on_a_tensorrt_flavour_file_sets_int8_and_fp16(monkeypatch, tmp_path):
    trt = use_tensorrt(monkeypatch, "10.3.0")
    model = tiny_onnx(tmp_path / "model.int8.onnx", int8="tensorrt")
    build_engine(model, shapes="1x1x8x8,1x1x16x16,1x1x16x16", int8=True)
    assert trt.configs[-1].flags == ["INT8", "FP16"] and (tmp_path / "model.int8.engine").is_file()


def test_failed_build_is_a_device_error_and_writes_no_engine(fake_trt, onnx_model, tmp_path):
    fake_trt.fail_build = True
    with pytest.raises(DeviceError, match="TensorRT failed to build an engine"):
        build_engine(onnx_model, tmp_path / "m.engine", shapes=SHAPES)
    assert not (tmp_path / "m.engine").exists() and leftovers(tmp_path) == []


def test_unsupported_tensorrt_is_refused_naming_the_range(monkeypatch, onnx_model, tmp_path):
    use_tensorrt(monkeypatch, "8.6.1")
    with pytest.raises(UserError, match=r"TensorRT 8\.6\.1 is not supported: edgeunet takes TensorRT >=10,<12"):
        build_engine(onnx_model, tmp_path / "m.engine", shapes=SHAPES)


def test_segmenter_on_the_engine_gives_the_onnx_masks(engine, onnx_model):
    on_engine, on_onnx = Segmenter(engine, tile=128), Segmenter(onnx_model, tile=128)
    assert on_engine.backend == "tensorrt" and on_engine.tile_batch == 1
    for index, shape in enumerate([(128, 128), (300, 217)]):  # one call, then tiles
        image = synthetic_sample(index, size=shape[0], seed=3)[0][:, :shape[1]]
        np.testing.assert_allclose(on_engine.predict_probs(image), on_onnx.predict_probs(image), atol=1e-5)
        assert (on_engine(image) == on_onnx(image)).mean() > 0.999
    small = synthetic_sample(5, size=40, seed=3)[0]  # below the profile's 64 px: padded up to 64
    assert on_engine(small).shape == (40, 40) and (on_engine(small) == on_onnx(small)).mean() > 0.9
    batch = [synthetic_sample(i, size=64, seed=4)[0] for i in range(5)]  # 5 images, engine batch <= 2
    for a, b in zip(on_engine.predict(batch), on_onnx.predict(batch)):
        assert (a == b).mean() > 0.999


def test_backend_has_the_runtime_interface(engine, fake_trt):
    backend = TrtBackend(engine)
    assert (backend.name, backend.providers, backend.metadata.num_classes) == ("tensorrt", ["TensorRT"], 2)
    assert (backend.max_batch, backend.fixed_size) == (2, None)
    assert (backend.min_size, backend.max_size) == ((64, 64), (128, 128))
    assert backend.input_dtype == np.float32
    logits = backend.run(np.zeros((2, 1, 64, 64), np.float32))
    assert logits.shape == (2, 2, 64, 64) and logits.dtype == np.float32
    buffers = 2 * 64 * 64 * 4 * (1 + 2)  # input + output bytes
    expected = (backend._engine_bytes + (3 << 20) + buffers) / 2**20
    assert backend.gpu_peak_mb() == pytest.approx(expected)


def test_run_sets_shape_and_addresses_then_enqueues_copies_and_syncs(engine, fake_trt):
    backend = TrtBackend(engine)
    fake_trt.calls.clear()
    fake_trt.cuda.calls.clear()
    backend.run(np.ones((1, 1, 64, 64), np.float32))
    assert in_order(fake_trt.calls, ["IExecutionContext.set_input_shape", "IExecutionContext.set_tensor_address",
                                     "IExecutionContext.set_tensor_address", "IExecutionContext.execute_async_v3"])
    assert in_order(fake_trt.cuda.calls, ["cudaMalloc", "cudaMalloc", "cudaMemcpyAsync", "cudaMemcpyAsync",
                                          "cudaStreamSynchronize"])
    assert fake_trt.contexts[-1].runs == 1
    backend.close()
    assert fake_trt.cuda.allocations == {} and fake_trt.cuda.streams == {}


def test_input_outside_the_profile_is_a_user_error(engine):
    backend = TrtBackend(engine)
    with pytest.raises(UserError, match=r"outside the engine's profile .*rebuild it with `edgeunet build-engine --sha"):
        backend.run(np.zeros((3, 1, 64, 64), np.float32))


@pytest.mark.parametrize("function, message", [("cudaMalloc", "cudaMalloc"), ("cudaMemcpyAsync", "copy to the GPU"),
                                               ("cudaStreamSynchronize", "cudaStreamSynchronize")])
def test_cuda_errors_at_run_time_are_device_errors(engine, fake_trt, function, message):
    backend = TrtBackend(engine)
    fake_trt.cuda.fail[function] = cudaError_t.cudaErrorIllegalAddress
    with pytest.raises(DeviceError, match=rf"CUDA {message}.* failed \(cudaErrorIllegalAddress\)"):
        backend.run(np.zeros((1, 1, 64, 64), np.float32))


def test_failed_enqueue_is_a_device_error(engine, fake_trt, monkeypatch):
    backend = TrtBackend(engine)
    monkeypatch.setattr(type(fake_trt.contexts[-1]), "execute_async_v3", lambda self, stream_handle: False)
    with pytest.raises(DeviceError, match="TensorRT failed to enqueue the engine"):
        backend.run(np.zeros((1, 1, 64, 64), np.float32))


def test_engine_of_another_tensorrt_release_is_a_device_error_naming_the_fix(engine, fake_trt, monkeypatch):
    newer = "10.4.0" if fake_trt.major == 10 else "11.2.0"
    use_tensorrt(monkeypatch, newer, fake_trt.cuda)
    with pytest.raises(DeviceError, match=rf"TensorRT {newer} could not load .*built with TensorRT "
                                          rf"{fake_trt.__version__} on Fake GPU.*rebuild the engine on this device"):
        Segmenter(engine)


def test_older_cuda_python_layout_is_used(engine, fake_trt, monkeypatch):
    install(monkeypatch, fake_trt.cuda, layout="cudart")
    assert TrtBackend(engine).run(np.zeros((1, 1, 64, 64), np.float32)).shape == (1, 2, 64, 64)


def test_missing_cuda_python_names_the_extra(engine, monkeypatch):
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: the import fails
    with pytest.raises(MissingExtraError, match=r"cuda-python is not installed: run `pip install 'edgeunet\[trt\]'`"):
        TrtBackend(engine)


def test_fake_refuses_what_tensorrt_refuses(engine, fake_trt):
    """The contracts the other tests rely on: unset shapes/addresses, shapes off the profile, removed 8.x APIs."""
    runtime = fake_trt.Runtime(fake_trt.Logger(fake_trt.Logger.WARNING))
    with open(engine, "rb") as f:
        trt_engine = runtime.deserialize_cuda_engine(f.read())
    context = trt_engine.create_execution_context()
    stream = int(fake_trt.cuda.cudaStreamCreate()[1])
    assert context.execute_async_v3(stream) is False  # nothing set yet
    assert context.set_input_shape("images", (4, 1, 64, 64)) is False  # batch above the profile's 2
    assert context.set_input_shape("images", (1, 1, 64, 64)) is True
    assert context.execute_async_v3(stream) is False  # addresses still unset
    for removed in ("execute_v2", "execute_async_v2", "set_binding_shape"):
        assert not hasattr(context, removed)
    for removed in ("get_binding_index", "get_binding_shape", "binding_is_input", "num_bindings"):
        assert not hasattr(trt_engine, removed)
    builder = fake_trt.Builder(fake_trt.Logger())
    assert not hasattr(builder, "build_engine") and not hasattr(builder.create_builder_config(), "max_workspace_size")
    assert hasattr(fake_trt.BuilderFlag, "FP16") == (fake_trt.major < 11)
    assert hasattr(fake_trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") == (fake_trt.major < 11)


def test_runtime_refuses_an_unsupported_tensorrt(engine, monkeypatch):
    use_tensorrt(monkeypatch, "12.0.0")
    with pytest.raises(UserError, match=r"TensorRT 12\.0\.0 is not supported: edgeunet takes TensorRT >=10,<12"):
        TrtBackend(engine)
