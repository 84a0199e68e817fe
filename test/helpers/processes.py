# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Start the package's nodes as separate processes for the multi-process tests."""
import subprocess
import sys
import time


def ros_command(module: str, *params: str) -> list[str]:
    """Return the command running ``python -m module`` with ``-p`` parameter overrides."""
    args = [sys.executable, '-m', module, '--ros-args']
    for param in params:
        args += ['-p', param]
    return args


def start_process(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``args`` with ``env``; stdout and stderr are captured together as text."""
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


class SpinningNode:
    """A test-side rclpy node with its own executor, spun while a node process runs."""

    spin_period_s = 0.05

    def __init__(self, context, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.node = rclpy.create_node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout: float, process: subprocess.Popen) -> bool:
        """Spin until ``condition()`` or ``timeout`` s; fail with its log if ``process`` exits."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=self.spin_period_s)
            if process.poll() is not None:
                raise AssertionError('node exited:\n' + process.stdout.read())
        return condition()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def replay_and_receive(context, env: dict[str, str], replay_args: list[str], topic: str,
                       expected: int | None = None) -> tuple[list[bytes], str]:
    """
    Run ``hybrid_pose_replay replay_args`` and collect the raw EventArray messages on ``topic``.

    Spins until the replayer exits (30 s at most), then up to one more second, or until
    ``expected`` messages arrived. Returns the raw messages and the replayer's output.
    """
    from dvs_msgs.msg import EventArray
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    listener = SpinningNode(context, 'replay_listener')
    received: list[bytes] = []
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_ALL)
    listener.node.create_subscription(EventArray, topic, received.append, qos, raw=True)
    process = start_process([sys.executable, '-m', 'hybrid_pose_ros.ros.replay', *replay_args],
                            env)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            listener.executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 1.0
        while (expected is None or len(received) < expected) and time.monotonic() < end:
            listener.executor.spin_once(timeout_sec=0.05)
    finally:
        process.kill()
        output = process.communicate()[0]
        listener.close()
    return received, output
