# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Boundaries of the node's rules: parameter bounds, the other checks and ``messages_lost``.

Every bound is tried just inside and just outside, the other checks at their edges, and
``messages_lost`` must count one per lost message, not one per gap.

The bounds are written out here, not read from ``parameters.py``: a changed bound must fail.
"""
import math
from types import SimpleNamespace

from hybrid_pose_ros.ros import node as node_module
from hybrid_pose_ros.ros.parameters import MAX_SENSOR_SIZE, PARAMETERS, validate
import pytest

# name: (smallest valid value, largest valid value or None)
BOUNDS = {
    'threads': (1, None),
    'qos_depth': (1, None),
    'sensor_width': (0, 8192),
    'sensor_height': (0, 8192),
    'event_time_outlier_s': (0.0, None),
    'bin_us': (0, None),
    'ann_lead_bins': (0, None),
    'max_pending_bins': (1, None),
    'marker_pixel_size': (1e-9, None),
    'marker_plane_depth': (1e-6, None),
    'marker_lifetime': (0.0, None),
    'marker_rate_hz': (0.0, None),
    'min_confidence': (0.0, None),
    'diagnostics_period': (0.05, None),
    'debug_image_rate_hz': (0.1, 100.0),
    'debug_image_span_s': (0.01, 1.0),
    'no_input_timeout': (0.0, None),
}


def _below(value: int | float) -> int | float:
    """Return the closest value of the same type below ``value``."""
    return value - 1 if isinstance(value, int) else math.nextafter(value, -math.inf)


def _above(value: int | float) -> int | float:
    """Return the closest value of the same type above ``value``."""
    return value + 1 if isinstance(value, int) else math.nextafter(value, math.inf)


def test_every_numeric_parameter_has_its_bounds_listed_here():
    numeric = {spec.name for spec in PARAMETERS
               if type(spec.default) in (int, float)}
    assert numeric == set(BOUNDS)
    assert MAX_SENSOR_SIZE == 8192


@pytest.mark.parametrize('name', sorted(BOUNDS))
def test_each_bound_accepts_just_inside_and_rejects_just_outside(name):
    low, high = BOUNDS[name]
    assert validate(name, low) is None
    assert validate(name, _above(low)) is None
    assert validate(name, _below(low)) == f'must be >= {low}'
    if high is None:
        big = 10**9 if isinstance(low, int) else 1e9
        assert validate(name, big) is None
    else:
        assert validate(name, high) is None
        assert validate(name, _below(high)) is None
        assert validate(name, _above(high)) == f'must be <= {high}'
    assert validate(name, math.nan if isinstance(low, float) else None) is not None


@pytest.mark.parametrize('name, value, expected', [
    ('threads', 2.0, 'must be of type int, got float'),
    ('threads', True, 'must be of type int, got bool'),
    ('marker_lifetime', 0, None),                    # an int where a float is expected
    ('marker_lifetime', -1, 'must be >= 0.0'),
    ('debug_image', 1, 'must be of type bool, got int'),
    ('events_topic', '', 'must be a non-empty topic name'),
    ('events_topic', 'my events', 'must be a non-empty topic name'),
    ('events_topic', '/a/b', None),
    ('checkpoint', 'anything.pt', None),
    ('frame_id', '', None),
    ('device', 'cpu', None),
    ('device', 'cuda', None),
    ('device', 'cuda:12', None),
    ('device', 'cuda:', "must be 'cpu', 'cuda' or 'cuda:N'"),
    ('device', 'cuda:x', "must be 'cpu', 'cuda' or 'cuda:N'"),
    ('device', 'xcuda:1', "must be 'cpu', 'cuda' or 'cuda:N'"),
    ('snn_backend', 'sparse', None),
    ('snn_backend', 'dense', None),
    ('snn_backend', 'Sparse', 'must be one of dense, sparse'),
    ('qos_reliability', 'reliable', None),
    ('qos_reliability', 'volatile', 'must be one of best_effort, reliable'),
    ('input_type', 'dvs', None),
    ('packet_encoding', 'auto', None),
    ('ann_runtime', 'tensorrt', 'must be one of torch, openvino, auto'),
])
def test_other_checks_at_their_edges(name, value, expected):
    assert validate(name, value) == expected


@pytest.mark.parametrize('value, valid', [
    ([0.0, 0.0, 173.0, 130.0], True),        # both zero: marker_pixel_size is used
    ([1e-6, 1e-6, 0.0, 0.0], True),
    ([500.0, 0.0, 173.0, 130.0], False),
    ([0.0, 500.0, 173.0, 130.0], False),
    ([-1.0, -1.0, 173.0, 130.0], False),
    ([500.0, 500.0, 173.0], False),
    ([500.0, 500.0, 173.0, 130.0, 1.0], False),
])
def test_intrinsics_need_both_focal_lengths_positive_or_both_zero(value, valid):
    reason = validate('camera_intrinsics', value)
    if valid:
        assert reason is None
    elif len(value) != 4:
        assert reason == 'must be [fx, fy, cx, cy]'
    else:
        assert reason == 'fx and fy must both be > 0 (or both 0 to use marker_pixel_size)'


def _lost_counter() -> SimpleNamespace:
    """Return a stand-in for the node with what its sequence-gap counting uses."""
    fake = SimpleNamespace(last_sequence={}, events_topic='/t', stats={'messages_lost': 0},
                           warnings=[])
    fake._warn = lambda counter, message, amount=1: (
        fake.stats.__setitem__(counter, fake.stats[counter] + amount),
        fake.warnings.append(message))
    return fake


def _info(gid: int, sequence: int) -> dict:
    return {'publisher_gid': {'data': [gid] * 16}, 'publication_sequence_number': sequence}


def test_messages_lost_counts_each_lost_message_of_every_gap():
    fake = _lost_counter()
    for gid, sequence in [(1, 1), (1, 2), (1, 6), (2, 10), (1, 7), (2, 11), (2, 14),
                          (1, 9), (1, 9)]:
        node_module.HybridPoseNode._count_lost(fake, _info(gid, sequence))
    # publisher 1: 3, 4, 5 and 8 lost (a repeated number is no loss); publisher 2: 12 and 13
    assert fake.stats['messages_lost'] == 6
    assert fake.warnings == ['3 message(s) on /t lost before they reached the node',
                             '2 message(s) on /t lost before they reached the node',
                             '1 message(s) on /t lost before they reached the node']
    assert fake.last_sequence == {bytes([1] * 16): 9, bytes([2] * 16): 14}


def test_messages_lost_needs_a_publisher_and_a_sequence_number():
    fake = _lost_counter()
    for info in [None, {}, _info(1, 0), {'publisher_gid': None,
                                         'publication_sequence_number': 5}, _info(1, 3)]:
        node_module.HybridPoseNode._count_lost(fake, info)
    assert fake.stats['messages_lost'] == 0 and fake.last_sequence == {bytes([1] * 16): 3}


@pytest.mark.parametrize('spec', PARAMETERS, ids=lambda spec: spec.name)
def test_descriptors_carry_the_bounds_and_the_read_only_flag(spec):
    descriptor = spec.descriptor()
    assert descriptor.description == spec.description and descriptor.dynamic_typing
    assert descriptor.read_only == spec.read_only
    plain = spec.descriptor(ranges=False)
    assert (list(plain.integer_range), list(plain.floating_point_range)) == ([], [])
    if spec.name not in BOUNDS:
        assert (list(descriptor.integer_range), list(descriptor.floating_point_range)) == ([], [])
        return
    low, high = BOUNDS[spec.name]
    if isinstance(spec.default, int):
        (bound,) = descriptor.integer_range
        assert (bound.from_value, bound.to_value, bound.step) == (
            low, 2**63 - 1 if high is None else high, 0)
        assert list(descriptor.floating_point_range) == []
    else:
        (bound,) = descriptor.floating_point_range
        assert (bound.from_value, bound.to_value, bound.step) == (
            low, math.inf if high is None else high, 0.0)
        assert list(descriptor.integer_range) == []


def test_parameters_read_at_start_up_only_are_read_only():
    read_only = {spec.name for spec in PARAMETERS if spec.read_only}
    assert {'checkpoint', 'device', 'threads', 'input_type', 'events_topic', 'bin_us',
            'sensor_width'} <= read_only
    assert not {'max_pending_bins', 'min_confidence', 'marker_rate_hz'} & read_only
