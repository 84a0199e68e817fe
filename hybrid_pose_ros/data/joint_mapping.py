"""
The one place that maps mocap skeletons to the 13 DHP19 joints and to the body landmarks.

A mapping gives, for every landmark, ``(joint_a, joint_b, f)``: the point ``a + f * (b - a)``
of the clip (``f = 0`` picks joint ``a``). A joint may also be a tuple of names, meaning the
mean of those joints (the midpoint of the eyes, say). Landmarks are the 13 DHP19 joints of
:data:`hybrid_pose_ros.skeleton.JOINT_NAMES` followed by :data:`EXTRA_LANDMARKS`, which the body
model uses (pelvis centre, base of neck, top of head, toe tips).

CMU ASF joints are bone END points (``rclavicle`` ends at the shoulder, ``rhumerus`` at the
elbow, ``rwrist`` at the hand, ``rhipjoint`` at the hip, ``rfemur`` at the knee, ``rtibia`` at
the ankle). Rigify BVH joints are bone origins (``upper_arm.R`` is the shoulder,
``forearm.R_end`` the wrist); its ``face`` bone starts at the base of the skull, so the head
centre is placed 0.6 neck-lengths above it.

BVH files converted from CMU by cgspeed come with two sets of names: "Daz-friendly" (``hip``,
``rShldr``, ``rForeArm``, ``rHand``, ``rThigh``, ``rShin``, ``rFoot``; joint origins, no toe
joint, the foot's end site is the toe; the head joint starts at the base of the skull and its
children are the eyes) and MotionBuilder-friendly (``Hips``, ``RightArm``, ``RightForeArm``,
``RightHand``, ``RightUpLeg``, ``RightLeg``, ``RightFoot``, ``RightToeBase``). Raw ASF-to-BVH
conversions keep the CMU ASF bone names as joint origins (``rhumerus`` starts at the shoulder,
``rhand`` at the hand, ``rfoot`` at the ankle), unlike ASF/AMC where a bone names its end.
"""
from hybrid_pose_ros.data.mocap import MotionClip
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np

EXTRA_LANDMARKS: tuple[str, ...] = ('pelvis', 'neck', 'head_top', 'toe_right', 'toe_left')
LANDMARK_NAMES: tuple[str, ...] = JOINT_NAMES + EXTRA_LANDMARKS
LANDMARK_INDEX: dict[str, int] = {n: i for i, n in enumerate(LANDMARK_NAMES)}

Joint = str | tuple[str, ...]
Spec = tuple[Joint, Joint, float]


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

EYES = ('leftEye', 'rightEye')

DAZ_BVH: dict[str, Spec] = {
    'head': ('head', EYES, 0.8),
    'shoulder_right': _at('rShldr'),
    'shoulder_left': _at('lShldr'),
    'elbow_right': _at('rForeArm'),
    'elbow_left': _at('lForeArm'),
    'hip_right': _at('rThigh'),
    'hip_left': _at('lThigh'),
    'hand_right': _at('rHand'),
    'hand_left': _at('lHand'),
    'knee_right': _at('rShin'),
    'knee_left': _at('lShin'),
    'foot_right': _at('rFoot'),
    'foot_left': _at('lFoot'),
    'pelvis': ('rThigh', 'lThigh', 0.5),
    'neck': _at('neck'),
    'head_top': ('neck', EYES, 1.6),
    'toe_right': _at('rFoot_end'),
    'toe_left': _at('lFoot_end'),
}
"""cgspeed "Daz-friendly" BVH names (joint origins) -> landmarks."""

MOTIONBUILDER_BVH: dict[str, Spec] = {
    'head': ('Head', 'Head_end', 0.5),
    'shoulder_right': _at('RightArm'),
    'shoulder_left': _at('LeftArm'),
    'elbow_right': _at('RightForeArm'),
    'elbow_left': _at('LeftForeArm'),
    'hip_right': _at('RightUpLeg'),
    'hip_left': _at('LeftUpLeg'),
    'hand_right': _at('RightHand'),
    'hand_left': _at('LeftHand'),
    'knee_right': _at('RightLeg'),
    'knee_left': _at('LeftLeg'),
    'foot_right': _at('RightFoot'),
    'foot_left': _at('LeftFoot'),
    'pelvis': ('RightUpLeg', 'LeftUpLeg', 0.5),
    'neck': _at('Neck'),
    'head_top': _at('Head_end'),
    'toe_right': _at('RightToeBase'),
    'toe_left': _at('LeftToeBase'),
}
"""cgspeed MotionBuilder-friendly BVH names (joint origins) -> landmarks."""

CMU_ASF_BVH: dict[str, Spec] = {
    'head': ('head', 'head_end', 0.5),
    'shoulder_right': _at('rhumerus'),
    'shoulder_left': _at('lhumerus'),
    'elbow_right': _at('rradius'),
    'elbow_left': _at('lradius'),
    'hip_right': _at('rfemur'),
    'hip_left': _at('lfemur'),
    'hand_right': _at('rhand'),
    'hand_left': _at('lhand'),
    'knee_right': _at('rtibia'),
    'knee_left': _at('ltibia'),
    'foot_right': _at('rfoot'),
    'foot_left': _at('lfoot'),
    'pelvis': _at('hip'),
    'neck': _at('lowerneck'),
    'head_top': _at('head_end'),
    'toe_right': _at('rtoes_end'),
    'toe_left': _at('ltoes_end'),
}
"""Raw CMU ASF-to-BVH names (the ASF bone names as joint origins) -> landmarks, matching
:data:`CMU_ASF` point for point."""

MAPPINGS: dict[str, dict[str, Spec]] = {
    'cmu_asf': CMU_ASF, 'cmu_asf_bvh': CMU_ASF_BVH, 'daz_bvh': DAZ_BVH,
    'motionbuilder_bvh': MOTIONBUILDER_BVH, 'rigify_bvh': RIGIFY_BVH}


def _names(joint: Joint) -> tuple[str, ...]:
    return (joint,) if isinstance(joint, str) else tuple(joint)


def _missing(mapping: dict[str, Spec], names: tuple[str, ...]) -> list[str]:
    needed = {n for spec in mapping.values() for joint in spec[:2] for n in _names(joint)}
    return sorted(needed - set(names))


def _position(clip: MotionClip, joint: Joint) -> np.ndarray:
    """Positions [F, 3] of a joint, or the mean of a tuple of joints."""
    names = _names(joint)
    return np.mean([clip.joint(n) for n in names], axis=0) if len(names) > 1 \
        else clip.joint(names[0])


def find_mapping_name(clip: MotionClip) -> str:
    """Return the name of the mapping whose joints the clip has; ``KeyError`` if none fits."""
    report = []
    for key, mapping in MAPPINGS.items():
        missing = _missing(mapping, clip.joint_names)
        if not missing:
            return key
        report.append(f'{key}: missing {missing}')
    raise KeyError(f'clip {clip.name!r} matches no known skeleton ({"; ".join(report)}); '
                   f'clip joints: {list(clip.joint_names)}')


def find_mapping(clip: MotionClip) -> dict[str, Spec]:
    """Return the mapping whose joints the clip has; raise ``KeyError`` listing what is missing."""
    return MAPPINGS[find_mapping_name(clip)]


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
        pa = _position(clip, a)
        out[:, i] = pa + f * (_position(clip, b) - pa) if f else pa
    return out


def dhp19_joints(clip: MotionClip) -> np.ndarray:
    """Return the 13 DHP19 joints [F, 13, 3] in metres, in JOINT_NAMES order."""
    return landmarks(clip)[:, :len(JOINT_NAMES)]
