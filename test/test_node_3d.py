# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""``hybrid_pose_3d_node`` as a separate process: 2D poses of two cameras in, the 3D pose out."""
import math
import subprocess
import sys
import time

from helpers import REPO_ROOT
from hybrid_pose_ros.data.cameras import dhp19_rig
import numpy as np
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')

CALIBRATION = REPO_ROOT / 'bags' / 'sample_bag' / 'cameras.yaml'
T0_NS = 1_700_000_000 * 10**9
BIN_NS = 10_000_000


def start_node(env, *params):
    args = [sys.executable, '-m', 'hybrid_pose_ros.ros.node_3d', '--ros-args']
    for p in params:
        args += ['-p', p]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


class Bench:
    """Publish per-camera PoseArrays as two 2D nodes would; record the 3D node's outputs."""

    def __init__(self, context, topics):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from visualization_msgs.msg import MarkerArray
        self.node = rclpy.create_node('bench', context=context)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
        self.publishers = [self.node.create_publisher(PoseArray, t, qos) for t in topics]
        self.poses, self.markers, self.diagnostics = [], [], []
        self.node.create_subscription(PoseArray, '/hybrid_pose_3d_node/pose_3d',
                                      self.poses.append, qos)
        self.node.create_subscription(MarkerArray, '/hybrid_pose_3d_node/skeleton_3d',
                                      self.markers.append, qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics.append, qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout, process):
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            if process.poll() is not None:
                raise AssertionError('node exited:\n' + process.stdout.read())
        return condition()

    def publish(self, camera, stamp, xy, confidence):
        from geometry_msgs.msg import Pose, PoseArray
        msg = PoseArray()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        msg.header.frame_id = f'camera{camera}'
        for (x, y), c in zip(xy, confidence):
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = float(x), float(y), float(c)
            pose.orientation.w = 1.0
            msg.poses.append(pose)
        self.publishers[camera].publish(msg)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def skeleton(seed):
    rng = np.random.default_rng(seed)
    return np.array([0.0, 0.0, 1.0]) + rng.uniform(-0.4, 0.4, (13, 3))


def points(msg):
    return np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])


def diagnostic_value(bench, key):
    for array in reversed(bench.diagnostics):
        for status in array.status:
            if status.name.endswith('3d pose'):
                return {kv.key: kv.value for kv in status.values}[key]
    return None


def test_two_camera_streams_give_the_known_skeleton(rclpy_context, ros_env):
    rig = dhp19_rig()
    topics = ['/test/cam3/pose', '/test/cam2/pose']
    node = start_node(ros_env, 'cameras:=[cam3, cam2]', f'calibration_files:=[{CALIBRATION}]',
                      f'pose_topics:=[{", ".join(topics)}]', 'diagnostics_period:=0.2')
    bench = Bench(rclpy_context, topics)
    truth = [skeleton(k) for k in range(5)]
    try:
        assert bench.spin_until(lambda: all(p.get_subscription_count() > 0
                                            for p in bench.publishers), 30.0, node)
        for k, joints in enumerate(truth):
            stamp = T0_NS + (k + 1) * BIN_NS
            for camera, cam_index in enumerate((3, 2)):
                uv, _ = rig[cam_index].project(joints)
                xy, confidence = uv - 0.5, np.linspace(0.5, 1.0, 13)   # pixel centres
                if k == 1 and camera == 1:
                    stamp += 1_000_000                  # a 1 ms clock offset: still paired
                if k == 2 and camera == 1:
                    xy[4] = np.nan                      # elbow_left seen by cam3 only
                if k == 2 and camera == 0:
                    confidence[7] = np.nan              # hand_right missing in cam3
                if k == 3 and camera == 1:
                    continue                            # cam2 dropped this bin
                bench.publish(camera, stamp, xy, confidence)
            bench.spin_until(lambda: False, 0.02, node)
        assert bench.spin_until(lambda: len(bench.poses) >= 4, 20.0, node)
        assert bench.spin_until(lambda: diagnostic_value(bench, 'unmatched_poses') == '1',
                                10.0, node)
    finally:
        node.terminate()
        output, _ = node.communicate(timeout=10)
        bench.close()
    assert len(bench.poses) == 4
    for msg, k in zip(bench.poses, (0, 1, 2, 4)):
        assert msg.header.frame_id == 'world'
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == T0_NS + (k + 1) * BIN_NS
        expected = truth[k].copy()
        if k == 2:
            expected[[4, 7]] = np.nan
        np.testing.assert_allclose(points(msg), expected, atol=1e-6)
        assert all(p.orientation.w == 1.0 for p in msg.poses)
    assert math.isnan(bench.poses[2].poses[4].position.x)
    joints, bones = bench.markers[-1].markers
    assert (joints.ns, joints.id, bones.ns, bones.id) == ('joints', 0, 'bones', 1)
    assert joints.header.frame_id == 'world' and len(joints.points) == 13
    assert diagnostic_value(bench, 'complete_sets') == '4'
    try:
        import tf2_msgs.msg  # noqa: F401
    except ImportError:
        assert 'tf2_msgs is not installed' in output


def test_a_camera_missing_from_the_calibration_stops_the_node(ros_env):
    node = start_node(ros_env, 'cameras:=[cam3, cam1]', f'calibration_files:=[{CALIBRATION}]')
    output, _ = node.communicate(timeout=30)
    assert node.returncode == 2
    assert f"hybrid_pose_3d_node: calibration {CALIBRATION} has no camera 'cam1'" in output
    assert 'Traceback' not in output
