"""
The node's parameters: names, defaults, descriptions, ranges and validation, defined once.

``config/hybrid.yaml``, ``docs/parameters.md`` and the README's parameter table are checked
against this table by the tests, and the node declares exactly these parameters with these
descriptions: parameters read only at start-up are ``read_only`` in their descriptors (``ros2
param set`` refuses them), and numeric bounds are the descriptors' integer or floating-point
ranges (``ros2 param describe`` shows them).
"""
from dataclasses import dataclass
import math
from typing import Any, Callable

from hybrid_pose_ros.model.decode import DEFAULT_MIN_CONFIDENCE
from hybrid_pose_ros.model.inference import ANN_PRECISIONS, ANN_RUNTIMES, SNN_BACKENDS
from hybrid_pose_ros.ros.codecs import EVENT_CAMERA_PY_ENCODINGS, SUPPORTED_ENCODINGS
from hybrid_pose_ros.ros.interfaces import DEFAULT_INPUT_TYPE, INPUT_TYPE_MESSAGES

INPUT_TYPES = tuple(INPUT_TYPE_MESSAGES)
PACKET_ENCODINGS = SUPPORTED_ENCODINGS + EVENT_CAMERA_PY_ENCODINGS + ('auto',)
RELIABILITIES = ('best_effort', 'reliable')
MAX_SENSOR_SIZE = 8192


INT64_MAX = 2**63 - 1


def _always_valid(_: Any) -> None:
    return None


@dataclass(frozen=True)
class ParameterSpec:
    """
    One node parameter: its default, what it means, and a check returning an error or None.

    ``minimum`` and ``maximum`` bound numbers (checked, and the descriptor's range);
    ``read_only`` marks a parameter read only at start-up.
    """

    name: str
    default: Any
    description: str
    check: Callable[[Any], str | None] = _always_valid
    minimum: float | None = None
    maximum: float | None = None
    read_only: bool = False

    def problem(self, value: Any) -> str | None:
        """Return why ``value`` is out of range or fails the check, or None."""
        if self.minimum is not None and not value >= self.minimum:
            return f'must be >= {self.minimum}'
        if self.maximum is not None and not value <= self.maximum:
            return f'must be <= {self.maximum}'
        return self.check(value)

    def descriptor(self, ranges: bool = True):
        """Return the ``rcl_interfaces/ParameterDescriptor`` (with the range unless not asked)."""
        from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
        # dynamic typing lets validate() report a wrong type as clearly as a wrong value
        descriptor = ParameterDescriptor(description=self.description, dynamic_typing=True,
                                         read_only=self.read_only)
        if ranges and (self.minimum is not None or self.maximum is not None):
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(-INT64_MAX if self.minimum is None else self.minimum),
                    to_value=int(INT64_MAX if self.maximum is None else self.maximum), step=0)]
            elif isinstance(self.default, float):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=-math.inf if self.minimum is None else float(self.minimum),
                    to_value=math.inf if self.maximum is None else float(self.maximum),
                    step=0.0)]
        return descriptor

    @property
    def meaning(self) -> str:
        """Return the description with the range and when it is read, as the docs show it."""
        bounds = []
        if self.minimum is not None:
            bounds.append(f'>= {self.minimum}')
        if self.maximum is not None:
            bounds.append(f'<= {self.maximum}')
        extra = ([f'Range: {", ".join(bounds)}.'] if bounds else []) + (
            ['Read at start-up only.'] if self.read_only else [])
        return ' '.join([self.description] + extra)


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f'must be one of {", ".join(options)}'


def _device(value: str) -> str | None:
    if value == 'cpu' or value == 'cuda' or (
            value.startswith('cuda:') and value[5:].isdigit()):
        return None
    return "must be 'cpu', 'cuda' or 'cuda:N'"


def _intrinsics(value: list[float]) -> str | None:
    value = list(value)
    if len(value) != 4:
        return 'must be [fx, fy, cx, cy]'
    if value[:2] == [0.0, 0.0] or (value[0] > 0 and value[1] > 0):
        return None
    return 'fx and fy must both be > 0 (or both 0 to use marker_pixel_size)'


def _topic(value: str) -> str | None:
    return None if value and ' ' not in value else 'must be a non-empty topic name'


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('checkpoint', '', 'Model checkpoint (.pt); empty selects the weights installed '
                  'with the package.', read_only=True),
    ParameterSpec('device', 'cpu', "Torch device: 'cpu', 'cuda' or 'cuda:N'. If CUDA is "
                  'requested but unavailable the node logs a warning and uses the CPU.', _device,
                  read_only=True),
    ParameterSpec('threads', 1, 'Threads of each model thread (the ANN, in OpenVINO or torch, '
                  'and the SNN run in two threads: 1 gives each a core of a 2-core machine; 2 '
                  'oversubscribes it and the SNN falls behind).', minimum=1, read_only=True),
    ParameterSpec('snn_backend', 'sparse', 'SNN step: sparse (event-driven kernels, work '
                  'proportional to the spikes, CPU) or dense (torch convs). Same results; on a '
                  'CUDA device the dense path is used.', _one_of(SNN_BACKENDS), read_only=True),
    ParameterSpec('ann_precision', 'auto', 'ANN arithmetic: float32, bfloat16 (about 1.5x '
                  'faster on CPUs with bfloat16 instructions, poses within about 0.01 px), int8 '
                  '(OpenVINO only, calibrated on the inputs the checkpoint stores; 1.3-1.7x '
                  "faster than bfloat16, measured with 0.1.0's weights; +0.6 px on the sample "
                  'bag with the bundled weights: 12.73 against 12.13 px in float32) or '
                  'auto (int8 where OpenVINO, NNCF and a calibrated checkpoint are there, else '
                  'bfloat16 where the CPU has it natively, else float32).',
                  _one_of(ANN_PRECISIONS), read_only=True),
    ParameterSpec('ann_runtime', 'auto', 'What runs the ANN and state initialisers: openvino '
                  '(one compiled graph on its own thread, never waiting for the GIL; CPU; same '
                  'test-split MPJPE), torch, or auto (openvino on a CPU where it is installed, '
                  'else torch).',
                  _one_of(ANN_RUNTIMES), read_only=True),
    ParameterSpec('input_type', DEFAULT_INPUT_TYPE, 'Input message type: event_packet '
                  '(event_camera_msgs/EventPacket) or dvs (dvs_msgs/EventArray).',
                  _one_of(INPUT_TYPES), read_only=True),
    ParameterSpec('packet_encoding', 'mono', 'EventPacket payload encoding: mono (numpy), or '
                  'evt3 / libcaer_cmp (decoded with event_camera_py, which must be installed: '
                  'the node stops at startup without it), or auto (mono, plus evt3 and '
                  'libcaer_cmp where event_camera_py is installed). Packets the node cannot '
                  'decode are dropped and counted (decode_errors).', _one_of(PACKET_ENCODINGS),
                  read_only=True),
    ParameterSpec('events_topic', 'events', 'Topic of the event messages. The default is the '
                  "relative name events: it resolves in the node's namespace and is remapped as "
                  'usual (--ros-args -r events:=/event_camera/events); another value replaces '
                  'the name (absolute, or relative to the namespace).', _topic, read_only=True),
    ParameterSpec('qos_depth', 100, 'Queue depth of the event subscription.', minimum=1,
                  read_only=True),
    ParameterSpec('qos_reliability', 'best_effort', 'Reliability of the event subscription; '
                  'best_effort matches both best-effort drivers and reliable bag replay.',
                  _one_of(RELIABILITIES), read_only=True),
    ParameterSpec('sensor_width', 0, 'Sensor width in pixels; 0 takes it from the messages. '
                  'When set (with sensor_height), messages reporting another size are dropped '
                  'and counted.', minimum=0, maximum=MAX_SENSOR_SIZE, read_only=True),
    ParameterSpec('sensor_height', 0, 'Sensor height in pixels; 0 takes it from the messages.',
                  minimum=0, maximum=MAX_SENSOR_SIZE, read_only=True),
    ParameterSpec('event_time_outlier_s', 1.0, 'Events more than this many seconds from the '
                  'median time of their message are dropped and counted (one wild timestamp '
                  'must not reset or stall the stream); 0 disables the check.', minimum=0.0),
    ParameterSpec('bin_us', 0, 'SNN bin length in microseconds of event time; 0 takes the '
                  "checkpoint's value (10000 = 100 Hz).", minimum=0, read_only=True),
    ParameterSpec('ann_lead_bins', 0, "Bins before a window start at which the ANN's 7500 "
                  'events end: 0 is the paper (the events up to the window start); 1 lets the '
                  'ANN run while the bin before the window arrives, so that the first poses of '
                  'a window need not wait for it when one message completes them (drivers that '
                  "send 20-40 ms messages), for +0.03 px (0.1.0's weights). At most the steps "
                  'per window - 1.', minimum=0, read_only=True),
    ParameterSpec('max_pending_bins', 50, 'Completed bins allowed to wait for the SNN; beyond '
                  'this the oldest whole window is dropped and counted.', minimum=1),
    ParameterSpec('frame_id', '', 'Frame of the outputs; empty uses the frame_id of the input '
                  'messages.'),
    ParameterSpec('camera_intrinsics', [0.0, 0.0, 0.0, 0.0], 'Pinhole intrinsics [fx, fy, cx, '
                  'cy] in sensor pixels for placing markers; fx = fy = 0 uses '
                  'marker_pixel_size around the image centre.', _intrinsics),
    ParameterSpec('marker_pixel_size', 0.002, 'Metres per sensor pixel of the marker image '
                  'plane when no intrinsics are given.', minimum=1e-9),
    ParameterSpec('marker_plane_depth', 1.0, 'Distance of the marker image plane from the '
                  'optical centre in metres.', minimum=1e-6),
    ParameterSpec('marker_lifetime', 0.25, 'Lifetime of skeleton markers in seconds.',
                  minimum=0.0),
    ParameterSpec('marker_rate_hz', 30.0, 'Most ~/skeleton messages per second of event time '
                  '(RViz draws at tens of Hz; ~/pose keeps the full SNN rate); 0 publishes '
                  'markers for every pose.', minimum=0.0),
    ParameterSpec('min_confidence', DEFAULT_MIN_CONFIDENCE, 'Joints below this confidence '
                  'are published as missing (NaN).', minimum=0.0),
    ParameterSpec('debug_image', True, 'Publish ~/debug_image (sensor_msgs/Image, rgb8) and '
                  '~/debug_image/compressed (sensor_msgs/CompressedImage, JPEG), each only while '
                  'it has subscribers: the events of the last debug_image_span_s with the '
                  'skeleton, left joints and bones green, right ones magenta, the head white. '
                  'Built after the poses of a message are published.'),
    ParameterSpec('debug_image_rate_hz', 15.0, 'Most debug images per second of event time.',
                  minimum=0.1, maximum=100.0),
    ParameterSpec('debug_image_span_s', 0.05, 'Seconds of event time whose events each debug '
                  'image shows (a 10 ms bin alone is too faint to read).', minimum=0.01,
                  maximum=1.0),
    ParameterSpec('no_input_timeout', 5.0, 'Seconds after activation without a single event '
                  'message before the node warns (log and /diagnostics), naming the topic it '
                  'listens to and, where a publisher on it sends another message type, that '
                  'type and the input_type to set; 0 disables the warning.', minimum=0.0),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
                  minimum=0.05, read_only=True),
)

PARAMETER_BY_NAME: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}


def validate(name: str, value: Any) -> str | None:
    """Return why ``value`` is invalid for parameter ``name``, or None if it is valid."""
    spec = PARAMETER_BY_NAME.get(name)
    if spec is None:
        return f'unknown parameter {name!r}'
    if type(value) is not type(spec.default) and not (
            isinstance(spec.default, float) and isinstance(value, int)):
        return f'must be of type {type(spec.default).__name__}, got {type(value).__name__}'
    return spec.problem(value)
