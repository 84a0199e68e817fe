"""
Synthetic DHP19: events of four simulated DAVIS346 cameras watching a body driven by mocap.

Pipeline per recording and camera: mocap -> landmarks (:mod:`joint_mapping`) -> placed in the
room (:func:`place_in_scene`) -> linearly interpolated to ``render_hz`` -> rendered
(:class:`render.Renderer`) -> events (:class:`simulator.EventSimulator`, seeded from the
recording name and camera) -> DHP19 files (:mod:`dhp19`). Labels are the 13 joints at 100 Hz.

Split (DHP19 subject numbers, so the DHP19 loaders' train S1-12 / test S13-17 rule applies):

* clip ``i`` (0-based, in the order given) minus its last ``test_fraction`` (default 20 %)
  -> ``S{i+1}_session1_mov1`` (train; at most 12 clips);
* the last ``test_fraction`` of clip ``i`` -> ``S13_session1_mov{i+1}`` (test);
* clips named in ``holdout`` are held out whole -> ``S14_session1_mov{j+1}`` (test).

Resumable: each camera is written to ``{name}_cam{k}.done.h5`` when complete, the recording's
event file is assembled once all cameras are done, and files that exist are skipped.
"""
from dataclasses import dataclass, field
import math
import multiprocessing
from multiprocessing.pool import Pool
import os
import zlib

from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.cameras import CAM_TO_P, Camera, dhp19_rig
from hybrid_pose_ros.data.joint_mapping import LANDMARK_INDEX, landmarks
from hybrid_pose_ros.data.mocap import MotionClip, read_motion, resample
from hybrid_pose_ros.data.render import Renderer
from hybrid_pose_ros.data.simulator import EventSimulator, SimulatorConfig
from hybrid_pose_ros.events.event_array import empty_events
from hybrid_pose_ros.skeleton import NUM_JOINTS
import numpy as np
from tqdm import tqdm

FOOT_CLEARANCE = 0.04
TRAIN_SESSION = 1
TEST_SUBJECT = 13
HOLDOUT_SUBJECT = 14


@dataclass(frozen=True)
class GenerateConfig:
    """Generation settings."""

    render_hz: float = 500.0
    supersample: int = 2
    cameras: tuple[int, ...] = (0, 1, 2, 3)
    test_fraction: float = 0.2
    seed: int = 0
    max_seconds: float | None = None
    chunk_frames: int = 250
    segment_seconds: float | None = None
    warmup_seconds: float = 0.1
    workers: int = 1
    sim: SimulatorConfig = field(default_factory=SimulatorConfig)


@dataclass(frozen=True)
class Recording:
    """A time range ``[start_s, end_s)`` of a clip, written as one DHP19 recording."""

    name: str
    clip: int
    start_s: float
    end_s: float


def place_in_scene(lm: np.ndarray) -> np.ndarray:
    """
    Put landmarks [F, K, 3] in the room: feet on the floor, centred, facing -Y.

    Turns about Z so that the first frame's torso faces -Y (the frontal cameras), shifts the
    middle of the pelvis' horizontal range to the origin and lifts the 1st percentile of the
    lowest foot landmark to the foot capsule radius.
    """
    lm = np.array(lm, dtype=np.float64)
    sr, sl = lm[0, LANDMARK_INDEX['shoulder_right']], lm[0, LANDMARK_INDEX['shoulder_left']]
    right = sr - sl
    forward = np.array([-right[1], right[0]])
    angle = math.atan2(-1.0, 0.0) - math.atan2(forward[1], forward[0])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    lm = lm @ rot.T
    pelvis = lm[:, LANDMARK_INDEX['pelvis'], :2]
    lm[..., :2] -= (pelvis.min(axis=0) + pelvis.max(axis=0)) / 2.0
    feet = [LANDMARK_INDEX[n] for n in ('foot_right', 'foot_left', 'toe_right', 'toe_left')]
    lowest = lm[:, feet, 2].min(axis=1)
    lm[..., 2] += FOOT_CLEARANCE - np.percentile(lowest, 1.0)
    return lm


def plan_recordings(clips: list[MotionClip], config: GenerateConfig,
                    holdout: tuple[str, ...] = ()) -> list[Recording]:
    """List the recordings of the split described in the module docstring."""
    plan = []
    train_clips = [i for i, c in enumerate(clips) if c.name not in holdout]
    if len(train_clips) > len(dhp19.TRAIN_SUBJECTS):
        raise ValueError(f'at most {len(dhp19.TRAIN_SUBJECTS)} training clips')
    for j, i in enumerate(i for i, c in enumerate(clips) if c.name in holdout):
        end = _clip_end(clips[i], config)
        plan.append(Recording(dhp19.recording_name(HOLDOUT_SUBJECT, 1, j + 1), i, 0.0, end))
    for i in train_clips:
        end = _clip_end(clips[i], config)
        cut = end * (1.0 - config.test_fraction)
        plan.append(Recording(dhp19.recording_name(i + 1, TRAIN_SESSION, 1), i, 0.0, cut))
        if config.test_fraction > 0:
            plan.append(Recording(dhp19.recording_name(TEST_SUBJECT, 1, i + 1), i, cut, end))
    return plan


def _clip_end(clip: MotionClip, config: GenerateConfig) -> float:
    end = clip.duration_s
    return min(end, config.max_seconds) if config.max_seconds else end


def _seed(config: GenerateConfig, name: str, cam: int, segment: int = 0
          ) -> np.random.SeedSequence:
    key = [config.seed, zlib.crc32(name.encode()), cam] + ([segment] if segment else [])
    return np.random.SeedSequence(key)


def frame_times_us(rec: Recording, render_hz: float) -> np.ndarray:
    """Render times (us from the recording start): 0, 1/render_hz, ... up to its end."""
    n = int(math.floor((rec.end_s - rec.start_s) * render_hz)) + 1
    return np.round(np.arange(n) * 1e6 / render_hz).astype(np.int64)


def _segments(rec: Recording, config: GenerateConfig) -> list[tuple[int, int]]:
    """Split a recording into ``[start, end)`` microsecond ranges of ``segment_seconds``."""
    length = int(round((rec.end_s - rec.start_s) * 1e6))
    step = int(config.segment_seconds * 1e6) if config.segment_seconds else length
    return [(a, min(a + step, length)) for a in range(0, max(length, 1), step)]


def simulate_segment(track: MotionClip, rec: Recording, camera: Camera, config: GenerateConfig,
                     segment: int) -> np.ndarray:
    """
    Render and simulate one segment of one camera; return its events (us from the recording).

    A segment after the first starts ``warmup_seconds`` early so the per-pixel reference levels
    settle; events of the warm-up are discarded. Segments are seeded independently, so they can
    be simulated in parallel and give the same result whatever the number of workers.
    """
    start_us, end_us = _segments(rec, config)[segment]
    warmup_us = int(config.warmup_seconds * 1e6) if start_us > 0 else 0
    renderer = Renderer(camera, config.supersample)
    seed = _seed(config, rec.name, camera.cam_index, segment).generate_state(1)[0]
    sim = EventSimulator(config.sim, seed=int(seed))
    times = frame_times_us(rec, config.render_hz)
    first = max(int(np.searchsorted(times, start_us - warmup_us, side='right')) - 1, 0)
    last = int(np.searchsorted(times, end_us, side='left'))
    times = times[first:last + 1]
    chunks = []
    for chunk_start in range(0, len(times), config.chunk_frames):
        chunk = times[chunk_start:chunk_start + config.chunk_frames]
        poses = resample(track, rec.start_s + chunk * 1e-6)
        for t, pose in zip(chunk, poses):
            frame = renderer.render(pose)
            if sim.level is None:
                sim.reset(frame, int(t))
            else:
                chunks.append(sim.step(frame, int(t)))
    events = np.concatenate(chunks) if chunks else empty_events()
    return events[(events['t'] >= start_us) & (events['t'] < end_us)]


def _simulate_job(args: tuple) -> np.ndarray:
    return simulate_segment(*args)


def simulate_camera(track: MotionClip, rec: Recording, camera: Camera, config: GenerateConfig,
                    path: str, progress: bool = True, pool: Pool | None = None) -> None:
    """Render and simulate one camera of one recording into a single-camera event file."""
    jobs = [(track, rec, camera, config, k) for k in range(len(_segments(rec, config)))]
    results = pool.imap(_simulate_job, jobs) if pool is not None else map(_simulate_job, jobs)
    tmp = path + '.tmp'
    writer = dhp19.EventsWriter(tmp)
    writer.append(camera.cam_index, empty_events())
    for events in tqdm(results, total=len(jobs), desc=f'{rec.name} cam{camera.cam_index}',
                       unit='segment', disable=not progress, leave=False):
        writer.append(camera.cam_index, events)
    writer.close()
    os.replace(tmp, path)


def write_labels(track: MotionClip, rec: Recording, path: str) -> None:
    """Write the recording's labels: 13 joints in mm at (k+1) * 10 ms."""
    times = dhp19.label_times_us(int(round((rec.end_s - rec.start_s) * 1e6)))
    joints = resample(track, rec.start_s + times * 1e-6)[:, :NUM_JOINTS] * 1000.0
    tmp = path + '.tmp'
    dhp19.write_labels(tmp, np.swapaxes(joints, 1, 2), times)
    os.replace(tmp, path)


def write_rig(out_dir: str, cameras: dict[int, Camera]) -> None:
    """Write P1..P4.npy and camera_positions.npy (mm) of the rig."""
    dhp19.write_cameras(out_dir, {CAM_TO_P[k]: c.dhp19_matrix() for k, c in cameras.items()},
                        {CAM_TO_P[k]: c.center * 1000.0 for k, c in cameras.items()})


def generate_recording(track: MotionClip, rec: Recording, out_dir: str, config: GenerateConfig,
                       cameras: dict[int, Camera], progress: bool = True,
                       pool: Pool | None = None) -> None:
    """Write one recording (event and label files), skipping what is already complete."""
    final = dhp19.events_path(out_dir, rec.name)
    label_file = dhp19.labels_path(out_dir, rec.name)
    if not os.path.exists(label_file):
        write_labels(track, rec, label_file)
    if os.path.exists(final):
        return
    parts = {}
    for cam in config.cameras:
        part = os.path.join(out_dir, f'{rec.name}_cam{cam}.done.h5')
        if not os.path.exists(part):
            simulate_camera(track, rec, cameras[cam], config, part, progress, pool)
        parts[cam] = part
    tmp = final + '.tmp'
    writer = dhp19.EventsWriter(tmp)
    for cam, part in parts.items():
        writer.append(cam, dhp19.read_events(part, cam))
    writer.close()
    os.replace(tmp, final)
    for part in parts.values():
        os.remove(part)


def scene_track(clip: MotionClip) -> MotionClip:
    """Return the clip's landmarks placed in the room, as a clip of landmark positions."""
    return MotionClip(clip.name, clip.fps, tuple(LANDMARK_INDEX), place_in_scene(landmarks(clip)))


def generate_dataset(paths: list[str], out_dir: str, config: GenerateConfig = GenerateConfig(),
                     holdout: tuple[str, ...] = (), progress: bool = True) -> list[Recording]:
    """Generate the synthetic dataset of the mocap files ``paths`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    clips = [read_motion(p) for p in paths]
    names = [c.name for c in clips]
    unknown = sorted(set(holdout) - set(names))
    if unknown:
        raise ValueError(f'held-out takes {unknown} are not among the clips {names}')
    cameras = dhp19_rig()
    write_rig(out_dir, cameras)
    plan = plan_recordings(clips, config, holdout)
    tracks = [scene_track(c) for c in clips]
    pool = multiprocessing.get_context('spawn').Pool(config.workers) \
        if config.workers > 1 else None
    try:
        for rec in tqdm(plan, desc='recordings', disable=not progress):
            generate_recording(tracks[rec.clip], rec, out_dir, config, cameras, progress, pool)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return plan
