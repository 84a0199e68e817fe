# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""``make demo`` on a 1.5 s slice of the sample bag: outputs exist and agree with each other."""
import json
import math
import pathlib
import subprocess
import sys

from helpers.streams import small_checkpoint
import pytest

pytestmark = pytest.mark.ros
pytest.importorskip('rclpy')

DURATION_S = 1.5


def test_demo_on_a_slice_of_the_sample_bag(tmp_path, ros_env):
    from PIL import Image
    from rosbags.highlevel import AnyReader
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint)
    out = tmp_path / 'demo'
    result = subprocess.run(
        [sys.executable, '-m', 'hybrid_pose_ros.tools.demo', '--output', str(out),
         '--checkpoint', str(checkpoint), '--duration', str(DURATION_S)],
        env=ros_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(result.stdout)  # shown by pytest if an assertion fails
    summary = json.loads((out / 'summary.json').read_text())
    print(json.dumps(summary, indent=1))
    assert summary['weights']['trained'] is False
    assert 'UNTRAINED' in summary['weights']['note']
    # one pose per 10 ms bin after the first window start (100 ms); a CPU-starved node drops
    # whole windows (counted), every pose it publishes equals the offline model's
    received, offline = summary['poses']['received'], summary['poses']['offline']
    assert abs(offline - (DURATION_S - 0.1) * 100) <= 12
    parity = summary['node_vs_offline']
    assert parity['consistent'] and parity['matched_by_stamp'] == received >= 20
    assert offline - received <= summary['drops']['bins_dropped']  # warm-up bins count too
    assert summary['poses']['windows'] >= received // 10
    assert parity['max_abs_diff_px'] <= 1e-3
    assert math.isfinite(summary['mpjpe_px']['mean'])
    assert len(summary['mpjpe_px']['per_step']) == 10
    assert summary['latency_ms']['node_p50'] > 0
    assert summary['energy']['per_second']['paper_simplified']['ann_only_mj_per_s'] > \
        summary['energy']['per_second']['paper_simplified']['hybrid_mj_per_s'] > 0
    assert summary['checks']['passed']
    with Image.open(out / 'demo.gif') as gif:
        assert gif.n_frames == summary['gif_frames'] >= received // 2
    for name in ('error_per_step.png', 'latency_event_rate.png'):
        assert (out / name).stat().st_size > 10_000
    with AnyReader([pathlib.Path(out / 'outputs_bag')]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts['/hybrid_pose/hybrid_pose_node/pose'] == received
    # markers at the default marker_rate_hz (30): 3 per 10 poses of 10 ms
    assert counts['/hybrid_pose/hybrid_pose_node/skeleton'] == pytest.approx(0.3 * received,
                                                                             abs=2)
    assert counts['/diagnostics'] >= 1
