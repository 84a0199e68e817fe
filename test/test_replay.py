# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_replay publishes a bag's raw messages over DDS; duration and waiting work."""
import subprocess
import sys
import time

from helpers import REPO_ROOT
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')
BAG = REPO_ROOT / 'bags' / 'sample_bag'


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_replay_a_slice_fast_to_a_waiting_subscriber(rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    node = rclpy.create_node('replay_listener', context=rclpy_context)
    received = []
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_ALL)
    node.create_subscription(EventArray, '/cam3/events', received.append, qos, raw=True)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    process = subprocess.Popen(
        [sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(BAG), '--topics',
         '/cam3/events', '--fast', '--duration', '0.5', '--wait-for-subscribers', '20'],
        env=ros_env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    finally:
        process.kill()
        output = process.communicate()[0]
        executor.shutdown()
        node.destroy_node()
    # 33.3 ms messages: 0.5 s of bag time from the first message holds 15 or 16 of them
    assert 'published' in output, output
    assert len(received) in (15, 16), f'{len(received)} messages received\n{output}'
    assert all(bytes(m[:4]) == b'\x00\x01\x00\x00' for m in received)
