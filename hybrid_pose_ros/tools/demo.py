"""
``make demo``: the node and a bag replayer as separate processes over DDS on loopback.

1. ``hybrid_pose_node`` (``input_type:=dvs``, reliable input) and ``hybrid_pose_replay`` run as
   two processes; the replayer plays ``/cam3/events`` of the bundled sample bag (4.6 s of CMU
   subject 01, camera 3, held out from training) in real time, or its first ``--duration``
   seconds.
2. This process records the node's ``~/pose``, ``~/skeleton`` and ``/diagnostics`` as raw CDR
   into ``outputs_bag/`` (MCAP), then runs the offline reference
   (:func:`hybrid_pose_ros.estimator.run_offline`) on the same events.
3. It writes ``summary.json`` (MPJPE against ``/cam3/pose_gt``, rates, latency, drops, energy,
   node vs offline), ``demo.gif`` (events at ``GIF_SCALE`` x the sensor size, the predicted
   skeleton with right limbs orange and left limbs blue, the ground truth thin green, ANN
   re-initialisations framed in magenta, a legend with the window's timeline),
   ``error_per_step.png`` (2D error in sensor pixels against ms since the ANN
   re-initialisation) and ``latency_event_rate.png`` (latency in ms and input events per
   second against replay time, the first pose of each window marked).

Pass/fail: exit status 1 if the node published nothing, if a pose it published differs from
the offline model's (more than ``PARITY_TOLERANCE_PX``) or one is missing that the node did not
report as dropped, or, for trained weights with an evaluation beside the checkpoint (see
:func:`evaluation_reference`) and a bag with labels, if the MPJPE exceeds ``MPJPE_FACTOR`` x
the evaluated hybrid MPJPE + ``MPJPE_MARGIN_PX`` (the margin absorbs a short clip). Without
trained weights an untrained, seeded model is used and every output says so.

The node runs with ``min_confidence:=0`` (every joint published, as the evaluation scores
them) and ``threads:=1`` (the ANN thread and the SNN timer then use one core each; more torch
threads oversubscribe two shared cores). The GIF shows every ``GIF_FRAME_MS`` / bin-th bin
(every 2nd at 10 ms: real-time playback, since viewers slow frames under 20 ms down) and
always the window starts, framed and labelled ``ANN re-initialisation``.
"""
import argparse
from dataclasses import dataclass, field
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from hybrid_pose_ros.estimator import HybridEstimator, PoseStep, run_offline, window_starts
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.counters import DROP_COUNTERS, ERROR_COUNTERS
from hybrid_pose_ros.ros.interfaces import EVENT_ARRAY, event_typestore
from hybrid_pose_ros.sample_bag import sample_bag, SAMPLE_EVENTS_TOPIC
from hybrid_pose_ros.skeleton import JOINT_NAMES, NUM_JOINTS, SKELETON_EDGES
from hybrid_pose_ros.visualize import event_image
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

GT_TOPIC = '/cam3/pose_gt'
NAMESPACE = '/hybrid_pose'
NODE_TOPICS = {  # recorded topic: (message type, rclpy module)
    f'{NAMESPACE}/hybrid_pose_node/pose': ('geometry_msgs/msg/PoseArray', 'geometry_msgs.msg'),
    f'{NAMESPACE}/hybrid_pose_node/skeleton': ('visualization_msgs/msg/MarkerArray',
                                               'visualization_msgs.msg'),
    '/diagnostics': ('diagnostic_msgs/msg/DiagnosticArray', 'diagnostic_msgs.msg'),
}
POSE_TOPIC = f'{NAMESPACE}/hybrid_pose_node/pose'
EXTRA_DROP_KEYS = ('windows_dropped', 'stream_windows_broken')
"""Reported under ``drops`` in the summary besides the node's drop and error counters."""
PARITY_TOLERANCE_PX = 1e-3
MPJPE_FACTOR = 1.5
MPJPE_MARGIN_PX = 2.0
ENERGY_WINDOWS = 4
METADATA_KEYS = ('stage', 'epochs', 'iterations', 'val_mpjpe_px', 'git_commit', 'purpose')
GIF_FRAME_MS = 20
GIF_SCALE = 2
"""GIF pixels per sensor pixel (346x260 events give a 692x520 picture above the legend)."""
GIF_LEGEND_PX = 64
UNTRAINED = 'UNTRAINED (seeded random init): poses are not meaningful'
RIGHT_COLOR = (255, 140, 0)
LEFT_COLOR = (40, 170, 255)
CENTRE_COLOR = (255, 230, 0)
GT_COLOR = (60, 255, 60)
ANN_COLOR = (255, 0, 255)
EVENT_ON_COLOR = (170, 170, 170)
EVENT_OFF_COLOR = (90, 90, 105)
STARTED = time.monotonic()


def log(message: str) -> None:
    """Print a progress line with the seconds since the demo started."""
    print(f'demo [{time.monotonic() - STARTED:5.1f} s]: {message}', flush=True)


@dataclass
class BagSlice:
    """
    The replayed part of the bag: raw event messages, their events and the 2D labels.

    Per message: ``bag_s`` (bag time, s), ``stamps_ns`` (header stamp), ``last_us`` (time of its
    last event) and ``counts`` (events).
    """

    messages: list[tuple[int, bytes]]
    events: np.ndarray
    width: int
    height: int
    labels: dict[int, np.ndarray]
    bag_s: np.ndarray
    stamps_ns: np.ndarray
    last_us: np.ndarray
    counts: np.ndarray


@dataclass
class Recording:
    """What the recorder received, with ``time.monotonic()`` arrival times."""

    raw: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)
    event_arrivals: list[tuple[float, int]] = field(default_factory=list)
    replay_wall_s: float = 0.0


def read_bag(bag: pathlib.Path, duration: float | None) -> BagSlice:
    """Read the event messages (the first ``duration`` s of them) and the 2D labels."""
    messages, arrays, labels, stamps = [], [], {}, []
    typestore = event_typestore()
    size = (DHP19_WIDTH, DHP19_HEIGHT)
    with AnyReader([bag], default_typestore=typestore) as reader:
        connections = [c for c in reader.connections if c.topic in (SAMPLE_EVENTS_TOPIC, GT_TOPIC)]
        first_ns = None
        for connection, bag_ns, raw in reader.messages(connections=connections):
            if connection.topic == GT_TOPIC:
                msg = typestore.deserialize_cdr(raw, connection.msgtype)
                stamp_us = msg.header.stamp.sec * 1_000_000 + msg.header.stamp.nanosec // 1000
                labels[stamp_us] = np.array([[p.position.x, p.position.y] for p in msg.poses])
                continue
            first_ns = bag_ns if first_ns is None else first_ns
            if duration is not None and bag_ns - first_ns > duration * 1e9:
                continue
            decoded = codecs.decode_event_array(raw)
            if not len(decoded.events):
                continue
            size = (decoded.width, decoded.height)
            messages.append((bag_ns, bytes(raw)))
            arrays.append(decoded.events)
            stamps.append(decoded.stamp_ns)
    if not messages:
        sys.exit(f'demo: {bag} has no {SAMPLE_EVENTS_TOPIC} messages')
    return BagSlice(messages, np.concatenate(arrays), size[0], size[1], labels,
                    np.array([m[0] for m in messages]) / 1e9, np.array(stamps, dtype=np.int64),
                    np.array([a['t'][-1] for a in arrays]), np.array([len(a) for a in arrays]))


def write_slice(messages: list[tuple[int, bytes]], folder: pathlib.Path) -> None:
    """Write event messages into a new MCAP bag at ``folder`` (the slice the replayer plays)."""
    with Writer(folder, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(SAMPLE_EVENTS_TOPIC, EVENT_ARRAY,
                                           typestore=event_typestore())
        for bag_ns, raw in messages:
            writer.write(connection, bag_ns, raw)


def resolve_checkpoint(requested: str | None,
                       out: pathlib.Path) -> tuple[str, dict[str, Any], ModelConfig]:
    """
    Return the checkpoint path, its metadata and its config.

    Without ``requested`` and bundled weights an untrained checkpoint is written into ``out``.
    """
    from hybrid_pose_ros.model.checkpoint import load_checkpoint
    if requested is None:
        from hybrid_pose_ros.ros.node import default_checkpoint, StartupError
        try:
            requested = str(default_checkpoint())
        except StartupError:
            requested = str(out / 'untrained_cpu.pt')
            _untrained_checkpoint(requested)
    loaded = load_checkpoint(requested)
    return requested, loaded.metadata, loaded.config


def _untrained_checkpoint(path: str) -> None:
    import torch
    from hybrid_pose_ros.model.checkpoint import save_checkpoint
    from hybrid_pose_ros.model.config import make_config
    from hybrid_pose_ros.model.hybrid import HybridPoseNet
    torch.manual_seed(2022)
    config = make_config('cpu')
    save_checkpoint(path, HybridPoseNet(config).eval(), config, 'hybrid',
                    metadata={'trained': False, 'purpose': 'demo before training'})


def record(checkpoint: str, bag: pathlib.Path, out: pathlib.Path, expected: int) -> Recording:
    """Run node and replayer as processes; record the node's outputs into ``outputs_bag``."""
    import importlib
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from tqdm import tqdm
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    node_log = open(out / 'node.log', 'w')
    node = subprocess.Popen(
        [sys.executable, '-m', 'hybrid_pose_ros.ros.node', '--ros-args',
         '-p', f'checkpoint:={checkpoint}', '-p', 'input_type:=dvs',
         '-p', f'events_topic:={SAMPLE_EVENTS_TOPIC}', '-p', 'qos_reliability:=reliable',
         '-p', 'min_confidence:=0.0', '-p', 'threads:=1', '-r', f'__ns:={NAMESPACE}'],
        env=env, stdout=node_log, stderr=subprocess.STDOUT)
    context = rclpy.context.Context()
    rclpy.init(context=context)
    listener = rclpy.create_node('hybrid_pose_demo_recorder', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST)
    recording = Recording()
    typestore = event_typestore()
    replay = None
    replay_log = open(out / 'replay.log', 'w')
    output_bag = out / 'outputs_bag'
    try:
        with Writer(output_bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            subscriptions = {}
            for topic, (type_name, module) in NODE_TOPICS.items():
                message_type = getattr(importlib.import_module(module), type_name.split('/')[-1])
                connection = writer.add_connection(topic, type_name, typestore=typestore)
                received = recording.raw.setdefault(topic, [])

                def on_message(raw: bytes, connection=connection, received=received) -> None:
                    received.append((time.monotonic(), raw))
                    writer.write(connection, time.time_ns(), raw)
                subscriptions[topic] = listener.create_subscription(
                    message_type, topic, on_message, qos, raw=True)
            from dvs_msgs.msg import EventArray

            def on_events(raw: bytes) -> None:
                recording.event_arrivals.append((time.monotonic(),
                                                 codecs.decode_event_array(raw).stamp_ns))

            def spin_until(condition, timeout: float) -> bool:
                deadline = time.monotonic() + timeout
                while not condition() and time.monotonic() < deadline:
                    executor.spin_once(timeout_sec=0.02)
                    if node.poll() is not None:
                        raise SystemExit('demo: the node exited:\n' + _tail(out / 'node.log'))
                return condition()

            log('starting the node; waiting for it to subscribe')
            if not spin_until(lambda: listener.count_subscribers(SAMPLE_EVENTS_TOPIC) >= 1 and all(
                    s.get_publisher_count() > 0 for s in subscriptions.values()), 60.0):
                raise SystemExit('demo: the node did not come up within 60 s:\n'
                                 + _tail(out / 'node.log'))
            log(f'node is up; replaying {SAMPLE_EVENTS_TOPIC} of {bag} in real time')
            replay = subprocess.Popen(
                [sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(bag), '--topics',
                 SAMPLE_EVENTS_TOPIC, '--wait-for-subscribers', '30'],
                env=env, stdout=replay_log, stderr=subprocess.STDOUT)
            started = time.monotonic()
            poses = recording.raw[POSE_TOPIC]
            with tqdm(total=expected, unit='pose', desc='poses', file=sys.stdout,
                      mininterval=0.5) as bar:
                events_subscription = []

                def replayed() -> bool:
                    bar.update(len(poses) - bar.n)
                    if poses and not events_subscription:
                        # only now: the replayer starts once *a* subscriber is matched, which
                        # must be the node (messages sent before it matches are lost to it)
                        events_subscription.append(listener.create_subscription(
                            EventArray, SAMPLE_EVENTS_TOPIC, on_events, qos, raw=True))
                    return replay.poll() is not None
                spin_until(replayed, 90.0)
                recording.replay_wall_s = time.monotonic() - started
                count, changed = len(poses), time.monotonic()
                while len(poses) < expected and time.monotonic() - changed < 2.0:
                    spin_until(lambda: len(poses) > count, 0.1)
                    if len(poses) > count:
                        count, changed = len(poses), time.monotonic()
                bar.update(len(poses) - bar.n)
            log(f'replay finished in {recording.replay_wall_s:.1f} s')
            # the next diagnostics (1 s period) then counts every pose published
            spin_until(lambda: _diagnostics_poses(recording, typestore) >= len(poses), 3.0)
    finally:
        if replay is not None and replay.poll() is None:
            replay.kill()
        node.send_signal(signal.SIGINT)
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
        node_log.close()
        replay_log.close()
        executor.shutdown()
        listener.destroy_node()
        context.try_shutdown()
    return recording


def _tail(path: pathlib.Path, lines: int = 20) -> str:
    return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])


def diagnostics(recording: Recording, typestore: Any) -> list[tuple[float, dict[str, str]]]:
    """Return the node's diagnostics values with their arrival times."""
    rows = []
    for arrived, raw in recording.raw['/diagnostics']:
        msg = typestore.deserialize_cdr(raw, 'diagnostic_msgs/msg/DiagnosticArray')
        for status in msg.status:
            if status.name.endswith('hybrid pose'):
                rows.append((arrived, {kv.key: kv.value for kv in status.values}))
    return rows


def _diagnostics_poses(recording: Recording, typestore: Any) -> int:
    rows = diagnostics(recording, typestore)
    return int(rows[-1][1].get('poses', 0)) if rows else -1


def node_poses(recording: Recording, typestore: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the received poses: arrival times, stamps (us) and ``[N, J, 2]`` joints."""
    arrivals, stamps, joints = [], [], []
    for arrived, raw in recording.raw[POSE_TOPIC]:
        msg = typestore.deserialize_cdr(raw, 'geometry_msgs/msg/PoseArray')
        arrivals.append(arrived)
        stamps.append(msg.header.stamp.sec * 1_000_000 + msg.header.stamp.nanosec // 1000)
        joints.append([[p.position.x, p.position.y] for p in msg.poses])
    return (np.array(arrivals), np.array(stamps, dtype=np.int64),
            np.array(joints, dtype=np.float64).reshape(-1, NUM_JOINTS, 2))


def expected_poses(times: np.ndarray, config: ModelConfig) -> int:
    """Return how many poses the node publishes for events at ``times`` (no drops)."""
    return sum(min(config.steps_per_window, (int(times[-1]) - start) // config.bin_us)
               for start in window_starts(times, config))


def offline_reference(checkpoint: str,
                      data: BagSlice) -> tuple[HybridEstimator, list[PoseStep]]:
    """Run :func:`run_offline` on the replayed events; return the estimator and its steps."""
    from hybrid_pose_ros.events.sensor import SensorGeometry
    from hybrid_pose_ros.model.checkpoint import load_checkpoint
    from hybrid_pose_ros.model.inference import prepare_for_inference
    loaded = load_checkpoint(checkpoint)
    config = loaded.config
    geometry = SensorGeometry.for_sensor(data.width, data.height, config.input_width,
                                         config.input_height)
    # prepared as the node prepares it by default, so that both compute the same arithmetic
    model = prepare_for_inference(loaded.model, threads=1, snn_backend='sparse',
                                  ann_precision='auto', ann_runtime='auto')
    estimator = HybridEstimator(model, geometry)
    return estimator, run_offline(estimator, data.events)


def compare_with_offline(stamps: np.ndarray, xy: np.ndarray, steps: list[PoseStep],
                         bins_dropped: int) -> dict[str, Any]:
    """
    Match node and offline poses by stamp; report counts and the largest difference.

    Consistent: every node pose is an offline pose with the same joints (within
    ``PARITY_TOLERANCE_PX``), and the offline poses the node lacks are bins it reported as
    dropped (it drops whole windows when it falls behind).
    """
    offline = {step.end_us: step.xy for step in steps}
    common = [i for i, stamp in enumerate(stamps) if int(stamp) in offline]
    diffs = [np.abs(xy[i] - offline[int(stamps[i])]) for i in common]
    nan_mismatch = sum(int((np.isnan(d) & ~(np.isnan(xy[i]) & np.isnan(
        offline[int(stamps[i])]))).sum()) for d, i in zip(diffs, common))
    finite = [d[np.isfinite(d)] for d in diffs]
    max_diff = max((float(d.max()) for d in finite if len(d)), default=float('nan'))
    missing = len(steps) - len(common)
    return {'node_poses': int(len(stamps)), 'offline_poses': len(steps),
            'matched_by_stamp': len(common), 'max_abs_diff_px': max_diff,
            'missing_joint_mismatches': nan_mismatch, 'offline_poses_missing': missing,
            'bins_dropped_by_node': bins_dropped,
            'consistent': bool(len(common) == len(stamps) and missing <= bins_dropped
                               and max_diff <= PARITY_TOLERANCE_PX and nan_mismatch == 0)}


def pose_errors(stamps: np.ndarray, xy: np.ndarray,
                labels: dict[int, np.ndarray]) -> np.ndarray:
    """Return per-pose 2D error: nanmean over joints visible in both (NaN without a label)."""
    errors = np.full(len(stamps), np.nan)
    for i, stamp in enumerate(stamps):
        label = labels.get(int(stamp))
        if label is None:
            continue
        distance = np.linalg.norm(xy[i] - label, axis=-1)
        if np.isfinite(distance).any():
            errors[i] = np.nanmean(distance)
    return errors


def energy_estimate(estimator: HybridEstimator, events: np.ndarray,
                    node_rates: dict[str, float]) -> dict[str, Any]:
    """Account a few windows exactly (offline, same events) and compare hybrid and ANN-only."""
    import torch
    from hybrid_pose_ros.events.binning import split_into_bins
    from hybrid_pose_ros.model.energy import account_step, energy_report, mean_accounting
    config = estimator.config
    starts = window_starts(events['t'], config)
    starts = [s for s in starts if s + config.window_us <= int(events['t'][-1])]
    if not starts:
        return {}
    sampled = [starts[int(i)] for i in np.unique(
        np.linspace(0, len(starts) - 1, ENERGY_WINDOWS).round().astype(int))]
    accounted = []
    with torch.inference_mode():
        for start in sampled:
            n_before = int(np.searchsorted(events['t'], start))
            history = events[max(0, n_before - config.ann_events):n_before]
            frames = torch.cat([estimator.snn_input(b) for b in split_into_bins(
                events, start, config.bin_us, config.steps_per_window)])
            out = estimator.model.forward_window(estimator.ann_input(history),
                                                 frames.unsqueeze(0), keep_activity=True)
            accounted += [account_step(config, frames[t:t + 1], out['activity'][t].spikes)
                          for t in range(config.steps_per_window)]
    step = mean_accounting(accounted)
    report = energy_report(config, step)
    views = {}
    for view in ('paper_simplified', 'event_driven'):
        power = report['energy']['cvprw']['power'][view]
        views[view] = {'hybrid_mj_per_s': power['hybrid_w'] * 1e3,
                       'ann_only_mj_per_s': power['ann_only_w'] * 1e3,
                       'saving': power['power_saving']}
    return {'constants': 'cvprw (1.645 pJ/MAC, 0.38 pJ/SynOp)',
            'output_rate_hz': config.snn_rate_hz, 'windows_accounted': len(sampled),
            'per_second': views,
            'mean_firing_rate_offline': step.mean_firing_rate,
            'firing_rates_offline': step.firing_rates,
            'firing_rates_node_last_pose': node_rates,
            'dense_gmac': {k: v / 1e9 for k, v in report['dense_macs'].items()}}


def plot_error_per_step(path: pathlib.Path, per_step: list[float | None], bin_ms: float,
                        reference: list[float | None] | None, trained: bool) -> None:
    """Plot the mean 2D error per SNN step of the window (and the evaluation's, if given)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    times = [(i + 1) * bin_ms for i in range(len(per_step))]
    ax.axvline(0.0, color=_rgb(ANN_COLOR), linewidth=2,
               label='ANN re-initialisation (window start)')
    ax.plot(times, [np.nan if v is None else v for v in per_step], marker='o',
            label='node on the sample bag')
    if reference:
        ax.plot(times[:len(reference)], [np.nan if v is None else v for v in reference],
                marker='s', linestyle='--', label='offline evaluation of the same weights')
    ax.set_xlim(-bin_ms / 2, (len(per_step) + 0.5) * bin_ms)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f'time since the ANN re-initialisation (ms); one SNN step per {bin_ms:g} ms')
    ax.set_ylabel('2D MPJPE (pixels of the sensor)')
    ax.set_title('Mean joint error per SNN step of a 100 ms window'
                 + ('' if trained else ' - UNTRAINED WEIGHTS'))
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rgb(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in color)


def message_schedule(data: BagSlice, recording: Recording) -> np.ndarray | None:
    """
    Return when each replayed message reached this process (``time.monotonic()``).

    The replayer sends message ``k`` at a fixed offset plus its bag time; the offset is the
    median over the messages the recorder saw (it subscribes once the node has, so it misses
    the first few). None if it saw none.
    """
    bag_s = dict(zip(data.stamps_ns.tolist(), data.bag_s.tolist()))
    offsets = [arrived - bag_s[stamp] for arrived, stamp in recording.event_arrivals
               if stamp in bag_s]
    return float(np.median(offsets)) + data.bag_s if offsets else None


def external_latency_ms(data: BagSlice, schedule: np.ndarray | None, arrivals: np.ndarray,
                        stamps: np.ndarray) -> np.ndarray:
    """Return per pose: arrival of the event message that completed its bin -> the pose."""
    latency = np.full(len(stamps), np.nan)
    completing = np.searchsorted(data.last_us, stamps, side='left')
    valid = completing < len(data.last_us)
    if schedule is not None:
        latency[valid] = (arrivals[valid] - schedule[completing[valid]]) * 1e3
    return latency


def plot_latency(path: pathlib.Path, data: BagSlice, schedule: np.ndarray | None,
                 pose_arrivals: np.ndarray, latency_ms: np.ndarray,
                 diag: list[tuple[float, dict[str, str]]], window_start: np.ndarray) -> None:
    """
    Plot per-pose latency, the node's p50/p99 and the input event rate over replay time.

    ``window_start`` marks the poses of a window's first bin, the ones the ANN re-initialised.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    t0 = schedule[0] if schedule is not None else pose_arrivals[0]
    top.plot(pose_arrivals[~window_start] - t0, latency_ms[~window_start], '.', markersize=3,
             label='SNN step: event message in -> pose out')
    top.plot(pose_arrivals[window_start] - t0, latency_ms[window_start], 'o', markersize=4,
             color=_rgb(ANN_COLOR), label='first pose after an ANN re-initialisation')
    for key, marker in (('latency_p50_ms', 'o'), ('latency_p99_ms', '^')):
        points = [(t - t0, float(v[key])) for t, v in diag if key in v]
        if points:
            top.plot(*zip(*points), marker=marker, linestyle='-',
                     label=f'node {key[8:11]} so far (/diagnostics)')
    top.set_ylabel('latency (ms)')
    top.set_title('Latency of each pose (replay in real time) and the input event rate')
    top.grid(True, alpha=0.3)
    top.legend(fontsize=8)
    sent = (schedule - t0) if schedule is not None else data.bag_s - data.bag_s[0]
    spans = np.diff(data.last_us, prepend=data.events['t'][0]) / 1e6
    bottom.step(sent, data.counts / np.maximum(spans, 1e-3) / 1e6, where='pre')
    bottom.set_ylabel('input events (million events/s)')
    bottom.set_xlabel('replay time (s)')
    bottom.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _side(joints: tuple[int, ...]) -> tuple[int, int, int]:
    """Return the colour of a joint or bone: right, left, or centre (head, across the body)."""
    sides = {JOINT_NAMES[j].rsplit('_', 1)[-1] for j in joints} - {'head'}
    if sides == {'right'}:
        return RIGHT_COLOR
    if sides == {'left'}:
        return LEFT_COLOR
    return CENTRE_COLOR


def _font(size: int) -> Any:
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1 has only its small bitmap font
        return ImageFont.load_default()


def _draw_pose(draw: Any, xy: np.ndarray, ground_truth: bool) -> None:
    """Draw one skeleton scaled by ``GIF_SCALE``: thin green truth, thick coloured prediction."""
    visible = np.isfinite(xy).all(axis=1)
    points = (np.nan_to_num(xy) + 0.5) * GIF_SCALE - 0.5
    width, radius = (1, 2) if ground_truth else (3, 4)
    for a, b in SKELETON_EDGES:
        if visible[a] and visible[b]:
            draw.line([tuple(points[a]), tuple(points[b])], width=width,
                      fill=GT_COLOR if ground_truth else _side((a, b)))
    for j, (x, y) in enumerate(points):
        if visible[j]:
            box = [x - radius, y - radius, x + radius, y + radius]
            if ground_truth:
                draw.ellipse(box, outline=GT_COLOR)
            else:
                draw.ellipse(box, fill=_side((j,)), outline=(0, 0, 0))


def _draw_legend(draw: Any, top: int, width: int, step: int, steps: int, seconds: float,
                 bin_ms: float) -> None:
    """Draw the window timeline (ANN re-initialisation, SNN steps) and the colour legend."""
    font = _font(14)
    white = (255, 255, 255)
    draw.rectangle([0, top, width - 1, top + GIF_LEGEND_PX - 1], fill=(0, 0, 0))
    y = top + 8
    draw.text((6, y), 'window', fill=white, font=font)
    x = 8 + draw.textlength('window', font=font)
    for k in range(steps):
        color = ANN_COLOR if k == 0 else (200, 200, 200)
        draw.rectangle([x, y, x + 18, y + 16], outline=color, fill=color if k == step else None)
        x += 22
    draw.text((x + 6, y), f't = {seconds:5.2f} s, {step * bin_ms:.0f} ms after ANN init '
              f'(magenta), {bin_ms:.0f} ms per SNN step', fill=white, font=font)
    y = top + 38
    x = 6
    items = [('prediction:', white, 0), ('right', RIGHT_COLOR, 3), ('left', LEFT_COLOR, 3),
             ('centre', CENTRE_COLOR, 3), ('ground truth', GT_COLOR, 1),
             ('events ON', EVENT_ON_COLOR, 0), ('OFF', (150, 150, 175), 0)]
    for label, color, line in items:
        if line:
            draw.line([(x, y + 8), (x + 20, y + 8)], fill=color, width=line)
            x += 24
        draw.text((x, y), label, fill=color, font=font)
        x += draw.textlength(label, font=font) + 14


def gif_frame(events: np.ndarray, sensor: tuple[int, int], truth: np.ndarray | None,
              joints: np.ndarray, step: int, seconds: float, config: ModelConfig,
              trained: bool) -> Any:
    """
    Return one GIF frame: the bin's events and both skeletons at ``GIF_SCALE``, and a legend.

    The prediction's right limbs are orange, its left limbs blue; the ground truth is thin
    green. The first pose of a window, where the ANN re-initialised the SNN, gets a magenta
    frame and label; the legend's timeline shows the step within the window.
    """
    from PIL import Image, ImageDraw
    image = event_image(events, *sensor, on_color=EVENT_ON_COLOR, off_color=EVENT_OFF_COLOR,
                        background=15)
    image = np.repeat(np.repeat(image, GIF_SCALE, axis=0), GIF_SCALE, axis=1)
    width, height = image.shape[1], image.shape[0]
    frame = Image.new('RGB', (width, height + GIF_LEGEND_PX))
    frame.paste(Image.fromarray(image), (0, 0))
    draw = ImageDraw.Draw(frame)
    if truth is not None:
        _draw_pose(draw, truth, ground_truth=True)
    _draw_pose(draw, joints, ground_truth=False)
    font = _font(20)
    if step == 0:
        draw.rectangle([0, 0, width - 1, height - 1], outline=ANN_COLOR, width=6)
        _label(draw, (12, 12), 'ANN re-initialisation', ANN_COLOR, font)
    if not trained:
        text = 'UNTRAINED MODEL'
        _label(draw, (width - 12 - draw.textlength(text, font=font), 12), text, (255, 60, 60),
               font)
    _draw_legend(draw, height, width, step, config.steps_per_window, seconds,
                 config.bin_us / 1000)
    return frame


def _label(draw: Any, at: tuple[float, float], text: str, color: tuple[int, int, int],
           font: Any) -> None:
    left, top, right, bottom = draw.textbbox(at, text, font=font)
    draw.rectangle([left - 4, top - 4, right + 4, bottom + 4], fill=(0, 0, 0))
    draw.text(at, text, fill=color, font=font)


def write_gif(path: pathlib.Path, data: BagSlice, stamps: np.ndarray, xy: np.ndarray,
              config: ModelConfig, trained: bool) -> int:
    """Animate every ``GIF_FRAME_MS`` of bins and every window start; return the frames."""
    stride = max(1, round(GIF_FRAME_MS * 1000 / config.bin_us))
    times = data.events['t']
    frames = []
    for stamp, joints in zip(stamps, xy):
        step = (int(stamp) - config.bin_us) % config.window_us // config.bin_us
        if step % stride:
            continue
        a, b = np.searchsorted(times, [int(stamp) - config.bin_us, int(stamp)])
        frames.append(gif_frame(data.events[a:b], (data.width, data.height),
                                data.labels.get(int(stamp)), joints, step,
                                (int(stamp) - int(times[0])) / 1e6, config, trained))
    if frames:
        frames[0].save(path, save_all=True, append_images=frames[1:], loop=0, optimize=False,
                       duration=stride * config.bin_us // 1000)
    return len(frames)


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _rate(times: np.ndarray) -> float | None:
    return float((len(times) - 1) / (times[-1] - times[0])) if len(times) > 1 else None


def evaluation_reference(checkpoint: str, sample_bag: bool) -> dict[str, Any] | None:
    """
    Return the hybrid 2D MPJPE the demo is checked against, if an evaluation is bundled.

    For the bundled bag that is ``evaluation_sample_bag.json`` beside the checkpoint (the same
    held-out recording and camera, evaluated offline); otherwise ``evaluation.json`` (the whole
    test split, whose motions differ in difficulty).
    """
    folder = pathlib.Path(checkpoint).parent
    path = folder / 'evaluation_sample_bag.json'
    if not (sample_bag and path.exists()):
        path = folder / 'evaluation.json'
    if not path.exists():
        return None
    hybrid = json.loads(path.read_text()).get('models', {}).get('hybrid', {})
    mpjpe = hybrid.get('mpjpe_2d_px', {})
    if mpjpe.get('mean') is None:
        return None
    return {'file': str(path), 'mpjpe_px': mpjpe['mean'], 'per_step': mpjpe.get('per_step')}


def main(argv: list[str] | None = None) -> None:
    """Run the demo end to end and write the output folder."""
    parser = argparse.ArgumentParser(description='hybrid_pose_ros demo: node + replayer + '
                                     'recorder over DDS, on the bundled sample bag')
    parser.add_argument('--output', default='demo_output', help='output folder')
    parser.add_argument('--bag', help='bag with /cam3/events and /cam3/pose_gt '
                        '(default: the bundled sample bag)')
    parser.add_argument('--checkpoint', help='hybrid checkpoint (default: bundled weights)')
    parser.add_argument('--duration', type=float,
                        help='replay only the first DURATION seconds of events')
    args = parser.parse_args(argv)
    out = pathlib.Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / 'outputs_bag', ignore_errors=True)
    (out / 'summary.json').unlink(missing_ok=True)
    checkpoint, metadata, config = resolve_checkpoint(args.checkpoint, out)
    trained = bool(metadata.get('trained', True))
    if not trained:
        log(f'no trained weights ({checkpoint}): {UNTRAINED}')
    bag = pathlib.Path(args.bag) if args.bag else sample_bag()
    data = read_bag(bag, args.duration)
    log(f'{len(data.events)} events in {len(data.messages)} messages from {bag}')
    typestore = event_typestore()
    with tempfile.TemporaryDirectory() as tmp:
        replayed = bag
        if args.duration is not None:
            replayed = pathlib.Path(tmp) / 'slice'
            write_slice(data.messages, replayed)
        span_us = int(data.events['t'][-1]) - int(data.events['t'][0])
        recording = record(checkpoint, replayed, out, expected_poses(data.events['t'], config))
    arrivals, stamps, xy = node_poses(recording, typestore)
    if len(stamps) == 0:
        sys.exit('demo: the node published no poses; see ' + str(out / 'node.log'))
    log(f'{len(stamps)} poses received; running the offline reference')
    estimator, steps = offline_reference(checkpoint, data)
    diag = diagnostics(recording, typestore)
    last = diag[-1][1] if diag else {}
    parity = compare_with_offline(stamps, xy, steps, int(last.get('bins_dropped', 0)))
    errors = pose_errors(stamps, xy, data.labels)
    step_index = (stamps - config.bin_us) % config.window_us // config.bin_us
    per_step = [_mean_or_none(errors[step_index == k]) for k in range(config.steps_per_window)]
    mpjpe = _mean_or_none(errors)
    reference = evaluation_reference(checkpoint, args.bag is None) if trained else None
    log('energy accounting, plots and animation')
    node_rates = {k[len('firing_rate_'):]: float(v) for k, v in last.items()
                  if k.startswith('firing_rate_')}
    energy = energy_estimate(estimator, data.events, node_rates)
    schedule = message_schedule(data, recording)
    latency_ms = external_latency_ms(data, schedule, arrivals, stamps)
    plot_error_per_step(out / 'error_per_step.png', per_step, config.bin_us / 1000,
                        reference['per_step'] if reference else None, trained)
    plot_latency(out / 'latency_event_rate.png', data, schedule, arrivals, latency_ms, diag,
                 step_index == 0)
    gif_frames = write_gif(out / 'demo.gif', data, stamps, xy, config, trained)
    summary = {
        'weights': {'checkpoint': checkpoint, 'trained': trained, 'preset': config.preset,
                    'note': 'trained weights' if trained else UNTRAINED,
                    'metadata': {k: metadata[k] for k in METADATA_KEYS if k in metadata}},
        'bag': {'path': str(bag), 'duration_s': args.duration or span_us / 1e6,
                'event_messages': len(data.messages), 'events': int(len(data.events)),
                'replayer_process_s': round(recording.replay_wall_s, 2)},
        'poses': {'received': int(len(stamps)), 'offline': len(steps),
                  'windows': int((step_index == 0).sum()), 'with_label': int(
                      np.isfinite(errors).sum())},
        'mpjpe_px': {'mean': mpjpe, 'per_step': per_step,
                     'definition': 'sensor px; nanmean over joints visible in prediction and '
                     'label, mean over poses; label = /cam3/pose_gt at the pose stamp'},
        'rates_hz': {'snn_expected': config.snn_rate_hz, 'ann_expected': config.ann_rate_hz,
                     'snn_achieved': _rate(arrivals),
                     'ann_achieved': _rate(arrivals[step_index == 0])},
        'latency_ms': {'node_p50': _float(last.get('latency_p50_ms')),
                       'node_p99': _float(last.get('latency_p99_ms')),
                       'recorder_p50': _percentile(latency_ms, 50),
                       'recorder_p99': _percentile(latency_ms, 99)},
        'drops': {k: int(last[k]) for k in DROP_COUNTERS + ERROR_COUNTERS + EXTRA_DROP_KEYS
                  if k in last},
        'energy': energy,
        'node_vs_offline': parity,
        'reference': reference,
        'gif_frames': gif_frames,
    }
    failures = []
    if reference is not None:
        limit = MPJPE_FACTOR * reference['mpjpe_px'] + MPJPE_MARGIN_PX
        reference['limit_px'] = limit
        if mpjpe is not None and mpjpe > limit:
            failures.append(f'MPJPE {mpjpe:.2f} px is far above the evaluated '
                            f'{reference["mpjpe_px"]:.2f} px (limit {limit:.2f} px)')
    if not parity['consistent']:
        failures.append(f'node and offline model differ: {parity}')
    summary['checks'] = {'passed': not failures, 'failures': failures}
    summary['wall_s'] = round(time.monotonic() - STARTED, 1)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    _print_summary(summary, out)
    if failures:
        sys.exit('demo: ' + '; '.join(failures))


def _float(value: str | None) -> float | None:
    return float(value) if value is not None else None


def _percentile(values: np.ndarray, q: float) -> float | None:
    values = values[np.isfinite(values)]
    return float(np.percentile(values, q)) if len(values) else None


def _print_summary(summary: dict[str, Any], out: pathlib.Path) -> None:
    def fmt(value: float | None, digits: int = 2) -> str:
        return '-' if value is None else f'{value:.{digits}f}'
    poses, rates, latency = summary['poses'], summary['rates_hz'], summary['latency_ms']
    energy = summary['energy'].get('per_second', {}).get('paper_simplified', {})
    log(f'weights: {summary["weights"]["note"]}')
    log(f'poses {poses["received"]} (offline {poses["offline"]}), MPJPE '
        f'{fmt(summary["mpjpe_px"]["mean"])} px, node vs offline max difference '
        f'{summary["node_vs_offline"]["max_abs_diff_px"]:.2g} px')
    log(f'SNN {fmt(rates["snn_achieved"], 1)} Hz, ANN {fmt(rates["ann_achieved"], 1)} Hz, '
        f'latency p50/p99 {fmt(latency["node_p50"])}/{fmt(latency["node_p99"])} ms, '
        f'bins dropped {summary["drops"].get("bins_dropped", 0)}')
    if energy:
        log(f'energy {energy["hybrid_mj_per_s"]:.3f} mJ/s hybrid vs '
            f'{energy["ann_only_mj_per_s"]:.3f} mJ/s ANN-only (paper_simplified, cvprw)')
    log(f'wrote {out}/summary.json, demo.gif, error_per_step.png, latency_event_rate.png, '
        f'outputs_bag/ ({summary["wall_s"]} s)')


if __name__ == '__main__':
    main()
