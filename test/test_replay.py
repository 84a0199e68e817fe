# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_replay publishes a bag's raw messages over DDS; duration and waiting work."""
import subprocess
import sys

from helpers import REPO_ROOT
from helpers.processes import replay_and_receive
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')
BAG = REPO_ROOT / 'bags' / 'sample_bag'


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_replay_a_slice_fast_to_a_waiting_subscriber(rclpy_context, ros_env):
    received, output = replay_and_receive(
        rclpy_context, ros_env, [str(BAG), '--topics', '/cam3/events', '--fast', '--duration',
                                 '0.5', '--wait-for-subscribers', '20'], '/cam3/events')
    # 33.3 ms messages: 0.5 s of bag time from the first message holds 15 or 16 of them
    assert 'published' in output, output
    assert len(received) in (15, 16), f'{len(received)} messages received\n{output}'
    assert all(bytes(m[:4]) == b'\x00\x01\x00\x00' for m in received)


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_waiting_in_vain_plays_nothing_and_fails(ros_env):
    # nobody subscribes in this test's domain; ROS arguments are accepted as under ros2 run
    result = subprocess.run(
        [sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(BAG), '--topics',
         '/cam3/events', '--wait-for-subscribers', '0.5', '--ros-args', '-r',
         '__node:=waiting_replay'], env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    assert '/cam3/events still had fewer than 1 subscriber(s); nothing was played' in (
        result.stderr), result.stderr
    assert 'published' not in result.stdout


INTERRUPTED_REPLAY = """
import rclpy
from hybrid_pose_ros.ros import replay as module
def publish_fails(node, *args, **kwargs):
    if {shut_down}:
        rclpy.shutdown()   # SIGINT's handler shuts the context down before Python sees it
    raise RuntimeError("Failed to publish: publisher's context is invalid")
module.replay = publish_fails
module.main(['unused_bag'])
"""


@pytest.mark.parametrize('shut_down', [True, False])
def test_a_publish_failing_after_ctrl_c_is_an_interrupt_not_an_error(ros_env, shut_down):
    result = subprocess.run([sys.executable, '-c', INTERRUPTED_REPLAY.format(
        shut_down=shut_down)], env=ros_env, capture_output=True, text=True, timeout=60)
    if shut_down:
        assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    else:   # with the context still up the failure is real and reported
        assert result.returncode == 1 and 'context is invalid' in result.stderr, result
