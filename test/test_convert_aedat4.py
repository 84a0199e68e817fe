# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_convert aedat4: a real DAVIS346 recording becomes a bag with the same events."""
from helpers import REPO_ROOT
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.convert import aedat4_to_bag, read_aedat4_events
from hybrid_pose_ros.ros.interfaces import event_typestore
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

RECORDING = REPO_ROOT.parent / 'shared' / 'data' / 'events' / 'davis346_traffic.aedat4'
pytestmark = pytest.mark.skipif(not RECORDING.exists(),
                                reason=f'shared DAVIS346 recording {RECORDING} not present')
aedat = pytest.importorskip('aedat')


def decoder_events() -> np.ndarray:
    """Return the first event stream straight from the aedat decoder."""
    decoder = aedat.Decoder(str(RECORDING))
    stream = min(i for i, s in decoder.id_to_stream().items() if s['type'] == 'events')
    return np.concatenate([p['events'] for p in decoder
                           if p['stream_id'] == stream and 'events' in p])


def bag_events(path, topic):
    with AnyReader([path], default_typestore=event_typestore()) as reader:
        return [(conn.msgtype, stamp, bytes(raw)) for conn, stamp, raw in reader.messages()
                if conn.topic == topic]


def test_davis346_recording_reads_as_346x260_time_ordered_events():
    events, width, height = read_aedat4_events(str(RECORDING))
    assert (len(events), width, height) == (78_830, 346, 260)
    assert np.all(np.diff(events['t']) >= 0)
    assert 1.5e15 < events['t'][0] < 2e15   # microseconds since the epoch, kept


@pytest.mark.parametrize('encoding', ['dvs', 'packet'])
def test_davis346_round_trip_through_the_bag_equals_the_decoder(tmp_path, encoding):
    counts = aedat4_to_bag(str(RECORDING), str(tmp_path / 'bag'), encoding, 33.3, '/dvs/events')
    messages = bag_events(tmp_path / 'bag', '/dvs/events')
    assert counts == {'/dvs/events': len(messages)} and 60 <= len(messages) <= 80
    decoded = []
    for msgtype, stamp, raw in messages:
        if encoding == 'dvs':
            assert msgtype == 'dvs_msgs/msg/EventArray'
            message = codecs.decode_event_array(raw)
            events = message.events
        else:
            assert msgtype == 'event_camera_msgs/msg/EventPacket'
            message = codecs.decode_event_packet(raw)
            assert message.encoding == 'mono'
            events = codecs.decode_packet_events(message)
        assert (message.frame_id, message.width, message.height) == ('dvs_optical_frame', 346,
                                                                     260)
        assert message.stamp_ns == stamp and len(events)
        assert stamp >= int(events['t'][-1]) * 1000
        decoded.append(events)
    merged = np.concatenate(decoded)
    reference = decoder_events()
    assert len(merged) == 78_830
    np.testing.assert_array_equal(merged['t'], reference['t'].astype(np.int64))
    np.testing.assert_array_equal(merged['x'], reference['x'])
    np.testing.assert_array_equal(merged['y'], reference['y'])
    np.testing.assert_array_equal(merged['p'], reference['on'])
