# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The parameter file lists the parameter table, and validation gives reasons."""
from helpers import REPO_ROOT
from hybrid_pose_ros.ros import convert
from hybrid_pose_ros.ros.interfaces import EVENT_ARRAY, EVENT_PACKET
from hybrid_pose_ros.ros.parameters import PARAMETER_BY_NAME, PARAMETERS, validate
import yaml


def test_config_file_lists_every_parameter_with_its_default():
    with open(REPO_ROOT / 'config' / 'hybrid.yaml') as f:
        values = yaml.safe_load(f)['/**']['ros__parameters']
    assert values == {spec.name: spec.default for spec in PARAMETERS}


def test_every_default_is_valid():
    for spec in PARAMETERS:
        assert validate(spec.name, spec.default) is None, spec.name


def test_invalid_values_are_rejected_with_a_reason():
    assert validate('device', 'gpu') == "must be 'cpu', 'cuda' or 'cuda:N'"
    assert validate('device', 'cuda:1') is None
    assert validate('input_type', 'evt3') == 'must be one of event_packet, dvs'
    assert validate('qos_depth', 0) == 'must be >= 1'
    assert validate('qos_depth', 'ten') == 'must be of type int, got str'
    assert validate('camera_intrinsics', [500.0, -1.0, 173.0, 130.0]).startswith('fx and fy')
    assert validate('camera_intrinsics', [500.0, 500.0, 173.0, 130.0]) is None
    assert validate('marker_lifetime', 1) is None
    assert validate('no_such_parameter', 1) == "unknown parameter 'no_such_parameter'"


def test_convert_aedat4_writes_what_the_node_reads_by_default(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(convert, 'aedat4_to_bag', lambda *args: calls.append(args) or {})
    convert.main(['aedat4', 'recording.aedat4', str(tmp_path / 'bag')])
    encoding = calls[0][2]
    written = {'packet': EVENT_PACKET, 'dvs': EVENT_ARRAY}[encoding]
    node_default = PARAMETER_BY_NAME['input_type'].default
    assert (node_default, written) == ('event_packet', EVENT_PACKET)
