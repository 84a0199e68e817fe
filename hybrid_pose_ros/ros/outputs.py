"""
Build the node's output messages from joint arrays: PoseArray (raw CDR), skeleton markers, stamps.

Pixel convention of ``~/pose``: ``position.x`` is the sensor column and ``position.y`` the sensor
row, in pixels, with integer values at pixel centres and (0, 0) the centre of the top-left
pixel; ``position.z`` is the joint confidence in [0, 1]; the orientation is the identity. A
missing joint (not detected, below ``min_confidence``, or non-finite) has NaN position and
confidence, so it can never be mistaken for a joint at the image corner. Poses are in
:data:`hybrid_pose_ros.skeleton.JOINT_NAMES` order.
"""
from collections import deque
from dataclasses import dataclass
import io

from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.skeleton import JOINT_NAMES, SKELETON_EDGES
from hybrid_pose_ros.visualize import draw_skeleton
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

JOINT_MARKER_ID = 0
BONE_MARKER_ID = 1


def stamp_from_us(t_us: int) -> Time:
    """Convert an event time in microseconds to a ROS time."""
    sec, usec = divmod(int(t_us), 1_000_000)
    return Time(sec=sec, nanosec=usec * 1000)


class EventTimeDecimator:
    """
    Let through at most ``rate_hz`` stamps per second of event time, keeping that average rate.

    With 10 ms poses and 30 Hz, every third or fourth pose passes (30 per 100 ms). After a gap or
    a jump back in time (a looped bag) the schedule restarts at the next stamp; ``rate_hz <= 0``
    lets every stamp through.
    """

    def __init__(self) -> None:
        self.next_us: float | None = None

    def due(self, t_us: int, rate_hz: float) -> bool:
        """Whether the output stamped ``t_us`` passes (and advance the schedule if it does)."""
        if rate_hz <= 0:
            return True
        period = 1e6 / rate_hz
        due = self.next_us
        if due is not None and due - period <= t_us < due:
            return False
        on_schedule = due is not None and due <= t_us < due + period
        self.next_us = due + period if on_schedule else t_us + period
        return True


def visible_joints(xy: np.ndarray, confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """Return a boolean mask of joints that are finite and at least ``min_confidence``."""
    finite = np.isfinite(xy).all(axis=-1) & np.isfinite(confidence)
    return finite & (confidence >= min_confidence)   # NaN compares False, without a warning


def pose_rows(xy: np.ndarray, confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """
    Return the ``~/pose`` content ``[J, 7]``: position (column, row, confidence), orientation.

    Missing joints get NaN positions; every orientation is the identity quaternion (0, 0, 0, 1).
    """
    visible = visible_joints(xy, confidence, min_confidence)
    rows = np.zeros((len(xy), 7))
    rows[:, 0:2] = xy
    rows[:, 2] = confidence
    rows[~visible, 0:3] = np.nan
    rows[:, 6] = 1.0
    return rows


def pose_array_cdr(stamp_us: int, frame_id: str, xy: np.ndarray, confidence: np.ndarray,
                   min_confidence: float) -> bytes:
    """Serialise the joints (sensor pixels, ``[J, 2]``) as the node's PoseArray (raw CDR)."""
    return codecs.encode_pose_array(int(stamp_us) * 1000, frame_id,
                                    pose_rows(xy, confidence, min_confidence))


@dataclass(frozen=True)
class ImagePlane:
    """
    Where sensor pixels are drawn in the camera optical frame (x right, y down, z forward).

    With intrinsics a pixel is back-projected onto the plane ``z = depth``; without them it is
    placed around the image centre at ``pixel_size`` metres per pixel.
    """

    width: int
    height: int
    depth: float = 1.0
    pixel_size: float = 0.002
    intrinsics: tuple[float, float, float, float] | None = None

    def to_points(self, xy: np.ndarray) -> np.ndarray:
        """Map ``[N, 2]`` sensor pixels to ``[N, 3]`` points in metres."""
        xy = np.asarray(xy, dtype=np.float64)
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            scale_x, scale_y = self.depth / fx, self.depth / fy
        else:
            cx, cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
            scale_x = scale_y = self.pixel_size
        points = np.empty((len(xy), 3))
        points[:, 0] = (xy[:, 0] - cx) * scale_x
        points[:, 1] = (xy[:, 1] - cy) * scale_y
        points[:, 2] = self.depth
        return points


def _confidence_color(c: float) -> ColorRGBA:
    """Colour a joint from red (low confidence) to green (high)."""
    c = float(np.clip(c, 0.0, 1.0))
    return ColorRGBA(r=1.0 - c, g=c, b=0.2, a=1.0)


def skeleton_markers(header: Header, xy: np.ndarray, confidence: np.ndarray,
                     min_confidence: float, plane: ImagePlane,
                     lifetime_s: float) -> MarkerArray:
    """
    Build the skeleton as two markers with stable ids: joints and bones.

    Joints are a SPHERE_LIST (coloured by confidence), bones a LINE_LIST over the DHP19 edges
    whose two joints are visible. Both markers are always sent (possibly empty), so the display
    neither flickers nor keeps stale bones.
    """
    visible = visible_joints(xy, confidence, min_confidence)
    points = plane.to_points(np.where(visible[:, None], xy, 0.0))
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))

    joints = Marker(header=header, ns='joints', id=JOINT_MARKER_ID, type=Marker.SPHERE_LIST,
                    action=Marker.ADD, lifetime=lifetime)
    joints.pose.orientation.w = 1.0
    joints.scale.x = joints.scale.y = joints.scale.z = 0.03
    for point, c, ok in zip(points, confidence, visible):
        if ok:
            joints.points.append(Point(x=point[0], y=point[1], z=point[2]))
            joints.colors.append(_confidence_color(c))

    return MarkerArray(markers=[joints, _bones(header, points, visible, lifetime, 0.01)])


def _bones(header: Header, points: np.ndarray, present: np.ndarray, lifetime: Duration,
           width: float) -> Marker:
    """Return the LINE_LIST of the DHP19 edges whose two joints are ``present``."""
    bones = Marker(header=header, ns='bones', id=BONE_MARKER_ID, type=Marker.LINE_LIST,
                   action=Marker.ADD, lifetime=lifetime)
    bones.pose.orientation.w = 1.0
    bones.scale.x = width
    bones.color = ColorRGBA(r=0.2, g=0.6, b=1.0, a=1.0)
    for a, b in SKELETON_EDGES:
        if present[a] and present[b]:
            for k in (a, b):
                bones.points.append(Point(x=points[k, 0], y=points[k, 1], z=points[k, 2]))
    return bones


def skeleton_markers_3d(header: Header, points: np.ndarray, lifetime_s: float) -> MarkerArray:
    """
    Build a 3D skeleton (``[J, 3]`` metres in ``header.frame_id``; NaN = missing) as markers.

    Same layout as :func:`skeleton_markers`: ns ``joints`` (SPHERE_LIST, id 0) and ``bones``
    (LINE_LIST, id 1, the DHP19 edges whose two joints are present), both always sent.
    """
    points = np.asarray(points, dtype=np.float64)
    present = np.isfinite(points).all(axis=-1)
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    joints = Marker(header=header, ns='joints', id=JOINT_MARKER_ID, type=Marker.SPHERE_LIST,
                    action=Marker.ADD, lifetime=lifetime)
    joints.pose.orientation.w = 1.0
    joints.scale.x = joints.scale.y = joints.scale.z = 0.05
    joints.color = ColorRGBA(r=0.1, g=0.9, b=0.3, a=1.0)
    joints.points = [Point(x=p[0], y=p[1], z=p[2]) for p, ok in zip(points, present) if ok]
    return MarkerArray(markers=[joints, _bones(header, points, present, lifetime, 0.02)])


LEFT_COLOR = (40, 230, 40)
"""Left joints and bones of the debug image (green)."""
RIGHT_COLOR = (240, 40, 240)
"""Right joints and bones of the debug image (magenta)."""
CENTRE_COLOR = (255, 255, 255)
"""The head and the bones across the body (white)."""
ON_COLOR, OFF_COLOR = np.array([255, 150, 40]), np.array([60, 140, 255])
JPEG_QUALITY = 85
_LEFT = np.array(['left' in name for name in JOINT_NAMES])
_RIGHT = np.array(['right' in name for name in JOINT_NAMES])


class EventSpan:
    """The events of the last ``span_us`` of event time, kept as per-bin arrays."""

    def __init__(self) -> None:
        self.bins: deque[tuple[int, np.ndarray]] = deque()

    def add(self, end_us: int, events: np.ndarray, span_us: int) -> None:
        """Keep the events of the bin ending at ``end_us``; forget those older than the span."""
        if self.bins and end_us < self.bins[-1][0]:
            self.bins.clear()   # time went back (a looped bag): start again
        self.bins.append((end_us, events))
        while self.bins and self.bins[0][0] <= end_us - span_us:
            self.bins.popleft()

    def events(self) -> np.ndarray:
        """Return the kept events, oldest first."""
        if not self.bins:
            return np.empty(0, dtype=EVENT_DTYPE)
        return np.concatenate([events for _, events in self.bins])

    def clear(self) -> None:
        """Forget every kept bin."""
        self.bins.clear()


def debug_image_rgb(events: np.ndarray, width: int, height: int, xy: np.ndarray,
                    visible: np.ndarray) -> np.ndarray:
    """
    Draw ``events`` and the skeleton as an ``[H, W, 3]`` uint8 image.

    A pixel's brightness grows with its event count (one event is already clearly visible),
    its hue is the polarity of the majority (ON orange, OFF blue). Left joints and bones are
    green, right ones magenta, the head and the bones across the body white.
    """
    inside = (events['x'] < width) & (events['y'] < height)
    events = events[inside]
    index = events['y'].astype(np.int64) * width + events['x']
    counts = np.bincount(index, minlength=width * height)
    on = np.bincount(index, weights=events['p'], minlength=width * height)
    lit = np.flatnonzero(counts)   # a few thousand pixels: only they are coloured
    level = np.minimum(1.0, 0.45 + 0.18 * np.log2(counts[lit]))
    color = np.where((on[lit] * 2 >= counts[lit])[:, None], ON_COLOR, OFF_COLOR)
    image = np.full((height * width, 3), 16, dtype=np.uint8)
    image[lit] = (color * level[:, None]).astype(np.uint8)
    image = image.reshape(height, width, 3)
    xy = np.nan_to_num(xy)
    draw_skeleton(image, xy, visible, CENTRE_COLOR)
    draw_skeleton(image, xy, visible & _LEFT, LEFT_COLOR)
    draw_skeleton(image, xy, visible & _RIGHT, RIGHT_COLOR)
    return image


def image_message(header: Header, image: np.ndarray) -> Image:
    """Return an ``rgb8`` ``sensor_msgs/Image`` of an ``[H, W, 3]`` uint8 image."""
    height, width = image.shape[:2]
    return Image(header=header, height=height, width=width, encoding='rgb8', is_bigendian=0,
                 step=width * 3, data=image.tobytes())


def compressed_image_message(header: Header, image: np.ndarray) -> CompressedImage:
    """Return a JPEG ``sensor_msgs/CompressedImage`` (as image_transport's ``compressed``)."""
    from PIL import Image as PilImage
    buffer = io.BytesIO()
    PilImage.fromarray(image).save(buffer, format='JPEG', quality=JPEG_QUALITY)
    return CompressedImage(header=header, format='rgb8; jpeg compressed bgr8',
                           data=buffer.getvalue())
