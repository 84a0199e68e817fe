# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Tests for the ANN stacked histogram and the SNN count frames."""
from hybrid_pose_ros.events.event_array import empty_events, make_events
from hybrid_pose_ros.events.representations import (
    count_frame, count_frames, sensor_count_frame, sensor_stacked_histogram, stacked_histogram)
from hybrid_pose_ros.events.sensor import SensorGeometry
import numpy as np
import pytest


def _events(rows):
    """Build events from (t, x, y, p) tuples."""
    t, x, y, p = zip(*rows) if rows else ((), (), (), ())
    return make_events(np.array(t), np.array(x), np.array(y), np.array(p))


def test_histogram_shape_dtype_and_empty():
    hist = stacked_histogram(empty_events(), 10, 4, 5)
    assert hist.shape == (20, 4, 5)
    assert hist.dtype == np.float32
    assert not hist.any()


def test_histogram_bin_assignment_and_channel_order():
    # span 0..100 with B=4: bin = floor(t * 4 / 100), the last event clamped into bin 3
    events = _events([
        (1000, 0, 0, 0),   # t_norm 0    -> bin 0
        (1024, 1, 0, 1),   # 0.96        -> bin 0
        (1025, 2, 0, 0),   # 1.0         -> bin 1
        (1050, 3, 0, 1),   # 2.0         -> bin 2
        (1074, 0, 1, 0),   # 2.96        -> bin 2
        (1099, 1, 1, 1),   # 3.96        -> bin 3
        (1100, 2, 1, 0),   # 4.0 clamped -> bin 3
    ])
    hist = stacked_histogram(events, 4, 2, 4)
    expected = np.zeros((8, 2, 4), dtype=np.float32)
    expected[0, 0, 0] = 1      # pol 0, bin 0
    expected[4 + 0, 0, 1] = 1  # pol 1 channels start at B
    expected[1, 0, 2] = 1
    expected[4 + 2, 0, 3] = 1
    expected[2, 1, 0] = 1
    expected[4 + 3, 1, 1] = 1
    expected[3, 1, 2] = 1
    np.testing.assert_array_equal(hist, expected)


def test_histogram_raw_counts_not_normalised():
    events = _events([(0, 1, 1, 1)] * 5 + [(10, 1, 1, 1)] * 3)
    hist = stacked_histogram(events, 2, 3, 3)
    assert hist[2, 1, 1] == 5
    assert hist[3, 1, 1] == 3
    assert hist.sum() == 8


@pytest.mark.parametrize('rows', [[(7, 1, 2, 1)], [(7, 1, 2, 1), (7, 0, 0, 0), (7, 1, 2, 1)]])
def test_histogram_zero_span_goes_to_bin_zero(rows):
    hist = stacked_histogram(_events(rows), 3, 3, 3)
    assert hist.sum() == len(rows)
    assert hist[0].sum() + hist[3].sum() == len(rows)


def test_histogram_matches_reference_float_formula():
    rng = np.random.default_rng(1)
    n = 7500
    t = np.sort(rng.integers(0, 37_000, n))
    events = make_events(t, rng.integers(0, 32, n), rng.integers(0, 24, n), rng.integers(0, 2, n))
    hist = stacked_histogram(events, 10, 24, 32)
    ref = np.zeros((2, 10, 24, 32), dtype=np.float32)
    t_norm = (t - t[0]) / max(t[-1] - t[0], 1) * 10
    bins = np.minimum(np.floor(t_norm).astype(int), 9)
    np.add.at(ref, (events['p'], bins, events['y'], events['x']), 1)
    np.testing.assert_array_equal(hist, ref.reshape(20, 24, 32))


def test_out_of_range_events_rejected():
    with pytest.raises(ValueError):
        stacked_histogram(_events([(0, 5, 0, 0)]), 2, 4, 5)
    with pytest.raises(ValueError):
        count_frame(_events([(0, 0, 4, 0)]), 4, 5)
    with pytest.raises(ValueError):
        count_frame(_events([(0, 0, 0, 2)]), 4, 5)


def test_count_frame_channels_are_polarity():
    frame = count_frame(_events([(0, 1, 2, 0), (1, 1, 2, 0), (2, 3, 0, 1)]), 3, 4)
    assert frame.shape == (2, 3, 4) and frame.dtype == np.float32
    assert frame[0, 2, 1] == 2
    assert frame[1, 0, 3] == 1
    assert frame.sum() == 3


def test_count_frames_fixed_bins():
    events = _events([
        (99, 0, 0, 0),    # before t0: ignored
        (100, 0, 0, 0),   # bin 0
        (109, 1, 0, 1),   # bin 0
        (110, 2, 0, 0),   # bin 1
        (125, 3, 0, 1),   # bin 2
        (130, 0, 1, 0),   # end of bin 2: ignored
    ])
    frames = count_frames(events, 100, 10, 3, 2, 4)
    assert frames.shape == (3, 2, 2, 4)
    assert frames.sum() == 4
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 0, 1] == 1
    assert frames[1, 0, 0, 2] == 1
    assert frames[2, 1, 0, 3] == 1
    for k in range(3):
        sel = events[(events['t'] >= 100 + 10 * k) & (events['t'] < 110 + 10 * k)]
        np.testing.assert_array_equal(frames[k], count_frame(sel, 2, 4))


@pytest.mark.parametrize('geometry', [SensorGeometry.for_sensor(346, 260, 64, 64),
                                      SensorGeometry.for_sensor(346, 260, 256, 256),
                                      SensorGeometry.dhp19(128, 128)],
                         ids=['scaled', 'unscaled', 'dhp19'])
@pytest.mark.parametrize('count', [0, 1, 2, 7500])
def test_sensor_histograms_equal_mapping_then_numpy(geometry, count):
    rng = np.random.default_rng(count)
    events = make_events(np.sort(rng.integers(0, 50_000, count)),
                         rng.integers(0, geometry.sensor_width, count),
                         rng.integers(0, geometry.sensor_height, count),
                         rng.integers(0, 2, count))
    mapped = geometry.to_model(events).events
    size = (geometry.input_height, geometry.input_width)
    frame = sensor_count_frame(events, geometry)
    assert frame.dtype == np.float32
    np.testing.assert_array_equal(frame, count_frame(mapped, *size))
    for bins in (1, 10):
        np.testing.assert_array_equal(sensor_stacked_histogram(events, geometry, bins),
                                      stacked_histogram(mapped, bins, *size))


def test_sensor_histograms_span_only_the_kept_events_and_check_polarity():
    geometry = SensorGeometry.for_sensor(346, 260, 64, 64)
    inside_x, inside_y = geometry.crop_x0 + 10, geometry.crop_y0 + 10
    # the first and last events lie outside the crop: the time span is that of the other two
    events = _events([(0, 0, 0, 0), (100, inside_x, inside_y, 0), (200, inside_x, inside_y, 1),
                      (10_000, 0, 0, 1)])
    hist = sensor_stacked_histogram(events, geometry, 2)
    assert hist[0].sum() == 1 and hist[3].sum() == 1 and hist.sum() == 2
    with pytest.raises(ValueError, match='polarity must be 0 or 1, got 2'):
        sensor_count_frame(_events([(0, inside_x, inside_y, 2)]), geometry)
    with pytest.raises(ValueError, match='num_bins must be positive'):
        sensor_stacked_histogram(events, geometry, 0)
