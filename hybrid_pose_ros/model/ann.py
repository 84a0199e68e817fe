"""
The ANN: the SuperSloMo UNet that predicts heatmaps and feeds the SNN state initialisers.

Spec section 3.1. Every conv has a bias and is followed by LeakyReLU(0.1), except the 3x3 head,
whose output is the linear heatmap. Downs are ``avgpool 2 -> conv -> conv``; ups are
``bilinear x2 (align_corners=False) -> conv 3x3 -> cat skip -> conv 3x3``. With the ``paper``
preset: 20 -> 32 -> 64 -> 128 -> 256 -> 512 -> 512 channels, 19,818,669 parameters and
22.60 GMAC at 256x256.
"""
from typing import NamedTuple

from hybrid_pose_ros.model.config import ModelConfig
import torch
from torch import nn
import torch.nn.functional as F


class AnnOutput(NamedTuple):
    """ANN result: linear heatmaps ``[B, J, H, W]`` and the named intermediate features."""

    heatmap: torch.Tensor
    features: dict[str, torch.Tensor]


def xavier_init_convs(module: nn.Module) -> None:
    """Xavier-normal initialise every conv weight under ``module`` (biases keep the default)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_normal_(layer.weight)


class ConvLeaky(nn.Sequential):
    """Conv with bias (``same`` padding) followed by LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 slope: float) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.LeakyReLU(slope),
        )


class Down(nn.Sequential):
    """Encoder block: 2x average pool, then two conv + LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 slope: float) -> None:
        super().__init__(
            nn.AvgPool2d(2),
            ConvLeaky(in_channels, out_channels, kernel_size, slope),
            ConvLeaky(out_channels, out_channels, kernel_size, slope),
        )


class Up(nn.Module):
    """Decoder block: bilinear x2, conv 3x3, concatenate the skip, conv 3x3 (each + LeakyReLU)."""

    def __init__(self, in_channels: int, out_channels: int, slope: float) -> None:
        super().__init__()
        self.conv1 = ConvLeaky(in_channels, out_channels, 3, slope)
        self.conv2 = ConvLeaky(2 * out_channels, out_channels, 3, slope)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``x`` to the skip's resolution and fuse the two."""
        x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
        x = self.conv1(x)
        return self.conv2(torch.cat((x, skip), dim=1))


class AnnUNet(nn.Module):
    """SuperSloMo UNet mapping a 20-channel event histogram to joint heatmaps."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        slope = config.leaky_slope
        w0, w1, w2, w3, w4, w5 = config.ann_widths
        self.conv1 = ConvLeaky(config.ann_in_channels, w0, 7, slope)
        self.conv2 = ConvLeaky(w0, w0, 7, slope)
        self.down1 = Down(w0, w1, 5, slope)
        self.down2 = Down(w1, w2, 3, slope)
        self.down3 = Down(w2, w3, 3, slope)
        self.down4 = Down(w3, w4, 3, slope)
        self.down5 = Down(w4, w5, 3, slope)
        self.up1 = Up(w5, w4, slope)
        self.up2 = Up(w4, w3, slope)
        self.up3 = Up(w3, w2, slope)
        self.up4 = Up(w2, w1, slope)
        self.up5 = Up(w1, w0, slope)
        self.head = nn.Conv2d(w0, config.num_joints, 3, padding=1)
        xavier_init_convs(self)

    def forward(self, x: torch.Tensor) -> AnnOutput:
        """Map ``[B, ann_in_channels, H, W]`` counts to heatmaps and features."""
        s1 = self.conv2(self.conv1(x))
        s2 = self.down1(s1)
        s3 = self.down2(s2)
        s4 = self.down3(s3)
        s5 = self.down4(s4)
        bottom = self.down5(s5)
        u1 = self.up1(bottom, s5)
        u2 = self.up2(u1, s4)
        u3 = self.up3(u2, s3)
        u4 = self.up4(u3, s2)
        u5 = self.up5(u4, s1)
        features = {'conv2': s1, 'down1': s2, 'down2': s3, 'down3': s4,
                    'up1': u1, 'up2': u2, 'up3': u3, 'up4': u4, 'up5': u5}
        return AnnOutput(self.head(u5), features)
