"""
``hybrid_pose_node``: events in, 13 DHP19 joints out at the SNN rate.

Threads: the event subscription decodes raw CDR with numpy and bins events by event time; at
each window start it hands the 7500 preceding events to the ANN worker thread and queues the
bin. A high-rate timer in its own callback group steps the SNN through the queued bins, waiting
for the ANN state only at the bin it was computed for, so the published poses equal
:func:`hybrid_pose_ros.estimator.run_offline` on the same events at any replay speed (with
reliable delivery). If more than ``max_pending_bins`` bins wait, the oldest whole window is
dropped and counted. A time jump backwards resets the window; no pose is published for bins
outside an initialised window.
"""
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
import pathlib
import sys
import threading
import time
import traceback

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
from hybrid_pose_ros.estimator import BinTask, HybridEstimator, StreamingRunner
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model.checkpoint import CheckpointError, load_checkpoint
from hybrid_pose_ros.model.inference import prepare_for_inference
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.outputs import (
    ImagePlane, pose_array, skeleton_markers, stamp_from_us, visible_joints)
from hybrid_pose_ros.ros.parameters import PARAMETERS, validate
from hybrid_pose_ros.visualize import draw_skeleton, event_image
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
import torch
from visualization_msgs.msg import MarkerArray

DEFAULT_CHECKPOINT = 'hybrid_cpu.pt'
SNN_TIMER_PERIOD_S = 0.002
STARTUP_ONLY = {'checkpoint', 'device', 'threads', 'input_type', 'events_topic', 'qos_depth',
                'qos_reliability', 'bin_us'}


class StartupError(RuntimeError):
    """A configuration problem that stops the node with one clear message."""


def default_checkpoint() -> pathlib.Path:
    """Find the bundled weights: the installed share directory, else the source weights/."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(pathlib.Path(get_package_share_directory('hybrid_pose_ros')))
    except (ImportError, LookupError, ValueError, OSError):
        pass
    candidates.append(pathlib.Path(__file__).resolve().parents[2])
    for root in candidates:
        path = root / 'weights' / DEFAULT_CHECKPOINT
        if path.exists():
            return path
    raise StartupError(f'no checkpoint given and the bundled weights/{DEFAULT_CHECKPOINT} is '
                       'not installed; set the checkpoint parameter')


def select_device(requested: str, logger) -> torch.device:
    """Return the torch device; CUDA requested but missing falls back to the CPU, warning."""
    if requested.startswith('cuda') and not torch.cuda.is_available():
        logger.warning(f'device {requested!r} requested but CUDA is not available; using cpu')
        return torch.device('cpu')
    if requested.startswith('cuda:') and int(requested[5:]) >= torch.cuda.device_count():
        raise StartupError(f'device {requested!r}: only {torch.cuda.device_count()} CUDA '
                           'device(s) present')
    return torch.device(requested)


class HybridPoseNode(Node):
    """The ROS 2 node around :class:`hybrid_pose_ros.estimator.StreamingRunner`."""

    def __init__(self, **kwargs) -> None:
        super().__init__('hybrid_pose_node', **kwargs)
        self.ann_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='ann')
        self.params = self._declare_and_validate()
        self.device = select_device(self.params['device'], self.get_logger())
        self.checkpoint = self._load_checkpoint()
        self.runner: StreamingRunner | None = None
        self.geometry: SensorGeometry | None = None
        self.frame_id = self.params['frame_id']
        self.lock = threading.Lock()
        self.queue: deque[tuple[BinTask, Future | None, float]] = deque()
        self.stats = {'messages': 0, 'events': 0, 'decode_errors': 0, 'poses': 0,
                      'bins_dropped': 0, 'windows_dropped': 0, 'step_errors': 0,
                      'sensor_changes': 0}
        self.latencies_ms: deque[float] = deque(maxlen=1000)
        self.last_firing_rates: dict[str, float] = {}
        self.last_error = ''
        self.started = time.monotonic()
        self._create_interfaces()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        config = self.checkpoint.config
        self.get_logger().info(
            f'{self.checkpoint.preset} model from {self.checkpoint.path} on {self.device}: '
            f'SNN {config.snn_rate_hz:.0f} Hz, ANN {config.ann_rate_hz:.0f} Hz; listening to '
            f'{self.events_topic} ({self.params["input_type"]})')

    def _declare_and_validate(self) -> dict:
        values = {}
        for spec in PARAMETERS:
            value = self.declare_parameter(
                spec.name, spec.default, ParameterDescriptor(description=spec.description)).value
            problem = validate(spec.name, value)
            if problem:
                raise StartupError(f'parameter {spec.name}={value!r}: {problem}')
            values[spec.name] = value
        return values

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
        torch.set_num_threads(self.params['threads'])
        return loaded

    def _create_interfaces(self) -> None:
        reliability = (ReliabilityPolicy.BEST_EFFORT if self.params['qos_reliability']
                       == 'best_effort' else ReliabilityPolicy.RELIABLE)
        qos = QoSProfile(depth=self.params['qos_depth'], reliability=reliability,
                         history=HistoryPolicy.KEEP_LAST)
        if self.params['input_type'] == 'dvs':
            try:
                from dvs_msgs.msg import EventArray as message_type
            except ImportError:
                raise StartupError('input_type dvs needs dvs_msgs, which is not installed; '
                                   'build ros-event-camera/dvs_msgs or use event_packet') from None
            self.decode = self._decode_event_array
        else:
            from event_camera_msgs.msg import EventPacket as message_type
            self.decode = self._decode_event_packet
        self.events_topic = self.params['events_topic']
        self.create_subscription(message_type, self.events_topic, self._on_events, qos, raw=True,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.pose_pub = self.create_publisher(PoseArray, '~/pose', 10)
        self.marker_pub = self.create_publisher(MarkerArray, '~/skeleton', 10)
        self.image_pub = self.create_publisher(Image, '~/debug_image', 2)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(SNN_TIMER_PERIOD_S, self._on_snn_timer,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(self.params['diagnostics_period'], self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name in STARTUP_ONLY:
                return SetParametersResult(successful=False,
                                           reason=f'{parameter.name} is read at startup only')
            problem = validate(parameter.name, parameter.value)
            if problem:
                return SetParametersResult(successful=False,
                                           reason=f'{parameter.name}: {problem}')
        for parameter in parameters:
            self.params[parameter.name] = parameter.value
        return SetParametersResult(successful=True)

    def _decode_event_array(self, data: bytes):
        decoded = codecs.decode_event_array(data)
        return decoded, decoded.events

    def _decode_event_packet(self, data: bytes):
        decoded = codecs.decode_event_packet(data)
        return decoded, codecs.decode_packet_events(decoded)

    def _on_events(self, data: bytes) -> None:
        received = time.monotonic()
        try:
            decoded, events = self.decode(data)
        except codecs.CodecError as error:
            self.stats['decode_errors'] += 1
            self.last_error = f'dropped a message on {self.events_topic}: {error}'
            self.get_logger().warning(self.last_error, throttle_duration_sec=5.0)
            return
        self.stats['messages'] += 1
        self.stats['events'] += len(events)
        if not self.frame_id and decoded.frame_id:
            self.frame_id = decoded.frame_id
        self._ensure_runner(decoded.width, decoded.height)
        for task in self.runner.tasks(events):
            future = None
            if task.history is not None:
                future = self.ann_pool.submit(self.runner.estimator.initialise, task.history)
            with self.lock:
                self.queue.append((task, future, received))
                self._enforce_queue_bound()

    def _ensure_runner(self, width: int, height: int) -> None:
        if self.geometry is not None and (self.geometry.sensor_width, self.geometry.sensor_height
                                          ) == (width, height):
            return
        if self.geometry is not None:
            self.stats['sensor_changes'] += 1
            self.get_logger().warning(
                f'sensor size changed from {self.geometry.sensor_width}x'
                f'{self.geometry.sensor_height} to {width}x{height}; restarting the window')
        config = self.checkpoint.config
        self.geometry = SensorGeometry.for_sensor(width, height, config.input_width,
                                                  config.input_height)
        model = prepare_for_inference(self.checkpoint.model, self.params['threads'])
        with self.lock:
            self.queue.clear()
            self.runner = StreamingRunner(HybridEstimator(model, self.geometry, self.device))
        self.plane = None

    def _enforce_queue_bound(self) -> None:
        """Drop the oldest whole window while too many bins wait (called with the lock)."""
        while len(self.queue) > self.params['max_pending_bins']:
            self.queue.popleft()
            self.stats['bins_dropped'] += 1
            while self.queue and self.queue[0][0].history is None:
                self.queue.popleft()
                self.stats['bins_dropped'] += 1
            self.stats['windows_dropped'] += 1

    def _on_snn_timer(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                task, future, received = self.queue.popleft()
                runner = self.runner
            try:
                state = future.result() if future is not None else None
                pose = runner.run_task(task, state)
            except Exception as error:  # noqa: B902 - a failed step must not stop the node
                self.stats['step_errors'] += 1
                self.last_error = f'model step for bin ending {task.bin.end_us} us failed: ' \
                    f'{error!r}'
                self.get_logger().error(self.last_error + '\n' + traceback.format_exc(),
                                        throttle_duration_sec=5.0)
                runner.estimator.end_window()
                continue
            if pose is not None:
                self._publish(pose, task)
                self.latencies_ms.append((time.monotonic() - received) * 1e3)

    def _publish(self, pose, task: BinTask) -> None:
        header = Header(stamp=stamp_from_us(pose.end_us), frame_id=self.frame_id)
        min_conf = self.params['min_confidence']
        self.pose_pub.publish(pose_array(header, pose.xy, pose.confidence, min_conf))
        self.marker_pub.publish(skeleton_markers(
            header, pose.xy, pose.confidence, min_conf, self._image_plane(),
            self.params['marker_lifetime']))
        if self.params['debug_image'] and self.image_pub.get_subscription_count() > 0:
            self.image_pub.publish(self._debug_image(header, pose, task))
        self.stats['poses'] += 1
        self.last_firing_rates = pose.firing_rates

    def _image_plane(self) -> ImagePlane:
        fx, fy, cx, cy = self.params['camera_intrinsics']
        return ImagePlane(self.geometry.sensor_width, self.geometry.sensor_height,
                          self.params['marker_plane_depth'], self.params['marker_pixel_size'],
                          (fx, fy, cx, cy) if fx > 0 else None)

    def _debug_image(self, header: Header, pose, task: BinTask) -> Image:
        width, height = self.geometry.sensor_width, self.geometry.sensor_height
        image = event_image(task.bin.events, width, height)
        visible = visible_joints(pose.xy, pose.confidence, self.params['min_confidence'])
        draw_skeleton(image, np.nan_to_num(pose.xy), visible)
        return Image(header=header, height=height, width=width, encoding='rgb8',
                     is_bigendian=0, step=width * 3, data=image.tobytes())

    def diagnostics_values(self) -> dict[str, str]:
        """Return counters, rates and model activity as strings (for /diagnostics)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        values = {k: str(v) for k, v in self.stats.items()}
        values['device'] = str(self.device)
        values['pose_rate_hz'] = f'{self.stats["poses"] / elapsed:.1f}'
        values['event_rate_mev_s'] = f'{self.stats["events"] / elapsed / 1e6:.3f}'
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

    def _publish_diagnostics(self) -> None:
        values = self.diagnostics_values()
        dropped = sum(int(values.get(k, 0)) for k in (
            'bins_dropped', 'decode_errors', 'step_errors', 'binner_late_dropped',
            'binner_overflow_dropped'))
        level = DiagnosticStatus.WARN if dropped else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level, name=f'{self.get_fully_qualified_name()}: hybrid pose',
            hardware_id=str(self.device),
            message='dropping input' if dropped else 'ok',
            values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                              status=[status]))

    def destroy_node(self) -> None:
        """Stop the ANN worker, then destroy the node."""
        self.ann_pool.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the node until shutdown; configuration errors exit with one message and code 2."""
    rclpy.init(args=args)
    try:
        node = HybridPoseNode()
    except StartupError as error:
        print(f'hybrid_pose_node: {error}', file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
