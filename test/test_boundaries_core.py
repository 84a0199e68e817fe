# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Boundaries and invariances of the core, each with data on both sides of its edge.

Sensor windows of large sensors, triangulation's invariance to the scale of each projection
matrix, the binner's reset rule, the window start at the ``ann_events``-th event, and the SNN's
firing threshold on exact ties (sparse path against dense).
"""
from helpers.streams import seeded_model
from hybrid_pose_ros.estimator import HybridEstimator, StreamingRunner, window_starts
from hybrid_pose_ros.events.binning import EventBinner
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.geometry.triangulation import project, triangulate
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.snn import SpikingUNet
from hybrid_pose_ros.model.sparse import SparseSpikingUNet
import numpy as np
import pytest
import torch


# --- sensor windows ------------------------------------------------------------------------

@pytest.mark.parametrize('width, height, inputs, window', [
    # 256 * height / 260 sensor rows, rounded to whole pixels (945.2 -> 945, 1063.4 -> 1063)
    (1280, 960, (256, 256), (167, 7, 945, 945)),
    (1920, 1080, (256, 256), (428, 8, 1063, 1063)),
    # rounded, not truncated: 708.9 -> 709 rows, 472.6 -> 473
    (1280, 720, (256, 256), (285, 5, 709, 709)),
    (640, 480, (256, 256), (83, 3, 473, 473)),
    # a smaller input scales the same window (k whole input pixels of the aspect)
    (1280, 960, (128, 128), (167, 7, 945, 945)),
    # a 5:4 input: 945.2 rows / 4 = 236.3 -> k = 236, a window of 1180x944
    (1280, 960, (320, 256), (50, 8, 1180, 944)),
    (1920, 1080, (320, 256), (295, 8, 1330, 1064)),   # 265.8 -> k = 266
])
def test_auto_windows_of_large_sensors(width, height, inputs, window):
    geometry = SensorGeometry.for_sensor(width, height, *inputs)
    assert (geometry.crop_x0, geometry.crop_y0, geometry.crop_width,
            geometry.crop_height) == window
    assert geometry.scale == inputs[0] / window[2]


@pytest.mark.parametrize('width, height', [(1280, 960), (1920, 1080)])
def test_large_sensor_window_edges_map_to_the_input_edges(width, height):
    geometry = SensorGeometry.for_sensor(width, height)
    x0, y0, size = geometry.crop_x0, geometry.crop_y0, geometry.crop_width
    xs = [x0 - 1, x0, x0 + size - 1, x0 + size, x0 + 1, x0 + size // 2]
    ys = [y0 + 1, y0, y0 + size - 1, y0, y0 - 1, y0 + size]
    mapped = geometry.to_model(make_events(np.arange(6), xs, ys, [1] * 6))
    # kept: the window's first and last pixel; dropped: one past each of its four edges
    assert mapped.dropped == 4
    assert mapped.events['x'].tolist() == [0, 255]
    assert mapped.events['y'].tolist() == [0, 255]
    centre = geometry.model_to_sensor(np.array([127.5, 127.5]))
    np.testing.assert_allclose(centre, [x0 + (size - 1) / 2, y0 + (size - 1) / 2])


# --- triangulation -------------------------------------------------------------------------

def _cameras() -> np.ndarray:
    matrices = []
    for angle, shift in [(-0.5, -200.0), (0.1, 150.0), (0.6, 40.0)]:
        k = np.array([[250.0, 0, 173], [0, 250, 130], [0, 0, 1]])
        r = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                      [-np.sin(angle), 0, np.cos(angle)]])
        matrices.append(k @ np.hstack([r, np.array([[shift], [80.0], [3000.0]])]))
    return np.stack(matrices)


def test_triangulation_does_not_depend_on_the_scale_of_each_projection_matrix():
    rng = np.random.default_rng(7)
    cameras = _cameras()
    points = rng.uniform(-600, 600, (4, 13, 3))
    uv = np.stack([project(p, points) for p in cameras], axis=-2)
    uv += rng.normal(0.0, 2.0, uv.shape)         # noisy: the scale would move the least squares
    weights = rng.uniform(0.2, 1.0, uv.shape[:-1])
    reference = triangulate(cameras, uv, weights)
    # 1e-8: rows of a norm below 1 are normalised too
    for scales in ([1e3, 1.0, 1e-3], [-1.0, 7.0, 0.01], [5.0, 5.0, 5.0], [1e-8, 1e-8, 1.0]):
        scaled = cameras * np.array(scales)[:, None, None]
        np.testing.assert_allclose(triangulate(scaled, uv, weights), reference, rtol=1e-9,
                                   atol=1e-6)
    # the weights do move it, and a matrix scale must not act as a weight
    assert np.abs(triangulate(cameras, uv) - reference).max() > 0.1
    unscaled_rows = triangulate(cameras, uv, weights * np.array([1e3, 1.0, 1e-3]))
    assert np.abs(unscaled_rows - reference).max() > 0.1


# --- binner reset rule ---------------------------------------------------------------------

def _at(*times: int) -> np.ndarray:
    return make_events(list(times), [1] * len(times), [1] * len(times), [0] * len(times))


def _binner_with_open_bin() -> EventBinner:
    """Return a binner (10 ms bins, 100 ms reset threshold) whose open bin starts at 1.01 s."""
    binner = EventBinner(10_000, history_events=100, reset_threshold_us=100_000)
    assert [b.start_us for b in binner.push(_at(1_000_000, 1_005_000, 1_012_000))] == [1_000_000]
    assert binner.open_bin_start == 1_010_000
    return binner


@pytest.mark.parametrize('times', [
    (1_010_000 - 100_001, 1_009_999),                 # only partly far back: late
    (1_010_000 - 500_000, 1_010_000 - 100_000),       # the latest exactly at the threshold
    (1_010_000 - 100_000,),
    (1_010_000 - 300_000, 1_013_000),                 # one far back, one in the open bin
])
def test_a_message_not_wholly_beyond_the_reset_threshold_is_late_not_a_reset(times):
    binner = _binner_with_open_bin()
    assert binner.push(_at(*times)) == []
    late = sum(t < 1_010_000 for t in times)
    assert (binner.counters.resets, binner.counters.late_dropped) == (0, late)
    assert binner.open_bin_start == 1_010_000
    assert binner.pending_count == 1 + len(times) - late
    bins = binner.push(_at(1_020_000))
    assert [(b.start_us, len(b.events), b.reset_before) for b in bins] == [
        (1_010_000, 1 + len(times) - late, False)]


@pytest.mark.parametrize('times', [
    (1_010_000 - 100_001,),                           # one microsecond beyond the threshold
    (1_010_000 - 400_000, 1_010_000 - 100_001),
])
def test_a_message_wholly_beyond_the_reset_threshold_resets(times):
    binner = _binner_with_open_bin()
    bins = binner.push(_at(*times))
    counters = binner.counters
    assert (counters.resets, counters.reset_dropped, counters.late_dropped) == (1, 1, 0)
    bins += binner.push(_at(max(times) + 10_000))
    # the grid is re-anchored at the message; only its first bin says so
    assert [b.reset_before for b in bins] == [True] + [False] * (len(bins) - 1)
    assert bins[0].start_us == (min(times) // 10_000) * 10_000
    assert [t for b in bins for t in b.events['t'].tolist()] == list(times)


# --- the window start at the ann_events-th event -------------------------------------------

WINDOW_CONFIG = make_config('cpu', input_height=32, input_width=32, ann_events=50)


@pytest.fixture(scope='module')
def window_estimator() -> HybridEstimator:
    model = seeded_model(WINDOW_CONFIG)
    return HybridEstimator(model, SensorGeometry.for_sensor(346, 260, 32, 32))


def _stream(nth_event_us: int) -> np.ndarray:
    """Return 49 events before ``nth_event_us``, the 50th at it, then one every 1 ms."""
    before = np.linspace(1_000_000, nth_event_us - 100, 49).astype(np.int64)
    after = np.arange(nth_event_us, 1_460_000, 1_000)
    times = np.concatenate([before, after])
    rng = np.random.default_rng(1)
    return make_events(times, rng.integers(0, 346, len(times)),
                       rng.integers(0, 260, len(times)), rng.integers(0, 2, len(times)))


@pytest.mark.parametrize('ann_lead_bins', [0, 1])
@pytest.mark.parametrize('offset, first_window', [(-1, 1_100_000), (0, 1_200_000)])
def test_the_first_window_starts_right_after_the_ann_events_th_event(
        window_estimator, ann_lead_bins, offset, first_window):
    estimator = HybridEstimator(window_estimator.model, window_estimator.geometry,
                                ann_lead_bins=ann_lead_bins)
    ann_time = 1_100_000 - ann_lead_bins * WINDOW_CONFIG.bin_us
    events = _stream(ann_time + offset)     # the 50th event just before or at the ANN time
    assert window_starts(events['t'], WINDOW_CONFIG, ann_lead_bins)[0] == first_window
    ann_end = first_window - ann_lead_bins * WINDOW_CONFIG.bin_us
    expected = events['t'][events['t'] < ann_end][-50:].tolist()
    for messages in ([events], np.array_split(events, 37)):
        runner = StreamingRunner(estimator)
        tasks = [task for message in messages for task in runner.tasks(message)]
        first = next(task for task in tasks if task.history is not None)
        assert first.bin.start_us == first_window
        assert first.history['t'].tolist() == expected


# --- the firing threshold on exact ties ----------------------------------------------------

@pytest.mark.parametrize('dense_above', [None, 1.0])
def test_sparse_and_dense_steps_fire_on_an_exact_tie_at_the_threshold(dense_above):
    config = make_config('paper', input_height=32, input_width=32, snn_base_width=4)
    dense = SpikingUNet(config, tau=2.0).eval()
    with torch.no_grad():
        for parameter in dense.parameters():
            parameter.zero_()           # no current: a membrane only decays, v + (0 - v) / 2
    sparse = (SparseSpikingUNet(dense) if dense_above is None
              else SparseSpikingUNet(dense, dense_above=dense_above))
    below = torch.nextafter(torch.tensor(2.0), torch.tensor(0.0))
    membranes = []
    for shape in dense.membrane_shapes(1, 32, 32):
        tie = torch.rand(shape, generator=torch.Generator().manual_seed(len(membranes))) < 0.5
        membranes.append(torch.where(tie, torch.tensor(2.0), below))   # 1.0 or just below
    frame = torch.zeros(1, 2, 32, 32)
    frame[0, 0, 3, 5] = frame[0, 1, 18, 8] = 1.0
    with torch.inference_mode():
        _, dense_state, dense_activity = dense.step(frame, membranes, None, 0.9)
        _, sparse_state, sparse_activity = sparse.step(frame, membranes, None, 0.9)
    for name, spikes in dense_activity.spikes.items():
        assert torch.equal(sparse_activity.spikes[name], spikes), name
    for after, expected in zip(sparse_state, dense_state):
        torch.testing.assert_close(after, expected, atol=0, rtol=0)
    # every layer fires on its ties, about half its neurons (the residual block's second layer
    # also gets the first one's spikes as current)
    rates = dense_activity.firing_rates()
    assert all(0.45 < rate < 0.8 for rate in rates.values()), rates
    assert sparse_activity.firing_rates() == pytest.approx(rates, abs=1e-7)
