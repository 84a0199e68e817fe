# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Property tests: decoders never crash or return garbage; the binner accounts for every event."""
from hybrid_pose_ros.events.binning import EventBinner
from hybrid_pose_ros.events.event_array import EVENT_DTYPE, make_events
from hybrid_pose_ros.ros.codecs import (
    CodecError, decode_event_array, decode_event_packet, decode_mono_events,
    decode_packet_events, encode_event_array, encode_event_packet, encode_mono_events,
    event_array_msg_to_events)
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)
_frame_ids = st.text(st.characters(codec='utf-8', exclude_characters='\x00'), max_size=9)

_events_strategy = st.lists(
    st.tuples(st.integers(-2**40, 2**40), st.integers(0, 345), st.integers(0, 259),
              st.integers(0, 1)),
    max_size=12).map(
        lambda rows: make_events(*(np.array(c, dtype=np.int64) for c in zip(*rows)))
        if rows else np.empty(0, dtype=EVENT_DTYPE))


def _array_message(events, frame_id):
    """Serialise events as an EventArray."""
    return encode_event_array(123, frame_id, 260, 346, events)


def _mono_message(events, frame_id):
    """Serialise events as a mono EventPacket (times shifted into the mono range)."""
    events = events.copy()
    events['t'] = np.arange(len(events)) * 7
    return encode_event_packet(5, frame_id, 260, 346, 1, 0, 'mono',
                               encode_mono_events(events, 0))


@st.composite
def _mutated(draw, encoder):
    """Draw a valid message, then truncate it, extend it or overwrite some bytes."""
    data = bytearray(encoder(draw(_events_strategy), draw(_frame_ids)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(['set', 'truncate', 'append']))
        if kind == 'set' and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == 'truncate':
            data = data[:draw(st.integers(0, len(data)))]
        else:
            data += draw(st.binary(max_size=12))
    return bytes(data)


def _check_events(events, height, width):
    """Invariants of any decoded event array."""
    assert events.dtype == EVENT_DTYPE
    assert set(np.unique(events['p']).tolist()) <= {0, 1}
    if len(events) and height and width:
        assert events['x'].max() < width and events['y'].max() < height


def _check_array(data):
    """Decode an EventArray or get CodecError; check sizes and invariants."""
    try:
        decoded = decode_event_array(data)
    except CodecError:
        return None
    n = len(decoded.events)
    assert len(data) >= 4 + 28 + (16 * n - 3 if n else 0)
    _check_events(decoded.events, decoded.height, decoded.width)
    return decoded


@SETTINGS
@given(st.one_of(st.binary(max_size=120), _mutated(_array_message)))
def test_event_array_decoder_total(data):
    _check_array(data)


@SETTINGS
@given(st.one_of(st.binary(max_size=120), _mutated(_mono_message)))
def test_event_packet_decoder_total(data):
    try:
        packet = decode_event_packet(data)
        events = decode_packet_events(packet)
    except CodecError:
        return
    assert len(events) * 8 == len(packet.events) <= len(data)
    assert events.dtype == EVENT_DTYPE
    _check_events(events, packet.height, packet.width)


@SETTINGS
@given(st.binary(max_size=80), st.integers(0, 2**64 - 1))
def test_mono_decoder_total(payload, time_base):
    try:
        events = decode_mono_events(payload, time_base)
    except CodecError:
        assert len(payload) % 8 or time_base > 2**64 - 2**32
        return
    assert len(events) * 8 == len(payload)
    assert (events['t'] >= time_base // 1000).all()
    assert (events['y'] < 2**15).all()
    _check_events(events, 0, 0)


@SETTINGS
@given(_events_strategy, _frame_ids)
def test_event_array_round_trip(events, frame_id):
    events = events[(events['t'] > -2**31 * 10**6) & (events['t'] < 2**31 * 10**6)]
    decoded = decode_event_array(encode_event_array(-7, frame_id, 260, 346, events))
    assert decoded.events.tobytes() == events.tobytes()
    assert (decoded.frame_id, decoded.stamp_ns) == (frame_id, -7)


@SETTINGS
@given(st.lists(_mutated(_array_message), min_size=1, max_size=6))
def test_event_array_decoder_agrees_with_rclpy(messages):
    serialization = pytest.importorskip('rclpy.serialization')
    dvs_msgs = pytest.importorskip('dvs_msgs.msg')
    for data in messages:
        decoded = _check_array(data)
        if decoded is not None:
            typed = serialization.deserialize_message(data, dvs_msgs.EventArray)
            assert event_array_msg_to_events(typed).tobytes() == decoded.events.tobytes()
            assert (typed.header.frame_id, typed.height, typed.width) == (
                decoded.frame_id, decoded.height, decoded.width)


_message_strategy = st.lists(st.integers(0, 60_000), max_size=15).map(
    lambda t: make_events(np.array(t, dtype=np.int64), np.zeros(len(t)), np.zeros(len(t)),
                          np.arange(len(t)) % 2))


@SETTINGS
@given(st.lists(st.tuples(_message_strategy, st.sampled_from([0, 0, 0, 5_000_000])),
                max_size=8),
       st.integers(1, 8), st.integers(0, 3))
def test_binner_accounts_for_every_event(messages, max_pending, max_empty):
    binner = EventBinner(1000, history_events=20, max_pending_events=max_pending,
                         reset_threshold_us=2_000_000, max_empty_bins=max_empty)
    previous_end = None
    for events, offset in messages:
        events = events.copy()
        events['t'] += offset
        for completed in binner.push(events):
            t = completed.events['t']
            assert completed.end_us - completed.start_us == 1000
            assert completed.start_us % 1000 == 0
            assert ((t >= completed.start_us) & (t < completed.end_us)).all()
            assert (np.diff(t) >= 0).all()
            if previous_end is not None and not completed.reset_before:
                assert completed.start_us >= previous_end
                assert completed.gap_before == (completed.start_us > previous_end)
            previous_end = completed.end_us
    c = binner.counters
    assert c.events_in == sum(len(events) for events, _ in messages)
    assert c.events_in == (c.events_binned + c.late_dropped + c.reset_dropped
                           + c.overflow_dropped + binner.pending_count)
    assert binner.pending_count <= max_pending
