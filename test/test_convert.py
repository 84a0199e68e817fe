# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""hybrid_pose_convert: DHP19 files to a bag, and EventArray <-> EventPacket re-encoding."""
import pathlib

from helpers.streams import moving_blob_events
from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.cameras import dhp19_rig, project_dhp19
from hybrid_pose_ros.data.generate import write_rig
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.convert import dhp19_to_bag, reencode_bag
from hybrid_pose_ros.ros.interfaces import event_typestore
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
import yaml


def read_bag(path):
    with AnyReader([pathlib.Path(path)], default_typestore=event_typestore()) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


@pytest.fixture
def recording(tmp_path):
    folder = tmp_path / 'dhp19'
    folder.mkdir()
    events = moving_blob_events(duration_us=300_000, t0_us=0)
    dhp19.write_events(dhp19.events_path(str(folder), 'S13_session1_mov1'), {3: events})
    times = dhp19.label_times_us(300_000)
    poses = np.zeros((len(times), 3, 13))
    poses[:, 2, :] = np.linspace(200.0, 1700.0, 13)   # a vertical line of joints, mm
    dhp19.write_labels(dhp19.labels_path(str(folder), 'S13_session1_mov1'), poses, times)
    write_rig(str(folder), dhp19_rig())
    return folder, events, poses


def test_dhp19_recording_becomes_a_bag_with_events_and_ground_truth(tmp_path, recording):
    folder, events, poses = recording
    out = tmp_path / 'bag'
    counts = dhp19_to_bag(str(folder), 'S13_session1_mov1', [3], str(out), message_ms=10.0)
    assert counts == {'/pose_gt_3d': 30, '/cam3/events': 30, '/cam3/pose_gt': 30}
    messages = read_bag(out)
    decoded = [codecs.decode_event_array(raw) for topic, _, _, raw in messages
               if topic == '/cam3/events']
    merged = np.concatenate([d.events for d in decoded])
    t0 = 1_700_000_000 * 1_000_000
    np.testing.assert_array_equal(merged['t'] - t0, events['t'])
    np.testing.assert_array_equal(merged[['x', 'y', 'p']], events[['x', 'y', 'p']])
    assert all(d.frame_id == 'cam3_optical_frame' for d in decoded)
    typestore = event_typestore()
    gt = [typestore.deserialize_cdr(raw, mt) for topic, mt, _, raw in messages
          if topic == '/cam3/pose_gt']
    u, v = project_dhp19(dhp19.load_projection_matrix(str(folder), 3), poses[0].T)
    assert gt[0].poses[5].position.x == pytest.approx(u[5] - 0.5)
    assert gt[0].poses[5].position.y == pytest.approx(v[5] - 0.5)
    rig = yaml.safe_load((out / 'cameras.yaml').read_text())
    assert rig['cam3']['frame_id'] == 'cam3_optical_frame' and len(rig['joint_names']) == 13


def test_a_camera_without_events_gets_empty_messages_over_the_labels(tmp_path, recording):
    folder, events, poses = recording
    empty = events[:0]
    dhp19.write_events(dhp19.events_path(str(folder), 'S13_session1_mov1'),
                       {3: events, 2: empty})
    out = tmp_path / 'bag'
    counts = dhp19_to_bag(str(folder), 'S13_session1_mov1', [3, 2], str(out), message_ms=10.0)
    assert counts['/cam2/events'] == 30 and counts['/cam3/events'] == 30
    decoded = [codecs.decode_event_array(raw) for topic, _, _, raw in read_bag(out)
               if topic == '/cam2/events']
    assert len(decoded) == 30 and all(len(d.events) == 0 for d in decoded)


def test_max_seconds_keeps_the_first_part_of_a_recording(tmp_path, recording):
    folder, events, poses = recording
    out = tmp_path / 'bag'
    counts = dhp19_to_bag(str(folder), 'S13_session1_mov1', [3], str(out), message_ms=10.0,
                          max_seconds=0.1)
    assert counts == {'/pose_gt_3d': 10, '/cam3/events': 10, '/cam3/pose_gt': 10}
    merged = np.concatenate([codecs.decode_event_array(raw).events
                             for topic, _, _, raw in read_bag(out) if topic == '/cam3/events'])
    np.testing.assert_array_equal(merged['t'] - 1_700_000_000 * 1_000_000,
                                  events['t'][events['t'] < 100_000])


def test_event_array_bag_to_packets_and_back_keeps_the_events(tmp_path, recording):
    folder, events, _ = recording
    dhp19_to_bag(str(folder), 'S13_session1_mov1', [3], str(tmp_path / 'a'))
    assert reencode_bag(str(tmp_path / 'a'), str(tmp_path / 'p'), 'packet') == 30
    assert reencode_bag(str(tmp_path / 'p'), str(tmp_path / 'b'), 'array') == 30
    packets = [raw for topic, mt, _, raw in read_bag(tmp_path / 'p') if topic == '/cam3/events']
    first = codecs.decode_event_packet(packets[0])
    assert first.encoding == 'mono' and first.seq == 0
    before = [raw for topic, _, _, raw in read_bag(tmp_path / 'a') if topic == '/cam3/events']
    after = [raw for topic, _, _, raw in read_bag(tmp_path / 'b') if topic == '/cam3/events']
    for x, y in zip(before, after):
        np.testing.assert_array_equal(codecs.decode_event_array(x).events,
                                      codecs.decode_event_array(y).events)
