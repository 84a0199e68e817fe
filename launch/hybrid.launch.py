# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Start the hybrid ANN-SNN pose node, optionally RViz and a bag replay.

``ros2 launch hybrid_pose_ros hybrid.launch.py`` with no arguments plays the sample bag installed
with the package (when present), runs the node on it with sim time and opens RViz.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'hybrid_pose_ros'


def _bag_replay(context):
    """Play the chosen bag with ``ros2 bag play --clock`` when one is given and exists."""
    bag = LaunchConfiguration('bag').perform(context)
    if not bag:
        return []
    if not os.path.exists(bag):
        raise FileNotFoundError(f'bag {bag!r} does not exist (launch argument bag:=...)')
    return [ExecuteProcess(
        cmd=['ros2', 'bag', 'play', bag, '--clock', '200', '--loop'],
        output='screen')]


def generate_launch_description() -> LaunchDescription:
    """Describe the node, its parameters and the optional RViz and bag processes."""
    share = get_package_share_directory(PACKAGE)
    sample_bag = os.path.join(share, 'data', 'sample_bag')
    arguments = [
        DeclareLaunchArgument('params_file', default_value=os.path.join(
            share, 'config', 'hybrid.yaml'), description='Node parameter file.'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='Model checkpoint; empty uses the bundled weights.'),
        DeclareLaunchArgument('device', default_value='cpu',
                              description="Torch device: 'cpu', 'cuda' or 'cuda:N'."),
        DeclareLaunchArgument('events_topic', default_value='/cam3/events',
                              description='Event topic to subscribe to (default: the sample '
                              "bag's camera 3)."),
        DeclareLaunchArgument('input_type', default_value='dvs',
                              description='event_packet or dvs (dvs_msgs/EventArray).'),
        DeclareLaunchArgument('namespace', default_value='hybrid_pose',
                              description='Namespace of the node.'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='Use /clock (true when replaying a bag).'),
        DeclareLaunchArgument('rviz', default_value='true', description='Open RViz.'),
        DeclareLaunchArgument('bag', default_value=sample_bag if os.path.exists(sample_bag)
                              else '', description='Bag to replay; empty plays none.'),
    ]
    use_sim_time = LaunchConfiguration('use_sim_time')
    node = Node(
        package=PACKAGE,
        executable='hybrid_pose_node',
        name='hybrid_pose_node',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {
                'checkpoint': LaunchConfiguration('checkpoint'),
                'device': LaunchConfiguration('device'),
                'events_topic': LaunchConfiguration('events_topic'),
                'input_type': LaunchConfiguration('input_type'),
                'use_sim_time': use_sim_time,
            },
        ],
    )
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        arguments=['-d', os.path.join(share, 'rviz', 'hybrid.rviz')],
        parameters=[{'use_sim_time': use_sim_time}],
        condition=IfCondition(LaunchConfiguration('rviz')),
    )
    return LaunchDescription(arguments + [node, rviz, OpaqueFunction(function=_bag_replay)])
