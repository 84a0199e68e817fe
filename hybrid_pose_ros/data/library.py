"""
The motion-capture library: its takes, each source's units and rates, the split by performer.

A library folder holds ``takes.csv`` (one row per take: ``file``, ``group``, ``fmt``,
``subject`` = performer, ``trial``, ``category``, ``fps`` = the true frame rate, ``tpose_frame0``,
``asf``) and the files it names. The library used for the bundled weights (196 takes, 19
performers, 13.2 minutes) comes from the CMU Graphics Lab Motion Capture Database (cgspeed BVH
conversions, free for all uses) and HDM05 (ASF/AMC, CC BY-SA 3.0); docs/training.md says where to
get the same files.

Units and rates are a property of the source, not of the BVH header (which is wrong for some):

* cgspeed "Daz-friendly" BVH: centimetres; frame 0 is an added T-pose and frames 1-4 blend out of
  it (``tpose_frame0``): the first :data:`TPOSE_BLEND_FRAMES` frames are dropped;
* the salsa takes of group ``cmu_daz_salsa_beemsoft`` were divided by 128 by that repository:
  metres = value x 1.28 (the bone lengths then equal the other cgspeed takes'), and they run
  at 60 fps whatever the header says;
* raw CMU ASF-to-BVH files (CMU ASF joint names in a BVH): ASF units, metres = value x 0.056444;
* HDM05 and CMU ASF/AMC: the ASF's ``:units length`` (read by :func:`mocap.read_asf_amc`).

The frame rate is always the ``fps`` column. Joint flips (a joint jumping away for 1-10 frames)
are repaired by :func:`repair_glitches`.

Split by performer (:func:`split_takes`): HDM05 actor ``tr``, CMU subject 13 and salsa take 14 of
both dancers (``60_14``, ``61_14``, who dance together) are the test set; everything else trains.
"""
import csv
from dataclasses import dataclass
import os

from hybrid_pose_ros.data.joint_mapping import find_mapping_name, LANDMARK_NAMES, landmarks
from hybrid_pose_ros.data.mocap import INCH, MotionClip, read_asf_amc, read_bvh
import numpy as np

TAKES_FILE = 'takes.csv'
TPOSE_BLEND_FRAMES = 5
CENTIMETRE = 0.01
SALSA_GROUP = 'cmu_daz_salsa_beemsoft'
SALSA_SCALE = 1.28
CMU_ASF_SCALE = INCH / 0.45
"""Metres per CMU ASF length unit (``:units length 0.45``: 1 / 0.45 inch)."""

TEST_PERFORMERS: tuple[str, ...] = ('HDM05 actor tr', 'CMU 13')
"""Performers held out whole as the test set."""
TEST_TRIALS: tuple[str, ...] = ('60_14', '61_14')
"""Takes held out whole as well: the two salsa dancers of take 14 dance together."""

GLITCH_SPIKE_M = 0.2
GLITCH_MAX_FRAMES = 12


@dataclass(frozen=True)
class Take:
    """One row of ``takes.csv``: where the file is and how to read it."""

    path: str
    group: str
    fmt: str
    performer: str
    trial: str
    category: str
    description: str
    fps: float
    tpose_frame0: bool
    asf: str | None

    @property
    def name(self) -> str:
        """Return a short unique name: the file name without its extension."""
        return os.path.splitext(os.path.basename(self.path))[0]

    @property
    def is_test(self) -> bool:
        """Return True when the take belongs to the held-out test set."""
        return self.performer in TEST_PERFORMERS or self.trial in TEST_TRIALS


def read_takes(folder: str) -> list[Take]:
    """Read ``folder/takes.csv``; raise ``FileNotFoundError`` naming what is missing."""
    table = os.path.join(folder, TAKES_FILE)
    if not os.path.isfile(table):
        raise FileNotFoundError(f'{table} not found: a motion-capture library folder holds '
                                f'{TAKES_FILE} and the take files it lists')
    takes = []
    with open(table, newline='') as f:
        for row in csv.DictReader(f):
            takes.append(Take(
                path=os.path.join(folder, row['file']), group=row['group'], fmt=row['fmt'],
                performer=row['subject'], trial=row['trial'], category=row['category'],
                description=row['description'], fps=float(row['fps']),
                tpose_frame0=row['tpose_frame0'].strip().lower() == 'true',
                asf=os.path.join(folder, row['asf']) if row.get('asf') else None))
    missing = [t.path for t in takes if not os.path.isfile(t.path)]
    if missing:
        raise FileNotFoundError(f'{len(missing)} take files listed in {table} are missing, '
                                f'e.g. {missing[0]}')
    return takes


def split_takes(takes: list[Take]) -> tuple[list[Take], list[Take]]:
    """Return ``(train, test)``: the held-out performers and takes are the test set."""
    return [t for t in takes if not t.is_test], [t for t in takes if t.is_test]


def _bvh_scale(take: Take, clip: MotionClip) -> float:
    if take.group == SALSA_GROUP:
        return SALSA_SCALE
    if find_mapping_name(clip) == 'cmu_asf_bvh':
        return CMU_ASF_SCALE
    return CENTIMETRE


def read_take(take: Take) -> MotionClip:
    """Read a take in metres at its true frame rate, without its T-pose lead-in frames."""
    if take.fmt.upper().startswith('ASF'):
        if take.asf is None:
            raise ValueError(f'{take.path}: an ASF/AMC take needs its ASF file (column asf)')
        clip = read_asf_amc(take.asf, take.path, fps=take.fps, name=take.name)
    else:
        raw = read_bvh(take.path, name=take.name, fps=take.fps)
        clip = MotionClip(raw.name, raw.fps, raw.joint_names,
                          raw.positions * _bvh_scale(take, raw))
    if take.tpose_frame0:
        clip = MotionClip(clip.name, clip.fps, clip.joint_names,
                          clip.positions[TPOSE_BLEND_FRAMES:])
    return clip


def repair_glitches(positions: np.ndarray, spike_m: float = GLITCH_SPIKE_M,
                    max_frames: int = GLITCH_MAX_FRAMES) -> tuple[np.ndarray, int]:
    """
    Interpolate over joint flips: frames where a point [F, K, 3] jumps away and back.

    A flip starts and ends with a spike, a frame more than ``spike_m`` from the mean of its two
    neighbours (smooth motion stays within millimetres of it: 100 m/s^2 at 120 Hz is 7 mm).
    Frames from a spike up to a later spike at most ``max_frames`` on are bad; every point of a
    bad frame is interpolated linearly between the nearest good frames. Returns the repaired
    positions and the number of bad frames.
    """
    num = positions.shape[0]
    if num < 3:
        return positions, 0
    second = np.linalg.norm(positions[1:-1] - (positions[:-2] + positions[2:]) / 2.0, axis=-1)
    spikes = np.flatnonzero(second.max(axis=1) > spike_m) + 1
    bad = np.zeros(num, dtype=bool)
    bad[spikes] = True
    for a, b in zip(spikes[:-1], spikes[1:]):
        if b - a <= max_frames:
            bad[a:b] = True
    if not bad.any() or bad.all():
        return positions, 0
    good = np.flatnonzero(~bad)
    flat = positions.reshape(num, -1).copy()
    for k in range(flat.shape[1]):
        flat[bad, k] = np.interp(np.flatnonzero(bad), good, flat[good, k])
    return flat.reshape(positions.shape), int(bad.sum())


def take_landmarks(take: Take) -> tuple[MotionClip, int]:
    """
    Landmarks of a take as a clip (:data:`joint_mapping.LANDMARK_NAMES`, metres, true rate).

    Also returns the number of repaired glitch frames.
    """
    clip = read_take(take)
    repaired, bad = repair_glitches(landmarks(clip))
    return MotionClip(clip.name, clip.fps, LANDMARK_NAMES, repaired), bad
