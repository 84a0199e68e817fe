# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_replay plays a ROS 1 dvs_msgs bag as ROS 2 dvs_msgs/EventArray CDR."""
from helpers.processes import replay_and_receive
from hybrid_pose_ros.ros import codecs
import numpy as np
import pytest
from test_convert_ros1 import ros1_messages, write_ros1_dvs_bag

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')


def test_replay_a_ros1_bag_publishes_ros2_event_arrays(tmp_path, rclpy_context, ros_env):
    written = write_ros1_dvs_bag(tmp_path / 'in.bag')
    received, output = replay_and_receive(
        rclpy_context, ros_env, [str(tmp_path / 'in.bag'), '--fast', '--wait-for-subscribers',
                                 '20'], '/dvs/events', expected=len(written))
    assert 'published 3 messages' in output, output
    assert len(received) == len(written), output
    for raw, events, (stamp_ns, _) in zip(received, written, ros1_messages()):
        message = codecs.decode_event_array(raw)
        assert (message.stamp_ns, message.frame_id, message.width) == (stamp_ns, 'dvs', 346)
        np.testing.assert_array_equal(message.events, events)
