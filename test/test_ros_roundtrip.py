# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Two processes exchange event messages over DDS on loopback; the receiver checks them."""
import subprocess
import sys
import time

from helpers import REPO_ROOT
from helpers import roundtrip_publisher as reference
import numpy as np
import pytest

pytestmark = pytest.mark.ros
PUBLISHER = REPO_ROOT / 'test' / 'helpers' / 'roundtrip_publisher.py'


def receive_one(context, msg_type, topic: str, kind: str, env: dict[str, str], timeout=20.0):
    """Start the publisher process and return the first message received on ``topic``."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    node = rclpy.create_node('roundtrip_receiver', context=context)
    received = []
    node.create_subscription(msg_type, topic, received.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    publisher = subprocess.Popen([sys.executable, str(PUBLISHER), kind, topic], env=env)
    try:
        deadline = time.monotonic() + timeout
        while not received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            assert publisher.poll() is None, 'publisher process exited early'
    finally:
        publisher.kill()
        publisher.wait()
        executor.shutdown()
        node.destroy_node()
    assert received, f'no message on {topic} within {timeout} s'
    assert rclpy.ok(context=context)
    return received[0]


def test_dvs_event_array_crosses_processes(rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    msg = receive_one(rclpy_context, EventArray, '/roundtrip/dvs', 'dvs', ros_env)
    expected = reference.expected_events()
    assert (msg.width, msg.height) == (reference.WIDTH, reference.HEIGHT)
    assert msg.header.frame_id == 'dvs_optical_frame'
    assert len(msg.events) == reference.NUM_EVENTS
    np.testing.assert_array_equal([e.x for e in msg.events], expected['x'])
    np.testing.assert_array_equal([e.y for e in msg.events], expected['y'])
    np.testing.assert_array_equal([e.polarity for e in msg.events], expected['p'])
    t_ns = np.array([e.ts.sec * 10**9 + e.ts.nanosec for e in msg.events], dtype=np.int64)
    start_ns = reference.STAMP_SEC * 10**9 + reference.STAMP_NANOSEC
    np.testing.assert_array_equal(t_ns - start_ns, expected['dt_ns'].astype(np.int64))


def test_event_packet_crosses_processes(rclpy_context, ros_env):
    from event_camera_msgs.msg import EventPacket
    msg = receive_one(rclpy_context, EventPacket, '/roundtrip/packet', 'packet', ros_env)
    expected = reference.expected_events()
    assert (msg.encoding, msg.seq, msg.is_bigendian) == ('mono', 7, False)
    words = np.frombuffer(bytes(msg.events), dtype='<u8')
    assert len(words) == reference.NUM_EVENTS
    np.testing.assert_array_equal((words >> np.uint64(32)) & np.uint64(0xFFFF), expected['x'])
    np.testing.assert_array_equal((words >> np.uint64(48)) & np.uint64(0x7FFF), expected['y'])
    np.testing.assert_array_equal((words >> np.uint64(63)).astype(bool), expected['p'])
    np.testing.assert_array_equal(words & np.uint64(0xFFFFFFFF), expected['dt_ns'])
