# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
What ``hybrid.launch.py`` starts for its arguments, and what it refuses before starting anything.

The launch file hands its arguments to ``launch_support.plan_single``; these tests call it
against a share folder installed from ``setup.py``'s data_files (as colcon installs it), so they
run without the launch system. ``test_launch_ros2.py`` runs the same launch files under the real
``ros2 launch``.
"""
import re
import subprocess
import sys

from helpers import REPO_ROOT
from hybrid_pose_ros.ros import launch_support as ls
import pytest
import yaml

PACKAGE_SHARE = ('share', 'hybrid_pose_ros')


@pytest.fixture(scope='module')
def share(tmp_path_factory):
    """Install the package's data_files into a prefix, as colcon would; return its share."""
    prefix = tmp_path_factory.mktemp('install')
    subprocess.run([sys.executable, 'setup.py', '-q', 'install_data', '-d', str(prefix)],
                   cwd=REPO_ROOT, check=True, capture_output=True)
    return prefix.joinpath(*PACKAGE_SHARE)


@pytest.fixture
def tools(monkeypatch):
    """Pretend rviz2 is installed and rosbag2 is not, whatever this machine has."""
    monkeypatch.setattr(ls, 'rviz_available', lambda: True)
    monkeypatch.setattr(ls, 'ros2_bag_available', lambda: False)


def arguments(share, **given) -> dict[str, str]:
    """Return the launch arguments' values: the declared defaults and ``given``."""
    defaults = ls.share_defaults(share)
    values = {name: defaults.get(name, default) for name, default, _ in ls.SINGLE_ARGUMENTS}
    assert set(given) <= set(values), set(given) - set(values)
    return {**values, **given}


def node_of(plan: ls.Plan) -> tuple[ls.Process, str, dict]:
    (node,) = [p for p in plan.processes if p.executable == 'hybrid_pose_node']
    params_file, overrides = node.parameters
    return node, params_file, overrides


def test_defaults_play_the_sample_bag_into_the_node_with_rviz_for_its_frame(
        share, tools, tmp_path):
    plan = ls.plan_single(arguments(share), share, tmp_path)
    node, params_file, overrides = node_of(plan)
    assert (node.name, node.namespace, node.package) == (
        'hybrid_pose_node', '/hybrid_pose', 'hybrid_pose_ros')
    assert params_file == str(share / 'config' / 'hybrid.yaml')
    # the bag's topic and type beat the params file's live defaults (events, event_packet)
    assert overrides == {'events_topic': '/cam3/events', 'input_type': 'dvs',
                         'use_sim_time': True}
    node_, replay, rviz = plan.processes
    assert replay.executable == 'hybrid_pose_replay' and replay.ends_launch
    assert replay.arguments == [str((share / 'data' / 'sample_bag').resolve()), '--clock',
                                '--loop', '0']
    assert rviz.executable == 'rviz2' and not rviz.ends_launch
    assert rviz.parameters == [{'use_sim_time': True}]
    config = yaml.safe_load((tmp_path / 'hybrid.rviz').read_text())
    manager = config['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'cam3_optical_frame'
    assert {d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d} == {
        '/hybrid_pose/hybrid_pose_node/skeleton', '/hybrid_pose/hybrid_pose_node/debug_image'}
    assert rviz.arguments == ['-d', str(tmp_path / 'hybrid.rviz')]


def test_rviz_follows_the_namespace_and_frame(share, tools, tmp_path):
    ls.plan_single(arguments(share, namespace='/left/cam', frame_id='left_optical'), share,
                   tmp_path)
    manager = yaml.safe_load((tmp_path / 'hybrid.rviz').read_text())['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'left_optical'
    assert {d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d} == {
        '/left/cam/hybrid_pose_node/skeleton', '/left/cam/hybrid_pose_node/debug_image'}


@pytest.mark.parametrize('live', [{'play_bag': 'false'}, {'bag': 'none'}, {'bag': ''},
                                  {'bag': 'NONE', 'play_bag': 'False'}])
def test_live_mode_starts_the_node_alone_on_wall_time(share, tools, tmp_path, live):
    plan = ls.plan_single(arguments(share, rviz='false', **live), share, tmp_path)
    node, _, overrides = node_of(plan)
    assert plan.processes == [node]
    # nothing overrides the params file but use_sim_time
    assert overrides == {'use_sim_time': False}


def test_live_arguments_override_the_params_file_only_when_given(share, tools, tmp_path):
    user_file = tmp_path / 'mine.yaml'
    user_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'events_topic': '/event_camera/events', 'input_type': 'event_packet',
        'device': 'cuda:1', 'checkpoint': '/models/mine.pt'}}}))
    checkpoint = tmp_path / 'other.pt'
    checkpoint.write_bytes(b'')
    base = {'play_bag': 'false', 'rviz': 'false', 'params_file': str(user_file)}
    _, params_file, overrides = node_of(ls.plan_single(arguments(share, **base), share,
                                                       tmp_path))
    assert params_file == str(user_file) and overrides == {'use_sim_time': False}
    _, _, overrides = node_of(ls.plan_single(arguments(
        share, **base, events_topic='/dvs/events', input_type='dvs', device='cpu',
        checkpoint=str(checkpoint), frame_id='dvs_optical', use_sim_time='true'), share,
        tmp_path))
    assert overrides == {'events_topic': '/dvs/events', 'input_type': 'dvs', 'device': 'cpu',
                         'checkpoint': str(checkpoint), 'frame_id': 'dvs_optical',
                         'use_sim_time': True}


def test_a_params_file_topic_in_the_bag_is_kept(share, tools, tmp_path):
    user_file = tmp_path / 'cam2.yaml'
    user_file.write_text(yaml.safe_dump({'/hybrid_pose/hybrid_pose_node': {'ros__parameters': {
        'events_topic': '/cam2/events', 'min_confidence': 0.1}}}))
    _, _, overrides = node_of(ls.plan_single(arguments(
        share, params_file=str(user_file), rviz='false'), share, tmp_path))
    assert overrides['events_topic'] == '/cam2/events' and overrides['input_type'] == 'dvs'


def test_ros2_bag_play_where_rosbag2_exists(share, tools, tmp_path, monkeypatch):
    monkeypatch.setattr(ls, 'ros2_bag_available', lambda: True)
    plan = ls.plan_single(arguments(share, rviz='false'), share, tmp_path)
    (play,) = [p for p in plan.processes if p.name == 'bag_play']
    assert play.cmd[1:] == ['bag', 'play', str((share / 'data' / 'sample_bag').resolve()),
                            '--clock', '200', '--loop'] and play.ends_launch
    assert [p.name for p in ls.plan_single(arguments(share, rviz='false', bag_player='replay'),
                                           share, tmp_path).processes] == [
        'hybrid_pose_node', 'bag_replay']


def test_without_rviz2_a_warning_and_no_rviz(share, tmp_path, monkeypatch):
    monkeypatch.setattr(ls, 'rviz_available', lambda: False)
    plan = ls.plan_single(arguments(share, play_bag='false'), share, tmp_path)
    assert [p.name for p in plan.processes] == ['hybrid_pose_node']
    assert plan.warnings == [ls.RVIZ_MISSING]


@pytest.mark.parametrize('given, message', [
    ({'bag': '/no/such/bag'}, 'bag:=/no/such/bag: no such bag'),
    ({'play_bag': 'yes'}, "play_bag:='yes' must be true or false"),
    ({'rviz': '1'}, "rviz:='1' must be true or false"),
    ({'use_sim_time': 'on'}, "use_sim_time:='on' must be true or false"),
    ({'namespace': 'a b'}, 'is not a valid ROS namespace'),
    ({'params_file': '/no/params.yaml'}, 'params_file:=/no/params.yaml: no such file'),
    ({'checkpoint': '/no/model.pt'}, 'checkpoint:=/no/model.pt: no such file'),
    ({'device': 'gpu'}, "device:=gpu must be 'cpu', 'cuda' or 'cuda:N'"),
    ({'events_topic': '/cam9/events'}, 'events_topic:=/cam9/events (/cam9/events) is not in '
     'the bag; its event topics: /cam2/events (dvs), /cam3/events (dvs)'),
    ({'input_type': 'event_packet'}, 'input_type:=event_packet does not match /cam3/events'),
    ({'input_type': 'png'}, 'input_type:=png must be one of event_packet, dvs'),
    ({'bag_player': 'vlc'}, 'bag_player:=vlc must be one of auto, ros2bag, replay'),
    ({'bag_player': 'ros2bag'}, 'ros2 bag (rosbag2) is not installed'),
])
def test_wrong_arguments_are_refused_before_anything_starts(share, tools, tmp_path, given,
                                                            message):
    with pytest.raises(ls.LaunchArgumentError, match=re.escape(message)):
        ls.plan_single(arguments(share, **given), share, tmp_path)


def test_wrong_params_files_and_bags_are_refused(share, tools, tmp_path):
    bad_value = tmp_path / 'bad.yaml'
    bad_value.write_text(yaml.safe_dump({'/**': {'ros__parameters': {'min_confidence': 'x'}}}))
    with pytest.raises(ls.LaunchArgumentError, match='min_confidence must be of type float'):
        ls.plan_single(arguments(share, params_file=str(bad_value)), share, tmp_path)
    no_section = tmp_path / 'flat.yaml'
    no_section.write_text('/**:\n  device: cpu\n')
    with pytest.raises(ls.LaunchArgumentError, match='has no ros__parameters mapping'):
        ls.plan_single(arguments(share, params_file=str(no_section)), share, tmp_path)
    not_a_bag = tmp_path / 'not_a_bag'
    not_a_bag.mkdir()
    with pytest.raises(ls.LaunchArgumentError, match='cannot be read as a bag'):
        ls.plan_single(arguments(share, bag=str(not_a_bag)), share, tmp_path)


def test_a_bag_with_several_event_topics_needs_a_choice(share, tools, tmp_path):
    # a copy of the sample bag is not the sample bag: its two cameras are not chosen between
    copy = tmp_path / 'copy'
    copy.mkdir()
    for file in (share / 'data' / 'sample_bag').iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    with pytest.raises(ls.LaunchArgumentError, match='several event topics'):
        ls.plan_single(arguments(share, bag=str(copy)), share, tmp_path)
    _, _, overrides = node_of(ls.plan_single(arguments(
        share, bag=str(copy), events_topic='/cam2/events', rviz='false'), share, tmp_path))
    assert overrides['events_topic'] == '/cam2/events'


def test_relative_topics_resolve_in_the_namespace():
    bag = ls.BagEvents({'/hybrid_pose/events': 'event_packet'}, ros1=False)
    assert ls.choose_events('events', '', {}, '/hybrid_pose', bag) == {
        'events_topic': '/hybrid_pose/events', 'input_type': 'event_packet'}
    assert ls.check_namespace('') == '/' and ls.resolve_topic('events', '/') == '/events'
