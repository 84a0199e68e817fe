"""
The event array type shared by decoders, representations, the simulator and the model.

Events are a numpy structured array with :data:`EVENT_DTYPE`: ``t`` in microseconds (int64,
absolute on whatever clock the source uses), ``x`` column and ``y`` row in sensor pixels with
(0, 0) at the top-left, ``p`` polarity 0 (OFF) or 1 (ON). Arrays are time-ordered unless a
function says otherwise.
"""
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
