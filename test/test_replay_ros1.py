# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_replay plays a ROS 1 dvs_msgs bag as ROS 2 dvs_msgs/EventArray CDR."""
import subprocess
import sys
import time

from hybrid_pose_ros.ros import codecs
import numpy as np
import pytest
from test_convert_ros1 import ros1_messages, write_ros1_dvs_bag

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')


def test_replay_a_ros1_bag_publishes_ros2_event_arrays(tmp_path, rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    written = write_ros1_dvs_bag(tmp_path / 'in.bag')
    node = rclpy.create_node('ros1_replay_listener', context=rclpy_context)
    received = []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_ALL)
    node.create_subscription(EventArray, '/dvs/events', received.append, qos, raw=True)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    process = subprocess.Popen(
        [sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(tmp_path / 'in.bag'),
         '--fast', '--wait-for-subscribers', '20'],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 1.0
        while len(received) < len(written) and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    finally:
        process.kill()
        output = process.communicate()[0]
        executor.shutdown()
        node.destroy_node()
    assert 'published 3 messages' in output, output
    assert len(received) == len(written), output
    for raw, events, (stamp_ns, _) in zip(received, written, ros1_messages()):
        message = codecs.decode_event_array(raw)
        assert (message.stamp_ns, message.frame_id, message.width) == (stamp_ns, 'dvs', 346)
        np.testing.assert_array_equal(message.events, events)
