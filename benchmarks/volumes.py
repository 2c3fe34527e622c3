"""What 3-D context buys: unet3d and unet3d-ds (FP32, INT8, pruned INT8) vs the 2-D edge model slice by slice.

    python benchmarks/volumes.py             # writes benchmarks/results/<machine>-volumes.json and .md
    python benchmarks/volumes.py --steps 60  # training steps per model (default 120)

Every model trains for the same number of Adam steps, each on the same number of labelled voxels
(4 patches of 32^3 for the 3-D models, 32 slices of 64x64 for ``unet-ds``), on the same synthetic nuclei
volumes (``edgeunet.data.synthetic``): equal steps, not equal time, so a busy shared host does not
starve the slower model (each model's training seconds are recorded in the notes). It is exported
by ``edgeunet export`` (FP32 and INT8 through the latency- and accuracy-aware search, timed at 32^3 to fit
the run) and measured with ``edgeunet.bench.run_bench`` on held-out volumes: latency per 64^3 patch,
whole-volume time, voxels per second, peak memory and Dice per volume, all through ``Segmenter``.
The 2-D baseline runs ``Segmenter.segment_slices`` on the same volumes. The pruned rows prune the trained
model to half its widths with Torch-Pruning (``edgeunet.prune.pruner.prune_model``, a 5-D example),
fine-tune it for a third of the steps, then export INT8. A short training ranks the models; it does not
show what longer training reaches. Runs in about 30 minutes on 2 cores (PyTorch trains the depthwise
``unet3d-ds`` slowest on a CPU).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
VOLUME = (32, 64, 64)
PATCH = 32
BATCH_3D = 4  # patches of PATCH^3 per step ...
BATCH_2D = BATCH_3D * PATCH ** 3 // (VOLUME[1] * VOLUME[2])  # ... and as many voxels in 64x64 slices: 32
CLASSES = ["background", "nucleus"]
logger = logging.getLogger("benchmarks.volumes")
NO_VOLUMES = ("`python benchmarks/volumes.py` compares `unet3d`, `unet3d-ds` and the 2-D `unet-ds` slice by slice "
              "on held-out synthetic volumes and records it in benchmarks/results/.")


def _data(n_train: int, n_val: int):
    from edgeunet.data.synthetic import synthetic_volume

    train = [synthetic_volume(i, size=VOLUME, seed=100) for i in range(n_train)]
    val = [synthetic_volume(i, size=VOLUME, seed=200) for i in range(n_val)]
    return train, val


def _train(model, train, steps: int, spatial_dims: int, seed: int = 0):
    """``steps`` Adam steps on random 32^3 patches (3-D) or 64 px slices (2-D); returns (model, seconds)."""
    import torch

    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = [preprocess(v, DEFAULT_PREPROCESSING, 1, spatial_dims=3) for v, _ in train]
    y = [m.astype(np.int64) for _, m in train]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    start = time.monotonic()
    for _ in range(steps):
        xb, yb = [], []
        for i in rng.integers(0, len(x), BATCH_3D if spatial_dims == 3 else BATCH_2D):
            if spatial_dims == 3:
                z, r, c = (int(rng.integers(0, n - PATCH + 1)) for n in VOLUME)
                xb.append(x[i][:, z:z + PATCH, r:r + PATCH, c:c + PATCH])
                yb.append(y[i][z:z + PATCH, r:r + PATCH, c:c + PATCH])
            else:  # a 2-D slice, preprocessed as the 2-D runtime does it (per slice)
                z = int(rng.integers(0, VOLUME[0]))
                xb.append(preprocess(train[i][0][z], DEFAULT_PREPROCESSING, 1))
                yb.append(y[i][z])
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(np.stack(xb))), torch.from_numpy(np.stack(yb)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), time.monotonic() - start


def _export(model, folder: Path, int8: bool, search_time: float) -> Path:
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.export import export_model
    from edgeunet.export.options import ExportOptions
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    ckpt = save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, CLASSES, train_args={"img_size": PATCH}),
                           folder / "best.pt")
    options = ExportOptions(int8=int8, calib_images=8, search_images=4, val_images=4, search_time=search_time,
                            search_img_size=PATCH, max_dice_drop=1.0)  # the Dice drop is reported, not enforced
    report = export_model(ckpt, folder / "export", options, progress=False)
    (folder / "export.summary").write_text(str({k: report.get(k) for k in ("int8_quality", "int8_speed")}))
    return folder / "export"


def _slices_row(onnx: Path, val, threads: int) -> dict:
    """The 2-D baseline: ``Segmenter.segment_slices`` on every held-out volume."""
    from edgeunet.bench.memory import RssPeak
    from edgeunet.metrics import ConfusionCounter, dice_iou
    from edgeunet.runtime import Segmenter

    seg = Segmenter(onnx, threads=threads)
    counter, per_volume, seconds = ConfusionCounter(2), [], 0.0
    with RssPeak() as probe:
        for i, (volume, mask) in enumerate(val):
            start = time.perf_counter()
            pred = seg.segment_slices(volume)
            seconds += time.perf_counter() - start
            counter.update(pred, mask)
            per_volume.append({"name": f"val-{i}", "mean_dice": dice_iou(pred, mask, 2)["mean_dice"]})
    voxels = sum(m.size for _, m in val)
    return {"model": "unet-ds (2-D, slice by slice)", "precision": "fp32", "mean_dice": counter.summary()["mean_dice"],
            "volume_ms": 1000 * seconds / len(val), "volume_voxels_per_s": voxels / seconds,
            "volume_peak_rss_mb": probe.peak_mb, "dice_per_volume": per_volume}


def _bench_rows(name: str, files: dict[str, Path], val_dir: Path, threads: int) -> list[dict]:
    from edgeunet.bench import run_bench
    from edgeunet.bench.settings import BenchSettings
    from edgeunet.timing import TimingSettings

    settings = BenchSettings(data=str(val_dir), num_images=64, sizes=(64,), threads=threads,
                             timing=TimingSettings(warmup=1, min_time=0.5, min_rounds=3))
    result = run_bench(list(files.values()), settings, progress=False)
    keep = ("precision", "status", "reason", "latency_ms", "patch_voxels_per_s", "peak_rss_mb", "mean_dice",
            "volume_ms", "volume_voxels_per_s", "volume_peak_rss_mb", "dice_per_volume", "parameters", "macs",
            "file_mb", "ratio", "verdict")
    rows = []
    for label, row in zip(files, result["rows"]):
        rows.append({"model": f"{name} {label}", **{k: row.get(k) for k in keep}})
    return rows


def run(steps: int, threads: int, search_time: float) -> dict:
    import torch

    from edgeunet.models import create_model
    from edgeunet.prune.pruner import prune_model
    from edgeunet.runtime.volume_files import write_volume

    torch.set_num_threads(threads)
    train, val = _data(12, 4)
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="edgeunet-volumes-") as tmp:
        work = Path(tmp)
        for sub in ("images", "masks"):
            (work / "val" / sub).mkdir(parents=True)
        for i, (volume, mask) in enumerate(val):
            write_volume(work / "val" / "images" / f"val-{i}.npy", volume)
            write_volume(work / "val" / "masks" / f"val-{i}.npy", mask)
        for name in ("unet3d-ds", "unet3d"):
            model, seconds = _train(create_model(name), train, steps, 3)
            notes.append(f"{name}: {steps} training steps of {BATCH_3D} patches {PATCH}^3 in {seconds:.0f} s")
            export = _export(model, work / name, True, search_time)
            files = {"fp32": export / "model.onnx", "int8": export / "model.int8.onnx"}
            try:
                prune_model(model, 0.5, example_inputs=torch.zeros(1, 1, PATCH, PATCH, PATCH), round_to=4)
                model, seconds = _train(model, train, steps // 3, 3, seed=1)
                files["pruned int8"] = _export(model, work / f"{name}-pruned", True, search_time) / "model.int8.onnx"
                notes.append(f"{name} pruned to half its widths, {steps // 3} fine-tuning steps in {seconds:.0f} s")
            except Exception as exc:  # the pruned row is a nicety: report why it is missing
                notes.append(f"{name} pruned: not measured ({type(exc).__name__}: {exc})")
            rows += _bench_rows(name, files, work / "val", threads)
        model, seconds = _train(create_model("unet-ds"), train, steps, 2)
        notes.append(f"unet-ds: {steps} training steps of {BATCH_2D} slices {VOLUME[1]}x{VOLUME[2]} in {seconds:.0f} s")
        from edgeunet.export.onnx import export_onnx
        from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

        onnx2d = export_onnx(model, work / "unet-ds.onnx", DEFAULT_PREPROCESSING, CLASSES)
        rows.append(_slices_row(onnx2d, val, threads))
    return {"rows": rows, "notes": notes}


def markdown(result: dict) -> str:
    lines = ["| model | precision | Dice (held-out volumes) | ms / 64^3 patch | ms / volume | Mvoxel/s (volume) "
             "| process peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        patch = r.get("latency_ms") or {}
        def num(v, fmt):
            return format(v, fmt) if isinstance(v, (int, float)) else "-"
        lines.append(f"| {r['model']} | {r.get('precision', '')} | {num(r.get('mean_dice'), '.4f')} | "
                     f"{num(patch.get('p50'), '.1f')} | {num(r.get('volume_ms'), '.0f')} | "
                     f"{num((r.get('volume_voxels_per_s') or 0) / 1e6, '.2f')} | "
                     f"{num(r.get('volume_peak_rss_mb'), '.0f')} |")
    volume = "x".join(map(str, VOLUME))
    lines += ["", f"Held-out synthetic volumes of {volume} voxels (D x H x W); "
              f"{_budget(result['settings'])}; "
              f"{result['settings']['threads']} threads. " + "; ".join(result["notes"]) + "."]
    return "\n".join(lines) + "\n"


def block(path: Path, data: dict) -> str:
    """docs/3d.md: the table and caption of the newest result (``benchmarks/tables.py``)."""
    cpu = data["provenance"]["cpu"]
    return (markdown(data) + f"\nOn the {cpu['usable_cores']}-core {cpu['model']} ({data['date']}, "
            "`benchmarks/volumes.py`).\n")


def _budget(settings: dict) -> str:
    """The caption's training budget: equal steps (this script), or equal seconds (results of its first version)."""
    if "steps" in settings:
        return (f"equal training steps: {settings['steps']} Adam steps per model, each on "
                f"{BATCH_3D * PATCH ** 3} labelled voxels ({BATCH_3D} patches {PATCH}^3, or {BATCH_2D} slices for the "
                "2-D model)")
    return f"equal training time: {settings['budget_s']:g} s per model"


def main(argv: list[str] | None = None) -> int:
    from edgeunet.atomic import write_json, write_text
    from edgeunet.env import machine_name, provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120,
                        help="training steps per model, each on the same number of voxels (default 120)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search-time", type=float, default=20.0, help="INT8 search budget per export (s)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    begun = time.monotonic()
    result = run(args.steps, args.threads, args.search_time)
    result.update(kind="volumes", machine=machine_name(), date=datetime.date.today().isoformat(),
                  settings={"steps": args.steps, "threads": args.threads, "search_time_s": args.search_time,
                            "volume": list(VOLUME), "patch": PATCH},
                  seconds=round(time.monotonic() - begun, 1), provenance=provenance(args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{machine_name()}-volumes"
    write_json(stem.with_suffix(".json"), result)
    write_text(stem.with_suffix(".md"), markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
