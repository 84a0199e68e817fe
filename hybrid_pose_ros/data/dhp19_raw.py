# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
DHP19 as users download it: the raw release read, cut to the Vicon span and converted.

The raw release (https://sites.google.com/view/dhp19) is

* ``DVS_movies/S{1..17}/session{1..5}/mov{k}.aedat``: AEDAT 2.0, the four DAVIS346 cameras of
  a recording multiplexed in one file (sessions 1-5 hold 8, 6, 6, 6 and 7 movements);
* ``Vicon_data/S{n}_{session}_{mov}.mat``: a struct ``XYZPOS`` with one ``(N, 3)`` track per
  joint (``head``, ``shoulderR``, ... ``footL``) at 100 Hz, in millimetres.

This module follows DHP19's own MATLAB code (SensorsINI/DHP19 @ 12a3fe6, ``read_aedat/`` and
``generate_DHP19/``, MIT; a copy is in the workspace under ``shared/data/dhp19/matlab/``) and
writes the layout of :mod:`hybrid_pose_ros.data.dhp19` (the paper's code reads the same):
``S{n}_session{m}_mov{k}_events.h5``, ``..._events_label.h5``, ``P1.npy`` .. ``P4.npy`` and
``camera_positions.npy``. ``docs/dhp19.md`` walks from the download to the paper's table.

Reading (``ImportAedat.m``, ``ImportAedatHeaders.m``, ``ImportAedatDataVersion1or2.m``):

* header lines start with ``#`` (the first is ``#!AER-DAT2.0``); the data are big-endian
  ``uint32`` pairs ``(address, timestamp)``, timestamps in microseconds;
* ImportAedat.m seeks to ``beginningOfDataPointer + 8 * startEvent`` with ``startEvent = 1``,
  so it never reads the file's first event: :func:`read_aedat2` drops it too
  (``skip_first_event``);
* an address with bit 31 set is an APS sample or IMU word (ignored: DHP19 imports only
  ``polarity`` and ``special``); otherwise bit 10 (``0x400``) marks a special (sync) event, of
  which only the timestamp is used; the others are polarity events with ``y = (a & 0x7FC00000)
  >> 22``, ``x = (a & 0x003FF000) >> 12``, polarity bit 11 (``0x800``, 1 = ON) and the camera
  index in the low 4 bits (``a & 0xF``, the h5 ``cam{k}`` index).

Alignment (``Generate_DHP19.m``; ``n`` is the Vicon length in microseconds, 10^4 per sample;
``t`` the polarity events' timestamps in file order):

* no special event (S14 session 5 mov 3): from ``t[0]`` to ``t[-1]``;
* 1 (S5/session4/mov2, S16/session2/mov4): if it is nearer the end (measured from ``min(t)`` and
  ``max(t)``) it is the stop and the start is ``stop - n``, else it is the start and the stop is
  ``start + n``;
* 2 or 4 (two consecutive or equal events; four when three are equal: S4/session5/mov7,
  S12/session5/mov4): the first is the start or the stop, as for one event but measured from
  ``t[0]`` and ``t[-1]``; if the timestamps overflow (``t[-1] < t[0]``, S14 session 1 mov 1),
  from the first special event to ``max(t)``;
* 3 or 5: the first and the last special event;
* more than 5 (hundreds: S4/session3/mov4 and mov6, :data:`CORRUPTED_RECORDINGS`): skipped;
* start and stop are then cast to ``uint32`` (saturating at 0 and 2^32 - 1), and
  ``extract_from_aedat.m`` keeps the polarity events from the first with ``t > start`` to the
  last with ``t < stop`` (both in file order), or, when the timestamps overflow, from the first
  with ``t == start`` to the first with ``t == stop``.

Then (``extract_from_aedat.m``) events with ``x > 345``, ``y > 259`` or a camera above 3 are
removed, x and y are flipped (``X = (346 - x) + cam * 346``, ``Y = 260 - y``, 1-based; the h5
files store ``346 - x`` and ``260 - y``, 0-based pixel ``u = 345 - x``, ``v = 259 - y``), and
DHP19's filters run on the cut recording in file order and on the AEDAT clock: hot pixels,
background activity, IR masks (:mod:`hybrid_pose_ros.events.dhp19_filters`; the background
filter runs on the multiplexed 1384-wide image, as BackgroundFilter.m does, so an event at a
camera's edge column also supports the next camera's edge column).

Labels. ``ExtractEventsToFramesAndMeanLabels.m`` gives a frame ending at ``t`` the Vicon samples
up to index ``round((t - start) / 10^4) + 1`` (1-based; MATLAB's ``uint32 * double`` rounds):
Vicon sample ``j`` (0-based) is the pose at ``j * 10`` ms after the start. The package's layout
(and the paper's loaders) read label ``k`` as the pose at ``(k + 1) * 10`` ms, so label ``k`` is
Vicon sample ``k + 1`` and the sample at 0 ms is not written. Event times are ``t - start``
microseconds.

Differences from the paper's Python code are listed in ``docs/dhp19.md``: the labels' time
origin above; DHP19's filters (on by default here; the paper's code applies none and does not
say how its h5 files were made); events sorted by time within each camera (DHP19 keeps file
order; the h5 layout's ``ms_to_idx`` needs time order); S16 session 2 mov 1, whose timestamps
are not sequential, is converted (DHP19 does) and left out of the split (the paper does,
:data:`hybrid_pose_ros.data.dhp19.EXCLUDED_RECORDINGS`, where the split lives).
"""
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
import hashlib
import json
import os
import re
import sys
import time
from typing import Any, Callable, Iterable, Sequence

import h5py
from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.cameras import camera_center_from_matrix, DHP19_P_MATRICES
from hybrid_pose_ros.events import dhp19_filters
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
import numpy as np

NUM_CAMERAS = dhp19_filters.NUM_CAMERAS
SUBJECTS = tuple(range(1, 18))
MOVEMENTS_PER_SESSION = {1: 8, 2: 6, 3: 6, 4: 6, 5: 7}
"""Movements of each DHP19 recording session (``Generate_DHP19.m``); 33 per subject."""
VICON_PERIOD_US = 10_000
"""Vicon runs at 100 Hz; ``Generate_DHP19.m``'s ``1e4`` factor."""
VICON_JOINTS = ('head', 'shoulderR', 'shoulderL', 'elbowR', 'elbowL', 'hipR', 'hipL', 'handR',
                'handL', 'kneeR', 'kneeL', 'footR', 'footL')
"""The fields of ``XYZPOS``, in the order of the 13 DHP19 joints (the package's order)."""
MAX_SYNC_EVENTS = 5
"""Recordings with more special events are corrupted and skipped (``Generate_DHP19.m``)."""
CORRUPTED_RECORDINGS = ('S4_session3_mov4', 'S4_session3_mov6')
"""The recordings that ``Generate_DHP19.m`` skips for their hundreds of special events (the
rule is the count, not the name)."""

# the DAVIS address of ImportAedatDataVersion1or2.m
APS_OR_IMU_MASK = 0x80000000
SPECIAL_MASK = 0x400
POLARITY_MASK = 0x800
Y_MASK, Y_SHIFT = 0x7FC00000, 22
X_MASK, X_SHIFT = 0x003FF000, 12
CAMERA_MASK = 0xF
HEADER_PREFIX = b'#!AER-DAT'
UINT32_MAX = 2**32 - 1

FORMAT_VERSION = 1
"""Version of the conversion written into every events file (``dhp19_raw`` attribute)."""
MANIFEST = 'dhp19_raw.json'
CACHE_ENV = 'HYBRID_POSE_DHP19_CACHE'
"""Where training and evaluation put a converted raw release (default
``~/.cache/hybrid_pose_ros/dhp19``)."""


class AlignmentError(ValueError):
    """A recording that DHP19's alignment cannot cut (MATLAB would stop with an error)."""


class SkippedRecording(Exception):
    """A recording that DHP19's code skips (more than five special events: corrupted)."""


@dataclass
class Aedat2:
    """The events of an AEDAT 1.x/2.x file as stored: addresses and timestamps (``uint32``)."""

    version: float
    header: list[str]
    addresses: np.ndarray
    timestamps: np.ndarray

    @property
    def chip(self) -> str | None:
        """Return the ``AEChip`` class named in the header, if any."""
        for line in self.header:
            text = line.lstrip('#').strip()
            if text.startswith('AEChip: '):
                return text[len('AEChip: '):]
        return None


def read_aedat2(path: str | os.PathLike, skip_first_event: bool = True) -> Aedat2:
    """
    Read an AEDAT 2.x file (``ImportAedatHeaders.m``, ``ImportAedatDataVersion1or2.m``).

    Header lines are the lines starting with ``#``; the data that follow are big-endian
    ``uint32`` ``(address, timestamp)`` pairs (a trailing partial pair is ignored). As
    ImportAedat.m, the file's first event is not returned unless ``skip_first_event`` is false.
    """
    header: list[str] = []
    with open(path, 'rb') as f:
        data_start = 0
        version = 1.0
        first = True
        while f.peek(1)[:1] == b'#':
            line = f.readline()
            if first and line.startswith(HEADER_PREFIX):
                version = float(re.match(rb'[0-9.]+', line[len(HEADER_PREFIX):]).group(0))
            first = False
            header.append(line.decode('latin-1').rstrip('\r\n'))
            data_start = f.tell()
        size = os.fstat(f.fileno()).st_size
    if not 2.0 <= version < 3.0:
        raise ValueError(f'{path}: AEDAT {version:g} file; DHP19 recordings are AEDAT 2.0')
    count = (size - data_start) // 8
    pairs = np.memmap(path, dtype='>u4', mode='r', offset=data_start, shape=(count, 2)) \
        if count else np.zeros((0, 2), dtype='>u4')
    first_event = 1 if skip_first_event and count else 0
    return Aedat2(version, header, pairs[first_event:, 0].astype(np.uint32),
                  pairs[first_event:, 1].astype(np.uint32))


@dataclass
class DecodedEvents:
    """Polarity events as DHP19 decodes them (raw sensor address) and the special events."""

    t: np.ndarray
    """Timestamps (int64, the AEDAT clock), file order."""
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    cam: np.ndarray
    special_t: np.ndarray
    """Timestamps of the special (sync) events (int64), file order."""


def decode_addresses(addresses: np.ndarray, timestamps: np.ndarray) -> DecodedEvents:
    """Split DAVIS addresses into polarity and special events (ImportAedatDataVersion1or2.m)."""
    addresses = np.asarray(addresses, dtype=np.uint32)
    timestamps = np.asarray(timestamps, dtype=np.uint32)
    not_aps = (addresses & APS_OR_IMU_MASK) == 0
    special = (addresses & SPECIAL_MASK) != 0
    polarity = not_aps & ~special
    special &= not_aps
    a = addresses[polarity]
    return DecodedEvents(
        t=timestamps[polarity].astype(np.int64),
        x=((a & X_MASK) >> X_SHIFT).astype(np.uint16),
        y=((a & Y_MASK) >> Y_SHIFT).astype(np.uint16),
        p=((a & POLARITY_MASK) != 0).astype(np.uint8),
        cam=(a & CAMERA_MASK).astype(np.uint8),
        special_t=timestamps[special].astype(np.int64))


@dataclass(frozen=True)
class SyncSpan:
    """The span of a recording that has Vicon labels, as ``Generate_DHP19.m`` finds it."""

    case: str
    """``no_sync``, ``one_is_start``, ``one_is_stop``, ``pair_is_start``, ``pair_is_stop``,
    ``overflow``, ``start_stop`` or ``corrupted``."""
    num_special: int
    start: int
    stop: int
    overflow: bool


def sync_span(t: np.ndarray, special_t: np.ndarray, num_vicon_samples: int) -> SyncSpan:
    """
    Return the start and stop times of a recording from its special events (Generate_DHP19.m).

    ``t`` are the polarity events' timestamps in file order. Raises :class:`SkippedRecording`
    for more than :data:`MAX_SYNC_EVENTS` special events; start and stop are saturated to
    ``uint32`` as ExtractEventsToFramesAndMeanLabels.m does.
    """
    t = np.asarray(t, dtype=np.int64)
    special_t = np.asarray(special_t, dtype=np.int64)
    if len(t) == 0:
        raise AlignmentError('no polarity events')
    n = int(num_vicon_samples) * VICON_PERIOD_US
    count = len(special_t)
    first, last = int(t[0]), int(t[-1])
    overflow = last < first
    if count == 0:
        case, start, stop = 'no_sync', first, last
    elif count == 1:
        s = int(special_t[0])
        if s - int(t.min()) > int(t.max()) - s:
            case, start, stop = 'one_is_stop', s - n, s
        else:
            case, start, stop = 'one_is_start', s, s + n
    elif count in (2, 4):
        s = int(special_t[0])
        if overflow:
            case, start, stop = 'overflow', s, int(t.max())
        elif s - first > last - s:
            case, start, stop = 'pair_is_stop', s - n, s
        else:
            case, start, stop = 'pair_is_start', s, s + n
    elif count in (3, 5):
        case, start, stop = 'start_stop', int(special_t[0]), int(special_t[-1])
    else:
        raise SkippedRecording(f'{count} special events (corrupted recording)')
    return SyncSpan(case, count, min(max(start, 0), UINT32_MAX), min(max(stop, 0), UINT32_MAX),
                    overflow)


def cut_indices(t: np.ndarray, span: SyncSpan) -> tuple[int, int]:
    """
    Return ``[i0, i1)`` of the polarity events kept by extract_from_aedat.m.

    From the first event with ``t > start`` to the last with ``t < stop``; when the timestamps
    overflow (``t[-1] <= t[0]``: the .m file tests ``t[-1] > t[0]``), from the first with
    ``t == start`` to the first with ``t == stop``.
    """
    t = np.asarray(t, dtype=np.int64)
    if t[-1] > t[0]:
        after, before = t > span.start, t < span.stop
        if not after.any() or not before.any():
            raise AlignmentError(f'no event after {span.start} or before {span.stop}')
        return int(np.argmax(after)), len(t) - int(np.argmax(before[::-1]))
    at_start, at_stop = t == span.start, t == span.stop
    if not at_start.any() or not at_stop.any():
        raise AlignmentError(f'overflowing timestamps: no event at exactly {span.start} and '
                             f'{span.stop}')
    return int(np.argmax(at_start)), int(np.argmax(at_stop)) + 1


def filter_mask(u: np.ndarray, v: np.ndarray, cam: np.ndarray, t: np.ndarray,
                hot_pixels: bool = True, background: bool = True,
                ir_masks: bool = True) -> np.ndarray:
    """
    Return DHP19's keep mask for a cut recording's events (extract_from_aedat.m).

    ``u``, ``v`` are 0-based sensor pixels after the flips, ``cam`` the camera (0-3), ``t`` the
    AEDAT timestamps, all in file order. The filters of
    :mod:`hybrid_pose_ros.events.dhp19_filters` run in DHP19's order; the hot-pixel and IR-mask
    filters camera by camera (their pixels are per camera), the background-activity filter on
    the multiplexed image (width ``4 * 346``), as BackgroundFilter.m.
    """
    keep = np.ones(len(t), dtype=bool)
    if hot_pixels:
        keep &= _per_camera(lambda events, c: dhp19_filters.hot_pixel_filter(events), u, v, cam,
                            keep)
    if background:
        index = np.flatnonzero(keep)
        column = (u[index].astype(np.int64) + cam[index].astype(np.int64) * DHP19_WIDTH)
        # pylint: disable=protected-access
        passed = dhp19_filters._background_keep(
            column.astype(np.uint16), v[index], np.ascontiguousarray(t[index], dtype=np.int64),
            int(dhp19_filters.BACKGROUND_DT_US), NUM_CAMERAS * DHP19_WIDTH, DHP19_HEIGHT,
            True, True)
        keep[index[~passed]] = False
    if ir_masks:
        keep &= _per_camera(dhp19_filters.ir_mask_filter, u, v, cam, keep)
    return keep


def _per_camera(fn: Callable[[np.ndarray, int], np.ndarray], u: np.ndarray, v: np.ndarray,
                cam: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Run a per-camera filter on the kept events; ``t`` carries each event's index back."""
    out = np.zeros(len(keep), dtype=bool)
    for c in range(NUM_CAMERAS):
        index = np.flatnonzero(keep & (cam == c))
        if len(index):
            passed = fn(make_events(index, u[index], v[index], np.zeros(len(index))), c)
            out[passed['t']] = True
    return out


def read_vicon(path: str | os.PathLike) -> np.ndarray:
    """
    Return the Vicon joints of a DHP19 ``.mat`` file as ``(N, 3, 13)`` millimetres.

    DHP19's code loads them with MATLAB's ``load``, which reads every MAT version; neither its
    code nor its README says which version the release uses. Both are read: MAT v5/v7 with
    ``scipy.io`` and v7.3 (HDF5) with h5py. The joints are the fields of the struct ``XYZPOS``
    (fields at the top level are accepted too), each ``(N, 3)``.
    """
    tracks = _read_mat_v73(path) if h5py.is_hdf5(path) else _read_mat_v5(path)
    missing = [j for j in VICON_JOINTS if j not in tracks]
    if missing:
        raise ValueError(f'{path}: XYZPOS lacks {missing}')
    arrays = [np.asarray(tracks[j], dtype=np.float64).reshape(-1, 3) for j in VICON_JOINTS]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f'{path}: joint tracks differ in length: {sorted(lengths)}')
    return np.stack(arrays, axis=-1)


def _read_mat_v5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    from scipy.io import loadmat
    content = loadmat(path, simplify_cells=True)
    struct = content.get('XYZPOS', content)
    return {k: v for k, v in struct.items() if not k.startswith('__')}


def _read_mat_v73(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with h5py.File(path, 'r') as f:
        group = f['XYZPOS'] if 'XYZPOS' in f else f
        # MATLAB writes column-major arrays: an (N, 3) track is stored as (3, N)
        return {k: np.asarray(group[k]).T for k in group if isinstance(group[k], h5py.Dataset)}


def vicon_labels(vicon_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the labels of the package's layout from the Vicon samples ``(N, 3, 13)``.

    Vicon sample ``j`` is the pose at ``j * 10`` ms after the start (DHP19's alignment); label
    ``k`` of the layout is the pose at ``(k + 1) * 10`` ms, i.e. sample ``k + 1``. Returns
    ``(N - 1, 3, 13)`` poses and their times (us).
    """
    poses = np.asarray(vicon_mm, dtype=np.float64)[1:]
    return poses, (np.arange(len(poses), dtype=np.int64) + 1) * VICON_PERIOD_US


@dataclass
class Recording:
    """One raw recording cut, filtered and ready to write in the package's layout."""

    events: dict[int, np.ndarray]
    """h5 camera index -> :data:`EVENT_DTYPE` events, 0-based pixels, ``t`` us from the start,
    time-sorted."""
    poses_mm: np.ndarray
    label_times_us: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def load_recording(aedat_path: str | os.PathLike, vicon_path: str | os.PathLike,
                   cameras: Iterable[int] = range(NUM_CAMERAS), filters: bool = True,
                   skip_first_event: bool = True) -> Recording:
    """
    Read, cut, flip and filter one raw recording as DHP19's code does.

    Raises :class:`SkippedRecording` for corrupted recordings and :class:`AlignmentError` where
    DHP19's MATLAB code would stop.
    """
    vicon = read_vicon(vicon_path)
    raw = read_aedat2(aedat_path, skip_first_event)
    events_in_file = len(raw.addresses)
    decoded = decode_addresses(raw.addresses, raw.timestamps)
    del raw
    span = sync_span(decoded.t, decoded.special_t, len(vicon))
    i0, i1 = cut_indices(decoded.t, span)
    t, x, y = decoded.t[i0:i1], decoded.x[i0:i1], decoded.y[i0:i1]
    p, cam = decoded.p[i0:i1], decoded.cam[i0:i1]
    inside = (x <= DHP19_WIDTH - 1) & (y <= DHP19_HEIGHT - 1) & (cam <= NUM_CAMERAS - 1)
    t, x, y, p, cam = t[inside], x[inside], y[inside], p[inside], cam[inside]
    u = (DHP19_WIDTH - 1 - x.astype(np.int64)).astype(np.uint16)
    v = (DHP19_HEIGHT - 1 - y.astype(np.int64)).astype(np.uint16)
    keep = filter_mask(u, v, cam, t) if filters else np.ones(len(t), dtype=bool)
    info: dict[str, Any] = {
        'case': span.case, 'special_events': span.num_special, 'start_us': span.start,
        'stop_us': span.stop, 'overflow': span.overflow, 'events_in_file': events_in_file,
        'polarity_events': len(decoded.t), 'events_cut': i1 - i0,
        'events_outside_sensor': int((~inside).sum()), 'events_kept': int(keep.sum()),
        'vicon_samples': len(vicon), 'filters': bool(filters),
        'skip_first_event': bool(skip_first_event), 'out_of_order': {}}
    out = {}
    for c in cameras:
        sel = keep & (cam == c)
        events = make_events(t[sel] - span.start, u[sel], v[sel], p[sel])
        late = int(np.count_nonzero(np.diff(events['t']) < 0))
        if late:
            events = events[np.argsort(events['t'], kind='stable')]
        info['out_of_order'][str(c)] = late
        out[int(c)] = events
    poses, times = vicon_labels(vicon)
    return Recording(out, poses, times, info)


@dataclass(frozen=True)
class RawRecording:
    """The two files of one recording in the raw release."""

    subject: int
    session: int
    movement: int
    aedat: str
    vicon: str

    @property
    def name(self) -> str:
        """``S{subject}_session{session}_mov{movement}``, the layout's name."""
        return dhp19.recording_name(self.subject, self.session, self.movement)


def is_raw_release(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a DHP19 download (``DVS_movies/`` and ``Vicon_data/``)."""
    return (os.path.isdir(os.path.join(folder, 'DVS_movies'))
            and os.path.isdir(os.path.join(folder, 'Vicon_data')))


def find_recordings(root: str | os.PathLike,
                    subjects: Iterable[int] | None = None) -> list[RawRecording]:
    """Return the recordings of a raw release in Generate_DHP19.m's order (missing skipped)."""
    chosen = set(SUBJECTS if subjects is None else subjects)
    out = []
    for subject in SUBJECTS:
        if subject not in chosen:
            continue
        for session, movements in MOVEMENTS_PER_SESSION.items():
            for movement in range(1, movements + 1):
                aedat = os.path.join(root, 'DVS_movies', f'S{subject}', f'session{session}',
                                     f'mov{movement}.aedat')
                if os.path.isfile(aedat):
                    vicon = os.path.join(root, 'Vicon_data',
                                         f'S{subject}_{session}_{movement}.mat')
                    out.append(RawRecording(subject, session, movement, aedat, vicon))
    return out


def _attrs_of(path: str) -> dict[str, Any] | None:
    try:
        with h5py.File(path, 'r') as f:
            raw = f.attrs.get('dhp19_raw')
    except OSError:
        return None
    return json.loads(raw) if raw is not None else None


def is_converted(out: str | os.PathLike, name: str, cameras: Iterable[int],
                 filters: bool) -> bool:
    """Whether ``out`` holds ``name`` converted with these filters and at least ``cameras``."""
    path = dhp19.events_path(str(out), name)
    if not (os.path.exists(path) and os.path.exists(dhp19.labels_path(str(out), name))):
        return False
    attrs = _attrs_of(path)
    return (attrs is not None and attrs.get('version') == FORMAT_VERSION
            and attrs.get('filters') == bool(filters)
            and set(cameras) <= set(attrs.get('cameras', [])))


def write_recording(out: str | os.PathLike, name: str, recording: Recording) -> None:
    """
    Write a recording's event and label files, atomically.

    Both are written to temporary names and renamed, the events file last: an events file is
    only ever complete, and its ``dhp19_raw`` attribute (the conversion's settings and counts)
    marks the recording done.
    """
    out = str(out)
    os.makedirs(out, exist_ok=True)
    events_path, labels_path = dhp19.events_path(out, name), dhp19.labels_path(out, name)
    tmp_events, tmp_labels = events_path + '.part', labels_path + '.part'
    dhp19.write_labels(tmp_labels, recording.poses_mm, recording.label_times_us)
    writer = dhp19.EventsWriter(tmp_events)
    for cam, events in sorted(recording.events.items()):
        writer.append(cam, events)
    writer.close()
    attrs = dict(recording.info, version=FORMAT_VERSION, cameras=sorted(recording.events))
    with h5py.File(tmp_events, 'a') as f:
        f.attrs['dhp19_raw'] = json.dumps(attrs)
    os.replace(tmp_labels, labels_path)
    os.replace(tmp_events, events_path)


def write_release_cameras(root: str | os.PathLike, out: str | os.PathLike) -> str:
    """
    Write ``P1.npy`` .. ``P4.npy`` and ``camera_positions.npy`` into ``out``; return the source.

    The matrices come from ``P{n}.npy`` in the release (``root``, ``root/P_matrices``) when all
    four are there, else from the package (:data:`DHP19_P_MATRICES`, the release's values).
    """
    for folder in (os.path.join(root, 'P_matrices'), str(root)):
        files = {p: os.path.join(folder, f'P{p}.npy') for p in range(1, 5)}
        if all(os.path.isfile(f) for f in files.values()):
            matrices = {p: np.load(f) for p, f in files.items()}
            source = folder
            break
    else:
        matrices, source = dict(DHP19_P_MATRICES), 'hybrid_pose_ros.data.cameras'
    dhp19.write_cameras(str(out), matrices,
                        {p: camera_center_from_matrix(m) for p, m in matrices.items()})
    return source


def convert_one(recording: RawRecording, out: str, cameras: Sequence[int],
                filters: bool) -> dict[str, Any]:
    """Convert one recording (unless done); return its manifest entry. Never raises."""
    started = time.monotonic()
    if is_converted(out, recording.name, cameras, filters):
        return {'status': 'done', **(_attrs_of(dhp19.events_path(out, recording.name)) or {})}
    old = _attrs_of(dhp19.events_path(out, recording.name)) or {}
    if old.get('filters') == bool(filters) and old.get('version') == FORMAT_VERSION:
        cameras = sorted(set(cameras) | set(old.get('cameras', [])))
    try:
        if not os.path.isfile(recording.vicon):
            raise FileNotFoundError(f'no Vicon file {recording.vicon}')
        loaded = load_recording(recording.aedat, recording.vicon, cameras, filters)
        write_recording(out, recording.name, loaded)
    except SkippedRecording as reason:
        return {'status': 'skipped', 'reason': str(reason)}
    except (AlignmentError, OSError, ValueError) as error:
        return {'status': 'error', 'reason': f'{type(error).__name__}: {error}'}
    return {'status': 'converted', 'seconds': round(time.monotonic() - started, 2),
            **loaded.info, 'cameras': sorted(loaded.events)}


def _write_json(path: str, content: dict[str, Any]) -> None:
    with open(path + '.part', 'w') as f:
        json.dump(content, f, indent=1, sort_keys=True)
    os.replace(path + '.part', path)


def convert_release(root: str | os.PathLike, out: str | os.PathLike,
                    cameras: Iterable[int] = range(NUM_CAMERAS), filters: bool = True,
                    subjects: Iterable[int] | None = None,
                    names: Iterable[str] | None = None, jobs: int = 1, progress: bool = True,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """
    Convert a raw DHP19 release into the package's layout in ``out``; return the manifest.

    Resumable: finished recordings (events file with the same settings and cameras) are
    skipped, and every file is written atomically; a recording converted for fewer cameras is
    converted again with the union. Corrupted recordings (more than five special events) are
    recorded as ``skipped``, and not read again; failures as ``error`` (the others go on).
    ``jobs`` recordings are converted in parallel (each needs about 70 bytes of memory per
    event of its file: 2.1 GB for 30 M events). Writes ``dhp19_raw.json`` (per recording:
    status, alignment case, counts) and the P matrices.
    """
    root, out = str(root), str(out)
    cameras = sorted({int(c) for c in cameras})
    if not cameras or not set(cameras) <= set(range(NUM_CAMERAS)):
        raise ValueError(f'cameras must be among 0..{NUM_CAMERAS - 1}, got {cameras}')
    if not is_raw_release(root):
        raise FileNotFoundError(f'{root} is not a DHP19 download (no DVS_movies/ and '
                                'Vicon_data/)')
    os.makedirs(out, exist_ok=True)
    recordings = find_recordings(root, subjects)
    if names is not None:
        wanted = set(names)
        recordings = [r for r in recordings if r.name in wanted]
    manifest_path = os.path.join(out, MANIFEST)
    manifest: dict[str, Any] = {'recordings': {}}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    manifest.update(source=os.path.abspath(root), format_version=FORMAT_VERSION,
                    cameras_source=write_release_cameras(root, out))
    entries = manifest.setdefault('recordings', {})
    todo = [r for r in recordings
            if not (entries.get(r.name, {}).get('status') == 'skipped'
                    or is_converted(out, r.name, cameras, filters))]
    done = len(recordings) - len(todo)
    if done:
        log(f'dhp19-raw: {done} of {len(recordings)} recordings already done, {len(todo)} to go')
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=sum(os.path.getsize(r.aedat) for r in todo) // 8, unit='ev',
                   unit_scale=True, desc='dhp19-raw', smoothing=0.1)
    started = time.monotonic()
    events_done = 0

    def record(rec: RawRecording, entry: dict[str, Any]) -> None:
        nonlocal events_done
        entries[rec.name] = entry
        _write_json(manifest_path, manifest)
        events_done += os.path.getsize(rec.aedat) // 8
        if bar is not None:
            bar.update(os.path.getsize(rec.aedat) // 8)
            bar.set_postfix_str(f'{rec.name} {entry["status"]}')
        if entry['status'] != 'converted':
            log(f'dhp19-raw: {rec.name}: {entry["status"]} ({entry.get("reason", "")})')

    try:
        if jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(jobs) as pool:
                futures = [(r, pool.submit(convert_one, r, out, cameras, filters)) for r in todo]
                for rec, future in futures:
                    record(rec, future.result())
        else:
            for rec in todo:
                record(rec, convert_one(rec, out, cameras, filters))
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.monotonic() - started
    statuses = [entries.get(r.name, {}).get('status', 'done') for r in recordings]
    summary = {s: statuses.count(s) for s in sorted(set(statuses))}
    if todo:
        log(f'dhp19-raw: {len(todo)} recordings, {events_done / 1e6:.1f} M events in '
            f'{elapsed:.0f} s ({events_done / max(elapsed, 1e-9) / 1e6:.2f} M events/s); '
            f'{summary}')
    manifest['summary'] = summary
    _write_json(manifest_path, manifest)
    return manifest


def converted_with_filters(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a conversion of a raw release made with DHP19's filters."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            entries = json.load(f).get('recordings', {}).values()
    except (OSError, ValueError):
        return False
    written = [e for e in entries if e.get('status') in ('converted', 'done')]
    return bool(written) and all(e.get('filters') is True for e in written)


def split_subjects(splits: Iterable[str]) -> list[int]:
    """Subjects of the paper's splits (``train``: 1-12, ``test``: 13-17; dhp19.py)."""
    subjects: list[int] = []
    for split in splits:
        subjects += list({'train': dhp19.TRAIN_SUBJECTS, 'test': dhp19.TEST_SUBJECTS}[split])
    return sorted(set(subjects))


def cache_folder(root: str | os.PathLike, filters: bool = True,
                 cache_dir: str | os.PathLike | None = None) -> str:
    """Where :func:`resolve_data_folders` converts the raw release ``root``."""
    base = cache_dir or os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser('~'), '.cache', 'hybrid_pose_ros', 'dhp19')
    absolute = os.path.abspath(root)
    tag = hashlib.sha1(absolute.encode()).hexdigest()[:8]
    return os.path.join(str(base), f'{os.path.basename(absolute.rstrip(os.sep))}-{tag}',
                        'filtered' if filters else 'unfiltered')


def resolve_data_folders(folders: Sequence[str], cameras: Iterable[int],
                         splits: Iterable[str] = ('train', 'test'), filters: bool = True,
                         cache_dir: str | None = None, progress: bool = True,
                         log: Callable[[str], None] = print) -> list[str]:
    """
    Replace every raw DHP19 release among ``folders`` by its converted copy (converting it).

    Used by training and evaluation so that ``--data DHP19_ROOT`` works: the subjects of
    ``splits`` and the given cameras are converted (with DHP19's filters unless ``filters`` is
    false) into :func:`cache_folder`, resumably; other folders pass unchanged. Under
    ``torchrun`` with several processes the conversion must be done beforehand.
    """
    resolved = []
    for folder in folders:
        if not is_raw_release(folder):
            resolved.append(folder)
            continue
        target = cache_folder(folder, filters, cache_dir)
        log(f'{folder} is a raw DHP19 release; converted copy in {target}')
        if int(os.environ.get('WORLD_SIZE', '1')) > 1:
            pending = [r.name for r in find_recordings(folder, split_subjects(splits))
                       if not is_converted(target, r.name, cameras, filters)]
            if pending:
                raise RuntimeError(f'{len(pending)} recordings of {folder} are not converted; '
                                   f'run hybrid_pose_convert dhp19-raw {folder} {target} first')
        else:
            convert_release(folder, target, cameras, filters, split_subjects(splits),
                            progress=progress, log=log)
        resolved.append(target)
    return resolved


def add_convert_arguments(parser) -> None:
    """Add the arguments of ``hybrid_pose_convert dhp19-raw`` to an argparse parser."""
    parser.add_argument('root', help='the DHP19 download (DVS_movies/, Vicon_data/)')
    parser.add_argument('out', help='output folder (created; resumes where it stopped)')
    parser.add_argument('--cameras', type=int, nargs='+', default=list(range(NUM_CAMERAS)),
                        help='h5 camera indices to write (default all four; the paper uses '
                        '2 and 3)')
    parser.add_argument('--no-filters', action='store_true',
                        help="without DHP19's hot-pixel, background-activity and IR-mask "
                        'filters')
    parser.add_argument('--subjects', type=int, nargs='+', help='only these subjects')
    parser.add_argument('--recordings', nargs='+', metavar='NAME',
                        help='only these recordings (e.g. S13_session1_mov1)')
    parser.add_argument('--jobs', type=int, default=1, help='recordings converted in parallel')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')


def convert_command(args) -> int:
    """Run ``hybrid_pose_convert dhp19-raw``; return the exit status (1 if any error)."""
    try:
        manifest = convert_release(args.root, args.out, args.cameras, not args.no_filters,
                                   args.subjects, args.recordings, args.jobs, not args.quiet)
    except (FileNotFoundError, ValueError) as error:
        print(f'hybrid_pose_convert: {error}', file=sys.stderr)
        return 2
    print(f'dhp19-raw: {manifest["summary"]} in {args.out}')
    return 1 if manifest['summary'].get('error') else 0
