"""
The event array type shared by decoders, representations, the simulator and the model.

Events are a numpy structured array with :data:`EVENT_DTYPE`: ``t`` in microseconds (int64,
absolute on whatever clock the source uses), ``x`` column and ``y`` row in sensor pixels with
(0, 0) at the top-left, ``p`` polarity 0 (OFF) or 1 (ON). Arrays are time-ordered unless a
function says otherwise.
"""
from typing import Sequence

import numpy as np

EVENT_DTYPE = np.dtype([('t', '<i8'), ('x', '<u2'), ('y', '<u2'), ('p', 'u1')])


def make_events(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Build an event array from four equally long columns (copied and cast to EVENT_DTYPE)."""
    n = len(t)
    if not (len(x) == len(y) == len(p) == n):
        raise ValueError(f'event columns differ in length: t={n} x={len(x)} y={len(y)} p={len(p)}')
    events = np.empty(n, dtype=EVENT_DTYPE)
    events['t'] = t
    events['x'] = x
    events['y'] = y
    events['p'] = p
    return events


def empty_events() -> np.ndarray:
    """Return an event array with no events."""
    return np.empty(0, dtype=EVENT_DTYPE)


def _records(events: np.ndarray) -> np.ndarray:
    """View events as opaque records of their size, which numpy moves with plain memory copies."""
    return events.view(np.dtype((np.void, events.dtype.itemsize)))


def concatenate_events(parts: Sequence[np.ndarray]) -> np.ndarray:
    """
    Concatenate event arrays (of :data:`EVENT_DTYPE`).

    These helpers copy whole records: numpy copies the packed 13-byte :data:`EVENT_DTYPE`
    field by field, 25x slower (5740 events: 68 against 2.6 us for a copy, and a 13,240-event
    concatenation 160 against 6 us on this CPU), and the binner copies every message.
    """
    return np.concatenate([_records(part) for part in parts]).view(EVENT_DTYPE)


def copy_events(events: np.ndarray) -> np.ndarray:
    """Return a copy of an event array (see :func:`concatenate_events`)."""
    return _records(events).copy().view(events.dtype)


def select_events(events: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Return the events where the boolean ``keep`` is true, as a new array (in order)."""
    return _records(events)[keep].view(events.dtype)
