"""
What the launch files decide before any process starts: checks, the bag, its player and RViz.

``launch/hybrid.launch.py`` and ``launch/multi_camera.launch.py`` call :func:`plan_single` and
:func:`plan_multi` from an ``OpaqueFunction`` and turn the plan into launch actions all at once
(:func:`to_actions`), so a wrong argument or a missing file stops the launch with one message
and nothing left running, and a node or bag player that exits ends the launch. Only
:func:`to_actions` imports launch.

Precedence of a node parameter: a launch argument when given, else the ``params_file``, else
the node's default. While a bag plays, the event topic must be one of the bag's and
``input_type`` follows that topic's message type.
"""
from dataclasses import dataclass, field
import importlib.util
import os
import pathlib
import re
import shutil
from typing import Any

from hybrid_pose_ros.ros.interfaces import EVENT_ARRAY, EVENT_PACKET, INPUT_TYPE_MESSAGES
import yaml

PACKAGE = 'hybrid_pose_ros'
NODE = 'hybrid_pose_node'
NO_BAG = ('', 'none')
"""``bag`` values that play no bag (``play_bag:=false`` does the same)."""
INPUT_TYPE_OF = {message: input_type for input_type, message in INPUT_TYPE_MESSAGES.items()}
BAG_PLAYERS = ('auto', 'ros2bag', 'replay')
ROS2_BAG_CLOCK_HZ = 200
"""``ros2 bag play --clock`` rate: sim time moves in 5 ms steps (its default 40 Hz is coarse)."""
DEFAULT_FRAME = 'event_camera_optical_frame'
"""RViz's fixed frame when neither ``frame_id`` nor a bag tells the camera's frame."""
RVIZ_MISSING = 'rviz2 is not installed: not starting RViz (rviz:=false silences this)'
_NAME = r'[A-Za-z_][A-Za-z0-9_]*'


class LaunchArgumentError(ValueError):
    """A launch argument or file that cannot work; raised before any process starts."""


def parse_bool(name: str, value: str) -> bool:
    """Return the boolean launch argument ``name`` (true/false, any case)."""
    lowered = value.strip().lower()
    if lowered not in ('true', 'false'):
        raise LaunchArgumentError(f'{name}:={value!r} must be true or false')
    return lowered == 'true'


def check_namespace(value: str) -> str:
    """Return ``value`` as an absolute ROS namespace ('/' for none), or raise."""
    stripped = value.strip().strip('/')
    if stripped and not re.fullmatch(rf'{_NAME}(/{_NAME})*', stripped):
        raise LaunchArgumentError(f'namespace:={value!r} is not a valid ROS namespace')
    return '/' + stripped


def resolve_topic(topic: str, namespace: str) -> str:
    """Return ``topic`` made absolute in ``namespace`` (as the node resolves it)."""
    if topic.startswith('/'):
        return topic
    return f'{namespace.rstrip("/")}/{topic}'


def existing_file(name: str, value: str) -> pathlib.Path:
    """Return the file named by launch argument ``name``, or raise if it does not exist."""
    path = pathlib.Path(value).expanduser()
    if not path.is_file():
        raise LaunchArgumentError(f'{name}:={value}: no such file')
    return path.resolve()


def resolve_bag(play_bag: str, bag: str) -> pathlib.Path | None:
    """Return the bag to play, None for live input (``play_bag:=false``, ``bag:=none``)."""
    if not parse_bool('play_bag', play_bag) or bag.strip().lower() in NO_BAG:
        return None
    path = pathlib.Path(bag).expanduser()
    if not path.exists():
        raise LaunchArgumentError(
            f'bag:={bag}: no such bag; give an existing bag folder or file, or run live with '
            'play_bag:=false')
    return path.resolve()


@dataclass(frozen=True)
class BagEvents:
    """The event topics of a bag and what the launch needs from them."""

    topics: dict[str, str]
    """Event topic -> the node's ``input_type`` for its message type."""
    ros1: bool
    """A ROS 1 bag (played by ``hybrid_pose_replay`` only)."""

    def frame_id(self, bag: pathlib.Path, topic: str) -> str:
        """Return the ``header.frame_id`` of the first message on ``topic``, '' if none."""
        from hybrid_pose_ros.ros.interfaces import event_typestore
        from rosbags.highlevel import AnyReader
        with AnyReader([bag], default_typestore=event_typestore()) as reader:
            connections = [c for c in reader.connections if c.topic == topic]
            for connection, _, raw in reader.messages(connections=connections):
                return reader.deserialize(raw, connection.msgtype).header.frame_id
        return ''


def bag_events(bag: pathlib.Path) -> BagEvents:
    """Read a bag's event topics (ROS 2 MCAP/sqlite3 or ROS 1), or raise if it is unreadable."""
    from hybrid_pose_ros.ros.interfaces import event_typestore
    from rosbags.highlevel import AnyReader
    try:
        with AnyReader([bag], default_typestore=event_typestore()) as reader:
            topics = {c.topic: INPUT_TYPE_OF[c.msgtype] for c in reader.connections
                      if c.msgtype in INPUT_TYPE_OF}
            ros1 = not reader.is2
    except Exception as error:   # rosbags raises several unrelated types for unreadable bags
        raise LaunchArgumentError(f'bag:={bag} cannot be read as a bag: {error}') from error
    if not topics:
        raise LaunchArgumentError(
            f'bag:={bag} holds no event topic ({EVENT_ARRAY} or {EVENT_PACKET})')
    return BagEvents(topics, ros1)


def choose_events(given_topic: str, given_type: str, file_parameters: dict[str, Any],
                  namespace: str, bag: BagEvents | None, preferred_topic: str = ''
                  ) -> dict[str, str]:
    """
    Return the ``events_topic`` and ``input_type`` overrides for a node (empty: the file's).

    Live: the launch arguments when given. With a bag: the given topic, else the file's when
    the bag has it, else the bag's only event topic (``preferred_topic`` among several), and
    the ``input_type`` of that topic in the bag; a given ``input_type`` must agree with it.
    """
    if given_type and given_type not in INPUT_TYPE_MESSAGES:
        raise LaunchArgumentError(
            f'input_type:={given_type} must be one of {", ".join(INPUT_TYPE_MESSAGES)}')
    if bag is None:
        return {k: v for k, v in (('events_topic', given_topic), ('input_type', given_type))
                if v}
    listed = ', '.join(f'{t} ({bag.topics[t]})' for t in sorted(bag.topics))
    file_topic = file_parameters.get('events_topic')
    if given_topic:
        topic = resolve_topic(given_topic, namespace)
        if topic not in bag.topics:
            raise LaunchArgumentError(
                f'events_topic:={given_topic} ({topic}) is not in the bag; its event topics: '
                f'{listed}')
    elif isinstance(file_topic, str) and resolve_topic(file_topic, namespace) in bag.topics:
        topic = resolve_topic(file_topic, namespace)
    elif len(bag.topics) == 1:
        (topic,) = bag.topics
    elif preferred_topic in bag.topics:
        topic = preferred_topic
    else:
        raise LaunchArgumentError(
            f'the bag has several event topics ({listed}): choose one with events_topic:=')
    if given_type and given_type != bag.topics[topic]:
        raise LaunchArgumentError(
            f'input_type:={given_type} does not match {topic} in the bag, which is '
            f'{INPUT_TYPE_MESSAGES[bag.topics[topic]]} (input_type {bag.topics[topic]})')
    return {'events_topic': topic, 'input_type': bag.topics[topic]}


def node_file_parameters(params_file: pathlib.Path, namespace: str,
                         name: str = 'hybrid_pose_node') -> dict[str, Any]:
    """
    Return the parameters a ROS parameter file gives node ``namespace/name``, checked.

    Sections apply as rcl applies them: ``/**`` first, then the ones naming the node. A value the
    node would reject raises here; names it does not know are left to the node.
    """
    try:
        document = yaml.safe_load(params_file.read_text())
    except yaml.YAMLError as error:
        raise LaunchArgumentError(f'params_file:={params_file} is not YAML: {error}') from error
    if not isinstance(document, dict):
        raise LaunchArgumentError(f'params_file:={params_file} is not a ROS parameter file')
    full = f'{namespace.rstrip("/")}/{name}'
    keys = ('/**', '**', f'/**/{name}', name, full.lstrip('/'), full)
    from hybrid_pose_ros.ros.parameters import validate   # imports torch: checked last
    merged: dict[str, Any] = {}
    for key in keys:
        section = document.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(
                section.get('ros__parameters'), dict):
            raise LaunchArgumentError(
                f'params_file:={params_file}: section {key!r} has no ros__parameters mapping')
        merged.update(section['ros__parameters'])
    for parameter, value in merged.items():
        problem = validate(parameter, value)
        if problem and not problem.startswith('unknown parameter'):
            raise LaunchArgumentError(f'params_file:={params_file}: {parameter} {problem}')
    return merged


def check_overrides(overrides: dict[str, Any]) -> None:
    """Raise if a node parameter given as a launch argument is invalid."""
    from hybrid_pose_ros.ros.parameters import validate
    for parameter, value in overrides.items():
        problem = validate(parameter, value)
        if problem:
            raise LaunchArgumentError(f'{parameter}:={value} {problem}')


def use_sim_time(value: str, playing: bool) -> bool:
    """Return ``use_sim_time``: as given, else true exactly while a bag plays."""
    return playing if not value.strip() else parse_bool('use_sim_time', value)


def ros2_bag_available() -> bool:
    """Return whether ``ros2 bag play`` exists (rosbag2's ros2bag verb and the ros2 command)."""
    return shutil.which('ros2') is not None and importlib.util.find_spec('ros2bag') is not None


def choose_player(player: str, bag_is_ros1: bool) -> str:
    """Return ``ros2bag`` or ``replay`` for launch argument ``bag_player``."""
    if player not in BAG_PLAYERS:
        raise LaunchArgumentError(f'bag_player:={player} must be one of {", ".join(BAG_PLAYERS)}')
    if player == 'ros2bag':
        if bag_is_ros1:
            raise LaunchArgumentError('ros2 bag play cannot play a ROS 1 bag: bag_player:=replay')
        if not ros2_bag_available():
            raise LaunchArgumentError('bag_player:=ros2bag but ros2 bag (rosbag2) is not '
                                      'installed; bag_player:=auto uses hybrid_pose_replay')
        return player
    if player == 'auto':
        return 'ros2bag' if ros2_bag_available() and not bag_is_ros1 else 'replay'
    return player


def ros2_bag_command(bag: pathlib.Path) -> list[str]:
    """Return the ``ros2 bag play`` command line: looped, bag time on /clock."""
    return [shutil.which('ros2') or 'ros2', 'bag', 'play', str(bag), '--clock',
            str(ROS2_BAG_CLOCK_HZ), '--loop']


def replay_arguments(bag: pathlib.Path) -> list[str]:
    """Return ``hybrid_pose_replay``'s arguments: looped, bag time on /clock."""
    return [str(bag), '--clock', '--loop', '0']


def rviz_available() -> bool:
    """Return whether RViz 2 is installed where launch_ros looks for it."""
    try:
        from ament_index_python.packages import get_package_prefix, PackageNotFoundError
    except ImportError:
        return False
    try:
        prefix = get_package_prefix('rviz2')
    except (PackageNotFoundError, ValueError, LookupError):
        return False
    return os.access(os.path.join(prefix, 'lib', 'rviz2', 'rviz2'), os.X_OK)


def write_rviz_config(template: pathlib.Path, output: pathlib.Path, fixed_frame: str,
                      topics: dict[str, str], extra_displays: list[dict] | None = None
                      ) -> pathlib.Path:
    """
    Write an RViz config from ``template`` for the actual topics and frame; return its path.

    ``topics`` maps a display's ``Name`` to its topic; ``extra_displays`` are appended.
    """
    config = yaml.safe_load(template.read_text())
    manager = config['Visualization Manager']
    manager['Global Options']['Fixed Frame'] = fixed_frame
    displays = manager['Displays']
    for display in displays:
        if display.get('Name') in topics:
            display['Topic']['Value'] = topics[display['Name']]
    displays.extend(extra_displays or [])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(yaml.safe_dump(config, sort_keys=False))
    return output


def image_display(name: str, topic: str) -> dict:
    """Return an RViz Image display of ``topic``."""
    return {'Class': 'rviz_default_plugins/Image', 'Name': name, 'Enabled': True,
            'Max Value': 1, 'Min Value': 0, 'Normalize Range': True,
            'Topic': {'Depth': 5, 'Durability Policy': 'Volatile', 'History Policy': 'Keep Last',
                      'Reliability Policy': 'Reliable', 'Value': topic}}


@dataclass
class Process:
    """One process of a launch: a package executable (a ROS node) or a plain command."""

    name: str
    package: str = ''
    executable: str = ''
    namespace: str = ''
    parameters: list = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    """A plain command instead of a package executable (``ros2 bag play``)."""
    ends_launch: bool = True
    """Whether its exit ends the launch (the nodes and the bag player; not RViz)."""


@dataclass
class Plan:
    """What a launch starts, and what it logs first."""

    processes: list[Process] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


SINGLE_ARGUMENTS = (
    ('params_file', None, 'Parameter file of the node (default: config/hybrid.yaml).'),
    ('checkpoint', '', 'Model checkpoint (.pt); empty: the params file (default: the bundled '
     'weights).'),
    ('device', '', "Torch device: 'cpu', 'cuda' or 'cuda:N'; empty: the params file."),
    ('events_topic', '', "Event topic; empty: the params file's, or the bag's event topic."),
    ('input_type', '', "event_packet or dvs; empty: the params file, or the bag topic's type."),
    ('frame_id', '', "Output frame (the camera's optical frame); empty: the input's."),
    ('namespace', 'hybrid_pose', 'Namespace of the node.'),
    ('play_bag', 'true', 'Play a bag (false: live input, no player).'),
    ('bag', None, "Bag to play (default: the installed sample bag); 'none' plays none."),
    ('bag_player', 'auto', 'auto (ros2 bag play where rosbag2 exists, else '
     'hybrid_pose_replay), ros2bag or replay.'),
    ('use_sim_time', '', 'Use /clock; empty: true exactly while a bag plays.'),
    ('rviz', 'true', 'Open RViz where rviz2 is installed (a warning otherwise).'),
)
"""``hybrid.launch.py``'s arguments: name, default (None: set from the share folder), meaning."""
MULTI_ARGUMENTS = (
    ('config', None, 'Cameras and 3D node settings (default: config/multi_camera.yaml).'),
    ('params_file', None, 'Parameters of every 2D node (default: config/hybrid.yaml).'),
) + tuple(a for a in SINGLE_ARGUMENTS if a[0] in (
    'checkpoint', 'device', 'input_type', 'play_bag', 'bag', 'bag_player', 'use_sim_time',
    'rviz'))
"""``multi_camera.launch.py``'s arguments."""


def share_defaults(share: pathlib.Path) -> dict[str, str]:
    """Return the defaults that point into the installed share folder."""
    sample = share / 'data' / 'sample_bag'
    return {'params_file': str(share / 'config' / 'hybrid.yaml'),
            'config': str(share / 'config' / 'multi_camera.yaml'),
            'bag': str(sample) if sample.exists() else 'none'}


def _common_overrides(arg: dict[str, str]) -> dict[str, Any]:
    """Return the checkpoint and device overrides, for the arguments that were given."""
    overrides: dict[str, Any] = {}
    if arg['checkpoint']:
        overrides['checkpoint'] = str(existing_file('checkpoint', arg['checkpoint']))
    if arg['device']:
        overrides['device'] = arg['device']
    return overrides


def _player(plan: Plan, bag: pathlib.Path, player: str, namespace: str = '') -> None:
    """Add the bag player to ``plan``."""
    if player == 'ros2bag':
        plan.processes.append(Process('bag_play', cmd=ros2_bag_command(bag)))
    else:
        plan.processes.append(Process('bag_replay', PACKAGE, 'hybrid_pose_replay', namespace,
                                      arguments=replay_arguments(bag)))


def _rviz(plan: Plan, config: pathlib.Path, sim_time: bool) -> None:
    """Add RViz with ``config`` to ``plan``."""
    plan.processes.append(Process('rviz2', 'rviz2', 'rviz2', arguments=['-d', str(config)],
                                  parameters=[{'use_sim_time': sim_time}], ends_launch=False))


def plan_single(arg: dict[str, str], share: pathlib.Path, log_dir: pathlib.Path) -> Plan:
    """Return what ``hybrid.launch.py`` starts for launch arguments ``arg``, or raise."""
    from hybrid_pose_ros.sample_bag import SAMPLE_EVENTS_TOPIC
    namespace = check_namespace(arg['namespace'])
    params_file = existing_file('params_file', arg['params_file'])
    bag = resolve_bag(arg['play_bag'], arg['bag'])
    events = bag_events(bag) if bag else None
    sim_time = use_sim_time(arg['use_sim_time'], bag is not None)
    rviz = parse_bool('rviz', arg['rviz'])
    player = choose_player(arg['bag_player'], events.ros1) if events else ''
    common = _common_overrides(arg)
    file_parameters = node_file_parameters(params_file, namespace)
    is_sample = bag is not None and bag == (share / 'data' / 'sample_bag').resolve()
    overrides = choose_events(arg['events_topic'], arg['input_type'], file_parameters,
                              namespace, events, SAMPLE_EVENTS_TOPIC if is_sample else '')
    overrides.update(common)
    if arg['frame_id']:
        overrides['frame_id'] = arg['frame_id']
    check_overrides(overrides)

    plan = Plan()
    plan.processes.append(Process(
        NODE, PACKAGE, NODE, namespace,
        parameters=[str(params_file), {**overrides, 'use_sim_time': sim_time}]))
    if bag is not None:
        plan.info.append(f'playing {bag} with {player}: {overrides["events_topic"]} '
                         f'({overrides["input_type"]}) into the node, use_sim_time {sim_time}')
        _player(plan, bag, player, namespace)
    elif sim_time:
        plan.warnings.append('use_sim_time:=true with no bag: the node waits for /clock')
    if rviz and not rviz_available():
        plan.warnings.append(RVIZ_MISSING)
    elif rviz:
        frame = (overrides.get('frame_id') or file_parameters.get('frame_id')
                 or (events.frame_id(bag, overrides['events_topic']) if events else ''))
        if not frame:
            frame = DEFAULT_FRAME
            plan.warnings.append(f"RViz's fixed frame is {frame}: give frame_id:=<your "
                                 "camera's optical frame> if the skeleton does not show")
        prefix = f'{namespace.rstrip("/")}/{NODE}'
        config = write_rviz_config(
            share / 'rviz' / 'hybrid.rviz', log_dir / 'hybrid.rviz', frame,
            {'Skeleton': f'{prefix}/skeleton', 'DebugImage': f'{prefix}/debug_image'})
        _rviz(plan, config, sim_time)
    return plan


def load_cameras(config_path: pathlib.Path) -> tuple[dict, list[dict]]:
    """Return ``multi_camera.launch.py``'s config and its checked camera list."""
    try:
        config = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as error:
        raise LaunchArgumentError(f'config:={config_path} is not YAML: {error}') from error
    cameras = config.get('cameras') if isinstance(config, dict) else None
    if not isinstance(cameras, list) or len(cameras) < 2:
        raise LaunchArgumentError(f'config:={config_path}: the 3D node needs at least two '
                                  'cameras')
    names = []
    for camera in cameras:
        if not isinstance(camera, dict) or not camera.get('events_topic'):
            raise LaunchArgumentError(
                f'config:={config_path}: every camera needs a name and an events_topic')
        names.append(check_namespace(str(camera.get('name', ''))).strip('/'))
    if '' in names or len(set(names)) != len(names):
        raise LaunchArgumentError(f'config:={config_path}: camera names must be unique and '
                                  f'not empty, got {names}')
    return config, cameras


def calibration_file(camera: dict, bag: pathlib.Path | None, share: pathlib.Path) -> str:
    """Return a camera's calibration: as given (relative to the share folder), else the bag's."""
    given = camera.get('calibration') or ''
    if given:
        path = pathlib.Path(given) if os.path.isabs(given) else share / given
        what = f'camera {camera["name"]!r}: calibration {given}'
    elif bag is not None:
        path = bag / 'cameras.yaml'
        what = f'camera {camera["name"]!r} has no calibration and the bag no cameras.yaml'
    else:
        raise LaunchArgumentError(
            f'camera {camera["name"]!r} has no calibration and no bag is played; set '
            'calibration in the config file')
    if not path.exists():
        raise LaunchArgumentError(f'{what} ({path}) does not exist')
    return str(path)


def plan_multi(arg: dict[str, str], share: pathlib.Path, log_dir: pathlib.Path) -> Plan:
    """Return what ``multi_camera.launch.py`` starts for launch arguments ``arg``, or raise."""
    config, cameras = load_cameras(existing_file('config', arg['config']))
    params_file = existing_file('params_file', arg['params_file'])
    bag = resolve_bag(arg['play_bag'], arg['bag'])
    events = bag_events(bag) if bag else None
    sim_time = use_sim_time(arg['use_sim_time'], bag is not None)
    rviz = parse_bool('rviz', arg['rviz'])
    player = choose_player(arg['bag_player'], events.ros1) if events else ''
    common = {**(config.get('hybrid_pose_node') or {}), **_common_overrides(arg)}
    check_overrides(common)

    plan = Plan()
    for camera in cameras:
        namespace = check_namespace(camera['name'])
        try:
            overrides = {**common, **choose_events(
                resolve_topic(camera['events_topic'], namespace), arg['input_type'],
                node_file_parameters(params_file, namespace), namespace, events)}
        except LaunchArgumentError as error:
            raise LaunchArgumentError(f'camera {camera["name"]!r}: {error}') from error
        overrides['frame_id'] = camera.get('frame_id') or ''
        check_overrides(overrides)
        plan.processes.append(Process(
            NODE, PACKAGE, NODE, namespace,
            parameters=[str(params_file), {**overrides, 'use_sim_time': sim_time}]))
    node_3d = {
        **(config.get('hybrid_pose_3d_node') or {}),
        'cameras': [c['name'] for c in cameras],
        'pose_topics': [f'/{c["name"]}/{NODE}/pose' for c in cameras],
        'calibration_files': [calibration_file(c, bag, share) for c in cameras],
        'use_sim_time': sim_time,
    }
    if all(c.get('frame_id') for c in cameras):
        node_3d['frame_ids'] = [c['frame_id'] for c in cameras]
    plan.processes.append(Process('hybrid_pose_3d_node', PACKAGE, 'hybrid_pose_3d_node',
                                  parameters=[node_3d]))
    if bag is not None:
        plan.info.append(f'playing {bag} with {player}, use_sim_time {sim_time}')
        _player(plan, bag, player)
    elif sim_time:
        plan.warnings.append('use_sim_time:=true with no bag: the nodes wait for /clock')
    if rviz and not rviz_available():
        plan.warnings.append(RVIZ_MISSING)
    elif rviz:
        rviz_config = write_rviz_config(
            share / 'rviz' / 'multi_camera.rviz', log_dir / 'multi_camera.rviz',
            node_3d.get('world_frame', 'world'),
            {'Skeleton3D': '/hybrid_pose_3d_node/skeleton_3d'},
            [image_display(f'{c["name"]} debug image', f'/{c["name"]}/{NODE}/debug_image')
             for c in cameras])
        _rviz(plan, rviz_config, sim_time)
    return plan


def to_actions(plan: Plan, logger_name: str) -> list:
    """Log the plan's messages and return its processes as launch actions."""
    from launch.actions import ExecuteProcess, Shutdown
    from launch.logging import get_logger
    from launch_ros.actions import Node
    logger = get_logger(logger_name)
    for text in plan.info:
        logger.info(text)
    for text in plan.warnings:
        logger.warning(text)
    actions = []
    for p in plan.processes:
        on_exit = Shutdown(reason=f'{p.name} exited') if p.ends_launch else None
        if p.cmd:
            actions.append(ExecuteProcess(cmd=p.cmd, name=p.name, output='screen',
                                          on_exit=on_exit))
        else:
            actions.append(Node(package=p.package, executable=p.executable, name=p.name,
                                namespace=p.namespace or None, parameters=p.parameters,
                                arguments=p.arguments, output='screen' if p.ends_launch
                                else 'log', on_exit=on_exit))
    return actions
