# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
What ``multi_camera.launch.py`` starts: one 2D node per camera, the 3D node, a player, RViz.

``launch_support.plan_multi`` against a share folder installed from setup.py (the ``share``
fixture of ``test_launch.py``), with the sample bag and live.
"""
import re

from hybrid_pose_ros.geometry.calibration import load_calibration
from hybrid_pose_ros.ros import launch_support as ls
from hybrid_pose_ros.ros.node_3d import PARAMETERS_3D
import pytest
from test_launch import share, tools  # noqa: F401 (fixtures)
import yaml


def arguments(share, **given) -> dict[str, str]:  # noqa: F811
    """Return the launch arguments' values: the declared defaults and ``given``."""
    defaults = ls.share_defaults(share)
    values = {name: defaults.get(name, default) for name, default, _ in ls.MULTI_ARGUMENTS}
    assert set(given) <= set(values), set(given) - set(values)
    return {**values, **given}


def write_config(path, cameras, **sections):
    path.write_text(yaml.safe_dump({'cameras': cameras, **sections}))
    return str(path)


def test_defaults_run_one_2d_node_per_camera_and_the_3d_node_on_the_bag(
        share, tools, tmp_path):  # noqa: F811
    plan = ls.plan_multi(arguments(share), share, tmp_path)
    cam3, cam2, node_3d, replay, rviz = plan.processes
    bag = (share / 'data' / 'sample_bag').resolve()
    for node, name in ((cam3, 'cam3'), (cam2, 'cam2')):
        assert (node.executable, node.name, node.namespace) == (
            'hybrid_pose_node', 'hybrid_pose_node', f'/{name}')
        params_file, overrides = node.parameters
        assert params_file == str(share / 'config' / 'hybrid.yaml')
        assert overrides == {'events_topic': f'/{name}/events', 'input_type': 'dvs',
                             'frame_id': f'{name}_optical_frame', 'use_sim_time': True}
    (params,) = node_3d.parameters
    assert params['cameras'] == ['cam3', 'cam2'] and params['use_sim_time'] is True
    assert params['pose_topics'] == ['/cam3/hybrid_pose_node/pose',
                                     '/cam2/hybrid_pose_node/pose']
    assert params['frame_ids'] == ['cam3_optical_frame', 'cam2_optical_frame']
    assert params['calibration_files'] == [str(bag / 'cameras.yaml')] * 2
    assert set(load_calibration(params['calibration_files'][0])) >= {'cam3', 'cam2'}
    assert replay.arguments == [str(bag), '--clock', '--loop', '0']
    manager = yaml.safe_load((tmp_path / 'multi_camera.rviz').read_text())[
        'Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'world'
    assert [d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d] == [
        '/hybrid_pose_3d_node/skeleton_3d', '/cam3/hybrid_pose_node/debug_image',
        '/cam2/hybrid_pose_node/debug_image']
    assert rviz.arguments == ['-d', str(tmp_path / 'multi_camera.rviz')]


def test_live_with_calibration_files(share, tools, tmp_path):  # noqa: F811
    calibration = tmp_path / 'rig.yaml'
    calibration.write_text('cameras: {}\n')
    config = write_config(tmp_path / 'three.yaml', [
        {'name': f'c{i}', 'events_topic': f'/c{i}/events', 'calibration': str(calibration)}
        for i in range(3)], hybrid_pose_3d_node={'world_frame': 'map'},
        hybrid_pose_node={'min_confidence': 0.2})
    checkpoint = tmp_path / 'x.pt'
    checkpoint.write_bytes(b'')
    plan = ls.plan_multi(arguments(share, config=config, play_bag='false', rviz='false',
                                   device='cuda:0', checkpoint=str(checkpoint),
                                   input_type='event_packet'), share, tmp_path)
    *cameras, node_3d = plan.processes
    assert [n.namespace for n in cameras] == ['/c0', '/c1', '/c2']
    assert cameras[0].parameters[1] == {
        'min_confidence': 0.2, 'device': 'cuda:0', 'checkpoint': str(checkpoint),
        'events_topic': '/c0/events', 'input_type': 'event_packet', 'frame_id': '',
        'use_sim_time': False}
    (params,) = node_3d.parameters
    assert params['world_frame'] == 'map' and 'frame_ids' not in params
    assert params['calibration_files'] == [str(calibration)] * 3
    assert params['use_sim_time'] is False


def test_calibration_relative_to_the_share_folder(share, tools, tmp_path):  # noqa: F811
    config = write_config(tmp_path / 'two.yaml', [
        {'name': f'c{i}', 'events_topic': f'/c{i}/events',
         'calibration': 'data/sample_bag/cameras.yaml'} for i in range(2)])
    plan = ls.plan_multi(arguments(share, config=config, bag='none', rviz='false'), share,
                         tmp_path)
    assert plan.processes[-1].parameters[0]['calibration_files'] == [
        str(share / 'data' / 'sample_bag' / 'cameras.yaml')] * 2


def test_config_parameters_are_valid_for_the_3d_node():
    config = yaml.safe_load((ls.pathlib.Path(__file__).parents[1] / 'config' /
                             'multi_camera.yaml').read_text())
    specs = {spec.name: spec for spec in PARAMETERS_3D}
    for name, value in config['hybrid_pose_3d_node'].items():
        assert name in specs, name
        assert specs[name].check(value) is None, name
        assert type(value) is type(specs[name].default), name
    assert {'name', 'events_topic', 'frame_id', 'calibration'} <= set(config['cameras'][0])


@pytest.mark.parametrize('cameras, given, message', [
    ([{'name': 'a', 'events_topic': '/e'}], {}, 'needs at least two cameras'),
    ([{'name': 'a', 'events_topic': '/e'}, {'name': 'a', 'events_topic': '/f'}], {},
     'camera names must be unique'),
    ([{'name': 'a'}, {'name': 'b', 'events_topic': '/f'}], {}, 'needs a name and an events_topic'),
    ([{'name': 'a', 'events_topic': '/a/events'}, {'name': 'b', 'events_topic': '/b/events'}],
     {'play_bag': 'false'}, "camera 'a' has no calibration and no bag is played"),
    ([{'name': 'a', 'events_topic': '/a/events', 'calibration': '/no/rig.yaml'},
      {'name': 'b', 'events_topic': '/b/events', 'calibration': '/no/rig.yaml'}],
     {'play_bag': 'false'}, "camera 'a': calibration /no/rig.yaml (/no/rig.yaml) does not exist"),
    ([{'name': 'a', 'events_topic': '/a/events'}, {'name': 'b', 'events_topic': '/b/events'}],
     {}, "camera 'a': events_topic:=/a/events (/a/events) is not in the bag"),
])
def test_bad_configs_are_refused_before_anything_starts(
        share, tools, tmp_path, cameras, given, message):  # noqa: F811
    config = write_config(tmp_path / 'c.yaml', cameras)
    with pytest.raises(ls.LaunchArgumentError, match=re.escape(message)):
        ls.plan_multi(arguments(share, config=config, **given), share, tmp_path)
    with pytest.raises(ls.LaunchArgumentError, match='config:=/no/c.yaml: no such file'):
        ls.plan_multi(arguments(share, config='/no/c.yaml'), share, tmp_path)
