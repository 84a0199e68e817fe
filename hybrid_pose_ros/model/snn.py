"""
The spiking UNet stepped once per event bin (spec section 3.2).

Every conv is bias-free and followed by BatchNorm and a LIF neuron; the membranes of the nine
LIF layers are passed in and returned explicitly (:data:`SNN_LAYERS` order)::

    x_in = LIF(BN(conv5x5(frame)))                          static_conv   C0 @ H
    x1   = LIF(BN(conv5x5 s2(x_in)))                        down1         C1 @ H/2
    x2   = LIF(BN(conv5x5 s2(x1)))                          down2         C2 @ H/4
    x3   = LIF(BN(conv5x5 s2(x2)))                          down3         C3 @ H/8
    mid  = LIF(BN(conv3x3(x3)))                             res_conv1     C3 @ H/8
    r1   = LIF(BN(conv3x3(mid)) + x3)                       res_conv2     C3 @ H/8
    u1   = LIF(BN(conv5x5(up2x(cat(r1, x3)))))              up1           C2 @ H/4
    u2   = LIF(BN(conv5x5(up2x(cat(u1, x2)))))              up2           C1 @ H/2
    u3   = LIF(BN(conv5x5(up2x(cat(u2, x1)))))              up3           C0 @ H
    out  = conv1x1(cat(u3, x_in))                           head          J  @ H

``up2x`` is bilinear with ``align_corners=False``, so decoder conv inputs are fractional. The
hybrid head is a bare 1x1 conv (the heatmap delta); the pure-SNN head adds BatchNorm(J).
Paper sizes: 4,410,112 parameters (hybrid head), 4,410,138 (pure-SNN head), 24.02 GMAC dense.
"""
from collections.abc import Mapping
from dataclasses import dataclass

from hybrid_pose_ros.model.ann import xavier_init_convs
from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.model.lif import lif_step
import torch
from torch import nn
import torch.nn.functional as F

SNN_LAYERS = ('static_conv', 'down1', 'down2', 'down3', 'res_conv1', 'res_conv2',
              'up1', 'up2', 'up3')
"""The nine LIF layers in step order (official state names v_in, v_1, ..., v_8)."""

Membranes = list[torch.Tensor]


@dataclass(frozen=True)
class StepActivity:
    """
    The spike maps of one step, by layer name, for energy accounting and diagnostics.

    ``rates``: each layer's firing rate, where the step counted its spikes anyway (the
    event-driven step lists them, and makes its maps only when they are read); otherwise
    :meth:`firing_rates` averages the maps.
    """

    spikes: Mapping[str, torch.Tensor]
    rates: dict[str, float] | None = None

    def firing_rates(self) -> dict[str, float]:
        """Mean fraction of neurons that fired in each layer (spikes / (B*C*H*W))."""
        if self.rates is not None:
            return dict(self.rates)
        return {name: float(s.detach().mean()) for name, s in self.spikes.items()}


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling with ``align_corners=False`` (decoder and ``states_4``)."""
    return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


class ConvBN(nn.Sequential):
    """Bias-free conv (``same`` padding, optional stride) followed by BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class MembraneLayout:
    """Shapes of the nine membranes, from ``self.config`` (shared by the dense and sparse SNNs)."""

    config: ModelConfig

    def membrane_shapes(self, batch_size: int, height: int | None = None,
                        width: int | None = None) -> list[tuple[int, int, int, int]]:
        """Shapes ``[B, C, H, W]`` of the nine membranes for an input of ``height x width``."""
        height = self.config.input_height if height is None else height
        width = self.config.input_width if width is None else width
        c0, c1, c2, c3 = self.config.snn_widths
        channels_and_scale = [(c0, 1), (c1, 2), (c2, 4), (c3, 8), (c3, 8), (c3, 8),
                              (c2, 4), (c1, 2), (c0, 1)]
        return [(batch_size, c, height // s, width // s) for c, s in channels_and_scale]

    def zero_membranes(self, batch_size: int, height: int | None = None,
                       width: int | None = None, device: torch.device | str | None = None,
                       dtype: torch.dtype | None = None) -> Membranes:
        """Nine all-zero membranes (the state after a reset)."""
        return [torch.zeros(shape, device=device, dtype=dtype)
                for shape in self.membrane_shapes(batch_size, height, width)]


class SpikingUNet(MembraneLayout, nn.Module):
    """
    Spiking UNet with explicit membrane state.

    ``tau`` is the leak of all nine LIF layers; ``head_batchnorm`` selects the pure-SNN head
    (conv 1x1 + BN) instead of the hybrid's bare conv 1x1.
    """

    def __init__(self, config: ModelConfig, tau: float, head_batchnorm: bool = False) -> None:
        super().__init__()
        self.config = config
        self.tau = tau
        self.v_threshold = config.v_threshold
        self.alpha = config.surrogate_alpha
        c0, c1, c2, c3 = config.snn_widths
        self.static_conv = ConvBN(config.snn_in_channels, c0, 5)
        self.down1 = ConvBN(c0, c1, 5, stride=2)
        self.down2 = ConvBN(c1, c2, 5, stride=2)
        self.down3 = ConvBN(c2, c3, 5, stride=2)
        self.res_conv1 = ConvBN(c3, c3, 3)
        self.res_conv2 = ConvBN(c3, c3, 3)
        self.up1 = ConvBN(2 * c3, c2, 5)
        self.up2 = ConvBN(2 * c2, c1, 5)
        self.up3 = ConvBN(2 * c1, c0, 5)
        head_conv = nn.Conv2d(2 * c0, config.num_joints, 1, bias=False)
        if head_batchnorm:
            self.head = nn.Sequential(head_conv, nn.BatchNorm2d(config.num_joints))
        else:
            self.head = head_conv
        xavier_init_convs(self)

    def step(self, frame: torch.Tensor, membranes: Membranes,
             readout: torch.Tensor | None = None, readout_decay: float = 1.0
             ) -> tuple[torch.Tensor, Membranes, StepActivity]:
        """
        Run one time step on an event-count frame ``[B, snn_in_channels, H, W]``.

        ``membranes`` are the nine potentials before this step's charge. Returns the head output
        ``[B, J, H, W]`` (with ``readout``: ``readout_decay * readout`` plus the head output, the
        hybrid's heatmap update), the nine post-reset membranes and the step's spike maps.
        """
        if len(membranes) != len(SNN_LAYERS):
            raise ValueError(f'expected {len(SNN_LAYERS)} membranes, got {len(membranes)}')
        new_membranes: Membranes = []

        def fire(current: torch.Tensor) -> torch.Tensor:
            # Layers fire in SNN_LAYERS order: the next membrane is number len(new_membranes).
            spikes, v = lif_step(membranes[len(new_membranes)], current, self.tau,
                                 self.v_threshold, self.alpha)
            new_membranes.append(v)
            return spikes

        x_in = fire(self.static_conv(frame))
        x1 = fire(self.down1(x_in))
        x2 = fire(self.down2(x1))
        x3 = fire(self.down3(x2))
        mid = fire(self.res_conv1(x3))
        r1 = fire(self.res_conv2(mid) + x3)
        u1 = fire(self.up1(upsample2x(torch.cat((r1, x3), dim=1))))
        u2 = fire(self.up2(upsample2x(torch.cat((u1, x2), dim=1))))
        u3 = fire(self.up3(upsample2x(torch.cat((u2, x1), dim=1))))
        out = self.head(torch.cat((u3, x_in), dim=1))
        if readout is not None:   # decay * H + delta, rounded as the official code rounds it
            out = torch.mul(readout, readout_decay).add_(out)
        return out, new_membranes, StepActivity(
            dict(zip(SNN_LAYERS, (x_in, x1, x2, x3, mid, r1, u1, u2, u3))))
