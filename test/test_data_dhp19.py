"""DHP19 file format, loader geometry and the camera rig conventions."""
from pathlib import Path

import h5py
from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.cameras import CAM_TO_P, camera_center_from_matrix, dhp19_rig
from hybrid_pose_ros.data.cameras import CAPTURE_CENTER, DHP19_P_MATRICES, P_TO_CAM, project_dhp19
from hybrid_pose_ros.events.event_array import make_events
import numpy as np
import pytest


def _events(t, x, y, p):
    return make_events(np.asarray(t), np.asarray(x), np.asarray(y), np.asarray(p))


def test_events_round_trip_with_one_based_pixels(tmp_path):
    path = str(tmp_path / 'S1_session1_mov1_events.h5')
    ev = _events([0, 500, 1000, 1000, 2500], [0, 1, 345, 3, 4], [0, 259, 2, 3, 4],
                 [0, 1, 1, 0, 1])
    dhp19.write_events(path, {3: ev, 2: ev[:2]})
    with h5py.File(path, 'r') as f:
        assert list(f['cam3_events/x'][:]) == [1, 2, 346, 4, 5]
        assert list(f['cam3_events/y'][:]) == [1, 260, 3, 4, 5]
        assert list(f['cam3_ms_to_idx'][:]) == [0, 2, 4, 5]
    back = dhp19.read_events(path, 3)
    np.testing.assert_array_equal(back, ev)
    assert len(dhp19.read_events(path, 2)) == 2
    table = dhp19.read_ms_to_idx(path, 3)
    assert list(dhp19.window_events(back, table, 1, 3)['t']) == [1000, 1000, 2500]


def test_writer_rejects_unsorted_events(tmp_path):
    writer = dhp19.EventsWriter(str(tmp_path / 'e.h5'))
    writer.append(0, _events([5, 10], [0, 0], [0, 0], [0, 0]))
    with pytest.raises(ValueError):
        writer.append(0, _events([7], [0], [0], [0]))
    writer.close()


def test_labels_round_trip(tmp_path):
    path = str(tmp_path / 'S1_session1_mov1_events_label.h5')
    poses = np.random.default_rng(0).normal(size=(4, 3, 13))
    times = dhp19.label_times_us(45_000)
    assert list(times) == [10_000, 20_000, 30_000, 40_000]
    dhp19.write_labels(path, poses, times)
    back, t = dhp19.read_labels(path)
    np.testing.assert_allclose(back, poses)
    np.testing.assert_array_equal(t, times)
    with pytest.raises(ValueError):
        dhp19.write_labels(path, poses[:, :, :5], times)


def test_window_start_after_7500_events():
    t = np.arange(9000, dtype=np.int64) * 20          # t[7500] = 150 ms
    assert dhp19.constant_count_start_ms(t) == 200
    assert dhp19.constant_count_start_ms(t[:7500]) is None
    t2 = t.copy()
    t2[7500:] += 50_000                                # t[7500] = 200 ms exactly
    assert dhp19.constant_count_start_ms(t2) == 200
    # 50 labels (10..500 ms): a 100 ms window starting at s needs label (s+100)/10 - 1 <= 49
    np.testing.assert_array_equal(dhp19.window_starts_ms(t, 50), [200, 300, 400])
    table = dhp19.ms_to_idx(t)
    np.testing.assert_array_equal(dhp19.window_starts_ms(t, 50, num_ms=len(table)), [])
    assert dhp19.window_starts_ms(t[:100], 50).size == 0


def test_bin_label_index_is_pose_at_bin_end():
    assert dhp19.bin_label_index(200, 0) == 20        # label 20 = pose at 210 ms
    assert dhp19.bin_label_index(200, 9) == 29        # pose at 300 ms
    assert dhp19.bin_label_index(0, 1, bin_ms=5) == 0
    with pytest.raises(ValueError):
        dhp19.bin_label_index(0, 0, bin_ms=5)


def test_ann_input_is_events_before_window():
    t = np.arange(10_000, dtype=np.int64) * 10
    ev = _events(t, np.zeros_like(t), np.zeros_like(t), np.zeros_like(t))
    table = dhp19.ms_to_idx(t)
    before = dhp19.ann_input_events(ev, table, 90)
    assert len(before) == 7500 and before['t'][-1] == 89_990


def test_projection_to_crop_flips_truncates_and_masks():
    p = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])   # u = X, y/w = Y
    pts = np.array([[100.7, 200.2, 5.0],     # v_img = 59.8 -> (66, 57)
                    [34.0, 258.0, 0.0],      # v_img = 2 -> (0, 0)
                    [289.9, 2.01, 0.0],      # v_img = 257.99 -> (255, 255)
                    [33.9, 100.0, 0.0],      # u < 34: invisible
                    [290.0, 100.0, 0.0],     # u = 290: invisible
                    [100.0, 2.0, 0.0]])      # v_img = 258: invisible
    poses = np.zeros((1, 3, 13))
    poses[0, :, :6] = pts.T
    uv = dhp19.project_to_crop(p, poses)[0]
    np.testing.assert_array_equal(uv[:3], [[66, 57], [0, 0], [255, 255]])
    assert np.all(np.isnan(uv[3:6]))


def test_split():
    assert dhp19.split_of('S1_session1_mov1') == 'train'
    assert dhp19.split_of('/x/S12_session5_mov8_events.h5') == 'train'
    assert dhp19.split_of('S13_session1_mov1_events_label.h5') == 'test'
    assert dhp19.split_of('S16_session2_mov1') is None
    assert dhp19.split_of('S16_session2_mov2') == 'test'
    assert dhp19.parse_recording_name('S3_session2_mov4_events.h5') == (3, 2, 4)


def test_camera_index_mapping():
    assert CAM_TO_P == {1: 1, 3: 2, 2: 3, 0: 4}
    assert all(CAM_TO_P[P_TO_CAM[p]] == p for p in (1, 2, 3, 4))


SHARED_DHP19 = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'dhp19'


def test_rig_is_the_real_dhp19_rig(tmp_path):
    rig = dhp19_rig()
    pts = np.array([[0.0, 0.0, 0.9], [0.2, -0.1, 1.6], [-0.3, 0.2, 0.05]])
    for cam, camera in rig.items():
        uv, depth = camera.project(pts)
        assert np.all(depth > 1.5)
        u, v = project_dhp19(camera.dhp19_matrix(), pts * 1000.0)
        np.testing.assert_allclose(np.stack([u, v], -1), uv, atol=1e-6)
        matrix = camera.dhp19_matrix()
        np.testing.assert_allclose(matrix / matrix[2, 3], DHP19_P_MATRICES[CAM_TO_P[cam]],
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(camera_center_from_matrix(matrix), camera.center * 1000.0,
                                   atol=1e-3)
        assert np.linalg.det(camera.R) == pytest.approx(1.0)
        assert 300 < camera.K[0, 0] < 370 and 300 < camera.K[1, 1] < 370
        assert 2.2 < np.linalg.norm(camera.center[:2]) < 3.5
        assert 1.9 <= camera.center[2] <= 2.2
        # the capture volume's centre is in view, away from the border
        (u0, v0), _ = camera.project(CAPTURE_CENTER)
        assert 100 < u0 < 250 and 60 < v0 < 200
    if SHARED_DHP19.is_dir():
        for p_index in (1, 2, 3, 4):
            np.testing.assert_array_equal(np.load(SHARED_DHP19 / f'P{p_index}.npy'),
                                          DHP19_P_MATRICES[p_index])
        np.testing.assert_allclose(np.load(SHARED_DHP19 / 'camera_positions.npy')[1],
                                   rig[3].center * 1000.0, atol=0.5)
    # a point higher up is higher in the image (smaller top-left v)
    uv, _ = rig[3].project(np.array([[0, 0, 0.9], [0, 0, 1.5]]))
    assert uv[1, 1] < uv[0, 1]
    # frontal cameras see the person's right on the image left (person faces -Y)
    uv, _ = rig[3].project(np.array([[-0.2, 0, 0.9], [0.2, 0, 0.9]]))
    assert uv[0, 0] < uv[1, 0]
    dhp19.write_cameras(str(tmp_path), {c.p_index: c.dhp19_matrix() for c in rig.values()},
                        {c.p_index: c.center * 1000 for c in rig.values()})
    np.testing.assert_allclose(dhp19.load_projection_matrix(str(tmp_path), 3),
                               rig[3].dhp19_matrix())
    np.testing.assert_allclose(dhp19.load_camera_positions(str(tmp_path))[1],
                               rig[3].center * 1000)
