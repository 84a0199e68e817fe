"""
The one place that maps mocap skeletons to the 13 DHP19 joints and to the body landmarks.

A mapping gives, for every landmark, ``(joint_a, joint_b, f)``: the point ``a + f * (b - a)``
of the clip (``f = 0`` picks joint ``a``). Landmarks are the 13 DHP19 joints of
:data:`hybrid_pose_ros.skeleton.JOINT_NAMES` followed by :data:`EXTRA_LANDMARKS`, which the body
model uses (pelvis centre, base of neck, top of head, toe tips).

CMU ASF joints are bone END points (``rclavicle`` ends at the shoulder, ``rhumerus`` at the
elbow, ``rwrist`` at the hand, ``rhipjoint`` at the hip, ``rfemur`` at the knee, ``rtibia`` at
the ankle). Rigify BVH joints are bone origins (``upper_arm.R`` is the shoulder,
``forearm.R_end`` the wrist); its ``face`` bone starts at the base of the skull, so the head
centre is placed 0.6 neck-lengths above it.
"""
from hybrid_pose_ros.data.mocap import MotionClip
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np

EXTRA_LANDMARKS: tuple[str, ...] = ('pelvis', 'neck', 'head_top', 'toe_right', 'toe_left')
LANDMARK_NAMES: tuple[str, ...] = JOINT_NAMES + EXTRA_LANDMARKS
LANDMARK_INDEX: dict[str, int] = {n: i for i, n in enumerate(LANDMARK_NAMES)}

Spec = tuple[str, str, float]


def _at(name: str) -> Spec:
    return (name, name, 0.0)


CMU_ASF: dict[str, Spec] = {
    'head': ('upperneck', 'head', 0.5),
    'shoulder_right': _at('rclavicle'),
    'shoulder_left': _at('lclavicle'),
    'elbow_right': _at('rhumerus'),
    'elbow_left': _at('lhumerus'),
    'hip_right': _at('rhipjoint'),
    'hip_left': _at('lhipjoint'),
    'hand_right': _at('rwrist'),
    'hand_left': _at('lwrist'),
    'knee_right': _at('rfemur'),
    'knee_left': _at('lfemur'),
    'foot_right': _at('rtibia'),
    'foot_left': _at('ltibia'),
    'pelvis': _at('root'),
    'neck': _at('thorax'),
    'head_top': _at('head'),
    'toe_right': _at('rtoes'),
    'toe_left': _at('ltoes'),
}
"""CMU ASF/AMC bone names (bone end points) -> landmarks."""

RIGIFY_BVH: dict[str, Spec] = {
    'head': ('neck', 'face', 1.6),
    'shoulder_right': _at('upper_arm.R'),
    'shoulder_left': _at('upper_arm.L'),
    'elbow_right': _at('forearm.R'),
    'elbow_left': _at('forearm.L'),
    'hip_right': _at('thigh.R'),
    'hip_left': _at('thigh.L'),
    'hand_right': _at('forearm.R_end'),
    'hand_left': _at('forearm.L_end'),
    'knee_right': _at('shin.R'),
    'knee_left': _at('shin.L'),
    'foot_right': _at('foot.R'),
    'foot_left': _at('foot.L'),
    'pelvis': ('thigh.L', 'thigh.R', 0.5),
    'neck': _at('neck'),
    'head_top': ('neck', 'face', 2.2),
    'toe_right': _at('foot.R_end'),
    'toe_left': _at('foot.L_end'),
}
"""Rigify BVH joint names (joint origins, ``*_end`` for end sites) -> landmarks."""

MAPPINGS: dict[str, dict[str, Spec]] = {'cmu_asf': CMU_ASF, 'rigify_bvh': RIGIFY_BVH}


def _missing(mapping: dict[str, Spec], names: tuple[str, ...]) -> list[str]:
    needed = {n for spec in mapping.values() for n in spec[:2]}
    return sorted(needed - set(names))


def find_mapping(clip: MotionClip) -> dict[str, Spec]:
    """Return the mapping whose joints the clip has; raise ``KeyError`` listing what is missing."""
    report = []
    for key, mapping in MAPPINGS.items():
        missing = _missing(mapping, clip.joint_names)
        if not missing:
            return mapping
        report.append(f'{key}: missing {missing}')
    raise KeyError(f'clip {clip.name!r} matches no known skeleton ({"; ".join(report)}); '
                   f'clip joints: {list(clip.joint_names)}')


def landmarks(clip: MotionClip, mapping: dict[str, Spec] | None = None) -> np.ndarray:
    """Landmark positions [F, len(LANDMARK_NAMES), 3] in metres, in LANDMARK_NAMES order."""
    mapping = mapping if mapping is not None else find_mapping(clip)
    absent = [n for n in LANDMARK_NAMES if n not in mapping]
    if absent:
        raise KeyError(f'mapping lacks landmarks {absent}')
    missing = _missing(mapping, clip.joint_names)
    if missing:
        raise KeyError(f'clip {clip.name!r} lacks joints {missing}')
    out = np.empty((clip.num_frames, len(LANDMARK_NAMES), 3))
    for i, name in enumerate(LANDMARK_NAMES):
        a, b, f = mapping[name]
        pa = clip.joint(a)
        out[:, i] = pa + f * (clip.joint(b) - pa) if f else pa
    return out


def dhp19_joints(clip: MotionClip) -> np.ndarray:
    """Return the 13 DHP19 joints [F, 13, 3] in metres, in JOINT_NAMES order."""
    return landmarks(clip)[:, :len(JOINT_NAMES)]
