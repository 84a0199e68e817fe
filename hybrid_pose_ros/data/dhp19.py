"""
DHP19 file format: writer and loaders shared by the real dataset and the synthetic one.

Events: ``S{subj}_session{s}_mov{m}_events.h5`` with ``cam{k}_events/{x,y,p,t}`` (x, y 1-based
as MATLAB wrote them, t in microseconds from 0) and ``cam{k}_ms_to_idx[ms]`` = index of the
first event at or after ``ms`` milliseconds. Labels: ``..._events_label.h5`` with
``XYZ/3d_poses`` (N, 3, 13) in mm and ``XYZ/timestamps`` (N,) in microseconds; label ``k`` is
the pose at ``(k + 1) * 10`` ms. Cameras: ``P1.npy`` .. ``P4.npy`` (3x4, mm, bottom-origin
image) and ``camera_positions.npy`` (row ``i`` = centre of camera ``P{i+1}``, mm).

The loaders follow the paper's code (docs/paper-spec.md 1.1): 7500-event warm-up, windows at
100 ms multiples, label at the end of each 10 ms bin, crop ``[2:258, 34:290]`` with ``int``
truncation and NaN for joints outside it; split train S1-12 / test S13-17 without
``S16_session2_mov1``.
"""
import math
import os
import re

import h5py
from hybrid_pose_ros.data.cameras import CAM_TO_P, project_dhp19
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.events.sensor import DHP19_CROP_SIZE, DHP19_CROP_X0, DHP19_CROP_Y0
from hybrid_pose_ros.skeleton import NUM_JOINTS
import numpy as np

WARMUP_EVENTS = 7500
STEP_MS = 100
BIN_MS = 10
LABEL_PERIOD_MS = 10
TRAIN_SUBJECTS = tuple(range(1, 13))
TEST_SUBJECTS = tuple(range(13, 18))
EXCLUDED_RECORDINGS = ('S16_session2_mov1',)

_NAME = re.compile(r'S(\d+)_session(\d+)_mov(\d+)')


def recording_name(subject: int, session: int, movement: int) -> str:
    """``S{subject}_session{session}_mov{movement}``."""
    return f'S{subject}_session{session}_mov{movement}'


def parse_recording_name(name: str) -> tuple[int, int, int]:
    """(subject, session, movement) from a recording or file name."""
    m = _NAME.search(os.path.basename(name))
    if m is None:
        raise ValueError(f'{name!r} is not a DHP19 recording name')
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def events_path(folder: str, name: str) -> str:
    """Path of a recording's event file."""
    return os.path.join(folder, f'{name}_events.h5')


def labels_path(folder: str, name: str) -> str:
    """Path of a recording's label file."""
    return os.path.join(folder, f'{name}_events_label.h5')


def split_of(name: str) -> str | None:
    """'train', 'test', or None for excluded recordings and subjects outside 1-17."""
    base = recording_name(*parse_recording_name(name))
    if base in EXCLUDED_RECORDINGS:
        return None
    subject = parse_recording_name(name)[0]
    if subject in TRAIN_SUBJECTS:
        return 'train'
    if subject in TEST_SUBJECTS:
        return 'test'
    return None


def ms_to_idx(t_us: np.ndarray) -> np.ndarray:
    """Index of the first event at or after each millisecond 0 .. last event's ms + 1."""
    t_us = np.asarray(t_us)
    last_ms = int(t_us[-1] // 1000) if len(t_us) else 0
    return np.searchsorted(t_us, np.arange(last_ms + 2, dtype=np.int64) * 1000, side='left')


class EventsWriter:
    """Append events camera by camera to a DHP19 event file (chunked, resizable datasets)."""

    def __init__(self, path: str):
        self._file = h5py.File(path, 'w')
        self._last_t: dict[int, int] = {}

    def append(self, cam: int, events: np.ndarray) -> None:
        """Append time-sorted events (0-based x, y) of camera ``cam``."""
        group_name = f'cam{cam}_events'
        if group_name not in self._file:
            group = self._file.create_group(group_name)
            for key, dtype in (('x', np.uint16), ('y', np.uint16), ('p', np.uint8),
                               ('t', np.int64)):
                group.create_dataset(key, shape=(0,), maxshape=(None,), dtype=dtype,
                                     chunks=(1 << 16,))
            self._last_t[cam] = -1
        if len(events) == 0:
            return
        if events['t'][0] < self._last_t[cam] or np.any(np.diff(events['t']) < 0):
            raise ValueError('events must be appended in time order')
        group = self._file[group_name]
        n0 = group['t'].shape[0]
        for key, values in (('x', events['x'] + 1), ('y', events['y'] + 1), ('p', events['p']),
                            ('t', events['t'])):
            group[key].resize((n0 + len(events),))
            group[key][n0:] = values
        self._last_t[cam] = int(events['t'][-1])

    def close(self) -> None:
        """Write every camera's ``ms_to_idx`` and close the file."""
        for name in list(self._file.keys()):
            cam = int(name[3:].split('_')[0])
            self._file.create_dataset(f'cam{cam}_ms_to_idx',
                                      data=ms_to_idx(self._file[name]['t'][:]))
        self._file.close()


def write_events(path: str, events_per_cam: dict[int, np.ndarray]) -> None:
    """Write a whole DHP19 event file from {h5 camera index: time-sorted events}."""
    writer = EventsWriter(path)
    for cam, events in sorted(events_per_cam.items()):
        writer.append(cam, events)
    writer.close()


def write_labels(path: str, poses_mm: np.ndarray, timestamps_us: np.ndarray) -> None:
    """Write ``XYZ/3d_poses`` (N, 3, 13) mm and ``XYZ/timestamps`` (N,) us."""
    poses_mm = np.asarray(poses_mm, dtype=np.float64)
    if poses_mm.ndim != 3 or poses_mm.shape[1:] != (3, NUM_JOINTS):
        raise ValueError(f'poses must be (N, 3, {NUM_JOINTS}), got {poses_mm.shape}')
    with h5py.File(path, 'w') as f:
        f.create_dataset('XYZ/3d_poses', data=poses_mm)
        f.create_dataset('XYZ/timestamps', data=np.asarray(timestamps_us, dtype=np.int64))


def label_times_us(duration_us: int) -> np.ndarray:
    """Label timestamps 10, 20, ... ms (label k at (k+1)*10 ms) up to ``duration_us``."""
    n = int(duration_us // (LABEL_PERIOD_MS * 1000))
    return (np.arange(n, dtype=np.int64) + 1) * LABEL_PERIOD_MS * 1000


def write_cameras(folder: str, p_matrices: dict[int, np.ndarray],
                  centers_mm: dict[int, np.ndarray]) -> None:
    """Write ``P{n}.npy`` and ``camera_positions.npy`` (row n-1 = centre of P{n}), by P index."""
    os.makedirs(folder, exist_ok=True)
    for p, matrix in p_matrices.items():
        np.save(os.path.join(folder, f'P{p}.npy'), np.asarray(matrix, dtype=np.float64))
    positions = np.zeros((4, 3))
    for p, c in centers_mm.items():
        positions[p - 1] = c
    np.save(os.path.join(folder, 'camera_positions.npy'), positions)


def read_events(path: str, cam: int) -> np.ndarray:
    """Events of h5 camera ``cam`` as EVENT_DTYPE with 0-based x, y."""
    with h5py.File(path, 'r') as f:
        g = f[f'cam{cam}_events']
        x = g['x'][:].astype(np.int64) - 1
        y = g['y'][:].astype(np.int64) - 1
        out = np.empty(len(x), dtype=EVENT_DTYPE)
        out['x'] = x
        out['y'] = y
        out['p'] = g['p'][:]
        out['t'] = g['t'][:]
    return out


def read_ms_to_idx(path: str, cam: int) -> np.ndarray:
    """Read the ``cam{k}_ms_to_idx`` table."""
    with h5py.File(path, 'r') as f:
        return f[f'cam{cam}_ms_to_idx'][:].astype(np.int64)


def read_labels(path: str) -> tuple[np.ndarray, np.ndarray]:
    """3D poses (N, 3, 13) in mm and their timestamps (N,) in us."""
    with h5py.File(path, 'r') as f:
        return f['XYZ/3d_poses'][:].astype(np.float64), f['XYZ/timestamps'][:]


def load_projection_matrix(folder: str, cam: int) -> np.ndarray:
    """P matrix of h5 camera ``cam`` (through CAM_TO_P: cam3 -> P2.npy)."""
    return np.load(os.path.join(folder, f'P{CAM_TO_P[cam]}.npy'))


def load_camera_positions(folder: str) -> np.ndarray:
    """``camera_positions.npy`` (4, 3); row ``n - 1`` belongs to ``P{n}``."""
    return np.load(os.path.join(folder, 'camera_positions.npy'))


def constant_count_start_ms(t_us: np.ndarray, warmup: int = WARMUP_EVENTS) -> int | None:
    """``ceil(t[warmup] / 100 ms) * 100``; None when the recording has too few events."""
    if len(t_us) <= warmup:
        return None
    return int(math.ceil(int(t_us[warmup]) / (STEP_MS * 1000))) * STEP_MS


def window_starts_ms(t_us: np.ndarray, num_labels: int, seq_len_ms: int = 100,
                     num_ms: int | None = None) -> np.ndarray:
    """
    Window starts (ms) of a recording: 100 ms multiples after the 7500-event warm-up.

    A window ``[s, s + seq_len)`` is kept when its last label ``(s + seq_len)/10 - 1`` exists and
    (if ``num_ms``, the length of ``ms_to_idx``, is given) ``s + seq_len < num_ms``.
    """
    start = constant_count_start_ms(t_us)
    if start is None:
        return np.zeros(0, dtype=np.int64)
    last = (num_labels + 1) * LABEL_PERIOD_MS - seq_len_ms
    if num_ms is not None:
        last = min(last, num_ms - 1 - seq_len_ms)
    return np.arange(start, last + 1, STEP_MS, dtype=np.int64)


def bin_label_index(ms_start: int, step: int, bin_ms: int = BIN_MS) -> int:
    """Label index supervising SNN step ``step``: the pose at the end of its bin."""
    end = ms_start + (step + 1) * bin_ms
    if end % LABEL_PERIOD_MS:
        raise ValueError(f'bin end {end} ms has no label (labels every {LABEL_PERIOD_MS} ms)')
    return end // LABEL_PERIOD_MS - 1


def window_events(events: np.ndarray, table: np.ndarray, ms_start: int, ms_end: int) -> np.ndarray:
    """Events in ``[ms_start, ms_end)`` via ``ms_to_idx``."""
    return events[table[ms_start]:table[ms_end]]


def ann_input_events(events: np.ndarray, table: np.ndarray, ms_start: int,
                     count: int = WARMUP_EVENTS) -> np.ndarray:
    """Return the ``count`` events immediately before ``ms_start`` (the ANN's input)."""
    end = int(table[ms_start])
    return events[max(0, end - count):end]


def project_to_crop(p_matrix: np.ndarray, poses_mm: np.ndarray) -> np.ndarray:
    """
    Project 3D labels (..., 3, 13) mm to crop pixels (..., 13, 2) as ``(u', v')`` floats.

    ``u = x/w``, ``v_img = 260 - y/w``; joints with ``u`` outside ``[34, 290)`` or ``v_img``
    outside ``[2, 258)`` are NaN; the others are ``int(u - 34)``, ``int(v_img - 2)``.
    """
    u, v = project_dhp19(p_matrix, np.swapaxes(np.asarray(poses_mm, dtype=np.float64), -1, -2))
    visible = ((u >= DHP19_CROP_X0) & (u < DHP19_CROP_X0 + DHP19_CROP_SIZE)
               & (v >= DHP19_CROP_Y0) & (v < DHP19_CROP_Y0 + DHP19_CROP_SIZE))
    out = np.full(u.shape + (2,), np.nan)
    out[..., 0] = np.where(visible, np.trunc(u - DHP19_CROP_X0), np.nan)
    out[..., 1] = np.where(visible, np.trunc(v - DHP19_CROP_Y0), np.nan)
    return out
