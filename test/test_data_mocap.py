"""Mocap readers and forward kinematics, joint mapping."""
import os

from hybrid_pose_ros.data.joint_mapping import dhp19_joints, find_mapping, landmarks
from hybrid_pose_ros.data.joint_mapping import LANDMARK_NAMES, MAPPINGS
from hybrid_pose_ros.data.mocap import MotionClip, read_asf_amc, read_bvh, read_motion, resample
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np
import pytest

SHARED = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'mocap')
CMU = os.path.join(SHARED, 'cmu_subject01_playground.asf')
RIGIFY = os.path.join(SHARED, 'inplace_motion_19joints.bvh')

UNIT = 0.45 / 0.0254  # one metre in ASF units with ``length 0.45``

ASF = f"""# tiny skeleton
:version 1.10
:name test
:units
  mass 1.0
  length 0.45
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 1 0 0
     length {UNIT}
     axis 0 0 90 XYZ
     dof rz
  end
  begin
     id 2
     name b
     direction 0 0 1
     length {UNIT}
     axis 0 0 90 XYZ
     dof rx
  end
:hierarchy
  begin
    root a
    a b
  end
"""

AMC = f""":FULLY-SPECIFIED
:DEGREES
1
root 0 0 0 0 0 0
a 0
b 0
2
root {2 * UNIT} 0 0 0 0 0
a 90
b 0
3
root 0 0 0 0 0 0
a 0
b 90
"""

BVH = """HIERARCHY
ROOT hip
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT arm
  {
    OFFSET 0 1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 0 0 90 0 0 0 90 0
0 0 0 90 90 0 0 0 0
"""


def test_asf_amc_forward_kinematics(tmp_path):
    (tmp_path / 'm.asf').write_text(ASF)
    (tmp_path / 'm.amc').write_text(AMC)
    clip = read_asf_amc(str(tmp_path / 'm.asf'), str(tmp_path / 'm.amc'), fps=120)
    assert clip.joint_names == ('root', 'a', 'b')
    assert clip.fps == 120 and clip.num_frames == 3
    # Y-up file -> Z-up world: (x, y, z) -> (x, -z, y)
    np.testing.assert_allclose(clip.joint('a'), [[1, 0, 0], [2, 0, 1], [1, 0, 0]], atol=1e-9)
    # frame 3: dof rx in the bone frame C = Rz(90) is a rotation about world y
    np.testing.assert_allclose(clip.joint('b'), [[1, -1, 0], [2, -1, 1], [2, 0, 0]], atol=1e-9)


def test_read_motion_by_extension(tmp_path):
    (tmp_path / 'm.asf').write_text(ASF)
    (tmp_path / 'm.amc').write_text(AMC)
    assert read_motion(str(tmp_path / 'm.amc')).num_frames == 3
    with pytest.raises(ValueError):
        read_motion(str(tmp_path / 'm.txt'))


def test_bvh_forward_kinematics(tmp_path):
    (tmp_path / 'm.bvh').write_text(BVH)
    clip = read_bvh(str(tmp_path / 'm.bvh'))
    assert clip.joint_names == ('hip', 'arm', 'arm_end')
    assert clip.fps == pytest.approx(25.0)
    # frame 1: root at x=1 turned 90 deg about Z: the arm offset (0,1,0) -> (-1,0,0)
    np.testing.assert_allclose(clip.joint('arm')[0], [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(clip.joint('arm_end')[0], [0, -1, 0], atol=1e-9)
    # frame 2: root R = Rz(90) @ Rx(90) (channel order): arm (0,1,0) -> (0,0,1) -> Z-up (0,-1,0)
    np.testing.assert_allclose(clip.joint('arm')[1], [0, -1, 0], atol=1e-9)


def test_resample_interpolates_linearly():
    pos = np.zeros((3, 1, 3))
    pos[:, 0, 0] = [0.0, 1.0, 3.0]
    clip = MotionClip('c', 10.0, ('j',), pos)
    out = resample(clip, np.array([0.0, 0.05, 0.15, 1.0]))
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.5, 2.0, 3.0])


def test_mappings_cover_every_landmark():
    for mapping in MAPPINGS.values():
        assert set(mapping) == set(LANDMARK_NAMES)
    assert LANDMARK_NAMES[:len(JOINT_NAMES)] == JOINT_NAMES


def test_unknown_skeleton_lists_missing_names():
    clip = MotionClip('odd', 30.0, ('hips', 'knee'), np.zeros((1, 2, 3)))
    with pytest.raises(KeyError, match='rclavicle'):
        find_mapping(clip)


@pytest.mark.skipif(not os.path.exists(CMU), reason='shared mocap data not present')
def test_cmu_subject_proportions():
    clip = read_motion(CMU)
    assert clip.num_frames == 2751 and clip.fps == 120
    femur = np.linalg.norm(clip.joint('lfemur') - clip.joint('lhipjoint'), axis=1)
    np.testing.assert_allclose(femur, 0.404, atol=0.005)
    toes = np.minimum(clip.joint('ltoes')[:, 2], clip.joint('rtoes')[:, 2])
    assert abs(np.median(toes)) < 0.08
    height = clip.joint('head')[:, 2] - toes
    assert 1.5 < np.median(height) < 1.65
    joints = dhp19_joints(clip)
    assert joints.shape == (2751, 13, 3)
    head, foot = joints[:, 0], joints[:, 11]
    assert np.all(head[:, 2] > foot[:, 2] + 1.0)


@pytest.mark.skipif(not os.path.exists(RIGIFY), reason='shared mocap data not present')
def test_rigify_bvh_proportions():
    clip = read_motion(RIGIFY)
    assert clip.num_frames == 3089
    assert clip.fps == pytest.approx(24.0, rel=1e-3)
    lm = landmarks(clip)
    idx = {n: i for i, n in enumerate(LANDMARK_NAMES)}
    thigh = np.linalg.norm(lm[:, idx['knee_left']] - lm[:, idx['hip_left']], axis=1)
    np.testing.assert_allclose(thigh, 0.33, atol=0.01)
    height = lm[:, idx['head_top'], 2] - lm[:, idx['toe_left'], 2]
    assert 1.4 < np.median(height) < 1.8
    # the subject's left is on its left: (right - left) x up points forward, i.e. the
    # left shoulder lies on the +x side of a subject facing -y after the Y-up -> Z-up turn
    right = lm[0, idx['shoulder_right']] - lm[0, idx['shoulder_left']]
    assert right[0] < 0
