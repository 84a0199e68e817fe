# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The streaming path (bins as messages arrive) gives the same poses as the batched reference."""
from helpers.streams import moving_blob_events, seeded_model, split_messages
from hybrid_pose_ros.estimator import HybridEstimator, run_offline, StreamingRunner, window_starts
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model.config import make_config
import numpy as np
import pytest

CONFIG = make_config('cpu', input_height=64, input_width=64, ann_events=2000)


@pytest.fixture(scope='module')
def estimator():
    model = seeded_model(CONFIG)
    geometry = SensorGeometry.for_sensor(346, 260, CONFIG.input_width, CONFIG.input_height)
    return HybridEstimator(model, geometry)


def assert_same_poses(streamed, reference):
    assert [p.end_us for p in streamed] == [p.end_us for p in reference]
    for s, r in zip(streamed, reference):
        assert (s.window_start_us, s.step_index) == (r.window_start_us, r.step_index)
        np.testing.assert_allclose(s.xy, r.xy, atol=1e-6)
        np.testing.assert_allclose(s.confidence, r.confidence, atol=1e-5)
        assert s.firing_rates == pytest.approx(r.firing_rates, abs=1e-6)


@pytest.mark.parametrize('message_us', [1_000, 33_000, 10**9])
def test_streaming_equals_batched_for_any_message_size(estimator, message_us):
    events = moving_blob_events()
    reference = run_offline(estimator, events)
    runner = StreamingRunner(estimator)
    streamed = [p for m in split_messages(events, message_us) for p in runner.push(m)]
    assert len(reference) >= 20
    assert_same_poses(streamed, reference)
    assert runner.counters.warmup_bins > 0 and runner.counters.windows_broken == 0


def test_windows_start_after_enough_events_on_window_multiples(estimator):
    events = moving_blob_events()
    starts = window_starts(events['t'], CONFIG)
    assert all(s % CONFIG.window_us == 0 for s in starts)
    assert np.searchsorted(events['t'], starts[0]) >= CONFIG.ann_events
    assert np.searchsorted(events['t'], starts[0] - CONFIG.window_us) < CONFIG.ann_events
    steps = run_offline(estimator, events)
    assert steps[0].end_us == starts[0] + CONFIG.bin_us and steps[0].step_index == 0
    assert max(p.step_index for p in steps) == CONFIG.steps_per_window - 1


def test_time_jump_back_resets_and_restarts_at_a_window(estimator):
    events = moving_blob_events()
    runner = StreamingRunner(estimator)
    first = [p for m in split_messages(events, 33_000) for p in runner.push(m)]
    again = [p for m in split_messages(events, 33_000) for p in runner.push(m)]  # a bag loop
    assert runner.binner.counters.resets == 1
    assert len(again) > 0 and again[0].step_index == 0
    assert_same_poses(again, run_offline(estimator, events)[:len(again)])
    assert len(first) == len(again)
    assert runner.binner.counters.reset_dropped > 0   # the open bin of the first pass


def test_the_bin_before_a_window_start_carries_that_windows_ann_events(estimator):
    events = moving_blob_events()
    runner = StreamingRunner(estimator)
    tasks = [task for m in split_messages(events, 10_000) for task in runner.tasks(m)]
    early = {t.bin.end_us: t.next_history for t in tasks if t.next_history is not None}
    first_bins = {t.bin.start_us: t.history for t in tasks if t.history is not None}
    assert set(early) == set(first_bins) == set(window_starts(events['t'], CONFIG))
    for start, history in first_bins.items():
        np.testing.assert_array_equal(early[start], history)   # known one bin earlier
        assert len(history) == CONFIG.ann_events and history['t'].max() < start
    assert all(t.next_history is None for t in tasks if t.bin.end_us % CONFIG.window_us)
