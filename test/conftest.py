# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Shared pytest fixtures.

Every test run keeps DDS on loopback and in a domain of its own: the variables are set here,
at import time, so rclpy in this process and every process a test starts inherit them.
"""
import os

import pytest


def _unique_domain_id() -> int:
    """Pick a ROS domain id from the process id, unless the caller chose one."""
    chosen = os.environ.get('HYBRID_POSE_TEST_DOMAIN_ID')
    return int(chosen) if chosen else 1 + os.getpid() % 100


os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['ROS_DOMAIN_ID'] = str(_unique_domain_id())
os.environ.pop('ROS_LOCALHOST_ONLY', None)


@pytest.fixture
def ros_env() -> dict[str, str]:
    """Environment for a child ROS process: loopback discovery and this run's domain id."""
    env = dict(os.environ)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_DOMAIN_ID'] = os.environ['ROS_DOMAIN_ID']
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture
def rclpy_context():
    """Initialise rclpy in this process for one test and shut it down afterwards."""
    rclpy = pytest.importorskip('rclpy')
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
