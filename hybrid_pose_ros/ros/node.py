"""
``hybrid_pose_node``: events in, 13 DHP19 joints out at the SNN rate.

Threads: the event subscription decodes raw CDR with numpy and bins events by event time, and
queues each completed bin. Right after each message the same callback steps the SNN through the
queued bins (at the SNN rate, one step per completed 10 ms bin), waiting for the ANN state only at
the bin it was computed for; stepping in the callback saves the wake-up of a polling timer. As soon
as the stream passes a window's ANN time (the window start, less ``ann_lead_bins`` bins: the bin
ending there is complete) the node builds the ANN input from the 7500 preceding events and starts
the ANN (``ann_runtime``: OpenVINO on its own thread, which never waits for the GIL, or torch in
the ANN worker thread), so the ANN runs while the window's first bin is still filling: before the
message's bins are stepped if the same message completes the window's first bin, else right after
them, so that it does not slow them. Skeleton markers due in that time (``marker_rate_hz``) follow
once the queue is empty, so visualisation never delays a pose. All callbacks share one
single-threaded executor: rclpy's multi-threaded executor cost so much Python time on two cores
that the node fell behind (448 of 448 sample-bag poses with one executor thread against 63 with
four, p50 latency 19 ms against 200 ms); OpenVINO, the torch ops of the ANN thread and the sparse
SNN kernels release the GIL. The published poses equal
:func:`hybrid_pose_ros.estimator.run_offline` on the same events at any replay speed (with reliable
delivery). No pose is published for bins outside an initialised window.

Reliability policies; every counter named here is a value in ``/diagnostics``, whose level is
WARN while a drop counter grew since the previous status and ERROR while an error counter
(``step_errors``, ``message_errors``) grew; its message lists the increments:

* Malformed messages (truncated or corrupted CDR, a sequence longer than the payload, an
  EventPacket encoding the node cannot decode, a zero-size message) are dropped whole:
  ``decode_errors``, and ``last_error`` holds the decoder's reason. Messages lost before the
  node saw them (DDS queue overflow, best-effort loss) show as gaps in the publisher's sequence
  numbers from the rmw message info: ``messages_lost`` (Jazzy and later; Humble's rclpy passes
  no message info, so there ``messages_lost_counted`` is false and nothing is counted).
* Sensor size: ``sensor_width``/``sensor_height`` fix it, and a message reporting another
  nonzero size is dropped (``size_dropped``). With 0 the first message's size is used; another
  size is adopted (window restart, ``sensor_changes``) only once SIZE_CONFIRM_MESSAGES
  messages in a row report it, and those before are dropped (``size_dropped``), so one corrupt
  header cannot restart the stream. A message reporting 0 for width or height uses the known
  size (dropped while none is known); sizes above MAX_SENSOR_SIZE are dropped.
* Events outside the sensor are dropped one by one (``events_out_of_sensor``). Events whose
  time no stamp can hold or that lie more than ``event_time_outlier_s`` from the median of
  their message are dropped (``events_time_outliers``), so a single wild timestamp neither
  resets nor stalls the stream. Events out of order inside a message are sorted
  (``binner_reordered``); duplicate timestamps are kept as they are.
* Time: a message entirely more than one window older than the stream (bag loop, camera
  restart) resets the binner and the SNN (``binner_resets``; the open bin is dropped,
  ``binner_reset_dropped``); older events in a current message are late
  (``binner_late_dropped``). While no events arrive nothing is published: a bin is complete only
  once a later event exists, so no pose is ever repeated with a newer stamp. When events resume
  after a gap (more than 10 empty bins), the empty bins up to it are stepped and stamped with
  their own event time, the window ends, and the next window starts only from an ANN history
  entirely after the gap (``windows_skipped_after_gap``). ``seconds_since_input`` says how long
  the input has been quiet. Output stamps are event time and the processing timers run on the
  steady clock, so ``use_sim_time`` with a replayed or paused ``/clock`` changes only the
  stamp of ``/diagnostics``.
* Load: at most ``max_pending_bins`` bins and MAX_QUEUED_EVENTS events wait for the SNN; beyond
  that the oldest whole window is dropped (``bins_dropped``, ``windows_dropped``) and its
  pending ANN pass cancelled. The binner holds at most 2,000,000 events in its open bin
  (``binner_overflow_dropped``).
* Faults while running: an exception while stepping or publishing a bin is logged with the bin's
  time and traceback, counted (``step_errors``), and ends the window; processing goes on with
  the next window. Any other exception while handling a message drops the message
  (``message_errors``). Non-finite model outputs are published as missing joints (NaN) and
  counted (``nonfinite_joints``, ``nonfinite_poses``).
* Startup: a configuration problem (parameters, checkpoint, ROS arguments) prints one line
  ``hybrid_pose_node: ...`` and exits with code 2. CUDA requested but absent: a warning, then the
  CPU. A log directory (``ROS_LOG_DIR``, else ``$ROS_HOME/log``, else ``~/.ros/log``) that cannot
  be written: a warning on stderr, then logging to the console and ``/rosout`` only.
"""
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
import os
import pathlib
import sys
import threading
import time
import traceback

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from hybrid_pose_ros.bundled import bundled_file
from hybrid_pose_ros.estimator import (
    BinTask, check_ann_lead_bins, HybridEstimator, StreamingRunner)
from hybrid_pose_ros.events.binning import EventBinner, screen_events
from hybrid_pose_ros.events.representations import warm_up_sensor_histograms
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model.checkpoint import CheckpointError, load_checkpoint
from hybrid_pose_ros.model.inference import (
    has_ann_calibration, prepare_for_inference, resolve_ann_precision, resolve_ann_runtime,
    warm_up)
from hybrid_pose_ros.model.openvino_init import OpenVinoWindowInit, PendingWindowInit
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.compat import message_callback, MESSAGE_INFO_IN_CALLBACKS, MessageInfo
from hybrid_pose_ros.ros.counters import DROP_COUNTERS, ERROR_COUNTERS
from hybrid_pose_ros.ros.health import Endpoint, event_topics, no_input_problem, RateWindow
from hybrid_pose_ros.ros.interfaces import INPUT_TYPE_MESSAGES
from hybrid_pose_ros.ros.outputs import (
    compressed_image_message, debug_image_rgb, EventSpan, EventTimeDecimator, image_message,
    ImagePlane, pose_array_cdr, skeleton_markers, stamp_from_us, visible_joints)
from hybrid_pose_ros.ros.parameters import MAX_SENSOR_SIZE, PARAMETERS, validate
from hybrid_pose_ros.ros.runtime import spin_until_shutdown
from hybrid_pose_ros.tools.node import INTERRUPTED, NODE_USAGE, parse
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.timer import Timer
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
import torch
from visualization_msgs.msg import MarkerArray

NODE_NAME = 'hybrid_pose_node'
DEFAULT_CHECKPOINT = 'hybrid_cpu.pt'
SIZE_CONFIRM_MESSAGES = 10
MAX_QUEUED_EVENTS = 4_000_000
IDLE_AFTER_S = 2.0
LOG_THROTTLE_S = 5.0
AnnJob = Future | PendingWindowInit
"""A window's ANN pass under way: in the ANN thread (torch) or in OpenVINO's own thread."""


class StartupError(RuntimeError):
    """A configuration problem that stops the node with one clear message."""


def default_checkpoint() -> pathlib.Path:
    """Find the bundled weights: the installed share directory, else the source weights/."""
    path = bundled_file(f'weights/{DEFAULT_CHECKPOINT}')
    if path is not None:
        return path
    raise StartupError(f'no checkpoint given and the bundled weights/{DEFAULT_CHECKPOINT} is '
                       'not installed; set the checkpoint parameter')


def _pil_available() -> bool:
    """Whether Pillow is installed (it encodes the compressed debug image)."""
    try:
        import PIL  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


def select_device(requested: str, logger: RcutilsLogger) -> torch.device:
    """Return the torch device; CUDA requested but missing falls back to the CPU, warning."""
    if requested.startswith('cuda') and not torch.cuda.is_available():
        logger.warning(f'device {requested!r} requested but CUDA is not available; using cpu')
        return torch.device('cpu')
    if requested.startswith('cuda:') and int(requested[5:]) >= torch.cuda.device_count():
        raise StartupError(f'device {requested!r}: only {torch.cuda.device_count()} CUDA '
                           'device(s) present')
    return torch.device(requested)


class HybridPoseCore:
    """
    The node's work, shared by :class:`HybridPoseNode` and :class:`HybridPoseLifecycleNode`.

    A mixin over an rclpy node: :meth:`_declare` declares and checks the parameters,
    :meth:`_configure` loads and warms up the model, :meth:`_activate` creates the subscription,
    publishers and timers, :meth:`_deactivate` destroys them and :meth:`_release` drops the
    model. The plain node runs all of them at construction.
    """

    def _declare(self) -> None:
        """Declare the parameters and check them (StartupError for a bad value)."""
        self.model = None
        self.ann_pool: ThreadPoolExecutor | None = None
        self.subscription = None
        self.publishers_and_timers: list = []
        self.params = self._declare_and_validate()
        self.frame_id = self.params['frame_id']
        self.events_topic = self.params['events_topic']   # resolved once subscribed
        self.lock = threading.Lock()
        self.pose_rate = RateWindow()
        self.event_rate = RateWindow()
        self._reset_stream()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _configure(self) -> None:
        """Select the device, load, prepare and warm up the model (StartupError on failure)."""
        self.device = select_device(self.params['device'], self.get_logger())
        self.checkpoint = self._load_checkpoint()
        self.snn_backend = self.params['snn_backend'] if self.device.type == 'cpu' else 'dense'
        self.ann_runtime = self._ann_runtime()
        self.ann_precision = self._ann_precision()
        self._check_input_type()
        self.model = prepare_for_inference(self.checkpoint.model.to(self.device),
                                           self.params['threads'], snn_backend=self.snn_backend,
                                           ann_precision=self.ann_precision,
                                           ann_runtime=self.ann_runtime)
        warm_up(self.model)
        warm_up_sensor_histograms()
        self.ann_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='ann')
        config = self.checkpoint.config
        self.get_logger().info(
            f'{self.checkpoint.preset} model from {self.checkpoint.path} on {self.device}: '
            f'SNN {config.snn_rate_hz:.0f} Hz ({self.snn_backend}), ANN '
            f'{config.ann_rate_hz:.0f} Hz ({self.ann_runtime}, {self.ann_precision})')

    def _activate(self) -> None:
        """Subscribe to the events and start publishing; the stream starts afresh."""
        self._reset_stream()
        self._create_interfaces()
        self.get_logger().info(
            f'listening to {self.events_topic} ({self.params["input_type"]}, '
            f'{INPUT_TYPE_MESSAGES[self.params["input_type"]]})')

    def _deactivate(self) -> None:
        """Destroy the subscription, publishers and timers; drop the queued bins."""
        if self.subscription is not None:
            self.destroy_subscription(self.subscription)
            self.subscription = None
        for entity in self.publishers_and_timers:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_publisher(entity)
        self.publishers_and_timers = []
        self._reset_stream()

    def _release(self) -> None:
        """Stop the ANN worker and drop the model (the lifecycle node's cleanup and shutdown)."""
        self._deactivate()
        if self.ann_pool is not None:
            self.ann_pool.shutdown(wait=False, cancel_futures=True)
            self.ann_pool = None
        self.model = None
        self.checkpoint = None

    def _reset_stream(self) -> None:
        """Forget the stream: window, queue, counters, rates and the first-message report."""
        with self.lock:
            for _, future, _ in getattr(self, 'queue', ()):
                if future is not None:
                    future.cancel()
            for future in getattr(self, 'early_ann', {}).values():
                future.cancel()
            self.queue: deque[tuple[BinTask, AnnJob | None, float]] = deque()
            self.early_ann: dict[int, AnnJob] = {}   # window start (us) -> ANN started early
            # window start (us) -> its ANN's events, to start once this message's bins are stepped
            self.deferred_ann: dict[int, np.ndarray] = {}
            self.queued_events = 0
        self.runner: StreamingRunner | None = None
        self.geometry: SensorGeometry | None = None
        self.resume_us = np.iinfo(np.int64).min
        self.marker_decimator = EventTimeDecimator()
        self.image_decimator = EventTimeDecimator()
        self.due_markers: list[tuple[int, np.ndarray, np.ndarray]] = []   # (end us, xy, conf)
        self.due_images: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.image_events = EventSpan()
        self.image_wanted = False
        self.size_candidate: tuple[tuple[int, int], int] | None = None
        self.last_sequence: dict[bytes, int] = {}
        self.last_logged: dict[str, float] = {}
        self.stats = dict.fromkeys((
            'messages', 'events', 'decode_errors', 'messages_lost', 'size_dropped',
            'events_out_of_sensor', 'events_time_outliers', 'poses', 'nonfinite_poses',
            'nonfinite_joints', 'bins_dropped', 'windows_dropped', 'windows_skipped_after_gap',
            'step_errors', 'message_errors', 'sensor_changes', 'debug_images'), 0)
        self.reported: dict[str, int] = {}
        self.latencies_ms: deque[float] = deque(maxlen=1000)
        self.last_firing_rates: dict[str, float] = {}
        self.last_error = ''
        self.input_problem = ''
        self.started = time.monotonic()
        self.last_input: float | None = None
        self.pose_rate.reset()
        self.event_rate.reset()

    def _declare_and_validate(self) -> dict:
        values = {}
        for spec in PARAMETERS:
            try:
                value = self.declare_parameter(spec.name, spec.default, spec.descriptor()).value
            except ParameterException:
                # out of the descriptor's range: declare without it to report the value
                value = self.declare_parameter(spec.name, spec.default,
                                               spec.descriptor(ranges=False)).value
            problem = validate(spec.name, value)
            if problem:
                raise StartupError(f'parameter {spec.name}={value!r}: {problem}')
            values[spec.name] = value
        if (values['sensor_width'] == 0) != (values['sensor_height'] == 0):
            raise StartupError(f'parameters sensor_width={values["sensor_width"]} and '
                               f'sensor_height={values["sensor_height"]}: set both, or both '
                               'to 0 to take the size from the messages')
        return values

    def _ann_runtime(self) -> str:
        try:
            return resolve_ann_runtime(self.params['ann_runtime'], self.device)
        except ValueError as error:
            raise StartupError(f'parameter ann_runtime={self.params["ann_runtime"]!r}: '
                               f'{error}') from None

    def _ann_precision(self) -> str:
        try:
            return resolve_ann_precision(self.params['ann_precision'], self.device,
                                         self.ann_runtime,
                                         has_ann_calibration(self.checkpoint.model))
        except ValueError as error:
            raise StartupError(f'parameter ann_precision={self.params["ann_precision"]!r}: '
                               f'{error}') from None

    def _load_checkpoint(self):
        path = self.params['checkpoint'] or str(default_checkpoint())
        try:
            loaded = load_checkpoint(path, map_location='cpu')
        except CheckpointError as error:
            raise StartupError(str(error)) from None
        if loaded.kind != 'hybrid':
            raise StartupError(f'checkpoint {path} holds a {loaded.kind!r} model; the node '
                               'needs a hybrid checkpoint')
        if self.params['bin_us'] not in (0, loaded.config.bin_us):
            raise StartupError(f'parameter bin_us={self.params["bin_us"]} differs from the '
                               f'{loaded.config.bin_us} us the checkpoint was trained with')
        try:
            check_ann_lead_bins(self.params['ann_lead_bins'], loaded.config)
        except ValueError as error:
            raise StartupError(f'parameter {error}') from None
        torch.set_num_threads(self.params['threads'])
        return loaded

    def _check_input_type(self) -> None:
        """Check that the input message type and packet decoder exist (StartupError if not)."""
        if self.params['input_type'] == 'dvs':
            try:
                from dvs_msgs.msg import EventArray
            except ImportError:
                raise StartupError('input_type dvs needs dvs_msgs, which is not installed; '
                                   'build ros-event-camera/dvs_msgs or use event_packet') from None
            self.message_type = EventArray
            self.decode = self._decode_event_array
        else:
            from event_camera_msgs.msg import EventPacket
            encoding = self.params['packet_encoding']
            if (encoding in codecs.EVENT_CAMERA_PY_ENCODINGS
                    and codecs.load_event_camera_py() is None):
                raise StartupError(f'packet_encoding {encoding} needs event_camera_py, which is '
                                   'not installed; install it with '
                                   f'`{codecs.EVENT_CAMERA_PY_INSTALL}` or use packet_encoding '
                                   'mono or auto')
            self.message_type = EventPacket
            self.decode = codecs.PacketDecoder(use_event_camera_py=encoding != 'mono')

    def _create_interfaces(self) -> None:
        reliability = (ReliabilityPolicy.BEST_EFFORT if self.params['qos_reliability']
                       == 'best_effort' else ReliabilityPolicy.RELIABLE)
        qos = QoSProfile(depth=self.params['qos_depth'], reliability=reliability,
                         history=HistoryPolicy.KEEP_LAST)
        self.subscription = self.create_subscription(
            self.message_type, self.params['events_topic'], message_callback(self._on_events),
            qos, raw=True, callback_group=MutuallyExclusiveCallbackGroup())
        self.events_topic = self.subscription.topic_name   # resolved: namespace and remapping
        self.pose_pub = self.create_publisher(PoseArray, '~/pose', 10)
        self.marker_pub = self.create_publisher(MarkerArray, '~/skeleton', 10)
        self.image_pub = self.create_publisher(Image, '~/debug_image', 2)
        self.compressed_pub = (self.create_publisher(CompressedImage,
                                                     '~/debug_image/compressed', 2)
                               if _pil_available() else None)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # steady timers: processing must not follow a paused or stopped /clock (use_sim_time)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        timer = self.create_timer(self.params['diagnostics_period'], self._publish_diagnostics,
                                  clock=steady, callback_group=MutuallyExclusiveCallbackGroup())
        self.publishers_and_timers = [
            p for p in (self.pose_pub, self.marker_pub, self.image_pub, self.compressed_pub,
                        self.diag_pub, timer) if p is not None]

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        for parameter in parameters:
            problem = validate(parameter.name, parameter.value)
            if problem:
                return SetParametersResult(successful=False,
                                           reason=f'{parameter.name}: {problem}')
        for parameter in parameters:
            self.params[parameter.name] = parameter.value
        return SetParametersResult(successful=True)

    def _decode_event_array(self, data: bytes):
        decoded = codecs.decode_event_array(data, check_bounds=False)
        return decoded, decoded.events

    def _error(self, counter: str, message: str) -> None:
        """Count an error, remember it as the last error and log it with its traceback."""
        self.stats[counter] += 1
        self.last_error = message
        self.get_logger().error(message + '\n' + traceback.format_exc(),
                                throttle_duration_sec=LOG_THROTTLE_S)

    def _warn(self, counter: str, message: str, amount: int = 1) -> None:
        """
        Count a drop, remember it as the last error and log it.

        Each counter logs at most once every LOG_THROTTLE_S seconds.
        """
        self.stats[counter] += amount
        self.last_error = message
        now = time.monotonic()
        if now - self.last_logged.get(counter, -LOG_THROTTLE_S) >= LOG_THROTTLE_S:
            self.last_logged[counter] = now
            self.get_logger().warning(message)

    def _on_events(self, data: bytes, info: MessageInfo | None) -> None:
        received = time.monotonic()
        self.last_input = received
        self.image_wanted = self.params['debug_image'] and self._image_subscribed()
        if not self.image_wanted:
            self.image_events.clear()
        self._count_lost(info)
        try:
            self._handle_message(data, received)
        except codecs.CodecError as error:
            self._warn('decode_errors', f'dropped a message on {self.events_topic}: {error}')
        except Exception as error:  # noqa: B902 - no input may stop the node
            self._error('message_errors', f'dropped a message on {self.events_topic}: {error!r}')
        self._step_queued_bins()
        self._start_deferred_anns()

    def _count_lost(self, info: MessageInfo | None) -> None:
        """Count gaps in each publisher's sequence numbers (where rclpy and the rmw give them)."""
        if info is None:
            return
        gid, sequence = info.get('publisher_gid'), info.get('publication_sequence_number')
        if not gid or not sequence:
            return
        key = bytes(gid['data'])
        last = self.last_sequence.get(key)
        if last is not None and sequence > last + 1:
            self._warn('messages_lost', f'{sequence - last - 1} message(s) on '
                       f'{self.events_topic} lost before they reached the node',
                       sequence - last - 1)
        self.last_sequence[key] = sequence

    def _handle_message(self, data: bytes, received: float) -> None:
        decoded, events = self.decode(data)
        self.stats['messages'] += 1
        self.stats['events'] += len(events)
        size = self._sensor_size(decoded.width, decoded.height)
        if size is None:
            return
        if not self.frame_id and decoded.frame_id:
            self.frame_id = decoded.frame_id
        screened = screen_events(events, *size,
                                 round(self.params['event_time_outlier_s'] * 1e6))
        if screened.out_of_sensor:
            self._warn('events_out_of_sensor', f'dropped {screened.out_of_sensor} event(s) '
                       f'outside the {size[0]}x{size[1]} sensor', screened.out_of_sensor)
        if screened.time_outliers:
            self._warn('events_time_outliers', f'dropped {screened.time_outliers} event(s) more '
                       f'than {self.params["event_time_outlier_s"]} s from the median time of '
                       'their message', screened.time_outliers)
        self._ensure_runner(*size)
        for task in self.runner.tasks(screened.events):
            if task.bin.gap_before or task.bin.reset_before:
                self.resume_us = task.bin.start_us
            early = self._take_early_ann(task)
            if task.history is not None and not self._after_resume(task.history):
                # the ANN would see events from before the gap: wait for a fresh history
                self.stats['windows_skipped_after_gap'] += 1
                task = BinTask(task.bin)
            future = None
            if task.history is not None:
                future = early or self._start_ann(task.history)
            elif early is not None:
                early.cancel()
            if task.next_history is not None and self._after_resume(task.next_history):
                # the next window's events are known: its ANN starts before its first bin ends
                self.deferred_ann[task.next_window_us] = task.next_history
            with self.lock:
                self.queue.append((task, future, received))
                self.queued_events += len(task.bin.events)
                self._enforce_queue_bound()

    def _after_resume(self, history: np.ndarray) -> bool:
        """Whether an ANN history lies entirely after the last gap or reset."""
        return int(history['t'][0]) >= self.resume_us

    def _take_early_ann(self, task: BinTask) -> AnnJob | None:
        """
        Pop the ANN started early for the window this bin begins; drop outdated ones.

        A window whose ANN waits in :attr:`deferred_ann` gets it started by its first bin
        instead, since this message needs its state.
        """
        start = task.bin.start_us
        discontinuous = task.bin.gap_before or task.bin.reset_before
        for window_start in list(self.early_ann):
            if discontinuous or window_start < start:
                self.early_ann.pop(window_start).cancel()
        for window_start in list(self.deferred_ann):
            if discontinuous or window_start <= start:
                del self.deferred_ann[window_start]
        return self.early_ann.pop(start, None)

    def _start_deferred_anns(self) -> None:
        """Start the ANN of windows whose events are known, now that the queue is stepped."""
        try:
            for window_start, history in self.deferred_ann.items():
                self.early_ann[window_start] = self._start_ann(history)
        except Exception as error:  # noqa: B902 - a failed ANN start must not stop the node
            self._error('step_errors', f'starting the ANN early failed: {error!r}')
        finally:
            self.deferred_ann.clear()

    def _start_ann(self, history: np.ndarray) -> AnnJob:
        """Start the ANN on a window's history: in OpenVINO's own thread, or the ANN thread."""
        estimator = self.runner.estimator
        compiled = estimator.model.compiled_init
        if isinstance(compiled, OpenVinoWindowInit):
            return compiled.submit(estimator.ann_input(history))
        return self.ann_pool.submit(estimator.initialise, history)

    def _sensor_size(self, width: int, height: int) -> tuple[int, int] | None:
        """Return the sensor size for a message reporting ``width x height``; None drops it."""
        topic = self.events_topic
        configured = (self.params['sensor_width'], self.params['sensor_height'])
        known = configured if configured != (0, 0) else (
            None if self.geometry is None else
            (self.geometry.sensor_width, self.geometry.sensor_height))
        reported = (width, height)
        candidate, self.size_candidate = self.size_candidate, None
        if width == 0 or height == 0:
            if known is None:
                self._warn('size_dropped', f'dropped a message on {topic}: it reports a '
                           f'{width}x{height} sensor and no size is known yet; set '
                           'sensor_width and sensor_height')
            return known
        if max(reported) > MAX_SENSOR_SIZE:
            self._warn('size_dropped', f'dropped a message on {topic}: implausible sensor size '
                       f'{width}x{height} (more than {MAX_SENSOR_SIZE} pixels)')
            return None
        if known is None or reported == known:
            return reported
        if configured != (0, 0):
            self._warn('size_dropped', f'dropped a message on {topic}: it reports a '
                       f'{width}x{height} sensor, sensor_width/sensor_height are '
                       f'{configured[0]}x{configured[1]}')
            return None
        count = candidate[1] + 1 if candidate and candidate[0] == reported else 1
        if count >= SIZE_CONFIRM_MESSAGES:
            return reported
        self.size_candidate = (reported, count)
        self._warn('size_dropped', f'dropped a message on {topic}: it reports a {width}x{height} '
                   f'sensor, the stream is {known[0]}x{known[1]} (a new size is adopted after '
                   f'{SIZE_CONFIRM_MESSAGES} messages in a row)')
        return None

    def _ensure_runner(self, width: int, height: int) -> None:
        if self.geometry is not None and (self.geometry.sensor_width, self.geometry.sensor_height
                                          ) == (width, height):
            return
        config = self.checkpoint.config
        geometry = SensorGeometry.for_sensor(width, height, config.input_width,
                                             config.input_height)
        if self.geometry is not None:
            self.stats['sensor_changes'] += 1
            self.get_logger().warning(
                f'sensor size changed from {self.geometry.sensor_width}x'
                f'{self.geometry.sensor_height} to {width}x{height}; restarting the window; '
                f'{describe_geometry(geometry)}')
        else:
            self.get_logger().info(f'first message on {self.events_topic}: {width}x{height} '
                                   f'sensor, frame {self.frame_id!r}; '
                                   f'{describe_geometry(geometry)}')
        self.geometry = geometry
        binner = EventBinner(config.bin_us, history_events=config.ann_events,
                             reset_threshold_us=config.window_us)
        with self.lock:
            while self.queue:
                self._drop_oldest_window()
            for future in self.early_ann.values():
                future.cancel()
            self.early_ann.clear()
            self.deferred_ann.clear()
            self.runner = StreamingRunner(
                HybridEstimator(self.model, self.geometry, self.device,
                                ann_lead_bins=self.params['ann_lead_bins']), binner)
        self.resume_us = np.iinfo(np.int64).min
        self.image_events.clear()

    def _enforce_queue_bound(self) -> None:
        """Drop the oldest whole window while too many bins or events wait (with the lock)."""
        while self.queue and (len(self.queue) > self.params['max_pending_bins']
                              or self.queued_events > MAX_QUEUED_EVENTS):
            self._drop_oldest_window()

    def _drop_oldest_window(self) -> None:
        """Drop the first queued bin and the rest of its window, cancelling their ANN passes."""
        dropped = 0
        while self.queue and (dropped == 0 or self.queue[0][0].history is None):
            task, future, _ = self.queue.popleft()
            if future is not None:
                future.cancel()
            self.queued_events -= len(task.bin.events)
            dropped += 1
        self.stats['windows_dropped'] += 1
        self._warn('bins_dropped', f'the SNN fell behind: dropped {dropped} queued bin(s)',
                   dropped)

    def _step_queued_bins(self) -> None:
        """Step every queued bin and publish its pose; then the skeleton markers that came due."""
        while True:
            with self.lock:
                if not self.queue:
                    break
                task, future, received = self.queue.popleft()
                self.queued_events -= len(task.bin.events)
                runner = self.runner
            try:
                if self.image_wanted:
                    self.image_events.add(task.bin.end_us, task.bin.events,
                                          round(self.params['debug_image_span_s'] * 1e6))
                state = future.result() if future is not None else None
                pose = runner.run_task(task, state)
                if pose is not None:
                    self._publish(pose, task)
                    self.latencies_ms.append((time.monotonic() - received) * 1e3)
            except Exception as error:  # noqa: B902 - a failed step must not stop the node
                self._error('step_errors', f'model step for the bin ending at '
                            f'{task.bin.end_us} us failed: {error!r}; the window ends')
                runner.estimator.end_window()
        self._publish_due_markers()
        self._publish_due_images()

    def _publish_due_markers(self) -> None:
        """Publish the markers of the poses due for them, after the poses (never delaying one)."""
        try:
            for end_us, xy, confidence in self.due_markers:
                self.marker_pub.publish(skeleton_markers(
                    self._header(end_us), xy, confidence, self.params['min_confidence'],
                    self._image_plane(), self.params['marker_lifetime']))
        except Exception as error:  # noqa: B902 - visualisation must not stop the node
            self._error('step_errors', f'publishing skeleton markers failed: {error!r}')
        finally:
            self.due_markers.clear()

    def _image_subscribed(self) -> bool:
        """Whether ~/debug_image or ~/debug_image/compressed has a subscriber."""
        return self.image_pub.get_subscription_count() > 0 or (
            self.compressed_pub is not None and self.compressed_pub.get_subscription_count() > 0)

    def _publish_due_images(self) -> None:
        """Publish the debug image of the last pose due for one, after the poses."""
        if not self.due_images:
            return
        end_us, xy, confidence = self.due_images[-1]
        self.due_images.clear()
        try:
            image = debug_image_rgb(
                self.image_events.events(), self.geometry.sensor_width,
                self.geometry.sensor_height, xy,
                visible_joints(xy, confidence, self.params['min_confidence']))
            header = self._header(end_us)
            if self.image_pub.get_subscription_count() > 0:
                self.image_pub.publish(image_message(header, image))
            if self.compressed_pub is not None and self.compressed_pub.get_subscription_count():
                self.compressed_pub.publish(compressed_image_message(header, image))
            self.stats['debug_images'] += 1
        except Exception as error:  # noqa: B902 - visualisation must not stop the node
            self._error('step_errors', f'publishing the debug image failed: {error!r}')

    def _header(self, end_us: int) -> Header:
        """Return the header of an output for the bin ending at ``end_us`` (event time)."""
        return Header(stamp=stamp_from_us(end_us), frame_id=self.frame_id)

    def _publish(self, pose, task: BinTask) -> None:
        nonfinite = int(np.count_nonzero(~(np.isfinite(pose.xy).all(axis=-1)
                                           & np.isfinite(pose.confidence))))
        if nonfinite:
            self.stats['nonfinite_poses'] += 1
            self._warn('nonfinite_joints', f'the model gave {nonfinite} non-finite joint(s) for '
                       f'the bin ending at {pose.end_us} us; published as missing', nonfinite)
        min_conf = self.params['min_confidence']
        self.pose_pub.publish(pose_array_cdr(pose.end_us, self.frame_id, pose.xy,
                                             pose.confidence, min_conf))
        if self.marker_decimator.due(pose.end_us, self.params['marker_rate_hz']):
            self.due_markers.append((pose.end_us, pose.xy, pose.confidence))
        rate = self.params['debug_image_rate_hz']
        if self.image_wanted and self.image_decimator.due(pose.end_us, rate):
            self.due_images.append((pose.end_us, pose.xy, pose.confidence))
        self.stats['poses'] += 1
        self.last_firing_rates = pose.firing_rates

    def _image_plane(self) -> ImagePlane:
        fx, fy, cx, cy = self.params['camera_intrinsics']
        return ImagePlane(self.geometry.sensor_width, self.geometry.sensor_height,
                          self.params['marker_plane_depth'], self.params['marker_pixel_size'],
                          (fx, fy, cx, cy) if fx > 0 else None)

    def diagnostics_values(self) -> dict[str, str]:
        """Return counters, rates and model activity as strings (for /diagnostics)."""
        now = time.monotonic()
        values = {k: str(v) for k, v in self.stats.items()}
        values['device'] = str(self.device)
        values['snn_backend'] = self.snn_backend
        values['ann_precision'] = self.ann_precision
        values['ann_runtime'] = self.ann_runtime
        # over the last RATE_WINDOW_S seconds (each call adds a sample)
        values['pose_rate_hz'] = f'{self.pose_rate.rate(now, self.stats["poses"]):.1f}'
        values['event_rate_mev_s'] = (
            f'{self.event_rate.rate(now, self.stats["events"]) / 1e6:.3f}')
        values['events_topic'] = self.events_topic
        if self.geometry is not None:
            values['sensor'] = (f'{self.geometry.sensor_width}x'
                                f'{self.geometry.sensor_height}')
        values['seconds_since_input'] = ('' if self.last_input is None
                                         else f'{now - self.last_input:.1f}')
        values['queued_bins'] = str(len(self.queue))
        values['messages_lost_counted'] = str(MESSAGE_INFO_IN_CALLBACKS).lower()
        if self.latencies_ms:
            lat = np.array(self.latencies_ms)
            values['latency_p50_ms'] = f'{np.percentile(lat, 50):.2f}'
            values['latency_p99_ms'] = f'{np.percentile(lat, 99):.2f}'
        if self.runner is not None:
            values.update({f'binner_{k}': str(v)
                           for k, v in self.runner.binner.counters.as_dict().items()})
            values.update({f'stream_{k}': str(v)
                           for k, v in vars(self.runner.counters).items()})
        values.update({f'firing_rate_{k}': f'{v:.4f}'
                       for k, v in self.last_firing_rates.items()})
        values['last_error'] = self.last_error
        return values

    def diagnostics_status(self) -> DiagnosticStatus:
        """Summarise the counters: WARN if a drop counter, ERROR if an error counter grew."""
        values = self.diagnostics_values()
        increments = {}
        for key in DROP_COUNTERS + ERROR_COUNTERS:
            count = int(values.get(key, 0))
            if count > self.reported.get(key, 0):
                increments[key] = count - self.reported.get(key, 0)
            self.reported[key] = count
        errors = [f'{k} +{v}' for k, v in increments.items() if k in ERROR_COUNTERS]
        drops = [f'{k} +{v}' for k, v in increments.items() if k in DROP_COUNTERS]
        parts = ([f'errors: {", ".join(errors)}'] if errors else []) + (
            [f'dropping input: {", ".join(drops)}'] if drops else [])
        idle = self.last_input is not None and time.monotonic() - self.last_input > IDLE_AFTER_S
        if idle:
            parts.append(f'no input for {values["seconds_since_input"]} s')
        if self.input_problem:
            parts.append(self.input_problem)
        level = (DiagnosticStatus.ERROR if errors else
                 DiagnosticStatus.WARN if drops or self.input_problem else DiagnosticStatus.OK)
        return DiagnosticStatus(
            level=level, name=f'{self.get_fully_qualified_name()}: hybrid pose',
            hardware_id=str(self.device), message='; '.join(parts) or 'ok',
            values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def _check_input(self) -> None:
        """
        Set :attr:`input_problem` while no message arrived ``no_input_timeout`` s after start.

        The text names the resolved topic, and the type of a publisher on it that sends another
        message type (or where the event topics are): logged as a warning when it changes.
        """
        waited = time.monotonic() - self.started
        timeout = self.params['no_input_timeout']
        if self.last_input is not None or timeout <= 0 or waited < timeout:
            self.input_problem = ''
            return
        publishers = [Endpoint(info.topic_type, info.qos_profile.reliability
                               == ReliabilityPolicy.BEST_EFFORT)
                      for info in self.get_publishers_info_by_topic(self.events_topic)]
        problem = no_input_problem(
            self.events_topic, self.params['input_type'], timeout,
            self.params['qos_reliability'] == 'reliable', publishers,
            event_topics(self.get_topic_names_and_types()))
        if problem != self.input_problem:
            self.get_logger().warning(problem)
        self.input_problem = problem

    def _publish_diagnostics(self) -> None:
        self._check_input()
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                              status=[self.diagnostics_status()]))

    def destroy_node(self) -> None:
        """Stop the ANN worker, then destroy the node."""
        if self.ann_pool is not None:
            self.ann_pool.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


class HybridPoseNode(HybridPoseCore, Node):
    """The plain node: configured and active from construction to shutdown."""

    def __init__(self, **kwargs) -> None:
        Node.__init__(self, NODE_NAME, **kwargs)
        self._declare()
        self._configure()
        self._activate()


class HybridPoseLifecycleNode(HybridPoseCore, LifecycleNode):
    """
    The managed node (``hybrid_pose_node --lifecycle``).

    Constructed it declares and checks the parameters; configure loads and warms up the model
    (a failure leaves it unconfigured, with the reason logged); activate subscribes and
    publishes; deactivate stops both and keeps the model; cleanup drops the model; shutdown
    from any state stops everything.
    """

    def __init__(self, **kwargs) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._declare()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and warm up the model."""
        try:
            self._configure()
        except StartupError as error:
            self.get_logger().error(f'configure failed: {error}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the events and publish."""
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop subscribing and publishing; keep the model."""
        self._deactivate()
        self.get_logger().info('deactivated')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything after a failed transition; the node can be configured again."""
        self._release()
        return TransitionCallbackReturn.SUCCESS


def describe_geometry(geometry: SensorGeometry) -> str:
    """Return the crop and scale the model sees, for the log."""
    g = geometry
    return (f'the model sees columns {g.crop_x0}..{g.crop_x0 + g.crop_width - 1} and rows '
            f'{g.crop_y0}..{g.crop_y0 + g.crop_height - 1} ({g.crop_width}x{g.crop_height}, '
            f'{g.policy}) scaled by {g.scale:.3f} to {g.input_width}x{g.input_height}')


def log_directory() -> pathlib.Path:
    """Return the directory rcl writes log files to (``ROS_LOG_DIR``, ``ROS_HOME``, ``~/.ros``)."""
    if os.environ.get('ROS_LOG_DIR'):
        return pathlib.Path(os.path.expanduser(os.environ['ROS_LOG_DIR']))
    if os.environ.get('ROS_HOME'):
        return pathlib.Path(os.path.expanduser(os.environ['ROS_HOME'])) / 'log'
    return pathlib.Path.home() / '.ros' / 'log'


def log_directory_problem() -> str | None:
    """Return why rcl could not write its log files, or None if it can."""
    directory = log_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f'cannot create the log directory {directory}: {error.strerror}'
    if not os.access(directory, os.W_OK | os.X_OK):
        return f'the log directory {directory} is not writable'
    return None


def main(args: list[str] | None = None) -> None:
    """
    Run the node until shutdown; configuration errors exit with one message and code 2.

    ``--lifecycle`` runs the managed node; ``-h``/``--help`` prints the usage. Ctrl-C during
    start-up exits with status 130 and no traceback (see :mod:`hybrid_pose_ros.tools.node`).
    """
    args = list(sys.argv if args is None else args)
    lifecycle = '--lifecycle' in parse(args, NODE_USAGE, ('--lifecycle',))
    if '--disable-external-lib-logs' not in args:
        problem = log_directory_problem()
        if problem:
            print(f'hybrid_pose_node: warning: {problem}; logging to the console and /rosout '
                  'only (set ROS_LOG_DIR to a writable directory for log files)', file=sys.stderr)
            args += ['--ros-args', '--disable-external-lib-logs']
    try:
        rclpy.init(args=args)
    except _rclpy.RCLError as error:
        print(f'hybrid_pose_node: cannot initialise ROS: {str(error).splitlines()[0]}',
              file=sys.stderr)
        sys.exit(2)
    node = None
    try:
        node = HybridPoseLifecycleNode() if lifecycle else HybridPoseNode()
    except StartupError as error:
        print(f'hybrid_pose_node: {error}', file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        sys.exit(INTERRUPTED)
    spin_until_shutdown(node)


if __name__ == '__main__':
    main()
