# Copyright 2026 hybrid_pose_ros maintainers. MIT License.  # noqa: A005 (name from the design)
"""
Numpy codecs for event messages as raw CDR bytes (``create_subscription(..., raw=True)``).

The node's ``geometry_msgs/PoseArray`` output is serialised here too
(:func:`encode_pose_array`).

Supported: ``dvs_msgs/EventArray`` and ``event_camera_msgs/EventPacket`` (payload encoding
``mono``) in XCDR1 little-endian, the layout rmw_fastrtps and rmw_cyclonedds produce: a 4-byte
encapsulation header ``00 01 xx xx`` (the two option bytes are ignored), then the message with
every primitive aligned to its size (8-byte values to 8) relative to the byte after the header.

``dvs_msgs/Event`` is ``{uint16 x, uint16 y, int32 sec, uint32 nanosec, bool polarity}``. With
the sequence length at a 4-aligned offset, event 0 is 13 bytes (x@0, y@2, sec@4, nanosec@8,
polarity@12) and every later event ``k`` starts at ``16 * k - 2`` and has x@0, y@2, two pad
bytes, sec@6, nanosec@10, polarity@14 and one pad byte, except that the last event has no
trailing pad: ``n`` events take ``16 * n - 3`` bytes. Fast CDR leaves pad bytes uninitialised, so
they are never read. Event times become microseconds: ``t = sec * 10**6 + nanosec // 1000``.
Like rclpy, any nonzero ``bool`` byte reads as true.

Decoders raise :class:`CodecError` (a ValueError) for anything malformed and never return a
partial result. At most 7 trailing bytes (alignment padding) are accepted after a message.
This module imports only numpy and the event core; the typed-message helpers import rclpy and
the message packages lazily.

EventPacket encodings ``evt3`` and ``libcaer_cmp`` are decoded by ``event_camera_py`` (the
ros-event-camera pybind11 decoder, ``apt install ros-$ROS_DISTRO-event-camera-py``) where it is
installed, through :class:`EventCameraPyDecoder`; that path is not tested against the real
library here (it has no wheel), only against a stand-in with its documented interface.
"""
from dataclasses import dataclass
import functools
import struct
from typing import Any, Union

from hybrid_pose_ros.events.event_array import EVENT_DTYPE
import numpy as np

BytesLike = Union[bytes, bytearray, memoryview]

CDR_LE_HEADER = b'\x00\x01\x00\x00'
SUPPORTED_ENCODINGS = ('mono',)
EVENT_CAMERA_PY_ENCODINGS = ('evt3', 'libcaer_cmp')
EVENT_CAMERA_PY_INSTALL = 'apt install ros-$ROS_DISTRO-event-camera-py'
MAX_TRAILING_BYTES = 7

# dvs_msgs/Event records inside a serialised EventArray; see the module docstring
_EVENT0_DTYPE = np.dtype({
    'names': ['x', 'y', 'sec', 'nsec', 'p'],
    'formats': ['<u2', '<u2', '<i4', '<u4', 'u1'],
    'offsets': [0, 2, 4, 8, 12], 'itemsize': 13})
_EVENT_DTYPE_K = np.dtype({
    'names': ['x', 'y', 'sec', 'nsec', 'p'],
    'formats': ['<u2', '<u2', '<i4', '<u4', 'u1'],
    'offsets': [0, 2, 6, 10, 14], 'itemsize': 15})
_EVENT_STRIDE = 16

_INT32_RANGE = (-2**31, 2**31 - 1)
_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1


class CodecError(ValueError):
    """Raised by the decoders for malformed or unsupported input."""


class UnsupportedEncodingError(CodecError):
    """Raised for an EventPacket encoding this module cannot decode."""


@dataclass(frozen=True)
class DecodedEventArray:
    """A decoded ``dvs_msgs/EventArray``; ``events`` has :data:`EVENT_DTYPE`."""

    stamp_sec: int
    stamp_nanosec: int
    frame_id: str
    height: int
    width: int
    events: np.ndarray

    @property
    def stamp_ns(self) -> int:
        """Header stamp in nanoseconds."""
        return self.stamp_sec * 1_000_000_000 + self.stamp_nanosec


@dataclass(frozen=True)
class DecodedEventPacket:
    """A decoded ``event_camera_msgs/EventPacket``; ``events`` is the uint8 payload (a view)."""

    stamp_sec: int
    stamp_nanosec: int
    frame_id: str
    height: int
    width: int
    seq: int
    time_base: int
    encoding: str
    is_bigendian: bool
    events: np.ndarray

    @property
    def stamp_ns(self) -> int:
        """Header stamp in nanoseconds."""
        return self.stamp_sec * 1_000_000_000 + self.stamp_nanosec


class _Reader:
    """Bounds-checked XCDR1 little-endian reader over a byte buffer."""

    def __init__(self, data: BytesLike, type_name: str) -> None:
        try:
            self.buf = memoryview(data).cast('B')
        except TypeError as exc:
            raise CodecError(f'{type_name}: expected a bytes-like object: {exc}') from None
        self.type_name = type_name
        if len(self.buf) < 4:
            raise CodecError(
                f'{type_name}: {len(self.buf)} bytes, too short for the CDR encapsulation header')
        if bytes(self.buf[:2]) != CDR_LE_HEADER[:2]:
            raise CodecError(
                f'{type_name}: encapsulation header {bytes(self.buf[:4]).hex(" ")} is not '
                f'CDR little-endian ({CDR_LE_HEADER.hex(" ")})')
        self.pos = 4

    @property
    def remaining(self) -> int:
        """Bytes left after the read position."""
        return len(self.buf) - self.pos

    def align(self, size: int) -> None:
        """Skip padding up to a multiple of ``size`` relative to the message body."""
        self.pos += (-(self.pos - 4)) % size

    def take(self, size: int, what: str) -> int:
        """Reserve ``size`` bytes for field ``what`` and return their offset."""
        if size > self.remaining:
            raise CodecError(
                f'{self.type_name}: truncated at {what}: needs {size} bytes at offset '
                f'{self.pos}, only {max(self.remaining, 0)} left')
        offset = self.pos
        self.pos += size
        return offset

    def unpack(self, fmt: str, what: str) -> int:
        """Read one aligned little-endian primitive (``struct`` format without ``<``)."""
        size = struct.calcsize(fmt)
        self.align(size)
        return struct.unpack_from('<' + fmt, self.buf, self.take(size, what))[0]

    def stamp(self) -> tuple[int, int]:
        """Read a ``std_msgs/Header`` stamp: ``(sec, nanosec)``."""
        return self.unpack('i', 'header.stamp.sec'), self.unpack('I', 'header.stamp.nanosec')

    def boolean(self, what: str) -> bool:
        """Read a bool (any nonzero byte is true, as in rclpy)."""
        return self.buf[self.take(1, what)] != 0

    def string(self, what: str) -> str:
        """Read a CDR string: uint32 length including the NUL, the bytes, the NUL."""
        length = self.unpack('I', f'{what} length')
        if length == 0:
            return ''
        offset = self.take(length, what)
        raw = bytes(self.buf[offset:offset + length])
        if raw[-1] != 0:
            raise CodecError(f'{self.type_name}: {what} is not NUL-terminated')
        if 0 in raw[:-1]:
            raise CodecError(f'{self.type_name}: {what} contains an embedded NUL')
        try:
            return raw[:-1].decode('utf-8')
        except UnicodeDecodeError as exc:
            raise CodecError(f'{self.type_name}: {what} is not valid UTF-8: {exc}') from None

    def sequence_length(self, item_bytes: int, what: str) -> int:
        """Read a sequence length and check that ``item_bytes`` each fit in what is left."""
        n = self.unpack('I', f'{what} length')
        if n * item_bytes > self.remaining:
            raise CodecError(
                f'{self.type_name}: {what} length {n} needs at least {n * item_bytes} bytes, '
                f'only {self.remaining} left')
        return n

    def finish(self) -> None:
        """Reject trailing data beyond alignment padding."""
        if self.remaining > MAX_TRAILING_BYTES:
            raise CodecError(
                f'{self.type_name}: {self.remaining} unexpected bytes after the message '
                '(wrong message type?)')


def _check_bounds(events: np.ndarray, height: int, width: int, type_name: str) -> None:
    """Raise CodecError if an event lies outside a nonzero ``width x height``."""
    if len(events) == 0 or height == 0 or width == 0:
        return
    max_x, max_y = int(events['x'].max()), int(events['y'].max())
    if max_x >= width or max_y >= height:
        raise CodecError(
            f'{type_name}: event at x={max_x} or y={max_y} outside the {width}x{height} sensor')


def decode_event_array(data: BytesLike, check_bounds: bool = True) -> DecodedEventArray:
    """
    Decode a serialised ``dvs_msgs/EventArray`` into :data:`EVENT_DTYPE` events.

    With ``check_bounds`` (and a nonzero width and height) an event outside the sensor raises
    :class:`CodecError`.
    """
    type_name = 'dvs_msgs/EventArray'
    reader = _Reader(data, type_name)
    sec, nanosec = reader.stamp()
    frame_id = reader.string('header.frame_id')
    height = reader.unpack('I', 'height')
    width = reader.unpack('I', 'width')
    n = reader.sequence_length(_EVENT0_DTYPE.itemsize, 'events')
    # the last event has no trailing pad byte: n events take 16 n - 3 bytes
    base = reader.take(_EVENT_STRIDE * n - 3 if n else 0, 'events')
    reader.finish()
    events = np.empty(n, dtype=EVENT_DTYPE)
    if n:
        parts = [np.ndarray((1,), _EVENT0_DTYPE, reader.buf, base)]
        if n > 1:
            parts.append(np.ndarray((n - 1,), _EVENT_DTYPE_K, reader.buf, base + 14,
                                    (_EVENT_STRIDE,)))
        start = 0
        for part in parts:
            out = events[start:start + len(part)]
            out['t'] = part['sec'].astype(np.int64) * 1_000_000 + part['nsec'] // 1000
            out['x'] = part['x']
            out['y'] = part['y']
            out['p'] = part['p'] != 0
            start += len(part)
    if check_bounds:
        _check_bounds(events, height, width, type_name)
    return DecodedEventArray(sec, nanosec, frame_id, height, width, events)


def header_stamp_ns(data: BytesLike, type_name: str) -> int:
    """Return the header stamp (ns) of a serialised message that starts with a Header."""
    sec, nanosec = _Reader(data, type_name).stamp()
    return sec * 1_000_000_000 + nanosec


def _split_stamp(stamp_ns: int) -> tuple[int, int]:
    """Split a nanosecond stamp into (int32 sec, uint32 nanosec)."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    if not _INT32_RANGE[0] <= sec <= _INT32_RANGE[1]:
        raise ValueError(f'stamp {stamp_ns} ns does not fit builtin_interfaces/Time')
    return sec, nanosec


def _check_u32(**values: int) -> None:
    """Raise ValueError unless every value fits a uint32."""
    for name, value in values.items():
        if not 0 <= value <= _UINT32_MAX:
            raise ValueError(f'{name}={value} does not fit a uint32')


class _Writer:
    """XCDR1 little-endian writer (header fields only; payloads are appended as bytes)."""

    def __init__(self) -> None:
        self.parts = [CDR_LE_HEADER]
        self.size = 0  # bytes after the encapsulation header

    def pack(self, fmt: str, value: Any) -> None:
        """Append one aligned primitive."""
        size = struct.calcsize(fmt)
        self.raw(bytes((-self.size) % size))
        self.raw(struct.pack('<' + fmt, value))

    def raw(self, data: bytes) -> None:
        """Append bytes as they are."""
        self.parts.append(data)
        self.size += len(data)

    def string(self, value: str) -> None:
        """Append a CDR string."""
        encoded = value.encode('utf-8') + b'\0'
        if 0 in encoded[:-1]:
            raise ValueError('strings must not contain NUL characters')
        self.pack('I', len(encoded))
        self.raw(encoded)

    def header(self, stamp_ns: int, frame_id: str) -> None:
        """Append a std_msgs/Header."""
        sec, nanosec = _split_stamp(stamp_ns)
        self.pack('i', sec)
        self.pack('I', nanosec)
        self.string(frame_id)

    def tobytes(self) -> bytes:
        """Return the serialised message."""
        return b''.join(self.parts)


def _check_event_dtype(events: np.ndarray) -> None:
    """Raise ValueError unless ``events`` has EVENT_DTYPE and polarities 0/1."""
    if events.dtype != EVENT_DTYPE:
        raise ValueError(f'expected EVENT_DTYPE events, got {events.dtype}')
    if len(events) and int(events['p'].max()) > 1:
        raise ValueError('polarity must be 0 or 1')


def encode_event_array(
        stamp_ns: int, frame_id: str, height: int, width: int, events: np.ndarray) -> bytes:
    """Serialise a ``dvs_msgs/EventArray`` (pad bytes zeroed) that rclpy can deserialise."""
    _check_event_dtype(events)
    _check_u32(height=height, width=width, events=len(events))
    n = len(events)
    sec = np.floor_divide(events['t'], 1_000_000)
    if n and (int(sec.min()) < _INT32_RANGE[0] or int(sec.max()) > _INT32_RANGE[1]):
        raise ValueError('event times do not fit builtin_interfaces/Time (int32 seconds)')
    nanosec = (events['t'] - sec * 1_000_000) * 1000
    writer = _Writer()
    writer.header(stamp_ns, frame_id)
    writer.pack('I', height)
    writer.pack('I', width)
    writer.pack('I', n)
    body = np.zeros(_EVENT_STRIDE * n - 3 if n else 0, dtype=np.uint8)
    if n:
        parts = [np.ndarray((1,), _EVENT0_DTYPE, body, 0)]
        if n > 1:
            parts.append(np.ndarray((n - 1,), _EVENT_DTYPE_K, body, 14, (_EVENT_STRIDE,)))
        start = 0
        for part in parts:
            stop = start + len(part)
            part['x'] = events['x'][start:stop]
            part['y'] = events['y'][start:stop]
            part['sec'] = sec[start:stop]
            part['nsec'] = nanosec[start:stop]
            part['p'] = events['p'][start:stop]
            start = stop
    writer.raw(body.tobytes())
    return writer.tobytes()


def encode_pose_array(stamp_ns: int, frame_id: str, poses: np.ndarray) -> bytes:
    """
    Serialise a ``geometry_msgs/PoseArray`` from ``poses [N, 7]`` (float64).

    Each row is position x, y, z, then the orientation quaternion x, y, z, w, the order of the
    message's fields. The layout is rclpy's ``serialize_message`` of the same message (pad bytes
    zeroed); publishing the bytes skips building N Pose objects in Python, which the node would
    otherwise do at the SNN rate.
    """
    poses = np.ascontiguousarray(poses, dtype='<f8')
    if poses.ndim != 2 or poses.shape[1] != 7:
        raise ValueError(f'poses must be [N, 7] (position xyz, quaternion xyzw), got '
                         f'{poses.shape}')
    return b''.join((CDR_LE_HEADER, _STAMP.pack(*_split_stamp(stamp_ns)),
                     _pose_array_middle(frame_id, len(poses)), poses.tobytes()))


_STAMP = struct.Struct('<iI')


@functools.lru_cache(maxsize=16)
def _pose_array_middle(frame_id: str, count: int) -> bytes:
    """Return a PoseArray's bytes between its stamp and its poses (the same for every pose)."""
    writer = _Writer()
    writer.header(0, frame_id)
    writer.pack('I', count)
    if count:
        writer.raw(bytes((-writer.size) % 8))
    return writer.tobytes()[len(CDR_LE_HEADER) + _STAMP.size:]


def decode_event_packet(data: BytesLike) -> DecodedEventPacket:
    """Decode a serialised ``event_camera_msgs/EventPacket``; the payload stays encoded."""
    reader = _Reader(data, 'event_camera_msgs/EventPacket')
    sec, nanosec = reader.stamp()
    frame_id = reader.string('header.frame_id')
    height = reader.unpack('I', 'height')
    width = reader.unpack('I', 'width')
    seq = reader.unpack('Q', 'seq')
    time_base = reader.unpack('Q', 'time_base')
    encoding = reader.string('encoding')
    is_bigendian = reader.boolean('is_bigendian')
    n = reader.sequence_length(1, 'events')
    offset = reader.take(n, 'events')
    reader.finish()
    payload = np.frombuffer(reader.buf, dtype=np.uint8, count=n, offset=offset)
    return DecodedEventPacket(sec, nanosec, frame_id, height, width, seq, time_base, encoding,
                              is_bigendian, payload)


def encode_event_packet(
        stamp_ns: int, frame_id: str, height: int, width: int, seq: int, time_base: int,
        encoding: str, payload: BytesLike, is_bigendian: bool = False) -> bytes:
    """Serialise an ``event_camera_msgs/EventPacket`` around an already encoded payload."""
    payload = bytes(memoryview(payload).cast('B'))
    _check_u32(height=height, width=width, payload=len(payload))
    for name, value in (('seq', seq), ('time_base', time_base)):
        if not 0 <= value <= _UINT64_MAX:
            raise ValueError(f'{name}={value} does not fit a uint64')
    writer = _Writer()
    writer.header(stamp_ns, frame_id)
    writer.pack('I', height)
    writer.pack('I', width)
    writer.pack('Q', seq)
    writer.pack('Q', time_base)
    writer.string(encoding)
    writer.pack('?', bool(is_bigendian))
    writer.pack('I', len(payload))
    writer.raw(payload)
    return writer.tobytes()


def decode_mono_events(payload: Union[np.ndarray, BytesLike], time_base: int) -> np.ndarray:
    """
    Decode a little-endian ``mono`` payload into :data:`EVENT_DTYPE` events (t in us).

    Each 64-bit word holds ``dt = w & 0xFFFFFFFF`` (ns after ``time_base``),
    ``x = (w >> 32) & 0xFFFF``, ``y = (w >> 48) & 0x7FFF`` and ``p = w >> 63``;
    ``t = (time_base + dt) // 1000`` microseconds.
    """
    raw = payload if isinstance(payload, np.ndarray) else np.frombuffer(payload, dtype=np.uint8)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CodecError(f'mono payload must be a 1-D uint8 buffer, got {raw.dtype} {raw.shape}')
    if len(raw) % 8:
        raise CodecError(f'mono payload of {len(raw)} bytes is not a multiple of 8')
    if not 0 <= time_base <= _UINT64_MAX:
        raise CodecError(f'time_base {time_base} does not fit a uint64')
    words = np.ascontiguousarray(raw).view('<u8')
    events = np.empty(len(words), dtype=EVENT_DTYPE)
    if len(words) == 0:
        return events
    dt = words & np.uint64(0xFFFFFFFF)
    if time_base + int(dt.max()) > _UINT64_MAX:
        raise CodecError(f'time_base {time_base} + event time overflows uint64 nanoseconds')
    events['t'] = (np.uint64(time_base) + dt) // np.uint64(1000)
    events['x'] = (words >> np.uint64(32)) & np.uint64(0xFFFF)
    events['y'] = (words >> np.uint64(48)) & np.uint64(0x7FFF)
    events['p'] = words >> np.uint64(63)
    return events


def encode_mono_events(events: np.ndarray, time_base: int) -> bytes:
    """
    Encode events as a ``mono`` payload relative to ``time_base`` (ns).

    Each event's ``t * 1000 - time_base`` must lie in ``[0, 2**32)`` ns (about 4.29 s) and
    ``y`` must be below 32768.
    """
    _check_event_dtype(events)
    if not 0 <= time_base < 2**63:
        raise ValueError(f'time_base {time_base} must lie in [0, 2**63) ns')
    if len(events) == 0:
        return b''
    t = events['t']
    if int(t.min()) < 0 or int(t.max()) >= 2**63 // 1000:
        raise ValueError('event times must lie in [0, 2**63) ns')
    dt = t * 1000 - time_base
    if int(dt.min()) < 0 or int(dt.max()) > _UINT32_MAX:
        raise ValueError('event times must lie in [time_base, time_base + 2**32) ns')
    if int(events['y'].max()) > 0x7FFF:
        raise ValueError('mono encodes y in 15 bits: y must be below 32768')
    words = (dt.astype(np.uint64)
             | (events['x'].astype(np.uint64) << np.uint64(32))
             | (events['y'].astype(np.uint64) << np.uint64(48))
             | (events['p'].astype(np.uint64) << np.uint64(63)))
    return words.astype('<u8').tobytes()


def decode_packet_events(packet: DecodedEventPacket, check_bounds: bool = True) -> np.ndarray:
    """
    Decode a packet's payload into events; only ``mono`` is supported.

    Raises :class:`UnsupportedEncodingError` for other encodings and :class:`CodecError` for a
    big-endian packet or (with ``check_bounds``) an event outside a nonzero width x height.
    """
    if packet.encoding not in SUPPORTED_ENCODINGS:
        raise UnsupportedEncodingError(
            f'unsupported EventPacket encoding {packet.encoding!r}; supported: '
            f'{", ".join(SUPPORTED_ENCODINGS)}')
    if packet.is_bigendian:
        raise CodecError('big-endian mono EventPackets are not supported')
    events = decode_mono_events(packet.events, packet.time_base)
    if check_bounds:
        _check_bounds(events, packet.height, packet.width, 'event_camera_msgs/EventPacket')
    return events


def event_array_msg_to_events(msg: Any) -> np.ndarray:
    """Convert a typed ``dvs_msgs.msg.EventArray`` to events (the slow per-object path)."""
    fields = np.fromiter(
        ((e.ts.sec, e.ts.nanosec, e.x, e.y, e.polarity) for e in msg.events),
        dtype=[('sec', '<i8'), ('nsec', '<i8'), ('x', '<u2'), ('y', '<u2'), ('p', 'u1')],
        count=len(msg.events))
    events = np.empty(len(fields), dtype=EVENT_DTYPE)
    events['t'] = fields['sec'] * 1_000_000 + fields['nsec'] // 1000
    events['x'] = fields['x']
    events['y'] = fields['y']
    events['p'] = fields['p']
    return events


def event_packet_msg_to_events(msg: Any) -> np.ndarray:
    """Convert a typed ``event_camera_msgs.msg.EventPacket`` (``mono``) to events."""
    packet = DecodedEventPacket(
        msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id, msg.height,
        msg.width, msg.seq, msg.time_base, msg.encoding, msg.is_bigendian,
        np.frombuffer(msg.events, dtype=np.uint8))
    return decode_packet_events(packet, check_bounds=False)


def typed_decode_event_array(data: BytesLike) -> np.ndarray:
    """Deserialise with rclpy into a typed message, then convert (reference and benchmark)."""
    from dvs_msgs.msg import EventArray
    from rclpy.serialization import deserialize_message
    return event_array_msg_to_events(deserialize_message(bytes(data), EventArray))


def typed_decode_event_packet(data: BytesLike) -> np.ndarray:
    """Deserialise an EventPacket with rclpy, then decode its ``mono`` payload."""
    from event_camera_msgs.msg import EventPacket
    from rclpy.serialization import deserialize_message
    return event_packet_msg_to_events(deserialize_message(bytes(data), EventPacket))


def load_event_camera_py() -> Any:
    """Return the ``event_camera_py`` module, or None where it is not installed."""
    try:
        import event_camera_py
    except ImportError:
        return None
    return event_camera_py


class EventCameraPyDecoder:
    """
    Decode ``evt3`` and ``libcaer_cmp`` payloads of one stream with ``event_camera_py``.

    Untested against the real library here. The decoder is stateful (evt3 carries time across
    packets), so one instance serves one stream and sees every packet in order. It is fed the
    payload with ``decode_bytes(encoding, width, height, time_base, payload)``, so no typed
    message is needed; ``get_cd_events()`` returns x, y, p and t, an int32 in microseconds
    relative to the decoder's start that wraps after 2**31 us (about 35 min), which is unwrapped
    here. Absolute time: where ``get_start_time()`` is nonzero (libcaer devices: nanoseconds
    since the epoch of sensor time 0) event time is start time + t, the sensor's own clock;
    otherwise (evt3: sensor time without an epoch) the first decoded event is placed at the
    header stamp of its packet and later events keep their sensor-time spacing from it.
    """

    def __init__(self, module: Any) -> None:
        self.decoder = module.Decoder()
        self.offset_us: int | None = None
        self.last_raw = 0
        self.unwrap_us = 0

    def decode(self, packet: DecodedEventPacket) -> np.ndarray:
        """Decode one packet into :data:`EVENT_DTYPE` events with absolute times in us."""
        self.decoder.decode_bytes(packet.encoding, packet.width, packet.height,
                                  packet.time_base, packet.events.tobytes())
        cd = self.decoder.get_cd_events()
        events = np.empty(len(cd), dtype=EVENT_DTYPE)
        if len(cd) == 0:
            return events
        raw = cd['t'].astype(np.int64) & 0xFFFFFFFF
        wraps = np.cumsum(np.diff(raw, prepend=self.last_raw) < -2**31)
        t = raw + self.unwrap_us + wraps * 2**32
        self.last_raw, self.unwrap_us = int(raw[-1]), int(t[-1] - raw[-1])
        if self.offset_us is None:
            start_ns = int(self.decoder.get_start_time())
            self.offset_us = start_ns // 1000 if start_ns else packet.stamp_ns // 1000 - int(t[0])
        events['t'] = t + self.offset_us
        events['x'], events['y'], events['p'] = cd['x'], cd['y'], cd['p'] > 0
        return events


class PacketDecoder:
    """
    Decode raw EventPacket messages of one stream: ``(DecodedEventPacket, events)``.

    ``mono`` is decoded with numpy; with ``use_event_camera_py`` and the module installed,
    ``evt3`` and ``libcaer_cmp`` go through :class:`EventCameraPyDecoder`. Other packets raise
    :class:`UnsupportedEncodingError` with a hint on how to decode them.
    """

    def __init__(self, use_event_camera_py: bool) -> None:
        module = load_event_camera_py() if use_event_camera_py else None
        self.event_camera_py = None if module is None else EventCameraPyDecoder(module)
        self.hint = (
            f' (evt3 and libcaer_cmp need event_camera_py: {EVENT_CAMERA_PY_INSTALL})'
            if use_event_camera_py else
            ' (for evt3 and libcaer_cmp set packet_encoding to auto and install event_camera_py)')

    def __call__(self, data: BytesLike) -> tuple[DecodedEventPacket, np.ndarray]:
        """Decode one serialised packet without bounds checks (the node screens events)."""
        packet = decode_event_packet(data)
        if self.event_camera_py is not None and packet.encoding in EVENT_CAMERA_PY_ENCODINGS:
            return packet, self.event_camera_py.decode(packet)
        try:
            return packet, decode_packet_events(packet, check_bounds=False)
        except UnsupportedEncodingError as error:
            raise UnsupportedEncodingError(f'{error}{self.hint}') from None
