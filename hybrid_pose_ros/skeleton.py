"""The 13 DHP19 joints and the skeleton edges: the one place that defines their order."""

JOINT_NAMES: tuple[str, ...] = (
    'head',
    'shoulder_right',
    'shoulder_left',
    'elbow_right',
    'elbow_left',
    'hip_right',
    'hip_left',
    'hand_right',
    'hand_left',
    'knee_right',
    'knee_left',
    'foot_right',
    'foot_left',
)
"""Joint order of DHP19 and of every heatmap channel, PoseArray and checkpoint in this package."""

NUM_JOINTS: int = len(JOINT_NAMES)

JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}


def _edge(a: str, b: str) -> tuple[int, int]:
    return JOINT_INDEX[a], JOINT_INDEX[b]


SKELETON_EDGES: tuple[tuple[int, int], ...] = (
    _edge('head', 'shoulder_right'),
    _edge('head', 'shoulder_left'),
    _edge('elbow_right', 'shoulder_right'),
    _edge('elbow_left', 'shoulder_left'),
    _edge('elbow_right', 'hand_right'),
    _edge('elbow_left', 'hand_left'),
    _edge('hip_right', 'shoulder_right'),
    _edge('hip_left', 'shoulder_left'),
    _edge('hip_right', 'knee_right'),
    _edge('hip_left', 'knee_left'),
    _edge('foot_right', 'knee_right'),
    _edge('foot_left', 'knee_left'),
    _edge('shoulder_right', 'shoulder_left'),
    _edge('hip_right', 'hip_left'),
)
"""The 14 bones of the DHP19 skeleton (official code, ``utils_3d.py``), as joint index pairs."""
