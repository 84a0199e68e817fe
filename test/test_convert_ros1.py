# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_convert ros1: a ROS 1 dvs_msgs bag becomes a ROS 2 bag with the same events."""
import pathlib

from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.convert import main
from hybrid_pose_ros.ros.interfaces import event_typestore
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

ROS1_EVENT = 'uint16 x\nuint16 y\ntime ts\nbool polarity\n'
ROS1_EVENT_ARRAY = 'Header header\nuint32 height\nuint32 width\nEvent[] events\n'
T0_S = 1_600_000_000


def ros1_messages() -> list[tuple[int, np.ndarray]]:
    """Return three (stamp_ns, events) messages of 40 events each, 33 ms apart."""
    rng = np.random.default_rng(1)
    messages = []
    for k in range(3):
        events = np.zeros(40, dtype=EVENT_DTYPE)
        events['t'] = T0_S * 1_000_000 + k * 33_000 + np.sort(rng.integers(0, 33_000, 40))
        events['x'] = rng.integers(0, 346, 40)
        events['y'] = rng.integers(0, 260, 40)
        events['p'] = rng.integers(0, 2, 40)
        messages.append(((T0_S * 1_000_000 + (k + 1) * 33_000) * 1000, events))
    return messages


def write_ros1_dvs_bag(path: pathlib.Path, topic: str = '/dvs/events') -> list[np.ndarray]:
    """Write a ROS 1 bag of dvs_msgs/EventArray (the ROS 1 definitions); return the events."""
    typestore = get_typestore(Stores.ROS1_NOETIC)
    types = get_types_from_msg(ROS1_EVENT, 'dvs_msgs/msg/Event')
    types.update(get_types_from_msg(ROS1_EVENT_ARRAY, 'dvs_msgs/msg/EventArray'))
    typestore.register(types)
    msg = typestore.types

    def time(ns: int):
        return msg['builtin_interfaces/msg/Time'](sec=ns // 10**9, nanosec=ns % 10**9)
    written = []
    with Writer(path) as writer:
        conn = writer.add_connection(topic, 'dvs_msgs/msg/EventArray', typestore=typestore)
        for seq, (stamp_ns, events) in enumerate(ros1_messages()):
            header = msg['std_msgs/msg/Header'](seq=seq, stamp=time(stamp_ns), frame_id='dvs')
            items = [msg['dvs_msgs/msg/Event'](x=int(e['x']), y=int(e['y']),
                                               ts=time(int(e['t']) * 1000),
                                               polarity=bool(e['p'])) for e in events]
            array = msg['dvs_msgs/msg/EventArray'](header=header, height=260, width=346,
                                                   events=items)
            writer.write(conn, stamp_ns, typestore.serialize_ros1(array,
                                                                  'dvs_msgs/msg/EventArray'))
            written.append(events)
    return written


def test_ros1_bag_converts_to_a_ros2_bag_with_equal_events(tmp_path, capsys):
    written = write_ros1_dvs_bag(tmp_path / 'in.bag')
    main(['ros1', str(tmp_path / 'in.bag'), str(tmp_path / 'out')])
    assert 'converted' in capsys.readouterr().out
    with AnyReader([tmp_path / 'out'], default_typestore=event_typestore()) as reader:
        assert reader.is2
        assert [(c.topic, c.msgtype) for c in reader.connections] == [
            ('/dvs/events', 'dvs_msgs/msg/EventArray')]
        decoded = [(stamp, codecs.decode_event_array(raw)) for _, stamp, raw in reader.messages()]
    assert len(decoded) == len(written)
    for (stamp, message), events, (stamp_ns, _) in zip(decoded, written, ros1_messages()):
        assert stamp == stamp_ns and message.stamp_ns == stamp_ns
        assert (message.frame_id, message.width, message.height) == ('dvs', 346, 260)
        np.testing.assert_array_equal(message.events, events)
