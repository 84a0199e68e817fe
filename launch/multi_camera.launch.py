# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Start one ``hybrid_pose_node`` per event camera, the 3D node, a bag player and RViz.

The cameras come from ``config/multi_camera.yaml`` (launch argument ``config``): each gets a
``hybrid_pose_node`` in the namespace of its name, subscribed to its events topic, and
``hybrid_pose_3d_node`` triangulates their ``/<name>/hybrid_pose_node/pose`` topics with the
cameras' calibration. With no arguments it plays the installed sample bag (``/cam3/events``,
``/cam2/events`` and its ``cameras.yaml``); ``play_bag:=false`` runs live, with the calibration
files named in the config. Everything is checked before any process starts, and the launch
ends when a node or the bag player exits (``hybrid_pose_ros/ros/launch_support.py``).
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
    """Check the config, every argument and file, then return all processes at once."""
    arg = {name: LaunchConfiguration(name).perform(context)
           for name, _, _ in launch_support.MULTI_ARGUMENTS}
    plan = launch_support.plan_multi(
        arg, pathlib.Path(get_package_share_directory(PACKAGE)),
        pathlib.Path(launch_config.log_dir))
    return launch_support.to_actions(plan, 'multi_camera.launch')


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the nodes are created from the config file at launch time."""
    defaults = launch_support.share_defaults(pathlib.Path(get_package_share_directory(PACKAGE)))
    return LaunchDescription([
        DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                              description=description)
        for name, default, description in launch_support.MULTI_ARGUMENTS
    ] + [OpaqueFunction(function=_setup)])
