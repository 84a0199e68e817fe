# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Tests for the raw CDR numpy codecs against rclpy's own serialisation."""
import struct

from hybrid_pose_ros.events.event_array import empty_events, make_events
from hybrid_pose_ros.ros.codecs import (
    CodecError, decode_event_array, decode_event_packet, decode_mono_events,
    decode_packet_events, encode_event_array, encode_event_packet, encode_mono_events,
    event_array_msg_to_events, typed_decode_event_array, typed_decode_event_packet,
    UnsupportedEncodingError)
import numpy as np
import pytest

EVENT_COUNTS = [0, 1, 2, 3, 7, 1000]


@pytest.fixture(scope='module')
def ros():
    """Return rclpy's serialisation functions and the two message classes (or skip)."""
    serialization = pytest.importorskip('rclpy.serialization')
    dvs_msgs = pytest.importorskip('dvs_msgs.msg')
    event_camera_msgs = pytest.importorskip('event_camera_msgs.msg')
    return serialization, dvs_msgs, event_camera_msgs.EventPacket


def _random_events(n, seed=0, width=346, height=260):
    """Return n random events with times spread over several seconds (incl. negative)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(-3_000_000, 2_000_000_000_000, n))
    return make_events(t, rng.integers(0, width, n), rng.integers(0, height, n),
                       rng.integers(0, 2, n))


def _typed_event_array(ros, events, frame_id='camera', stamp=(12, 345)):
    """Build a typed dvs_msgs/EventArray holding ``events``."""
    _, dvs_msgs, _ = ros
    msg = dvs_msgs.EventArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = 260, 346
    for t, x, y, p in events.tolist():
        event = dvs_msgs.Event()
        event.x, event.y, event.polarity = x, y, bool(p)
        event.ts.sec, rest = divmod(t, 1_000_000)
        event.ts.nanosec = rest * 1000 + 999  # sub-microsecond part is truncated
        msg.events.append(event)
    return msg


def _pad_offsets(data, n):
    """Return the offsets of the pad bytes of a serialised EventArray with n events."""
    (length,) = struct.unpack_from('<I', data, 12)
    string_end = 16 + length
    pads = list(range(string_end, 4 + (string_end - 4 + 3) // 4 * 4))
    base = 4 + (string_end - 4 + 3) // 4 * 4 + 12
    for k in range(n):
        if k >= 1:
            pads += [base + 16 * k + 2, base + 16 * k + 3]
        if k < n - 1:
            pads.append(base + 16 * k + 13)
    return pads


@pytest.mark.parametrize('n', EVENT_COUNTS)
@pytest.mark.parametrize('frame_id', ['', 'a', 'cam', 'camera_0'])
def test_decode_matches_rclpy(ros, n, frame_id):
    serialization, dvs_msgs, _ = ros
    events = _random_events(n, seed=n)
    data = serialization.serialize_message(_typed_event_array(ros, events, frame_id))
    pads = _pad_offsets(data, n)
    padded = bytearray(data)
    for offset in pads:
        padded[offset] = 0xFF
    typed = serialization.deserialize_message(bytes(padded), dvs_msgs.EventArray)
    assert event_array_msg_to_events(typed).tobytes() == events.tobytes()  # pads found right
    for raw in (data, bytes(padded)):
        decoded = decode_event_array(raw)
        assert decoded.events.tobytes() == events.tobytes()
        assert (decoded.stamp_sec, decoded.stamp_nanosec) == (12, 345)
        assert decoded.stamp_ns == 12_000_000_345
        assert (decoded.frame_id, decoded.height, decoded.width) == (frame_id, 260, 346)
    assert typed_decode_event_array(data).tobytes() == events.tobytes()


@pytest.mark.parametrize('n', EVENT_COUNTS)
def test_encode_accepted_by_rclpy(ros, n):
    serialization, dvs_msgs, _ = ros
    events = _random_events(n, seed=100 + n)
    data = encode_event_array(7_000_000_123, 'davis', 260, 346, events)
    msg = serialization.deserialize_message(data, dvs_msgs.EventArray)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (7, 123)
    assert (msg.header.frame_id, msg.height, msg.width) == ('davis', 260, 346)
    assert event_array_msg_to_events(msg).tobytes() == events.tobytes()
    # same bytes as rclpy's own serialisation, except pad bytes
    reference = bytearray(serialization.serialize_message(msg))
    assert len(reference) == len(data)
    mine = bytearray(data)
    for offset in _pad_offsets(data, n):
        mine[offset] = reference[offset] = 0
    assert mine == reference


def test_decode_large_message_with_bool_and_time_edge_cases(ros):
    serialization, dvs_msgs, _ = ros
    events = make_events([-1, 0, 999_999, 2**31 * 1_000_000 - 1], [0, 1, 2, 3], [4, 5, 6, 7],
                         [1, 0, 1, 0])
    data = bytearray(encode_event_array(-5, '', 8, 4, events))
    data[-1] = 7  # a nonzero bool reads as true, as in rclpy
    typed = serialization.deserialize_message(bytes(data), dvs_msgs.EventArray)
    decoded = decode_event_array(bytes(data))
    assert decoded.events['p'].tolist() == [1, 0, 1, 1]
    assert decoded.events.tobytes() == event_array_msg_to_events(typed).tobytes()
    assert (decoded.stamp_sec, decoded.stamp_nanosec) == (-1, 999_999_995)


def test_mono_round_trip():
    events = _random_events(5000, seed=5, width=1280, height=720)
    events['t'] = np.sort(np.random.default_rng(5).integers(10**12, 10**12 + 4_000_000, 5000))
    time_base = int(events['t'][0]) * 1000 - 17
    payload = encode_mono_events(events, time_base)
    assert len(payload) == 8 * len(events)
    data = encode_event_packet(99, 'prophesee', 720, 1280, 42, time_base, 'mono', payload)
    packet = decode_event_packet(data)
    assert (packet.seq, packet.time_base, packet.encoding, packet.is_bigendian) == (
        42, time_base, 'mono', False)
    assert (packet.height, packet.width, packet.frame_id, packet.stamp_ns) == (
        720, 1280, 'prophesee', 99)
    assert packet.events.tobytes() == payload
    assert decode_packet_events(packet).tobytes() == events.tobytes()
    assert decode_mono_events(payload, time_base).tobytes() == events.tobytes()


def test_mono_bit_layout():
    w = (1 << 63) | (0x7FFF << 48) | (0xFFFF << 32) | 123_456
    (event,) = decode_mono_events(struct.pack('<Q', w), 10**9).tolist()
    assert event == ((10**9 + 123_456) // 1000, 0xFFFF, 0x7FFF, 1)
    w = (5 << 48) | (3 << 32) | 999
    (event,) = decode_mono_events(struct.pack('<Q', w), 0).tolist()
    assert event == (0, 3, 5, 0)


def test_event_packet_rclpy_interop(ros):
    serialization, _, event_packet = ros
    events = _random_events(300, seed=9, width=640, height=480)
    events['t'] = np.arange(300) * 10 + 5_000_000
    payload = encode_mono_events(events, 5_000_000_000)
    for frame_id in ('', 'ab', 'abcde'):
        msg = event_packet()
        msg.header.frame_id = frame_id
        msg.height, msg.width, msg.seq, msg.time_base = 480, 640, 2**64 - 1, 5_000_000_000
        msg.encoding = 'mono'
        msg.events = payload
        data = serialization.serialize_message(msg)
        packet = decode_event_packet(data)
        assert (packet.frame_id, packet.seq) == (frame_id, 2**64 - 1)
        assert decode_packet_events(packet).tobytes() == events.tobytes()
        assert typed_decode_event_packet(data).tobytes() == events.tobytes()
        mine = encode_event_packet(0, frame_id, 480, 640, 2**64 - 1, 5_000_000_000, 'mono',
                                   payload)
        typed = serialization.deserialize_message(mine, event_packet)
        assert (typed.header.frame_id, typed.seq, typed.encoding) == (frame_id, 2**64 - 1, 'mono')
        assert bytes(typed.events) == payload


def _valid_array(n=3):
    """Return a valid serialised EventArray with n events inside a 346x260 sensor."""
    return encode_event_array(1, 'cam', 260, 346, _random_events(n))


def _valid_packet(encoding='mono', payload=b'', is_bigendian=False):
    """Return a valid serialised EventPacket."""
    return encode_event_packet(1, 'cam', 260, 346, 0, 0, encoding, payload, is_bigendian)


def test_errors_encapsulation_header():
    data = _valid_array()
    for bad in (b'', b'\x00\x01', b'\x00\x00\x00\x00' + data[4:], b'\x00\x07\x00\x00' + data[4:],
                b'\x01\x01\x00\x00' + data[4:]):
        with pytest.raises(CodecError, match='encapsulation|too short'):
            decode_event_array(bad)
    with pytest.raises(CodecError, match='bytes-like'):
        decode_event_array(12)


@pytest.mark.parametrize('decode, data', [
    (decode_event_array, _valid_array(3)),
    (decode_event_array, _valid_array(0)),
    (decode_event_packet, _valid_packet(payload=bytes(16))),
])
def test_errors_every_truncation(decode, data):
    decode(data)
    for size in range(len(data)):
        with pytest.raises(CodecError):
            decode(data[:size])


def test_errors_sequence_and_strings():
    data = bytearray(_valid_array(2))
    # frame_id 'cam': length at 12, bytes 16..19, height 20, width 24, count 28
    too_many = bytearray(data)
    struct.pack_into('<I', too_many, 28, 3)
    with pytest.raises(CodecError, match='events'):
        decode_event_array(bytes(too_many))
    struct.pack_into('<I', too_many, 28, 2**32 - 1)
    with pytest.raises(CodecError, match='length 4294967295'):
        decode_event_array(bytes(too_many))
    no_nul = bytearray(data)
    no_nul[19] = ord('x')
    with pytest.raises(CodecError, match='NUL-terminated'):
        decode_event_array(bytes(no_nul))
    embedded = bytearray(data)
    embedded[17] = 0
    with pytest.raises(CodecError, match='embedded NUL'):
        decode_event_array(bytes(embedded))
    bad_utf8 = bytearray(data)
    bad_utf8[16] = 0xFF
    with pytest.raises(CodecError, match='UTF-8'):
        decode_event_array(bytes(bad_utf8))
    huge_string = bytearray(data)
    struct.pack_into('<I', huge_string, 12, 10**9)
    with pytest.raises(CodecError, match='frame_id'):
        decode_event_array(bytes(huge_string))
    with pytest.raises(CodecError, match='unexpected bytes'):
        decode_event_array(bytes(data) + bytes(8))
    decode_event_array(bytes(data) + bytes(7))


def test_errors_out_of_bounds_events():
    events = make_events([0], [346], [0], [1])
    data = encode_event_array(0, '', 260, 346, events)
    with pytest.raises(CodecError, match='outside'):
        decode_event_array(data)
    assert decode_event_array(data, check_bounds=False).events.tobytes() == events.tobytes()
    assert len(decode_event_array(encode_event_array(0, '', 0, 0, events)).events) == 1


def test_errors_packets():
    with pytest.raises(CodecError, match='multiple of 8'):
        decode_packet_events(decode_event_packet(_valid_packet(payload=bytes(12))))
    with pytest.raises(CodecError, match='big-endian'):
        decode_packet_events(decode_event_packet(_valid_packet(payload=bytes(8),
                                                               is_bigendian=True)))
    with pytest.raises(UnsupportedEncodingError, match="'evt3'.*mono"):
        decode_packet_events(decode_event_packet(_valid_packet('evt3', bytes(8))))
    assert issubclass(UnsupportedEncodingError, CodecError)
    assert issubclass(CodecError, ValueError)
    far = struct.pack('<Q', (400 << 32) | 5)
    with pytest.raises(CodecError, match='outside'):
        decode_packet_events(decode_event_packet(_valid_packet(payload=far)))
    with pytest.raises(CodecError, match='overflows'):
        decode_mono_events(struct.pack('<Q', 0xFFFFFFFF), 2**64 - 1)
    with pytest.raises(CodecError, match='1-D uint8'):
        decode_mono_events(np.zeros(2, dtype=np.uint64), 0)


def test_encoders_validate():
    with pytest.raises(ValueError):
        encode_event_array(0, '', 1, 1, np.zeros(1, dtype=[('t', '<i8')]))
    with pytest.raises(ValueError):
        encode_event_array(0, '', 1, 1, make_events([2**31 * 1_000_000], [0], [0], [0]))
    with pytest.raises(ValueError):
        encode_event_array(0, 'a\0b', 1, 1, empty_events())
    with pytest.raises(ValueError):
        encode_mono_events(make_events([0, 5_000_000], [0, 0], [0, 0], [0, 0]), 0)
    with pytest.raises(ValueError):
        encode_mono_events(make_events([0], [0], [40_000], [0]), 0)
    with pytest.raises(ValueError):
        encode_event_packet(0, '', 1, 1, -1, 0, 'mono', b'')
