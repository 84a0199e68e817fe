# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
The launch files under the real ``ros2 launch``, run as users type them.

``make ros-tools`` installs the upstream launch system and ``ros2`` command-line tools into
``.venv`` (from ``../shared/vendor/ros2``) and registers the checkout in its ament index; on a
machine with ROS 2 the installed ones are used. Each launch runs with a marker in its
environment, so every process it started can be found afterwards, orphans included.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import uuid

from helpers import REPO_ROOT
from helpers.processes import SpinningNode
import pytest

VENDOR = REPO_ROOT.parent / 'shared' / 'vendor' / 'ros2'
MARKER = 'HYBRID_POSE_LAUNCH_TEST'
BAG = REPO_ROOT / 'bags' / 'sample_bag'


def ros2_command() -> str | None:
    """Return the ``ros2`` of this interpreter's environment, else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / 'ros2'
    return str(beside) if beside.exists() else shutil.which('ros2')


def _missing() -> str:
    """Return why the real launch system cannot run here, or ''."""
    try:
        import launch_ros  # noqa: F401
        from ament_index_python.packages import get_package_share_directory
        get_package_share_directory('hybrid_pose_ros')
    except Exception as error:  # ImportError, PackageNotFoundError, no AMENT_PREFIX_PATH
        where = ('run make ros-tools' if VENDOR.exists() else
                 f'{VENDOR} (the upstream sources make ros-tools installs) is absent')
        return f'ros2 launch with this package is not available ({error}): {where}'
    return '' if ros2_command() else 'the ros2 command is not installed: make ros-tools'


pytestmark = [pytest.mark.ros, pytest.mark.skipif(bool(_missing()), reason=_missing())]


def marked_processes(token: str) -> list:
    """Return the live processes whose environment carries ``token`` (a launch's children)."""
    import psutil
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == token and process.status() != 'zombie':
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def _as_from_a_shell() -> None:
    """
    Give the child Ctrl-C as a terminal would: SIGINT unblocked, default handler.

    A child inherits the blocked-signal mask and ignored signals of the thread that starts it;
    libraries loaded by earlier tests in this process may block SIGINT in it.
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Launch:
    """``ros2 launch hybrid_pose_ros ARGS`` with its output in a file and its processes marked."""

    def __init__(self, args: list[str], env: dict[str, str], log: pathlib.Path) -> None:
        self.token = uuid.uuid4().hex
        self.log = log
        env = {**env, MARKER: self.token}
        with open(log, 'w') as out:
            self.process = subprocess.Popen([ros2_command(), 'launch', 'hybrid_pose_ros', *args],
                                            env=env, stdout=out, stderr=subprocess.STDOUT,
                                            preexec_fn=_as_from_a_shell)

    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def interrupt(self, timeout: float = 40.0) -> int:
        """Press Ctrl-C once (SIGINT to ``ros2 launch``) and return its exit status."""
        os.kill(self.process.pid, signal.SIGINT)
        return self.wait(timeout)

    def leftovers(self, grace_s: float = 5.0) -> list[str]:
        """Return the command lines of the launch's processes still alive after ``grace_s``."""
        deadline = time.monotonic() + grace_s
        while marked_processes(self.token) and time.monotonic() < deadline:
            time.sleep(0.2)
        return [' '.join(p.cmdline()) for p in marked_processes(self.token)]

    def close(self) -> None:
        """Kill whatever is left (after a failed assertion)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for process in marked_processes(self.token):
            process.kill()


@pytest.fixture
def launch(ros_env, tmp_path):
    """Start launches; each is killed with everything it started at the end of the test."""
    started = []

    def start(*args: str) -> Launch:
        started.append(Launch(list(args), ros_env, tmp_path / f'launch{len(started)}.log'))
        return started[-1]
    yield start
    for item in started:
        item.close()


def receive(context, launch: Launch, topic: str, count: int, timeout: float) -> list:
    """Collect ``count`` PoseArrays on ``topic`` while ``launch`` runs (fail if it ends)."""
    from geometry_msgs.msg import PoseArray
    listener = SpinningNode(context, 'launch_test_listener')
    poses: list = []
    listener.node.create_subscription(PoseArray, topic, poses.append, 100)
    try:
        listener.spin_until(lambda: len(poses) >= count, timeout, launch.process)
    except AssertionError:
        raise AssertionError(f'the launch ended:\n{launch.output()}') from None
    finally:
        listener.close()
    assert len(poses) >= count, f'{len(poses)} messages on {topic}\n{launch.output()}'
    return poses


def stop_cleanly(launch: Launch) -> None:
    """Ctrl-C: the launch exits 0 and leaves no process behind."""
    status = launch.interrupt()
    output = launch.output()
    assert status == 0, output
    assert launch.leftovers() == [], output


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_the_readme_command_plays_the_sample_bag_into_the_node(launch, rclpy_context):
    running = launch('hybrid.launch.py', 'rviz:=false')
    poses = receive(rclpy_context, running, '/hybrid_pose/hybrid_pose_node/pose', 20, 150)
    assert all(len(p.poses) == 13 for p in poses)
    assert len({p.header.frame_id for p in poses}) == 1 and poses[0].header.frame_id == (
        'cam3_optical_frame')
    output = running.output()
    assert 'with replay: /cam3/events (dvs) into the node, use_sim_time True' in output or (
        'with ros2bag' in output), output
    stop_cleanly(running)


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_live_mode_starts_only_the_node(launch, rclpy_context, ros_env):
    running = launch('hybrid.launch.py', 'play_bag:=false', 'rviz:=false', 'namespace:=live',
                     'events_topic:=/cam3/events', 'input_type:=dvs')
    # the "camera": the sample bag's camera 3 played outside the launch, on wall time
    camera = subprocess.Popen(
        [sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(BAG), '--topics',
         '/cam3/events', '--loop', '0', '--wait-for-subscribers', '120'],
        env=ros_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        poses = receive(rclpy_context, running, '/live/hybrid_pose_node/pose', 20, 150)
    finally:
        camera.send_signal(signal.SIGINT)
        camera.wait(30)
    assert all(len(p.poses) == 13 for p in poses)
    output = running.output()
    assert output.count('process started') == 1, output
    stop_cleanly(running)


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_multi_camera_launch_triangulates(launch, rclpy_context):
    running = launch('multi_camera.launch.py', 'rviz:=false')
    poses = receive(rclpy_context, running, '/hybrid_pose_3d_node/pose_3d', 5, 180)
    assert all(len(p.poses) == 13 for p in poses) and poses[0].header.frame_id == 'world'
    output = running.output()
    assert output.count('process started') == 4, output     # 2 cameras, 3D node, player
    stop_cleanly(running)


@pytest.mark.parametrize('args, message', [
    (['bag:=/no/such/bag'], 'bag:=/no/such/bag: no such bag'),
    (['device:=gpu'], "device:=gpu must be 'cpu', 'cuda' or 'cuda:N'"),
    (['bag:='], "malformed launch argument 'bag:='"),
])
def test_a_refused_launch_starts_nothing(launch, args, message):
    running = launch('hybrid.launch.py', 'rviz:=false', *args)
    status = running.wait(60)
    output = running.output()
    assert status != 0 and message in output, output
    assert 'process started' not in output, output
    assert running.leftovers(grace_s=0) == []


def test_a_node_that_fails_ends_the_launch(launch, tmp_path):
    broken = tmp_path / 'broken.pt'
    broken.write_bytes(b'not a checkpoint')
    running = launch('hybrid.launch.py', 'rviz:=false', f'checkpoint:={broken}')
    running.wait(120)       # the node exits with status 2, and the launch takes the player down
    output = running.output()
    assert 'process[hybrid_pose_node-1] was required: shutting down launched system' in (
        output), output
    assert running.leftovers() == [], output
