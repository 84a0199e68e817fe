# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
EventPacket evt3 / libcaer_cmp through event_camera_py, which has no wheel here.

The startup error without it is tested for real; the decoding path only against a stand-in
with event_camera_py's documented interface (decode_bytes, get_cd_events, get_start_time).
"""
import subprocess
import sys
import types

from helpers.streams import small_checkpoint
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.ros import codecs
import numpy as np
import pytest

CD_DTYPE = np.dtype({'names': ['x', 'y', 'p', 't'], 'formats': ['<u2', '<u2', 'i1', '<i4'],
                     'offsets': [0, 2, 4, 8], 'itemsize': 12})


class StandInDecoder:
    """Returns the CD events queued in ``batches``, one batch per decode call."""

    batches: list[np.ndarray] = []
    start_ns = 0

    def __init__(self) -> None:
        self.calls = []
        self.pending = np.empty(0, dtype=CD_DTYPE)

    def decode_bytes(self, encoding, width, height, time_base, payload) -> None:
        self.calls.append((encoding, width, height, time_base, payload))
        self.pending = self.batches.pop(0)

    def get_cd_events(self) -> np.ndarray:
        events, self.pending = self.pending, np.empty(0, dtype=CD_DTYPE)
        return events

    def get_start_time(self) -> int:
        return self.start_ns


def cd_events(t: list[int]) -> np.ndarray:
    events = np.zeros(len(t), dtype=CD_DTYPE)
    events['t'] = np.array(t, dtype=np.int64).astype(np.int32)   # int32 wraps, as in C++
    events['x'], events['y'], events['p'] = 7, 9, 1
    return events


def packet(encoding: str, stamp_ns: int) -> bytes:
    return codecs.encode_event_packet(stamp_ns, 'cam', 720, 1280, 0, 0, encoding, b'\x01\x02')


@pytest.fixture
def stand_in(monkeypatch):
    module = types.ModuleType('event_camera_py')
    module.Decoder = StandInDecoder
    monkeypatch.setitem(sys.modules, 'event_camera_py', module)
    StandInDecoder.batches, StandInDecoder.start_ns = [], 0
    return module


def test_without_event_camera_py_non_mono_packets_are_dropped_with_a_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, 'event_camera_py', None)   # import fails
    assert codecs.load_event_camera_py() is None
    for use, hint in ((True, codecs.EVENT_CAMERA_PY_INSTALL), (False, 'packet_encoding')):
        with pytest.raises(codecs.UnsupportedEncodingError,
                           match="unsupported EventPacket encoding 'evt3'; supported: mono") as e:
            codecs.PacketDecoder(use)(packet('evt3', 10**9))
        assert hint in str(e.value)
    mono = np.zeros(3, dtype=EVENT_DTYPE)
    mono['t'] = [5, 6, 7]
    data = codecs.encode_event_packet(0, 'cam', 260, 346, 0, 0, 'mono',
                                      codecs.encode_mono_events(mono, 0))
    np.testing.assert_array_equal(codecs.PacketDecoder(True)(data)[1], mono)


def test_evt3_without_an_epoch_starts_at_the_header_stamp_and_unwraps_int32(stand_in):
    StandInDecoder.batches = [cd_events([100, 2**31 - 10]), cd_events([2**31 + 5, 2**32 + 3])]
    decoder = codecs.PacketDecoder(True)
    first, events = decoder(packet('evt3', 5_000_000_000))
    assert first.encoding == 'evt3'
    _, more = decoder(packet('evt3', 6_000_000_000))
    t = np.concatenate([events['t'], more['t']])
    np.testing.assert_array_equal(t - t[0], [0, 2**31 - 110, 2**31 - 95, 2**32 - 97])
    assert t[0] == 5_000_000   # the first packet's header stamp, in us
    assert events.dtype == EVENT_DTYPE and events['x'][0] == 7 and events['p'][0] == 1
    assert decoder.event_camera_py.decoder.calls[0] == ('evt3', 1280, 720, 0, b'\x01\x02')


def test_libcaer_cmp_uses_the_decoders_start_time(stand_in):
    StandInDecoder.batches, StandInDecoder.start_ns = [cd_events([0, 250])], 1_700 * 10**9
    _, events = codecs.PacketDecoder(True)(packet('libcaer_cmp', 10**9))
    np.testing.assert_array_equal(events['t'], [1_700 * 10**6, 1_700 * 10**6 + 250])


@pytest.mark.ros
def test_node_stops_at_startup_when_evt3_is_asked_for_without_event_camera_py(tmp_path,
                                                                              ros_env):
    pytest.importorskip('rclpy')
    if codecs.load_event_camera_py() is not None:
        pytest.skip('event_camera_py is installed here')
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint)
    result = subprocess.run(
        [sys.executable, '-m', 'hybrid_pose_ros.ros.node', '--ros-args', '-p',
         f'checkpoint:={checkpoint}', '-p', 'threads:=1', '-p', 'packet_encoding:=evt3'],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert result.returncode == 2, result.stdout
    assert ('hybrid_pose_node: packet_encoding evt3 needs event_camera_py, which is not '
            'installed; install it with `apt install ros-$ROS_DISTRO-event-camera-py`'
            in result.stdout)
    assert 'Traceback' not in result.stdout
