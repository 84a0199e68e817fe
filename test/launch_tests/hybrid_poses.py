# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
launch_testing: ``hybrid.launch.py`` on the sample bag publishes poses, and shuts down cleanly.

Run by ``test/test_launch_testing.py`` through ``launch_test`` (this file is not collected by
pytest: launch_testing's pytest plugin does not load under pytest 8+).
"""
import time
import unittest

from ament_index_python.packages import get_package_share_directory
from geometry_msgs.msg import PoseArray
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
import launch_testing.actions
import launch_testing.asserts
import pytest
import rclpy

TOPIC = '/hybrid_pose/hybrid_pose_node/pose'
POSES = 10
TIMEOUT_S = 150.0


@pytest.mark.launch_test
def generate_test_description():
    """Include the package's launch file as a user would, without RViz."""
    share = get_package_share_directory('hybrid_pose_ros')
    hybrid = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(f'{share}/launch/hybrid.launch.py'),
        launch_arguments={'rviz': 'false'}.items())
    return launch.LaunchDescription([hybrid, launch_testing.actions.ReadyToTest()])


class TestPoses(unittest.TestCase):
    """While the launch runs."""

    def test_poses_arrive_with_13_joints(self, proc_output):
        """Receive poses from the node on the sample bag."""
        context = rclpy.context.Context()
        rclpy.init(context=context)
        node = rclpy.create_node('launch_testing_listener', context=context)
        poses = []
        node.create_subscription(PoseArray, TOPIC, poses.append, 100)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while len(poses) < POSES and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        finally:
            node.destroy_node()
            context.try_shutdown()
        self.assertGreaterEqual(len(poses), POSES, f'poses on {TOPIC} in {TIMEOUT_S} s')
        self.assertTrue(all(len(p.poses) == 13 for p in poses))
        self.assertEqual({p.header.frame_id for p in poses}, {'cam3_optical_frame'})
        proc_output.assertWaitFor('listening to /cam3/events', timeout=10)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After the launch is shut down."""

    def test_every_process_exited_cleanly(self, proc_info):
        """Exit status 0 (or SIGINT's) for the node and the bag player."""
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2])
        self.assertGreaterEqual(len(proc_info.process_names()), 2)
