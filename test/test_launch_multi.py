# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
``multi_camera.launch.py``'s wiring against the launch stand-ins of ``test_launch.py``.

The launch file creates its nodes in an OpaqueFunction from the camera config, so the
stand-ins' OpaqueFunction is called with a resolved context and the actions it returns are
checked: one 2D node per camera in its namespace, the 3D node wired to their pose topics and
calibration, the bag replay and RViz.
"""
from helpers import REPO_ROOT
from hybrid_pose_ros.geometry.calibration import load_calibration
from hybrid_pose_ros.ros.node_3d import PARAMETERS_3D
import pytest
from test_launch import console_scripts, load_description, share  # noqa: F401 (fixture)
import yaml

LAUNCH_FILE = REPO_ROOT / 'launch' / 'multi_camera.launch.py'
CONFIG = REPO_ROOT / 'config' / 'multi_camera.yaml'


def evaluate(description, overrides=None):
    """Resolve the arguments, run the OpaqueFunction; return (context, nodes, processes)."""
    actions = description.args[0]
    declared = [a for a in actions if type(a).__name__ == 'DeclareLaunchArgument']
    context = {a.args[0]: a.kwargs['default_value'] for a in declared}
    unknown = set(overrides or {}) - set(context)
    assert not unknown, f'not declared: {unknown}'
    assert all(a.kwargs.get('description') for a in declared)
    context.update(overrides or {})
    (setup,) = [a for a in actions if type(a).__name__ == 'OpaqueFunction']
    created = setup.kwargs['function'](context)
    nodes = [a.kwargs for a in created if type(a).__name__ == 'Node']
    processes = [a.kwargs for a in created if type(a).__name__ == 'ExecuteProcess']
    return context, nodes, processes


def test_defaults_run_one_2d_node_per_camera_and_the_3d_node(monkeypatch, share):  # noqa: F811
    installed = share / 'share' / 'hybrid_pose_ros'
    bag = installed / 'data' / 'sample_bag'
    if not bag.exists():
        with pytest.raises(ValueError, match='no calibration and no bag'):
            evaluate(load_description(monkeypatch, share, LAUNCH_FILE))
        pytest.skip('the sample bag is not installed')
    context, nodes, processes = evaluate(load_description(monkeypatch, share, LAUNCH_FILE))
    assert context['config'] == str(installed / 'config' / 'multi_camera.yaml')
    cam3, cam2, node_3d, rviz = nodes
    for node, name in ((cam3, 'cam3'), (cam2, 'cam2')):
        assert (node['executable'], node['name'], node['namespace']) == (
            'hybrid_pose_node', 'hybrid_pose_node', name)
        params_file, overrides = node['parameters']
        assert params_file == str(installed / 'config' / 'hybrid.yaml')
        assert overrides['events_topic'] == f'/{name}/events'
        assert overrides['frame_id'] == f'{name}_optical_frame'
        assert overrides['use_sim_time'] is True and overrides['input_type'] == 'dvs'
    assert node_3d['executable'] == 'hybrid_pose_3d_node'
    (params,) = node_3d['parameters']
    assert params['cameras'] == ['cam3', 'cam2']
    assert params['pose_topics'] == ['/cam3/hybrid_pose_node/pose',
                                     '/cam2/hybrid_pose_node/pose']
    assert params['frame_ids'] == ['cam3_optical_frame', 'cam2_optical_frame']
    assert rviz['executable'] == 'rviz2'
    with open(rviz['arguments'][-1]) as f:
        assert yaml.safe_load(f)['Visualization Manager']['Global Options'][
            'Fixed Frame'] == 'world'
    assert params['calibration_files'] == [str(bag / 'cameras.yaml')] * 2
    assert set(load_calibration(params['calibration_files'][0])) >= {'cam3', 'cam2'}
    (play,) = processes
    assert play['cmd'][:4] == ['ros2', 'bag', 'play', str(bag)] and '--clock' in play['cmd']


def test_executables_are_console_scripts(monkeypatch, share, tmp_path):  # noqa: F811
    config = tmp_path / 'two.yaml'
    config.write_text(yaml.safe_dump({'cameras': [
        {'name': f'c{i}', 'events_topic': f'/c{i}/events', 'calibration': 'rig.yaml'}
        for i in range(2)]}))
    _, nodes, _ = evaluate(load_description(monkeypatch, share, LAUNCH_FILE), {
        'config': str(config), 'rviz': 'false', 'bag': ''})
    assert nodes[-1]['parameters'][0]['calibration_files'][0] == str(
        share / 'share' / 'hybrid_pose_ros' / 'rig.yaml')     # relative to the share folder
    assert {n['executable'] for n in nodes} <= console_scripts()


def test_config_parameters_are_valid_for_the_3d_node():
    with open(CONFIG) as f:
        config = yaml.safe_load(f)
    specs = {spec.name: spec for spec in PARAMETERS_3D}
    for name, value in config['hybrid_pose_3d_node'].items():
        assert name in specs, name
        assert specs[name].check(value) is None, name
        assert type(value) is type(specs[name].default), name
    assert {'name', 'events_topic', 'frame_id', 'calibration'} <= set(config['cameras'][0])


def test_a_custom_config_bag_and_calibration(monkeypatch, share, tmp_path):  # noqa: F811
    calibration = tmp_path / 'rig.yaml'
    calibration.write_text('cameras: {}\n')
    config = tmp_path / 'three.yaml'
    config.write_text(yaml.safe_dump({'cameras': [
        {'name': f'c{i}', 'events_topic': f'/c{i}/events', 'calibration': str(calibration)}
        for i in range(3)], 'hybrid_pose_3d_node': {'world_frame': 'map'},
        'hybrid_pose_node': {'min_confidence': 0.2}}))
    _, nodes, processes = evaluate(load_description(monkeypatch, share, LAUNCH_FILE), {
        'config': str(config), 'bag': '', 'rviz': 'false', 'use_sim_time': 'false',
        'device': 'cuda:0', 'checkpoint': '/models/x.pt', 'input_type': 'event_packet'})
    assert processes == []
    *cameras, node_3d = nodes
    assert [n['namespace'] for n in cameras] == ['c0', 'c1', 'c2']
    overrides = cameras[0]['parameters'][1]
    assert (overrides['device'], overrides['checkpoint'], overrides['input_type'],
            overrides['min_confidence'], overrides['frame_id'], overrides['use_sim_time']) == (
        'cuda:0', '/models/x.pt', 'event_packet', 0.2, '', False)
    (params,) = node_3d['parameters']
    assert params['world_frame'] == 'map' and 'frame_ids' not in params
    assert params['calibration_files'] == [str(calibration)] * 3


def test_bad_launch_inputs_are_reported(monkeypatch, share, tmp_path):  # noqa: F811
    description = load_description(monkeypatch, share, LAUNCH_FILE)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        evaluate(description, {'bag': str(tmp_path / 'nope')})
    config = tmp_path / 'one.yaml'
    config.write_text(yaml.safe_dump({'cameras': [{'name': 'a', 'events_topic': '/e'}]}))
    with pytest.raises(ValueError, match='at least two cameras'):
        evaluate(description, {'config': str(config)})
