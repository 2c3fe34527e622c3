"""INT8 ONNX: calibration with ONNX Runtime's quantizer, the latency- and accuracy-aware search, and the tools
that explain a Dice drop.

* ``quantize``: ``prepare`` (pre-processing) and ``quantize_int8`` (static QDQ quantization for a ``--target``);
* ``search``: ``search_int8`` chooses what to quantize by timing candidates on this CPU (``candidates``:
  the layer groups and settings it tries);
* ``qdq_graph``: exact rewrites of the QDQ graph; ``debug``: per-tensor SQNR, naming the worst layers.
"""

from .debug import tensor_sqnr, worst_tensors
from .quantize import FLAVOUR_KEY, make_reader, prepare, quantize_int8
from .search import SearchJob, SearchResult, search_int8

__all__ = ["FLAVOUR_KEY", "SearchJob", "SearchResult", "make_reader", "prepare", "quantize_int8", "search_int8",
           "tensor_sqnr", "worst_tensors"]
