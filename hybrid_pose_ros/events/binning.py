# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Streaming fixed event-time binning for the node, plus offline helpers.

:class:`EventBinner` cuts a stream of event arrays, whatever their message boundaries, into
bins ``[t0 + k * bin_us, t0 + (k + 1) * bin_us)`` on a grid anchored at a multiple of ``bin_us``
(``t0 = floor(first_t / bin_us) * bin_us``). A bin is complete, and returned by
:meth:`EventBinner.push`, once an event at or after its end has arrived, so 1 ms packets, 33 ms
packets and one big message give identical bins. Empty bins between events are returned too.

Rules, each with a counter in :class:`BinnerCounters`:

* Events inside a message that go back in time are stably sorted (``reordered`` counts events
  earlier than some event before them, in the message or already in the open bin).
* Events before the open bin's start (late) are dropped (``late_dropped``).
* A message whose events all lie more than ``reset_threshold_us`` before the open bin's start
  (a backwards jump: bag loop, clock reset) resets the binner (``resets``): the open bin and the
  history are discarded (``reset_dropped``), the grid is re-anchored at the message, and the
  next bin returned has ``reset_before=True`` so the caller can reset the SNN. A message only
  partly that far back is treated as late, so one corrupt timestamp cannot reset the stream.
* A forward gap: after a bin with events, at most ``max_empty_bins`` empty bins are returned;
  the rest of the gap is skipped (``gaps``, ``skipped_bins``) and the next bin returned has
  ``gap_before=True``; its ``start_us`` is not the previous bin's ``end_us``. The caller decides
  what a gap means (e.g. restart the ANN/SNN window).
* At most ``max_pending_events`` events are held in the open bin between pushes; newer ones
  are dropped (``overflow_dropped``).

Every event pushed is thus returned in exactly one bin, dropped and counted, or still pending
in the open bin: ``events_in == events_binned + late_dropped + reset_dropped +
overflow_dropped + pending``.

:func:`screen_events` removes implausible events before binning: outside the sensor, outside
the range of ROS stamps, or far from the rest of their message in time. It lets the binner's
rules (a whole message far back resets, a forward jump is a gap) see only plausible times, so a
single wild timestamp can neither reset the stream nor move the grid into the future.
"""
from dataclasses import asdict, dataclass
from typing import Optional

from hybrid_pose_ros.events.event_array import (
    concatenate_events, copy_events, empty_events, EVENT_DTYPE, select_events)
import numpy as np

MAX_STAMP_US = 2**31 * 1_000_000  # builtin_interfaces/Time holds int32 seconds


@dataclass(frozen=True)
class CompletedBin:
    """One complete bin ``[start_us, end_us)`` and its events (time-ordered)."""

    start_us: int
    end_us: int
    events: np.ndarray
    reset_before: bool = False
    gap_before: bool = False


@dataclass
class BinnerCounters:
    """Event and bin accounting of an :class:`EventBinner`."""

    events_in: int = 0
    events_binned: int = 0
    late_dropped: int = 0
    reordered: int = 0
    resets: int = 0
    reset_dropped: int = 0
    overflow_dropped: int = 0
    bins_emitted: int = 0
    gaps: int = 0
    skipped_bins: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a dict (for diagnostics)."""
        return asdict(self)


class EventBinner:
    """Streaming fixed event-time binning with a bounded history; see the module doc."""

    def __init__(
            self, bin_us: int, history_events: int = 7500, max_pending_events: int = 2_000_000,
            reset_threshold_us: int = 1_000_000, max_empty_bins: int = 10) -> None:
        """Create a binner for ``bin_us``-long bins keeping ``history_events`` past events."""
        if bin_us <= 0:
            raise ValueError(f'bin_us must be positive, got {bin_us}')
        if history_events < 0 or max_pending_events <= 0:
            raise ValueError('history_events must be >= 0 and max_pending_events > 0')
        if reset_threshold_us <= 0 or max_empty_bins < 0:
            raise ValueError('reset_threshold_us must be > 0 and max_empty_bins >= 0')
        self.bin_us = int(bin_us)
        self.history_events = int(history_events)
        self.max_pending_events = int(max_pending_events)
        self.reset_threshold_us = int(reset_threshold_us)
        self.max_empty_bins = int(max_empty_bins)
        self.counters = BinnerCounters()
        self._clear()

    def _clear(self) -> None:
        """Forget the grid, the open bin and the history."""
        self._open_start: Optional[int] = None
        self._pending = empty_events()
        self._history = empty_events()
        self._valid_from: Optional[int] = None
        self._reset_flag = False
        self._gap_flag = False

    @property
    def open_bin_start(self) -> Optional[int]:
        """Start of the open (incomplete) bin, or None before the first event."""
        return self._open_start

    @property
    def pending_count(self) -> int:
        """Return the number of events held in the open bin."""
        return len(self._pending)

    @property
    def buffered_count(self) -> int:
        """Return the number of events held (history and open bin)."""
        return len(self._history) + len(self._pending)

    def reset(self) -> None:
        """Discard the grid, open bin and history (counted in ``reset_dropped``)."""
        self.counters.reset_dropped += len(self._pending)
        self._clear()

    def push(self, events: np.ndarray) -> list[CompletedBin]:
        """Add events (one message) and return the bins they complete, oldest first."""
        if events.dtype != EVENT_DTYPE:
            raise ValueError(f'expected EVENT_DTYPE events, got {events.dtype}')
        self.counters.events_in += len(events)
        if len(events) == 0:
            return []
        t = events['t']
        if (self._open_start is not None
                and int(t.max()) < self._open_start - self.reset_threshold_us):
            self.counters.resets += 1
            self.reset()
            self._reset_flag = True
        # events that arrive after a later event (in this message or in the open bin)
        before = np.empty(len(t), dtype=np.int64)
        before[0] = self._pending['t'][-1] if len(self._pending) else np.iinfo(np.int64).min
        np.maximum.accumulate(t[:-1], out=before[1:])
        np.maximum.accumulate(before, out=before)
        out_of_order = t < before
        if self._open_start is None:
            self._open_start = (int(t.min()) // self.bin_us) * self.bin_us
            self._valid_from = self._open_start
        else:
            self._trim_history()
        late = t < self._open_start
        self.counters.late_dropped += int(np.count_nonzero(late))
        self.counters.reordered += int(np.count_nonzero(out_of_order & ~late))
        if late.any():
            events = select_events(events, ~late)
        if len(self._pending):
            events = concatenate_events([self._pending, events])
        if out_of_order.any():
            events = events[np.argsort(events['t'], kind='stable')]
        self._pending = empty_events()
        if len(events) == 0:
            return []
        return self._emit(events)

    def _trim_history(self) -> None:
        """Keep the last ``history_events`` completed events; later calls ask from the open bin."""
        if len(self._history) > self.history_events:
            self._history = copy_events(self._history[len(self._history) - self.history_events:])
        self._valid_from = self._open_start

    def _emit(self, events: np.ndarray) -> list[CompletedBin]:
        """Cut time-ordered events (none before the open bin) into complete bins."""
        start = self._open_start
        k = (events['t'] - start) // self.bin_us
        k_open = int(k[-1])
        # k is sorted (time-ordered events): each bin starts where it changes, the last is open
        bounds = [0, *(np.flatnonzero(k[1:] != k[:-1]) + 1).tolist()]
        nonempty = k[bounds[:-1]]
        bins = []
        current = 0
        for i, target in enumerate([*nonempty.tolist(), k_open]):
            gap = target - current
            for j in range(min(gap, self.max_empty_bins)):
                bins.append(self._make_bin(start + (current + j) * self.bin_us, empty_events()))
            if gap > self.max_empty_bins:
                self.counters.gaps += 1
                self.counters.skipped_bins += gap - self.max_empty_bins
                self._gap_flag = True
            if target < k_open:
                bins.append(self._make_bin(start + target * self.bin_us,
                                           events[bounds[i]:bounds[i + 1]]))
            current = target + 1
        done = bounds[-1]
        if done:
            self._history = concatenate_events([self._history, events[:done]])
        pending = events[done:]
        if len(pending) > self.max_pending_events:
            self.counters.overflow_dropped += len(pending) - self.max_pending_events
            pending = pending[:self.max_pending_events]
        self._pending = copy_events(pending)
        self._open_start = start + k_open * self.bin_us
        return bins

    def _make_bin(self, start: int, events: np.ndarray) -> CompletedBin:
        """Build a bin carrying the pending reset/gap flags and count it."""
        completed = CompletedBin(start, start + self.bin_us, events,
                                 self._reset_flag, self._gap_flag)
        self._reset_flag = self._gap_flag = False
        self.counters.bins_emitted += 1
        self.counters.events_binned += len(events)
        return completed

    def events_before(self, t_us: int, count: int) -> np.ndarray:
        """
        Return the last ``count`` accepted events with ``t < t_us`` (time-ordered copy).

        Exact for ``count <= history_events`` and any ``t_us`` at or after the start of the
        first bin the latest :meth:`push` could return (its bins' ``start_us`` and later);
        fewer events are returned only if fewer arrived since the last reset.
        """
        if count < 0 or count > self.history_events:
            raise ValueError(f'count must be in [0, {self.history_events}], got {count}')
        if self._valid_from is None or count == 0:
            return empty_events()
        if t_us < self._valid_from:
            raise ValueError(
                f'history only covers requests from t={self._valid_from} us, got {t_us}')
        n_pending = int(np.searchsorted(self._pending['t'], t_us, side='left'))
        from_pending = self._pending[max(0, n_pending - count):n_pending]
        rest = count - len(from_pending)
        if rest == 0:
            return copy_events(from_pending)
        n_history = int(np.searchsorted(self._history['t'], t_us, side='left'))
        from_history = self._history[max(0, n_history - rest):n_history]
        return concatenate_events([from_history, from_pending])


@dataclass(frozen=True)
class ScreenedEvents:
    """The plausible events of one message and how many of each kind were removed."""

    events: np.ndarray
    out_of_sensor: int
    time_outliers: int


def screen_events(events: np.ndarray, width: int, height: int,
                  outlier_us: int) -> ScreenedEvents:
    """
    Remove implausible events from one message, keeping the order of the rest.

    Dropped, in this order (each event counted once): events with ``x >= width`` or
    ``y >= height`` (``out_of_sensor``); events with ``t`` outside ``[0, MAX_STAMP_US)``, which
    no output stamp can hold, and, with ``outlier_us > 0``, events more than ``outlier_us`` from
    the median time of the message's other events (``time_outliers``). The median is robust:
    a message needs more than half of its events to be wild to move it. A message whose events
    all agree is kept whole, however far it jumps; the binner decides what a jump means.
    """
    if events.dtype != EVENT_DTYPE:
        raise ValueError(f'expected EVENT_DTYPE events, got {events.dtype}')
    inside = (events['x'] < width) & (events['y'] < height)
    t = events['t']
    plausible = inside & (t >= 0) & (t < MAX_STAMP_US)
    if outlier_us > 0 and plausible.any():
        candidates = t[plausible]
        if int(candidates.max()) - int(candidates.min()) > outlier_us:
            # only then can an event lie more than outlier_us from the median (a message
            # spans milliseconds; the partition is skipped for nearly all of them)
            middle = len(candidates) // 2
            median = int(np.partition(candidates, middle)[middle])
            plausible &= np.abs(t - median) <= outlier_us
    if plausible.all():
        return ScreenedEvents(events, 0, 0)
    out_of_sensor = len(events) - int(np.count_nonzero(inside))
    kept = select_events(events, plausible)
    return ScreenedEvents(kept, out_of_sensor, len(events) - len(kept) - out_of_sensor)


def split_into_bins(events: np.ndarray, t0: int, bin_us: int, num_bins: int) -> list[np.ndarray]:
    """Split time-ordered events into ``num_bins`` fixed bins from ``t0`` (views, offline use)."""
    edges = np.int64(t0) + np.arange(num_bins + 1, dtype=np.int64) * np.int64(bin_us)
    idx = np.searchsorted(events['t'], edges, side='left')
    return [events[idx[i]:idx[i + 1]] for i in range(num_bins)]
