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


def with_lead(estimator, ann_lead_bins):
    return HybridEstimator(estimator.model, estimator.geometry, ann_lead_bins=ann_lead_bins)


def assert_same_poses(streamed, reference):
    assert [p.end_us for p in streamed] == [p.end_us for p in reference]
    for s, r in zip(streamed, reference):
        assert (s.window_start_us, s.step_index) == (r.window_start_us, r.step_index)
        np.testing.assert_allclose(s.xy, r.xy, atol=1e-6)
        np.testing.assert_allclose(s.confidence, r.confidence, atol=1e-5)
        assert s.firing_rates == pytest.approx(r.firing_rates, abs=1e-6)


@pytest.mark.parametrize('ann_lead_bins', [0, 1, 3])
@pytest.mark.parametrize('message_us', [1_000, 33_000, 10**9])
def test_streaming_equals_batched_for_any_message_size(estimator, message_us, ann_lead_bins):
    estimator = with_lead(estimator, ann_lead_bins)
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


@pytest.mark.parametrize('ann_lead_bins', [0, 1])
def test_time_jump_back_resets_and_restarts_at_a_window(estimator, ann_lead_bins):
    estimator = with_lead(estimator, ann_lead_bins)
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


@pytest.mark.parametrize('ann_lead_bins', [1, 3])
def test_a_lead_gives_the_ann_the_events_before_its_time_that_many_bins_early(
        estimator, ann_lead_bins):
    estimator = with_lead(estimator, ann_lead_bins)
    lead_us = ann_lead_bins * CONFIG.bin_us
    events = moving_blob_events()
    runner = StreamingRunner(estimator)
    tasks = [task for m in split_messages(events, 10_000) for task in runner.tasks(m)]
    early = {t.next_window_us: (t.bin.end_us, t.next_history) for t in tasks
             if t.next_history is not None}
    first_bins = {t.bin.start_us: t.history for t in tasks if t.history is not None}
    starts = window_starts(events['t'], CONFIG, ann_lead_bins)
    assert set(first_bins) == set(starts)
    # known early for every window; a last one may not get its first bin before the stream ends
    assert set(starts) <= set(early) and all(s > starts[-1] for s in set(early) - set(starts))
    for start, history in first_bins.items():
        known_at, known = early[start]
        assert known_at == start - lead_us
        np.testing.assert_array_equal(known, history)
        before = events[events['t'] < start - lead_us][-CONFIG.ann_events:]
        np.testing.assert_array_equal(history, before)
    # the window starts after enough events before its ANN time, and the poses move with the lead
    assert np.searchsorted(events['t'], starts[0] - lead_us) >= CONFIG.ann_events
    assert starts == [s for s in window_starts(events['t'], CONFIG) if s >= starts[0]]
    led, paper = run_offline(estimator, events), run_offline(with_lead(estimator, 0), events)
    paper = [p for p in paper if p.window_start_us >= starts[0]]
    assert [p.end_us for p in led] == [p.end_us for p in paper]
    assert any(not np.array_equal(a.xy, b.xy) for a, b in zip(led, paper))


def test_a_lead_outside_the_window_is_rejected(estimator):
    for lead in (-1, CONFIG.steps_per_window):
        with pytest.raises(ValueError, match=r'ann_lead_bins must be in \[0, 9\]'):
            with_lead(estimator, lead)
        with pytest.raises(ValueError, match='ann_lead_bins must be in'):
            window_starts(moving_blob_events()['t'], CONFIG, lead)
