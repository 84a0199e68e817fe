# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Start one ``hybrid_pose_node`` per event camera, the 3D node, and optionally RViz and a bag.

The cameras come from ``config/multi_camera.yaml`` (launch argument ``config``): each gets a
``hybrid_pose_node`` in the namespace of its name, subscribed to its events topic, and
``hybrid_pose_3d_node`` triangulates their ``/<name>/hybrid_pose_node/pose`` topics with the
cameras' calibration. ``ros2 launch hybrid_pose_ros multi_camera.launch.py`` with no arguments
plays the installed sample bag (``/cam3/events``, ``/cam2/events`` and their ``cameras.yaml``).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
import yaml

PACKAGE = 'hybrid_pose_ros'


def _calibration_file(camera: dict, bag: str, share: str) -> str:
    """Return a camera's calibration: as given (relative to the share folder), else the bag's."""
    path = camera.get('calibration') or ''
    if path:
        return path if os.path.isabs(path) else os.path.join(share, path)
    if not bag:
        raise ValueError(f'camera {camera["name"]!r} has no calibration and no bag is played; '
                         'set calibration in the config file')
    return os.path.join(bag, 'cameras.yaml')


def _setup(context) -> list:
    """Read the camera config and create the nodes, the bag replay and RViz."""
    share = get_package_share_directory(PACKAGE)
    config_path = LaunchConfiguration('config').perform(context)
    with open(config_path) as f:
        config = yaml.safe_load(f)
    bag = LaunchConfiguration('bag').perform(context)
    if bag and not os.path.exists(bag):
        raise FileNotFoundError(f'bag {bag!r} does not exist (launch argument bag:=...)')
    use_sim_time = LaunchConfiguration('use_sim_time').perform(context).lower() == 'true'
    cameras = config['cameras']
    if len(cameras) < 2:
        raise ValueError(f'{config_path}: the 3D node needs at least two cameras')
    actions = []
    for camera in cameras:
        actions.append(Node(
            package=PACKAGE,
            executable='hybrid_pose_node',
            name='hybrid_pose_node',
            namespace=camera['name'],
            output='screen',
            parameters=[
                LaunchConfiguration('params_file').perform(context),
                {
                    **(config.get('hybrid_pose_node') or {}),
                    'checkpoint': LaunchConfiguration('checkpoint').perform(context),
                    'device': LaunchConfiguration('device').perform(context),
                    'input_type': LaunchConfiguration('input_type').perform(context),
                    'events_topic': camera['events_topic'],
                    'frame_id': camera.get('frame_id') or '',
                    'use_sim_time': use_sim_time,
                },
            ],
        ))
    node_3d = {
        **(config.get('hybrid_pose_3d_node') or {}),
        'cameras': [c['name'] for c in cameras],
        'pose_topics': [f'/{c["name"]}/hybrid_pose_node/pose' for c in cameras],
        'calibration_files': [_calibration_file(c, bag, share) for c in cameras],
        'use_sim_time': use_sim_time,
    }
    if all(c.get('frame_id') for c in cameras):
        node_3d['frame_ids'] = [c['frame_id'] for c in cameras]
    actions.append(Node(package=PACKAGE, executable='hybrid_pose_3d_node',
                        name='hybrid_pose_3d_node', output='screen', parameters=[node_3d]))
    if bag:
        actions.append(ExecuteProcess(cmd=['ros2', 'bag', 'play', bag, '--clock', '200',
                                           '--loop'], output='screen'))
    if LaunchConfiguration('rviz').perform(context).lower() == 'true':
        rviz_config = os.path.join(share, 'rviz', 'multi_camera.rviz')
        arguments = (['-d', rviz_config] if os.path.exists(rviz_config)
                     else ['-f', node_3d.get('world_frame', 'world')])
        actions.append(Node(package='rviz2', executable='rviz2', name='rviz2',
                            arguments=arguments, parameters=[{'use_sim_time': use_sim_time}]))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the nodes are created from the config file at launch time."""
    share = get_package_share_directory(PACKAGE)
    sample_bag = os.path.join(share, 'data', 'sample_bag')
    arguments = [
        DeclareLaunchArgument('config', default_value=os.path.join(
            share, 'config', 'multi_camera.yaml'), description='Cameras and 3D node settings.'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(
            share, 'config', 'hybrid.yaml'), description='Parameters of every 2D node.'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='Model checkpoint; empty uses the bundled weights.'),
        DeclareLaunchArgument('device', default_value='cpu',
                              description="Torch device: 'cpu', 'cuda' or 'cuda:N'."),
        DeclareLaunchArgument('input_type', default_value='dvs',
                              description='event_packet or dvs (dvs_msgs/EventArray).'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='Use /clock (true when replaying a bag).'),
        DeclareLaunchArgument('rviz', default_value='true', description='Open RViz.'),
        DeclareLaunchArgument('bag', default_value=sample_bag if os.path.exists(sample_bag)
                              else '', description='Bag to replay; empty plays none.'),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_setup)])
