# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
The raw DHP19 release (AEDAT 2.0 + Vicon .mat) read, aligned and filtered as DHP19's MATLAB code.

The files are written here by a writer that follows DHP19's MATLAB code (``read_aedat/`` and
``generate_DHP19/`` of SensorsINI/DHP19), not the package's reader, and every expectation is
either spelled out by hand or computed by :func:`matlab_generate`, a line-by-line Python
transcription of ``ImportAedat*.m``, ``Generate_DHP19.m`` and ``extract_from_aedat.m`` with its
three filters (1-based indices, MATLAB's integer saturation), which shares no code with the
package.
"""
import collections
import json
import os
import pathlib
import re
import sys
import time

import h5py
from helpers.processes import ros_command, SpinningNode, start_process
from helpers.streams import moving_blob_events, offline_reference, small_checkpoint
from hybrid_pose_ros.data import dhp19, dhp19_raw
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.ros import codecs
from hybrid_pose_ros.ros.convert import main as convert_main
from hybrid_pose_ros.ros.interfaces import event_typestore
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
import scipy.io

# ---------------------------------------------------------------------------------------------
# The writer: AEDAT 2.0 as jAER writes it and ImportAedatDataVersion1or2.m decodes it.
# In the 32-bit DAVIS address: bit 32 (1-based) set = APS/IMU; bit 11 set = special event;
# yMask 7FC00000 >> 22, xMask 003FF000 >> 12, polarity = bitget(addr, 12), camera = addr & 0xF.

SX, SY, NBCAM = 346, 260, 4
APS = 0x80000000
IMU = 0x800
SPECIAL = 0x400
HEADER = (b'#!AER-DAT2.0\r\n',
          b'# This is a raw AE data file - do not edit\r\n',
          b'# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each '
          b'event\r\n',
          b'# Timestamps tick is 1 us\r\n',
          b'# created Mon Jan 01 00:00:00 CET 2018\r\n',
          b'# AEChip: ch.unizh.ini.jaer.projects.multitracking.MultiDavis346BCameraChip\r\n')
JOINTS = ('head', 'shoulderR', 'shoulderL', 'elbowR', 'elbowL', 'hipR', 'hipL', 'handR',
          'handL', 'kneeR', 'kneeL', 'footR', 'footL')
NOT_READ = (SPECIAL, 0)
"""ImportAedat.m seeks ``8 * startEvent`` (startEvent = 1) past the data start: the file's first
event is never read. The writer puts this special event there; were it read, the special-event
case of every recording would change."""


def polarity(x, y, pol, cam):
    """Return the address of a polarity event."""
    return (int(y) << 22) | (int(x) << 12) | (int(pol) << 11) | int(cam)


def write_aedat(path, addresses, timestamps, first=NOT_READ):
    """Write an AEDAT 2.0 file: the ASCII header, then big-endian uint32 (address, timestamp)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.empty((len(addresses) + 1, 2), dtype='>u4')
    data[0] = first
    data[1:, 0] = np.asarray(addresses, dtype=np.uint64)
    data[1:, 1] = np.asarray(timestamps, dtype=np.uint64)
    with open(path, 'wb') as f:
        f.write(b''.join(HEADER))
        f.write(data.tobytes())


def write_vicon(path, tracks, version='5'):
    """``XYZPOS`` with one (N, 3) mm track per joint, as MAT v5 (scipy) or v7.3 (HDF5)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tracks = np.asarray(tracks, dtype=np.float64)
    if version == '5':
        scipy.io.savemat(path, {'XYZPOS': {j: tracks[:, :, i] for i, j in enumerate(JOINTS)}})
        return
    with h5py.File(path, 'w', userblock_size=512) as f:
        group = f.create_group('XYZPOS')
        group.attrs['MATLAB_class'] = np.bytes_('struct')
        for i, joint in enumerate(JOINTS):
            # MATLAB is column-major: an (N, 3) array is stored as (3, N)
            data = group.create_dataset(joint, data=np.ascontiguousarray(tracks[:, :, i].T))
            data.attrs['MATLAB_class'] = np.bytes_('double')
    text = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 ' \
           b'HDF5 schema 1.00 .'
    with open(path, 'r+b') as f:
        f.write(text.ljust(116) + b'\x00' * 8 + b'\x00\x02IM')


def recording_paths(root, subject=13, session=1, movement=1):
    return (os.path.join(root, 'DVS_movies', f'S{subject}', f'session{session}',
                         f'mov{movement}.aedat'),
            os.path.join(root, 'Vicon_data', f'S{subject}_{session}_{movement}.mat'))


# ---------------------------------------------------------------------------------------------
# DHP19's MATLAB code, transcribed (1-based indices where MATLAB has them).

THR_HOT_PIXEL = 1 * 10**4
DT = 70000
MASKS = ((780, 810, 115, 145), (346 * 3 + 214, 346 * 3 + 221, 136, 144))


def uint32(value):
    """Round and saturate as MATLAB's ``uint32`` does."""
    return min(max(int(round(value)), 0), 2**32 - 1)


def import_aedat(path):
    """ImportAedatHeaders.m + ImportAedatDataVersion1or2.m (DAVIS, polarity and special)."""
    data = pathlib.Path(path).read_bytes()

    def fgets(pos):
        end = data.find(b'\n', pos)
        end = len(data) if end < 0 else end + 1
        return data[pos:end], end

    pointer = 0
    line, pos = fgets(0)
    while line[:1] == b'#':
        pointer = pos
        line, pos = fgets(pos)
    num_events = (len(data) - pointer) // 8
    start_event = 1
    addresses, stamps = [], []
    for k in range(start_event, num_events):          # fseek(pointer + 8 * startEvent)
        offset = pointer + 8 * k
        addresses.append(int.from_bytes(data[offset:offset + 4], 'big'))
        stamps.append(int.from_bytes(data[offset + 4:offset + 8], 'big'))
    pol = {'timeStamp': [], 'x': [], 'y': [], 'polarity': [], 'cam': []}
    special = []
    for a, t in zip(addresses, stamps):
        aps_or_imu = a & 0x80000000
        signal_or_special = a & 0x400
        if not aps_or_imu and signal_or_special:
            special.append(t)
        elif not aps_or_imu and not signal_or_special:
            pol['cam'].append(a & 0xF)
            pol['timeStamp'].append(t)
            pol['y'].append((a & 0x7FC00000) >> 22)
            pol['x'].append((a & 0x003FF000) >> 12)
            pol['polarity'].append((a >> (12 - 1)) & 1)
    return pol, special


def matlab_generate(aedat_path, vicon_samples, filters=True):
    """
    Generate_DHP19.m's special-event cases, then extract_from_aedat.m.

    Returns ``(startTime, events)`` with events ``(X, y, t, pol, cam)`` (1-based multiplexed
    coordinates, AEDAT clock), or None where Generate_DHP19.m skips the recording.
    """
    pol, special = import_aedat(aedat_path)
    events = pol['timeStamp']
    n = vicon_samples * 10000
    num = len(special)
    if num == 0:                                     # catch: no special field
        start, stop = events[0], events[-1]
    elif num == 1:
        if (special[0] - min(events)) > (max(events) - special[0]):
            stop = special[0]
            start = stop - n
        else:
            start = special[0]
            stop = start + n
    elif num in (2, 4):
        s = special[0]
        if events[-1] < events[0]:
            start, stop = s, max(events)
        elif (s - events[0]) > (events[-1] - s):
            stop = s
            start = stop - n
        else:
            start = s
            stop = start + n
    elif num in (3, 5):
        start, stop = special[0], special[-1]
    else:
        return None
    start, stop = uint32(start), uint32(stop)        # ExtractEventsToFramesAndMeanLabels.m
    # extract_from_aedat.m
    if events[-1] > events[0]:
        start_index = [i for i, e in enumerate(events, 1) if e > start][0]
        stop_index = [i for i, e in enumerate(events, 1) if e < stop][-1]
    else:
        start_index = [i for i, e in enumerate(events, 1) if e == start][0]
        stop_index = [i for i, e in enumerate(events, 1) if e == stop][0]
    rows = []
    for i in range(start_index, stop_index + 1):
        x, y_raw, cam = pol['x'][i - 1], pol['y'][i - 1], pol['cam'][i - 1]
        if x < 0 or x > SX - 1 or y_raw < 0 or y_raw > SY - 1 or cam < 0 or cam > NBCAM - 1:
            continue
        rows.append(((SX - x) + cam * SX, SY - y_raw, events[i - 1], pol['polarity'][i - 1],
                     cam))
    if filters:
        rows = hot_pixel_filter(rows)
        rows = background_filter(rows, SX * NBCAM, SY)
        for mask in MASKS:
            rows = mask_region_filter(rows, *mask)
    return start, rows


def hot_pixel_filter(rows):
    """HotPixelFilter.m: drop every event of a pixel with at least 10^4 events."""
    counts = collections.Counter((r[0], r[1]) for r in rows)
    return [r for r in rows if counts[(r[0], r[1])] < THR_HOT_PIXEL]


def background_filter(rows, xdim, ydim, dt=DT):
    """BackgroundFilter.m: ``uint32 - double`` saturates at 0; borders stamp nobody."""
    last = collections.defaultdict(float)
    kept = []
    for xs, ys, ts, p, cam in rows:
        delta = max(ts - last[(xs, ys)], 0)
        if not delta > dt:
            kept.append((xs, ys, ts, p, cam))
        if not (xs == 1 or xs == xdim or ys == 1 or ys == ydim):
            for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
                last[(xs + dx, ys + dy)] = ts
    return kept


def mask_region_filter(rows, xmin, xmax, ymin, ymax):
    """maskRegionFilter.m: drop events strictly inside the rectangle."""
    return [r for r in rows if not (xmin < r[0] < xmax and ymin < r[1] < ymax)]


def expected_events(start, rows, cam):
    """Return the h5 layout's events of ``cam``: 0-based pixel, ``t - start``, by time."""
    picked = [r for r in rows if r[4] == cam]
    out = np.zeros(len(picked), dtype=EVENT_DTYPE)
    for i, (x, y, t, p, _) in enumerate(picked):
        out[i] = (t - start, x - cam * SX - 1, y - 1, p)
    return out[np.argsort(out['t'], kind='stable')]


def assert_matches_matlab(recording, aedat, vicon_samples, filters=True, cameras=range(4)):
    reference = matlab_generate(aedat, vicon_samples, filters)
    start, rows = reference
    assert recording.info['start_us'] == start
    for cam in cameras:
        np.testing.assert_array_equal(recording.events[cam], expected_events(start, rows, cam))
    return reference


# ---------------------------------------------------------------------------------------------
# Scenes

def random_scene(rng, n, t0, t1, cams=range(4)):
    """Polarity events of random pixels, cameras and polarities at sorted times."""
    t = np.sort(rng.integers(t0, t1, n))
    x, y = rng.integers(0, SX, n), rng.integers(0, SY, n)
    cam, pol = rng.choice(list(cams), n), rng.integers(0, 2, n)
    return [polarity(*e) for e in zip(x, y, pol, cam)], list(t)


def with_specials(addresses, stamps, special_times):
    """Insert special events at their times (after polarity events of the same time)."""
    merged = sorted([(t, 0, a) for a, t in zip(addresses, stamps)]
                    + [(t, 1, SPECIAL) for t in special_times])
    return [a for _, _, a in merged], [t for t, _, _ in merged]


def write_recording(root, addresses, stamps, vicon_samples=300, subject=13, session=1,
                    movement=1, version='5', tracks=None, first=NOT_READ):
    aedat, vicon = recording_paths(root, subject, session, movement)
    write_aedat(aedat, addresses, stamps, first)
    if tracks is None:
        tracks = np.arange(vicon_samples, dtype=np.float64)[:, None, None] \
            + np.arange(13)[None, None, :] * 1000.0 + np.array([0.0, 0.1, 0.2])[None, :, None]
    write_vicon(vicon, tracks, version)
    return aedat, vicon


def load(aedat, vicon, filters=False):
    return dhp19_raw.load_recording(aedat, vicon, filters=filters)


# ---------------------------------------------------------------------------------------------
# Addresses, header, the skipped first event, flips

def test_address_bits_camera_index_and_flips(tmp_path):
    addresses = [polarity(345, 259, 1, 3), polarity(0, 0, 0, 0), polarity(17, 200, 1, 1),
                 polarity(346, 5, 1, 2),          # x beyond the sensor: removed
                 polarity(5, 260, 1, 2),          # y beyond the sensor: removed
                 polarity(5, 5, 1, 4), polarity(5, 5, 1, 15),   # cameras 4..15: removed
                 APS | polarity(1, 1, 0, 0), APS | IMU | (123 << 12),   # APS / IMU: ignored
                 polarity(100, 50, 0, 2)]
    stamps = [1_000_010 + i for i in range(len(addresses))]
    addresses, stamps = [polarity(9, 9, 0, 0)] + addresses + [polarity(9, 9, 0, 0)], \
        [1_000_000] + stamps + [1_000_100]
    aedat, vicon = write_recording(tmp_path, addresses, stamps)
    raw = dhp19_raw.read_aedat2(aedat)
    assert raw.version == 2.0 and raw.chip.endswith('MultiDavis346BCameraChip')
    assert len(raw.addresses) == len(addresses)       # the first (NOT_READ) event is skipped
    decoded = dhp19_raw.decode_addresses(raw.addresses, raw.timestamps)
    assert len(decoded.t) == len(addresses) - 2 and len(decoded.special_t) == 0
    assert list(decoded.cam[1:4]) == [3, 0, 1] and list(decoded.p[1:4]) == [1, 0, 1]
    assert list(decoded.x[1:4]) == [345, 0, 17] and list(decoded.y[1:4]) == [259, 0, 200]
    recording = load(aedat, vicon)
    # no special event: from the first to the last event, both excluded (t > start, t < stop)
    assert recording.info['case'] == 'no_sync' and recording.info['start_us'] == 1_000_000
    assert recording.info['events_outside_sensor'] == 4
    # X = (346 - x) + cam * 346 and Y = 260 - y (1-based): pixel (345 - x, 259 - y)
    assert recording.events[3][['x', 'y', 'p']].tolist() == [(0, 0, 1)]
    assert recording.events[0][['x', 'y', 'p']].tolist() == [(345, 259, 0)]
    assert recording.events[1][['x', 'y', 'p']].tolist() == [(328, 59, 1)]
    assert recording.events[2][['x', 'y', 'p']].tolist() == [(245, 209, 0)]
    assert recording.events[2]['t'].tolist() == [19]
    assert_matches_matlab(recording, aedat, 300, filters=False)
    # the h5 files store MATLAB's 1-based X - cam * 346 and Y
    out = tmp_path / 'out'
    dhp19_raw.write_recording(out, 'S13_session1_mov1', recording)
    with h5py.File(dhp19.events_path(str(out), 'S13_session1_mov1')) as f:
        assert (f['cam3_events/x'][0], f['cam3_events/y'][0]) == (1, 1)
        assert (f['cam0_events/x'][0], f['cam0_events/y'][0]) == (346, 260)


def test_the_first_event_of_a_file_is_never_read(tmp_path):
    rng = np.random.default_rng(1)
    addresses, stamps = with_specials(*random_scene(rng, 3000, 1_000_000, 5_000_000),
                                      [1_200_000, 1_200_001, 4_600_000])
    # the file's first event is a fourth special event: DHP19 sees three (start and stop)
    aedat, vicon = write_recording(tmp_path, addresses, stamps, first=(SPECIAL, 1_000_000))
    recording = load(aedat, vicon)
    assert recording.info['special_events'] == 3 and recording.info['case'] == 'start_stop'
    assert_matches_matlab(recording, aedat, 300, filters=False)
    raw = dhp19_raw.read_aedat2(aedat, skip_first_event=False)
    assert len(dhp19_raw.decode_addresses(raw.addresses, raw.timestamps).special_t) == 4


def test_not_an_aedat2_file_is_refused(tmp_path):
    path = tmp_path / 'x.aedat'
    path.write_bytes(b'#!AER-DAT3.1\r\n' + bytes(64))
    with pytest.raises(ValueError, match='AEDAT 3.1'):
        dhp19_raw.read_aedat2(path)


# ---------------------------------------------------------------------------------------------
# Every special-event case of Generate_DHP19.m

VICON = 300          # 3 s of Vicon at 100 Hz: n = 3,000,000 us
N_US = VICON * 10_000


@pytest.mark.parametrize('specials, case, start, stop', [
    ([], 'no_sync', None, None),
    ([4_800_000], 'one_is_stop', 4_800_000 - N_US, 4_800_000),        # S5/session4/mov2
    ([1_300_000], 'one_is_start', 1_300_000, 1_300_000 + N_US),
    ([1_300_000, 1_300_001], 'pair_is_start', 1_300_000, 1_300_000 + N_US),
    ([1_300_000, 1_300_000], 'pair_is_start', 1_300_000, 1_300_000 + N_US),
    ([4_800_000, 4_800_001], 'pair_is_stop', 4_800_000 - N_US, 4_800_000),
    ([1_300_000] * 3 + [1_300_001], 'pair_is_start', 1_300_000, 1_300_000 + N_US),  # S4/5/7
    ([1_300_000, 1_300_001, 4_500_000], 'start_stop', 1_300_000, 4_500_000),
    ([1_300_000] * 3 + [1_300_001, 4_500_000], 'start_stop', 1_300_000, 4_500_000),  # S5/1/4
    ([1_300_000] * 4 + [4_500_000], 'start_stop', 1_300_000, 4_500_000),
])
def test_special_event_cases(tmp_path, specials, case, start, stop):
    rng = np.random.default_rng(len(specials))
    addresses, stamps = with_specials(*random_scene(rng, 4000, 1_000_000, 5_000_000), specials)
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = load(aedat, vicon)
    info = recording.info
    assert (info['case'], info['special_events']) == (case, len(specials))
    if start is None:     # the first and last polarity events bound the recording
        polarity_stamps = [t for a, t in zip(addresses, stamps) if a != SPECIAL]
        start, stop = polarity_stamps[0], polarity_stamps[-1]
    assert (info['start_us'], info['stop_us']) == (start, stop)
    times = np.concatenate([e['t'] for e in recording.events.values()]) + start
    polarity_stamps = np.array([t for a, t in zip(addresses, stamps) if a != SPECIAL])
    assert len(times) == np.count_nonzero((polarity_stamps > start) & (polarity_stamps < stop))
    assert_matches_matlab(recording, aedat, VICON, filters=False)


@pytest.mark.parametrize('specials, case', [
    ([3_500_000], 'one_is_stop'), ([3_500_000, 3_500_001], 'pair_is_start')])
def test_one_sync_event_is_placed_by_min_and_max_two_by_first_and_last(tmp_path, specials, case):
    # the file's first polarity event is late (2.5 s): Generate_DHP19.m measures a single special
    # event from min(events) and max(events) (3.5 - 1.0 > 5.0 - 3.5: the stop) but two from
    # events(1) and events(end) (3.5 - 2.5 < 5.0 - 3.5: the start)
    rng = np.random.default_rng(11)
    addresses, stamps = random_scene(rng, 4000, 1_000_000, 5_000_000)
    stamps[0] = 2_500_000
    addresses, stamps = with_specials(addresses[1:], stamps[1:], specials)
    addresses, stamps = [polarity(1, 2, 1, 0)] + addresses, [2_500_000] + stamps
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = load(aedat, vicon)
    assert recording.info['case'] == case
    assert_matches_matlab(recording, aedat, VICON, filters=False)


def test_one_special_event_near_the_start_of_a_short_recording_saturates_at_zero(tmp_path):
    # stop - n below 0 is uint32(...) = 0 in ExtractEventsToFramesAndMeanLabels.m
    rng = np.random.default_rng(3)
    addresses, stamps = with_specials(*random_scene(rng, 2000, 100_000, 2_600_000),
                                      [2_500_000])
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = load(aedat, vicon)
    assert recording.info['case'] == 'one_is_stop' and recording.info['start_us'] == 0
    assert_matches_matlab(recording, aedat, VICON, filters=False)


def test_hundreds_of_special_events_skip_the_recording_for_good(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    addresses, stamps = with_specials(*random_scene(rng, 2000, 1_000_000, 3_000_000),
                                      list(range(1_100_000, 2_900_000, 2_500)))   # 720
    write_recording(tmp_path / 'root', addresses, stamps, subject=4, session=3, movement=4)
    assert matlab_generate(recording_paths(tmp_path / 'root', 4, 3, 4)[0], 300) is None
    manifest = dhp19_raw.convert_release(tmp_path / 'root', tmp_path / 'out', progress=False,
                                         log=lambda _: None)
    entry = manifest['recordings']['S4_session3_mov4']
    assert entry['status'] == 'skipped' and '720 special events' in entry['reason']
    assert 'S4_session3_mov4' in dhp19_raw.CORRUPTED_RECORDINGS
    assert not os.path.exists(dhp19.events_path(str(tmp_path / 'out'), 'S4_session3_mov4'))
    # a second run does not read it again
    monkeypatch.setattr(dhp19_raw, 'load_recording', lambda *a, **k: pytest.fail('read again'))
    manifest = dhp19_raw.convert_release(tmp_path / 'root', tmp_path / 'out', progress=False,
                                         log=lambda _: None)
    assert manifest['summary'] == {'skipped': 1}


def overflow_scene(rng, at_start=True):
    """S14 session 1 mov 1: the uint32 timestamps wrap around during the recording."""
    before = np.sort(rng.integers(2**32 - 2_000_000, 2**32, 3000))
    after = np.sort(rng.integers(0, 1_500_000, 2000))
    stamps = list(before) + list(after)
    x, y, cam, pol = (rng.integers(0, SX, 5000), rng.integers(0, SY, 5000),
                      rng.integers(0, 4, 5000), rng.integers(0, 2, 5000))
    addresses = [polarity(*e) for e in zip(x, y, pol, cam)]
    sync = int(before[200])
    if not at_start:      # no event at exactly the sync time
        sync += 1
        before[before == sync] = sync - 1
    # the two special events sit among the events, the first at an event's exact timestamp
    addresses = addresses[:201] + [SPECIAL, SPECIAL] + addresses[201:]
    stamps = stamps[:201] + [sync, sync + 1] + stamps[201:]
    return addresses, stamps, int(before[200]), int(before.max())


def test_timestamp_overflow_cuts_from_the_sync_event_to_the_largest_timestamp(tmp_path):
    rng = np.random.default_rng(5)
    addresses, stamps, start, largest = overflow_scene(rng)
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = load(aedat, vicon)
    assert recording.info['case'] == 'overflow' and recording.info['overflow']
    assert (recording.info['start_us'], recording.info['stop_us']) == (start, largest)
    events = np.concatenate(list(recording.events.values()))
    assert events['t'].min() == 0 and events['t'].max() == largest - start
    # from the first event at the start time to the first at the largest: 2800 events
    first = [i for i, t in enumerate(stamps) if t == start][0]
    last = [i for i, t in enumerate(stamps) if t == largest][0]
    assert len(events) == last - first + 1 - 2
    assert_matches_matlab(recording, aedat, VICON, filters=False)


def test_overflow_without_an_event_at_the_sync_time_is_an_error(tmp_path):
    # find(events == startTime) is empty: MATLAB stops; so does the reader, with a message
    rng = np.random.default_rng(6)
    addresses, stamps, _, _ = overflow_scene(rng, at_start=False)
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    with pytest.raises(dhp19_raw.AlignmentError, match='overflowing timestamps'):
        load(aedat, vicon)


def test_out_of_order_timestamps_are_kept_and_sorted_per_camera(tmp_path):
    # S16 session 2 mov 1 (dropped by the paper) has timestamps that are not sequential
    rng = np.random.default_rng(7)
    addresses, stamps = with_specials(*random_scene(rng, 3000, 1_000_000, 4_000_000, [3]),
                                      [1_100_000, 1_100_001, 3_900_000])
    stamps[1500], stamps[1501] = stamps[1501] + 50, stamps[1500]
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = load(aedat, vicon)
    assert recording.info['out_of_order']['3'] == 1
    assert np.all(np.diff(recording.events[3]['t']) >= 0)
    assert_matches_matlab(recording, aedat, VICON, filters=False)
    assert dhp19.split_of('S16_session2_mov1') is None


# ---------------------------------------------------------------------------------------------
# Filters

def filter_rows(rows, **flags):
    """Return the rows (X, Y, t, pol, cam; file order) that the package's filters keep."""
    cam = np.array([r[4] for r in rows], dtype=np.uint8)
    u = np.array([r[0] for r in rows]) - cam.astype(np.int64) * SX - 1
    v = np.array([r[1] for r in rows]) - 1
    t = np.array([r[2] for r in rows], dtype=np.int64)
    keep = dhp19_raw.filter_mask(u.astype(np.uint16), v.astype(np.uint16), cam, t, **flags)
    return [r for r, k in zip(rows, keep) if k]


def test_hot_pixels_are_pixels_with_ten_thousand_events():
    hot = [(400, 30, 1_000_000 + i, 1, 1) for i in range(10_000)]        # camera 1
    warm = [(50, 40, 1_000_000 + i, 0, 0) for i in range(9_999)]
    other_camera = [(400 + 346, 30, 1_000_000 + i, 0, 2) for i in range(3)]
    rows = sorted(hot + warm + other_camera, key=lambda r: r[2])
    kept = filter_rows(rows, background=False, ir_masks=False)
    assert kept == hot_pixel_filter(rows) == sorted(warm + other_camera, key=lambda r: r[2])


def test_background_activity_on_the_multiplexed_image():
    rows = [
        (10, 10, 30_000, 1, 0),        # t <= 70 ms on the AEDAT clock: passes alone
        (100, 100, 1_000_000, 1, 0),   # unsupported: removed, supports its 8 neighbours
        (101, 101, 1_050_000, 1, 0),   # supported 50 ms ago: kept
        (100, 100, 1_200_000, 0, 0),   # its neighbour fired 150 ms ago: removed
        (346, 50, 2_000_000, 1, 0),    # camera 0's last column (X = 346)...
        (347, 51, 2_000_100, 1, 1),    # ...supports camera 1's first column (X = 347)
        (1, 70, 3_000_000, 1, 0),      # the multiplexed image's border stamps nobody
        (2, 70, 3_000_010, 1, 0),      # so this one is removed
        (500, 1, 4_000_000, 1, 1),     # first row: a border too
        (500, 2, 4_000_050, 1, 1),
        (600, 90, 5_000_000, 1, 1),
        (600, 90, 5_000_001, 1, 1),    # the same pixel does not support itself
    ]
    kept = filter_rows(rows, hot_pixels=False, ir_masks=False)
    assert kept == background_filter(rows, SX * NBCAM, SY)
    assert [r[2] for r in kept] == [30_000, 1_050_000, 2_000_100]


def test_ir_masks():
    # mask 1: 780 < X < 810, 115 < Y < 145 (camera 2); mask 2: 1252 < X < 1259, 136 < Y < 144
    rows = [(781, 116, 1, 1, 2), (780, 116, 2, 1, 2), (809, 144, 3, 1, 2), (810, 130, 4, 1, 2),
            (781 - 346, 116, 5, 1, 1), (1253, 137, 6, 1, 3), (1258, 143, 7, 1, 3),
            (1259, 140, 8, 1, 3), (1253, 136, 9, 1, 3)]
    kept = filter_rows(rows, hot_pixels=False, background=False)
    expected = mask_region_filter(mask_region_filter(rows, *MASKS[0]), *MASKS[1])
    assert kept == expected
    assert [r[2] for r in kept] == [2, 4, 5, 8, 9]


def clustered_scene(rng, n, t0, t1):
    """Events of a few moving blobs (so the background filter keeps many) plus noise."""
    t = np.sort(rng.integers(t0, t1, n))
    cam = rng.integers(0, 4, n)
    phase = (t - t0) / (t1 - t0)
    x = np.clip(80 + 180 * phase + rng.normal(0, 3, n), 0, 345).astype(int)
    y = np.clip(130 + rng.normal(0, 3, n), 0, 259).astype(int)
    noise = rng.random(n) < 0.2
    x[noise], y[noise] = rng.integers(0, SX, noise.sum()), rng.integers(0, SY, noise.sum())
    # a hot pixel in camera 2 and events in both IR masks (raw x = 346 - X + cam * 346)
    x[::4], y[::4], cam[::4] = 10, 20, 2
    x[1:4000:8], y[1:4000:8], cam[1:4000:8] = 346 - (790 - 2 * 346), 260 - 130, 2
    x[2:4000:8], y[2:4000:8], cam[2:4000:8] = 346 - (1255 - 3 * 346), 260 - 140, 3
    return [polarity(*e) for e in zip(x, y, rng.integers(0, 2, n), cam)], list(t)


def test_whole_recording_with_filters_matches_dhp19(tmp_path):
    rng = np.random.default_rng(8)
    addresses, stamps = with_specials(*clustered_scene(rng, 60_000, 1_000_000, 4_000_000),
                                      [1_050_000, 1_050_001, 3_950_000])
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = dhp19_raw.load_recording(aedat, vicon, filters=True)
    start, rows = assert_matches_matlab(recording, aedat, VICON, filters=True)
    unfiltered = matlab_generate(aedat, VICON, filters=False)[1]
    assert 0.2 * len(unfiltered) < len(rows) < 0.9 * len(unfiltered)
    assert not any(r[4] == 2 and (r[0], r[1]) == (346 - 10 + 2 * 346, 260 - 20) for r in rows)


# ---------------------------------------------------------------------------------------------
# Labels

@pytest.mark.parametrize('version', ['5', '7.3'])
def test_vicon_mat_files_v5_and_v73(tmp_path, version):
    rng = np.random.default_rng(9)
    tracks = rng.normal(0, 500, (57, 3, 13))
    tracks[10, :, 4] = np.nan                        # Vicon lost the elbow for a sample
    path = tmp_path / f'S1_1_1_v{version}.mat'
    write_vicon(str(path), tracks, version)
    assert h5py.is_hdf5(path) == (version == '7.3')
    np.testing.assert_array_equal(dhp19_raw.read_vicon(path), tracks)


def test_labels_are_the_vicon_samples_at_100_hz_from_the_start(tmp_path):
    rng = np.random.default_rng(10)
    addresses, stamps = with_specials(*random_scene(rng, 5000, 1_000_000, 5_000_000),
                                      [1_234_567, 1_234_568])
    aedat, vicon = write_recording(tmp_path, addresses, stamps, VICON)
    recording = load(aedat, vicon)
    poses, times = recording.poses_mm, recording.label_times_us
    assert len(poses) == VICON - 1 and list(times[:3]) == [10_000, 20_000, 30_000]
    # the Vicon track written holds its own sample index j (head x = j, joint i adds i * 1000)
    np.testing.assert_array_equal(poses[:, 0, 0], np.arange(1, VICON))
    np.testing.assert_array_equal(poses[5, 2, :], 5 + 1 + np.arange(13) * 1000.0 + 0.2)
    # ExtractEventsToFramesAndMeanLabels.m: a frame ending at event time t uses Vicon samples up
    # to k = floor(uint32(t - start) * 0.0001) + 1 (1-based; uint32 * double rounds); the
    # layout's label at t (a multiple of 10 ms) must be that sample
    for t in times[::37]:
        k = int(np.floor(uint32((t - 0) * 0.0001))) + 1
        assert poses[t // 10_000 - 1, 0, 0] == k - 1
    # and event times count from the same start: t = AEDAT time - start
    first = recording.events[0][0]
    assert first['t'] > 0 and recording.info['start_us'] == 1_234_567


# ---------------------------------------------------------------------------------------------
# The whole release: dhp19-raw, resuming, the bag, training and evaluation

def blob_release(root, seconds=1.0, subject=13):
    """Write a raw recording whose cameras see a moving blob (the writer undoes the flips)."""
    t0 = 10_000_000
    parts = []
    for cam in range(4):
        events = moving_blob_events(duration_us=int(seconds * 1e6) + 200_000, t0_us=t0,
                                    rate_per_us=0.03, seed=cam)
        parts.append((events['t'], [polarity(SX - 1 - e['x'], SY - 1 - e['y'], e['p'], cam)
                                    for e in events]))
    stamps = np.concatenate([p[0] for p in parts])
    addresses = np.concatenate([p[1] for p in parts])
    order = np.argsort(stamps, kind='stable')
    addresses, stamps = with_specials(list(addresses[order]), list(stamps[order]),
                                      [t0 + 50_000, t0 + 50_001])
    vicon_samples = int(seconds * 100) + 1
    tracks = np.zeros((vicon_samples, 3, 13))
    tracks[:, 2, :] = np.linspace(200.0, 1700.0, 13)        # a vertical line of joints, mm
    tracks[:, 0, :] = np.linspace(-300, 300, vicon_samples)[:, None]
    return write_recording(root, addresses, stamps, subject=subject, tracks=tracks)


def read_bag(path):
    with AnyReader([pathlib.Path(path)], default_typestore=event_typestore()) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp('dhp19_download')
    aedat, _ = blob_release(str(root))
    out = tmp_path_factory.mktemp('converted')
    with pytest.raises(SystemExit) as done:
        convert_main(['dhp19-raw', str(root), str(out), '--quiet'])
    assert done.value.code == 0
    return root, out, aedat


def test_dhp19_raw_then_dhp19_gives_a_bag_of_the_aligned_events(release, tmp_path):
    root, out, aedat = release
    start, rows = matlab_generate(aedat, 101)
    for name in ('P1.npy', 'P4.npy', 'camera_positions.npy', 'S13_session1_mov1_events.h5',
                 'S13_session1_mov1_events_label.h5', 'dhp19_raw.json'):
        assert (out / name).exists(), name
    bag = tmp_path / 'bag'
    convert_main(['dhp19', str(out), 'S13_session1_mov1', str(bag), '--cameras', '3'])
    messages = read_bag(bag)
    merged = np.concatenate([codecs.decode_event_array(raw).events
                             for topic, _, raw in messages if topic == '/cam3/events'])
    expected = expected_events(start, rows, 3)
    expected = expected[expected['t'] >= 0]
    merged['t'] -= 1_700_000_000 * 1_000_000
    np.testing.assert_array_equal(merged, expected)
    gt = [raw for topic, _, raw in messages if topic == '/pose_gt_3d']
    assert len(gt) == 100                       # 101 Vicon samples: labels at 10 .. 1000 ms


def test_resuming_skips_finished_recordings_and_redoes_partial_ones(release, tmp_path,
                                                                    monkeypatch, capsys):
    root, out, _ = release
    events_file = out / 'S13_session1_mov1_events.h5'
    stamp = events_file.stat().st_mtime_ns
    (out / 'S14_session1_mov1_events.h5.part').write_bytes(b'interrupted')
    with pytest.raises(SystemExit) as done:
        convert_main(['dhp19-raw', str(root), str(out), '--quiet'])
    assert done.value.code == 0 and events_file.stat().st_mtime_ns == stamp
    assert '1 of 1 recordings already done' in capsys.readouterr().out
    # another camera set: converted again with the union of the cameras
    work = tmp_path / 'cams'
    dhp19_raw.convert_release(root, work, cameras=[3], progress=False, log=lambda _: None)
    assert dhp19_raw.is_converted(work, 'S13_session1_mov1', [3], True)
    assert not dhp19_raw.is_converted(work, 'S13_session1_mov1', [2, 3], True)
    dhp19_raw.convert_release(root, work, cameras=[2], progress=False, log=lambda _: None)
    assert dhp19_raw.is_converted(work, 'S13_session1_mov1', [2, 3], True)
    assert not dhp19_raw.is_converted(work, 'S13_session1_mov1', [3], False)
    # an interrupted write leaves no events file behind
    monkeypatch.setattr(dhp19.EventsWriter, 'close',
                        lambda self: (_ for _ in ()).throw(OSError('disk full')))
    manifest = dhp19_raw.convert_release(root, tmp_path / 'broken', progress=False,
                                         log=lambda _: None)
    assert manifest['summary'] == {'error': 1}
    assert not (tmp_path / 'broken' / 'S13_session1_mov1_events.h5').exists()


def test_evaluation_and_training_accept_the_download(release, tmp_path, monkeypatch, capsys):
    root, out, _ = release
    from hybrid_pose_ros.tools import evaluate as evaluate_cli
    from hybrid_pose_ros.training.train import load_config, train
    monkeypatch.setenv(dhp19_raw.CACHE_ENV, str(tmp_path / 'cache'))
    checkpoint = tmp_path / 'hybrid.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    evaluate_cli.main(['--hybrid', str(checkpoint), '--data', str(root), '--cameras', '3',
                       '--out-dir', str(tmp_path / 'eval'), '--quiet', '--device', 'cpu',
                       '--dhp19-cnn', '--energy-windows', '1', '--max-windows', '2'])
    printed = capsys.readouterr().out
    assert 'is a raw DHP19 release' in printed and 'Hybrid ANN-SNN' in printed
    converted = dhp19_raw.cache_folder(root)
    assert converted.startswith(str(tmp_path / 'cache')) and converted.endswith('filtered')
    assert dhp19_raw.converted_with_filters(converted)
    results = json.loads((tmp_path / 'eval' / 'evaluation.json').read_text())
    assert results['models']['dhp19_cnn']['dhp19_filters'] is False    # filtered once only
    # training resolves the download the same way (S13 is a test subject: no training data)
    config = load_config(None, [f'data=[{root}]', f'out_dir={tmp_path / "run"}',
                                'progress=false', 'device=cpu', 'stages=ann'])
    with pytest.raises(ValueError, match=f'no train recordings in .*{re.escape(converted)}'):
        train(config, log=lambda _: None)


@pytest.mark.ros
def test_a_bag_from_a_raw_recording_played_into_the_node(release, tmp_path, rclpy_context,
                                                         ros_env):
    pytest.importorskip('rclpy')
    from geometry_msgs.msg import PoseArray
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    root, out, _ = release
    bag = tmp_path / 'bag'
    convert_main(['dhp19', str(out), 'S13_session1_mov1', str(bag), '--cameras', '3',
                  '--max-seconds', '0.6'])
    events = np.concatenate([codecs.decode_event_array(raw).events
                             for topic, _, raw in read_bag(bag) if topic == '/cam3/events'])
    checkpoint = tmp_path / 'model.pt'
    small_checkpoint(checkpoint, ann_events=2000)
    reference = offline_reference(checkpoint, events)
    assert len(reference) >= 10
    node = start_process(ros_command(
        'hybrid_pose_ros.ros.node', f'checkpoint:={checkpoint}', 'events_topic:=/cam3/events',
        'qos_reliability:=reliable', 'threads:=1', 'input_type:=dvs', 'min_confidence:=0.0'),
        ros_env)
    listener = SpinningNode(rclpy_context, 'pose_listener')
    poses = []
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_ALL)
    listener.node.create_subscription(PoseArray, '/hybrid_pose_node/pose', poses.append, qos)
    replay = None
    try:
        assert listener.spin_until(
            lambda: listener.node.count_publishers('/hybrid_pose_node/pose') > 0, 30.0, node)
        replay = start_process([sys.executable, '-m', 'hybrid_pose_ros.ros.replay', str(bag),
                                '--topics', '/cam3/events', '--fast',
                                '--wait-for-subscribers', '20'], ros_env)
        assert listener.spin_until(lambda: len(poses) >= len(reference), 60.0, node), \
            f'{len(poses)} of {len(reference)} poses'
        replay.wait(30)
        time.sleep(0.2)
    finally:
        node.terminate()
        node.communicate(timeout=10)
        if replay is not None and replay.poll() is None:
            replay.kill()
        listener.close()
    assert len(poses) == len(reference)
    for msg, expected in zip(poses, reference):
        stamp = msg.header.stamp.sec * 1_000_000 + msg.header.stamp.nanosec // 1000
        assert stamp == expected.end_us and msg.header.frame_id == 'cam3_optical_frame'
        xy = np.array([[p.position.x, p.position.y] for p in msg.poses])
        np.testing.assert_allclose(xy, expected.xy, atol=1e-6)
