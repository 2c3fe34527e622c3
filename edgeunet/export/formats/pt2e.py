"""PT2E (``torch.export`` + torchao) steps shared by the ExecuTorch and LiteRT exporters.

INT8 uses the ``XNNPACKQuantizer`` of ExecuTorch for both (int8 per-channel symmetric weights,
int8 per-tensor asymmetric activations): litert-torch 0.10's own ``PT2EQuantizer`` makes
``prepare_pt2e`` fail on about half of the runs on edgeunet's U-Nets (an AssertionError that a
ReLU feeding both a max-pool and a skip concat has no observer; which run fails changes from call
to call), while the XNNPACK quantizer annotates the same graph every time, and LiteRT lowers its
Q/DQ graph to int8 kernels all the same.
"""

from __future__ import annotations

import numpy as np


def export_program(torch, module, low: list[int], high: list[int], multiple: int):
    """``torch.export.export`` of ``module`` for inputs between ``low`` and ``high`` (B, C, H, W)."""
    dims = {0: torch.export.Dim("batch", min=low[0], max=high[0])} if high[0] > low[0] else {}
    if high[2] > low[2]:  # H and W in steps of the size multiple
        dims[2] = multiple * torch.export.Dim("height_units", min=1, max=high[2] // multiple)
        dims[3] = multiple * torch.export.Dim("width_units", min=1, max=high[3] // multiple)
    # An example of 2 (batch) and 2 size multiples keeps torch.export from specializing the 0/1 cases.
    side = min(2 * multiple, high[2]) if 2 in dims else low[2]
    example = torch.zeros(min(2, high[0]) if 0 in dims else low[0], low[1], side, side)
    return torch.export.export(module, (example,), dynamic_shapes=(dims,) if dims else None)


def quantize_pt2e(torch, model, calibration: list[np.ndarray], low: list[int], high: list[int], multiple: int,
                  fold_quantize: bool = True):
    """The PT2E INT8 ``GraphModule`` of ``model``, calibrated on ``calibration`` (XNNPACK quantizer).

    Args:
        torch: The torch module.
        model: The float model (eval mode).
        calibration: (C, H, W) float32 images within ``low``..``high``.
        low, high: Smallest and largest (B, C, H, W) input.
        multiple: The model's size multiple.
        fold_quantize: Store weights as int8 constants (ExecuTorch); LiteRT's converter wants the
            float weights with their quantize op (False).
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from ...models.blocks import KeyValueSummary, Readout

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    # linear attention's summary and readout stay float, as in the INT8 ONNX file (export.int8.candidates
    # .float_attention_nodes): a sum over the positions, and a division whose int8 denominator can be zero
    for kind in (KeyValueSummary, Readout):
        quantizer.set_module_type(kind, None)
    prepared = prepare_pt2e(export_program(torch, model, low, high, multiple).module(), quantizer)
    with torch.no_grad():
        for image in calibration:
            prepared(torch.from_numpy(np.repeat(image[None], low[0], axis=0)))  # a static batch takes low[0]
    return convert_pt2e(prepared, fold_quantize=fold_quantize)
