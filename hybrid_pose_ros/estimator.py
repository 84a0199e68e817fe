"""
Hybrid ANN-SNN inference on event arrays: the path from events to joints, with no ROS.

:class:`HybridEstimator` is what the node runs, one SNN step per event bin; :func:`run_offline`
is the reference it must agree with, built on the model's batched window API. Both follow the
same timing rules, defined here once:

* SNN bins are ``[k * bin_us, (k + 1) * bin_us)`` of event time; a window is
  ``steps_per_window`` bins starting at a multiple of ``window_us``.
* The ANN of a window starting at ``W`` sees exactly the last ``ann_events`` (7500) events
  before ``W - ann_lead_bins * bin_us``; a window starts only when that many precede it. With
  ``ann_lead_bins = 0`` (the default) that is the window start, as in the paper (spec section
  2.3); a lead of one bin lets a node run the ANN while the bin before the window arrives, at
  the cost of a state that is one bin old.
* Step ``i`` of a window sees the events of bin ``i`` and is stamped with the bin's end time.
* State is never carried across windows: every window is re-initialised by the ANN.
"""
from dataclasses import dataclass

from hybrid_pose_ros.events.binning import CompletedBin, EventBinner, split_into_bins
from hybrid_pose_ros.events.representations import (
    sensor_count_frame, sensor_stacked_histogram)
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.model.decode import decode_finite_peaks, decode_heatmaps
from hybrid_pose_ros.model.hybrid import HybridPoseNet, WindowState
from hybrid_pose_ros.model.inference import to_channels_last
import numpy as np
import torch


@dataclass(frozen=True)
class PoseStep:
    """The joints after one SNN step, in sensor pixels, stamped with the bin's end time."""

    end_us: int
    window_start_us: int
    step_index: int
    xy: np.ndarray
    confidence: np.ndarray
    firing_rates: dict[str, float]


class HybridEstimator:
    """
    Streaming hybrid inference: ANN initialisation per window, one SNN step per event bin.

    Events are given in sensor coordinates; ``geometry`` maps them to the model input and the
    decoded joints back. :meth:`initialise` touches no estimator state, so it can run in
    another thread while the previous window is still being stepped.
    """

    def __init__(self, model: HybridPoseNet, geometry: SensorGeometry,
                 device: str | torch.device = 'cpu', subpixel: bool = False,
                 ann_lead_bins: int = 0) -> None:
        config = model.config
        check_ann_lead_bins(ann_lead_bins, config)
        if (geometry.input_width, geometry.input_height) != (config.input_width,
                                                             config.input_height):
            raise ValueError(
                f'geometry maps to {geometry.input_width}x{geometry.input_height} but the model '
                f'expects {config.input_width}x{config.input_height}')
        self.model = model.to(device).eval()
        self.geometry = geometry
        self.device = torch.device(device)
        self.subpixel = subpixel
        self.ann_lead_bins = int(ann_lead_bins)
        self._state: WindowState | None = None
        self._window_start_us: int | None = None

    @property
    def config(self) -> ModelConfig:
        """Return the model configuration (bin length, window, ANN event count, ...)."""
        return self.model.config

    @property
    def ann_lead_us(self) -> int:
        """How long before a window start the ANN's events end (``ann_lead_bins`` bins)."""
        return self.ann_lead_bins * self.config.bin_us

    @property
    def in_window(self) -> bool:
        """Whether a window has been initialised and not yet finished."""
        return self._state is not None

    def ann_input(self, history: np.ndarray) -> torch.Tensor:
        """Build the ANN input ``[1, 2*ann_bins, H, W]`` from sensor-coordinate events."""
        frame = sensor_stacked_histogram(history, self.geometry, self.config.ann_bins)
        ann_input = torch.from_numpy(frame).unsqueeze(0).to(self.device)
        if self.model.compiled_init is not None:
            return ann_input   # OpenVINO takes the plain NCHW array without a copy
        # channels-last: the layout prepare_for_inference gives the convs (1.2x faster here)
        return to_channels_last(ann_input)

    def snn_input(self, bin_events: np.ndarray) -> torch.Tensor:
        """Build the SNN's 2-channel count frame ``[1, 2, H, W]`` of one bin's sensor events."""
        frame = sensor_count_frame(bin_events, self.geometry)
        return torch.from_numpy(frame).unsqueeze(0).to(self.device)

    @torch.inference_mode()
    def initialise(self, history: np.ndarray) -> WindowState:
        """Run the ANN on the ``ann_events`` events before a window start; return its state."""
        state, _ = self.model.init_window(self.ann_input(history))
        return state

    def begin_window(self, state: WindowState, window_start_us: int) -> None:
        """Make ``state`` (from :meth:`initialise`) the current window, starting now."""
        self._state = state
        self._window_start_us = int(window_start_us)

    @property
    def next_bin_start_us(self) -> int | None:
        """Start time of the bin the current window expects next (None outside a window)."""
        if self._state is None:
            return None
        return self._window_start_us + self._state.steps_taken * self.config.bin_us

    def end_window(self) -> None:
        """Drop the current window (time jump, gap or dropped bins): no step until the next."""
        self._state = None
        self._window_start_us = None

    @torch.inference_mode()
    def step(self, bin_events: np.ndarray, end_us: int) -> PoseStep:
        """Advance the SNN by one bin and decode the joints."""
        if self._state is None:
            raise RuntimeError('step() called outside a window; call begin_window() first')
        step_index = self._state.steps_taken
        heatmap, self._state, activity = self.model.step(self._state,
                                                         self.snn_input(bin_events))
        result = self._decode(heatmap[0], end_us, self._window_start_us, step_index,
                              activity.firing_rates())
        if self._state.steps_taken >= self.config.steps_per_window:
            self.end_window()
        return result

    def _decode(self, heatmap: torch.Tensor, end_us: int, window_start_us: int, step_index: int,
                firing_rates: dict[str, float]) -> PoseStep:
        peaks = None
        if not self.subpixel and heatmap.device.type == 'cpu' and heatmap.dtype == torch.float32:
            peaks = decode_finite_peaks(heatmap.numpy())
        if peaks is None:
            joints = decode_heatmaps(heatmap, subpixel=self.subpixel)
            peaks = joints.xy.cpu().numpy(), joints.confidence.cpu().numpy()
        xy, confidence = peaks
        return PoseStep(int(end_us), int(window_start_us), step_index,
                        self.geometry.model_to_sensor(xy), confidence, firing_rates)


def check_ann_lead_bins(ann_lead_bins: int, config: ModelConfig) -> None:
    """Reject a lead outside ``[0, steps_per_window)`` with a clear error."""
    if not 0 <= ann_lead_bins < config.steps_per_window:
        raise ValueError(f'ann_lead_bins must be in [0, {config.steps_per_window - 1}] (bins '
                         f'of a window), got {ann_lead_bins}')


def window_starts(times_us: np.ndarray, config: ModelConfig,
                  ann_lead_bins: int = 0) -> list[int]:
    """
    Window start times of a recording whose event times are ``times_us`` (sorted).

    The first window is the first multiple of ``window_us`` (not before the first bin) with at
    least ``ann_events`` events before its ANN time (the start less ``ann_lead_bins`` bins);
    with a lead, the bin that ends at the ANN time must also be in the recording, since a
    stream learns the ANN's events when that bin completes. Later windows follow every
    ``window_us`` as long as their first bin is complete (an event at or after its end exists).
    """
    check_ann_lead_bins(ann_lead_bins, config)
    if len(times_us) <= config.ann_events:
        return []
    window = config.window_us
    lead = ann_lead_bins * config.bin_us
    first_bin = (int(times_us[0]) // config.bin_us) * config.bin_us
    earliest = first_bin + lead + (config.bin_us if lead else 0)
    start = -(-earliest // window) * window
    enough = int(times_us[config.ann_events - 1]) + 1 + lead
    start = max(start, -(-enough // window) * window)
    last = int(times_us[-1])
    return list(range(start, last - config.bin_us + 1, window))


@torch.inference_mode()
def run_offline(estimator: HybridEstimator, events: np.ndarray) -> list[PoseStep]:
    """
    Run the reference over a whole recording with the batched window API of the model.

    Returns one :class:`PoseStep` per complete bin of every window, in time order. The node's
    streaming path must produce the same steps on the same events.
    """
    config = estimator.config
    times = events['t']
    steps: list[PoseStep] = []
    for start in window_starts(times, config, estimator.ann_lead_bins):
        n_before = int(np.searchsorted(times, start - estimator.ann_lead_us, side='left'))
        history = events[max(0, n_before - config.ann_events):n_before]
        n_complete = min(config.steps_per_window,
                         (int(times[-1]) - start) // config.bin_us)
        bins = split_into_bins(events, start, config.bin_us, n_complete)
        frames = torch.cat([estimator.snn_input(b) for b in bins]).unsqueeze(0)
        out = estimator.model.forward_window(estimator.ann_input(history), frames,
                                             keep_activity=True)
        for i in range(n_complete):
            steps.append(estimator._decode(
                out['heatmaps'][0, i], start + (i + 1) * config.bin_us, start, i,
                out['activity'][i].firing_rates()))
    return steps


@dataclass(frozen=True)
class BinTask:
    """
    A completed bin to step on; ``history`` holds the ANN's events when it starts a window.

    ``next_history`` is set on the bin that ends at a window's ANN time (its start less the
    lead), with that window's start in ``next_window_us``: the ANN's events are known from then
    on, at least a bin before the window's first bin is complete, so a node can start the ANN
    early. The window's first bin carries the same events again as ``history``.
    """

    bin: CompletedBin  # noqa: A003 - the bin is what a task is about
    history: np.ndarray | None = None
    next_history: np.ndarray | None = None
    next_window_us: int | None = None


@dataclass
class StreamCounters:
    """What the streaming path did with the bins it was given (for diagnostics)."""

    windows: int = 0
    steps: int = 0
    warmup_bins: int = 0
    bins_outside_window: int = 0
    windows_broken: int = 0


class StreamingRunner:
    """
    Events in, poses out: an :class:`EventBinner` feeding a :class:`HybridEstimator`.

    :meth:`tasks` (call in arrival order) turns messages into bins and grabs the ANN's events
    at window starts; :meth:`run_task` steps the model. :meth:`push` does both at once; the node
    runs them in different threads so the ANN can run beside the SNN.
    """

    def __init__(self, estimator: HybridEstimator, binner: EventBinner | None = None) -> None:
        config = estimator.config
        self.estimator = estimator
        self.binner = binner or EventBinner(config.bin_us, history_events=config.ann_events,
                                            reset_threshold_us=config.window_us)
        if self.binner.bin_us != config.bin_us:
            raise ValueError(f'binner bins are {self.binner.bin_us} us, the model needs '
                             f'{config.bin_us} us')
        self.counters = StreamCounters()
        self._known_histories: dict[int, np.ndarray | None] = {}
        estimator.end_window()

    def tasks(self, events: np.ndarray) -> list[BinTask]:
        """
        Bin one message's events; attach the ANN history to each window-starting bin.

        A bin ending at a window's ANN time also carries that window's history
        (``next_history``); with a lead it is kept until the window's first bin.
        """
        window = self.estimator.config.window_us
        lead = self.estimator.ann_lead_us
        tasks = []
        for completed in self.binner.push(events):
            if completed.reset_before:
                self._known_histories.clear()   # events from before a time jump
            history = next_history = next_window = None
            if completed.start_us % window == 0:
                history = (self._history(completed.start_us) if lead == 0 else
                           self._known_histories.pop(completed.start_us, None))
                self._known_histories = {start: known for start, known
                                         in self._known_histories.items()
                                         if start > completed.start_us}
            if (completed.end_us + lead) % window == 0:
                next_window = completed.end_us + lead
                next_history = self._history(completed.end_us)
                if lead:
                    self._known_histories[next_window] = next_history
            tasks.append(BinTask(completed, history, next_history,
                                 next_window if next_history is not None else None))
        return tasks

    def _history(self, ann_time_us: int) -> np.ndarray | None:
        """Return the last ``ann_events`` events before ``ann_time_us`` (None: too few)."""
        count = self.estimator.config.ann_events
        candidate = self.binner.events_before(ann_time_us, count)
        return candidate if len(candidate) == count else None

    def run_task(self, task: BinTask, state: WindowState | None = None) -> PoseStep | None:
        """
        Step the model on one bin; return its pose, or None if the bin is outside a window.

        At a window start the ANN runs here unless its ``state`` was computed elsewhere.
        A bin that does not follow the current window's last one (time jump, gap, dropped
        bins) ends the window: nothing is stepped until the next window start.
        """
        estimator = self.estimator
        if task.bin.reset_before or task.bin.gap_before or (
                estimator.in_window and task.bin.start_us != estimator.next_bin_start_us):
            if estimator.in_window:
                self.counters.windows_broken += 1
            estimator.end_window()
        if task.history is not None:
            estimator.begin_window(state if state is not None
                                   else estimator.initialise(task.history), task.bin.start_us)
            self.counters.windows += 1
        if not estimator.in_window:
            if self.counters.windows == 0:
                self.counters.warmup_bins += 1
            else:
                self.counters.bins_outside_window += 1
            return None
        self.counters.steps += 1
        return estimator.step(task.bin.events, task.bin.end_us)

    def push(self, events: np.ndarray) -> list[PoseStep]:
        """Bin and step synchronously; return the poses of the bins this message completed."""
        poses = (self.run_task(task) for task in self.tasks(events))
        return [pose for pose in poses if pose is not None]
