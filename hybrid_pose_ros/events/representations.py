# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Dense tensors the networks read: the ANN's stacked histogram and the SNN's per-bin count frames.

The numpy functions take events already in model-input coordinates (the caller applies
:class:`hybrid_pose_ros.events.sensor.SensorGeometry`) and return raw float32 counts, with no
normalisation, log or clipping, as in the reference implementation (paper spec §2, §6.4).
Histograms are accumulated with ``np.bincount`` on linear indices. :func:`sensor_count_frame` and
:func:`sensor_stacked_histogram` take sensor events and a geometry and give the same arrays in
one compiled pass: the streaming path builds every bin's input with them, since a dozen numpy
calls and their temporaries cost 4-5x more right after the node idled between messages than
back to back.
"""
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.events.sensor import SensorGeometry
import numba
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


@numba.njit(cache=True, nogil=True, inline='always')
def _model_pixel(x: int, y: int, x0: int, y0: int, crop_width: int, crop_height: int,
                 width: int, height: int) -> tuple[int, int]:
    """Map a sensor pixel into the model input as SensorGeometry.to_model does; -1: dropped."""
    cx, cy = x - x0, y - y0
    if cx < 0 or cx >= crop_width or cy < 0 or cy >= crop_height:
        return -1, -1
    if crop_width != width:
        cx, cy = cx * width // crop_width, cy * height // crop_height
    return cx, cy


@numba.njit(cache=True, nogil=True)
def _sensor_counts(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, x0: int, y0: int,
                   crop_width: int, crop_height: int, num_bins: int, out: np.ndarray) -> int:
    """
    Accumulate the in-crop events into ``out [2 * num_bins, H, W]``; return the largest polarity.

    With ``num_bins`` 1 every event counts in its polarity's channel; otherwise events are
    binned by time over the span of the events kept, as :func:`stacked_histogram` does.
    """
    height, width = out.shape[1], out.shape[2]
    t_first, t_last, largest = np.int64(0), np.int64(0), 0
    if num_bins > 1:
        found = False
        for i in range(len(t)):
            cx, _ = _model_pixel(np.int64(x[i]), np.int64(y[i]), x0, y0, crop_width,
                                 crop_height, width, height)
            if cx >= 0:
                if not found or t[i] < t_first:
                    t_first = t[i]
                if not found or t[i] > t_last:
                    t_last = t[i]
                found = True
    span = t_last - t_first
    for i in range(len(t)):
        cx, cy = _model_pixel(np.int64(x[i]), np.int64(y[i]), x0, y0, crop_width, crop_height,
                              width, height)
        if cx < 0:
            continue
        polarity = np.int64(p[i])
        largest = max(largest, polarity)
        if polarity > 1:
            continue
        time_bin = np.int64(0)
        if span > 0:
            time_bin = min((t[i] - t_first) * num_bins // span, num_bins - 1)
        out[polarity * num_bins + time_bin, cy, cx] += np.float32(1.0)
    return largest


def _sensor_histogram(events: np.ndarray, geometry: SensorGeometry, num_bins: int
                      ) -> np.ndarray:
    """Run :func:`_sensor_counts` on ``events`` (sensor coordinates) for ``geometry``."""
    out = np.zeros((2 * num_bins, geometry.input_height, geometry.input_width),
                   dtype=np.float32)
    largest = _sensor_counts(events['t'], events['x'], events['y'], events['p'],
                             geometry.crop_x0, geometry.crop_y0, geometry.crop_width,
                             geometry.crop_height, num_bins, out)
    if largest > 1:
        raise ValueError(f'polarity must be 0 or 1, got {largest}')
    return out


def sensor_count_frame(events: np.ndarray, geometry: SensorGeometry) -> np.ndarray:
    """Return ``count_frame(geometry.to_model(events).events, H, W)`` in one compiled pass."""
    return _sensor_histogram(events, geometry, 1)


def sensor_stacked_histogram(events: np.ndarray, geometry: SensorGeometry,
                             num_bins: int) -> np.ndarray:
    """Return ``stacked_histogram(geometry.to_model(events).events, num_bins, H, W)`` likewise."""
    if num_bins <= 0:
        raise ValueError(f'num_bins must be positive, got {num_bins}')
    return _sensor_histogram(events, geometry, num_bins)


def warm_up_sensor_histograms() -> None:
    """Compile (or load from Numba's cache) the sensor histograms now, not at the first bin."""
    events = np.zeros(2, dtype=EVENT_DTYPE)   # two events: field views as a message's are strided
    geometry = SensorGeometry.for_sensor(8, 8, 8, 8)
    sensor_count_frame(events, geometry)
    sensor_stacked_histogram(events, geometry, 2)
