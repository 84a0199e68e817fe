"""
A user's mapping file: how to read their own motion capture and where the landmarks are.

``hybrid_pose_generate_data MOCAP... --out DIR --mapping FILE`` applies one YAML mapping file to
every MOCAP file (``.bvh``, or ``.asf``/``.amc``). Every key is optional; a complete example,
for a BVH with SMPL joint names in centimetres::

    units: cm               # metres per file unit: a number (0.01) or m, cm, mm, inch or
                            # cmu_asf (1/0.45 inch); default: m (BVH), the ASF's (ASF/AMC)
    up_axis: y              # the file's up axis: y (default) or z
    fps: 60                 # frame rate, overriding the BVH "Frame Time" (ASF/AMC: 120)
    skip_frames: 1          # frames dropped at the start (a T-pose, say); default 0
    time_range: [0.5, 20]   # seconds of the file kept, from its first frame at 0 s
    remove_root_drift: true # keep a roaming actor near one spot (default false)
    landmarks:              # landmark: JOINT, or [JOINT_A, JOINT_B, F] = A + F * (B - A)
      head: [Neck, Head, 1.5]
      shoulder_right: R_Shoulder
      shoulder_left: L_Shoulder
      elbow_right: R_Elbow
      elbow_left: L_Elbow
      hip_right: R_Hip
      hip_left: L_Hip
      hand_right: R_Wrist
      hand_left: L_Wrist
      knee_right: R_Knee
      knee_left: L_Knee
      foot_right: R_Ankle
      foot_left: L_Ankle
      pelvis: [[R_Hip, L_Hip], Pelvis, 0]   # a list of joints is their mean
      neck: Neck
      head_top: [Neck, Head, 2.2]           # F > 1 extrapolates beyond B
      toe_right: R_Foot
      toe_left: L_Foot

Landmarks are the names of :data:`joint_mapping.LANDMARK_NAMES`; a joint is a name of the
clip (a BVH ``End Site`` is ``<parent>_end``). A landmark left out comes from a built-in mapping
of :data:`joint_mapping.MAPPINGS` for the file's format (ASF/AMC: ``cmu_asf``, BVH: the
``*_bvh`` ones) that has the joints it needs; the one missing the fewest of its joints wins. A
frame ``k`` (time ``k / fps``) is kept when ``k >= skip_frames`` and it lies in ``time_range``.

For ASF/AMC, ``units`` replaces the conversion the ASF declares (``:units length L``: a unit is
``1 / L`` inch); the ASF is the one with the AMC's name, else the one whose name and ``_``
begin the AMC's name (CMU ``01.asf`` for ``01_02.amc``), else the only one in its folder.

After mapping, the body must be upright and 1.2-2.2 m tall (:func:`check_body_height`: the top
of the head above the lowest foot, median over the 5 % of the frames where it is highest);
otherwise the message gives the measured height, the scale that would make it 1.75 m and the
common unit that fits (``units: cm``, say), or says to change ``up_axis``.

Every key is checked; a problem raises :class:`MocapInputError` with a one-line message naming
the file and the key (the command line prints it and exits with status 2).
"""
from collections.abc import Iterable
from dataclasses import dataclass, field
import glob
import math
import os
from typing import Any

from hybrid_pose_ros.data.joint_mapping import Joint, LANDMARK_INDEX, LANDMARK_NAMES, MAPPINGS
from hybrid_pose_ros.data.joint_mapping import Spec
from hybrid_pose_ros.data.library import CMU_ASF_SCALE
from hybrid_pose_ros.data.mocap import _parse_asf, INCH, MotionClip, read_asf_amc, read_bvh
from hybrid_pose_ros.data.mocap import Y_UP_TO_Z_UP
import numpy as np
import yaml

UNITS: dict[str, float] = {'m': 1.0, 'cm': 0.01, 'mm': 0.001, 'inch': INCH,
                           'cmu_asf': CMU_ASF_SCALE}
"""Metres per file unit of the unit names ``units`` accepts."""
UNIT_WORDS: dict[str, str] = {'m': 'metres', 'cm': 'centimetres', 'mm': 'millimetres',
                              'inch': 'inches', 'cmu_asf': 'CMU ASF units (1/0.45 inch)'}
KEYS: tuple[str, ...] = ('landmarks', 'units', 'up_axis', 'fps', 'skip_frames', 'time_range',
                         'remove_root_drift')
HEIGHT_RANGE_M: tuple[float, float] = (1.2, 2.2)
"""Body heights (top of the head above the lowest foot, median over frames) accepted."""
TYPICAL_HEIGHT_M = 1.75
TALLEST_FRACTION = 0.05
"""The fraction of the frames whose body height is checked (those where it stands tallest)."""
FEET: tuple[str, ...] = ('foot_right', 'foot_left', 'toe_right', 'toe_left')


class MocapInputError(ValueError):
    """A motion-capture file or mapping file that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class UserMapping:
    """The settings of a mapping file (the defaults: no mapping file)."""

    path: str = ''
    landmarks: dict[str, Spec] = field(default_factory=dict)
    units: float | None = None
    up_axis: str = 'y'
    fps: float | None = None
    skip_frames: int = 0
    time_range: tuple[float, float] | None = None
    remove_root_drift: bool = False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _joint(value: Any, where: str) -> Joint:
    """Check a joint: a name, or a list of names (their mean)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return value[0] if len(value) == 1 else tuple(value)
    raise MocapInputError(f'{where}: expected a joint name or a list of joint names (their '
                          f'mean), not {value!r}')


def _spec(value: Any, where: str) -> Spec:
    """Turn ``JOINT`` or ``[JOINT_A, JOINT_B, F]`` into a joint-mapping spec."""
    if isinstance(value, str):
        return (_joint(value, where), value, 0.0)
    if isinstance(value, list) and len(value) == 3 and _is_number(value[2]):
        return (_joint(value[0], where), _joint(value[1], where), float(value[2]))
    raise MocapInputError(f'{where}: expected a joint name or [joint_a, joint_b, f], '
                          f'not {value!r}')


def _units(value: Any, where: str) -> float:
    if isinstance(value, str) and value.lower() in UNITS:
        return UNITS[value.lower()]
    if _is_number(value) and value > 0:
        return float(value)
    raise MocapInputError(f'{where}: expected metres per file unit (a number > 0) or one of '
                          f'{", ".join(UNITS)}, not {value!r}')


def load_user_mapping(path: str) -> UserMapping:
    """Read and check a mapping file (schema in the module docstring)."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as error:
        raise MocapInputError(f'mapping file {path}: {error.strerror}') from None
    except yaml.YAMLError as error:
        raise MocapInputError(f'mapping file {path} is not valid YAML: '
                              f'{" ".join(str(error).split())}') from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise MocapInputError(f'mapping file {path}: expected keys ({", ".join(KEYS)}), '
                              f'not {type(data).__name__}')
    unknown = [str(k) for k in data if k not in KEYS]
    if unknown:
        raise MocapInputError(f'{path}: unknown key {unknown[0]!r} (the keys are '
                              f'{", ".join(KEYS)})')
    settings: dict[str, Any] = {'path': path}
    where = {key: f'{path}: {key}' for key in KEYS}
    if 'landmarks' in data:
        specs = data['landmarks']
        if not isinstance(specs, dict):
            raise MocapInputError(f'{where["landmarks"]}: expected landmark: joint entries')
        bad = [str(n) for n in specs if n not in LANDMARK_INDEX]
        if bad:
            raise MocapInputError(f'{where["landmarks"]}: unknown landmark {bad[0]!r} (the '
                                  f'landmarks are {", ".join(LANDMARK_NAMES)})')
        settings['landmarks'] = {n: _spec(v, f'{where["landmarks"]}: {n}')
                                 for n, v in specs.items()}
    if 'units' in data:
        settings['units'] = _units(data['units'], where['units'])
    if 'up_axis' in data:
        axis = data['up_axis']
        if not isinstance(axis, str) or axis.lower() not in ('y', 'z'):
            raise MocapInputError(f'{where["up_axis"]}: expected y or z, not {axis!r}')
        settings['up_axis'] = axis.lower()
    if 'fps' in data:
        if not (_is_number(data['fps']) and data['fps'] > 0):
            raise MocapInputError(f'{where["fps"]}: expected frames per second > 0, '
                                  f'not {data["fps"]!r}')
        settings['fps'] = float(data['fps'])
    if 'skip_frames' in data:
        skip = data['skip_frames']
        if not (isinstance(skip, int) and not isinstance(skip, bool) and skip >= 0):
            raise MocapInputError(f'{where["skip_frames"]}: expected a whole number of frames '
                                  f'>= 0, not {skip!r}')
        settings['skip_frames'] = skip
    if 'time_range' in data:
        span = data['time_range']
        if not (isinstance(span, list) and len(span) == 2 and all(map(_is_number, span))
                and 0 <= span[0] < span[1]):
            raise MocapInputError(f'{where["time_range"]}: expected [start_s, end_s] with '
                                  f'0 <= start_s < end_s, not {span!r}')
        settings['time_range'] = (float(span[0]), float(span[1]))
    if 'remove_root_drift' in data:
        if not isinstance(data['remove_root_drift'], bool):
            raise MocapInputError(f'{where["remove_root_drift"]}: expected true or false, not '
                                  f'{data["remove_root_drift"]!r}')
        settings['remove_root_drift'] = data['remove_root_drift']
    return UserMapping(**settings)


def asf_for(amc_path: str) -> str:
    """Find the ASF skeleton of an AMC motion (the rule is in the module docstring)."""
    folder, stem = os.path.split(os.path.splitext(amc_path)[0])
    candidates = sorted(glob.glob(os.path.join(glob.escape(folder or '.'), '*.asf')))
    stems = {os.path.splitext(os.path.basename(c))[0]: c for c in candidates}
    if stem in stems:
        return stems[stem]
    prefixes = [s for s in stems if stem.startswith(s + '_')]
    if prefixes:
        return stems[max(prefixes, key=len)]
    if len(candidates) == 1:
        return candidates[0]
    raise MocapInputError(f'{amc_path}: which ASF skeleton? expected {stem}.asf, or a '
                          f'<name>.asf with {stem} = <name>_..., or a single .asf in its folder '
                          f'(found {len(candidates)})')


def _read(path: str, mapping: UserMapping) -> tuple[MotionClip, float]:
    """Read a file in metres (file frame, turned Y-up to Z-up); return it and its unit."""
    ext = os.path.splitext(path)[1].lower()
    if ext == '.bvh':
        units = mapping.units or 1.0
        return read_bvh(path, scale=units, fps=mapping.fps), units
    if ext not in ('.asf', '.amc'):
        raise MocapInputError(f'{path}: unknown motion file type (expected .bvh, .asf or .amc)')
    asf = path if ext == '.asf' else asf_for(path)
    amc = os.path.splitext(path)[0] + '.amc'
    with open(asf, encoding='latin-1') as f:
        declared = INCH / _parse_asf(f.read())['length']
    clip = read_asf_amc(asf, amc, fps=mapping.fps or 120.0)
    units = mapping.units or declared
    return MotionClip(clip.name, clip.fps, clip.joint_names,
                      clip.positions * (units / declared)), units


def read_user_motion(path: str, mapping: UserMapping = UserMapping()) -> tuple[MotionClip, float]:
    """
    Read a user's mocap file as the mapping file says: units, up axis, rate and frames.

    Returns the clip (metres, Z up) and the metres per file unit it was read with.
    """
    if not os.path.isfile(path):
        raise MocapInputError(f'{path}: no such file')
    try:
        clip, units = _read(path, mapping)
    except MocapInputError:
        raise
    except (OSError, ValueError, IndexError, KeyError) as error:
        raise MocapInputError(f'{path}: cannot read it: {error}') from None
    positions = clip.positions
    if mapping.up_axis == 'z':
        positions = positions @ Y_UP_TO_Z_UP       # undo the reader's Y-up -> Z-up turn
    frame = np.arange(clip.num_frames)
    keep = frame >= mapping.skip_frames
    if mapping.time_range is not None:
        t = frame / clip.fps
        keep &= (t >= mapping.time_range[0]) & (t <= mapping.time_range[1])
    kept = np.flatnonzero(keep)
    if len(kept) < 2:
        raise MocapInputError(
            f'{path}: {len(kept)} of its {clip.num_frames} frames ({clip.duration_s:.2f} s at '
            f'{clip.fps:g} fps) are kept with skip_frames {mapping.skip_frames} and time_range '
            f'{mapping.time_range}; at least 2 are needed')
    return MotionClip(clip.name, clip.fps, clip.joint_names,
                      positions[kept[0]:kept[-1] + 1]), units


def _joints(specs: Iterable[Spec]) -> set[str]:
    """Return every joint name the specs use."""
    return {n for a, b, _ in specs for joint in (a, b)
            for n in ((joint,) if isinstance(joint, str) else joint)}


def landmark_mapping(clip: MotionClip, path: str,
                     mapping: UserMapping = UserMapping()) -> dict[str, Spec]:
    """
    Return the complete landmark mapping of a clip read from ``path``.

    The mapping file's landmarks, and for the others a built-in mapping (module docstring);
    raises :class:`MocapInputError` listing the clip's joints when none fits.
    """
    have = set(clip.joint_names)
    absent = sorted(_joints(mapping.landmarks.values()) - have)
    if absent:
        raise MocapInputError(f'{mapping.path}: landmarks name joints that {path} lacks: '
                              f'{", ".join(absent)} (its joints: {", ".join(clip.joint_names)})')
    rest = [n for n in LANDMARK_NAMES if n not in mapping.landmarks]
    if not rest:
        return dict(mapping.landmarks)
    bvh = os.path.splitext(path)[1].lower() == '.bvh'
    built_in = {k: m for k, m in MAPPINGS.items() if k.endswith('_bvh') == bvh}
    lacks = {k: sorted(_joints(m[n] for n in rest) - have) for k, m in built_in.items()}
    fits = [k for k in built_in if not lacks[k]]
    if fits:
        best = min(fits, key=lambda k: len(_joints(built_in[k].values()) - have))
        return {**{n: built_in[best][n] for n in rest}, **mapping.landmarks}
    closest = min(lacks, key=lambda k: len(lacks[k]))
    if mapping.landmarks:
        todo = f'{", ".join(rest)} are left out: map them under landmarks: in {mapping.path}'
    elif mapping.path:
        todo = f'map the landmarks under landmarks: in {mapping.path}'
    else:
        todo = ('map the landmarks in a mapping file and pass it with --mapping FILE (README: '
                '"Labelled data from your own motion capture")')
    raise MocapInputError(
        f'{path}: unknown skeleton: no built-in mapping fits its joints '
        f'({", ".join(clip.joint_names)}); the closest, {closest}, lacks '
        f'{", ".join(lacks[closest])}; {todo}')


def tallest_frames(lm: np.ndarray) -> np.ndarray:
    """
    Return the landmarks [F', K, 3] of the frames where the person stands tallest.

    These are the :data:`TALLEST_FRACTION` of the frames [F, K, 3] (Z up) with the top of the
    head highest above the lowest foot landmark: a clip of lying down or squatting has its
    standing frames there, so its height is not mistaken for a wrong unit.
    """
    top = lm[:, LANDMARK_INDEX['head_top'], 2]
    height = top - lm[:, [LANDMARK_INDEX[n] for n in FEET], 2].min(axis=1)
    return lm[height >= np.quantile(height, 1.0 - TALLEST_FRACTION)]


def _settings_file(mapping: UserMapping) -> str:
    """Say where a setting goes: the mapping file given, or a new one."""
    return f'in {mapping.path}' if mapping.path else 'in a mapping file (--mapping FILE)'


def check_body_height(lm: np.ndarray, height_m: float, units: float, path: str,
                      mapping: UserMapping = UserMapping()) -> None:
    """
    Refuse a body that is not upright or not 1.2-2.2 m tall (a wrong up axis or unit).

    ``lm`` are the landmarks [F, K, 3] (Z up) of the frames measured (:func:`tallest_frames`),
    read with ``units`` metres per file unit, and ``height_m`` their body height. The body is
    not upright when the head is less than half as high above the feet as it is far from them.
    The message gives the measured height, the scale and the unit that would make it 1.75 m
    and the nearest common unit that fits.
    """
    feet = lm[:, [LANDMARK_INDEX[n] for n in FEET]]
    lowest = feet[np.arange(len(lm)), feet[..., 2].argmin(axis=1)]
    length = float(np.median(np.linalg.norm(lm[:, LANDMARK_INDEX['head_top']] - lowest, axis=1)))
    if height_m <= 0.5 * length:
        other = 'z' if mapping.up_axis == 'y' else 'y'
        raise MocapInputError(
            f'{path}: the body is not upright with up_axis {mapping.up_axis} (the head is '
            f'{height_m:.3g} m above the feet but {length:.3g} m from them): set up_axis: '
            f'{other} {_settings_file(mapping)}')
    low, high = HEIGHT_RANGE_M
    if low <= height_m <= high:
        return
    factor = TYPICAL_HEIGHT_M / height_m
    fitting = [u for u, s in UNITS.items() if low <= height_m * s / units <= high]
    if fitting:
        unit = min(fitting, key=lambda u: abs(math.log(UNITS[u] / (units * factor))))
        hint = f"the file's unit looks like {UNIT_WORDS[unit]}: set units: {unit}"
    else:
        hint = 'no common unit fits: set'
    raise MocapInputError(
        f'{path}: the body is {height_m:.3g} m tall at {units:.4g} m per file unit, not '
        f'{low}-{high} m (a scale of {factor:.4g} makes it {TYPICAL_HEIGHT_M} m): {hint} or '
        f'units: {units * factor:.4g} (metres per file unit) {_settings_file(mapping)}')
