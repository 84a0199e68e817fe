"""
Analytic dense multiply-accumulate (MAC) counts of every conv, for any configuration.

Convention (the one that reproduces the spec's numbers): a conv costs
``C_out * H_out * W_out * C_in * k * k`` MACs, padded taps included. Biases, BatchNorm,
activations, LIF updates, pooling, upsampling and concatenation are not counted. With the
``paper`` preset at 256x256 this gives 22.60 GMAC per ANN pass, 24.02 GMAC per dense SNN step
(per layer 104.9, 838.9, 838.9, 838.9, 604.0, 604.0, 6710.9, 6710.9, 6710.9 and 54.5 M for the
head) and 1.275 GMAC per state initialisation.
"""
from dataclasses import asdict, dataclass
import functools
from typing import Any

from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.model.hybrid import INITIALIZER_SOURCES
from hybrid_pose_ros.model.snn import SNN_LAYERS


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer: channels, kernel, stride and output size."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    out_height: int
    out_width: int

    @property
    def macs(self) -> int:
        """Dense MACs: ``C_out * H_out * W_out * C_in * k * k``."""
        return (self.out_channels * self.out_height * self.out_width * self.in_channels
                * self.kernel_size ** 2)

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary including the MAC count."""
        return {**asdict(self), 'macs': self.macs}


def snn_conv_specs(config: ModelConfig) -> dict[str, ConvSpec]:
    """Conv specs of the nine SNN layers and the 1x1 ``head``, in step order."""
    h, w = config.input_height, config.input_width
    c0, c1, c2, c3 = config.snn_widths
    rows = [  # name, C_in, C_out, k, stride, output scale
        ('static_conv', config.snn_in_channels, c0, 5, 1, 1),
        ('down1', c0, c1, 5, 2, 2),
        ('down2', c1, c2, 5, 2, 4),
        ('down3', c2, c3, 5, 2, 8),
        ('res_conv1', c3, c3, 3, 1, 8),
        ('res_conv2', c3, c3, 3, 1, 8),
        ('up1', 2 * c3, c2, 5, 1, 4),
        ('up2', 2 * c2, c1, 5, 1, 2),
        ('up3', 2 * c1, c0, 5, 1, 1),
        ('head', 2 * c0, config.num_joints, 1, 1, 1),
    ]
    return {name: ConvSpec(name, cin, cout, k, s, h // scale, w // scale)
            for name, cin, cout, k, s, scale in rows}


def ann_conv_specs(config: ModelConfig) -> dict[str, ConvSpec]:
    """Conv specs of the ANN UNet (two per block), named ``block.convN``."""
    h, w = config.input_height, config.input_width
    a = config.ann_widths
    specs = [ConvSpec('conv1', config.ann_in_channels, a[0], 7, 1, h, w),
             ConvSpec('conv2', a[0], a[0], 7, 1, h, w)]
    for i in range(1, 6):
        kernel, scale = (5 if i == 1 else 3), 2 ** i
        specs += [ConvSpec(f'down{i}.conv1', a[i - 1], a[i], kernel, 1, h // scale, w // scale),
                  ConvSpec(f'down{i}.conv2', a[i], a[i], kernel, 1, h // scale, w // scale)]
    for i in range(1, 6):
        cin, cout, scale = a[6 - i], a[5 - i], 2 ** (5 - i)
        specs += [ConvSpec(f'up{i}.conv1', cin, cout, 3, 1, h // scale, w // scale),
                  ConvSpec(f'up{i}.conv2', 2 * cout, cout, 3, 1, h // scale, w // scale)]
    specs.append(ConvSpec('head', a[0], config.num_joints, 3, 1, h, w))
    return {spec.name: spec for spec in specs}


def initializer_conv_specs(config: ModelConfig) -> dict[str, ConvSpec]:
    """List the two 1x1 convs of each state initialiser (at membrane resolution)."""
    ann = ann_conv_specs(config)
    snn = snn_conv_specs(config)
    feature_channels = {'conv2': ann['conv2'].out_channels}
    for block in ('down1', 'down2', 'down3', 'up1', 'up2', 'up3', 'up4', 'up5'):
        feature_channels[block] = ann[f'{block}.conv2'].out_channels
    specs = {}
    for layer in SNN_LAYERS:
        cin = feature_channels[INITIALIZER_SOURCES[layer]]
        cout = snn[layer].out_channels
        oh, ow = snn[layer].out_height, snn[layer].out_width
        specs[f'{layer}.conv1'] = ConvSpec(f'{layer}.conv1', cin, cout, 1, 1, oh, ow)
        specs[f'{layer}.conv2'] = ConvSpec(f'{layer}.conv2', cout, cout, 1, 1, oh, ow)
    return specs


def snn_layer_macs(config: ModelConfig) -> dict[str, int]:
    """Dense MACs of each SNN layer and the head for one step."""
    return {name: spec.macs for name, spec in snn_conv_specs(config).items()}


@functools.lru_cache(maxsize=32)
def ann_macs(config: ModelConfig) -> int:
    """Dense MACs of one ANN pass."""
    return sum(spec.macs for spec in ann_conv_specs(config).values())


@functools.lru_cache(maxsize=32)
def snn_step_macs(config: ModelConfig) -> int:
    """Dense MACs of one SNN step (all nine layers and the head)."""
    return sum(snn_layer_macs(config).values())


@functools.lru_cache(maxsize=32)
def initializer_macs(config: ModelConfig) -> int:
    """Dense MACs of one state initialisation (all nine initialisers)."""
    return sum(spec.macs for spec in initializer_conv_specs(config).values())
