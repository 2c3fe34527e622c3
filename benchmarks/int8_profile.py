"""Where ONNX Runtime spends the time of an INT8 U-Net on this CPU, and what the INT8 variants tried gain.

    python benchmarks/int8_profile.py --export runs/unpruned/export --export runs/pruned/export --calib DIR

For each export folder (its ``model.onnx``), the INT8 files are made here from that FP32 file with the
calibration images of ``--calib`` (``edgeunet export``'s settings for ``--target cpu``, no search):

* ``before``: the FP32 graph as exported (the INT8 file edgeunet wrote before the graph rewrites),
* ``after``: with ``edgeunet.export.graph_rewrites``'s rewrites (what ``edgeunet export --int8`` writes now),
* experiments on ``after``: per-tensor weights, asymmetric int8 weights (ONNX Runtime's non-symmetric
  conv path), int8 activations (s8s8), the QOperator format, and Resize on uint8 (the DQ -> Resize -> Q of
  bilinear up-sampling folded by hand: ONNX Runtime folds it only for nearest, not for linear mode),
* ``fp32 rewritten``: the FP32 model with the same rewrites (does the rewrite help FP32 as much?).

All files run interleaved in one ``edgeunet.timing.time_interleaved`` call per size, on sessions as the bench
opens them (``ort_session``, spinning off); each row's ``ratio`` is the median per-round FP32 / row time.
Then ONNX Runtime's profiler (``SessionOptions.enable_profiling``) gives per-op-type kernel times of FP32,
``before`` and ``after``, run alternately. Writes ``benchmarks/results/<machine>-int8-profile.json``
(kind ``int8-profile``) with ``edgeunet.env.provenance``.

Since the rewrite moved into ``export_onnx`` (``model.onnx`` itself now has the SpaceToDepth stem, so FP32 gains
too), ``before`` differs from ``after`` only for exports made with ``export_onnx(..., graph_rewrites=False)`` or by
older versions: the committed result was measured on such exports.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
EXPERIMENTS = {  # name: quantize_int8 overrides, on the rewritten ("after") graph
    "per-tensor weights": {"per_channel": False},
    "asymmetric int8 weights": {"extra_options": {}},
    "int8 activations (s8s8)": {"activation_type": "QInt8"},
    "QOperator format": {"quant_format": "QOperator"},
}
PROFILED = ("fp32", "before", "after")
CONV_OPS = ("Conv", "QLinearConv")


def fold_linear_resize(model_proto) -> int:
    """DQ -> Resize -> Q with one scale and zero point becomes Resize on the uint8 tensor; returns how many."""
    graph = model_proto.graph
    producers = {out: n for n in graph.node for out in n.output}
    readers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    dropped = set()
    for node in graph.node:
        dq = producers.get(node.input[0]) if node.op_type == "Resize" else None
        after = readers.get(node.output[0], []) if dq is not None else []
        if dq is None or dq.op_type != "DequantizeLinear" or len(after) != 1 or len(readers[dq.output[0]]) != 1:
            continue
        q = after[0]
        if q.op_type == "QuantizeLinear" and list(q.input[1:]) == list(dq.input[1:]):
            node.input[0], node.output[0] = dq.input[0], q.output[0]
            dropped |= {id(dq), id(q)}
    kept = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    return len(dropped) // 2


def calibration(fp32: Path, calib: str, count: int) -> list[np.ndarray]:
    """Model-ready calibration images from ``calib`` (a folder or ``synthetic``), as the export prepares them."""
    from edgeunet.export.onnx import read_metadata
    from edgeunet.export.samples import InputSpec, load_inputs

    meta = read_metadata(fp32)
    spec = InputSpec(meta.preprocessing, meta.in_channels, meta.size_multiple, None)
    return load_inputs(calib, count, 256, "calib", spec).images


def make_files(fp32: Path, calib: list[np.ndarray], work: Path) -> dict[str, Path]:
    """{row name: ONNX file} of one export: FP32, before, after, the experiments and the rewritten FP32."""
    import onnx

    from edgeunet.export.int8 import prepare, quantize_int8

    props = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props} | {"precision": "int8"}
    prepared = {"before": prepare(fp32, work / "before.prepared.onnx", rewrite=False),
                "after": prepare(fp32, work / "after.prepared.onnx")}
    files = {"fp32": fp32}
    cache = work / "calibration.json"  # one calibration for every INT8 file
    for name, source in prepared.items():
        files[name] = work / f"{name}.onnx"
        quantize_int8(source, files[name], calib, props, calibration_cache=cache)
    for i, (name, overrides) in enumerate(EXPERIMENTS.items()):
        files[name] = work / f"experiment{i}.onnx"
        quantize_int8(prepared["after"], files[name], calib, props, overrides=overrides, calibration_cache=cache)
    folded = onnx.load(str(files["after"]))
    if fold_linear_resize(folded):
        files["Resize on uint8"] = work / "resize_uint8.onnx"
        onnx.save(folded, str(files["Resize on uint8"]))
    files["fp32 rewritten"] = prepared["after"]
    return files


def interleaved(files: dict[str, Path], size: int, in_channels: int, threads: int, min_time: float) -> dict:
    """{row name: p50 ms, ratio (FP32 / row, median per round) and its quartiles} of one interleaved run."""
    from edgeunet.runtime.session import CPU, ort_session
    from edgeunet.timing import TimingSettings, time_interleaved

    sessions = {name: ort_session(path, threads=threads, providers=[CPU], spinning="off")
                for name, path in files.items()}
    x = np.random.default_rng(0).standard_normal((1, in_channels, size, size)).astype(np.float32)
    calls = [lambda s=s: s.run(None, {s.get_inputs()[0].name: x}) for s in sessions.values()]
    rows = time_interleaved(calls, TimingSettings(warmup=3, min_time=min_time, min_rounds=15), reference=0)
    return {name: {"p50_ms": round(r["latency_ms"]["p50"], 3), "ratio": round(r["ratio"], 3),
                   "ratio_q25": round(r["ratio_q25"], 3), "ratio_q75": round(r["ratio_q75"], 3), "rounds": r["rounds"]}
            for name, r in zip(sessions, rows)}


def op_profile(files: dict[str, Path], size: int, in_channels: int, threads: int, rounds: int) -> dict:
    """{file: {run_ms, kernel_ms, ops: {op type: {ms, share, nodes}}, top_nodes}} from ONNX Runtime's profiler."""
    import onnxruntime as ort

    from edgeunet.runtime.session import CPU, session_options

    sessions = {}
    for name, path in files.items():
        options = session_options(threads, spinning="off")
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="edgeunet-prof-")) / name.replace(" ", "_"))
        sessions[name] = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    x = np.random.default_rng(0).standard_normal((1, in_channels, size, size)).astype(np.float32)
    for _ in range(rounds + 3):  # alternate, so drift of a busy machine hits every file alike
        for session in sessions.values():
            session.run(None, {session.get_inputs()[0].name: x})
    return {name: _summarize(json.loads(Path(s.end_profiling()).read_text()), rounds + 3)
            for name, s in sessions.items()}


def _summarize(events: list[dict], calls: int) -> dict:
    by_op, by_node, nodes, runs = collections.Counter(), collections.Counter(), collections.defaultdict(set), []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op, node = e["args"]["op_name"], e["name"][: -len("_kernel_time")]
            by_op[op] += e["dur"]
            by_node[f"{op} {node}"] += e["dur"]
            nodes[op].add(node)
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            runs.append(e["dur"])
    total = sum(by_op.values())
    return {"run_ms": round(float(np.median(runs)) / 1000, 3), "kernel_ms": round(total / calls / 1000, 3),
            "ops": {op: {"ms": round(us / calls / 1000, 3), "share": round(us / total, 4), "nodes": len(nodes[op])}
                    for op, us in by_op.most_common()},
            "top_nodes": {n: round(us / calls / 1000, 3) for n, us in by_node.most_common(8)}}


def limits(profile: dict) -> dict:
    """What bounds the INT8 speed-up at one size: conv vs other kernels, FP32 vs INT8 (``after``)."""
    fp32, int8 = profile["fp32"], profile["after"]
    conv = {name: sum(v["ms"] for op, v in p["ops"].items() if op in CONV_OPS)
            for name, p in (("fp32", fp32), ("int8", int8))}
    rest = {"fp32": fp32["kernel_ms"] - conv["fp32"], "int8": int8["kernel_ms"] - conv["int8"]}
    return {"conv_ms": {k: round(v, 3) for k, v in conv.items()},
            "other_ms": {k: round(v, 3) for k, v in rest.items()},
            "conv_speedup": round(conv["fp32"] / conv["int8"], 3),
            "other_speedup": round(rest["fp32"] / rest["int8"], 3),
            "int8_other_share": round(rest["int8"] / int8["kernel_ms"], 4),
            "speedup_if_other_ops_cost_nothing": round(fp32["kernel_ms"] / conv["int8"], 3)}


def profile_export(folder: Path, calib: str, args) -> dict:
    """The record of one export folder: its files' interleaved ratios and op profiles at every size."""
    from edgeunet.export.onnx import read_metadata

    fp32 = folder / "model.onnx"
    meta = read_metadata(fp32)
    with tempfile.TemporaryDirectory(prefix="edgeunet-int8-profile-") as tmp:
        files = make_files(fp32, calibration(fp32, calib, args.calib_images), Path(tmp))
        sizes = {}
        for size in args.sizes:
            timing = interleaved(files, size, meta.in_channels, args.threads, args.min_time)
            profile = op_profile({k: files[k] for k in PROFILED}, size, meta.in_channels, args.threads, args.rounds)
            sizes[str(size)] = {"interleaved": timing, "profile": profile, "limits": limits(profile)}
            print(f"{folder} {size} px: " + ", ".join(f"{k} x{v['ratio']:.2f}" for k, v in timing.items()))
    config = meta.model_config
    return {"model": config.get("name"), "pruned": bool(config.get("layer_widths")), "sizes": sizes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/int8_profile.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--export", type=Path, action="append", required=True, help="export folder with model.onnx "
                   "(repeat for several models)")
    p.add_argument("--calib", default="synthetic", help="calibration images: a folder or 'synthetic'")
    p.add_argument("--calib-images", type=int, default=16, help="calibration images, at most (default 16)")
    p.add_argument("--img-size", default="256,512", help="sizes to time and profile (default 256,512)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: usable cores)")
    p.add_argument("--min-time", type=float, default=4.0, help="seconds each file is timed per size (default 4)")
    p.add_argument("--rounds", type=int, default=30, help="profiled runs of each file per size (default 30)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder of the result file")
    args = p.parse_args(argv)
    missing = [str(f / "model.onnx") for f in args.export if not (f / "model.onnx").is_file()]
    if missing:
        print(f"not found: {', '.join(missing)}: give folders written by `edgeunet export`", file=sys.stderr)
        return 2
    from edgeunet.atomic import write_json
    from edgeunet.env import cpu_info, machine_name, provenance

    args.sizes = [int(s) for s in args.img_size.split(",")]
    args.threads = args.threads or cpu_info()["usable_cores"] or 1
    load_before = os.getloadavg()[0]  # other work on the machine moves the ratios: recorded with them
    models = {f.parent.name if f.name == "export" else f.name: profile_export(f, args.calib, args) for f in args.export}
    result = {"kind": "int8-profile", "date": datetime.date.today().isoformat(), "machine": machine_name(),
              "settings": {"threads": args.threads, "spinning": False, "min_time": args.min_time,
                           "rounds": args.rounds, "calib": str(args.calib), "calib_images": args.calib_images,
                           "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)}},
              "experiments": {k: v for k, v in EXPERIMENTS.items()}, "models": models,
              "provenance": provenance(args.threads)}
    path = write_json(args.out / f"{machine_name()}-int8-profile.json", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
