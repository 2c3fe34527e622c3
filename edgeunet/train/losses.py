"""Cross-entropy plus soft Dice, the usual pair for segmentation with small foreground."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over foreground classes, pooled over the batch.

    Args:
        logits: (B, K, H, W) raw scores, or (B, K, D, H, W) for volumes.
        target: (B, H, W) int64 class ids, or (B, D, H, W).
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)
    spatial = tuple(range(2, logits.ndim))
    onehot = F.one_hot(target, num_classes).permute(0, logits.ndim - 1, *[d - 1 for d in spatial]).to(probs.dtype)
    dims = (0, *spatial)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return 1 - dice[1:].mean() if num_classes > 1 else 1 - dice.mean()


class SegmentationLoss(nn.Module):
    """``ce_weight * CE + dice_weight * (1 - soft Dice)``."""

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        self.ce_weight, self.dice_weight = ce_weight, dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.float(), target)
        return self.ce_weight * ce + self.dice_weight * soft_dice_loss(logits, target)
