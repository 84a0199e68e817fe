"""Body rendering and end-to-end generation of a tiny synthetic DHP19 dataset."""
import os

from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.body import BODY
from hybrid_pose_ros.data.cameras import dhp19_rig
from hybrid_pose_ros.data.generate import generate_dataset, GenerateConfig, place_in_scene
from hybrid_pose_ros.data.joint_mapping import LANDMARK_INDEX, LANDMARK_NAMES, landmarks
from hybrid_pose_ros.data.joint_mapping import RIGIFY_BVH
from hybrid_pose_ros.data.mocap import read_bvh
from hybrid_pose_ros.data.render import Renderer
import numpy as np
import pytest

# (name, parent, offset) of a Rigify-named skeleton, Y-up metres, facing +Z
_RIG = [
    ('pelvis', None, (0.0, 0.95, 0.0)), ('spine', 'pelvis', (0.0, 0.0, 0.0)),
    ('spine.001', 'spine', (0.0, 0.23, 0.0)), ('neck', 'spine.001', (0.0, 0.23, 0.0)),
    ('face', 'neck', (0.0, 0.18, 0.0)),
    ('shoulder.L', 'spine.001', (0.0, 0.23, 0.0)), ('upper_arm.L', 'shoulder.L', (0.16, 0, 0)),
    ('forearm.L', 'upper_arm.L', (0.0, -0.27, 0.0)),
    ('shoulder.R', 'spine.001', (0.0, 0.23, 0.0)), ('upper_arm.R', 'shoulder.R', (-0.16, 0, 0)),
    ('forearm.R', 'upper_arm.R', (0.0, -0.27, 0.0)),
    ('thigh.L', 'pelvis', (0.1, 0.0, 0.0)), ('shin.L', 'thigh.L', (0.0, -0.42, 0.0)),
    ('foot.L', 'shin.L', (0.0, -0.42, 0.0)),
    ('thigh.R', 'pelvis', (-0.1, 0.0, 0.0)), ('shin.R', 'thigh.R', (0.0, -0.42, 0.0)),
    ('foot.R', 'shin.R', (0.0, -0.42, 0.0)),
]
_ENDS = {'face': (0, 0, 0.03), 'forearm.L': (0, -0.24, 0), 'forearm.R': (0, -0.24, 0),
         'foot.L': (0, -0.06, 0.15), 'foot.R': (0, -0.06, 0.15)}


def _write_rigify_bvh(path, frames=13, fps=24.0):
    """Write a walking-in-place Rigify BVH: the forearms swing, the root sways in x."""
    def block(name, depth):
        pad = '  ' * depth
        offset = {n: o for n, _, o in _RIG}[name]
        head = 'ROOT' if depth == 0 else 'JOINT'
        chans = ('6 Xposition Yposition Zposition Zrotation Xrotation Yrotation' if depth == 0
                 else '3 Zrotation Xrotation Yrotation')
        lines = [f'{pad}{head} {name}', f'{pad}{{', f'{pad}  OFFSET {" ".join(map(str, offset))}',
                 f'{pad}  CHANNELS {chans}']
        for child in [n for n, p, _ in _RIG if p == name]:
            lines += block(child, depth + 1)
        if name in _ENDS:
            lines += [f'{pad}  End Site', f'{pad}  {{',
                      f'{pad}    OFFSET {" ".join(map(str, _ENDS[name]))}', f'{pad}  }}']
        return lines + [f'{pad}}}']

    names = [n for n, _, _ in _RIG]
    rows = []
    for f in range(frames):
        values = [0.05 * np.sin(f / 3.0), 0.95, 0.0, 0.0, 0.0, 0.0]
        for n in names[1:]:
            swing = 40.0 * np.sin(f / 2.0) if n.startswith('forearm') else 0.0
            values += [0.0, swing, 0.0]
        rows.append(' '.join(f'{v:.5f}' for v in values))
    text = '\n'.join(['HIERARCHY'] + block('pelvis', 0)
                     + ['MOTION', f'Frames: {frames}', f'Frame Time: {1.0 / fps:.6f}'] + rows)
    with open(path, 'w') as fh:
        fh.write(text + '\n')


def _standing_landmarks(tmp_path):
    path = str(tmp_path / 'walk.bvh')
    _write_rigify_bvh(path)
    return place_in_scene(landmarks(read_bvh(path), RIGIFY_BVH))


def test_scene_placement(tmp_path):
    lm = _standing_landmarks(tmp_path)
    assert lm.shape[1] == len(LANDMARK_NAMES)
    lowest = lm[:, [LANDMARK_INDEX['toe_left'], LANDMARK_INDEX['foot_left']], 2].min()
    assert 0.0 < lowest < 0.1
    right = lm[0, LANDMARK_INDEX['shoulder_right']] - lm[0, LANDMARK_INDEX['shoulder_left']]
    forward = np.cross([0, 0, 1.0], right)
    np.testing.assert_allclose(forward / np.linalg.norm(forward), [0, -1, 0], atol=1e-6)


def test_projected_joints_fall_on_the_body(tmp_path):
    lm = _standing_landmarks(tmp_path)[0]
    rig = dhp19_rig()
    for cam in (3, 2, 1, 0):
        renderer = Renderer(rig[cam], supersample=2)
        image = renderer.render(lm)
        assert image.shape == (260, 346) and image.dtype == np.float32
        assert 0.0 < image.min() and image.max() <= 1.5
        changed = np.abs(image - renderer.background) > 1e-4
        assert 1500 < changed.sum() < 15000
        for name in ('hip_right', 'hip_left', 'knee_left', 'shoulder_right', 'head', 'pelvis'):
            uv, _ = rig[cam].project(lm[LANDMARK_INDEX[name]])
            assert changed[int(uv[1]), int(uv[0])], (cam, name)
        assert not changed[5, 5] and not changed[250, 340]
    assert len(BODY) >= 15


def test_edges_are_anti_aliased(tmp_path):
    lm = _standing_landmarks(tmp_path)[0]
    renderer = Renderer(dhp19_rig()[3], supersample=3)
    a = renderer.render(lm)
    shifted = lm + np.array([0.003, 0.0, 0.0])          # ~0.25 px
    b = renderer.render(shifted)
    diff = np.abs(a - b)
    body = np.abs(a - renderer.background) > 1e-4
    assert 0 < (diff > 1e-4).sum() <= (body | (np.abs(b - renderer.background) > 1e-4)).sum()
    # a quarter-pixel move changes no pixel by more than a fraction of the edge contrast
    assert diff.max() < 0.5 * np.ptp(a[body])


def test_generate_tiny_dataset_and_resume(tmp_path):
    path = str(tmp_path / 'walk.bvh')
    _write_rigify_bvh(path, frames=13)
    out = str(tmp_path / 'out')
    cfg = GenerateConfig(render_hz=200.0, supersample=1, cameras=(3,), test_fraction=0.25)
    plan = generate_dataset([path], out, cfg, progress=False)
    assert [r.name for r in plan] == ['S1_session1_mov1', 'S13_session1_mov1']
    assert plan[0].end_s == plan[1].start_s == pytest.approx(0.375, abs=1e-4)
    for rec in plan:
        ev = dhp19.read_events(dhp19.events_path(out, rec.name), 3)
        assert len(ev) > 100 and np.all(np.diff(ev['t']) >= 0)
        poses, times = dhp19.read_labels(dhp19.labels_path(out, rec.name))
        assert poses.shape[1:] == (3, 13) and times[0] == 10_000
        assert len(times) == int((rec.end_s - rec.start_s) * 100)
        uv = dhp19.project_to_crop(dhp19.load_projection_matrix(out, 3), poses)
        assert np.isfinite(uv).all()
        near = np.abs(ev['x'][:, None] - (uv[-1, :, 0] + 34)) < 6
        near &= np.abs(ev['y'][:, None] - (uv[-1, :, 1] + 2)) < 6
        assert near.any(axis=0).sum() >= 4          # events around the moving hands
    assert sorted(f for f in os.listdir(out) if f.endswith('.npy')) == [
        'P1.npy', 'P2.npy', 'P3.npy', 'P4.npy', 'camera_positions.npy']
    stamp = os.path.getmtime(dhp19.events_path(out, 'S1_session1_mov1'))
    generate_dataset([path], out, cfg, progress=False)
    assert os.path.getmtime(dhp19.events_path(out, 'S1_session1_mov1')) == stamp
    assert not [f for f in os.listdir(out) if 'tmp' in f or 'done' in f]


def test_segmented_generation_is_the_same_with_one_or_two_workers(tmp_path):
    path = str(tmp_path / 'walk.bvh')
    _write_rigify_bvh(path, frames=13)
    results = []
    for workers in (1, 2):
        out = str(tmp_path / f'out{workers}')
        cfg = GenerateConfig(render_hz=200.0, supersample=1, cameras=(3,), test_fraction=0.0,
                             segment_seconds=0.15, warmup_seconds=0.02, workers=workers)
        (rec,) = generate_dataset([path], out, cfg, progress=False)
        results.append(dhp19.read_events(dhp19.events_path(out, rec.name), 3))
    one, two = results
    np.testing.assert_array_equal(one, two)
    assert np.all(np.diff(one['t']) >= 0) and len(one) > 100
    # every segment contributes events: no hole at the boundaries at 150 and 300 ms
    for boundary in (150_000, 300_000):
        assert np.count_nonzero(np.abs(one['t'] - boundary) < 20_000) > 10
