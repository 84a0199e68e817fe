# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The benchmark command runs and its fast paths agree with the typed paths (no timing asserts)."""
import json

from hybrid_pose_ros.sample_bag import sample_bag, SAMPLE_EVENTS_TOPIC
from hybrid_pose_ros.tools import bench
import numpy as np
import pytest


def test_ingest_section_writes_rows_for_both_message_types(tmp_path):
    out = tmp_path / 'bench.json'
    bench.main(['--sections', 'ingest', '--quick', '--json', str(out)])
    result = json.loads(out.read_text())
    assert {(r['message'], r['events']) for r in result['ingest']} == {
        (m, n) for m in ('EventArray', 'EventPacket mono') for n in (10_000, 100_000)}
    assert set(result['ingest_summary']) == {'EventArray', 'EventPacket mono'}
    assert all(r['numpy_mev_s'] > 0 and r['typed_mev_s'] > 0 for r in result['ingest'])


def test_sparse_section_times_every_layer_and_checks_parity():
    from hybrid_pose_ros.tools import bench_sparse
    result = bench_sparse.bench_sparse(presets=('cpu',), quick=True)['cpu']
    assert [r['layer'] for r in result['layers']] == [
        'static_conv', 'down1', 'down2', 'down3', 'res_conv1', 'res_conv2', 'up1', 'up2', 'up3',
        'head']
    assert all(r['active_inputs'] > 0 and r['max_abs_difference'] < 1e-4
               for r in result['layers'])
    steps = result['steps']
    assert steps['dense']['steps'] == steps['sparse']['steps'] == 2
    assert steps['max_abs_difference'] < 1e-4 and steps['mean_firing_rate'] > 0


def test_steps_after_idle_times_every_bin_the_node_steps():
    from hybrid_pose_ros.estimator import HybridEstimator, StreamingRunner
    from hybrid_pose_ros.events.sensor import SensorGeometry
    from hybrid_pose_ros.model.checkpoint import load_checkpoint
    from hybrid_pose_ros.ros import codecs
    from hybrid_pose_ros.ros.node import default_checkpoint
    from hybrid_pose_ros.tools import bench_e2e
    messages = bench_e2e.read_messages(sample_bag(), SAMPLE_EVENTS_TOPIC)[:12]
    result = bench_e2e.steps_after_idle(messages, bench_e2e.node_checkpoint(None), idle_s=0.001)
    loaded = load_checkpoint(default_checkpoint())
    runner = StreamingRunner(HybridEstimator(loaded.model, SensorGeometry.for_sensor(
        346, 260, loaded.config.input_width, loaded.config.input_height)))
    poses = sum(len(runner.push(codecs.decode_event_array(raw).events)) for _, raw, _ in messages)
    assert result['steps'] == poses > 0
    assert all(result[k] > 0 for k in ('step_ms', 'first_after_idle_ms', 'next_after_idle_ms'))


def test_rechunk_recuts_the_bag_into_short_messages_without_losing_events():
    from hybrid_pose_ros.ros import codecs
    from hybrid_pose_ros.tools import bench_e2e
    messages = bench_e2e.read_messages(sample_bag(), SAMPLE_EVENTS_TOPIC)[:20]
    recut = bench_e2e.rechunk(messages, 10_000)
    original = [codecs.decode_event_array(raw).events for _, raw, _ in messages]
    pieces = [codecs.decode_event_array(raw).events for _, raw, _ in recut]
    assert len(recut) > len(messages)
    assert all(p['t'][-1] - p['t'][0] < 10_000 for p in pieces)
    assert (np.concatenate(pieces) == np.concatenate(original)).all()
    assert [last for _, _, last in recut] == [int(p['t'][-1]) for p in pieces]
    assert all(a[0] < b[0] for a, b in zip(recut, recut[1:]))     # publish times increase


def test_latency_is_taken_from_the_message_that_completes_each_bin():
    from hybrid_pose_ros.tools import bench_e2e
    published = [(0.000, 25_000), (0.010, 35_000)]   # (publish time s, last event time us)
    arrivals = [(0.004, 10_000), (0.006, 20_000), (0.013, 30_000)]   # poses of bins 1, 2, 3
    result = bench_e2e.summarise(arrivals, published, {}, wall_s=1.0, cpu=0.1, bin_us=10_000,
                                 window_us=100_000)
    assert result['latency_by_window_bin_ms'][:4] == pytest.approx([4.0, 6.0, 3.0, None])
    assert result['latency_p50_ms'] == pytest.approx(4.0)
    assert result['poses'] == 3 and result['ann_rate_hz'] == 1.0   # one window start


@pytest.mark.ros
def test_end_to_end_run_measures_every_pose_of_a_bag_slice():
    from hybrid_pose_ros.tools import bench_e2e
    messages = bench_e2e.read_messages(sample_bag(), SAMPLE_EVENTS_TOPIC)[:40]
    run = bench_e2e.run_once(messages, rate=2.0, threads=1, checkpoint=None)
    assert run['poses'] > 10 and run['bins_dropped'] == 0
    assert 0 < run['latency_p50_ms'] <= run['latency_p99_ms']
    assert run['snn_rate_hz'] > 0 and run['node_cpu_cores'] > 0
    assert len(run['latency_by_window_bin_ms']) == 10
    # what the node's ANN parameters resolved to, from its diagnostics: the bundled checkpoint
    # is calibrated, so auto runs int8 in OpenVINO where both libraries are installed
    from hybrid_pose_ros.model.openvino_init import nncf_available, openvino_available
    if openvino_available() and nncf_available():
        assert run['ann'] == 'openvino int8'
