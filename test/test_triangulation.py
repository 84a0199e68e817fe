# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Weighted DLT triangulation: exact recovery, weights, unusable views, DHP19 conventions."""
from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.cameras import CAM_TO_P, dhp19_rig
from hybrid_pose_ros.events.sensor import DHP19_CROP_X0, DHP19_CROP_Y0
from hybrid_pose_ros.geometry.calibration import from_dhp19
from hybrid_pose_ros.geometry.triangulation import project, triangulate
import numpy as np
import pytest


def _random_cameras(rng, count):
    matrices = []
    for _ in range(count):
        k = np.array([[250.0, 0, 173], [0, 250, 130], [0, 0, 1]])
        angle = rng.uniform(-0.6, 0.6)
        r = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                      [-np.sin(angle), 0, np.cos(angle)]])
        t = np.array([rng.uniform(-300, 300), rng.uniform(-300, 300), 3000.0])
        matrices.append(k @ np.hstack([r, t[:, None]]))
    return np.stack(matrices)


def test_exact_projections_recover_points():
    rng = np.random.default_rng(0)
    cameras = _random_cameras(rng, 3)
    points = rng.uniform(-800, 800, (5, 13, 3))
    uv = np.stack([project(p, points) for p in cameras], axis=-2)
    recovered = triangulate(cameras, uv, rng.uniform(0.1, 1.0, uv.shape[:-1]))
    assert recovered.shape == (5, 13, 3)
    assert np.abs(recovered - points).max() < 1e-6


def test_dhp19_rig_with_p_convention():
    rig = dhp19_rig()
    matrices = np.stack([rig[cam].dhp19_matrix() for cam in (3, 2)])
    points_mm = np.array([[0.0, 0.0, 900.0], [250.0, -100.0, 1600.0], [-300, 50, 100]])
    uv_top = np.stack([rig[cam].project(points_mm / 1000.0)[0] for cam in (3, 2)], axis=-2)
    internal = np.stack([from_dhp19(m) for m in matrices])   # metres, pixel centres
    recovered = triangulate(internal, uv_top - 0.5)
    assert np.abs(recovered * 1000.0 - points_mm).max() < 1e-6
    # the same convention as the labels: P matrices of the h5 cameras via CAM_TO_P
    assert CAM_TO_P[3] == 2 and CAM_TO_P[2] == 3
    crop = dhp19.project_to_crop(matrices[0], points_mm.T[None])[0]
    assert np.allclose(crop, np.trunc(uv_top[:, 0] - [DHP19_CROP_X0, DHP19_CROP_Y0]))


def test_weights_and_unusable_views():
    rng = np.random.default_rng(1)
    cameras = _random_cameras(rng, 3)
    point = np.array([100.0, -50.0, 200.0])
    uv = np.stack([project(p, point) for p in cameras])
    noisy = uv.copy()
    noisy[2] += 25.0                                   # a bad third view
    assert np.linalg.norm(triangulate(cameras, noisy, [1, 1, 1e-9]) - point) < 1e-3
    assert np.linalg.norm(triangulate(cameras, noisy) - point) > 1.0
    nan_view = noisy.copy()
    nan_view[2] = np.nan                               # ignored
    assert np.linalg.norm(triangulate(cameras, nan_view) - point) < 1e-6
    one_view = nan_view.copy()
    one_view[1] = np.nan
    assert np.isnan(triangulate(cameras, one_view)).all()
    assert np.isnan(triangulate(cameras, uv, [1, 0, 0])).all()


def test_shape_errors():
    with pytest.raises(ValueError):
        triangulate(np.zeros((2, 3, 4)), np.zeros((3, 2)))


def test_wrong_shapes_are_rejected_whichever_is_wrong():
    cameras, uv = np.zeros((2, 3, 4)), np.zeros((5, 2, 2))
    for bad in ((np.zeros((2, 3, 3)), uv), (cameras, np.zeros((5, 3, 2))),
                (cameras, np.zeros((5, 2, 3)))):
        with pytest.raises(ValueError, match=r'^expected projections \[C, 3, 4\] and uv'):
            triangulate(*bad)
