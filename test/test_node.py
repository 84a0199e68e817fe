# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The node as a separate process over DDS: poses equal the offline model, stamps, markers."""
import math
import time

from helpers.processes import ros_command, SpinningNode, start_process
from helpers.streams import moving_blob_events, offline_reference, small_checkpoint, split_messages
from hybrid_pose_ros.model.inference import resolve_ann_precision, resolve_ann_runtime
from hybrid_pose_ros.ros.codecs import encode_event_array, encode_event_packet, encode_mono_events
from hybrid_pose_ros.skeleton import NUM_JOINTS
import numpy as np
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')


RCLPY_WITHOUT_MESSAGE_INFO = """
from hybrid_pose_ros.ros import compat
compat.MESSAGE_INFO_IN_CALLBACKS = False   # as Humble's rclpy: callbacks get the message only
from hybrid_pose_ros.ros.node import main
main()
"""


def start_node(env, checkpoint, *params, program=None):
    args = ros_command('hybrid_pose_ros.ros.node', f'checkpoint:={checkpoint}',
                       'events_topic:=/test/events', 'qos_reliability:=reliable', 'threads:=1',
                       *params)
    if program is not None:
        args[1:3] = program
    return start_process(args, env)


class Collector(SpinningNode):
    """A test node that publishes raw event messages and records the node's outputs."""

    def __init__(self, context, message_type):
        from geometry_msgs.msg import PoseArray
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from visualization_msgs.msg import MarkerArray
        super().__init__(context, 'collector')
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_ALL)
        self.publisher = self.node.create_publisher(message_type, '/test/events', qos)
        self.poses, self.markers = [], []
        self.node.create_subscription(PoseArray, '/hybrid_pose_node/pose',
                                      self.poses.append, qos)
        self.node.create_subscription(MarkerArray, '/hybrid_pose_node/skeleton',
                                      self.markers.append, qos)


def stamp_us(header):
    return header.stamp.sec * 1_000_000 + header.stamp.nanosec // 1000


def pose_xy(msg):
    return np.array([[p.position.x, p.position.y] for p in msg.poses])


@pytest.mark.parametrize('pace, ann_runtime, calibrated, ann_lead_bins, message_us', [
    ('as_fast_as_possible', 'auto', False, 0, 10_000), ('real_time', 'auto', False, 0, 10_000),
    ('as_fast_as_possible', 'torch', False, 0, 10_000),
    ('as_fast_as_possible', 'auto', True, 0, 10_000),
    ('real_time', 'auto', False, 1, 33_333)])
def test_replayed_events_give_the_offline_poses(tmp_path, rclpy_context, ros_env, pace,
                                                ann_runtime, calibrated, ann_lead_bins,
                                                message_us):
    from dvs_msgs.msg import EventArray
    if calibrated:
        pytest.importorskip('nncf')
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, calibrated, ann_events=2000)
    events = moving_blob_events()
    reference = offline_reference(checkpoint, events, ann_runtime, ann_lead_bins)
    node = start_node(ros_env, checkpoint, 'input_type:=dvs', 'min_confidence:=0.0',
                      f'ann_runtime:={ann_runtime}', f'ann_lead_bins:={ann_lead_bins}')
    collector = Collector(rclpy_context, EventArray)
    try:
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() > 0,
                                    30.0, node), 'node did not subscribe'
        collector.spin_until(lambda: False, 1.0, node)
        start = time.monotonic()
        for message in split_messages(events, message_us):
            if pace == 'real_time':
                due = start + (message['t'][-1] - events['t'][0]) / 1e6
                collector.spin_until(lambda: time.monotonic() >= due, 5.0, node)
            end_us = int(message['t'][-1])
            collector.publisher.publish(encode_event_array(
                end_us * 1000, 'dvs_optical_frame', 260, 346, message))
        assert collector.spin_until(lambda: len(collector.poses) >= len(reference), 60.0, node)
    finally:
        node.terminate()
        output, _ = node.communicate(timeout=10)
        collector.close()
    # the node ran the ANN where it was asked to (auto: OpenVINO where it is installed), in
    # int8 where the checkpoint is calibrated
    runtime = resolve_ann_runtime(ann_runtime)
    precision = resolve_ann_precision('auto', 'cpu', runtime, calibrated)
    assert f'ANN 10 Hz ({runtime}, {precision})' in output
    assert precision == ('int8' if calibrated else resolve_ann_precision('auto'))
    assert len(collector.poses) == len(reference)
    for msg, expected in zip(collector.poses, reference):
        assert stamp_us(msg.header) == expected.end_us
        assert msg.header.frame_id == 'dvs_optical_frame'
        assert len(msg.poses) == NUM_JOINTS
        np.testing.assert_allclose(pose_xy(msg), expected.xy, atol=1e-6)
    joints, bones = collector.markers[-1].markers
    assert (joints.ns, joints.id, bones.ns, bones.id) == ('joints', 0, 'bones', 1)
    assert joints.header.frame_id == 'dvs_optical_frame'
    # markers at marker_rate_hz (30) of event time: every third or fourth 10 ms pose
    marker_stamps = [stamp_us(m.markers[0].header) for m in collector.markers]
    assert set(np.diff(marker_stamps)) <= {30_000, 40_000}
    assert len(marker_stamps) == pytest.approx(0.3 * len(reference), abs=1)


def test_event_packet_input_and_missing_joints_are_nan(tmp_path, rclpy_context, ros_env):
    from event_camera_msgs.msg import EventPacket
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    events = moving_blob_events(duration_us=250_000)
    node = start_node(ros_env, checkpoint, 'min_confidence:=2.0')   # nothing is confident
    collector = Collector(rclpy_context, EventPacket)
    try:
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() > 0,
                                    30.0, node)
        collector.spin_until(lambda: False, 1.0, node)
        for seq, message in enumerate(split_messages(events, 5_000)):
            base_ns = int(message['t'][0]) * 1000 if len(message) else 0
            collector.publisher.publish(encode_event_packet(
                base_ns, 'camera', 260, 346, seq, base_ns, 'mono',
                encode_mono_events(message, base_ns)))
        assert collector.spin_until(lambda: len(collector.poses) >= 5, 60.0, node)
    finally:
        node.terminate()
        node.wait(10)
        collector.close()
    assert all(math.isnan(p.position.x) for p in collector.poses[0].poses)


def test_without_message_info_as_on_humble_the_poses_are_the_same(tmp_path, rclpy_context,
                                                                  ros_env):
    from diagnostic_msgs.msg import DiagnosticArray
    from dvs_msgs.msg import EventArray
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    events = moving_blob_events(duration_us=250_000)
    reference = offline_reference(checkpoint, events)
    node = start_node(ros_env, checkpoint, 'input_type:=dvs', 'min_confidence:=0.0',
                      'diagnostics_period:=0.2', program=('-c', RCLPY_WITHOUT_MESSAGE_INFO))
    collector = Collector(rclpy_context, EventArray)
    statuses = []
    collector.node.create_subscription(DiagnosticArray, '/diagnostics', statuses.append, 10)
    try:
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() > 0,
                                    30.0, node), 'node did not subscribe'
        collector.spin_until(lambda: False, 1.0, node)
        for message in split_messages(events, 10_000):
            collector.publisher.publish(encode_event_array(
                int(message['t'][-1]) * 1000, 'cam', 260, 346, message))
        assert collector.spin_until(lambda: len(collector.poses) >= len(reference), 60.0, node)
        count = len(statuses)
        assert collector.spin_until(lambda: len(statuses) > count, 5.0, node)
    finally:
        node.terminate()
        output, _ = node.communicate(timeout=10)
        collector.close()
    assert [stamp_us(m.header) for m in collector.poses] == [p.end_us for p in reference]
    for msg, expected in zip(collector.poses, reference):
        np.testing.assert_allclose(pose_xy(msg), expected.xy, atol=1e-6)
    values = {v.key: v.value for v in statuses[-1].status[0].values}
    assert (values['messages_lost_counted'], values['messages_lost']) == ('false', '0')
    assert values['messages'] == str(len(split_messages(events, 10_000)))
    assert 'Traceback' not in output


def test_invalid_parameter_stops_the_node_with_one_message(tmp_path, ros_env):
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint)
    node = start_node(ros_env, checkpoint, 'device:=gpu')
    output, _ = node.communicate(timeout=60)
    assert node.returncode == 2
    assert "hybrid_pose_node: parameter device='gpu': must be 'cpu', 'cuda' or 'cuda:N'" in output
    assert 'Traceback' not in output
    node = start_node(ros_env, checkpoint, 'ann_lead_bins:=10')
    output, _ = node.communicate(timeout=60)
    assert node.returncode == 2
    assert ('hybrid_pose_node: parameter ann_lead_bins must be in [0, 9] (bins of a window), '
            'got 10') in output


def test_missing_checkpoint_is_reported_with_the_path(tmp_path, ros_env):
    node = start_node(ros_env, tmp_path / 'nope.pt')
    output, _ = node.communicate(timeout=60)
    assert node.returncode == 2
    assert str(tmp_path / 'nope.pt') in output and 'Traceback' not in output
