"""
Motion-capture readers (Acclaim ASF/AMC and BVH) with forward kinematics.

Both readers return a :class:`MotionClip`: world positions in metres of every joint for every
frame, in a right-handed Z-up world (the files are Y-up and are turned by +90 degrees about X:
``(x, y, z)_file -> (x, -z, y)_world``).

ASF/AMC (CMU conventions): a bone's position is the position of its END point (its start is
the end of its parent); the root is named ``root``. ``:units length L`` means a file unit is
``1 / L`` inch, so metres = value / L * 0.0254 (CMU: L = 0.45). Angles are degrees unless
``:angle rad``. A bone's local frame is ``C = axis rotation``; the AMC dof rotation ``M`` (in
the dof order, first dof applied first) acts as ``parent @ C @ M @ C^-1``.

BVH: a joint's position is its origin; each ``End Site`` becomes a joint ``<parent>_end``.
Rotation channels compose in the listed order (``R = R_c1 @ R_c2 @ R_c3``); position channels
replace the joint's OFFSET (the convention of files that key every joint's translation).
"""
from dataclasses import dataclass
import math
import os

import numpy as np

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking a Y-up file frame to the Z-up world frame."""

INCH = 0.0254


@dataclass(frozen=True)
class MotionClip:
    """A motion: ``positions[f, j]`` is joint ``joint_names[j]`` at time ``f / fps``, metres."""

    name: str
    fps: float
    joint_names: tuple[str, ...]
    positions: np.ndarray

    @property
    def num_frames(self) -> int:
        """Return the number of frames."""
        return int(self.positions.shape[0])

    @property
    def duration_s(self) -> float:
        """Return the time of the last frame in seconds (the first frame is at 0)."""
        return (self.num_frames - 1) / self.fps

    def joint(self, name: str) -> np.ndarray:
        """Positions [F, 3] of one joint."""
        try:
            return self.positions[:, self.joint_names.index(name)]
        except ValueError:
            raise KeyError(f'joint {name!r} not in clip {self.name!r}') from None


def _axis_rotation(axis: str, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices [N, 3, 3] about axis 'X', 'Y' or 'Z' by angles [N] in radians."""
    c, s = np.cos(angles), np.sin(angles)
    one, zero = np.ones_like(c), np.zeros_like(c)
    if axis == 'X':
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == 'Y':
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    elif axis == 'Z':
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    else:
        raise ValueError(f'unknown rotation axis {axis!r}')
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles: np.ndarray, order: str, intrinsic: bool) -> np.ndarray:
    """
    Rotation matrices [N, 3, 3] from angles [N, len(order)] in radians.

    ``intrinsic=True`` gives ``R_order[0] @ R_order[1] @ ...`` (BVH); ``False`` gives the
    fixed-axis composition ``... @ R_order[1] @ R_order[0]`` (Acclaim: first axis applied first).
    """
    angles = np.atleast_2d(np.asarray(angles, dtype=np.float64))
    result = np.broadcast_to(np.eye(3), (angles.shape[0], 3, 3)).copy()
    for i, axis in enumerate(order.upper()):
        r = _axis_rotation(axis, angles[:, i])
        result = result @ r if intrinsic else r @ result
    return result


def _parse_asf(text: str) -> dict:
    """Parse an ASF file into units, root and bone dictionaries and the hierarchy."""
    asf = {'length': 1.0, 'deg': True, 'root_order': [], 'root_axis': 'XYZ',
           'root_position': np.zeros(3), 'root_orientation': np.zeros(3),
           'bones': {}, 'children': {}}
    section = None
    bone = None
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith(':'):
            section = line.split()[0]
            continue
        words = line.split()
        key = words[0].lower()
        if section == ':units':
            if key == 'length':
                asf['length'] = float(words[1])
            elif key == 'angle':
                asf['deg'] = words[1].lower().startswith('deg')
        elif section == ':root':
            if key == 'order':
                asf['root_order'] = [w.upper() for w in words[1:]]
            elif key == 'axis':
                asf['root_axis'] = words[1].upper()
            elif key == 'position':
                asf['root_position'] = np.array([float(w) for w in words[1:4]])
            elif key == 'orientation':
                asf['root_orientation'] = np.array([float(w) for w in words[1:4]])
        elif section == ':bonedata':
            if key == 'begin':
                bone = {'dof': [], 'axis': np.zeros(3), 'axis_order': 'XYZ'}
            elif key == 'end':
                asf['bones'][bone['name']] = bone
                bone = None
            elif bone is not None and key == 'name':
                bone['name'] = words[1]
            elif bone is not None and key == 'direction':
                bone['direction'] = np.array([float(w) for w in words[1:4]])
            elif bone is not None and key == 'length':
                bone['length'] = float(words[1])
            elif bone is not None and key == 'axis':
                bone['axis'] = np.array([float(w) for w in words[1:4]])
                bone['axis_order'] = words[4].upper() if len(words) > 4 else 'XYZ'
            elif bone is not None and key == 'dof':
                bone['dof'] = [w.lower() for w in words[1:]]
        elif section == ':hierarchy' and key not in ('begin', 'end'):
            asf['children'].setdefault(words[0], []).extend(words[1:])
    return asf


def _parse_amc(text: str, asf: dict) -> tuple[list[dict[str, list[float]]], bool]:
    frames: list[dict[str, list[float]]] = []
    degrees = asf['deg']
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith(':'):
            if line.upper().startswith(':RADIANS'):
                degrees = False
            elif line.upper().startswith(':DEGREES'):
                degrees = True
            continue
        words = line.split()
        if len(words) == 1 and words[0].isdigit():
            frames.append({})
        elif frames:
            frames[-1][words[0]] = [float(w) for w in words[1:]]
    return frames, degrees


def read_asf_amc(asf_path: str, amc_path: str, fps: float = 120.0,
                 name: str | None = None) -> MotionClip:
    """Read an Acclaim skeleton + motion (CMU: 120 Hz) and run forward kinematics."""
    with open(asf_path, encoding='latin-1') as f:
        asf = _parse_asf(f.read())
    with open(amc_path, encoding='latin-1') as f:
        frames, degrees = _parse_amc(f.read(), asf)
    if not frames:
        raise ValueError(f'{amc_path}: no frames')
    scale = INCH / asf['length']
    to_rad = math.pi / 180.0 if degrees else 1.0
    axis_rad = math.pi / 180.0 if asf['deg'] else 1.0
    num = len(frames)

    def channel(bone: str, count: int) -> np.ndarray:
        values = np.zeros((num, count))
        for i, frame in enumerate(frames):
            v = frame.get(bone)
            if v is not None:
                values[i, :len(v)] = v[:count]
        return values

    root_vals = channel('root', len(asf['root_order']))
    root_pos = np.broadcast_to(asf['root_position'] * scale, (num, 3)).copy()
    rot_angles = np.zeros((num, 0))
    rot_order = ''
    for i, dof in enumerate(asf['root_order']):
        if dof.startswith('T'):
            root_pos[:, 'XYZ'.index(dof[1])] = root_vals[:, i] * scale
        else:
            rot_angles = np.concatenate([rot_angles, root_vals[:, i:i + 1] * to_rad], axis=1)
            rot_order += dof[1]
    c_root = euler_to_matrix(asf['root_orientation'][None] * axis_rad, asf['root_axis'],
                             intrinsic=False)[0]
    motion = euler_to_matrix(rot_angles, rot_order, intrinsic=False) if rot_order else np.eye(3)
    root_rot = c_root @ motion @ c_root.T

    names = ['root']
    positions = {'root': root_pos}
    rotations = {'root': root_rot}
    stack = list(reversed(asf['children'].get('root', [])))
    parent_of = {c: p for p, cs in asf['children'].items() for c in cs}
    while stack:
        bone_name = stack.pop()
        bone = asf['bones'][bone_name]
        parent = parent_of[bone_name]
        c = euler_to_matrix(bone['axis'][None] * axis_rad, bone['axis_order'], intrinsic=False)[0]
        if bone['dof']:
            values = channel(bone_name, len(bone['dof'])) * to_rad
            m = euler_to_matrix(values, ''.join(d[1] for d in bone['dof']), intrinsic=False)
        else:
            m = np.eye(3)
        rot = rotations[parent] @ c @ m @ c.T
        offset = bone['direction'] / np.linalg.norm(bone['direction']) * bone['length'] * scale
        positions[bone_name] = positions[parent] + rot @ offset
        rotations[bone_name] = rot
        names.append(bone_name)
        stack.extend(reversed(asf['children'].get(bone_name, [])))
    pos = np.stack([positions[n] for n in names], axis=1) @ Y_UP_TO_Z_UP.T
    clip_name = name or os.path.splitext(os.path.basename(amc_path))[0]
    return MotionClip(clip_name, float(fps), tuple(names), pos)


def read_bvh(path: str, name: str | None = None, scale: float = 1.0,
             fps: float | None = None) -> MotionClip:
    """
    Read a BVH file (Y-up) and run forward kinematics.

    ``scale`` converts the file's length unit to metres (centimetres: 0.01); ``fps`` overrides
    the header's frame time where it is known to be wrong.
    """
    with open(path) as f:
        tokens = f.read().split()
    joints: list[dict] = []
    stack: list[int] = []
    i = 0
    pending = None
    while i < len(tokens):
        tok = tokens[i]
        if tok == 'HIERARCHY':
            i += 1
        elif tok in ('ROOT', 'JOINT'):
            pending = {'name': tokens[i + 1], 'parent': stack[-1] if stack else -1,
                       'channels': [], 'end': False}
            i += 2
        elif tok == 'End':
            parent = stack[-1]
            pending = {'name': joints[parent]['name'] + '_end', 'parent': parent,
                       'channels': [], 'end': True}
            i += 2
        elif tok == '{':
            joints.append(pending)
            stack.append(len(joints) - 1)
            i += 1
        elif tok == '}':
            stack.pop()
            i += 1
        elif tok == 'OFFSET':
            joints[stack[-1]]['offset'] = np.array([float(t) for t in tokens[i + 1:i + 4]])
            i += 4
        elif tok == 'CHANNELS':
            count = int(tokens[i + 1])
            joints[stack[-1]]['channels'] = tokens[i + 2:i + 2 + count]
            i += 2 + count
        elif tok == 'MOTION':
            i += 1
            break
        else:
            raise ValueError(f'{path}: unexpected token {tok!r} in HIERARCHY')
    num = int(tokens[i + 1])
    frame_time = float(tokens[i + 4])
    data = np.array(tokens[i + 5:], dtype=np.float64)
    width = sum(len(j['channels']) for j in joints)
    if data.size < num * width:
        raise ValueError(f'{path}: {data.size} values for {num} frames x {width} channels')
    data = data[:num * width].reshape(num, width)

    positions: list[np.ndarray] = []
    rotations: list[np.ndarray] = []
    col = 0
    for joint in joints:
        translation = np.broadcast_to(joint['offset'], (num, 3)).copy()
        rot_order = ''
        rot_cols = []
        for ch in joint['channels']:
            axis = ch[0].upper()
            if ch.lower().endswith('position'):
                translation[:, 'XYZ'.index(axis)] = data[:, col]
            else:
                rot_order += axis
                rot_cols.append(col)
            col += 1
        local = (euler_to_matrix(np.radians(data[:, rot_cols]), rot_order, intrinsic=True)
                 if rot_order else np.broadcast_to(np.eye(3), (num, 3, 3)))
        if joint['parent'] < 0:
            positions.append(translation)
            rotations.append(local)
        else:
            p_rot = rotations[joint['parent']]
            positions.append(positions[joint['parent']] + np.einsum('fij,fj->fi', p_rot,
                                                                    translation))
            rotations.append(p_rot @ local)
    pos = np.stack(positions, axis=1) @ Y_UP_TO_Z_UP.T * scale
    clip_name = name or os.path.splitext(os.path.basename(path))[0]
    return MotionClip(clip_name, float(fps) if fps else 1.0 / frame_time,
                      tuple(j['name'] for j in joints), pos)


def read_motion(path: str, fps: float | None = None) -> MotionClip:
    """
    Read a clip by file extension.

    ``.bvh`` is read alone; ``.amc`` needs a ``.asf`` with the same stem, and ``.asf`` a ``.amc``.
    ``fps`` overrides the frame rate of ASF/AMC (which does not store it; default 120 Hz).
    """
    stem, ext = os.path.splitext(path)
    ext = ext.lower()
    if ext == '.bvh':
        return read_bvh(path)
    if ext in ('.asf', '.amc'):
        return read_asf_amc(stem + '.asf', stem + '.amc', fps=fps or 120.0)
    raise ValueError(f'{path}: unknown motion file type (expected .bvh, .asf or .amc)')


def resample(clip: MotionClip, times_s: np.ndarray) -> np.ndarray:
    """Joint positions [T, J, 3] at times (s) by linear interpolation, clamped at the ends."""
    f = np.clip(np.asarray(times_s, dtype=np.float64) * clip.fps, 0.0, clip.num_frames - 1)
    i0 = np.minimum(np.floor(f).astype(np.int64), clip.num_frames - 1)
    i1 = np.minimum(i0 + 1, clip.num_frames - 1)
    w = (f - i0)[:, None, None]
    return clip.positions[i0] * (1.0 - w) + clip.positions[i1] * w
