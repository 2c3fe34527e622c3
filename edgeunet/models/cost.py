"""The one MAC counter: parameters and multiply-accumulates of one forward, counted by Torch-Pruning.

``describe``, the pruner's targets, the bench and the benchmark suite all count here, so a
figure of 1.113 GMACs means the same thing in every table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Cost:
    """Of one (1, C, size, size) forward ((1, C, size, size, size) for a 3-D model): ``parameters``,
    ``macs`` and the side ``size`` (px or voxels) counted at."""

    parameters: int
    macs: int
    size: int

    @property
    def gmacs(self) -> float:
        return round(self.macs / 1e9, 4)

    def to_dict(self) -> dict:
        return {**asdict(self), "gmacs": self.gmacs}


def count_cost(model, size: int = 256) -> Cost:
    """Counts ``model`` (an edgeunet U-Net, or any module with ``cfg.in_channels``) at ``size`` px.

    ``size`` is rounded down to the model's size multiple (at least one multiple) when the model
    has one. A model whose ``cfg.spatial_dims`` is 3 is counted on a size^3 volume. The model's
    train/eval mode is restored afterwards. Convs and the MatMuls of linear attention
    (``LinearAttention.matmul_macs``) are counted; element-wise ops are not.
    """
    import torch
    import torch_pruning as tp

    from .blocks import LinearAttention

    cfg = model.cfg
    multiple = getattr(cfg, "size_multiple", 1)
    size = max(multiple, int(size) // multiple * multiple)
    example = torch.zeros(1, cfg.in_channels, *[size] * getattr(cfg, "spatial_dims", 2))
    was_training = model.training
    attention = []  # Torch-Pruning counts modules' ops: the MatMuls of linear attention are counted here
    hooks = [m.register_forward_hook(lambda m, args, out: attention.append(m.matmul_macs(args[0].shape)))
             for m in model.modules() if isinstance(m, LinearAttention)]
    try:
        macs, params = tp.utils.count_ops_and_params(model.eval(), example)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return Cost(parameters=int(params), macs=int(macs) + sum(attention), size=size)
