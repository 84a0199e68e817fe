"""
Heatmaps to joint coordinates.

The paper decodes each joint with a hard argmax over its heatmap (spec section 4.1) and scores
the integer pixel. :func:`decode_heatmaps` returns that argmax as float ``(x=column, y=row)``
pixel indices of the model input (pixel centres at integers), optionally refined to sub-pixel
precision with a separable parabola through the peak and its two neighbours along each axis
(the vertex of the parabola, clamped to within half a pixel; no refinement along an axis where
the peak touches the border or the neighbours do not form a concave parabola).

Confidence is the heatmap value at the argmax clipped to ``[0, 1]``: the training targets are
Gaussians with peak 1 on a zero background, so the peak height estimates how sure the network is
(0 where it predicts background everywhere). A joint whose heatmap holds any NaN or infinity gets
NaN coordinates and confidence 0: a non-finite network output never produces a pose.

On the CPU the integer decode of all-finite maps (the node's case, once per SNN step) takes
a compiled fast path: one pass over the maps in their memory order (the SNN's heatmaps are
channels-last), 0.05 instead of 0.27 ms for 13 maps of 64x64; it returns the same values (ties
included: both take the first maximum in row-major order).
"""
from typing import NamedTuple

import numba
import numpy as np
import torch

DEFAULT_MIN_CONFIDENCE = 0.025
"""Joints below this confidence are reported missing (the node's ``min_confidence`` default):
between the 2nd and 3rd percentile of the bundled hybrid's confidences of visible joints on its
validation windows (docs/training.md)."""


class JointEstimates(NamedTuple):
    """Decoded joints: ``xy [..., J, 2]`` as (column, row) and ``confidence [..., J]``."""

    xy: torch.Tensor
    confidence: torch.Tensor


def _parabola_offset(left: torch.Tensor, centre: torch.Tensor,
                     right: torch.Tensor) -> torch.Tensor:
    """Vertex offset of the parabola through three equally spaced samples, in ``[-0.5, 0.5]``."""
    curvature = left - 2.0 * centre + right
    concave = curvature < 0
    offset = 0.5 * (left - right) / torch.where(concave, curvature, torch.ones_like(curvature))
    return torch.where(concave, offset.clamp(-0.5, 0.5), torch.zeros_like(offset))


def decode_heatmaps(heatmaps: torch.Tensor, subpixel: bool = False) -> JointEstimates:
    """
    Decode ``heatmaps [..., J, H, W]`` to joint positions and confidences.

    Without ``subpixel`` the coordinates are the paper's integer argmax (ties: first index in
    row-major order). Results are float32 on the heatmaps' device.
    """
    if heatmaps.dim() < 3:
        raise ValueError(f'heatmaps must be [..., J, H, W], got {tuple(heatmaps.shape)}')
    if not subpixel and heatmaps.device.type == 'cpu':
        fast = _decode_finite_cpu(heatmaps)
        if fast is not None:
            return fast
    maps = heatmaps.detach().float().contiguous()   # channels-last input: one copy, fast scans
    height, width = maps.shape[-2:]
    flat = maps.flatten(-2)
    finite_values = torch.isfinite(flat)
    finite = finite_values.all(dim=-1)
    safe = torch.where(finite_values, flat, torch.zeros_like(flat))
    peak, index = safe.max(dim=-1)
    row = torch.div(index, width, rounding_mode='floor')
    col = index - row * width
    x, y = col.float(), row.float()
    if subpixel:
        def sample(dr: int, dc: int) -> torch.Tensor:
            r = (row + dr).clamp(0, height - 1)
            c = (col + dc).clamp(0, width - 1)
            return safe.gather(-1, (r * width + c).unsqueeze(-1)).squeeze(-1)

        inside_x = (col > 0) & (col < width - 1)
        inside_y = (row > 0) & (row < height - 1)
        x = x + torch.where(inside_x, _parabola_offset(sample(0, -1), peak, sample(0, 1)), 0.0)
        y = y + torch.where(inside_y, _parabola_offset(sample(-1, 0), peak, sample(1, 0)), 0.0)
    nan = torch.full_like(x, float('nan'))
    xy = torch.stack((torch.where(finite, x, nan), torch.where(finite, y, nan)), dim=-1)
    confidence = torch.where(finite, peak.clamp(0.0, 1.0), torch.zeros_like(peak))
    return JointEstimates(xy, confidence)


def _decode_finite_cpu(heatmaps: torch.Tensor) -> JointEstimates | None:
    """Integer decode of CPU heatmaps in one compiled pass; None if any value is not finite."""
    peaks = decode_finite_peaks(heatmaps.detach().float().numpy())
    if peaks is None:
        return None
    return JointEstimates(torch.from_numpy(peaks[0]), torch.from_numpy(peaks[1]))


def decode_finite_peaks(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """
    Integer decode of float32 maps ``[..., J, H, W]`` in numpy, any memory layout.

    Returns ``(xy [..., J, 2], confidence [..., J])`` as :func:`decode_heatmaps` does, or None
    if any value is not finite (that case needs :func:`decode_heatmaps`). The node's path: it
    skips the torch wrapping, which costs more than the pass itself.
    """
    *leading, joints, height, width = maps.shape
    xy, confidence, finite = _first_peaks(maps.reshape(-1, joints, height, width))
    if not finite:
        return None
    return xy.reshape(*leading, joints, 2), confidence.reshape(*leading, joints)


@numba.njit(cache=True, nogil=True)
def _first_peaks(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """
    Find the first maximum (row-major) of each ``maps[n, j]`` ``[N, J, H, W]``.

    Returns ``(xy [N, J, 2], confidence [N, J], finite)``: the maximum's column and row and its
    value clipped to [0, 1], all float32; stops with ``finite`` False at the first NaN or
    infinity. Pixels are the outer loops and joints the inner one, the memory order of
    channels-last maps.
    """
    count, joints, height, width = maps.shape
    xy = np.zeros((count, joints, 2), dtype=np.float32)
    peak = np.full((count, joints), -np.inf, dtype=np.float32)
    for n in range(count):
        for row in range(height):
            for col in range(width):
                for joint in range(joints):
                    value = maps[n, joint, row, col]
                    if not np.isfinite(value):
                        return xy, peak, False
                    if value > peak[n, joint]:
                        peak[n, joint] = value
                        xy[n, joint, 0] = col
                        xy[n, joint, 1] = row
    return xy, np.minimum(np.maximum(peak, np.float32(0.0)), np.float32(1.0)), True
