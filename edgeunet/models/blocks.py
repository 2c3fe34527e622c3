"""Small named blocks of the U-Net skeleton. Their attribute names become state_dict keys,
ONNX node names and pruning/quantization exclusion lists: keep them stable.

Every block takes ``spatial_dims`` (2: Conv2d/BatchNorm2d on (B, C, H, W); 3: Conv3d/BatchNorm3d
on (B, C, D, H, W)); a 3 in a kernel size means 3x3 or 3x3x3. The names are the same in both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAX_POOL = {2: F.max_pool2d, 3: F.max_pool3d}


def conv_layer(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """``nn.Conv2d`` or ``nn.Conv3d`` with the given arguments."""
    return _CONV[spatial_dims](*args, **kwargs)


def _scalar_if_uniform(factor: tuple[int, ...]) -> int | tuple[int, ...]:
    # One number when all axes agree: the 2-D default builds and exports exactly as before.
    return factor[0] if len(set(factor)) == 1 else tuple(factor)


class ConvNormAct(nn.Sequential):
    """Conv -> BatchNorm -> ReLU. (B, in, *spatial) -> (B, out, *spatial / stride) (padding kernel_size // 2).

    The pretrained encoders set the rest: ``stride``, ``act_layer`` (ReLU6 in EfficientNet-Lite), ``eps``
    (1e-3, the BatchNorm of TensorFlow checkpoints) and ``norm=False`` (VGG: a conv with bias, ``norm`` an
    Identity that holds no state).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1, act: bool = True,
                 spatial_dims: int = 2, *, stride: int = 1, norm: bool = True,
                 act_layer: type[nn.Module] = nn.ReLU, eps: float = 1e-5):
        super().__init__()
        self.conv = conv_layer(spatial_dims, in_channels, out_channels, kernel_size, stride=stride,
                               padding=kernel_size // 2, groups=groups, bias=not norm)
        self.norm = _NORM[spatial_dims](out_channels, eps=eps) if norm else nn.Identity()
        self.act = act_layer(inplace=True) if act else nn.Identity()


class DepthwiseSeparable(nn.Sequential):
    """3x3 (3x3x3) depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2):
        super().__init__()
        self.depthwise = ConvNormAct(in_channels, in_channels, 3, groups=in_channels, spatial_dims=spatial_dims)
        self.pointwise = ConvNormAct(in_channels, out_channels, 1, spatial_dims=spatial_dims)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear project; residual when shapes match.

    EfficientNet-Lite's MBConv is the same block with ``kernel_size`` 3 or 5, a ``stride``, ReLU6 and
    BatchNorm eps 1e-3 (``norm``: extra ``ConvNormAct`` arguments), no expand conv at expand ratio 1
    (``expand=False``: ``hidden_channels`` must equal ``in_channels``), and ``residual`` given by its
    architecture table: a pruned block keeps the adds it was designed with whatever its widths.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, spatial_dims: int = 2, *,
                 kernel_size: int = 3, stride: int = 1, expand: bool = True, residual: bool | None = None,
                 norm: dict | None = None):
        super().__init__()
        dims = {"spatial_dims": spatial_dims, **(norm or {})}
        if expand:  # attribute only when present: the state_dict of a block without it has no expand keys
            self.expand = ConvNormAct(in_channels, hidden_channels, 1, **dims)
        elif hidden_channels != in_channels:
            raise ValueError(f"a block without expand conv has hidden = in channels, got {hidden_channels} != "
                             f"{in_channels}")
        self.depthwise = ConvNormAct(hidden_channels, hidden_channels, kernel_size, groups=hidden_channels,
                                     stride=stride, **dims)
        self.project = ConvNormAct(hidden_channels, out_channels, 1, act=False, **dims)
        self.use_residual = in_channels == out_channels and stride == 1 if residual is None else residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x) if hasattr(self, "expand") else x))
        return x + y if self.use_residual else y


def stage_widths(plan: dict[str, int], prefix: str) -> dict[str, int]:
    """The widths of one stage of a width plan, without the stage prefix (``enc2.mid`` -> ``mid``)."""
    return {k.split(".", 1)[1]: v for k, v in plan.items() if k.split(".", 1)[0] == prefix}


class DoubleBlock(nn.Module):
    """Two units of a block type, in -> mid -> out; the U-Net stage of every variant.

    ``widths`` maps the names ``mid``, ``out`` and for inverted residuals ``hidden1``,
    ``hidden2`` to channel counts (see ``ModelConfig.width_plan``).
    """

    def __init__(self, block: str, in_channels: int, widths: dict[str, int], spatial_dims: int = 2, *,
                 transformer: tuple[int, int] | None = None):
        super().__init__()
        mid, out, dims = widths["mid"], widths["out"], {"spatial_dims": spatial_dims}
        if block == "conv":
            self.unit1, self.unit2 = ConvNormAct(in_channels, mid, **dims), ConvNormAct(mid, out, **dims)
        elif block == "ds":
            self.unit1, self.unit2 = DepthwiseSeparable(in_channels, mid, **dims), DepthwiseSeparable(mid, out, **dims)
        elif block == "ir":
            self.unit1 = InvertedResidual(in_channels, mid, widths["hidden1"], **dims)
            self.unit2 = InvertedResidual(mid, out, widths["hidden2"], **dims)
        else:
            raise ValueError(f"unknown block {block!r}: use 'conv', 'ds' or 'ir'")
        self.block = block
        if transformer:  # attribute only when present: the state_dict of a plain stage reads as before
            dim, heads = transformer
            blocks = sum(k.startswith("ffn") for k in widths)
            self.transformer = nn.Sequential(*(TransformerBlock(out, dim, heads, widths[f"ffn{k}"], **dims)
                                               for k in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.unit2(self.unit1(x))
        return self.transformer(x) if hasattr(self, "transformer") else x

    def width_owners(self) -> dict[str, nn.Module]:
        """Width name -> the conv whose output channels are that width (what pruning roots its groups at).

        A Transformer block's feed-forward hidden width is ``ffn{k}``; the attention's own widths (q, k, v and
        the heads) are no width of the plan, so pruning never splits a head (the stage's ``out`` width, which
        the blocks' residual adds carry, still prunes).
        """
        if self.block == "ir":
            owners = {"hidden1": self.unit1.expand.conv, "mid": self.unit1.project.conv,
                      "hidden2": self.unit2.expand.conv, "out": self.unit2.project.conv}
        else:
            last = (lambda u: u.conv) if self.block == "conv" else (lambda u: u.pointwise.conv)
            owners = {"mid": last(self.unit1), "out": last(self.unit2)}
        for k, block in enumerate(getattr(self, "transformer", ())):
            owners[f"ffn{k}"] = block.ffn[0].conv
        return owners

    def widths(self) -> dict[str, int]:
        """The actual channel counts, read from the layers (they change when pruned)."""
        return {name: conv.out_channels for name, conv in self.width_owners().items()}


class KeyValueSummary(nn.Module):
    """The keys and values summed up over the positions: (B, heads, d, N) values and keys -> (B, heads, d + 1, d),
    the mean of ``v k^T`` over the positions with the mean of ``k`` below it (the normaliser's row).

    A mean, so that its range is the same at every image size (FP16 does not overflow on large images). Its own
    module so that its ONNX nodes are named ``.../summary/...``, which INT8 keeps in float (see ``Readout``).
    """

    def forward(self, v: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        kv = (v @ k.transpose(-1, -2)) / k.shape[-1]
        return torch.cat([kv, k.mean(-1).unsqueeze(-2)], dim=2)


class Readout(nn.Module):
    """Each position's attention output from the summary: (B, heads, d + 1, d) summary and (B, heads, d, N) queries
    -> (B, heads, d, N), the summary times the query divided by the normaliser row's product.

    Its ONNX nodes (``.../readout/...``) and the summary's stay float in every INT8 file
    (``edgeunet.export.int8.candidates.float_attention_nodes``): the summary's MatMul sums over the positions,
    and the division takes the ratio of two small numbers, where a denominator rounded to zero in int8 blows the
    output up (a trained ``unet-vit`` measured -35 dB SQNR there before). Their inputs q, k and v stay int8
    (ONNX Runtime reads them in ``MatMulIntegerToFloat``), and so does their output, a weighted mean of values
    with the range of v at every image size.
    """

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, summary: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        out = summary @ q  # (B, heads, d + 1, N): the attention's sums, then its normaliser
        return out[:, :, :-1] / (out[:, :, -1:] + self.eps)


class LinearAttention(nn.Module):
    """Multi-head ReLU linear attention over every position of a feature map (EfficientViT, Cai et al. 2023).

    ``softmax(q k^T) v`` becomes ``(v relu(k)^T) relu(q)`` normalised by ``(1 relu(k)^T) relu(q)``: linear in the
    number of positions N, no softmax or exponent, and every op a 1x1 conv, a ReLU, a MatMul or a division, which
    INT8 kernels and every runtime handle. The key-value summary is a mean over the positions
    (``KeyValueSummary``), so FP16 does not overflow on large images; it and the ``Readout`` stay float in INT8.

    (B, channels, *spatial) -> (B, channels, *spatial); ``dim`` (heads x head_dim) is the width of q, k, v.
    """

    def __init__(self, channels: int, dim: int, heads: int, spatial_dims: int = 2, eps: float = 1e-6):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the attention width {dim} is not divisible by {heads} heads")
        dims = {"spatial_dims": spatial_dims}
        # q and k end in their ReLU, v is linear: three convs, so that each INT8 output has the range of what it is
        self.q = ConvNormAct(channels, dim, 1, norm=False, **dims)
        self.k = ConvNormAct(channels, dim, 1, norm=False, **dims)
        self.v = conv_layer(spatial_dims, channels, dim, 1, bias=False)
        self.summary, self.readout = KeyValueSummary(), Readout(eps)
        self.proj = ConvNormAct(dim, channels, 1, act=False, **dims)
        self.heads, self.head_dim = heads, dim // heads

    def matmul_macs(self, shape: tuple[int, ...]) -> int:
        """Multiply-accumulates of the two MatMuls for an input of ``shape`` (the convs are counted as modules)."""
        positions = math.prod(shape[2:])
        return shape[0] * self.heads * (2 * self.head_dim + 1) * self.head_dim * positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one reshape per tensor, from one read of the input's shape: dynamic shapes cost a few small ops in ONNX
        batch, spatial = x.shape[0], x.shape[2:]
        q, k, v = (f(x).reshape(batch, self.heads, self.head_dim, -1) for f in (self.q, self.k, self.v))
        return self.proj(self.readout(self.summary(v, k), q).reshape(batch, -1, *spatial))


class TransformerBlock(nn.Module):
    """One Transformer block laid out for INT8 on CPUs: ReLU linear attention, then a conv feed-forward (1x1
    expand - depthwise 3x3 - 1x1 project, ReLU), each a residual branch, with BatchNorm (which folds into the
    convs) in place of LayerNorm. The feed-forward's depthwise conv carries the positions (as SegFormer's Mix-FFN
    does): it works at any input size, unlike a fixed-size table. A separate positional depthwise conv before the
    attention would add a conv and a residual add per block, small ops that gain little from INT8 on these maps.
    """

    def __init__(self, channels: int, dim: int, heads: int, hidden: int, spatial_dims: int = 2):
        super().__init__()
        dims = {"spatial_dims": spatial_dims}
        self.attn = LinearAttention(channels, dim, heads, **dims)
        self.ffn = nn.Sequential(ConvNormAct(channels, hidden, 1, **dims),
                                 ConvNormAct(hidden, hidden, 3, groups=hidden, **dims),
                                 ConvNormAct(hidden, channels, 1, act=False, **dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection (Oktay et al. 2018, Attention U-Net).

    The gating signal ``g`` (decoder, already up-sampled) and the skip ``x`` are projected to
    ``gate_channels``, summed, and turned into a (B, 1, *spatial) weight in [0, 1] for ``x``.
    """

    def __init__(self, gating_channels: int, skip_channels: int, gate_channels: int, spatial_dims: int = 2):
        super().__init__()
        self.gating = ConvNormAct(gating_channels, gate_channels, 1, act=False, spatial_dims=spatial_dims)
        self.skip = ConvNormAct(skip_channels, gate_channels, 1, act=False, spatial_dims=spatial_dims)
        self.psi = nn.Sequential(nn.ReLU(inplace=False), conv_layer(spatial_dims, gate_channels, 1, 1), nn.Sigmoid())

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.psi(self.gating(g) + self.skip(x))


class Pool(nn.Module):
    """Max pooling by a per-axis factor given at each call: one module serves every level, so the
    ONNX nodes are named ``/encoder/pool/MaxPool``, ``/encoder/pool_1/MaxPool``, ... as always."""

    def __init__(self, spatial_dims: int = 2):
        super().__init__()
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor, factor: tuple[int, ...]) -> torch.Tensor:
        size = _scalar_if_uniform(factor)
        return _MAX_POOL[self.spatial_dims](x, size, size)


class Up(nn.Module):
    """Multiplies each spatial size by ``factor`` (2 per axis by default): a transposed conv with
    kernel = stride = factor, or a resize (bilinear, trilinear or nearest) after a 1x1 conv, which
    ``act`` follows with BatchNorm + ReLU (``ModelConfig.up_act``)."""

    def __init__(self, in_channels: int, out_channels: int, mode: str, spatial_dims: int = 2,
                 factor: tuple[int, ...] | None = None, act: bool = False):
        super().__init__()
        factor = _scalar_if_uniform(tuple(factor or (2,) * spatial_dims))
        if mode == "transpose":
            self.conv = _CONV_TRANSPOSE[spatial_dims](in_channels, out_channels, factor, stride=factor)
        elif mode in ("bilinear", "trilinear", "nearest"):
            self.conv = conv_layer(spatial_dims, in_channels, out_channels, 1, bias=False)
        else:
            raise ValueError(f"unknown upsample {mode!r}: use 'transpose', 'bilinear', 'trilinear' or 'nearest'")
        if act and mode == "transpose":
            raise ValueError("up_act needs a resize up-sampling ('bilinear', 'trilinear' or 'nearest')")
        # attributes only when on: the state_dict of an Up without them reads as before
        if act:
            self.norm, self.act = _NORM[spatial_dims](out_channels), nn.ReLU(inplace=True)
        self.mode = mode
        self.scale = float(factor) if isinstance(factor, int) else tuple(float(f) for f in factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "transpose":
            return self.conv(x)
        # 1x1 conv before the resize: same result, 2**spatial_dims times fewer MACs.
        align_corners = None if self.mode == "nearest" else False
        x = self.conv(x)
        if hasattr(self, "norm"):
            x = self.act(self.norm(x))
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=align_corners)


class DecoderStage(nn.Module):
    """Up-sample, gate the skip (optional), concatenate [skip, up], then a DoubleBlock."""

    def __init__(self, block: str, in_channels: int, skip_channels: int, widths: dict[str, int], upsample: str,
                 attention: bool, spatial_dims: int = 2, factor: tuple[int, ...] | None = None,
                 up_act: bool = False):
        super().__init__()
        dims = {"spatial_dims": spatial_dims}
        self.up = Up(in_channels, widths["up"], upsample, factor=factor, act=up_act, **dims)
        self.gate = AttentionGate(widths["up"], skip_channels, widths["gate"], **dims) if attention else None
        self.block = DoubleBlock(block, skip_channels + widths["up"], widths, **dims)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if self.gate is not None:
            skip = self.gate(x, skip)
        return self.block(torch.cat([skip, x], dim=1))

    def width_owners(self) -> dict[str, nn.Module]:
        """Width name -> owning conv: the up-sampling conv, the gate's skip projection, then the block's."""
        owners = {"up": self.up.conv}
        if self.gate is not None:
            owners["gate"] = self.gate.skip.conv
        return {**owners, **self.block.width_owners()}

    def widths(self) -> dict[str, int]:
        """The actual channel counts (``up``, ``gate``, then the block's)."""
        return {name: conv.out_channels for name, conv in self.width_owners().items()}
