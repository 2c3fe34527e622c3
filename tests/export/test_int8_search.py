"""INT8 search: layer groups, candidates timed and scored, float groups really float, time budget,
slower-than-FP32 flag."""

from __future__ import annotations

import json

import onnx
import pytest

from edgeunet.cli import main
from edgeunet.export import ExportOptions, export_model
from edgeunet.export.int8 import prepare, quantize_int8
from edgeunet.export.int8 import search as search_module
from edgeunet.export.int8.candidates import layer_groups, node_level
from edgeunet.export.onnx import export_onnx
from edgeunet.export.samples import InputSpec, load_inputs
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

pytestmark = pytest.mark.slow

FAST = {"calib_images": 4, "search_img_size": 64}
SPEC = InputSpec(DEFAULT_PREPROCESSING, 1, 4)


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def searched(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "export"
    return out, export_model(trained[0], out, ExportOptions(int8=True, search_time=6.0, **FAST), progress=False)


@pytest.fixture(scope="module")
def prepared(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared")
    fp32 = export_onnx(trained[1], folder / "model.onnx", DEFAULT_PREPROCESSING, ["background", "cell"])
    return fp32, prepare(fp32, folder / "prepared.onnx")


def test_layer_groups_follow_module_names(prepared):
    groups = layer_groups(onnx.load(str(prepared[1])))
    assert groups["head"] == {"/head/Conv"}
    # Levels 0 and 1 are fused (plain convs): every depthwise conv sits at level 2.
    assert "/encoder/stages.2/unit1/depthwise/conv/Conv" in groups["depthwise"]
    assert all(node_level(name, 2) == 2 for name in groups["depthwise"])
    assert "/decoder/stages.1/up/Resize" in groups["up.0"]  # decoder stage 1 of 2 ends at full resolution
    assert "/encoder/stages.2/unit2/pointwise/conv/Conv" in groups["level.2"]


def test_float_group_keeps_float_weights(prepared, tmp_path):
    calib = load_inputs("synthetic", 2, 64, "calib", SPEC).images
    float_nodes = layer_groups(onnx.load(str(prepared[1])))["depthwise"]
    path = tmp_path / "m.int8.onnx"
    quantize_int8(prepared[1], path, calib, {}, nodes_to_exclude=sorted(float_nodes))
    graph = onnx.load(str(path)).graph
    producers = {out: node.op_type for node in graph.node for out in node.output}
    initializers = {t.name: t for t in graph.initializer}
    convs = {node.name: node for node in graph.node if node.op_type == "Conv"}
    for name in float_nodes:  # float weights straight from an initializer: ONNX Runtime runs a float Conv
        weight = initializers[convs[name].input[1]]
        assert weight.data_type == onnx.TensorProto.FLOAT and convs[name].input[1] not in producers, name
    quantized = convs["/encoder/stages.2/unit1/pointwise/conv/Conv"]
    assert producers[quantized.input[1]] == "DequantizeLinear"


def test_search_records_every_candidate_with_latency_and_dice(searched):
    record = searched[1]["int8_search"]
    assert len(record["candidates"]) >= 2
    for row in record["candidates"]:
        assert row["speedup"] > 0 and row["fp32_ms"] > 0 and row["int8_ms"] > 0
        assert row["mean_dice"] is not None and row["dice_drop"] is not None
    assert record["chosen"] in [row["name"] for row in record["candidates"]]


def test_chosen_candidate_keeps_dice_and_is_written(searched):
    out, report = searched
    chosen = next(r for r in report["int8_search"]["candidates"] if r["name"] == report["int8_search"]["chosen"])
    assert chosen["dice_ok"] and chosen["dice_drop"] <= report["int8_quality"]["max_dice_drop"]
    assert report["calibration"]["quantization"]["float_groups"] == chosen["float_groups"]
    rewrites = report["calibration"]["quantization"]["qdq_rewrites"]  # what qdq_graph did to the shipped file
    assert rewrites == chosen["qdq_rewrites"] and set(rewrites) == {"shared_concat_scales",
                                                                     "dequantize_after_depth_to_space",
                                                                     "shape_before_dequantize"}
    saved = json.loads((out / "export.json").read_text())
    assert saved["int8_search"]["chosen"] == chosen["name"] and isinstance(saved["int8_faster_than_fp32"], bool)


def test_search_stops_near_its_time_budget(prepared, tmp_path):
    calib = load_inputs("synthetic", 2, 64, "calib", SPEC)
    job = search_module.SearchJob(
        prepared=prepared[1],
        fp32_path=prepared[0],
        calib_images=calib.images,
        search=calib,
        fp32_scores=None,
        props={},
        work=tmp_path,
        size=64,
    )
    result = search_module.search_int8(job, ExportOptions(int8=True, search_time=1.0))
    rows = result.record["candidates"]
    slowest = max(r["seconds"] for r in rows)
    assert (
        result.record["seconds"] <= 1.0 + 2 * slowest + 5.0
    )  # one candidate may start before the budget ends, plus confirmation
    assert len(rows) < 5 + len(result.record["groups"])  # it stopped before trying every group


def test_slower_int8_is_flagged_by_the_cli(trained, tmp_path, monkeypatch, capsys):
    slower = {
        "fp32_ms": 1.0,
        "int8_ms": 2.0,
        "speedup": 0.5,
        "speedup_q25": 0.45,
        "speedup_q75": 0.55,
        "rounds": 7,
        "verdict": "slower",
    }
    monkeypatch.setattr(search_module, "time_pair", lambda *a, **k: slower)
    monkeypatch.setattr(search_module, "time_files", lambda fp32, paths, **k: [dict(slower) for _ in paths])
    rc = main(
        [
            "export",
            str(trained[0]),
            "--out",
            str(tmp_path / "out"),
            "--int8",
            "--search-time",
            "1",
            "--search-img-size",
            "64",
            "--calib-images",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "SLOWER than model.onnx" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "export.json").read_text())["int8_faster_than_fp32"] is False


def test_search_size_not_a_multiple_names_valid_sizes(trained, tmp_path):
    with pytest.raises(ValueError, match="--search-img-size 70 is not a multiple of 8.*use 64 or 72"):
        export_model(trained[0], tmp_path / "out", ExportOptions(int8=True, search_img_size=70), progress=False)


def test_search_for_tensorrt_target_is_refused(trained, tmp_path):
    with pytest.raises(ValueError, match="serves --target cpu only"):
        export_model(
            trained[0], tmp_path / "out", ExportOptions(int8=True, target="tensorrt", int8_search=True), progress=False
        )


def test_non_positive_search_time_is_refused(trained, tmp_path):
    with pytest.raises(ValueError, match="--search-time 0 must be a positive number of seconds"):
        export_model(trained[0], tmp_path / "out", ExportOptions(int8=True, search_time=0), progress=False)


def test_speed_warnings_follow_the_timing_harness_verdict():
    from edgeunet.export.speed import speed_warning

    row = {"speedup": 0.9, "speedup_q25": 0.7, "speedup_q75": 1.2, "size": 64}
    assert speed_warning({**row, "verdict": "faster"}) is None
    assert "SLOWER" in speed_warning({**row, "verdict": "slower"})
    busy = speed_warning({**row, "verdict": "no verdict"})
    assert "too busy" in busy and "SLOWER" not in busy and "x0.90 (x0.70-x1.20)" in busy
    noisy_but_faster = {"speedup": 1.8, "speedup_q25": 1.5, "speedup_q75": 2.1, "size": 64, "verdict": "no verdict"}
    assert speed_warning(noisy_but_faster) is None


def test_candidates_carry_the_harness_interval_and_verdict(searched):
    for row in searched[1]["int8_search"]["candidates"]:
        assert row["speedup_q25"] <= row["speedup"] <= row["speedup_q75"]
        assert row["verdict"] in ("faster", "slower", "same", "no verdict") and row["rounds"] >= 7
    assert searched[1]["int8_speed"]["verdict"] in ("faster", "slower", "same", "no verdict")


def test_confirm_times_the_best_candidates_and_full_int8_in_one_interleaved_run(monkeypatch):
    """Speed-ups from separate runs carry each run's drift: the finalists share one run's rounds."""
    import types

    calls = []

    def fake_time_files(fp32, paths, **kwargs):
        calls.append((fp32, list(paths), kwargs["settings"]))
        return [{"speedup": 2.0 + i / 10, "speedup_q25": 1.9, "speedup_q75": 2.2, "fp32_ms": 9.0, "int8_ms": 4.5,
                 "rounds": 21, "verdict": "faster"} for i in range(len(paths))]

    monkeypatch.setattr(search_module, "time_files", fake_time_files)
    tried = [{"name": n, "speedup": s, "dice_ok": ok} for n, s, ok in
             [("full", 1.5, True), ("a", 2.1, True), ("b", 2.0, True), ("c", 1.9, True), ("d", 1.8, True),
              ("e", 3.0, False)]]
    job = types.SimpleNamespace(fp32_path="fp32.onnx", size=64, threads=2, in_channels=1, spatial_dims=2)
    fake = types.SimpleNamespace(tried=tried, files={t["name"]: f"{t['name']}.onnx" for t in tried}, job=job,
                                 say=lambda line: None, elapsed=lambda: 1.0)
    search_module._confirm(fake)
    assert calls == [("fp32.onnx", ["a.onnx", "b.onnx", "c.onnx", "full.onnx"], search_module.CONFIRM_TIMING)]
    confirmed = [t["name"] for t in tried if t.get("confirmed")]
    assert confirmed == ["full", "a", "b", "c"] and tried[0]["first_speedup"] == 1.5 and tried[0]["speedup"] == 2.3
    assert search_module._choose(tried)["name"] == "full"  # full is fastest in the joint run: no float islands


def test_over_the_dice_limit_the_search_keeps_float_the_groups_that_cost_dice(prepared, tmp_path, monkeypatch):
    """Accuracy first: while the candidate so far loses more than --max-dice-drop, a group in float that lowers
    the drop is kept, also when it is slower; once within the limit, only speed counts again."""
    import types

    groups = {"a": {"n1"}, "b": {"n2"}, "c": {"n3"}, "d": {"n4"}}
    monkeypatch.setattr(search_module, "layer_groups", lambda model: groups)
    monkeypatch.setattr(search_module, "_confirm", lambda search: [t.update(confirmed=True) for t in search.tried])

    def fake_evaluate(self, cand):
        nodes = cand.nodes
        drop = 0.012 - 0.003 * ("n1" in nodes) + 0.001 * ("n2" in nodes) - 0.005 * ("n3" in nodes)
        speedup = 2.0 - 0.1 * len(nodes) + 0.5 * ("n4" in nodes) - 0.2 * bool(cand.options)
        row = {**cand.to_dict(), "speedup": speedup, "dice_drop": drop, "mean_dice": 0.9 - drop,
               "dice_ok": drop <= self.options.max_dice_drop, "seconds": 0.0}
        self.tried.append(row)
        self.files[cand.name] = tmp_path / f"{len(self.tried)}.onnx"
        return row

    monkeypatch.setattr(search_module._Search, "evaluate", fake_evaluate)
    job = types.SimpleNamespace(prepared=prepared[1], search=types.SimpleNamespace(names=["x"]), size=64, threads=1)
    result = search_module.search_int8(job, ExportOptions(int8=True, max_dice_drop=0.005, search_time=1e6),
                                       say=lambda line: None)
    decisions = result.record["group_decisions"]
    assert decisions["a"]["kept_float"] and decisions["a"]["for_accuracy"]  # 0.012 -> 0.009, still over
    assert not decisions["b"]["kept_float"]  # 0.009 -> 0.010: costs Dice, stays INT8
    assert decisions["c"]["for_accuracy"] and "0.0040" in decisions["c"]["reason"]  # 0.009 -> 0.004: within
    assert decisions["d"]["kept_float"] and not decisions["d"]["for_accuracy"]  # within the limit: speed again
    assert result.chosen["float_groups"] == ["a", "c", "d"] and result.chosen["dice_ok"]
    # without a limit to meet, the accuracy rule does nothing: a and c cost speed and stay INT8
    relaxed = search_module.search_int8(job, ExportOptions(int8=True, max_dice_drop=0.02, search_time=1e6),
                                        say=lambda line: None)
    assert relaxed.chosen["float_groups"] == ["d"]
