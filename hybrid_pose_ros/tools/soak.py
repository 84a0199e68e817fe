"""
Soak benchmark of ``hybrid_pose_node``: looped bag replay with malformed messages mixed in.

Starts the node as its own process, replays a bag in a loop at ``--rate`` times real time
(default ``bags/sample_bag``, ``/cam3/events``, dvs, 2x) for ``--minutes`` (default 10), and
every ``--malformed-every`` seconds publishes a malformed message on the events topic (in turn:
truncated, corrupted encapsulation header, a sequence length beyond the payload, random
bytes). Each bag loop is a backwards time jump, so the node also resets once per pass.

Reported, as a table and as JSON (``--json``): messages in (replayed and malformed), poses out,
the node's drop and error counters from ``/diagnostics``, and the node process's RSS (psutil)
after the warm-up, at the end and at its peak. Example, with DDS kept on this machine::

    export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=42
    hybrid_pose_soak --minutes 10 --json soak.json

Without ``--checkpoint`` the bundled weights are used, or, if none are installed, an untrained
seeded ``cpu``-preset checkpoint (the soak measures the plumbing, not accuracy).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from hybrid_pose_ros.ros.counters import DROP_COUNTERS, ERROR_COUNTERS
from hybrid_pose_ros.ros.replay import replay
from hybrid_pose_ros.sample_bag import sample_bag, SAMPLE_EVENTS_TOPIC
import numpy as np

RSS_SAMPLE_PERIOD_S = 5.0
COUNTERS = ('messages', 'windows_dropped', 'binner_resets') + DROP_COUNTERS + ERROR_COUNTERS
"""The node's counters the report lists: every drop and error counter, and three more."""


def malformed_messages(valid: bytes, rng: np.random.Generator) -> list[bytes]:
    """Return the malformed variants of a valid serialised message, in the order injected."""
    long_sequence = bytearray(valid)
    # dvs EventArray: the events length is the uint32 after height and width (see codecs)
    frame_length = int.from_bytes(valid[12:16], 'little')
    offset = 16 + frame_length
    offset += (-(offset - 4)) % 4 + 8
    long_sequence[offset:offset + 4] = (2**31).to_bytes(4, 'little')
    return [valid[:len(valid) // 3], b'\xff\xff' + valid[2:], bytes(long_sequence),
            rng.integers(0, 256, 200, dtype=np.uint8).tobytes()]


def fallback_checkpoint(directory: str) -> str:
    """Write an untrained, seeded ``cpu``-preset hybrid checkpoint; return its path."""
    import torch
    from hybrid_pose_ros.model.checkpoint import save_checkpoint
    from hybrid_pose_ros.model.config import make_config
    from hybrid_pose_ros.model.hybrid import HybridPoseNet
    torch.manual_seed(0)
    config = make_config('cpu')
    path = os.path.join(directory, 'untrained_cpu.pt')
    save_checkpoint(path, HybridPoseNet(config).eval(), config, 'hybrid',
                    metadata={'trained': False, 'purpose': 'soak'})
    return path


def resolve_checkpoint(requested: str, directory: str) -> tuple[str, str]:
    """Return the checkpoint to use and a word on where it came from."""
    if requested:
        return requested, 'given'
    from hybrid_pose_ros.ros.node import default_checkpoint, StartupError
    try:
        return str(default_checkpoint()), 'bundled'
    except StartupError:
        return fallback_checkpoint(directory), 'untrained (no bundled weights)'


class Monitor:
    """The soak's ROS side: counts poses, keeps the latest diagnostics, injects bad messages."""

    def __init__(self, node, topic: str, message_type) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
        self.injector = node.create_publisher(message_type, topic, qos)
        self.poses = 0
        self.values: dict[str, str] = {}
        self.warn_statuses = 0
        self.error_statuses = 0
        node.create_subscription(PoseArray, '/hybrid_pose_node/pose', self._on_pose, qos)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, qos)

    def _on_pose(self, _) -> None:
        self.poses += 1

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if 'hybrid pose' not in status.name:
                continue
            level = ord(status.level) if isinstance(status.level, bytes) else status.level
            self.warn_statuses += level == 1
            self.error_statuses += level == 2
            self.values = {v.key: v.value for v in status.values}


def table(report: dict[str, Any]) -> str:
    """Format the report as a two-column text table."""
    rows = [(k, v) for k, v in report.items() if not isinstance(v, (dict, list))]
    rows += [(f'node {k}', v) for k, v in report['node_counters'].items()]
    width = max(len(k) for k, _ in rows)
    return '\n'.join(f'{k:<{width}}  {v}' for k, v in rows)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak and return the report."""
    import psutil
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    if args.input_type == 'dvs':
        from dvs_msgs.msg import EventArray as message_type
    else:
        from event_camera_msgs.msg import EventPacket as message_type
    rng = np.random.default_rng(0)
    workdir = tempfile.mkdtemp(prefix='hybrid_pose_soak_')
    checkpoint, origin = resolve_checkpoint(args.checkpoint, workdir)
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    log_path = os.path.join(workdir, 'node.log')
    with open(log_path, 'w') as log:
        node_process = subprocess.Popen(
            [sys.executable, '-m', 'hybrid_pose_ros.ros.node', '--ros-args',
             '-p', f'checkpoint:={checkpoint}', '-p', f'events_topic:={args.topic}',
             '-p', f'input_type:={args.input_type}', '-p', f'threads:={args.threads}'],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    ros_node = rclpy.create_node('hybrid_pose_soak')
    monitor = Monitor(ros_node, args.topic, message_type)
    executor = SingleThreadedExecutor()
    executor.add_node(ros_node)
    process = psutil.Process(node_process.pid)
    deadline = time.monotonic() + args.minutes * 60.0
    stop = threading.Event()
    replay_stats = {}

    def run_replay() -> None:
        replay_stats['stats'] = replay(ros_node, args.bag, [args.topic], rate=args.rate, loop=0,
                                       should_stop=stop.is_set, wait_s=30.0)

    valid = None
    injected = 0
    rss_mb: list[float] = []
    started = time.monotonic()
    try:
        while monitor.injector.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if node_process.poll() is not None:
                raise SystemExit(f'hybrid_pose_soak: the node exited; see {log_path}')
        replayer = threading.Thread(target=run_replay, daemon=True)
        replayer.start()
        from hybrid_pose_ros.ros.interfaces import event_typestore
        from rosbags.highlevel import AnyReader
        with AnyReader([pathlib.Path(args.bag)], default_typestore=event_typestore()) as reader:
            connection = next(c for c in reader.connections if c.topic == args.topic)
            valid = bytes(next(reader.messages(connections=[connection]))[2])
        variants = malformed_messages(valid, rng)
        next_injection = time.monotonic() + args.malformed_every
        next_sample = time.monotonic() + args.warmup
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if node_process.poll() is not None:
                raise SystemExit(f'hybrid_pose_soak: the node exited; see {log_path}')
            now = time.monotonic()
            if now >= next_injection:
                monitor.injector.publish(variants[injected % len(variants)])
                injected += 1
                next_injection += args.malformed_every
            if now >= next_sample:
                rss_mb.append(process.memory_info().rss / 2**20)
                next_sample += RSS_SAMPLE_PERIOD_S
        stop.set()
        replayer.join(timeout=10.0)
        settle = time.monotonic() + 3.0
        while time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.05)
        rss_mb.append(process.memory_info().rss / 2**20)
    finally:
        stop.set()
        node_process.terminate()
        try:
            node_process.wait(10)
        except subprocess.TimeoutExpired:
            node_process.kill()
        executor.shutdown()
        ros_node.destroy_node()
        rclpy.try_shutdown()
    stats = replay_stats.get('stats')
    values = monitor.values
    return {
        'minutes': round((time.monotonic() - started) / 60.0, 2),
        'rate': args.rate,
        'bag': str(args.bag),
        'checkpoint': origin,
        'replayed_messages': stats.published if stats else 0,
        'bag_loops': stats.loops if stats else 0,
        'malformed_injected': injected,
        'messages_in': (stats.published if stats else 0) + injected,
        'poses_out': monitor.poses,
        'warn_statuses': monitor.warn_statuses,
        'error_statuses': monitor.error_statuses,
        'rss_after_warmup_mb': round(rss_mb[0], 1) if rss_mb else None,
        'rss_end_mb': round(rss_mb[-1], 1) if rss_mb else None,
        'rss_peak_mb': round(max(rss_mb), 1) if rss_mb else None,
        'rss_growth_mb': round(rss_mb[-1] - rss_mb[0], 1) if rss_mb else None,
        'rss_growth_percent': round(100.0 * (rss_mb[-1] / rss_mb[0] - 1.0), 2) if rss_mb else None,
        'rss_samples_mb': [round(value, 1) for value in rss_mb],
        'rss_sample_period_s': RSS_SAMPLE_PERIOD_S,
        'node_exit_code': node_process.returncode,
        'node_log': log_path,
        'node_counters': {k: int(values[k]) for k in COUNTERS if k in values},
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: run the soak, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--bag', default=str(sample_bag()), help='bag folder (MCAP or sqlite3)')
    parser.add_argument('--topic', default=SAMPLE_EVENTS_TOPIC, help='events topic in the bag')
    parser.add_argument('--input-type', default='dvs', choices=('dvs', 'event_packet'))
    parser.add_argument('--minutes', type=float, default=10.0, help='duration (default 10)')
    parser.add_argument('--rate', type=float, default=2.0, help='replay speed (default 2x)')
    parser.add_argument('--malformed-every', type=float, default=3.0, metavar='SECONDS',
                        help='seconds between malformed messages (default 3)')
    parser.add_argument('--warmup', type=float, default=60.0, metavar='SECONDS',
                        help='seconds before the first RSS sample, the growth baseline '
                        '(default 60: growth is reported from minute 1 to the end)')
    parser.add_argument('--checkpoint', default='', help='model checkpoint (default: bundled)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of the node (default 1, the node default)')
    parser.add_argument('--json', help='also write the report to this file')
    args = parser.parse_args(argv)
    if not pathlib.Path(args.bag).exists():
        raise SystemExit(f'hybrid_pose_soak: bag {args.bag} does not exist')
    report = soak(args)
    text = json.dumps(report, indent=2)
    if args.json:
        pathlib.Path(args.json).write_text(text + '\n')
    print(table(report))
    print(text)


if __name__ == '__main__':
    main()
