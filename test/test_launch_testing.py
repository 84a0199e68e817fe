# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
launch_testing: the launch file starts the node, which publishes poses on the sample bag.

Runs where ROS 2 with launch_testing_ros and rosbag2 is installed (``colcon test``); skipped
elsewhere, since launch, launch_ros and launch_testing have no PyPI wheels (the launch file's
wiring is tested everywhere by ``test_launch.py``).
"""
import pytest

pytest.importorskip('launch_testing',
                    reason='launch_testing is not installable from PyPI; runs with ROS 2')


@pytest.mark.launch_test
def generate_test_description():
    import launch
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    import launch_testing.actions
    from ament_index_python.packages import get_package_share_directory
    share = get_package_share_directory('hybrid_pose_ros')
    hybrid = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(f'{share}/launch/hybrid.launch.py'),
        launch_arguments={'rviz': 'false'}.items())
    return launch.LaunchDescription([hybrid, launch_testing.actions.ReadyToTest()])


def test_node_publishes_poses_from_the_sample_bag():
    from geometry_msgs.msg import PoseArray
    import rclpy
    rclpy.init()
    node = rclpy.create_node('launch_test_listener')
    poses = []
    node.create_subscription(PoseArray, '/hybrid_pose/hybrid_pose_node/pose', poses.append, 10)
    try:
        for _ in range(600):
            rclpy.spin_once(node, timeout_sec=0.1)
            if len(poses) >= 10:
                break
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert len(poses) >= 10 and all(len(p.poses) == 13 for p in poses)
