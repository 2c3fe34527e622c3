"""``edgeunet bench``: latency, throughput, memory, size and accuracy of models on this machine.

Library API::

    settings = BenchSettings(sizes=(256, 512), batches=(1, 8), timing=TimingSettings(min_time=2.0))
    result = run_bench(["best.pt", "model.onnx", "model.int8.onnx"], settings)
    print(format_table(result)); print("\\n".join(verdict_lines(result)))
    write_json(result, "bench.json"); write_csv(result, "bench.csv"); write_markdown(result, "bench.md")
    save_pareto_plot(result, "pareto.png")
    regressions = compare_to_baseline(result, load_baseline("old.json"), max_slowdown=1.10, max_dice_drop=0.01)

Models run through the backends users ship: every file of the format table (``edgeunet.formats``) that
``edgeunet.runtime.backends.open_backend`` opens, with the runtime's session options, and are
scored through ``Segmenter``; ``.pt`` checkpoints through ``TorchBackend`` (same interface).
The rows of one (size, batch) are timed round-robin (``edgeunet.timing.time_interleaved``).

A result is ``{"environment": edgeunet.env.provenance(threads) + gpu, "settings": BenchSettings.to_dict()
+ resolved threads, "rows": [...]}``. Each row is one (model, backend, size, batch):

* ``model`` (file name, with parent folders where names repeat), ``path``, ``precision``
  (fp32/fp16/int8, from the model's metadata), ``backend`` (the opened backend's name: torch,
  onnxruntime, tensorrt, ...), ``device`` (cpu/cuda), ``size`` (px), ``batch``;
* ``latency_ms``: {p50, p90, p99, min, mean, std} of single timed calls (ms), ``iterations``
  (calls timed = rounds), ``throughput_ips`` (images/s = batch / mean latency);
* ``reference`` (label of the reference row of this size and batch), ``ratio``, ``ratio_q25``,
  ``ratio_q75`` (median and quartiles of per-round reference time / row time: above 1 = faster),
  ``rounds``, ``noisy`` (spread too large to trust), ``verdict`` (faster/slower/same/no verdict/
  reference); ``round_ms``: the per-round times (ms), aligned across the rows of one size and batch;
  ``vs_fp32``: the same ratio against the FP32 sibling (``{"model", "ratio", ...}``) for FP16/INT8 rows;
* ``peak_rss_mb`` (the table's ``process MB``): peak RSS of a fresh process running the file, MB: a
  new Python process opens it with the row's runtime and runs it a few times at the row's shape
  (``memory.process_peak_rss_mb``: interpreter, libraries, weights and activations, as on a device);
  None for GPU rows and with ``BenchSettings(memory=False)``; ``gpu_mem_mb``: GPU memory at the peak
  where the backend reports it, None on CPU;
* ``file_mb``, ``parameters``, ``macs`` (one (1, C, size, size) forward, ``models.cost.count_cost``;
  None without torch or without an edgeunet model config);
* ``dice``, ``iou`` (per class), ``mean_dice``, ``mean_iou`` (foreground) on the data set through
  ``Segmenter``, the same for every row of a model (full images);
* ``status``: ok, accuracy-gate (Dice more than ``max_dice_drop`` below the FP32 sibling),
  failed (``reason`` says why) or skipped (backend not installed); ``note``, e.g.
  "int8 slower than fp32 x1.30".
"""

from .gate import check_gate_settings, compare_to_baseline, load_baseline, unmatched_rows
from .harness import run_bench
from .plot import save_pareto_plot
from .report import format_markdown, format_table, verdict_lines, write_csv, write_json, write_markdown
from .settings import BenchSettings

__all__ = ["BenchSettings", "check_gate_settings", "compare_to_baseline", "format_markdown", "format_table",
           "load_baseline", "run_bench", "save_pareto_plot", "unmatched_rows", "verdict_lines", "write_csv",
           "write_json", "write_markdown"]
