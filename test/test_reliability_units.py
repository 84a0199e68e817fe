# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Reliability of the node's input path, in process: the node's own callbacks on crafted bytes.

The node is created in this process and its callbacks are called directly (no executor), so
every counter and reason can be checked exactly; test_reliability_node.py runs the same cases
over DDS with the node in its own process.
"""
from helpers.streams import moving_blob_events, seeded_model, small_checkpoint, split_messages
from hybrid_pose_ros.events.binning import MAX_STAMP_US, screen_events
from hybrid_pose_ros.events.event_array import EVENT_DTYPE, make_events
from hybrid_pose_ros.model.checkpoint import save_checkpoint
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import build_model
from hybrid_pose_ros.ros.codecs import (
    encode_event_array, encode_event_packet, encode_mono_events)
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)


def packet(events, width=346, height=260, encoding='mono', seq=0):
    """Serialise events as a mono EventPacket relative to their first time."""
    base = int(events['t'].min()) * 1000 if len(events) else 0
    return encode_event_packet(base, 'camera', height, width, seq, base, encoding,
                               encode_mono_events(events, base))


def blob(t0_us=1_234_000, duration_us=450_000, seed=3):
    return moving_blob_events(duration_us=duration_us, t0_us=t0_us, seed=seed)


# --- screen_events ---------------------------------------------------------------------------

def test_screen_drops_events_outside_the_sensor_and_wild_times():
    t = [1_000_000, 1_000_100, 1_000_200, 1_000_300, 4_500_000, 1_000_400, -5]
    x = [0, 345, 346, 10, 10, 10, 10]
    y = [0, 259, 0, 260, 0, 0, 0]
    screened = screen_events(make_events(t, x, y, [1] * 7), 346, 260, 1_000_000)
    assert (screened.out_of_sensor, screened.time_outliers) == (2, 2)
    assert screened.events['t'].tolist() == [1_000_000, 1_000_100, 1_000_400]


def test_screen_keeps_a_message_that_agrees_however_far_it_jumps():
    events = make_events([9_000_000_000, 9_000_000_005], [1, 2], [1, 2], [0, 1])
    screened = screen_events(events, 346, 260, 1_000_000)
    assert screened.events is events and screened.time_outliers == 0


def test_screen_drops_times_no_stamp_can_hold_even_without_outlier_check():
    events = make_events([MAX_STAMP_US - 1, MAX_STAMP_US, -1], [0] * 3, [0] * 3, [0] * 3)
    screened = screen_events(events, 346, 260, 0)
    assert screened.events['t'].tolist() == [MAX_STAMP_US - 1]
    assert screened.time_outliers == 2


_events = st.lists(st.tuples(st.integers(-2**40, 2**55), st.integers(0, 400),
                             st.integers(0, 300), st.integers(0, 1)), max_size=30).map(
    lambda rows: make_events(*(np.array(c, dtype=np.int64) for c in zip(*rows)))
    if rows else np.empty(0, dtype=EVENT_DTYPE))


@SETTINGS
@given(_events, st.integers(0, 5_000_000))
def test_screen_accounts_for_every_event(events, outlier_us):
    screened = screen_events(events, 346, 260, outlier_us)
    kept = screened.events
    assert len(kept) + screened.out_of_sensor + screened.time_outliers == len(events)
    assert ((kept['x'] < 346) & (kept['y'] < 260)).all()
    assert ((kept['t'] >= 0) & (kept['t'] < MAX_STAMP_US)).all()
    if outlier_us and len(kept):
        assert int(kept['t'].max()) - int(kept['t'].min()) <= 2 * outlier_us


# --- the node, in process --------------------------------------------------------------------

@pytest.fixture
def make_node(tmp_path, rclpy_context):
    """Create nodes in this process from a small checkpoint (2000 ANN events)."""
    node_module = pytest.importorskip('hybrid_pose_ros.ros.node')
    from rclpy.parameter import Parameter
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    nodes = []

    def make(**params):
        params = {'checkpoint': str(checkpoint), 'threads': 1, 'events_topic': '/unit/events',
                  **params}
        node = node_module.HybridPoseNode(
            context=rclpy_context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()


@pytest.mark.parametrize('case, params, message', [
    ('wrong_shapes', {}, 'parameter shapes differ from the hybrid model built from its config'),
    ('wrong_kind', {}, "holds a 'pure_snn' model; the node needs a hybrid checkpoint"),
    ('good', {'bin_us': 5000}, 'parameter bin_us=5000 differs from the 10000 us'),
    ('good', {'sensor_width': 346}, 'parameters sensor_width=346 and sensor_height=0: set both'),
    ('good', {'event_time_outlier_s': -1.0}, 'parameter event_time_outlier_s=-1.0: must be >= '),
    ('good', {'sensor_height': 9000}, 'parameter sensor_height=9000: must be <= 8192'),
    ('good', {'marker_lifetime': 'long'}, "marker_lifetime='long': must be of type float"),
    ('good', {'ann_runtime': 'onnx'}, "parameter ann_runtime='onnx': must be one of"),
    ('no_openvino', {'ann_runtime': 'openvino'},
     "parameter ann_runtime='openvino': ann_runtime openvino needs the openvino package"),
    ('good', {'ann_precision': 'int8', 'ann_runtime': 'torch'},
     "parameter ann_precision='int8': ann_precision int8 runs in OpenVINO only, not with "
     'ann_runtime torch'),
    ('good', {'ann_precision': 'int8', 'ann_runtime': 'openvino'},
     "parameter ann_precision='int8': ann_precision int8 needs calibration inputs, which this "
     'checkpoint does not store; add them with hybrid_pose_calibrate'),
])
def test_startup_problems_raise_one_clear_error(make_node, tmp_path, monkeypatch, case, params,
                                                message):
    node_module = pytest.importorskip('hybrid_pose_ros.ros.node')
    config = make_config('cpu')
    if case == 'no_openvino':
        from hybrid_pose_ros.model import inference
        monkeypatch.setattr(inference, 'openvino_available', lambda: False)
    if case == 'wrong_shapes':
        params['checkpoint'] = str(tmp_path / 'shapes.pt')
        save_checkpoint(params['checkpoint'], seeded_model(make_config('cpu', snn_base_width=4)),
                        config, 'hybrid')
    elif case == 'wrong_kind':
        params['checkpoint'] = str(tmp_path / 'kind.pt')
        save_checkpoint(params['checkpoint'], build_model('pure_snn', config), config,
                        'pure_snn')
    with pytest.raises(node_module.StartupError) as error:
        make_node(**params)
    assert message in str(error.value) and '\n' not in str(error.value)


def feed(node, messages):
    """Hand raw messages to the node's subscription callback (it steps the queued bins)."""
    for data in messages:
        node._on_events(data, {})
    node._step_queued_bins()


def test_each_malformed_message_is_dropped_with_its_reason(make_node):
    node = make_node()
    events = blob(duration_us=20_000)
    good = packet(events)
    payload_start = len(good) - 8 * len(events)
    long_sequence = bytearray(good)
    long_sequence[payload_start - 4:payload_start] = (10**6).to_bytes(4, 'little')
    cases = [
        (b'', 'event_camera_msgs/EventPacket: 0 bytes, too short for the CDR encapsulation '
              'header'),
        (good[:40], 'event_camera_msgs/EventPacket: truncated at '),
        (good[:len(good) // 2], f'events length {8 * len(events)} needs at least'),
        (b'\xff\xff' + good[2:], 'is not CDR little-endian'),
        (bytes(long_sequence), 'events length 1000000 needs at least 1000000 bytes'),
        (packet(events, encoding='evt3'),
         "unsupported EventPacket encoding 'evt3'; supported: mono"),
        (good + bytes(64), 'unexpected bytes after the message'),
    ]
    for count, (data, reason) in enumerate(cases, start=1):
        node._on_events(data, {})
        assert node.stats['decode_errors'] == count
        assert node.last_error.startswith('dropped a message on /unit/events: ')
        assert reason in node.last_error, (reason, node.last_error)
    assert node.stats['messages'] == 0 and node.runner is None
    node._on_events(good, {})
    empty = packet(np.empty(0, dtype=EVENT_DTYPE))
    node._on_events(empty, {})
    assert node.stats['messages'] == 2 and node.stats['decode_errors'] == len(cases)
    status = node.diagnostics_status()
    assert status.level == status.WARN
    assert status.message == f'dropping input: decode_errors +{len(cases)}'
    assert node.diagnostics_status().message == 'ok'


def test_implausible_events_are_dropped_one_by_one(make_node):
    events = blob(duration_us=40_000)
    wild = events.copy()
    wild['t'][100] += 3_000_000                       # one timestamp 3 s in the future
    wild['x'][200] = 346                              # one event outside the sensor
    wild[[300, 301]] = wild[[301, 300]]               # out of order inside the message
    node = make_node(input_type='dvs')
    node._on_events(encode_event_array(0, 'cam', 260, 346, wild), {})
    assert node.stats['events_time_outliers'] == 1
    assert node.stats['events_out_of_sensor'] == 1
    assert node.last_error == ('dropped 1 event(s) more than 1.0 s from the median time of '
                               'their message')
    binner = node.runner.binner
    # the wild time moved neither the grid nor anything else
    assert binner.open_bin_start == (int(events['t'][-1]) // 10_000) * 10_000
    assert binner.counters.events_in == len(events) - 2
    node._on_events(encode_event_array(0, 'cam', 260, 346, blob(
        t0_us=int(events['t'][-1]) + 1, duration_us=20_000)), {})
    assert binner.counters.resets == 0 and binner.counters.late_dropped == 0
    assert binner.counters.gaps == 0


def test_sensor_size_from_messages_changes_only_when_confirmed(make_node):
    node_module = pytest.importorskip('hybrid_pose_ros.ros.node')
    node = make_node()
    confirm = node_module.SIZE_CONFIRM_MESSAGES
    node._on_events(packet(blob(duration_us=10_000), width=0, height=0), {})
    assert node.stats['size_dropped'] == 1 and 'no size is known yet' in node.last_error
    start = 1_300_000
    node._on_events(packet(blob(t0_us=start, duration_us=10_000)), {})
    assert (node.geometry.sensor_width, node.geometry.sensor_height) == (346, 260)
    # one corrupt header is dropped, not a restart; a zero size uses the known one
    node._on_events(packet(blob(t0_us=start + 10_000, duration_us=10_000), 640, 480), {})
    assert node.stats['size_dropped'] == 2 and node.stats['sensor_changes'] == 0
    assert 'it reports a 640x480 sensor, the stream is 346x260' in node.last_error
    node._on_events(packet(blob(t0_us=start + 20_000, duration_us=10_000), 0, 0), {})
    node._on_events(packet(blob(t0_us=start + 30_000, duration_us=10_000), 40_000, 260), {})
    assert 'implausible sensor size 40000x260' in node.last_error
    assert node.stats['size_dropped'] == 3 and node.stats['messages'] == 5
    # a real change (camera restarted at another resolution) is adopted once confirmed
    for k in range(confirm):
        node._on_events(packet(blob(t0_us=start + 40_000 + 10_000 * k, duration_us=10_000),
                               640, 480), {})
    assert node.stats['size_dropped'] == 3 + confirm - 1
    assert node.stats['sensor_changes'] == 1
    assert (node.geometry.sensor_width, node.geometry.sensor_height) == (640, 480)


def test_configured_sensor_size_wins(make_node):
    node = make_node(sensor_width=346, sensor_height=260)
    node._on_events(packet(blob(duration_us=10_000), 0, 0), {})
    assert node.stats['size_dropped'] == 0 and node.geometry.sensor_width == 346
    for _ in range(12):
        node._on_events(packet(blob(t0_us=1_250_000, duration_us=10_000), 640, 480), {})
    assert node.stats['size_dropped'] == 12 and node.stats['sensor_changes'] == 0
    assert node.last_error.endswith(
        'it reports a 640x480 sensor, sensor_width/sensor_height are 346x260')


def test_queue_bound_drops_whole_windows_and_cancels_their_ann(make_node):
    node = make_node(max_pending_bins=3)
    feed_all = [packet(m) for m in split_messages(blob(), 450_000)]
    for data in feed_all:
        node._on_events(data, {})
    assert len(node.queue) <= 3
    emitted = node.runner.binner.counters.bins_emitted
    counters = node.runner.counters
    stepped = counters.steps + counters.warmup_bins + counters.bins_outside_window
    assert node.stats['bins_dropped'] == emitted - stepped - len(node.queue)
    assert node.stats['windows_dropped'] >= 1
    assert node.queued_events == sum(len(t.bin.events) for t, _, _ in node.queue)
    status = node.diagnostics_status()
    assert status.level == status.WARN
    assert f'bins_dropped +{node.stats["bins_dropped"]}' in status.message
    node._step_queued_bins()
    assert node.stats['step_errors'] == 0 and not node.queue


def test_after_a_gap_the_ann_history_is_fresh(make_node):
    node = make_node()
    first = blob(duration_us=300_000)
    # 3.2 s later; only 20 ms of events before the 5.3 s window start: too few for the ANN
    second = blob(t0_us=5_280_000, duration_us=300_000, seed=4)
    feed(node, [packet(m) for m in split_messages(first, 10_000)])
    windows_before = node.runner.counters.windows
    feed(node, [packet(m) for m in split_messages(second, 10_000)])
    assert node.runner.binner.counters.gaps == 1
    assert node.stats['windows_skipped_after_gap'] == 1
    # 1.6 s among the empty bins before the gap (as offline on both streams), then 5.4 and
    # 5.5 s as offline on the second stream alone; not 5.3 s, whose ANN history is mostly old
    assert node.runner.counters.windows - windows_before == 3
    # a jump back (bag loop) resets; its windows are not taken for after the gap
    windows_before = node.runner.counters.windows
    feed(node, [packet(m) for m in split_messages(first, 10_000)])
    assert node.runner.binner.counters.resets == 1
    assert node.runner.counters.windows - windows_before == 3
    assert node.stats['windows_skipped_after_gap'] == 1


def test_a_failing_step_is_counted_and_the_next_window_runs(make_node, monkeypatch):
    from hybrid_pose_ros.model.hybrid import HybridPoseNet
    node = make_node()
    original = HybridPoseNet.step
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('boom')
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HybridPoseNet, 'step', failing)
    feed(node, [packet(m) for m in split_messages(blob(), 10_000)])
    assert node.stats['step_errors'] == 1
    assert "failed: RuntimeError('boom'); the window ends" in node.last_error
    # window 1: step 1 published, 2 failed, 3..10 outside a window; later windows complete
    assert node.runner.counters.bins_outside_window == 8
    assert node.stats['poses'] == node.runner.counters.steps - 1
    status = node.diagnostics_status()
    assert status.level == status.ERROR and status.message == 'errors: step_errors +1'


def test_markers_follow_the_poses_and_a_failing_one_is_counted(make_node, monkeypatch):
    node_module = pytest.importorskip('hybrid_pose_ros.ros.node')
    node = make_node()
    order = []
    publish_pose = node.pose_pub.publish
    monkeypatch.setattr(node.pose_pub, 'publish',
                        lambda message: (order.append('pose'), publish_pose(message)))
    build = node_module.skeleton_markers

    def markers(*args):
        order.append('markers')
        if order.count('markers') == 2:
            raise ValueError('bad marker')
        return build(*args)

    monkeypatch.setattr(node_module, 'skeleton_markers', markers)
    feed(node, [packet(blob())])      # one message completes many bins at once
    poses = order.count('pose')
    assert poses > 3 and order[:poses] == ['pose'] * poses   # no marker before the last pose
    assert order.count('markers') == 2                       # the second failed: the rest skip
    assert node.stats['step_errors'] == 1
    assert "publishing skeleton markers failed: ValueError('bad marker')" in node.last_error
    assert not node.due_markers


# --- what the node says about itself (no ROS) -------------------------------------------------

def test_pose_rate_is_over_the_last_seconds_not_since_start_up():
    from hybrid_pose_ros.ros.health import RateWindow
    window = RateWindow(span_s=5.0)
    assert window.rate(0.0, 0) == 0.0
    for second in range(1, 11):          # 100 poses a second for 10 s
        rate = window.rate(float(second), 100 * second)
    assert rate == pytest.approx(100.0)
    for second in range(11, 17):         # then none: the rate falls to 0 within the window
        rate = window.rate(float(second), 1000)
    assert rate == 0.0
    window.reset()
    assert window.rate(20.0, 1000) == 0.0 and window.rate(21.0, 1050) == 50.0


def test_no_input_texts_name_the_topic_the_type_the_qos_and_where_events_are():
    from hybrid_pose_ros.ros.health import Endpoint, event_topics, no_input_problem
    head = ('no message on /cam/events in 5.0 s since the node started listening (it reads '
            'event_camera_msgs/msg/EventPacket, input_type event_packet): ')
    graph = event_topics([('/cam/events', ['event_camera_msgs/msg/EventPacket']),
                          ('/dvs/events', ['dvs_msgs/msg/EventArray']),
                          ('/rosout', ['rcl_interfaces/msg/Log'])])
    assert list(graph) == ['/cam/events', '/dvs/events']
    assert no_input_problem('/cam/events', 'event_packet', 5.0, False,
                            [Endpoint('dvs_msgs/msg/EventArray')], graph) == (
        head + 'its publisher sends dvs_msgs/msg/EventArray; set input_type dvs')
    assert no_input_problem('/cam/events', 'event_packet', 5.0, False,
                            [Endpoint('sensor_msgs/msg/Image')], {}) == (
        head + 'its publisher sends sensor_msgs/msg/Image; the node cannot read '
        'sensor_msgs/msg/Image')
    assert no_input_problem('/cam/events', 'event_packet', 5.0, True,
                            [Endpoint('event_camera_msgs/msg/EventPacket', True)], {}) == (
        head + 'its publisher is best effort and the subscription reliable, which do not '
        'connect; set qos_reliability best_effort')
    assert no_input_problem('/cam/events', 'event_packet', 5.0, False,
                            [Endpoint('event_camera_msgs/msg/EventPacket', True)], {}) == (
        head + '1 publisher(s) of event_camera_msgs/msg/EventPacket on it have sent nothing yet')
    assert no_input_problem('/cam/events', 'event_packet', 5.0, False, [], graph) == (
        head + 'nothing publishes /cam/events; event topics in the graph: /dvs/events '
        '(dvs_msgs/msg/EventArray); remap events:=TOPIC or set events_topic')
    assert no_input_problem('/cam/events', 'event_packet', 5.0, False, [], {}) == (
        head + 'nothing publishes /cam/events')


def test_debug_image_keeps_a_span_of_bins_and_colours_the_sides():
    from hybrid_pose_ros.ros.outputs import (
        debug_image_rgb, EventSpan, LEFT_COLOR, RIGHT_COLOR, CENTRE_COLOR)
    from hybrid_pose_ros.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
    span = EventSpan()
    for end in range(10_000, 100_001, 10_000):
        span.add(end, make_events([end - 5_000], [end // 10_000], [0], [1]), 50_000)
    assert span.events()['t'].tolist() == [55_000, 65_000, 75_000, 85_000, 95_000]
    span.add(20_000, make_events([15_000], [0], [0], [0]), 50_000)   # time went back
    assert span.events()['t'].tolist() == [15_000]
    events = make_events([1, 2, 3, 4], [5, 5, 6, 7], [1, 1, 1, 1], [1, 1, 0, 0])
    # left joints on row 10, right ones on row 30, the head between
    xy = np.array([[10.0 + 6 * k, 10.0 if 'left' in name else 30.0 if 'right' in name else 20.0]
                   for k, name in enumerate(JOINT_NAMES)])
    visible = np.ones(NUM_JOINTS, bool)
    image = debug_image_rgb(events, 100, 40, xy, visible)
    assert image.shape == (40, 100, 3) and image.dtype == np.uint8
    assert (image[1, 5] > image[1, 6]).any()                  # two events brighter than one
    assert image[1, 5, 0] > image[1, 5, 2] and image[1, 6, 2] > image[1, 6, 0]   # ON, OFF
    assert (image[0, 0] == 16).all()                          # background
    for name, color in (('hand_left', LEFT_COLOR), ('hand_right', RIGHT_COLOR),
                        ('head', CENTRE_COLOR)):
        x, y = xy[JOINT_INDEX[name]].astype(int)
        assert tuple(image[y, x]) == color, name
