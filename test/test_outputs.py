# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Output messages: pixel convention, missing joints, stable marker ids and bones."""
import math

from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.outputs import (
    EventTimeDecimator, ImagePlane, pose_array_cdr, skeleton_markers, stamp_from_us)
from hybrid_pose_ros.skeleton import NUM_JOINTS, SKELETON_EDGES
import numpy as np
import pytest

pytest.importorskip('rclpy')
from geometry_msgs.msg import Pose, PoseArray  # noqa: E402, I100
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402


def joints_with_one_missing():
    xy = np.stack([np.arange(NUM_JOINTS) * 10.0 + 5.0, np.arange(NUM_JOINTS) * 7.0 + 3.0], 1)
    confidence = np.full(NUM_JOINTS, 0.9)
    confidence[0] = 0.01   # head below the threshold
    xy[8] = np.nan         # left hand not finite
    return xy, confidence


def test_stamp_from_microseconds():
    stamp = stamp_from_us(1_700_000_000_123_456)
    assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_000)


def test_pose_array_marks_missing_joints_as_nan():
    xy, confidence = joints_with_one_missing()
    raw = pose_array_cdr(1_700_000_000_123_456, 'cam', xy, confidence, min_confidence=0.05)
    msg = deserialize_message(raw, PoseArray)
    assert len(msg.poses) == NUM_JOINTS and msg.header.frame_id == 'cam'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_000, 123_456_000)
    assert math.isnan(msg.poses[0].position.x) and math.isnan(msg.poses[8].position.z)
    assert (msg.poses[3].position.x, msg.poses[3].position.y) == (35.0, 24.0)
    assert msg.poses[3].position.z == pytest.approx(0.9)
    assert all(p.orientation.w == 1.0 and p.orientation.x == 0.0 for p in msg.poses)


@pytest.mark.parametrize('frame_id,count', [('', 13), ('cam', 13), ('camera_7', 2), ('ab', 0)])
def test_pose_array_cdr_equals_rclpy_serialisation(frame_id, count):
    rows = np.random.default_rng(count).normal(size=(count, 7))
    expected = PoseArray(header=Header(stamp=stamp_from_us(1_234_567_890), frame_id=frame_id))
    for row in rows:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in row[:3])
        (pose.orientation.x, pose.orientation.y, pose.orientation.z,
         pose.orientation.w) = (float(v) for v in row[3:])
        expected.poses.append(pose)
    raw = codecs.encode_pose_array(1_234_567_890_000, frame_id, rows)
    # same layout (rclpy leaves its pad bytes uninitialised, so compare lengths and fields)
    assert len(raw) == len(serialize_message(expected))
    assert deserialize_message(raw, PoseArray) == expected
    with pytest.raises(ValueError, match=r'poses must be \[N, 7\]'):
        codecs.encode_pose_array(0, frame_id, rows[:, :3])


@pytest.mark.parametrize('sec,nanosec', [(0, 0), (1_700_000_000, 999_999_999), (-5, 7)])
def test_header_stamp_read_from_raw_cdr(sec, nanosec):
    msg = PoseArray(header=Header(frame_id='cam'))
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.poses.append(Pose())
    assert (codecs.header_stamp_ns(serialize_message(msg), 'geometry_msgs/PoseArray')
            == sec * 1_000_000_000 + nanosec)
    with pytest.raises(codecs.CodecError, match='PoseArray: truncated at header.stamp.nanosec'):
        codecs.header_stamp_ns(serialize_message(msg)[:10], 'geometry_msgs/PoseArray')


def test_markers_have_stable_ids_and_skip_bones_of_missing_joints():
    xy, confidence = joints_with_one_missing()
    plane = ImagePlane(width=346, height=260, depth=2.0, pixel_size=0.01)
    markers = skeleton_markers(Header(frame_id='cam'), xy, confidence, 0.05, plane, 0.25)
    joints, bones = markers.markers
    assert (joints.ns, joints.id, bones.ns, bones.id) == ('joints', 0, 'bones', 1)
    assert len(joints.points) == NUM_JOINTS - 2
    kept = [e for e in SKELETON_EDGES if 0 not in e and 8 not in e]
    assert len(bones.points) == 2 * len(kept)
    assert joints.lifetime.nanosec == 250_000_000
    assert all(p.z == 2.0 for p in joints.points)
    assert joints.points[0].x == pytest.approx((15.0 - 172.5) * 0.01)


def test_image_plane_with_intrinsics_back_projects():
    plane = ImagePlane(width=346, height=260, depth=2.0, intrinsics=(250.0, 250.0, 173.0, 130.0))
    point = plane.to_points(np.array([[423.0, 5.0]]))[0]
    np.testing.assert_allclose(point, [2.0, -1.0, 2.0])


def test_decimator_keeps_the_average_rate_in_event_time():
    decimator = EventTimeDecimator()
    stamps = np.arange(1_000_000, 2_000_000, 10_000)          # 1 s of 10 ms poses
    passed = [int(t) for t in stamps if decimator.due(int(t), 30.0)]
    assert len(passed) == 30
    assert set(np.diff(passed)) == {30_000, 40_000}
    assert decimator.due(500_000, 30.0)                        # a looped bag: restart at once
    assert not decimator.due(510_000, 30.0)
    assert decimator.due(5_000_000, 30.0)                      # after a gap: restart at once
    assert all(decimator.due(5_000_000 + k, 0.0) for k in range(3))   # 0: every pose
