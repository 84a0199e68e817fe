"""
Convolutions whose weights are reordered for oneDNN once, at preparation (CPU inference).

torch's eager ``Conv2d`` hands oneDNN a plain weight, which oneDNN reorders into its blocked
layout on every call. On the 4x4 and 2x2 maps at the bottom of the ``cpu`` preset's ANN that
reorder costs more than the arithmetic. :class:`PackedConv2d` keeps the reordered weight and
runs oneDNN's fused conv + LeakyReLU (``torch.ops.mkldnn._convolution_pointwise``, the kernel
torch's own inductor compiler emits for frozen CPU convs): the ANN of the ``cpu`` preset went
from 6.3 to 4.9 ms in bfloat16 and from 10.6 to 8.3 ms in float32 on one thread of the 2-core
AMD EPYC (``hybrid_pose_model_bench`` times both in one run). The function computed is the
same up to float rounding.
"""
import functools

import torch
from torch import nn


def packing_available(device: torch.device | str = 'cpu',
                      dtype: torch.dtype = torch.float32) -> bool:
    """
    Whether :class:`PackedConv2d` runs on ``device`` for ``dtype`` weights.

    It needs a CPU whose torch has oneDNN, and for bfloat16 a CPU oneDNN can pack it for
    (AVX512-BW/VL/DQ or AVX-NE-CONVERT); elsewhere those convs stay plain ``Conv2d``.
    """
    return torch.device(device).type == 'cpu' and _packed_conv_runs(dtype)


@functools.cache
def _packed_conv_runs(dtype: torch.dtype) -> bool:
    """Pack and run one small conv: the oneDNN ops are internal, so probe them once."""
    if not (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, '_convolution_pointwise')):
        return False
    conv = nn.Conv2d(2, 2, 3, padding=1, dtype=dtype).requires_grad_(False)
    x = torch.ones(1, 2, 4, 4, dtype=dtype)
    try:
        return bool(torch.allclose(PackedConv2d(conv, 0.1)(x).float(),
                                   torch.nn.functional.leaky_relu(conv(x), 0.1).float(),
                                   atol=1e-2 if dtype == torch.bfloat16 else 1e-5))
    except (RuntimeError, NotImplementedError):   # a build or CPU without these kernels
        return False


class PackedConv2d(nn.Module):
    """
    An inference-only ``Conv2d`` (optionally followed by LeakyReLU) with a prepacked weight.

    Inputs must have the conv's dtype; the output has the input's memory format. The packed
    weight is not a parameter or buffer (oneDNN's opaque tensors cannot be saved): save and load
    the unprepared model, and prepare it again.
    """

    def __init__(self, conv: nn.Conv2d, leaky_slope: float | None = None) -> None:
        super().__init__()
        if conv.padding_mode != 'zeros' or isinstance(conv.padding, str):
            raise ValueError('PackedConv2d needs numeric zero padding')
        weight = conv.weight.detach()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.leaky_slope = tuple(conv.kernel_size), leaky_slope
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.dtype = weight.dtype
        self.weight = torch._C._nn.mkldnn_reorder_conv2d_weight(
            weight.to_mkldnn(), self.padding, self.stride, self.dilation, self.groups)
        self.register_buffer('bias', None if conv.bias is None else conv.bias.detach().clone())
        self.attr, self.scalars = ('none', []) if leaky_slope is None else (
            'leaky_relu', [float(leaky_slope)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x [B, C_in, H, W]`` (and apply the fused LeakyReLU)."""
        if x.dtype != self.dtype:
            raise TypeError(f'PackedConv2d holds {self.dtype} weights, got a {x.dtype} input')
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
            self.attr, self.scalars, None)

    def unpacked(self) -> nn.Conv2d:
        """Return the equivalent plain ``Conv2d`` (without the fused activation)."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride,
                         self.padding, self.dilation, self.groups, bias=self.bias is not None,
                         dtype=self.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.weight.to_dense())
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.requires_grad_(False)

    def __deepcopy__(self, memo: dict) -> 'PackedConv2d':
        """Copy by packing the plain weight again (oneDNN's packed tensors cannot be copied)."""
        return PackedConv2d(self.unpacked(), self.leaky_slope).train(self.training)

    def extra_repr(self) -> str:
        """Describe the conv like ``nn.Conv2d`` does, plus the fused activation."""
        return (f'{self.in_channels}, {self.out_channels}, stride={tuple(self.stride)}, '
                f'padding={tuple(self.padding)}, dtype={self.dtype}, activation={self.attr}')


def pack_convolutions(module: nn.Module) -> nn.Module:
    """
    Replace every ``Conv2d`` under ``module`` by a :class:`PackedConv2d`, in place.

    Convs whose weight dtype cannot be packed on this CPU (:func:`packing_available`) stay.

    A LeakyReLU that directly follows a conv in an ``nn.Sequential`` (``Identity`` modules, the
    folded BatchNorms, in between are skipped) is fused into it and replaced by ``Identity``.
    Returns ``module``.
    """
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for index, (name, child) in enumerate(children):
            if not (isinstance(child, nn.Conv2d)
                    and packing_available('cpu', child.weight.dtype)):
                continue
            slope = None
            if isinstance(parent, nn.Sequential):
                following = [(n, c) for n, c in children[index + 1:]
                             if not isinstance(c, nn.Identity)]
                if following and isinstance(following[0][1], nn.LeakyReLU):
                    slope = following[0][1].negative_slope
                    setattr(parent, following[0][0], nn.Identity())
            setattr(parent, name, PackedConv2d(child, slope))
    return module
