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
STARTUP_S = 120.0
"""Wait for a node to start: on two cores shared with other work its imports and warm-up
took 27-40 s."""


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
                                    STARTUP_S, node), 'node did not subscribe'
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
                                    STARTUP_S, node)
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
                                    STARTUP_S, node), 'node did not subscribe'
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


class Watcher(SpinningNode):
    """A test node that records /diagnostics as (level, message, values)."""

    def __init__(self, context):
        from diagnostic_msgs.msg import DiagnosticArray
        super().__init__(context, 'watcher')
        self.statuses = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_status, 10)

    def _on_status(self, msg):
        for status in msg.status:
            level = ord(status.level) if isinstance(status.level, bytes) else status.level
            self.statuses.append((level, status.message, {v.key: v.value for v in status.values}))

    def warned(self, text):
        return any(level == 1 and text in message for level, message, _ in self.statuses)


def test_a_wrong_topic_qos_and_type_are_named_in_the_log_and_diagnostics(
        tmp_path, rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    from event_camera_msgs.msg import EventPacket
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint)
    node = start_node(ros_env, checkpoint, 'no_input_timeout:=1.0', 'diagnostics_period:=0.2')
    watcher = Watcher(rclpy_context)
    head = ('no message on /test/events in 1.0 s since the node started listening (it reads '
            'event_camera_msgs/msg/EventPacket, input_type event_packet): ')
    expected = [
        head + 'nothing publishes /test/events',
        head + 'nothing publishes /test/events; event topics in the graph: /cam0/events '
        '(event_camera_msgs/msg/EventPacket); remap events:=TOPIC or set events_topic',
        head + 'its publisher is best effort and the subscription reliable, which do not '
        'connect; set qos_reliability best_effort',
        head + 'its publisher sends dvs_msgs/msg/EventArray; set input_type dvs']
    try:
        assert watcher.spin_until(lambda: watcher.warned(expected[0]), 60.0, node)
        elsewhere = watcher.node.create_publisher(EventPacket, '/cam0/events', 10)
        assert watcher.spin_until(lambda: watcher.warned(expected[1]), 10.0, node)
        watcher.node.destroy_publisher(elsewhere)
        best_effort = watcher.node.create_publisher(
            EventPacket, '/test/events',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        assert watcher.spin_until(lambda: watcher.warned(expected[2]), 10.0, node)
        watcher.node.destroy_publisher(best_effort)
        watcher.node.create_publisher(EventArray, '/test/events', 10)
        assert watcher.spin_until(lambda: watcher.warned(expected[3]), 10.0, node)
    finally:
        node.terminate()
        output, _ = node.communicate(timeout=10)
        watcher.close()
    for text in expected:   # each logged once, as a warning
        assert sum('WARN' in line and line.endswith(text)
                   for line in output.splitlines()) == 1, (text, output)
    assert 'Traceback' not in output


def test_the_remapped_input_the_first_message_report_and_recent_rates(
        tmp_path, rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    from geometry_msgs.msg import PoseArray
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    events = moving_blob_events()
    reference = offline_reference(checkpoint, events)
    args = ros_command('hybrid_pose_ros.ros.node', f'checkpoint:={checkpoint}', 'threads:=1',
                       'qos_reliability:=reliable', 'input_type:=dvs', 'diagnostics_period:=0.2',
                       'min_confidence:=0.0')
    node = start_process(args + ['-r', '__ns:=/cam0', '-r', 'events:=/dvs/events'], ros_env)
    watcher = Watcher(rclpy_context)
    poses = []
    watcher.node.create_subscription(PoseArray, '/cam0/hybrid_pose_node/pose', poses.append, 100)
    publisher = watcher.node.create_publisher(EventArray, '/dvs/events', 1000)
    try:
        assert watcher.spin_until(lambda: publisher.get_subscription_count() > 0, 60.0, node)
        watcher.spin_until(lambda: False, 1.0, node)
        for message in split_messages(events, 10_000):
            publisher.publish(encode_event_array(int(message['t'][-1]) * 1000, 'cam', 260, 346,
                                                 message))
        assert watcher.spin_until(lambda: len(poses) >= len(reference), 60.0, node)
        done = len(watcher.statuses)
        # five seconds after the last pose the recent pose rate is zero (since start-up it is not)
        assert watcher.spin_until(
            lambda: len(watcher.statuses) > done
            and watcher.statuses[-1][2]['pose_rate_hz'] == '0.0', 8.0, node)
    finally:
        node.terminate()
        output, _ = node.communicate(timeout=10)
        watcher.close()
    values = watcher.statuses[-1][2]
    assert (values['events_topic'], values['sensor'], values['poses']) == (
        '/dvs/events', '346x260', str(len(reference)))
    rates = [float(v['pose_rate_hz']) for _, _, v in watcher.statuses]
    assert max(rates) > 10.0
    assert 'listening to /dvs/events (dvs, dvs_msgs/msg/EventArray)' in output
    assert ("first message on /dvs/events: 346x260 sensor, frame 'cam'; the model sees columns "
            '34..289 and rows 2..257 (256x256, dhp19) scaled by 0.250 to 64x64') in output
    assert 'Traceback' not in output


def test_debug_image_shows_a_span_of_events_at_most_15_hz_raw_and_jpeg(
        tmp_path, rclpy_context, ros_env):
    import io

    from dvs_msgs.msg import EventArray
    from PIL import Image as PilImage
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    events = moving_blob_events()
    reference = offline_reference(checkpoint, events)
    node = start_node(ros_env, checkpoint, 'input_type:=dvs', 'min_confidence:=0.0')
    collector = Collector(rclpy_context, EventArray)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST)
    raw, jpeg = [], []
    collector.node.create_subscription(Image, '/hybrid_pose_node/debug_image', raw.append, qos)
    collector.node.create_subscription(CompressedImage, '/hybrid_pose_node/debug_image/compressed',
                                       jpeg.append, qos)
    try:
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() > 0,
                                    STARTUP_S, node), 'node did not subscribe'
        collector.spin_until(lambda: False, 1.0, node)
        start = time.monotonic()
        for message in split_messages(events, 10_000):   # in real time: the images can follow
            due = start + (message['t'][-1] - events['t'][0]) / 1e6
            collector.spin_until(lambda: time.monotonic() >= due, 5.0, node)
            collector.publisher.publish(encode_event_array(
                int(message['t'][-1]) * 1000, 'cam', 260, 346, message))
        assert collector.spin_until(lambda: len(collector.poses) >= len(reference), 60.0, node)
        collector.spin_until(lambda: False, 1.0, node)
    finally:
        node.terminate()
        output, _ = node.communicate(timeout=10)
        collector.close()
    # the poses are those without images
    assert [stamp_us(m.header) for m in collector.poses] == [p.end_us for p in reference]
    stamps = [stamp_us(m.header) for m in raw]
    assert len(stamps) >= 4 and set(stamps) <= {p.end_us for p in reference}
    # 15 Hz of event time on average, images 60 or 70 ms (6 or 7 bins) apart
    assert (stamps[-1] - stamps[0]) / (len(stamps) - 1) >= 1e6 / 15 - 1
    assert set(np.diff(stamps)) <= {60_000, 70_000}
    assert [stamp_us(m.header) for m in jpeg] == stamps
    last = raw[-1]
    assert (last.width, last.height, last.encoding, last.step) == (346, 260, 'rgb8', 346 * 3)
    image = np.frombuffer(bytes(last.data), np.uint8).reshape(260, 346, 3)
    decoded = np.asarray(PilImage.open(io.BytesIO(bytes(jpeg[-1].data))))
    assert decoded.shape == image.shape and jpeg[-1].format == 'rgb8; jpeg compressed bgr8'
    assert np.abs(decoded.astype(int) - image).mean() < 8
    # every pixel with an event in the 50 ms before the stamp is lit: five bins, not one
    end = stamps[-1]
    lit = (image != 16).any(axis=-1)
    span = events[(events['t'] >= end - 50_000) & (events['t'] < end)]
    last_bin = events[(events['t'] >= end - 10_000) & (events['t'] < end)]
    assert lit[span['y'], span['x']].all()
    assert lit.sum() > 3 * len(set(zip(last_bin['x'], last_bin['y'])))
    assert 'Traceback' not in output


def test_lifecycle_node_transitions(tmp_path, rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    events = moving_blob_events(duration_us=250_000)
    reference = offline_reference(checkpoint, events)
    args = ros_command('hybrid_pose_ros.tools.node', f'checkpoint:={checkpoint}', 'threads:=1',
                       'events_topic:=/test/events', 'qos_reliability:=reliable',
                       'input_type:=dvs', 'min_confidence:=0.0')
    node = start_process(args[:3] + ['--lifecycle'] + args[3:], ros_env)
    bad_args = ros_command('hybrid_pose_ros.tools.node', f'checkpoint:={tmp_path / "nope.pt"}')
    bad = start_process(bad_args[:3] + ['--lifecycle'] + bad_args[3:] + ['-r', '__node:=bad'],
                        ros_env)
    collector = Collector(rclpy_context, EventArray)

    def call(client, request, process):
        future = client.call_async(request)
        assert collector.spin_until(future.done, 60.0, process)
        return future.result()

    def transition(transition_id, process=node, name='hybrid_pose_node'):
        client = collector.node.create_client(ChangeState, f'/{name}/change_state')
        assert collector.spin_until(client.service_is_ready, STARTUP_S, process)
        success = call(client, ChangeState.Request(
            transition=Transition(id=transition_id)), process).success
        state = call(collector.node.create_client(GetState, f'/{name}/get_state'),
                     GetState.Request(), process).current_state.label
        return success, state

    def publish_events():
        for message in split_messages(events, 10_000):
            collector.publisher.publish(encode_event_array(
                int(message['t'][-1]) * 1000, 'cam', 260, 346, message))

    try:
        assert transition(Transition.TRANSITION_CONFIGURE) == (True, 'inactive')
        collector.spin_until(lambda: False, 1.0, node)
        assert collector.publisher.get_subscription_count() == 0    # inactive: no subscription
        assert transition(Transition.TRANSITION_ACTIVATE) == (True, 'active')
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() > 0,
                                    10.0, node)
        publish_events()
        assert collector.spin_until(lambda: len(collector.poses) >= len(reference), 60.0, node)
        assert transition(Transition.TRANSITION_DEACTIVATE) == (True, 'inactive')
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() == 0,
                                    10.0, node)
        # active again: a fresh stream gives the same poses for the same events
        assert transition(Transition.TRANSITION_ACTIVATE) == (True, 'active')
        assert collector.spin_until(lambda: collector.publisher.get_subscription_count() > 0,
                                    10.0, node)
        publish_events()
        assert collector.spin_until(lambda: len(collector.poses) >= 2 * len(reference), 60.0,
                                    node)
        assert transition(Transition.TRANSITION_DEACTIVATE) == (True, 'inactive')
        assert transition(Transition.TRANSITION_CLEANUP) == (True, 'unconfigured')
        assert transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) == (True, 'finalized')
        # a configure that fails leaves the node unconfigured, with the reason in the log
        assert transition(Transition.TRANSITION_CONFIGURE, bad, 'bad') == (False, 'unconfigured')
    finally:
        outputs = []
        for process in (node, bad):
            process.terminate()
            outputs.append(process.communicate(timeout=10)[0])
        collector.close()
    output, bad_output = outputs
    assert len(collector.poses) == 2 * len(reference)
    for msg, expected in zip(collector.poses, reference + reference):
        assert stamp_us(msg.header) == expected.end_us
        np.testing.assert_allclose(pose_xy(msg), expected.xy, atol=1e-6)
    assert output.count('listening to /test/events (dvs, dvs_msgs/msg/EventArray)') == 2
    assert 'deactivated' in output and 'Traceback' not in output
    assert 'configure failed: ' in bad_output and str(tmp_path / 'nope.pt') in bad_output
    assert 'Traceback' not in bad_output


def test_help_needs_no_ros_and_ctrl_c_exits_cleanly_at_any_time(tmp_path, ros_env):
    import signal
    import subprocess
    import sys
    probe = ('import sys\nfrom hybrid_pose_ros.tools.node import main\ntry:\n'
             '    main(["hybrid_pose_node", "--help"])\nexcept SystemExit as end:\n'
             '    print("status", end.code, "rclpy" in sys.modules)\n')
    for program in (['-c', probe], ['-m', 'hybrid_pose_ros.tools.node', '-h']):
        result = subprocess.run([sys.executable, *program], env=ros_env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith(
            'usage: hybrid_pose_node [-h] [--lifecycle] [--ros-args ...]')
    assert result.stderr == '' and '--lifecycle   run as a managed' in result.stdout
    assert subprocess.run([sys.executable, '-c', probe], env=ros_env, capture_output=True,
                          text=True, timeout=60).stdout.endswith('status 0 False\n')
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint)
    command = ros_command('hybrid_pose_ros.tools.node', f'checkpoint:={checkpoint}')
    # Ctrl-C while Python imports torch and rclpy (2 s: after the interpreter's own start, whose
    # first fraction of a second no Python code can guard), later in the start-up, and while
    # running
    for delay in (2.0, 5.0, None):
        process = start_process(command, ros_env)
        if delay is None:
            seen = ''
            while 'listening to' not in seen and process.poll() is None:
                seen += process.stdout.readline()
            time.sleep(1.0)   # spinning by now
        else:
            time.sleep(delay)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
        assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, (delay, output)
        assert process.returncode == {2.0: 130, None: 0}.get(delay, process.returncode), delay
        assert process.returncode in (0, 130)
