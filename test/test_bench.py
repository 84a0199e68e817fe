# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The benchmark command runs and its fast paths agree with the typed paths (no timing asserts)."""
import json

from hybrid_pose_ros.tools import bench
import pytest


def test_ingest_section_writes_rows_for_both_message_types(tmp_path):
    out = tmp_path / 'bench.json'
    bench.main(['--sections', 'ingest', '--quick', '--json', str(out)])
    result = json.loads(out.read_text())
    assert {(r['message'], r['events']) for r in result['ingest']} == {
        (m, n) for m in ('EventArray', 'EventPacket mono') for n in (10_000, 100_000)}
    assert set(result['ingest_summary']) == {'EventArray', 'EventPacket mono'}
    assert all(r['numpy_mev_s'] > 0 and r['typed_mev_s'] > 0 for r in result['ingest'])


@pytest.mark.ros
def test_end_to_end_run_measures_every_pose_of_a_bag_slice():
    from hybrid_pose_ros.tools import bench_e2e
    if not bench_e2e.DEFAULT_BAG.exists():
        pytest.skip('sample bag not present')
    messages = bench_e2e.read_messages(bench_e2e.DEFAULT_BAG, '/cam3/events')[:40]
    run = bench_e2e.run_once(messages, rate=2.0, threads=1, checkpoint=None)
    assert run['poses'] > 10 and run['bins_dropped'] == 0
    assert 0 < run['latency_p50_ms'] <= run['latency_p99_ms']
    assert run['snn_rate_hz'] > 0 and run['node_cpu_cores'] > 0
