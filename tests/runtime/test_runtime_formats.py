"""More runtimes: backend choice by file type, the metadata sidecar, format options, and the ORT-format
and OpenVINO files of a tiny trained model checked against PyTorch through ``Segmenter``.

The ExecuTorch and LiteRT files are in ``test_runtime_mobile.py``. Tests that need OpenVINO skip
with a reason where it is not installed (``pip install 'edgeunet[openvino]'``).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from formats_support import CLASSES, make_sources, nuclei, torch_mask

from edgeunet.errors import MissingExtraError, UserError
from edgeunet.export.formats import FormatOptions, verify_file
from edgeunet.runtime import Segmenter, choose_backend, open_backend
from edgeunet.runtime.metadata import ModelMetadata
from edgeunet.runtime.sidecar import read_sidecar, read_sidecar_facts, sidecar_path, write_sidecar

META = ModelMetadata(in_channels=1, num_classes=2, size_multiple=8, preprocessing={"mode": "percentile", "low": 1.0,
                     "high": 99.8}, class_names=["background", "cell"], precision="int8")


@pytest.fixture(scope="module")
def sources(tiny_checkpoint, tmp_path_factory):
    pytest.importorskip("onnx", reason="exporting the fixture model needs the train extra")
    return make_sources(tiny_checkpoint, tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("name,backend", [("m.xml", "openvino"), ("m.pte", "executorch"), ("m.tflite", "litert"),
                                          ("m.ort", "onnxruntime"), ("m.onnx", "onnxruntime"), ("m.plan", "tensorrt")])
def test_auto_backend_follows_the_new_file_types(name, backend):
    assert choose_backend(name) == backend


def test_openvino_backend_also_reads_onnx_files():
    assert choose_backend("model.int8.onnx", "openvino") == "openvino"


@pytest.mark.parametrize("name,backend,message", [
    ("m.tflite", "openvino", "backend 'openvino' cannot read m.tflite .*use backend 'auto' \\(litert for this file\\)"),
    ("m.xml", "litert", "backend 'litert' cannot read m.xml .*give a .tflite"),
    ("m.onnx", "executorch", "backend 'executorch' cannot read m.onnx .*give a .pte"),
    ("m.pte", "tvm", "unknown backend 'tvm': use one of auto, onnxruntime, tensorrt, openvino, executorch, litert"),
])
def test_a_backend_that_cannot_read_the_file_is_refused(name, backend, message):
    with pytest.raises(UserError, match=message):
        choose_backend(name, backend)


def test_providers_for_another_backend_are_refused(tmp_path):
    path = tmp_path / "model.xml"
    path.write_text("<net/>")
    with pytest.raises(UserError, match="providers apply to ONNX Runtime only: leave them unset for backend 'openvino"):
        open_backend(path, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("suffix,module,extra", [(".xml", "openvino", "openvino"), (".pte", "executorch", "mobile"),
                                                 (".tflite", "ai_edge_litert", "mobile")])
def test_a_missing_runtime_library_names_its_extra(tmp_path, monkeypatch, suffix, module, extra):
    # import fails as if not installed, installed or not (submodules an earlier test imported included)
    for name in [module, *(m for m in sys.modules if m.startswith(f"{module}."))]:
        monkeypatch.setitem(sys.modules, name, None)
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\0" * 16)
    write_sidecar(path, META.to_props())
    with pytest.raises(MissingExtraError, match=rf"pip install 'edgeunet\[{extra}\]'"):
        Segmenter(path)


def test_sidecar_round_trips_the_metadata_and_facts(tmp_path):
    model = tmp_path / "model.tflite"
    written = write_sidecar(model, META.to_props(), {"input_shape": [1, 1, 64, 64]})
    assert written == sidecar_path(model) and written.name == "model.tflite.json"
    assert read_sidecar(model, fix="export it again") == META
    assert read_sidecar_facts(model)["input_shape"] == [1, 1, 64, 64]
    assert json.loads(written.read_text())["metadata"]["class_names"] == '["background", "cell"]'


def test_missing_sidecar_names_the_fix_given(tmp_path):
    with pytest.raises(UserError, match="has no metadata sidecar model.tflite.json: export it with the litert"):
        read_sidecar(tmp_path / "model.tflite", fix="export it with the litert exporter")


def test_engine_sidecar_reader_is_still_importable_from_the_tensorrt_backend():
    from edgeunet.runtime import backend_trt, sidecar

    assert backend_trt.read_sidecar is sidecar.read_sidecar and backend_trt.sidecar_path is sidecar.sidecar_path


@pytest.mark.parametrize("kwargs,message", [
    (dict(precision="fp16"), "unknown precision 'fp16': use one of fp32, int8"),
    (dict(max_batch=0), "max_size 1024 and max_batch 0 must be positive"),
    (dict(accuracy_control=True), "accuracy_control applies to precision 'int8' only"),
    (dict(target_platform="x86"), "unknown target_platform 'x86': use one of amd64, arm"),
    (dict(max_dice_drop=2.0), r"max_dice_drop 2.0 must be in \[0, 1\]"),
])
def test_bad_format_options_are_refused(kwargs, message):
    with pytest.raises(UserError, match=message):
        FormatOptions(**kwargs)


# ---- ORT format (ONNX Runtime only: runs wherever the base install does) ----

@pytest.mark.parametrize("precision,platform", [("fp32", "amd64"), ("int8", "arm")])
def test_ort_format_keeps_metadata_and_matches_pytorch(sources, tmp_path, precision, platform):
    from edgeunet.export.formats import export_ort_format

    source = sources.onnx if precision == "fp32" else sources.int8_onnx
    path = tmp_path / f"model.{precision}.ort"
    facts = export_ort_format(source, path, None, FormatOptions(precision=precision, target_platform=platform))
    assert facts["target_platform"] == platform and facts["file"] == path.name and facts["size_bytes"] > 0
    seg = Segmenter(path)
    assert seg.backend == "onnxruntime" and seg.class_names == CLASSES and seg.metadata.precision == precision
    figures = verify_file(path, precision, sources.reference, sources.val)
    assert figures["parity"]["argmax_agreement"] >= (0.9999 if precision == "fp32" else 0.97)


def test_ort_format_refuses_an_onnx_file_of_another_precision(sources, tmp_path):
    from edgeunet.export.formats import export_ort_format

    with pytest.raises(UserError, match="is fp32, not int8: give the ONNX file of that precision"):
        export_ort_format(sources.onnx, tmp_path / "model.int8.ort", None, FormatOptions(precision="int8"))


# ---- OpenVINO ----

@pytest.fixture(scope="module")
def openvino_files(request, tmp_path_factory):
    pytest.importorskip("openvino", reason="OpenVINO is not installed: pip install 'edgeunet[openvino]'")
    pytest.importorskip("nncf", reason="NNCF is not installed: pip install 'edgeunet[openvino]'")
    sources = request.getfixturevalue("sources")  # trained and exported only when the library is there
    from edgeunet.export.formats import export_openvino

    folder = tmp_path_factory.mktemp("openvino")
    fp32 = export_openvino(sources.onnx, folder / "model.xml", None, FormatOptions())
    int8 = export_openvino(sources.onnx, folder / "model.int8.xml", sources.calib, FormatOptions(precision="int8"))
    return {"fp32": (folder / "model.xml", fp32), "int8": (folder / "model.int8.xml", int8)}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_openvino_file_matches_pytorch(openvino_files, sources, precision):
    path, facts = openvino_files[precision]
    assert [f["file"] for f in facts["files"]] == [path.name, path.with_suffix(".bin").name]
    figures = verify_file(path, precision, sources.reference, sources.val, sources.masks)
    assert figures["parity"]["argmax_agreement"] >= (0.999 if precision == "fp32" else 0.97)
    if precision == "fp32":
        assert figures["parity"]["max_abs_diff"] < 1e-3  # f32 inference, not the CPU's bfloat16


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_openvino_file_carries_metadata_and_segments_any_size(openvino_files, sources, precision):
    seg = Segmenter(openvino_files[precision][0])
    assert seg.backend == "openvino" and seg.class_names == CLASSES and seg.metadata.precision == precision
    assert seg.metadata.preprocessing == {"mode": "percentile", "low": 1.0, "high": 99.8}
    image = nuclei(150, 97)
    mask = seg(image)
    assert mask.shape == (150, 97) and (mask == torch_mask(sources.model, image)).mean() >= 0.97


def test_openvino_runs_fp32_at_f32_unless_asked(openvino_files):
    path = openvino_files["fp32"][0]
    assert open_backend(path).inference_precision == "f32"
    from edgeunet.env import has_bf16

    if has_bf16():  # OpenVINO's own choice on this CPU: bfloat16, which FP32 verification would not hold to
        assert open_backend(path, precision=None).inference_precision == "bf16"
    with pytest.raises(UserError, match="unknown OpenVINO precision 'int4'"):
        open_backend(path, precision="int4")


def test_segmenter_and_predict_pass_the_openvino_precision_through(openvino_files, tmp_path):
    from edgeunet.cli import main
    from edgeunet.env import has_bf16

    path = openvino_files["fp32"][0]
    assert Segmenter(path)._backend.inference_precision == "f32"
    if has_bf16():
        assert Segmenter(path, precision="bf16")._backend.inference_precision == "bf16"
    image = tmp_path / "in.npy"
    np.save(image, np.random.default_rng(0).integers(0, 255, (40, 48), dtype=np.uint8))
    assert main(["predict", str(path), str(image), "--out", str(tmp_path / "out"), "--precision", "bf16",
                 "--no-progress"]) == 0
    assert (tmp_path / "out" / "in.png").is_file()


@pytest.mark.slow
def test_openvino_reads_the_onnx_file_with_its_metadata(request):
    pytest.importorskip("openvino", reason="OpenVINO is not installed: pip install 'edgeunet[openvino]'")
    sources = request.getfixturevalue("sources")
    seg = Segmenter(sources.onnx, backend="openvino")
    assert seg.backend == "openvino" and seg.class_names == CLASSES
    image = nuclei(64, 64)
    assert (seg(image) == Segmenter(sources.onnx)(image)).mean() >= 0.999


@pytest.mark.slow
def test_openvino_accuracy_control_keeps_the_dice_drop_within_bounds(request, tmp_path):
    pytest.importorskip("nncf", reason="NNCF is not installed: pip install 'edgeunet[openvino]'")
    sources = request.getfixturevalue("sources")
    from edgeunet.export.formats import export_openvino

    path = tmp_path / "model.int8.xml"
    options = FormatOptions(precision="int8", accuracy_control=True, max_dice_drop=0.01)
    facts = export_openvino(sources.onnx, path, sources.calib, options, validation=(sources.val, sources.masks))
    assert facts["quantization"]["method"] == "quantize_with_accuracy_control"
    figures = verify_file(path, "int8", sources.reference, sources.val, sources.masks)
    assert figures["reference_scores"]["mean_dice"] - figures["scores"]["mean_dice"] <= 0.01 + 1e-6
    with pytest.raises(UserError, match="accuracy control needs verification images with masks"):
        export_openvino(sources.onnx, tmp_path / "other.xml", sources.calib, options)


def test_predict_refuses_onnx_runtime_devices_for_other_runtimes(tmp_path, capsys):
    from edgeunet.cli import main

    (tmp_path / "m.xml").write_text("<net/>")
    np.save(tmp_path / "in.npy", np.zeros((8, 8), np.uint8))
    code = main(["predict", str(tmp_path / "m.xml"), str(tmp_path / "in.npy"), "--out", str(tmp_path / "out"),
                 "--device", "cuda"])
    assert code == 2
    assert "--providers and --device cuda apply to ONNX Runtime only: leave them unset" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bench_times_an_openvino_file_in_each_precision_asked(openvino_files, sources):
    """``--openvino-precision f32,bf16``: a row per precision; the bf16 row says what OpenVINO compiled."""
    from edgeunet.bench import BenchSettings, run_bench
    from edgeunet.env import has_bf16
    from edgeunet.timing import TimingSettings

    settings = BenchSettings(sizes=(64,), num_images=2, openvino_precisions=("f32", "bf16"),
                             timing=TimingSettings(warmup=1, min_time=0, min_rounds=3))
    rows = run_bench([openvino_files["fp32"][0]], settings, progress=False)["rows"]
    by_label = {r["model"]: r for r in rows}
    assert set(by_label) == {"model.xml", "model.xml@bf16"} and all(r["status"] == "ok" for r in rows)
    assert by_label["model.xml"]["precision"] == "fp32"
    assert by_label["model.xml@bf16"]["precision"] == ("bf16" if has_bf16() else "fp32")
    assert by_label["model.xml@bf16"]["mean_dice"] == pytest.approx(by_label["model.xml"]["mean_dice"], abs=0.02)
