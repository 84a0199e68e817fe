"""Users' own motion capture: mapping files, units and up-axis checks, unknown skeletons."""
import os
import textwrap

from hybrid_pose_ros.data import user_mapping
from hybrid_pose_ros.data.generate import body_height, user_landmarks
from hybrid_pose_ros.data.joint_mapping import LANDMARK_INDEX
from hybrid_pose_ros.data.user_mapping import asf_for, load_user_mapping, MocapInputError
from hybrid_pose_ros.data.user_mapping import UserMapping
from hybrid_pose_ros.tools.generate_data import main
import numpy as np
import pytest

LIBRARY = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'mocap',
                       'library')

# (name, parent, offset in cm) of a MotionBuilder-named skeleton, Y up, facing +Z, 1.78 m tall
SKELETON = [
    ('Hips', None, (0, 95, 0)),
    ('RightUpLeg', 'Hips', (-10, 0, 0)), ('RightLeg', 'RightUpLeg', (0, -43, 0)),
    ('RightFoot', 'RightLeg', (0, -44, 0)), ('RightToeBase', 'RightFoot', (0, -6, 14)),
    ('LeftUpLeg', 'Hips', (10, 0, 0)), ('LeftLeg', 'LeftUpLeg', (0, -43, 0)),
    ('LeftFoot', 'LeftLeg', (0, -44, 0)), ('LeftToeBase', 'LeftFoot', (0, -6, 14)),
    ('Spine', 'Hips', (0, 10, 0)), ('Neck', 'Spine', (0, 45, 0)), ('Head', 'Neck', (0, 10, 0)),
    ('RightShoulder', 'Spine', (-3, 42, 0)), ('RightArm', 'RightShoulder', (-15, 0, 0)),
    ('RightForeArm', 'RightArm', (-28, 0, 0)), ('RightHand', 'RightForeArm', (-25, 0, 0)),
    ('LeftShoulder', 'Spine', (3, 42, 0)), ('LeftArm', 'LeftShoulder', (15, 0, 0)),
    ('LeftForeArm', 'LeftArm', (28, 0, 0)), ('LeftHand', 'LeftForeArm', (25, 0, 0)),
]
ENDS = {'Head': (0, 20, 0), 'RightToeBase': (0, 0, 4), 'LeftToeBase': (0, 0, 4),
        'RightHand': (-8, 0, 0), 'LeftHand': (8, 0, 0)}
BIPED = {'Hips': 'Bip01_Pelvis', 'Spine': 'Bip01_Spine', 'Neck': 'Bip01_Neck',
         'Head': 'Bip01_Head'}
for _side, _s in (('Right', 'R'), ('Left', 'L')):
    BIPED.update({f'{_side}UpLeg': f'Bip01_{_s}_Thigh', f'{_side}Leg': f'Bip01_{_s}_Calf',
                  f'{_side}Foot': f'Bip01_{_s}_Foot', f'{_side}ToeBase': f'Bip01_{_s}_Toe0',
                  f'{_side}Shoulder': f'Bip01_{_s}_Clavicle',
                  f'{_side}Arm': f'Bip01_{_s}_UpperArm',
                  f'{_side}ForeArm': f'Bip01_{_s}_Forearm', f'{_side}Hand': f'Bip01_{_s}_Hand'})
"""A 3ds Max Biped naming of the same skeleton, which no built-in mapping knows."""


def write_bvh(path, frames, rename=None, z_up=False, frame_time=0.1):
    """
    Write the test skeleton with ``frames``: (root position cm, {joint: rotation}) per frame.

    Rotations are (Z, X, Y) degrees in the Y-up file. ``z_up`` writes the same motion turned
    so Z is up: (x, y, z) -> (x, -z, y) and R -> M R M^T, i.e. channels Y X Z with (-z, x, y).
    """
    rename = rename or {}

    def turn(v):
        return (v[0], -v[2], v[1]) if z_up else tuple(v)
    rot_channels = 'Yrotation Xrotation Zrotation' if z_up else 'Zrotation Xrotation Yrotation'
    order = []

    def block(name, parent_depth):
        pad = '  ' * (parent_depth + 1)
        offset = {n: o for n, _, o in SKELETON}[name]
        kind = 'ROOT' if parent_depth < 0 else 'JOINT'
        chans = f'6 Xposition Yposition Zposition {rot_channels}' if parent_depth < 0 \
            else f'3 {rot_channels}'
        order.append(name)
        lines = [f'{pad}{kind} {rename.get(name, name)}', f'{pad}{{',
                 f'{pad}  OFFSET {" ".join(map(str, turn(offset)))}', f'{pad}  CHANNELS {chans}']
        for child in [n for n, p, _ in SKELETON if p == name]:
            lines += block(child, parent_depth + 1)
        if name in ENDS:
            lines += [f'{pad}  End Site', f'{pad}  {{',
                      f'{pad}    OFFSET {" ".join(map(str, turn(ENDS[name])))}', f'{pad}  }}']
        return lines + [f'{pad}}}']

    hierarchy = block('Hips', -1)
    rows = []
    for root, rotations in frames:
        values = list(turn(root))
        for name in order:
            z, x, y = rotations.get(name, (0.0, 0.0, 0.0))
            values += [-z, x, y] if z_up else [z, x, y]
        rows.append(' '.join(f'{v:.6f}' for v in values))
    text = '\n'.join(['HIERARCHY'] + hierarchy + ['MOTION', f'Frames: {len(frames)}',
                                                  f'Frame Time: {frame_time}'] + rows)
    with open(path, 'w') as f:
        f.write(text + '\n')
    return str(path)


def write_yaml(tmp_path, text, name='mapping.yaml'):
    """Write a mapping file and return its path."""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def standing(frames, step_cm=0.0):
    """``frames`` of the skeleton standing, the root moving ``step_cm`` along x per frame."""
    return [((k * step_cm, 95.0, 0.0), {}) for k in range(frames)]


def landmark(clip, name):
    """Positions [F, 3] of one landmark of a landmark clip."""
    return clip.positions[:, LANDMARK_INDEX[name]]


def test_motionbuilder_bvh_in_centimetres(tmp_path):
    turned = ((100, 95, 50), {'Hips': (0, 0, 90)})                # 90 deg about Y
    path = write_bvh(tmp_path / 'mb.bvh', [((0, 95, 0), {}), turned])
    clip = user_landmarks(path, load_user_mapping(write_yaml(tmp_path, 'units: cm\n')))
    assert clip.fps == pytest.approx(10.0) and clip.num_frames == 2
    # frame 0, world = (x, -z, y) / 100 of the summed offsets: RightArm (-18, 147, 0)
    expected = {'shoulder_right': (-0.18, 0, 1.47), 'elbow_right': (-0.46, 0, 1.47),
                'hand_left': (0.71, 0, 1.47), 'hip_right': (-0.10, 0, 0.95),
                'knee_left': (0.10, 0, 0.52), 'foot_right': (-0.10, 0, 0.08),
                'toe_right': (-0.10, -0.14, 0.02), 'pelvis': (0, 0, 0.95),
                'neck': (0, 0, 1.50), 'head': (0, 0, 1.70), 'head_top': (0, 0, 1.80)}
    for name, position in expected.items():
        np.testing.assert_allclose(landmark(clip, name)[0], position, atol=1e-9, err_msg=name)
    # frame 1: root at (100, 95, 50) turned 90 deg about Y: (x, y, z) -> (z, y, -x)
    # RightArm: (-18, 52, 0) -> (0, 52, 18) + root = (100, 147, 68) -> (1.00, -0.68, 1.47)
    np.testing.assert_allclose(landmark(clip, 'shoulder_right')[1], (1.0, -0.68, 1.47), atol=1e-9)
    # RightToeBase: (-10, -93, 14) -> (14, -93, 10) + root = (114, 2, 60)
    np.testing.assert_allclose(landmark(clip, 'toe_right')[1], (1.14, -0.60, 0.02), atol=1e-9)
    np.testing.assert_allclose(landmark(clip, 'head')[1], (1.0, -0.5, 1.70), atol=1e-9)
    assert body_height(clip.positions) == pytest.approx(1.78)


def test_centimetres_without_units_are_refused(tmp_path):
    path = write_bvh(tmp_path / 'mb.bvh', standing(3))
    with pytest.raises(MocapInputError) as error:
        user_landmarks(path)
    message = str(error.value)
    assert path in message and '178 m tall' in message
    assert f'a scale of {1.75 / 178:.4g}' in message       # 0.009831 makes it 1.75 m
    assert 'centimetres: set units: cm' in message and '\n' not in message


def test_unknown_skeleton_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    path = write_bvh(tmp_path / 'biped.bvh', standing(3), rename=BIPED)
    out = tmp_path / 'out'
    assert main([path, '--out', str(out), '--quiet']) == 2
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err.count('\n') == 1
    assert 'unknown skeleton' in captured.err and '--mapping FILE' in captured.err
    assert 'Bip01_R_UpperArm' in captured.err                 # the clip's joints
    assert 'the closest, ' in captured.err and 'lacks ' in captured.err
    assert not out.exists()
    bad = write_yaml(tmp_path, 'units: furlong\n')
    assert main([path, '--out', str(out), '--mapping', bad]) == 2
    assert 'units' in capsys.readouterr().err and not out.exists()


BIPED_MAPPING = """units: cm
landmarks:
  head: [Bip01_Head, Bip01_Head_end, 0.5]
  head_top: [Bip01_Neck, Bip01_Head, 3.0]          # extrapolated: 150 + 3 * 10 cm
  neck: [[Bip01_R_UpperArm, Bip01_L_UpperArm], Bip01_Neck, 0.5]
  pelvis: [[Bip01_R_Thigh, Bip01_L_Thigh], Bip01_Pelvis, 0]
"""
for _side, _s in (('right', 'R'), ('left', 'L')):
    BIPED_MAPPING += f"""  shoulder_{_side}: Bip01_{_s}_UpperArm
  elbow_{_side}: Bip01_{_s}_Forearm
  hand_{_side}: Bip01_{_s}_Hand
  hip_{_side}: Bip01_{_s}_Thigh
  knee_{_side}: Bip01_{_s}_Calf
  foot_{_side}: Bip01_{_s}_Foot
  toe_{_side}: [Bip01_{_s}_Toe0, Bip01_{_s}_Toe0_end, 1.0]
"""


def test_mapping_file_with_a_mean_and_an_extrapolation(tmp_path):
    path = write_bvh(tmp_path / 'biped.bvh', standing(3), rename=BIPED)
    clip = user_landmarks(path, load_user_mapping(write_yaml(tmp_path, BIPED_MAPPING)))
    # the mean of the upper arms (+-18, 147, 0) is (0, 147, 0); halfway to the neck (0, 150, 0)
    np.testing.assert_allclose(landmark(clip, 'neck')[0], (0, 0, 1.485), atol=1e-9)
    np.testing.assert_allclose(landmark(clip, 'head_top')[0], (0, 0, 1.80), atol=1e-9)
    np.testing.assert_allclose(landmark(clip, 'pelvis')[0], (0, 0, 0.95), atol=1e-9)
    np.testing.assert_allclose(landmark(clip, 'toe_left')[0], (0.10, -0.18, 0.02), atol=1e-9)
    np.testing.assert_allclose(landmark(clip, 'hand_right')[0], (-0.71, 0, 1.47), atol=1e-9)


def test_landmarks_left_out_come_from_the_built_in_mapping(tmp_path):
    path = write_bvh(tmp_path / 'mb.bvh', standing(3))
    mapping = load_user_mapping(write_yaml(
        tmp_path, 'units: cm\nlandmarks:\n  head_top: [Neck, Head, 2.5]\n'))
    clip = user_landmarks(path, mapping)
    np.testing.assert_allclose(landmark(clip, 'head_top')[0], (0, 0, 1.75), atol=1e-9)
    np.testing.assert_allclose(landmark(clip, 'shoulder_right')[0], (-0.18, 0, 1.47), atol=1e-9)
    biped = write_bvh(tmp_path / 'biped.bvh', standing(3), rename=BIPED)
    partial = load_user_mapping(write_yaml(
        tmp_path, 'landmarks:\n  head_top: [Bip01_Neck, Bip01_Head, 2.5]\n', 'b.yaml'))
    with pytest.raises(MocapInputError, match=r'unknown skeleton.*; head, .* are left out: '
                                              r'map them under landmarks: in .*b\.yaml'):
        user_landmarks(biped, partial)
    wrong = load_user_mapping(write_yaml(tmp_path, 'landmarks:\n  neck: Bip01_Neck\n', 'w.yaml'))
    with pytest.raises(MocapInputError, match=r'w\.yaml: landmarks name joints that .* lacks: '
                                              'Bip01_Neck'):
        user_landmarks(path, wrong)


@pytest.mark.parametrize('text, fps, first, count', [
    ('', 10.0, 0, 10),
    ('fps: 20\n', 20.0, 0, 10),
    ('skip_frames: 2\n', 10.0, 2, 8),
    ('time_range: [0.3, 0.65]\n', 10.0, 3, 4),
    ('fps: 20\ntime_range: [0.2, 0.36]\n', 20.0, 4, 4),
    ('fps: 20\nskip_frames: 5\ntime_range: [0.2, 0.36]\n', 20.0, 5, 3),
])
def test_frames_kept_and_frame_rate(tmp_path, text, fps, first, count):
    path = write_bvh(tmp_path / 'mb.bvh', standing(10, step_cm=1.0))
    clip = user_landmarks(path, load_user_mapping(write_yaml(tmp_path, 'units: cm\n' + text)))
    assert clip.fps == fps and clip.num_frames == count
    np.testing.assert_allclose(landmark(clip, 'pelvis')[:, 0], (first + np.arange(count)) / 100)


def test_no_frames_left_is_refused(tmp_path):
    path = write_bvh(tmp_path / 'mb.bvh', standing(10))
    mapping = load_user_mapping(write_yaml(tmp_path, 'units: cm\nskip_frames: 9\n'))
    with pytest.raises(MocapInputError, match='1 of its 10 frames .* are kept with skip_frames 9'):
        user_landmarks(path, mapping)


@pytest.mark.parametrize('text, named', [
    ('unit: cm\n', "unknown key 'unit'"),
    ('units: furlong\n', 'units'),
    ('units: -1\n', 'units'),
    ('up_axis: x\n', 'up_axis'),
    ('fps: 0\n', 'fps'),
    ('fps: fast\n', 'fps'),
    ('skip_frames: -1\n', 'skip_frames'),
    ('skip_frames: 1.5\n', 'skip_frames'),
    ('time_range: [2, 1]\n', 'time_range'),
    ('time_range: 3\n', 'time_range'),
    ('remove_root_drift: maybe\n', 'remove_root_drift'),
    ('landmarks: [Head]\n', 'landmarks'),
    ('landmarks:\n  nose: Head\n', "unknown landmark 'nose'"),
    ('landmarks:\n  head: [Head, Neck]\n', 'landmarks: head'),
    ('landmarks:\n  head: [Head, Neck, half]\n', 'landmarks: head'),
    ('landmarks:\n  head: [[], Neck, 0.5]\n', 'landmarks: head'),
    ('- units\n', 'expected keys'),
    ('units: [cm\n', 'not valid YAML'),
])
def test_invalid_keys_are_refused_by_name(tmp_path, text, named):
    path = write_yaml(tmp_path, text)
    with pytest.raises(MocapInputError) as error:
        load_user_mapping(path)
    assert path in str(error.value) and named in str(error.value)


def test_an_empty_mapping_file_means_the_defaults(tmp_path):
    mapping = load_user_mapping(write_yaml(tmp_path, ''))
    assert mapping == UserMapping(path=mapping.path)


def test_z_up_file_gives_the_same_world_positions(tmp_path):
    frames = [((3.0 * k, 95.0, 2.0 * k),
               {'Hips': (4.0 * k, 3.0 * k, 10.0 * k), 'RightArm': (-5.0 * k, 20.0, 2.0 * k),
                'LeftLeg': (0.0, -8.0 * k, 3.0)}) for k in range(6)]
    y_up = write_bvh(tmp_path / 'y.bvh', frames)
    z_up = write_bvh(tmp_path / 'z.bvh', frames, z_up=True)
    a = user_landmarks(y_up, load_user_mapping(write_yaml(tmp_path, 'units: cm\n', 'y.yaml')))
    z_mapping = load_user_mapping(write_yaml(tmp_path, 'units: cm\nup_axis: z\n', 'z.yaml'))
    b = user_landmarks(z_up, z_mapping)
    np.testing.assert_allclose(b.positions, a.positions, atol=1e-9)
    assert np.ptp(a.positions[:, :, 2]) > 1.0                 # the test motion is upright
    with pytest.raises(MocapInputError, match='not upright with up_axis y.*set up_axis: z'):
        user_landmarks(z_up, load_user_mapping(write_yaml(tmp_path, 'units: cm\n', 'y.yaml')))


def test_remove_root_drift_keeps_a_walker_in_place(tmp_path):
    path = write_bvh(tmp_path / 'walk.bvh', standing(100, step_cm=3.0))
    kept = user_landmarks(path, load_user_mapping(write_yaml(tmp_path, 'units: cm\n')))
    assert np.ptp(landmark(kept, 'pelvis')[:, 0]) == pytest.approx(2.97)
    mapping = load_user_mapping(write_yaml(tmp_path, 'units: cm\nremove_root_drift: true\n'))
    still = user_landmarks(path, mapping)
    assert np.ptp(landmark(still, 'pelvis')[:, 0]) < 1.3


def test_asf_of_an_amc(tmp_path):
    for name in ('01.asf', '01_02.amc', 'HDM_bd.asf', 'HDM_bd_kick_001_120.amc', 'walk.amc'):
        (tmp_path / name).write_text('')
    assert asf_for(str(tmp_path / '01_02.amc')) == str(tmp_path / '01.asf')
    assert asf_for(str(tmp_path / 'HDM_bd_kick_001_120.amc')) == str(tmp_path / 'HDM_bd.asf')
    with pytest.raises(MocapInputError, match='which ASF skeleton'):
        asf_for(str(tmp_path / 'walk.amc'))
    os.remove(tmp_path / '01.asf')
    assert asf_for(str(tmp_path / 'walk.amc')) == str(tmp_path / 'HDM_bd.asf')


CMU_ASF_BVH = os.path.join(LIBRARY, 'cmu_daz_przestr', '16_01.bvh')


@pytest.mark.skipif(not os.path.exists(CMU_ASF_BVH), reason='shared mocap library not present')
def test_raw_cmu_asf_bvh_reads_with_cmu_asf_units(tmp_path):
    with pytest.raises(MocapInputError, match='set units: cmu_asf'):
        user_landmarks(CMU_ASF_BVH)
    mapping = load_user_mapping(write_yaml(tmp_path, 'units: cmu_asf\nfps: 120\n'))
    clip = user_landmarks(CMU_ASF_BVH, mapping)
    assert clip.fps == 120.0
    assert 1.2 <= body_height(clip.positions) <= 2.2


def test_the_documented_example_is_a_valid_mapping_file(tmp_path):
    example = user_mapping.__doc__.split('::\n\n')[1].split('\n\n')[0]
    mapping = load_user_mapping(write_yaml(tmp_path, textwrap.dedent(example)))
    assert len(mapping.landmarks) == len(LANDMARK_INDEX) and mapping.units == 0.01
    assert mapping.landmarks['pelvis'] == (('R_Hip', 'L_Hip'), 'Pelvis', 0.0)
