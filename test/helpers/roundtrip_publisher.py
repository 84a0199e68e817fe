# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Publish deterministic event messages for the ROS round-trip test (run as a separate process).

Usage: roundtrip_publisher.py dvs|packet TOPIC. Publishes the same message every 50 ms for at
most 20 s; the test kills it once it has received one.
"""
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node

NUM_EVENTS = 1000
WIDTH, HEIGHT = 346, 260
STAMP_SEC, STAMP_NANOSEC = 1700000000, 123456789


def expected_events() -> dict[str, np.ndarray]:
    """Return the columns of the events both processes agree on (seeded)."""
    rng = np.random.default_rng(2022)
    return {
        'x': rng.integers(0, WIDTH, NUM_EVENTS).astype(np.uint16),
        'y': rng.integers(0, HEIGHT, NUM_EVENTS).astype(np.uint16),
        'dt_ns': np.sort(rng.integers(0, 10_000_000, NUM_EVENTS)).astype(np.uint64),
        'p': rng.integers(0, 2, NUM_EVENTS).astype(bool),
    }


def build_event_array():
    """Build a typed dvs_msgs/EventArray with per-event Python objects."""
    from dvs_msgs.msg import Event, EventArray
    cols = expected_events()
    msg = EventArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = STAMP_SEC, STAMP_NANOSEC
    msg.header.frame_id = 'dvs_optical_frame'
    msg.height, msg.width = HEIGHT, WIDTH
    for x, y, dt, p in zip(cols['x'], cols['y'], cols['dt_ns'], cols['p']):
        event = Event(x=int(x), y=int(y), polarity=bool(p))
        total = STAMP_NANOSEC + int(dt)
        event.ts.sec = STAMP_SEC + total // 1_000_000_000
        event.ts.nanosec = total % 1_000_000_000
        msg.events.append(event)
    return msg


def build_event_packet():
    """Build a typed event_camera_msgs/EventPacket with the mono encoding."""
    from event_camera_msgs.msg import EventPacket
    cols = expected_events()
    words = (cols['dt_ns'] & 0xFFFFFFFF) | (cols['x'].astype(np.uint64) << np.uint64(32)) \
        | (cols['y'].astype(np.uint64) << np.uint64(48)) \
        | (cols['p'].astype(np.uint64) << np.uint64(63))
    msg = EventPacket()
    msg.header.stamp.sec, msg.header.stamp.nanosec = STAMP_SEC, STAMP_NANOSEC
    msg.header.frame_id = 'event_camera_optical_frame'
    msg.height, msg.width = HEIGHT, WIDTH
    msg.seq = 7
    msg.time_base = STAMP_SEC * 1_000_000_000 + STAMP_NANOSEC
    msg.encoding = 'mono'
    msg.is_bigendian = False
    msg.events = words.astype('<u8').tobytes()
    return msg


def main() -> None:
    """Publish the chosen message type on the given topic until killed."""
    kind, topic = sys.argv[1], sys.argv[2]
    rclpy.init()
    node = Node('roundtrip_publisher')
    msg = build_event_array() if kind == 'dvs' else build_event_packet()
    publisher = node.create_publisher(type(msg), topic, 10)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        publisher.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == '__main__':
    main()
