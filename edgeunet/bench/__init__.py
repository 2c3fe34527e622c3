"""``edgeunet bench``: latency, throughput, memory, size and accuracy of models on this machine.

Library API::

    result = run_bench(["best.pt", "model.onnx", "model.int8.onnx"], sizes=(256, 512), batches=(1, 8))
    print(format_table(result))
    write_json(result, "bench.json"); write_csv(result, "bench.csv"); write_markdown(result, "bench.md")
    save_pareto_plot(result, "pareto.png")
    regressions = compare_to_baseline(result, load_baseline("old.json"), max_slowdown=1.10, max_dice_drop=0.01)

A result is ``{"environment": edgeunet.env.environment() + threads, "settings": {...}, "rows": [...]}``.
Each row is one (model, backend, size, batch):

* ``model`` (file name, with parent folders where names repeat), ``path``, ``precision``
  (fp32/fp16/int8), ``backend`` (torch/onnxruntime/tensorrt), ``device`` (cpu/cuda), ``size`` (px), ``batch``;
* ``latency_ms``: {p50, p90, p99, mean, std} of single timed iterations (ms), ``iterations``,
  ``throughput_ips`` (images/s = batch / mean latency);
* ``peak_rss_mb``: peak resident memory the model added to the process (MB), the highest RSS
  while preparing, warming up and timing the row minus the RSS before the model was loaded;
  ``gpu_mem_mb``: GPU memory at the peak (PyTorch allocator; for engines plus activation memory
  and weights), None on CPU;
* ``file_mb``, ``parameters``, ``macs`` (one (1, C, size, size) forward, None without torch);
* ``dice``, ``iou`` (per class), ``mean_dice``, ``mean_iou`` (foreground) on the data set, the
  same for every row of a model (batch 1, full images);
* ``status``: ok, accuracy-gate (Dice more than ``max_dice_drop`` below the FP32 sibling),
  failed (``reason`` says why) or skipped (backend not installed); ``note``, e.g.
  "int8 slower than fp32 x1.30".
"""

from .gate import check_gate_settings, compare_to_baseline, load_baseline, unmatched_rows
from .harness import run_bench
from .plot import save_pareto_plot
from .report import format_markdown, format_table, write_csv, write_json, write_markdown

__all__ = ["check_gate_settings", "compare_to_baseline", "format_markdown", "format_table", "load_baseline", "run_bench", "save_pareto_plot",
           "unmatched_rows", "write_csv", "write_json", "write_markdown"]
