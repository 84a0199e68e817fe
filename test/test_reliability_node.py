# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Reliability of the node as a separate process over DDS: bad input, time, load and faults.

Each test starts ``hybrid_pose_node``, publishes raw CDR bytes (malformed ones included) and
checks the poses, the counters and levels on ``/diagnostics`` and the node's log.
"""
import subprocess
import sys
import time

from helpers.processes import SpinningNode, start_process
from helpers.streams import (
    moving_blob_events, offline_reference, seeded_model, small_checkpoint, split_messages)
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.model.checkpoint import save_checkpoint
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.ros.codecs import encode_event_array, encode_event_packet, encode_mono_events
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip('rclpy')

TOPIC = '/test/events'
INJECT_STEP_FAULT = """
import sys
from hybrid_pose_ros.estimator import HybridEstimator
original, calls = HybridEstimator.step, []
def step(self, *args, **kwargs):  # the second bin's step fails (the start-up warm-up is not a bin)
    calls.append(1)
    if len(calls) == 2:
        raise RuntimeError('injected fault')
    return original(self, *args, **kwargs)
HybridEstimator.step = step
from hybrid_pose_ros.ros.node import main
main()
"""


def node_command(checkpoint, *params, program=('-m', 'hybrid_pose_ros.ros.node')):
    args = [sys.executable, *program, '--ros-args', '-p', f'checkpoint:={checkpoint}',
            '-p', f'events_topic:={TOPIC}', '-p', 'qos_reliability:=reliable',
            '-p', 'threads:=1', '-p', 'diagnostics_period:=0.2']
    for p in params:
        args += ['-p', p]
    return args


def start_node(env, checkpoint, *params, **kwargs):
    return start_process(node_command(checkpoint, *params, **kwargs), env)


def settle(harness, settled, closer, node, timeout=60.0):
    """
    Wait until ``settled``, publishing the small ``closer`` message now and then.

    A message the node's keep-last queue overwrote is counted as lost only once a later one
    arrives (a gap in the publisher's sequence numbers), so a burst's last losses need a closer.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        harness.publish(closer)
        if harness.spin_until(settled, 3.0, node):
            return True
    return False


def stop(process):
    process.terminate()
    try:
        output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


class Harness(SpinningNode):
    """A test node: publishes raw events (and /clock), records poses and /diagnostics."""

    spin_period_s = 0.02

    def __init__(self, context, message_type):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        super().__init__(context, 'reliability_harness')
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_ALL)
        self.publisher = self.node.create_publisher(message_type, TOPIC, qos)
        self.clock = self.node.create_publisher(Clock, '/clock', 10)
        self.published = 0
        self.poses, self.statuses = [], []
        self.node.create_subscription(PoseArray, '/hybrid_pose_node/pose', self.poses.append,
                                      qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, qos)

    def _on_diagnostics(self, msg):
        for status in msg.status:   # level is a byte: 0 OK, 1 WARN, 2 ERROR
            level = ord(status.level) if isinstance(status.level, bytes) else status.level
            self.statuses.append((msg.header.stamp, level, status.message,
                                  {v.key: v.value for v in status.values}))

    def publish(self, data):
        self.publisher.publish(data)
        self.published += 1

    def publish_clock(self, t_ns):
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock
        self.clock.publish(Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))

    def values(self):
        return self.statuses[-1][3] if self.statuses else {}

    def counter(self, key):
        return int(self.values().get(key, -1))

    def wait_for_node(self, process):
        assert self.spin_until(lambda: self.publisher.get_subscription_count() > 0
                               and self.statuses, 120.0, process), 'node did not start'


def stamp_us(msg):
    return msg.header.stamp.sec * 1_000_000 + msg.header.stamp.nanosec // 1000


def pose_xy(msg):
    return np.array([[p.position.x, p.position.y] for p in msg.poses])


def assert_poses_equal(received, expected):
    assert [stamp_us(m) for m in received] == [p.end_us for p in expected]
    for msg, step in zip(received, expected):
        np.testing.assert_allclose(pose_xy(msg), step.xy, atol=1e-6)


def packet(events, width=346, height=260, encoding='mono', seq=0, base_ns=None):
    base = int(events['t'].min()) * 1000 if base_ns is None else base_ns
    return encode_event_packet(base, 'camera', height, width, seq, base, encoding,
                               encode_mono_events(events, base))


def with_event(events, t, x=10, y=10):
    added = np.concatenate([events, make_events([t], [x], [y], [1])])
    return added[np.argsort(added['t'], kind='stable')] if t < events['t'][0] else added


def warned(harness, counter):
    return any(level == 1 and f'{counter} +' in message
               for _, level, message, _ in harness.statuses)


def test_malformed_and_implausible_messages_are_dropped_and_counted(
        tmp_path, rclpy_context, ros_env):
    from event_camera_msgs.msg import EventPacket
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    events = moving_blob_events()
    expected = offline_reference(checkpoint, events)
    messages = split_messages(events, 5_000)
    good = packet(messages[0])
    long_sequence = bytearray(good)
    start = len(good) - 8 * len(messages[0])
    long_sequence[start - 4:start] = (10**6).to_bytes(4, 'little')
    # (a zero-size message never reaches a subscriber in another process: see the load test)
    malformed = [good[:40], b'\xff\xff' + good[2:], bytes(long_sequence),
                 packet(messages[0], encoding='evt3'), good + bytes(64)]
    node = start_node(ros_env, checkpoint, 'qos_depth:=1000', 'min_confidence:=0.0')
    harness = Harness(rclpy_context, EventPacket)
    try:
        harness.wait_for_node(node)
        for data in malformed:
            harness.publish(data)
        for i, message in enumerate(messages):
            t_mid = int(message['t'][len(message) // 2])
            if i == 10:
                harness.publish(packet(message, 640, 480))       # another camera's size
                harness.publish(packet(message))
            elif i == 20:
                harness.publish(packet(message, 0, 0))           # no size: the known one
            elif i == 30:
                harness.publish(packet(with_event(message, t_mid, x=400)))
            elif i == 40:
                harness.publish(packet(with_event(message, t_mid + 4_000_000)))
            elif i == 50:
                harness.publish(packet(with_event(message, t_mid - 1_200_000)))
            elif i == 60:
                swapped = message.copy()
                swapped[[0, -1]] = swapped[[-1, 0]]              # out of order
                harness.publish(packet(swapped))
            else:
                harness.publish(packet(message))
        assert harness.spin_until(lambda: len(harness.poses) >= len(expected)
                                  and harness.counter('messages') == len(messages) + 1, 60.0,
                                  node), (len(harness.poses), len(expected), harness.values())
        harness.spin_until(lambda: False, 0.5, node)
    finally:
        output = stop(node)
        harness.close()
    assert_poses_equal(harness.poses, expected)
    values = harness.values()
    assert {k: int(values[k]) for k in (
        'decode_errors', 'size_dropped', 'events_out_of_sensor', 'events_time_outliers',
        'messages_lost', 'step_errors', 'message_errors', 'sensor_changes')} == {
        'decode_errors': 5, 'size_dropped': 1, 'events_out_of_sensor': 1,
        'events_time_outliers': 2, 'messages_lost': 0, 'step_errors': 0, 'message_errors': 0,
        'sensor_changes': 0}
    assert int(values['binner_reordered']) >= 1
    for counter in ('decode_errors', 'size_dropped', 'events_out_of_sensor',
                    'events_time_outliers'):
        assert warned(harness, counter), counter
    assert harness.statuses[-1][1:3] == (0, 'ok')
    assert ('dropped a message on /test/events: event_camera_msgs/EventPacket: truncated at '
            'seq: needs 8 bytes at offset 36, only 4 left') in output
    assert 'Traceback' not in output


def test_time_jump_gap_and_sim_time_at_5x(tmp_path, rclpy_context, ros_env):
    from dvs_msgs.msg import EventArray
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    first = moving_blob_events()
    second = moving_blob_events(duration_us=300_000, t0_us=5_280_000, seed=4)
    ref_first = offline_reference(checkpoint, first)
    ref_second = offline_reference(checkpoint, second)
    t0, rate, clock_base_ns = int(first['t'][0]), 5.0, 1000 * 10**9
    loop_offset = int(second['t'][-1]) - t0 + 100_000
    schedule = ([(m, int(m['t'][-1]) - t0) for m in split_messages(first, 10_000)]
                + [(m, int(m['t'][-1]) - t0) for m in split_messages(second, 10_000)]
                + [(m, int(m['t'][-1]) - t0 + loop_offset)
                   for m in split_messages(first, 10_000)])
    # 5x is faster than two busy cores step the SNN: a long queue lets the node catch up
    node = start_node(ros_env, checkpoint, 'input_type:=dvs', 'use_sim_time:=true',
                      'qos_depth:=1000', 'min_confidence:=0.0', 'max_pending_bins:=1000')
    harness = Harness(rclpy_context, EventArray)
    try:
        harness.publish_clock(clock_base_ns)
        harness.wait_for_node(node)
        wall_start = time.monotonic()
        for message, bag_us in schedule:
            due = wall_start + bag_us / 1e6 / rate
            while time.monotonic() < due:                # /clock keeps ticking in the gap
                harness.publish_clock(clock_base_ns + int((time.monotonic() - wall_start)
                                                          * rate * 1e9))
                harness.executor.spin_once(timeout_sec=0.01)
            harness.publish_clock(clock_base_ns + bag_us * 1000)
            harness.publish(encode_event_array(int(message['t'][-1]) * 1000, 'cam', 260, 346,
                                               message))
        # /clock stops here, like a bag at its end: processing must go on regardless
        total = 2 * len(ref_first) + len(ref_second)
        # the loop's last pose, not a count: the empty bins after the gap vary in number
        assert harness.spin_until(lambda: len(harness.poses) >= total + 1
                                  and harness.counter('binner_resets') == 1
                                  and stamp_us(harness.poses[-1]) == ref_first[-1].end_us, 60.0,
                                  node), (
            len(harness.poses), total, [stamp_us(m) for m in harness.poses], harness.values())
        harness.spin_until(lambda: False, 0.5, node)
    finally:
        output = stop(node)
        harness.close()
    poses = harness.poses
    first_end = int(first['t'][-1])
    assert_poses_equal(poses[:len(ref_first)], ref_first)
    # the empty bins after the first stream, up to the gap (at most 10 plus the open bin) are
    # stepped and stamped with their own event time: never a pose stamped inside the gap
    extra = []
    for msg in poses[len(ref_first):]:
        if not first_end < stamp_us(msg) < second['t'][0]:
            break
        extra.append(stamp_us(msg))
    assert extra and extra[-1] <= first_end + 12 * 10_000
    rest = poses[len(ref_first) + len(extra):]
    assert_poses_equal(rest[:len(ref_second)], ref_second)      # fresh window after the gap
    assert_poses_equal(rest[len(ref_second):], ref_first)       # the loop: clean restart
    values = harness.values()
    assert (values['binner_resets'], values['binner_gaps'], values['windows_skipped_after_gap'],
            values['bins_dropped']) == ('1', '1', '1', '0')
    assert warned(harness, 'binner_reset_dropped')
    # /diagnostics follows /clock (sim time) once the node has received it (0 before: the
    # first statuses of a slow start-up), poses follow event time
    stamps = [stamp.sec for stamp, *_ in harness.statuses]
    while stamps and stamps[0] == 0:
        stamps.pop(0)
    assert stamps and all(1000 <= s < 1010 for s in stamps), stamps
    assert 'Traceback' not in output


def test_burst_and_a_huge_message_are_bounded_counted_and_survived(
        tmp_path, rclpy_context, ros_env):
    psutil = pytest.importorskip('psutil')
    from event_camera_msgs.msg import EventPacket
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    burst = moving_blob_events(duration_us=3_000_000)
    rng = np.random.default_rng(0)
    huge_t0 = int(burst['t'][-1]) + 1000
    n_huge = 3_000_000
    huge = make_events(np.sort(rng.integers(huge_t0, huge_t0 + 100_000, n_huge)),
                       rng.integers(0, 346, n_huge), rng.integers(0, 260, n_huge),
                       rng.integers(0, 2, n_huge))
    tail = moving_blob_events(t0_us=huge_t0 + 101_000)
    # reliable: Fast DDS drops whole messages of 1 MB or more for a best-effort reader (they
    # would show as messages_lost); the burst overflows the node's own bounded queue instead
    node = start_node(ros_env, checkpoint, 'max_pending_bins:=5')
    harness = Harness(rclpy_context, EventPacket)
    rss = []

    def settled():
        rss.append(process.memory_info().rss)
        return harness.values().get('queued_bins') == '0' and harness.counter(
            'messages') + harness.counter('messages_lost') == harness.published

    try:
        harness.wait_for_node(node)
        process = psutil.Process(node.pid)
        baseline = process.memory_info().rss
        for message in split_messages(burst, 5_000):
            harness.publish(packet(message))
        assert settle(harness, settled, packet(burst[-10:]), node), harness.values()
        harness.publish(packet(huge))
        assert settle(harness, settled, packet(huge[-10:]), node), harness.values()
        assert int(harness.values()['events']) > n_huge
        for message in split_messages(tail, 5_000):
            harness.publish(packet(message))
        tail_start = int(tail['t'][0])
        assert harness.spin_until(lambda: any(stamp_us(m) > tail_start + 300_000
                                              for m in harness.poses), 60.0, node)
        harness.publish(packet(tail[-10:]))       # closes any sequence gap at the end
        assert harness.spin_until(settled, 30.0, node), harness.values()
    finally:
        output = stop(node)
        harness.close()
    values = harness.values()
    assert int(values['bins_dropped']) > 0 and int(values['windows_dropped']) > 0
    assert warned(harness, 'bins_dropped')
    if int(values['messages_lost']):
        assert warned(harness, 'messages_lost')
    assert (values['step_errors'], values['message_errors']) == ('0', '0')
    growth_mb = (max(rss) - baseline) / 2**20
    assert growth_mb < 700, growth_mb
    assert 'Traceback' not in output


def nonfinite_checkpoint(path):
    """Write a hybrid checkpoint whose ANN head gives NaN for joint 3 and inf for joint 5."""
    config = make_config('cpu', ann_events=2000)
    model = seeded_model(config)
    with torch.no_grad():
        model.ann.head.bias[3] = float('nan')
        model.ann.head.bias[5] = float('inf')
    save_checkpoint(path, model, config, 'hybrid')


def test_runtime_faults_rejected_parameters_and_nonfinite_outputs(
        tmp_path, rclpy_context, ros_env):
    from event_camera_msgs.msg import EventPacket
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient
    checkpoint = tmp_path / 'nan.pt'
    nonfinite_checkpoint(checkpoint)
    events = moving_blob_events()
    expected = offline_reference(checkpoint, events)
    # the injected fault fails the second step: the rest of that window publishes nothing
    expected = expected[:1] + expected[10:]
    node = start_node(ros_env, checkpoint, 'device:=cuda', 'min_confidence:=0.5',
                      program=('-c', INJECT_STEP_FAULT))
    harness = Harness(rclpy_context, EventPacket)
    try:
        harness.wait_for_node(node)
        client = AsyncParameterClient(harness.node, 'hybrid_pose_node')
        assert client.wait_for_services(10.0)
        future = client.set_parameters([
            Parameter('min_confidence', value=-1.0), Parameter('threads', value=3),
            Parameter('max_pending_bins', value='many'), Parameter('min_confidence', value=0.0)])
        harness.executor.spin_until_future_complete(future, 10.0)
        results = future.result().results
        # ranges and read-only are the descriptors' (rclpy's reasons), types and the rest ours
        assert [(r.successful, r.reason) for r in results] == [
            (False, 'Parameter min_confidence out of range Min: 0.0, Max: inf, value: -1.0'),
            (False, 'Trying to set a read-only parameter: threads.'),
            (False, 'max_pending_bins: must be of type int, got str'), (True, '')]
        future = client.describe_parameters(['threads', 'sensor_width', 'min_confidence',
                                             'marker_rate_hz'])
        harness.executor.spin_until_future_complete(future, 10.0)
        threads, width, confidence, markers = future.result().descriptors
        assert (threads.read_only, width.read_only, confidence.read_only,
                markers.read_only) == (True, True, False, False)
        assert [(r.from_value, r.to_value) for r in width.integer_range] == [(0, 8192)]
        assert [(r.from_value, r.to_value) for r in confidence.floating_point_range] == [
            (0.0, float('inf'))]
        for seq, message in enumerate(split_messages(events, 5_000)):
            harness.publish(packet(message, seq=seq))
        assert harness.spin_until(lambda: len(harness.poses) >= len(expected)
                                  and harness.counter('poses') == len(expected), 60.0, node)
    finally:
        output = stop(node)
        harness.close()
    assert [stamp_us(m) for m in harness.poses] == [p.end_us for p in expected]
    for msg, step in zip(harness.poses, expected):
        xy = pose_xy(msg)
        assert np.isnan(xy[[3, 5]]).all()                        # non-finite: missing
        assert all(np.isnan(msg.poses[j].position.z) for j in (3, 5))
        np.testing.assert_allclose(xy, step.xy, atol=1e-6)       # NaN where the model's is
    values = harness.values()
    poses = len(expected)
    assert (int(values['step_errors']), int(values['nonfinite_poses']),
            int(values['nonfinite_joints'])) == (1, poses, 2 * poses)
    assert values['device'] == 'cpu'
    assert any(level == 2 and 'errors: step_errors +1' in message
               for _, level, message, _ in harness.statuses)
    assert "device 'cuda' requested but CUDA is not available; using cpu" in output
    first_failed = expected[0].end_us + 10_000
    assert (f'model step for the bin ending at {first_failed} us failed: '
            "RuntimeError('injected fault'); the window ends") in output


STARTUP_FAULTS = {   # more cases in process: test_reliability_units.py
    'not_a_checkpoint': ((), 'not a PyTorch checkpoint file'),
    'wrong_type': (('qos_depth:=ten',), "parameter qos_depth='ten': must be of type int, got str"),
}


def test_startup_faults_give_one_message_or_a_fallback(tmp_path, rclpy_context, ros_env):
    good = tmp_path / 'good.pt'
    small_checkpoint(good)
    processes = {}
    for case, (params, _) in STARTUP_FAULTS.items():
        checkpoint = good
        if case == 'not_a_checkpoint':
            checkpoint = tmp_path / 'notes.pt'
            checkpoint.write_text('these are notes, not weights\n' * 10)
        processes[case] = start_node(ros_env, checkpoint, *params)
    log_file = tmp_path / 'not_a_directory'
    log_file.write_text('')
    unwritable = dict(ros_env, ROS_LOG_DIR=str(log_file / 'logs'))
    fallback = start_node(unwritable, good, 'qos_reliability:=best_effort')
    bad_arguments = subprocess.Popen(node_command(good) + ['-p'], env=ros_env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for case, (_, expected) in STARTUP_FAULTS.items():
        output, _ = processes[case].communicate(timeout=90)
        lines = [line for line in output.splitlines() if line.strip()]
        assert processes[case].returncode == 2, (case, output)
        assert len(lines) == 1 and lines[0].startswith('hybrid_pose_node: '), (case, output)
        assert expected in lines[0], (case, output)
    output, _ = bad_arguments.communicate(timeout=90)
    assert bad_arguments.returncode == 2 and 'Traceback' not in output
    assert "hybrid_pose_node: cannot initialise ROS: failed to initialize rcl: Couldn't parse "\
        'trailing -p flag' in output
    deadline = time.monotonic() + 60
    seen = ''
    while 'listening to' not in seen and time.monotonic() < deadline \
            and fallback.poll() is None:
        seen += fallback.stdout.readline()
    # the node runs, with its default best-effort subscription: a zero-size message never
    # reaches it (Fast DDS drops it; a reliable reader would wait for it) and shows as lost
    from event_camera_msgs.msg import EventPacket
    harness = Harness(rclpy_context, EventPacket)
    try:
        harness.wait_for_node(fallback)
        events = moving_blob_events(duration_us=20_000)
        for data in (packet(events), b'', packet(events[-10:])):
            harness.publish(data)
        assert harness.spin_until(lambda: harness.counter('messages_lost') == 1
                                  and harness.counter('messages') == 2, 30.0, fallback)
    finally:
        output = seen + stop(fallback)
        harness.close()
    assert 'listening to /test/events' in output, output
    assert (f'hybrid_pose_node: warning: cannot create the log directory {log_file / "logs"}: '
            'Not a directory; logging to the console and /rosout only') in output
    assert '1 message(s) on /test/events lost before they reached the node' in output
    assert 'Traceback' not in output
