# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Calibration conventions, multi-view triangulation with refinement, and stamp matching."""
from helpers import REPO_ROOT
from hybrid_pose_ros.data.cameras import CAM_TO_P, dhp19_rig, project_dhp19
from hybrid_pose_ros.geometry.calibration import (
    CalibrationError, decompose_projection, from_dhp19, from_krt, from_projection,
    load_calibration, parse_calibration, parse_camera, refine_points, rotation_to_quaternion,
    triangulate_joints)
from hybrid_pose_ros.geometry.triangulation import project, triangulate
import numpy as np
import pytest
import yaml

SAMPLE_BAG = REPO_ROOT / 'bags' / 'sample_bag'
POINT = np.array([0.3, -0.2, 1.1])
RIG = dhp19_rig()


def rig_pixels(cam: int, points: np.ndarray) -> np.ndarray:
    """Project with the synthetic rig and convert to the node's pixel-centre convention."""
    uv, _ = RIG[cam].project(points)
    return uv - 0.5


def skeleton(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([0.0, 0.0, 1.0]) + rng.uniform(-0.4, 0.4, (13, 3))


def test_dhp19_matrix_maps_a_known_point_with_the_flip_and_half_pixel():
    camera = RIG[3]
    p_internal = from_dhp19(camera.dhp19_matrix())
    u_dhp, v_img = project_dhp19(camera.dhp19_matrix(), POINT * 1000.0)
    xy = p_internal @ np.append(POINT, 1.0)
    xy = xy[:2] / xy[2]
    np.testing.assert_allclose(xy, [u_dhp - 0.5, v_img - 0.5], atol=1e-9)
    np.testing.assert_allclose(xy, rig_pixels(3, POINT), atol=1e-9)
    # the flip: a point higher in the world has a smaller row
    above = p_internal @ np.append(POINT + [0.0, 0.0, 0.1], 1.0)
    assert above[1] / above[2] < xy[1]


def test_krt_and_corner_projection_agree_with_the_dhp19_entry():
    camera = RIG[2]
    calib = parse_calibration({'cameras': {
        'a': {'K': camera.K.tolist(), 'R': camera.R.tolist(), 't': camera.t.tolist(),
              'pixel_origin': 'corner'},
        'b': {'projection': (camera.matrix @ np.diag([1e-3, 1e-3, 1e-3, 1.0])).tolist(),
              'units': 'mm', 'pixel_origin': 'corner', 'frame_id': 'left'},
        'c': {'dhp19_projection_mm': camera.dhp19_matrix().tolist()},
    }})
    expected = rig_pixels(2, POINT)
    for name in 'abc':
        np.testing.assert_allclose(calib[name].project(POINT), expected, atol=1e-9)
    assert (calib['a'].frame_id, calib['b'].frame_id) == ('a_optical_frame', 'left')
    centered = from_krt(camera.K, camera.R, camera.t)
    np.testing.assert_allclose(centered @ np.append(POINT, 1) / (centered @ np.append(POINT, 1))
                               [2], np.append(expected + 0.5, 1.0), atol=1e-9)


def test_decomposition_recovers_pose_and_quaternion():
    camera = RIG[0]
    calib = parse_calibration({'c0': {'dhp19_projection_mm': camera.dhp19_matrix().tolist()}})
    k, r, t = decompose_projection(-3.0 * calib['c0'].projection)
    np.testing.assert_allclose(r, camera.R, atol=1e-9)
    np.testing.assert_allclose(k[0, 0], camera.K[0, 0], rtol=1e-9)
    np.testing.assert_allclose(calib['c0'].center, camera.center, atol=1e-9)
    translation, quaternion = calib['c0'].optical_frame_pose()
    np.testing.assert_allclose(translation, camera.center, atol=1e-9)
    x, y, z, w = quaternion
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(rotation, camera.R.T, atol=1e-9)   # optical frame in world
    np.testing.assert_allclose(rotation_to_quaternion(np.diag([1.0, -1.0, -1.0])),
                               [1.0, 0.0, 0.0, 0.0], atol=1e-12)


def test_dhp19_folder_uses_the_camera_index_mapping(tmp_path):
    for cam, p_index in CAM_TO_P.items():
        np.save(tmp_path / f'P{p_index}.npy', RIG[cam].dhp19_matrix())
    calib = load_calibration(tmp_path)
    assert sorted(calib) == ['cam0', 'cam1', 'cam2', 'cam3']
    for cam in range(4):
        np.testing.assert_allclose(calib[f'cam{cam}'].project(POINT), rig_pixels(cam, POINT),
                                   atol=1e-9)
    # P2.npy is camera 3's matrix, not camera 2's
    assert not np.allclose(calib['cam2'].project(POINT), rig_pixels(3, POINT), atol=1.0)


def test_sample_bag_calibration_triangulates_its_ground_truth():
    pytest.importorskip('rosbags')
    from hybrid_pose_ros.ros.interfaces import event_typestore
    from rosbags.highlevel import AnyReader
    calib = load_calibration(SAMPLE_BAG / 'cameras.yaml')
    assert calib['cam3'].frame_id == 'cam3_optical_frame'
    wanted = {'/pose_gt_3d', '/cam3/pose_gt', '/cam2/pose_gt'}
    found: dict[str, dict[int, np.ndarray]] = {t: {} for t in wanted}
    with AnyReader([SAMPLE_BAG], default_typestore=event_typestore()) as reader:
        connections = [c for c in reader.connections if c.topic in wanted]
        for conn, stamp, raw in reader.messages(connections=connections):
            if len(found[conn.topic]) < 40:
                msg = reader.deserialize(raw, conn.msgtype)
                found[conn.topic][stamp] = np.array(
                    [[p.position.x, p.position.y, p.position.z] for p in msg.poses])
    stamps = sorted(set(found['/pose_gt_3d']) & set(found['/cam3/pose_gt'])
                    & set(found['/cam2/pose_gt']))
    assert len(stamps) >= 20
    xy = np.stack([[found[f'/cam{c}/pose_gt'][s][:, :2] for c in (3, 2)] for s in stamps])
    truth = np.stack([found['/pose_gt_3d'][s] for s in stamps])
    cameras = [calib['cam3'], calib['cam2']]
    for frame, expected in zip(xy, truth):
        points = triangulate_joints(cameras, frame)
        both = np.isfinite(frame).all(axis=-1).all(axis=0)
        np.testing.assert_allclose(points[both], expected[both], atol=1e-6)
        assert np.isnan(points[~both]).all()


def test_calibration_errors_name_the_camera(tmp_path):
    with pytest.raises(CalibrationError, match="camera 'x': give exactly one"):
        parse_calibration({'x': {'frame_id': 'a'}})
    with pytest.raises(CalibrationError, match='shape'):
        parse_calibration({'x': {'projection': [[1, 2, 3]]}})
    with pytest.raises(CalibrationError, match='rotation'):
        parse_calibration({'x': {'K': np.eye(3).tolist(), 'R': (2 * np.eye(3)).tolist(),
                                 't': [0, 0, 1]}})
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump({'joint_names': ['head']}))
    with pytest.raises(CalibrationError, match='no camera entries'):
        load_calibration(bad)
    with pytest.raises(CalibrationError, match='no P1.npy'):
        load_calibration(tmp_path)


def test_noise_free_triangulation_is_exact_and_one_view_joints_are_missing():
    points = skeleton()
    cams = [3, 2, 1, 0]
    calib = parse_calibration({f'cam{c}': {'dhp19_projection_mm': RIG[c].dhp19_matrix().tolist()}
                               for c in cams})
    cameras = [calib[f'cam{c}'] for c in cams]
    xy = np.stack([rig_pixels(c, points) for c in cams])
    xy[1:, 4] = np.nan                      # elbow_left only in cam3
    xy[:2, 7] = np.nan                      # hand_right only in cam1 and cam0
    confidence = np.ones(xy.shape[:2])
    confidence[3, 9] = 0.0                  # zero confidence = not seen
    result = triangulate_joints(cameras, xy, confidence)
    assert np.isnan(result[4]).all()
    visible = np.ones(13, bool)
    visible[4] = False
    np.testing.assert_allclose(result[visible], points[visible], atol=1e-6)
    xy[1:3, 9] = np.nan                     # knee_right: cam3 only (cam0 weight 0)
    assert np.isnan(triangulate_joints(cameras, xy, confidence)[9]).all()
    assert np.isnan(triangulate_joints(cameras, xy, confidence, min_views=3)[7]).all()


def test_noise_degrades_gracefully_and_refinement_helps():
    rng = np.random.default_rng(1)
    cams = [3, 2, 1, 0]
    calib = parse_calibration({f'cam{c}': {'dhp19_projection_mm': RIG[c].dhp19_matrix().tolist()}
                               for c in cams})
    cameras = [calib[f'cam{c}'] for c in cams]
    points = np.concatenate([skeleton(s) for s in range(20)])
    clean = np.stack([rig_pixels(c, points) for c in cams])
    errors = []
    for sigma in (0.5, 2.0, 8.0):
        noisy = clean + rng.normal(0.0, sigma, clean.shape)
        result = triangulate_joints(cameras, noisy)
        assert np.isfinite(result).all()
        errors.append(np.linalg.norm(result - points, axis=-1).mean())
        # refinement lowers the reprojection error of the DLT
        dlt = triangulate_joints(cameras, noisy, refine_iterations=0)
        reprojection = [np.linalg.norm(np.stack([c.project(p) for c in cameras]) - noisy, axis=-1)
                        .sum() for p in (dlt, result)]
        assert reprojection[1] <= reprojection[0] + 1e-9
    assert errors[0] < errors[1] < errors[2]
    assert errors[0] < 0.01 and errors[2] < 0.15        # metres, cameras ~3 m away
    # two frontal cameras are worse than four, but still usable
    two = triangulate_joints(cameras[:2], clean[:2] + rng.normal(0.0, 2.0, clean[:2].shape))
    assert errors[1] < np.linalg.norm(two - points, axis=-1).mean() < 0.1


def test_a_low_confidence_outlier_barely_moves_the_point():
    calib = parse_calibration({f'cam{c}': {'dhp19_projection_mm': RIG[c].dhp19_matrix().tolist()}
                               for c in (3, 2, 1)})
    cameras = [calib[f'cam{c}'] for c in (3, 2, 1)]
    xy = np.stack([rig_pixels(c, POINT[None]) for c in (3, 2, 1)])
    xy[2, 0] += 40.0
    confident = triangulate_joints(cameras, xy, np.array([[1.0], [1.0], [1.0]]))
    weighted = triangulate_joints(cameras, xy, np.array([[1.0], [1.0], [0.01]]))
    assert np.linalg.norm(weighted[0] - POINT) < 0.1 * np.linalg.norm(confident[0] - POINT)


def test_refine_keeps_missing_points_missing():
    projections = np.stack([RIG[c].matrix for c in (3, 2)])
    uv = np.stack([RIG[c].project(POINT)[0] for c in (3, 2)])[None]
    start = triangulate(projections, uv)
    out = refine_points(projections, np.concatenate([uv, uv]), np.ones((2, 2)),
                        np.stack([start[0] + 0.05, np.full(3, np.nan)]))
    np.testing.assert_allclose(out[0], POINT, atol=1e-9)
    assert np.isnan(out[1]).all()


class TestStampMatcher:
    """Grouping by stamp with a tolerance, timeouts, late and unmatched poses."""

    @staticmethod
    def matcher(cameras=3, tolerance_ns=2_000_000, timeout_s=0.1, max_pending=5):
        from hybrid_pose_ros.ros.node_3d import StampMatcher
        return StampMatcher(cameras, tolerance_ns, timeout_s, max_pending)

    @staticmethod
    def add(matcher, camera, stamp_ms, now=0.0):
        xy = np.zeros((13, 2))
        return matcher.add(camera, int(stamp_ms * 1e6), xy, np.ones(13), now)

    def test_all_cameras_complete_a_set_within_tolerance(self):
        m = self.matcher()
        assert self.add(m, 0, 10) == []
        assert self.add(m, 1, 11.5) == []
        (ready,) = self.add(m, 2, 8.5)
        assert sorted(ready.views) == [0, 1, 2]
        assert ready.output_stamp_ns() == 10_000_000
        assert m.counters['complete_sets'] == 1 and m.pending == []

    def test_outside_tolerance_starts_a_new_set_and_pairs_by_nearest(self):
        m = self.matcher(cameras=2)
        self.add(m, 0, 10)
        self.add(m, 0, 20)
        assert len(m.pending) == 2
        (first,) = self.add(m, 1, 10.5)
        assert first.stamp_ns == 10_000_000
        (second,) = self.add(m, 1, 21.9)
        assert second.views[1][0] == 21_900_000
        assert self.add(m, 1, 32.5) == [] and len(m.pending) == 1

    def test_a_camera_moving_past_releases_the_set_with_those_present(self):
        m = self.matcher()
        self.add(m, 0, 10)
        self.add(m, 1, 10)
        (ready,) = self.add(m, 2, 20)           # camera 2 skipped 10 ms: set 10 goes out
        assert sorted(ready.views) == [0, 1] and m.counters['incomplete_sets'] == 1
        self.add(m, 0, 20)
        (ready,) = self.add(m, 1, 20)
        assert ready.stamp_ns == 20_000_000 and m.counters['complete_sets'] == 1

    def test_timeout_publishes_or_drops_and_late_poses_are_counted(self):
        m = self.matcher()
        self.add(m, 0, 10, now=0.0)
        self.add(m, 1, 10, now=0.01)
        self.add(m, 0, 20, now=0.02)
        assert m.expire(0.05) == []
        (ready,) = m.expire(0.11)
        assert sorted(ready.views) == [0, 1]
        assert m.expire(0.2) == []               # set 20 only has camera 0: dropped
        assert m.counters['unmatched_poses'] == 1 and m.pending == []
        assert self.add(m, 2, 10) == [] and self.add(m, 1, 21) == []
        assert m.counters['late_poses'] == 2

    def test_pending_sets_are_bounded_and_a_clock_jump_resets(self):
        m = self.matcher(cameras=2, max_pending=3)
        for stamp in (10, 20, 30, 40):
            self.add(m, 0, stamp)
        assert len(m.pending) == 3 and m.counters['forced_sets'] == 1
        assert m.counters['unmatched_poses'] == 1
        self.add(m, 0, 50)
        self.add(m, 1, 50)                       # releases 20..40 as unmatched, 50 complete
        assert m.counters['complete_sets'] == 1
        assert self.add(m, 0, 5000) == [] and self.add(m, 1, 5000) != []
        assert self.add(m, 0, 10) == []          # bag looped: 5 s back
        assert m.counters['clock_jumps'] == 1 and m.counters['late_poses'] == 0
        assert len(self.add(m, 1, 10)) == 1


def _quaternion_matrix(quaternion: np.ndarray) -> np.ndarray:
    x, y, z, w = quaternion
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _rotation(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


@pytest.mark.parametrize('axis, angle', [
    ([0.2, 0.3, 0.9], 0.4),        # small angle: the trace is largest
    ([1.0, 0.1, -0.2], 3.0),       # near half turns: the largest diagonal entry decides
    ([0.1, -1.0, 0.3], 2.9),
    ([-0.2, 0.1, 1.0], 3.1),
    ([1.0, 1.0, 0.0], np.pi),      # exact half turn: w = 0
    ([0.0, 0.0, 1.0], 0.0),
])
def test_quaternions_of_rotations_in_every_branch_give_the_rotation_back(axis, angle):
    rotation = _rotation(axis, angle)
    quaternion = rotation_to_quaternion(rotation)
    assert quaternion[3] >= 0 and np.linalg.norm(quaternion) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(_quaternion_matrix(quaternion), rotation, atol=1e-12)
    half = np.sin(angle / 2) * np.asarray(axis) / np.linalg.norm(axis)
    expected = np.append(half, np.cos(angle / 2))
    np.testing.assert_allclose(quaternion, expected if expected[3] > 0 else -expected,
                               atol=1e-12)


def test_projection_defaults_are_metres_and_pixel_centres():
    p = RIG[1].dhp19_matrix()
    np.testing.assert_array_equal(from_projection(p), p)
    np.testing.assert_array_equal(from_projection(p, 'mm'), p @ np.diag([1e3, 1e3, 1e3, 1.0]))
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(from_projection(p, pixel_origin='corner'), shift @ p)
    k, r, t = RIG[1].K, RIG[1].R, RIG[1].t
    np.testing.assert_allclose(from_krt(k, r, t), k @ np.hstack([r, t[:, None]]), atol=1e-12)


@pytest.mark.parametrize('call, message', [
    (lambda: from_projection(np.zeros((3, 3))),
     r'^projection must be a finite array of shape \(3, 4\), got shape \(3, 3\)$'),
    (lambda: from_projection(np.zeros((3, 4)), units='cm'),
     r"^units must be one of \('m', 'mm'\), got 'cm'$"),
    (lambda: from_projection(np.zeros((3, 4)), pixel_origin='top'),
     r"^pixel_origin must be one of \('center', 'corner'\), got 'top'$"),
    (lambda: from_krt(np.eye(2), np.eye(3), np.zeros(3)),
     r'^K must be a finite array of shape \(3, 3\), got shape \(2, 2\)$'),
    (lambda: from_krt(np.eye(3), np.eye(4), np.zeros(3)),
     r'^R must be a finite array of shape \(3, 3\), got shape \(4, 4\)$'),
    (lambda: from_krt(np.eye(3), np.eye(3), np.zeros(4)),
     r'^t must be a finite array of shape \(3,\), got shape \(4,\)$'),
    (lambda: from_krt(np.eye(3), 1.01 * np.eye(3), np.zeros(3)),
     r'^R must be a rotation matrix \(orthonormal, det \+1\)$'),
    (lambda: from_krt(np.eye(3), np.diag([1.0, 1.0, -1.0]), np.zeros(3)),
     r'^R must be a rotation matrix \(orthonormal, det \+1\)$'),
    (lambda: decompose_projection(np.zeros(4)),
     r'^projection must be a finite array of shape \(3, 4\), got shape \(4,\)$'),
    (lambda: from_dhp19(np.zeros((4, 3))),
     r'^dhp19_projection_mm must be a finite array of shape \(3, 4\), got shape \(4, 3\)$'),
])
def test_calibration_errors_say_which_matrix_is_wrong(call, message):
    with pytest.raises(CalibrationError, match=message):
        call()


def test_rotations_are_checked_to_a_micro_tolerance():
    k, t = RIG[2].K, RIG[2].t
    rotation = next(r for r in (_rotation([1.0, seed, 0.3], 0.1 * seed) for seed in range(1, 50))
                    if np.linalg.det(r) < 1.0)      # a proper rotation whose det rounds below 1
    from_krt(k, rotation, t)
    from_krt(k, np.round(rotation, 7), t)           # 7 decimals, as calibration files give them
    with pytest.raises(CalibrationError):
        from_krt(k, rotation + 1e-4, t)


def test_decomposition_of_a_small_projection_is_a_proper_rotation():
    camera = RIG[3]
    for scale in (1e-3, -1e-3, 1.0):      # |det| of the left block below and above 1
        projection = scale * camera.K @ np.hstack([camera.R, camera.t[:, None]])
        k, r, t = decompose_projection(projection)
        np.testing.assert_allclose(r, camera.R, atol=1e-9)
        np.testing.assert_allclose(t, camera.t, atol=1e-9)
        np.testing.assert_allclose(k, camera.K / camera.K[2, 2], rtol=1e-9)


def test_dhp19_folder_cameras_are_named_with_their_frames(tmp_path):
    np.save(tmp_path / f'P{CAM_TO_P[2]}.npy', RIG[2].dhp19_matrix())
    calib = load_calibration(tmp_path)
    assert [(c.name, c.frame_id) for c in calib.values()] == [('cam2', 'cam2_optical_frame')]


def _krt_entry(cam: int, **extra) -> dict:
    camera = RIG[cam]
    return {'K': camera.K.tolist(), 'R': camera.R.tolist(), 't': camera.t.tolist(), **extra}


def test_camera_entries_with_their_defaults_and_their_own_values():
    calib = parse_calibration({'cameras': {
        'a': _krt_entry(1),
        'b': _krt_entry(1, pixel_origin='corner', width=640, height=480, frame_id='b_frame'),
        'c': {'dhp19_projection_mm': RIG[2].dhp19_matrix().tolist(), 'height': 300},
        'd': {'dhp19_projection_mm': RIG[2].dhp19_matrix().tolist()}}})
    a, b, c, d = (calib[name] for name in 'abcd')
    assert [(x.name, x.frame_id, x.width, x.height) for x in (a, b, c, d)] == [
        ('a', 'a_optical_frame', 346, 260), ('b', 'b_frame', 640, 480),
        ('c', 'c_optical_frame', 346, 300), ('d', 'd_optical_frame', 346, 260)]
    np.testing.assert_allclose(a.project(POINT), rig_pixels(1, POINT) + 0.5, atol=1e-9)
    np.testing.assert_allclose(b.project(POINT), rig_pixels(1, POINT), atol=1e-9)
    # DHP19 rows count from the bottom of a sensor of the given height
    np.testing.assert_allclose(c.project(POINT)[1] - d.project(POINT)[1], 40.0, atol=1e-9)


@pytest.mark.parametrize('document, message', [
    ([1, 2], '^expected a YAML mapping of camera names$'),
    ({'cameras': [1]}, "^'cameras' must map camera names to entries$"),
    ({'cameras': {'x': 3}}, '^no camera entries found$'),
    ({'x': {}}, r"^camera 'x': give exactly one of projection, K/R/t or dhp19_projection_mm "
                r'\(found none\)$'),
    ({'x': {'projection': np.eye(3, 4).tolist(), 'K': np.eye(3).tolist()}},
     r"^camera 'x': give exactly one of projection, K/R/t or dhp19_projection_mm "
     r"\(found \['projection', 'K'\]\)$"),
    ({'x': {'K': np.eye(3).tolist(), 't': [0, 0, 1]}},
     r"^camera 'x': K needs R and t too \(missing \['R'\]\)$"),
    ({'x': {'projection': np.zeros((3, 4)).tolist()}},
     "^camera 'x': the projection matrix is degenerate$"),
    ({'x': {'projection': [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 5]]}},
     "^camera 'x': the projection matrix is degenerate$"),
])
def test_calibration_document_errors_give_the_reason(document, message):
    with pytest.raises(CalibrationError, match=message):
        parse_calibration(document)


def test_calibration_file_errors_name_the_file(tmp_path):
    with pytest.raises(CalibrationError, match=r'missing\.yaml: No such file or directory$'):
        load_calibration(tmp_path / 'missing.yaml')
    broken = tmp_path / 'broken.yaml'
    broken.write_text('cameras: [unclosed\n')
    with pytest.raises(CalibrationError, match=r'broken\.yaml: not valid YAML \('):
        load_calibration(broken)


def test_triangulation_computes_in_float64_whatever_the_input_type():
    cameras = np.stack([RIG[cam].dhp19_matrix() for cam in range(4)])
    points = np.array([[0.1, 0.2, 1.3], [-0.3, 0.1, 0.6]]) * 1e3
    uv = np.stack([project(p, points) for p in cameras], axis=-2)
    single = triangulate(cameras.astype(np.float32), uv.astype(np.float32))
    assert single.dtype == np.float64
    np.testing.assert_allclose(single, triangulate(cameras.astype(np.float32).astype(np.float64),
                                                   uv.astype(np.float32).astype(np.float64)),
                               rtol=0, atol=1e-9)


def test_non_numeric_matrices_and_non_mapping_entries_are_calibration_errors():
    numeric = r"^camera 'x': projection must be a numeric array of shape \(3, 4\)$"
    with pytest.raises(CalibrationError, match=numeric):
        parse_calibration({'x': {'projection': [['a'] * 4] * 3}})
    with pytest.raises(CalibrationError, match="^camera 'x': expected a mapping$"):
        parse_camera('x', [1, 2])


def test_joint_triangulation_checks_its_input_and_refines_by_default():
    cameras = list(parse_calibration({f'c{cam}': {
        'dhp19_projection_mm': RIG[cam].dhp19_matrix().tolist()} for cam in (0, 1, 2)}).values())
    points = skeleton(3)
    rng = np.random.default_rng(4)
    xy = np.stack([c.project(points) for c in cameras]) + rng.normal(0.0, 1.5, (3, 13, 2))
    for bad in (xy[:2], xy[..., :1], xy[0]):
        with pytest.raises(ValueError, match=r'^expected xy \[3, J, 2\], got \('):
            triangulate_joints(cameras, bad)
    projections = np.stack([c.projection for c in cameras])
    uv = np.swapaxes(xy, 0, 1)
    start = triangulate(projections, uv)
    one = triangulate_joints(cameras, xy, refine_iterations=1)
    np.testing.assert_allclose(one, refine_points(projections, uv, np.ones((13, 3)), start, 1))
    assert np.abs(one - start).max() > 1e-6             # one step moves the DLT's points
    np.testing.assert_array_equal(triangulate_joints(cameras, xy, refine_iterations=0), start)
    np.testing.assert_array_equal(
        triangulate_joints(cameras, xy),
        refine_points(projections, uv, np.ones((13, 3)), start, 5))
