"""Heatmap decoding: paper argmax, sub-pixel refinement, confidence, non-finite maps."""
import math

from hybrid_pose_ros.model import decode
from hybrid_pose_ros.model.decode import decode_heatmaps
import numpy as np
import pytest
import torch


def gaussian_map(height: int, width: int, x: float, y: float, sigma: float = 2.0,
                 peak: float = 1.0) -> torch.Tensor:
    rows = torch.arange(height, dtype=torch.float64)[:, None]
    cols = torch.arange(width, dtype=torch.float64)[None, :]
    return peak * torch.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma ** 2))


def test_hard_argmax_returns_column_row():
    heatmaps = torch.zeros(13, 16, 20)
    for joint in range(13):
        heatmaps[joint, joint, joint + 3] = 0.5 + joint
    joints = decode_heatmaps(heatmaps)
    assert joints.xy.shape == (13, 2) and joints.confidence.shape == (13,)
    assert joints.xy[:, 0].tolist() == [float(j + 3) for j in range(13)]
    assert joints.xy[:, 1].tolist() == [float(j) for j in range(13)]
    assert joints.xy.dtype == torch.float32


def test_confidence_is_clipped_peak():
    heatmaps = torch.full((3, 8, 8), -2.0)
    heatmaps[0, 4, 4] = 0.6
    heatmaps[1, 2, 2] = 7.0
    joints = decode_heatmaps(heatmaps)
    torch.testing.assert_close(joints.confidence, torch.tensor([0.6, 1.0, 0.0]))
    assert joints.xy[2].tolist() == [0.0, 0.0]  # all equal: the first pixel


def test_batched_and_ties_take_first_index():
    heatmaps = torch.zeros(2, 13, 8, 8)
    heatmaps[1, :, 3, 5] = 1.0
    heatmaps[1, :, 6, 1] = 1.0
    joints = decode_heatmaps(heatmaps)
    assert joints.xy.shape == (2, 13, 2)
    assert joints.xy[1, 0].tolist() == [5.0, 3.0]


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_heatmap_gives_nan_and_zero_confidence(bad):
    heatmaps = torch.zeros(13, 8, 8)
    heatmaps[:, 2, 3] = 0.9
    heatmaps[4, 5, 5] = bad
    for subpixel in (False, True):
        joints = decode_heatmaps(heatmaps, subpixel=subpixel)
        assert torch.isnan(joints.xy[4]).all()
        assert joints.confidence[4].item() == 0.0
        others = [j for j in range(13) if j != 4]
        assert joints.xy[others].tolist() == [[3.0, 2.0]] * 12
        torch.testing.assert_close(joints.confidence[others], torch.full((12,), 0.9))


def test_subpixel_refines_a_gaussian_peak():
    true_x, true_y = 10.3, 7.8
    heatmap = gaussian_map(16, 24, true_x, true_y)[None]
    coarse = decode_heatmaps(heatmap)
    fine = decode_heatmaps(heatmap, subpixel=True)
    assert coarse.xy[0].tolist() == [10.0, 8.0]
    assert abs(fine.xy[0, 0].item() - true_x) < 0.05
    assert abs(fine.xy[0, 1].item() - true_y) < 0.05
    assert fine.confidence[0].item() == pytest.approx(coarse.confidence[0].item())


def test_subpixel_is_exact_for_a_parabola_and_stays_within_half_a_pixel():
    cols = torch.arange(9, dtype=torch.float32)
    rows = torch.arange(7, dtype=torch.float32)
    heatmap = (1.0 - 0.05 * (cols[None, :] - 4.25) ** 2 - 0.05 * (rows[:, None] - 2.6) ** 2)
    fine = decode_heatmaps(heatmap[None], subpixel=True)
    torch.testing.assert_close(fine.xy[0], torch.tensor([4.25, 2.6]))
    spike = torch.zeros(1, 5, 5)
    spike[0, 2, 2] = 1.0
    spike[0, 2, 3] = 1.0 - 1e-6  # almost a plateau towards +x: vertex half a pixel right
    assert decode_heatmaps(spike, subpixel=True).xy[0, 0].item() == pytest.approx(2.5)


def test_subpixel_leaves_border_peaks_and_plateaus_alone():
    heatmap = torch.zeros(1, 6, 6)
    heatmap[0, 0, 5] = 1.0
    assert decode_heatmaps(heatmap, subpixel=True).xy[0].tolist() == [5.0, 0.0]
    flat = torch.ones(1, 6, 6)
    assert decode_heatmaps(flat, subpixel=True).xy[0].tolist() == [0.0, 0.0]


def test_rejects_maps_without_joint_axis():
    with pytest.raises(ValueError, match='J, H, W'):
        decode_heatmaps(torch.zeros(8, 8))


@pytest.mark.parametrize('layout', [torch.channels_last, torch.contiguous_format])
def test_compiled_fast_path_equals_the_torch_path(monkeypatch, layout):
    generator = torch.Generator().manual_seed(3)
    maps = torch.randn(2, 13, 24, 20, generator=generator)
    maps[0, :, 5, 7] = maps[0, :, 9, 2] = 9.0        # ties: the first maximum wins
    maps[1, 3] = -1.5                                  # a flat map: the first pixel
    maps = maps.contiguous(memory_format=layout)
    fast, fast_one = decode_heatmaps(maps), decode_heatmaps(maps[1])
    monkeypatch.setattr(decode, '_decode_finite_cpu', lambda heatmaps: None)
    general, general_one = decode_heatmaps(maps), decode_heatmaps(maps[1])
    for got, want in ((fast, general), (fast_one, general_one)):
        assert torch.equal(got.xy, want.xy) and torch.equal(got.confidence, want.confidence)
        assert got.xy.dtype == want.xy.dtype and got.confidence.dtype == want.confidence.dtype
    assert fast.xy[0, 0].tolist() == [7.0, 5.0] and fast.xy[1, 3].tolist() == [0.0, 0.0]
    assert fast_one.xy.shape == (13, 2) and fast_one.confidence.shape == (13,)
    xy, confidence = decode.decode_finite_peaks(maps[1].numpy())   # the node's numpy path
    assert np.array_equal(xy, general_one.xy.numpy())
    assert np.array_equal(confidence, general_one.confidence.numpy())


def test_compiled_fast_path_gives_way_to_the_torch_path_on_nonfinite_values():
    maps = torch.zeros(13, 8, 8)
    maps[4, 2, 3] = float('inf')
    assert decode._decode_finite_cpu(maps) is None
    assert decode.decode_finite_peaks(maps.numpy()) is None
    assert decode._decode_finite_cpu(torch.zeros(13, 8, 8)) is not None


def test_cpu_integer_decode_takes_the_compiled_path(monkeypatch):
    calls = []
    compiled = decode._decode_finite_cpu
    monkeypatch.setattr(decode, '_decode_finite_cpu',
                        lambda maps: calls.append(tuple(maps.shape)) or compiled(maps))
    maps = torch.rand(13, 8, 8, generator=torch.Generator().manual_seed(2))
    decode_heatmaps(maps)
    decode_heatmaps(maps, subpixel=True)
    assert calls == [(13, 8, 8)]            # the integer decode only


BORDER_PEAKS = [(0, 2), (1, 2), (4, 2), (5, 2), (2, 0), (2, 1), (2, 4), (2, 5), (5, 5), (0, 0),
                (5, 0), (0, 5), (1, 1), (4, 4)]


def test_subpixel_next_to_every_border_and_in_a_batch():
    maps = torch.zeros(len(BORDER_PEAKS), 2, 6, 6)
    for i, (row, col) in enumerate(BORDER_PEAKS):
        for dr, dc, value in [(0, 0, 1.0), (0, -1, 0.5), (0, 1, 0.25), (-1, 0, 0.25),
                              (1, 0, 0.5)]:
            if 0 <= row + dr < 6 and 0 <= col + dc < 6:
                maps[i, :, row + dr, col + dc] = value
    xy = decode_heatmaps(maps, subpixel=True).xy
    for i, (row, col) in enumerate(BORDER_PEAKS):
        # the parabola through 0.5, 1, 0.25 peaks 0.1 px towards the 0.5 side, on either axis
        x = col - 0.1 if 0 < col < 5 else col
        y = row + 0.1 if 0 < row < 5 else row
        for joint in range(2):
            assert xy[i, joint].tolist() == pytest.approx([x, y], abs=1e-6), (row, col)
