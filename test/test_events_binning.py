# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Tests for streaming fixed event-time binning."""
from hybrid_pose_ros.events.binning import EventBinner, split_into_bins
from hybrid_pose_ros.events.event_array import empty_events, EVENT_DTYPE, make_events
import numpy as np
import pytest

BIN_US = 10_000


def _stream(n=20_000, t_start=1_234_567, duration=250_000, seed=0):
    """Return time-ordered random events (with some equal timestamps)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t_start, t_start + duration, n))
    return make_events(t, rng.integers(0, 346, n), rng.integers(0, 260, n),
                       rng.integers(0, 2, n))


def _chunks(events, chunk_us):
    """Split events into messages of ``chunk_us`` of event time each."""
    t = events['t']
    edges = np.arange(t[0], t[-1] + chunk_us, chunk_us)
    idx = np.searchsorted(t, edges)
    return [events[a:b] for a, b in zip(idx[:-1], idx[1:])] + [events[idx[-1]:]]


def _run(binner, messages):
    """Push every message and collect the returned bins."""
    bins = []
    for message in messages:
        bins.extend(binner.push(message))
    return bins


def _as_tuples(bins):
    """Return comparable (start, end, events bytes) tuples."""
    return [(b.start_us, b.end_us, b.events.tobytes()) for b in bins]


def test_packet_size_does_not_change_bins():
    events = _stream()
    results = []
    for messages in (_chunks(events, 1000), _chunks(events, 33_000), [events]):
        binner = EventBinner(BIN_US)
        results.append(_as_tuples(_run(binner, messages)))
        assert binner.counters.events_binned + binner.pending_count == len(events)
    assert results[0] == results[1] == results[2]
    starts = [start for start, _, _ in results[0]]
    assert starts[0] == 1_230_000  # anchored at a multiple of bin_us
    assert np.all(np.diff(starts) == BIN_US)
    # every complete bin holds exactly its events
    expected = split_into_bins(events, starts[0], BIN_US, len(starts))
    assert [b.tobytes() for b in expected] == [events for _, _, events in results[0]]


def test_bin_completes_only_when_a_later_event_arrives():
    binner = EventBinner(BIN_US)
    assert binner.push(make_events([5_000, 9_999], [0, 1], [0, 0], [0, 1])) == []
    assert binner.push(make_events([10_000 - 1], [2], [0], [0])) == []
    bins = binner.push(make_events([10_000], [3], [0], [1]))
    assert [(b.start_us, b.end_us, len(b.events)) for b in bins] == [(0, 10_000, 3)]
    assert binner.open_bin_start == 10_000 and binner.pending_count == 1


def test_empty_bins_are_emitted():
    binner = EventBinner(BIN_US)
    bins = binner.push(make_events([1_000, 35_000, 41_000], [0] * 3, [0] * 3, [0] * 3))
    assert [(b.start_us, len(b.events)) for b in bins] == [
        (0, 1), (10_000, 0), (20_000, 0), (30_000, 1)]
    assert not any(b.gap_before or b.reset_before for b in bins)
    assert binner.counters.bins_emitted == 4


def test_long_forward_gap_emits_bounded_empty_bins():
    binner = EventBinner(BIN_US, max_empty_bins=3)
    binner.push(make_events([5_000], [0], [0], [0]))
    bins = binner.push(make_events([1_000_000, 2_000_000], [1, 2], [0, 0], [1, 1]))
    assert [(b.start_us, len(b.events), b.gap_before) for b in bins] == [
        (0, 1, False), (10_000, 0, False), (20_000, 0, False), (30_000, 0, False),
        (1_000_000, 1, True), (1_010_000, 0, False), (1_020_000, 0, False),
        (1_030_000, 0, False)]
    assert binner.counters.gaps == 2
    assert binner.counters.skipped_bins == (99 - 3) + (99 - 3)
    # the open bin's gap flag is carried to the next bin returned
    assert binner.open_bin_start == 2_000_000
    (first, *_) = binner.push(make_events([2_010_000], [0], [0], [0]))
    assert first.start_us == 2_000_000 and first.gap_before


def test_reordered_events_sorted_and_counted():
    binner = EventBinner(BIN_US)
    bins = binner.push(make_events([3_000, 1_000, 2_000, 12_000], [0, 1, 2, 3], [0] * 4,
                                   [0] * 4))
    assert binner.counters.reordered == 2
    np.testing.assert_array_equal(bins[0].events['t'], [1_000, 2_000, 3_000])
    np.testing.assert_array_equal(bins[0].events['x'], [1, 2, 0])
    # an event older than the open bin's newest event, but still inside it, is merged
    binner.push(make_events([15_000], [0], [0], [0]))
    bins = binner.push(make_events([14_000, 21_000], [5, 6], [0, 0], [1, 1]))
    assert binner.counters.reordered == 3
    np.testing.assert_array_equal(bins[0].events['t'], [12_000, 14_000, 15_000])


def test_late_events_dropped_and_counted():
    binner = EventBinner(BIN_US)
    binner.push(make_events([1_000, 25_000], [0, 0], [0, 0], [0, 0]))
    assert binner.open_bin_start == 20_000
    bins = binner.push(make_events([19_999, 5_000, 26_000, 31_000], [1, 2, 3, 4], [0] * 4,
                                   [0] * 4))
    assert binner.counters.late_dropped == 2
    assert binner.counters.resets == 0
    assert [(b.start_us, b.events['x'].tolist()) for b in bins] == [(20_000, [0, 3])]


def test_backwards_jump_resets():
    binner = EventBinner(BIN_US, reset_threshold_us=1_000_000)
    binner.push(_stream(1000, t_start=10_000_000, duration=100_000))
    pending = binner.pending_count
    assert binner.events_before(binner.open_bin_start, 10).size == 10
    # a message far in the past (bag loop): reset and re-anchor
    bins = binner.push(make_events([50, 20_000], [1, 2], [0, 0], [1, 1]))
    assert binner.counters.resets == 1
    assert binner.counters.reset_dropped == pending
    assert [(b.start_us, b.reset_before) for b in bins] == [(0, True), (10_000, False)]
    assert binner.events_before(20_000, 10)['t'].tolist() == [50]
    # a single corrupt old timestamp in a current message is only late
    binner.push(make_events([5, 30_000], [0, 0], [0, 0], [0, 0]))
    assert binner.counters.resets == 1


def test_events_before_exact_and_history_bounded():
    events = _stream(50_000, duration=400_000, seed=3)
    binner = EventBinner(BIN_US, history_events=7500)
    for message in _chunks(events, 33_000):
        pending_before = binner.pending_count
        for completed in binner.push(message):
            for t_query in (completed.start_us, completed.end_us):
                got = binner.events_before(t_query, 7500)
                n = np.searchsorted(events['t'], t_query)
                assert got.tobytes() == events[max(0, n - 7500):n].tobytes()
                assert binner.events_before(t_query, 3).tobytes() == events[
                    max(0, n - 3):n].tobytes()
        # bounded: the history, the open bin before the push and this message
        assert binner.buffered_count <= 7500 + pending_before + len(message)
    with pytest.raises(ValueError):
        binner.events_before(events['t'][-1], 7501)
    with pytest.raises(ValueError):
        binner.events_before(events['t'][0], 10)


def test_pending_overflow_dropped():
    binner = EventBinner(BIN_US, max_pending_events=5)
    binner.push(make_events(np.arange(10), np.zeros(10), np.zeros(10), np.zeros(10)))
    assert binner.pending_count == 5 and binner.counters.overflow_dropped == 5
    (completed,) = binner.push(make_events([10_000], [0], [0], [0]))
    np.testing.assert_array_equal(completed.events['t'], np.arange(5))


def test_rejects_wrong_dtype_and_ignores_empty():
    binner = EventBinner(BIN_US)
    assert binner.push(empty_events()) == []
    with pytest.raises(ValueError):
        binner.push(np.zeros(3, dtype=[('t', '<i8')]))
    assert EventBinner(BIN_US).events_before(0, 5).dtype == EVENT_DTYPE
