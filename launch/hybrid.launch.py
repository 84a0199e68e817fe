# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Start the hybrid ANN-SNN pose node, a bag player when a bag plays, and RViz where it exists.

``ros2 launch hybrid_pose_ros hybrid.launch.py`` with no arguments plays the sample bag installed
with the package into the node, with sim time, and opens RViz. ``play_bag:=false`` (or
``bag:=none``) runs live on a camera's topic. Every argument and file is checked before any
process starts, and the launch ends when the node or the bag player exits
(``hybrid_pose_ros/ros/launch_support.py``; ``ros2 launch hybrid_pose_ros hybrid.launch.py
--show-args`` lists the arguments).
"""
import pathlib

from ament_index_python.packages import get_package_share_directory
from hybrid_pose_ros.ros import launch_support
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.logging import launch_config
from launch.substitutions import LaunchConfiguration

PACKAGE = 'hybrid_pose_ros'


def _setup(context) -> list:
    """Check every argument and file, then return all processes at once."""
    arg = {name: LaunchConfiguration(name).perform(context)
           for name, _, _ in launch_support.SINGLE_ARGUMENTS}
    plan = launch_support.plan_single(
        arg, pathlib.Path(get_package_share_directory(PACKAGE)),
        pathlib.Path(launch_config.log_dir))
    return launch_support.to_actions(plan, 'hybrid.launch')


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the processes are chosen once their values are known."""
    defaults = launch_support.share_defaults(pathlib.Path(get_package_share_directory(PACKAGE)))
    return LaunchDescription([
        DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                              description=description)
        for name, default, description in launch_support.SINGLE_ARGUMENTS
    ] + [OpaqueFunction(function=_setup)])
