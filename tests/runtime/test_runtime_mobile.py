"""Phone runtimes: the ExecuTorch (``.pte``) and LiteRT (``.tflite``) files of a tiny trained model,
FP32 and INT8, checked against PyTorch through ``Segmenter``; LiteRT's fixed size is tiled.

Each format skips with a reason where its library is not installed (``pip install 'edgeunet[mobile]'``).
Exports take tens of seconds each (torch.export and the converters), so they are marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from formats_support import CLASSES, SIZE, make_sources, nuclei, torch_mask

from edgeunet.errors import UserError
from edgeunet.export.formats import FormatOptions, verify_file
from edgeunet.runtime import Segmenter, open_backend

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # ExecuTorch/LiteRT exports: the longest setups


@pytest.fixture(scope="module")
def sources(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("onnx", reason="exporting the fixture model needs the train extra")
    return make_sources(tiny_checkpoint, tmp_path_factory.mktemp("mobile"))


@pytest.fixture(scope="module")
def executorch_files(request, tmp_path_factory):
    pytest.importorskip("executorch", reason="ExecuTorch is not installed: pip install 'edgeunet[mobile]'")
    sources = request.getfixturevalue("sources")  # trained and exported only when the library is there
    from edgeunet.export.formats import export_executorch

    folder = tmp_path_factory.mktemp("executorch")
    files = {}
    for precision in ("fp32", "int8"):
        path = folder / ("model.pte" if precision == "fp32" else "model.int8.pte")
        options = FormatOptions(precision=precision, max_size=128, max_batch=2)
        files[precision] = (path, export_executorch(sources.checkpoint, path, sources.calib, options))
    return files


@pytest.fixture(scope="module")
def litert_files(request, tmp_path_factory):
    pytest.importorskip("litert_torch", reason="litert-torch is not installed: pip install 'edgeunet[mobile]'")
    pytest.importorskip("executorch", reason="LiteRT INT8 uses ExecuTorch's quantizer: pip install 'edgeunet[mobile]'")
    sources = request.getfixturevalue("sources")
    from edgeunet.export.formats import export_litert

    folder = tmp_path_factory.mktemp("litert")
    files = {}
    for precision in ("fp32", "int8"):
        path = folder / ("model.tflite" if precision == "fp32" else "model.int8.tflite")
        options = FormatOptions(precision=precision, img_size=SIZE)
        files[precision] = (path, export_litert(sources.checkpoint, path, sources.calib, options))
    return files


BOUND = {"fp32": 0.999, "int8": 0.97}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_executorch_file_matches_pytorch(executorch_files, sources, precision):
    path, facts = executorch_files[precision]
    assert facts["max_shape"] == [2, 1, 128, 128] and facts["precision"] == precision
    figures = verify_file(path, precision, sources.reference, sources.val, sources.masks)
    assert figures["parity"]["argmax_agreement"] >= BOUND[precision]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_executorch_file_carries_metadata_and_segments_any_size(executorch_files, sources, precision):
    seg = Segmenter(executorch_files[precision][0])
    assert seg.backend == "executorch" and seg.class_names == CLASSES and seg.metadata.precision == precision
    assert seg.tile == 128  # the program's largest side bounds the tiles
    for shape in [(40, 57), (200, 150)]:  # padded whole / tiled
        image = nuclei(*shape)
        mask = seg(image)
        assert mask.shape == shape and (mask == torch_mask(sources.model, image)).mean() >= BOUND[precision] - 0.02


def test_executorch_batches_up_to_its_bound(executorch_files):
    backend = open_backend(executorch_files["fp32"][0])
    x = np.random.default_rng(0).random((2, 1, 64, 64), dtype=np.float32)
    np.testing.assert_allclose(backend.run(x)[1], backend.run(x[1:])[0], atol=1e-4)
    with pytest.raises(UserError, match=r"does not take input shape \(1, 1, 256, 256\).*larger max_size"):
        backend.run(np.zeros((1, 1, 256, 256), np.float32))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_litert_file_matches_pytorch(litert_files, sources, precision):
    path, facts = litert_files[precision]
    assert [f["file"] for f in facts["files"]] == [path.name, path.name + ".json"]
    figures = verify_file(path, precision, sources.reference, sources.val, sources.masks)
    assert figures["parity"]["argmax_agreement"] >= BOUND[precision]


def test_litert_int8_file_takes_int8_and_is_fed_quantized(litert_files):
    backend = open_backend(litert_files["int8"][0])
    assert backend.input_dtype == np.int8 and backend.fixed_size == (SIZE, SIZE)
    assert open_backend(litert_files["fp32"][0]).input_dtype == np.float32


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_litert_tiles_images_larger_than_its_fixed_size(litert_files, sources, precision):
    seg = Segmenter(litert_files[precision][0])
    assert seg.backend == "litert" and seg.tile == SIZE and seg.class_names == CLASSES
    assert seg.metadata.preprocessing == {"mode": "percentile", "low": 1.0, "high": 99.8}
    image = nuclei(150, 130, index=1)
    mask = seg(image)  # 3 x 3 tiles of 64 px
    assert mask.shape == (150, 130)
    assert (mask == Segmenter(sources.onnx, tile=SIZE)(image)).mean() >= BOUND[precision]  # same tiles, ONNX Runtime
    small = nuclei(30, 41, index=2)
    mask = seg(small)  # reflected up to 64 x 64, where ONNX Runtime would run 32 x 48: compare with the truth instead
    assert mask.shape == (30, 41) and (mask == torch_mask(sources.model, small)).mean() >= 0.97


def test_litert_refuses_another_input_size(litert_files):
    backend = open_backend(litert_files["fp32"][0])
    with pytest.raises(UserError, match="takes inputs of shape \\(1, 1, 64, 64\\), got \\(1, 1, 32, 32\\)"):
        backend.run(np.zeros((1, 1, 32, 32), np.float32))
