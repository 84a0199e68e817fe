# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Dense tensors the networks read: the ANN's stacked histogram and the SNN's per-bin count frames.

All functions take events already in model-input coordinates (the caller applies
:class:`hybrid_pose_ros.events.sensor.SensorGeometry`) and return raw float32 counts, with no
normalisation, log or clipping, as in the reference implementation (paper spec §2, §6.4).
Histograms are accumulated with ``np.bincount`` on linear indices.
"""
import numpy as np


def _check_events(events: np.ndarray, height: int, width: int) -> None:
    """Raise ValueError if an event lies outside ``height x width`` or has a polarity > 1."""
    if height <= 0 or width <= 0:
        raise ValueError(f'frame size must be positive, got {height}x{width}')
    if len(events) == 0:
        return
    if int(events['x'].max()) >= width or int(events['y'].max()) >= height:
        raise ValueError(
            f'events outside the {width}x{height} input: max x={int(events["x"].max())}, '
            f'max y={int(events["y"].max())}; map them with SensorGeometry.to_model first')
    if int(events['p'].max()) > 1:
        raise ValueError(f'polarity must be 0 or 1, got {int(events["p"].max())}')


def _pixel_index(events: np.ndarray, width: int) -> np.ndarray:
    """Return ``y * width + x`` as int64."""
    return events['y'].astype(np.int64) * width + events['x']


def stacked_histogram(events: np.ndarray, num_bins: int, height: int, width: int) -> np.ndarray:
    """
    Return the ANN input: a ``(2 * num_bins, height, width)`` float32 histogram of raw counts.

    Time is normalised to the slice's own span: with ``t_first``/``t_last`` the earliest and
    latest event time, an event goes to bin ``floor((t - t_first) / (t_last - t_first) * B)``,
    clamped to ``B - 1`` so the last event lands in the last bin (computed in exact integer
    arithmetic). A slice with a single event, or whose events all share one timestamp (zero
    span), puts every event in bin 0. Channels are ``[pol0 bins 0..B-1, pol1 bins 0..B-1]``.
    """
    if num_bins <= 0:
        raise ValueError(f'num_bins must be positive, got {num_bins}')
    _check_events(events, height, width)
    size = 2 * num_bins * height * width
    if len(events) == 0:
        return np.zeros((2 * num_bins, height, width), dtype=np.float32)
    t = events['t']
    t_first = int(t.min())
    span = int(t.max()) - t_first
    if span > 0:
        bins = ((t - t_first) * num_bins) // span
        np.minimum(bins, num_bins - 1, out=bins)
    else:
        bins = np.zeros(len(events), dtype=np.int64)
    channel = events['p'].astype(np.int64) * num_bins + bins
    index = channel * (height * width) + _pixel_index(events, width)
    counts = np.bincount(index, minlength=size)
    return counts.astype(np.float32).reshape(2 * num_bins, height, width)


def count_frame(events: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return one SNN step's input: ``(2, height, width)`` float32 counts, channel = polarity."""
    _check_events(events, height, width)
    index = events['p'].astype(np.int64) * (height * width) + _pixel_index(events, width)
    counts = np.bincount(index, minlength=2 * height * width)
    return counts.astype(np.float32).reshape(2, height, width)


def count_frames(
        events: np.ndarray, t0: int, bin_us: int, num_bins: int,
        height: int, width: int) -> np.ndarray:
    """
    Return ``(num_bins, 2, height, width)`` float32 count frames over fixed event-time bins.

    Bin ``k`` covers ``[t0 + k * bin_us, t0 + (k + 1) * bin_us)``; events before ``t0`` or at or
    after ``t0 + num_bins * bin_us`` are ignored. Events need not be time-ordered.
    """
    if bin_us <= 0 or num_bins <= 0:
        raise ValueError(f'bin_us and num_bins must be positive, got {bin_us}, {num_bins}')
    _check_events(events, height, width)
    k = (events['t'] - np.int64(t0)) // np.int64(bin_us)
    keep = (k >= 0) & (k < num_bins)
    inside = events[keep]
    channel = k[keep] * 2 + inside['p']
    index = channel * (height * width) + _pixel_index(inside, width)
    counts = np.bincount(index, minlength=num_bins * 2 * height * width)
    return counts.astype(np.float32).reshape(num_bins, 2, height, width)
