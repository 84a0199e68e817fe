# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
The launch file's wiring, checked in every environment.

launch and launch_ros have no wheels, so where they are missing this test runs
``generate_launch_description()`` against minimal stand-ins that record the actions it creates,
and checks executables, parameters and every file it refers to against a share directory
installed from ``setup.py``'s data_files. Where launch_ros exists the real classes are used to
build the description too (``test_real_launch_description_builds``).
"""
import ast
import importlib.util
import subprocess
import sys
import types

from helpers import REPO_ROOT
import pytest
import yaml

LAUNCH_FILE = REPO_ROOT / 'launch' / 'hybrid.launch.py'


class Recorded:
    """Base of the stand-ins: keeps the constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(Recorded):
    def perform(self, context):
        return context[self.args[0]]


def stand_in_modules() -> dict[str, types.ModuleType]:
    names = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument', 'ExecuteProcess', 'OpaqueFunction'],
        'launch.conditions': ['IfCondition'],
        'launch.substitutions': [],
        'launch_ros': [],
        'launch_ros.actions': ['Node'],
    }
    modules = {}
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
        modules[module_name] = module
    modules['launch.substitutions'].LaunchConfiguration = LaunchConfiguration
    return modules


@pytest.fixture(scope='module')
def share(tmp_path_factory):
    """Install the package's data_files into a prefix, as colcon would."""
    prefix = tmp_path_factory.mktemp('install')
    subprocess.run([sys.executable, 'setup.py', '-q', 'install_data', '-d', str(prefix)],
                   cwd=REPO_ROOT, check=True, capture_output=True)
    return prefix


def load_description(monkeypatch, prefix, launch_file=LAUNCH_FILE):
    """Import a launch file with the stand-ins and the share at prefix; return its description."""
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(prefix))
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(launch_file.stem.replace('.', '_'), launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def resolve(value, context):
    if isinstance(value, LaunchConfiguration):
        return value.perform(context)
    if isinstance(value, dict):
        return {k: resolve(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    return value


def evaluate(description, overrides=None):
    """Resolve arguments and return (context, nodes, processes) as launch would."""
    actions = description.args[0]
    declared = [a for a in actions if type(a).__name__ == 'DeclareLaunchArgument']
    context = {a.args[0]: a.kwargs['default_value'] for a in declared}
    unknown = set(overrides or {}) - set(context)
    assert not unknown, f'not declared: {unknown}'
    context.update(overrides or {})
    nodes, processes = [], []
    for action in actions:
        kind = type(action).__name__
        if kind == 'Node':
            condition = action.kwargs.get('condition')
            if condition is None or resolve(condition.args[0], context) == 'true':
                nodes.append(resolve(action.kwargs, context))
        elif kind == 'OpaqueFunction':
            processes += [resolve(p.kwargs, context)
                          for p in action.kwargs['function'](context)]
    return context, declared, nodes, processes


def console_scripts():
    tree = ast.parse((REPO_ROOT / 'setup.py').read_text())
    scripts = next(node for node in ast.walk(tree) if isinstance(node, ast.Dict)
                   and any(getattr(k, 'value', None) == 'console_scripts' for k in node.keys))
    return {s.value.split('=')[0].strip() for s in scripts.values[0].elts}


def test_defaults_start_the_node_with_installed_files_and_rviz(monkeypatch, share):
    description = load_description(monkeypatch, share)
    context, declared, nodes, processes = evaluate(description)
    assert {a.args[0] for a in declared} == {
        'params_file', 'checkpoint', 'device', 'events_topic', 'input_type', 'namespace',
        'use_sim_time', 'rviz', 'bag'}
    assert all(a.kwargs.get('description') for a in declared)
    node, rviz = nodes
    assert node['package'] == 'hybrid_pose_ros'
    assert node['executable'] in console_scripts()
    assert (node['name'], node['namespace']) == ('hybrid_pose_node', 'hybrid_pose')
    params_file, overrides = node['parameters']
    with open(params_file) as f:
        assert 'ros__parameters' in yaml.safe_load(f)['/**']
    assert params_file.startswith(str(share))
    assert overrides['use_sim_time'] == 'true' and overrides['input_type'] == 'dvs'
    rviz_config = rviz['arguments'][1]
    assert rviz['executable'] == 'rviz2' and rviz_config.startswith(str(share))
    with open(rviz_config) as f:
        displays = yaml.safe_load(f)['Visualization Manager']['Displays']
    topics = {d['Topic']['Value'] for d in displays if 'Topic' in d}
    assert topics == {'/hybrid_pose/hybrid_pose_node/skeleton',
                      '/hybrid_pose/hybrid_pose_node/debug_image'}
    bag = share / 'share' / 'hybrid_pose_ros' / 'data' / 'sample_bag'
    if bag.exists():
        (play,) = processes
        assert play['cmd'][:4] == ['ros2', 'bag', 'play', str(bag)]
    else:
        assert context['bag'] == '' and processes == []


def test_arguments_reach_the_node_and_rviz_can_be_off(monkeypatch, share, tmp_path):
    bag = tmp_path / 'my_bag'
    bag.mkdir()
    description = load_description(monkeypatch, share)
    _, _, nodes, processes = evaluate(description, {
        'rviz': 'false', 'device': 'cuda:0', 'events_topic': '/dvs/events',
        'checkpoint': '/models/x.pt', 'namespace': 'cam_left', 'bag': str(bag)})
    (node,) = nodes
    overrides = node['parameters'][1]
    assert (overrides['device'], overrides['events_topic'], overrides['checkpoint']) == (
        'cuda:0', '/dvs/events', '/models/x.pt')
    assert node['namespace'] == 'cam_left'
    (play,) = processes
    assert play['cmd'][3] == str(bag) and '--clock' in play['cmd']


def test_a_missing_bag_is_reported(monkeypatch, share, tmp_path):
    description = load_description(monkeypatch, share)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        evaluate(description, {'bag': str(tmp_path / 'nope')})


def test_real_launch_description_builds(share, monkeypatch):
    pytest.importorskip('launch_ros', reason='launch_ros is not installable from PyPI; '
                        'this runs on machines with ROS 2 installed')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(share))
    spec = importlib.util.spec_from_file_location('hybrid_launch_real', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.generate_launch_description().entities) >= 10
