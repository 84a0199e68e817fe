# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The benchmark command runs and its fast paths agree with the typed paths (no timing asserts)."""
import json

from hybrid_pose_ros.tools import bench


def test_ingest_section_writes_rows_for_both_message_types(tmp_path):
    out = tmp_path / 'bench.json'
    bench.main(['--sections', 'ingest', '--quick', '--json', str(out)])
    result = json.loads(out.read_text())
    assert {(r['message'], r['events']) for r in result['ingest']} == {
        (m, n) for m in ('EventArray', 'EventPacket mono') for n in (10_000, 100_000)}
    assert set(result['ingest_summary']) == {'EventArray', 'EventPacket mono'}
    assert all(r['numpy_mev_s'] > 0 and r['typed_mev_s'] > 0 for r in result['ingest'])
