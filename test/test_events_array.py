# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The record-copy helpers of the event array equal numpy's own structured operations."""
from hybrid_pose_ros.events.event_array import (
    concatenate_events, copy_events, empty_events, EVENT_DTYPE, make_events, select_events)
import numpy as np


def _events(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, 10**9, n)), rng.integers(0, 346, n),
                       rng.integers(0, 260, n), rng.integers(0, 2, n))


def test_record_copies_equal_structured_copies():
    events, other = _events(1000, 0), _events(37, 1)
    strided = events[::3]                       # not contiguous
    keep = np.random.default_rng(2).random(len(events)) < 0.4
    cases = [
        (concatenate_events([events, other, empty_events()]),
         np.concatenate([events, other])),
        (concatenate_events([strided, other[5:9]]), np.concatenate([strided, other[5:9]])),
        (copy_events(strided), strided.copy()),
        (select_events(events, keep), events[keep]),
        (select_events(strided, keep[::3]), strided[keep[::3]]),
        (select_events(events, np.zeros(len(events), bool)), events[:0]),
    ]
    for actual, expected in cases:
        assert actual.dtype == EVENT_DTYPE
        assert actual.flags.c_contiguous
        np.testing.assert_array_equal(actual, expected)


def test_copies_do_not_share_memory():
    events = _events(10, 3)
    for copied in (copy_events(events), concatenate_events([events]),
                   select_events(events, np.ones(10, bool))):
        assert not np.shares_memory(copied, events)
        copied['t'] += 1
    np.testing.assert_array_equal(events, _events(10, 3))
