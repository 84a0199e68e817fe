"""
``hybrid_pose_3d_node``: per-camera 2D poses in, one triangulated 3D pose out.

It subscribes to the ``~/pose`` PoseArrays of N ``hybrid_pose_node`` instances (13 joints in
sensor pixels, ``z`` confidence, NaN missing), groups them by stamp (the 2D nodes stamp each
pose with the event time at the end of its 10 ms bin, so poses of cameras on one clock carry
identical stamps; ``stamp_tolerance`` absorbs small clock offsets) and triangulates every group
with at least two cameras (:func:`hybrid_pose_ros.geometry.calibration.triangulate_joints`).

A group is published as soon as every camera has delivered its stamp, or every missing camera
has already delivered a later stamp (each camera's poses arrive in stamp order), or ``timeout``
seconds (wall clock) after its first pose arrived; groups are published in stamp order. Poses
older than the last published group are late; groups with one camera are unmatched; both are
dropped and counted in ``/diagnostics``, as are groups pushed out by ``max_pending``.

Calibration: ``calibration_files`` (YAML or DHP19 ``P*.npy``), or ``camera_info_topics``: each
camera's intrinsics ``K`` and size from its ``sensor_msgs/CameraInfo`` and its pose from TF
(``/tf`` and ``/tf_static``; the chain from the CameraInfo frame, or ``frame_ids``, up to
``world_frame``, with the latest transform of each frame: cameras on fixed mounts). Poses that
arrive before every camera is calibrated are dropped and counted (``waiting_calibration``), and
``/diagnostics`` says what is missing. Lens distortion (``D``) is not applied: the 2D poses are
raw sensor pixels.

A triangulated joint whose reprojection lies more than ``max_reprojection_error`` pixels from
the 2D joint in any view that saw it is published as missing and counted
(``rejected_joints``). ``/diagnostics`` runs on a steady (wall) timer, so it keeps reporting
while a replayed ``/clock`` stops (``use_sim_time``).
"""
from collections import deque
from dataclasses import dataclass, field, replace
import sys
import time
from typing import Any, Callable

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray
from hybrid_pose_ros.geometry.calibration import (
    CalibrationError, CameraCalibration, load_calibration, triangulate_joints)
from hybrid_pose_ros.ros.outputs import skeleton_markers_3d
from hybrid_pose_ros.ros.parameters import ParameterSpec
from hybrid_pose_ros.ros.runtime import spin_until_shutdown
from hybrid_pose_ros.skeleton import NUM_JOINTS
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

CLOCK_JUMP_NS = 1_000_000_000
"""A pose this much older than the last published group means the clock jumped back (reset)."""


class StartupError(RuntimeError):
    """A configuration problem that stops the node with one clear message."""


@dataclass
class PoseSet:
    """The poses of several cameras for one stamp."""

    stamp_ns: int
    first_seen: float
    views: dict[int, tuple[int, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def output_stamp_ns(self) -> int:
        """Return the stamp of the lowest-index camera present (the reference clock)."""
        return self.views[min(self.views)][0]


class StampMatcher:
    """
    Group per-camera poses by stamp (no ROS; times in ns, ``now`` in seconds).

    ``add`` and ``expire`` return the groups to publish, oldest first; groups with fewer than
    two cameras are counted as unmatched and never returned.
    """

    def __init__(self, num_cameras: int, tolerance_ns: int, timeout_s: float,
                 max_pending: int) -> None:
        self.num_cameras = num_cameras
        self.tolerance_ns = tolerance_ns
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.pending: list[PoseSet] = []
        self.latest_ns: list[int | None] = [None] * num_cameras
        self.emitted_ns: int | None = None
        self.counters = {'received_poses': 0, 'late_poses': 0, 'unmatched_poses': 0,
                         'complete_sets': 0, 'incomplete_sets': 0, 'forced_sets': 0,
                         'clock_jumps': 0}
        self.received_per_camera = [0] * num_cameras

    def add(self, camera: int, stamp_ns: int, xy: np.ndarray, confidence: np.ndarray,
            now: float) -> list[PoseSet]:
        """Add one camera's pose; return the groups that became ready."""
        self.counters['received_poses'] += 1
        self.received_per_camera[camera] += 1
        if self.emitted_ns is not None and stamp_ns < self.emitted_ns - CLOCK_JUMP_NS:
            self.counters['clock_jumps'] += 1
            self.counters['unmatched_poses'] += sum(len(s.views) for s in self.pending)
            self.pending.clear()
            self.latest_ns = [None] * self.num_cameras
            self.emitted_ns = None
        candidates = [s for s in self.pending if camera not in s.views
                      and abs(s.stamp_ns - stamp_ns) <= self.tolerance_ns]
        if candidates:
            target = min(candidates, key=lambda s: abs(s.stamp_ns - stamp_ns))
        elif self.emitted_ns is not None and stamp_ns <= self.emitted_ns + self.tolerance_ns:
            self.counters['late_poses'] += 1
            return []
        else:
            target = PoseSet(stamp_ns, now)
            self.pending.append(target)
            self.pending.sort(key=lambda s: s.stamp_ns)
        target.views[camera] = (stamp_ns, xy, confidence)
        latest = self.latest_ns[camera]
        self.latest_ns[camera] = stamp_ns if latest is None else max(latest, stamp_ns)
        ready = self._collect(now)
        while len(self.pending) > self.max_pending:
            self.counters['forced_sets'] += 1
            ready += self._emit_through(0)
        return ready

    def expire(self, now: float) -> list[PoseSet]:
        """Return the groups whose timeout has passed (and everything older)."""
        return self._collect(now)

    def _ready(self, pose_set: PoseSet, now: float) -> bool:
        if now - pose_set.first_seen >= self.timeout_s:
            return True
        for camera in range(self.num_cameras):
            latest = self.latest_ns[camera]
            if camera not in pose_set.views and (
                    latest is None or latest <= pose_set.stamp_ns + self.tolerance_ns):
                return False
        return True

    def _collect(self, now: float) -> list[PoseSet]:
        last_ready = max((i for i, s in enumerate(self.pending) if self._ready(s, now)),
                         default=-1)
        return self._emit_through(last_ready) if last_ready >= 0 else []

    def _emit_through(self, index: int) -> list[PoseSet]:
        """Take pending groups ``0..index``: return those with two or more cameras."""
        taken, self.pending = self.pending[:index + 1], self.pending[index + 1:]
        ready = []
        for pose_set in taken:
            if self.emitted_ns is None or pose_set.stamp_ns > self.emitted_ns:
                self.emitted_ns = pose_set.stamp_ns
            if len(pose_set.views) < 2:
                self.counters['unmatched_poses'] += len(pose_set.views)
                continue
            self.counters['complete_sets' if len(pose_set.views) == self.num_cameras
                          else 'incomplete_sets'] += 1
            ready.append(pose_set)
        return ready


def _string_list(value: list[str]) -> str | None:
    if value is None or all(isinstance(v, str) and v for v in value):
        return None
    return 'must be a list of non-empty strings'


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v < high else f'must be in [{low}, {high})'


def _at_least(minimum: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f'must be >= {minimum}'


def _reliability(value: str) -> str | None:
    return None if value in ('reliable', 'best_effort') else 'must be reliable or best_effort'


def _any(_: Any) -> None:
    return None


def quaternion_to_rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Return the rotation matrix of a (normalised) quaternion ``xyzw``."""
    q = np.array([x, y, z, w], dtype=np.float64)
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class TransformTree:
    """
    The latest transform of each frame from ``/tf`` and ``/tf_static`` (no ROS, no time).

    :meth:`pose` composes the chain from a frame up to a root frame.
    """

    MAX_DEPTH = 64

    def __init__(self) -> None:
        self.parents: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}

    def add(self, parent: str, child: str, translation: np.ndarray,
            rotation: np.ndarray) -> None:
        """Set ``child``'s pose in ``parent``: ``p_parent = rotation @ p_child + translation``."""
        self.parents[child.lstrip('/')] = (parent.lstrip('/'), rotation, translation)

    def pose(self, frame: str, root: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Return ``frame``'s rotation and translation in ``root``, or None if not connected."""
        frame, root = frame.lstrip('/'), root.lstrip('/')
        rotation, translation = np.eye(3), np.zeros(3)
        for _ in range(self.MAX_DEPTH):
            if frame == root:
                return rotation, translation
            if frame not in self.parents:
                return None
            frame, r, t = self.parents[frame]
            rotation, translation = r @ rotation, r @ translation + t
        return None


def camera_from_info(name: str, k: np.ndarray, width: int, height: int, frame_id: str,
                     rotation: np.ndarray, translation: np.ndarray) -> CameraCalibration:
    """Build a camera from intrinsics ``K`` and its optical frame's pose in the world."""
    world_to_camera = rotation.T
    projection = k @ np.hstack([world_to_camera, (-world_to_camera @ translation)[:, None]])
    return CameraCalibration(name, projection, frame_id, width, height)


def reprojection_errors(cameras: list[CameraCalibration], points: np.ndarray,
                        xy: np.ndarray) -> np.ndarray:
    """Return ``[C, J]`` pixel distances between the projected ``points`` and ``xy`` (NaN)."""
    projected = np.stack([camera.project(points) for camera in cameras])
    return np.linalg.norm(projected - xy, axis=-1)


STRING_ARRAYS = ('cameras', 'pose_topics', 'calibration_files', 'camera_info_topics',
                 'frame_ids')

PARAMETERS_3D: tuple[ParameterSpec, ...] = (
    ParameterSpec('cameras', None, 'Camera names (at least two); each is looked up in its '
                  'calibration file.', _string_list),
    ParameterSpec('pose_topics', None, 'PoseArray topic per camera; empty uses '
                  '/<camera>/hybrid_pose_node/pose.', _string_list),
    ParameterSpec('calibration_files', None, 'Calibration YAML file or DHP19 folder of '
                  'P*.npy: one for all cameras, or one per camera. Leave empty with '
                  'camera_info_topics.', _string_list),
    ParameterSpec('camera_info_topics', None, 'sensor_msgs/CameraInfo topic per camera, '
                  'instead of calibration_files: the intrinsics K and the size come from it, '
                  "the camera's pose from TF (world_frame -> the CameraInfo frame_id, or "
                  'frame_ids). D (distortion) is not applied.', _string_list),
    ParameterSpec('frame_ids', None, 'Optical frame per camera for /tf_static; empty uses '
                  "the calibration's frame_id (default <camera>_optical_frame).", _string_list),
    ParameterSpec('world_frame', 'world', 'Frame of ~/pose_3d, ~/skeleton_3d and the static '
                  'camera transforms.', lambda v: None if v else 'must not be empty'),
    ParameterSpec('stamp_tolerance', 0.002, 'Seconds between stamps of one group (cameras on '
                  'different clocks); below half the 10 ms bin.', _between(0.0, 0.005)),
    ParameterSpec('timeout', 0.1, 'Wall-clock seconds to wait for missing cameras before a '
                  'group is published with those present.', _at_least(0.001)),
    ParameterSpec('max_pending', 50, 'Groups waiting at most; the oldest is then published '
                  'or dropped (counted).', _at_least(1)),
    ParameterSpec('min_views', 2, 'Cameras that must see a joint for it to be triangulated; '
                  'fewer gives NaN.', _at_least(2)),
    ParameterSpec('min_confidence', 0.0, '2D joints with a lower confidence (z) are ignored.',
                  _at_least(0.0)),
    ParameterSpec('use_confidence', True, 'Weight each view by its confidence (z); false '
                  'weighs all views 1.', _any),
    ParameterSpec('refine_iterations', 5, 'Gauss-Newton steps on the weighted reprojection '
                  'error after the DLT; 0 disables.', _at_least(0)),
    ParameterSpec('max_reprojection_error', 30.0, 'Pixels: a triangulated joint that '
                  'reprojects further than this from its 2D joint in any view that saw it is '
                  'published as missing and counted (rejected_joints); 0 disables.',
                  _at_least(0.0)),
    ParameterSpec('qos_depth', 50, 'Subscription depth per camera.', _at_least(1)),
    ParameterSpec('qos_reliability', 'reliable', 'reliable (as hybrid_pose_node publishes) or '
                  'best_effort.', _reliability),
    ParameterSpec('marker_lifetime', 0.25, 'Seconds.', _at_least(0.0)),
    ParameterSpec('publish_tf', True, 'Publish world -> camera optical frame transforms on '
                  '/tf_static (needs tf2_msgs).', _any),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages (steady '
                  'clock: they go on while a replayed /clock stops).', _at_least(0.01)),
)


def stamp_ns(stamp: Time) -> int:
    """Convert a ROS time message to integer nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def poses_to_arrays(msg: PoseArray) -> tuple[np.ndarray, np.ndarray]:
    """Read a 2D ``~/pose`` PoseArray as ``xy [J, 2]`` and ``confidence [J]``."""
    data = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses],
                    dtype=np.float64).reshape(-1, 3)
    return data[:, :2], data[:, 2]


def points_pose_array(header: Header, points: np.ndarray) -> PoseArray:
    """Pack ``[J, 3]`` points (NaN = missing) into a PoseArray with identity orientations."""
    msg = PoseArray(header=header)
    for x, y, z in points:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = float(x), float(y), float(z)
        pose.orientation.w = 1.0
        msg.poses.append(pose)
    return msg


class HybridPose3dNode(Node):
    """Synchronise per-camera 2D poses and publish the triangulated 3D pose."""

    def __init__(self, **kwargs) -> None:
        super().__init__('hybrid_pose_3d_node', **kwargs)
        self.params = self._declare_and_validate()
        self.names = list(self.params['cameras'])
        self.from_camera_info = bool(self.params['camera_info_topics'])
        self.intrinsics: list[tuple[np.ndarray, int, int, str] | None] = [None] * len(self.names)
        self.tf_tree = TransformTree()
        self.cameras: list[CameraCalibration | None] = (
            [None] * len(self.names) if self.from_camera_info else self._load_cameras())
        self.matcher = StampMatcher(
            len(self.names), int(round(self.params['stamp_tolerance'] * 1e9)),
            self.params['timeout'], self.params['max_pending'])
        self.stats = {'published': 0, 'joints_missing': 0, 'errors': 0, 'rejected_joints': 0,
                      'waiting_calibration': 0}
        self.reprojection_px: deque[float] = deque(maxlen=1000)
        self.reported_drops = 0
        self.last_error = ''
        self.started = time.monotonic()
        self._create_interfaces()
        self.get_logger().info(
            f'triangulating {", ".join(self.names)} from {", ".join(self.topics)} into '
            f'{self.params["world_frame"]}' + (
                f'; calibration from {", ".join(self.params["camera_info_topics"])} and TF'
                if self.from_camera_info else ''))

    def _declare_and_validate(self) -> dict:
        values = {}
        for spec in PARAMETERS_3D:
            descriptor = ParameterDescriptor(description=spec.description)
            default = Parameter.Type.STRING_ARRAY if spec.name in STRING_ARRAYS else spec.default
            value = self.declare_parameter(spec.name, default, descriptor).value
            if spec.name in STRING_ARRAYS:
                value = list(value or [])
            problem = spec.check(value)
            if problem:
                raise StartupError(f'parameter {spec.name}={value!r}: {problem}')
            values[spec.name] = value
        names = values['cameras']
        if len(names) < 2 or len(set(names)) != len(names):
            raise StartupError(f'parameter cameras={names!r}: needs at least two distinct '
                               'camera names')
        if values['camera_info_topics'] and values['calibration_files']:
            raise StartupError('parameters calibration_files and camera_info_topics: set one '
                               'of them, not both')
        for key in ('pose_topics', 'calibration_files', 'camera_info_topics', 'frame_ids'):
            allowed = ((1, len(names)) if key == 'calibration_files'
                       and not values['camera_info_topics'] else (0, len(names)))
            if len(values[key]) not in allowed:
                raise StartupError(f'parameter {key}={values[key]!r}: needs '
                                   f'{" or ".join(map(str, sorted(set(allowed))))} entries '
                                   f'for {len(names)} cameras')
        return values

    def _load_cameras(self) -> list[CameraCalibration]:
        files = self.params['calibration_files']
        files = files * len(self.names) if len(files) == 1 else files
        loaded: dict[str, dict[str, CameraCalibration]] = {}
        cameras = []
        for name, path in zip(self.names, files):
            try:
                if path not in loaded:
                    loaded[path] = load_calibration(path)
            except CalibrationError as error:
                raise StartupError(f'calibration: {error}') from None
            if name not in loaded[path]:
                raise StartupError(f'calibration {path} has no camera {name!r} (it has '
                                   f'{", ".join(loaded[path])})')
            cameras.append(loaded[path][name])
        if self.params['frame_ids']:
            cameras = [replace(camera, frame_id=frame)
                       for camera, frame in zip(cameras, self.params['frame_ids'])]
        return cameras

    def _create_interfaces(self) -> None:
        reliability = (ReliabilityPolicy.BEST_EFFORT if self.params['qos_reliability']
                       == 'best_effort' else ReliabilityPolicy.RELIABLE)
        qos = QoSProfile(depth=self.params['qos_depth'], reliability=reliability,
                         history=HistoryPolicy.KEEP_LAST)
        self.topics = self.params['pose_topics'] or [
            f'/{name}/hybrid_pose_node/pose' for name in self.names]
        for index, topic in enumerate(self.topics):
            self.create_subscription(PoseArray, topic,
                                     lambda msg, i=index: self._on_pose(i, msg), qos)
        self.pose_pub = self.create_publisher(PoseArray, '~/pose_3d', 10)
        self.marker_pub = self.create_publisher(MarkerArray, '~/skeleton_3d', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # timeouts are wall-clock: a steady timer also runs when sim time has no /clock yet
        self.create_timer(min(self.params['timeout'] / 2.0, 0.05), self._on_expire_timer,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.create_timer(self.params['diagnostics_period'], self._publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        if self.from_camera_info:
            self._subscribe_calibration()
        elif self.params['publish_tf']:
            self._publish_static_transforms()

    def _subscribe_calibration(self) -> None:
        """Subscribe to each camera's CameraInfo and to /tf and /tf_static."""
        from sensor_msgs.msg import CameraInfo
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            raise StartupError('camera_info_topics needs TF, and tf2_msgs is not installed '
                               '(apt install ros-$ROS_DISTRO-tf2-msgs)') from None
        info_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                              history=HistoryPolicy.KEEP_LAST)   # matches reliable ones too
        for index, topic in enumerate(self.params['camera_info_topics']):
            self.create_subscription(CameraInfo, topic,
                                     lambda msg, i=index: self._on_camera_info(i, msg), info_qos)
        static_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                history=HistoryPolicy.KEEP_LAST)
        self.create_subscription(TFMessage, '/tf_static', self._on_transforms, static_qos)
        self.create_subscription(TFMessage, '/tf', self._on_transforms, 100)

    def _on_camera_info(self, camera: int, msg) -> None:
        k = np.array(msg.k, dtype=np.float64).reshape(3, 3)
        if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0 and msg.width
                and msg.height):
            self.stats['errors'] += 1
            self.last_error = (f'{self.params["camera_info_topics"][camera]}: unusable '
                               f'CameraInfo (K {k.ravel().tolist()}, {msg.width}x{msg.height})')
            self.get_logger().warning(self.last_error, throttle_duration_sec=5.0)
            return
        frame = (self.params['frame_ids'][camera] if self.params['frame_ids']
                 else msg.header.frame_id)
        self.intrinsics[camera] = (k, int(msg.width), int(msg.height), frame)
        self._update_calibration()

    def _on_transforms(self, msg) -> None:
        for transform in msg.transforms:
            t, r = transform.transform.translation, transform.transform.rotation
            self.tf_tree.add(transform.header.frame_id, transform.child_frame_id,
                             np.array([t.x, t.y, t.z]), quaternion_to_rotation(r.x, r.y, r.z, r.w))
        self._update_calibration()

    def _update_calibration(self) -> None:
        """Rebuild each camera with intrinsics and a pose in the world; log when all are."""
        was_complete = all(camera is not None for camera in self.cameras)
        for index, intrinsics in enumerate(self.intrinsics):
            if intrinsics is None:
                continue
            k, width, height, frame = intrinsics
            pose = self.tf_tree.pose(frame, self.params['world_frame'])
            self.cameras[index] = None if pose is None else camera_from_info(
                self.names[index], k, width, height, frame, *pose)
        if not was_complete and all(camera is not None for camera in self.cameras):
            self.get_logger().info('calibrated from CameraInfo and TF: ' + '; '.join(
                f'{c.name} {c.width}x{c.height} in {c.frame_id} at '
                f'{np.round(c.center, 3).tolist()} m' for c in self.cameras))

    def missing_calibration(self) -> list[str]:
        """Return what each uncalibrated camera still lacks (empty when all are calibrated)."""
        missing = []
        for index, camera in enumerate(self.cameras):
            if camera is not None:
                continue
            if self.intrinsics[index] is None:
                missing.append(f'{self.names[index]}: no CameraInfo on '
                               f'{self.params["camera_info_topics"][index]}')
            else:
                missing.append(f'{self.names[index]}: no TF from {self.params["world_frame"]} '
                               f'to {self.intrinsics[index][3]}')
        return missing

    def _publish_static_transforms(self) -> None:
        try:
            from geometry_msgs.msg import TransformStamped
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().info('tf2_msgs is not installed: not publishing the world -> '
                                   'camera optical frame transforms on /tf_static')
            return
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         history=HistoryPolicy.KEEP_LAST)
        self.tf_pub = self.create_publisher(TFMessage, '/tf_static', qos)
        stamp = self.get_clock().now().to_msg()
        transforms = []
        for camera in self.cameras:
            translation, quaternion = camera.optical_frame_pose()
            transform = TransformStamped()
            transform.header = Header(stamp=stamp, frame_id=self.params['world_frame'])
            transform.child_frame_id = camera.frame_id
            t, r = transform.transform.translation, transform.transform.rotation
            t.x, t.y, t.z = (float(v) for v in translation)
            r.x, r.y, r.z, r.w = (float(v) for v in quaternion)
            transforms.append(transform)
        self.tf_pub.publish(TFMessage(transforms=transforms))

    def _on_pose(self, camera: int, msg: PoseArray) -> None:
        xy, confidence = poses_to_arrays(msg)
        if len(xy) != NUM_JOINTS:
            self.stats['errors'] += 1
            self.last_error = f'{self.topics[camera]}: {len(xy)} poses, expected {NUM_JOINTS}'
            self.get_logger().warning(self.last_error, throttle_duration_sec=5.0)
            return
        if any(c is None for c in self.cameras):
            self.stats['waiting_calibration'] += 1
            return
        ready = self.matcher.add(camera, stamp_ns(msg.header.stamp), xy, confidence,
                                 time.monotonic())
        for pose_set in ready:
            self._publish(pose_set)

    def _on_expire_timer(self) -> None:
        for pose_set in self.matcher.expire(time.monotonic()):
            self._publish(pose_set)

    def triangulate(self, pose_set: PoseSet) -> np.ndarray:
        """Triangulate one group: ``[J, 3]`` metres in the world frame, NaN where missing."""
        xy = np.full((len(self.cameras), NUM_JOINTS, 2), np.nan)
        weights = np.zeros((len(self.cameras), NUM_JOINTS))
        for camera, (_, view_xy, confidence) in pose_set.views.items():
            confidence = np.nan_to_num(confidence, nan=-1.0)
            seen = np.isfinite(view_xy).all(axis=-1) & (
                confidence >= self.params['min_confidence'])
            if self.params['use_confidence']:
                seen &= confidence > 0
            xy[camera] = np.where(seen[:, None], view_xy, np.nan)
            weight = confidence if self.params['use_confidence'] else 1.0
            weights[camera] = np.where(seen, weight, 0.0)
        points = triangulate_joints(self.cameras, xy, weights, self.params['min_views'],
                                    self.params['refine_iterations'])
        errors = reprojection_errors(self.cameras, points, xy)
        worst = np.nanmax(np.where(weights > 0, errors, np.nan), axis=0, initial=-np.inf)
        limit = self.params['max_reprojection_error']
        rejected = np.isfinite(points).all(axis=-1) & (worst > limit) if limit > 0 else (
            np.zeros(len(points), bool))
        self.reprojection_px.extend(worst[np.isfinite(points).all(axis=-1) & ~rejected])
        if rejected.any():
            self.stats['rejected_joints'] += int(rejected.sum())
            self.last_error = (f'rejected {int(rejected.sum())} joint(s) reprojecting more than '
                               f'{limit} px from their 2D joints (worst '
                               f'{float(worst[rejected].max()):.1f} px)')
            points[rejected] = np.nan
        return points

    def _publish(self, pose_set: PoseSet) -> None:
        points = self.triangulate(pose_set)
        sec, nanosec = divmod(pose_set.output_stamp_ns(), 1_000_000_000)
        header = Header(frame_id=self.params['world_frame'])
        header.stamp.sec, header.stamp.nanosec = sec, nanosec
        self.pose_pub.publish(points_pose_array(header, points))
        self.marker_pub.publish(skeleton_markers_3d(header, points,
                                                    self.params['marker_lifetime']))
        self.stats['published'] += 1
        self.stats['joints_missing'] += int((~np.isfinite(points).all(axis=-1)).sum())

    def diagnostics_values(self) -> dict[str, str]:
        """Return counters and rates as strings (for /diagnostics)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        values = {k: str(v) for k, v in self.matcher.counters.items()}
        values['pending'] = str(len(self.matcher.pending))
        for name, count in zip(self.names, self.matcher.received_per_camera):
            values[f'received_{name}'] = str(count)
        values.update({k: str(v) for k, v in self.stats.items()})
        values['pose_rate_hz'] = f'{self.stats["published"] / elapsed:.1f}'
        if self.reprojection_px:
            values['reprojection_error_median_px'] = f'{np.median(self.reprojection_px):.2f}'
        values['last_error'] = self.last_error
        return values

    def _publish_diagnostics(self) -> None:
        values = self.diagnostics_values()
        drops = sum(int(values[k]) for k in ('late_poses', 'unmatched_poses', 'forced_sets',
                                             'errors', 'rejected_joints',
                                             'waiting_calibration'))
        missing = self.missing_calibration()
        level = (DiagnosticStatus.WARN if drops > self.reported_drops or missing
                 else DiagnosticStatus.OK)
        self.reported_drops = drops
        # compared, not tested for truth: the level constants are non-empty bytes
        message = ('waiting for calibration: ' + '; '.join(missing) if missing else
                   'ok' if level == DiagnosticStatus.OK else
                   'dropping unmatched, late or badly reprojecting poses')
        status = DiagnosticStatus(
            level=level, name=f'{self.get_fully_qualified_name()}: 3d pose',
            hardware_id=','.join(self.names), message=message,
            values=[KeyValue(key=k, value=v) for k, v in values.items()])
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                              status=[status]))


def main(args: list[str] | None = None) -> None:
    """Run the node until shutdown; configuration errors exit with one message and code 2."""
    rclpy.init(args=args)
    try:
        node = HybridPose3dNode()
    except StartupError as error:
        print(f'hybrid_pose_3d_node: {error}', file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    spin_until_shutdown(node)


if __name__ == '__main__':
    main()
