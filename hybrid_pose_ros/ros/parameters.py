"""
The node's parameters: names, defaults, descriptions and validation, defined once.

``config/hybrid.yaml``, ``docs/parameters.md`` and the README's parameter table are checked
against this table by the tests, and the node declares exactly these parameters with these
descriptions.
"""
from dataclasses import dataclass
from typing import Any, Callable

from hybrid_pose_ros.model.decode import DEFAULT_MIN_CONFIDENCE
from hybrid_pose_ros.model.inference import ANN_PRECISIONS, ANN_RUNTIMES, SNN_BACKENDS
from hybrid_pose_ros.ros.codecs import EVENT_CAMERA_PY_ENCODINGS, SUPPORTED_ENCODINGS
from hybrid_pose_ros.ros.interfaces import DEFAULT_INPUT_TYPE, INPUT_TYPE_MESSAGES

INPUT_TYPES = tuple(INPUT_TYPE_MESSAGES)
PACKET_ENCODINGS = SUPPORTED_ENCODINGS + EVENT_CAMERA_PY_ENCODINGS + ('auto',)
RELIABILITIES = ('best_effort', 'reliable')
MAX_SENSOR_SIZE = 8192


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: its default, what it means, and a check returning an error or None."""

    name: str
    default: Any
    description: str
    check: Callable[[Any], str | None]


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f'must be one of {", ".join(options)}'


def _at_least(minimum: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f'must be >= {minimum}'


def _at_most(maximum: float, check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda v: check(v) or (None if v <= maximum else f'must be <= {maximum}')


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


def _always_valid(_: Any) -> None:
    return None


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('checkpoint', '', 'Model checkpoint (.pt); empty selects the weights installed '
                  'with the package.', _always_valid),
    ParameterSpec('device', 'cpu', "Torch device: 'cpu', 'cuda' or 'cuda:N'. If CUDA is "
                  'requested but unavailable the node logs a warning and uses the CPU.', _device),
    ParameterSpec('threads', 1, 'Threads of each model thread (the ANN, in OpenVINO or torch, '
                  'and the SNN run in two threads: 1 gives each a core of a 2-core machine; 2 '
                  'oversubscribes it and the SNN falls behind).', _at_least(1)),
    ParameterSpec('snn_backend', 'sparse', 'SNN step: sparse (event-driven kernels, work '
                  'proportional to the spikes, CPU) or dense (torch convs). Same results; on a '
                  'CUDA device the dense path is used.', _one_of(SNN_BACKENDS)),
    ParameterSpec('ann_precision', 'auto', 'ANN arithmetic: float32, bfloat16 (about 1.5x '
                  'faster on CPUs with bfloat16 instructions, poses within about 0.01 px), int8 '
                  '(OpenVINO only, calibrated on the inputs the checkpoint stores; 1.3-1.7x '
                  "faster than bfloat16, within 0.1 px; both measured with 0.1.0's weights) or "
                  'auto (int8 where OpenVINO, NNCF and a calibrated checkpoint are there, else '
                  'bfloat16 where the CPU has it natively, else float32).',
                  _one_of(ANN_PRECISIONS)),
    ParameterSpec('ann_runtime', 'auto', 'What runs the ANN and state initialisers: openvino '
                  '(one compiled graph on its own thread, never waiting for the GIL; CPU; same '
                  'test-split MPJPE), torch, or auto (openvino on a CPU where it is installed, '
                  'else torch).',
                  _one_of(ANN_RUNTIMES)),
    ParameterSpec('input_type', DEFAULT_INPUT_TYPE, 'Input message type: event_packet '
                  '(event_camera_msgs/EventPacket) or dvs (dvs_msgs/EventArray).',
                  _one_of(INPUT_TYPES)),
    ParameterSpec('packet_encoding', 'mono', 'EventPacket payload encoding: mono (numpy), or '
                  'evt3 / libcaer_cmp (decoded with event_camera_py, which must be installed: '
                  'the node stops at startup without it), or auto (mono, plus evt3 and '
                  'libcaer_cmp where event_camera_py is installed). Packets the node cannot '
                  'decode are dropped and counted (decode_errors).', _one_of(PACKET_ENCODINGS)),
    ParameterSpec('events_topic', 'events', 'Topic of the event messages.', _topic),
    ParameterSpec('qos_depth', 100, 'Queue depth of the event subscription.', _at_least(1)),
    ParameterSpec('qos_reliability', 'best_effort', 'Reliability of the event subscription; '
                  'best_effort matches both best-effort drivers and reliable bag replay.',
                  _one_of(RELIABILITIES)),
    ParameterSpec('sensor_width', 0, 'Sensor width in pixels; 0 takes it from the messages. '
                  'When set (with sensor_height), messages reporting another size are dropped '
                  'and counted.', _at_most(MAX_SENSOR_SIZE, _at_least(0))),
    ParameterSpec('sensor_height', 0, 'Sensor height in pixels; 0 takes it from the messages.',
                  _at_most(MAX_SENSOR_SIZE, _at_least(0))),
    ParameterSpec('event_time_outlier_s', 1.0, 'Events more than this many seconds from the '
                  'median time of their message are dropped and counted (one wild timestamp '
                  'must not reset or stall the stream); 0 disables the check.', _at_least(0.0)),
    ParameterSpec('bin_us', 0, 'SNN bin length in microseconds of event time; 0 takes the '
                  "checkpoint's value (10000 = 100 Hz).", _at_least(0)),
    ParameterSpec('ann_lead_bins', 0, "Bins before a window start at which the ANN's 7500 "
                  'events end: 0 is the paper (the events up to the window start); 1 lets the '
                  'ANN run while the bin before the window arrives, so that the first poses of '
                  'a window need not wait for it when one message completes them (drivers that '
                  "send 20-40 ms messages), for +0.03 px (0.1.0's weights). At most the steps "
                  'per window - 1.', _at_least(0)),
    ParameterSpec('max_pending_bins', 50, 'Completed bins allowed to wait for the SNN; beyond '
                  'this the oldest whole window is dropped and counted.', _at_least(1)),
    ParameterSpec('frame_id', '', 'Frame of the outputs; empty uses the frame_id of the input '
                  'messages.', _always_valid),
    ParameterSpec('camera_intrinsics', [0.0, 0.0, 0.0, 0.0], 'Pinhole intrinsics [fx, fy, cx, '
                  'cy] in sensor pixels for placing markers; fx = fy = 0 uses '
                  'marker_pixel_size around the image centre.', _intrinsics),
    ParameterSpec('marker_pixel_size', 0.002, 'Metres per sensor pixel of the marker image '
                  'plane when no intrinsics are given.', _at_least(1e-9)),
    ParameterSpec('marker_plane_depth', 1.0, 'Distance of the marker image plane from the '
                  'optical centre in metres.', _at_least(1e-6)),
    ParameterSpec('marker_lifetime', 0.25, 'Lifetime of skeleton markers in seconds.',
                  _at_least(0.0)),
    ParameterSpec('marker_rate_hz', 30.0, 'Most ~/skeleton messages per second of event time '
                  '(RViz draws at tens of Hz; ~/pose keeps the full SNN rate); 0 publishes '
                  'markers for every pose.', _at_least(0.0)),
    ParameterSpec('min_confidence', DEFAULT_MIN_CONFIDENCE, 'Joints below this confidence '
                  'are published as missing (NaN).', _at_least(0.0)),
    ParameterSpec('debug_image', True, 'Publish ~/debug_image (only while it has '
                  'subscribers).', _always_valid),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
                  _at_least(0.05)),
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
    return spec.check(value)
