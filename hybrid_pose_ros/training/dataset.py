"""
DHP19-format recordings as in-memory windows: every model input precomputed once.

For every recording of a split and every camera, the events are mapped to model coordinates
once (:meth:`SensorGeometry.dhp19` at the config's input size) and cut into windows with
:func:`hybrid_pose_ros.estimator.window_starts`, the rule the ROS node uses, so training and
evaluation see exactly the inputs the node builds:

* the ANN input of a window starting at ``t0`` is the stacked histogram of the last
  ``ann_events`` sensor events before ``t0`` (those outside the crop are dropped after they are
  chosen, as in the node); with ``ann_lead_bins`` (the node's parameter), before ``t0`` less
  that many bins;
* SNN step ``i`` sees the count frame of ``[t0 + i bin, t0 + (i + 1) bin)`` and is supervised
  with the label at the end of its bin (DHP19 label ``k`` is the pose at ``(k + 1) * 10`` ms);
  steps ending off the 10 ms label grid (the 200 Hz preset's odd steps) have no label;
* only windows whose ``steps_per_window`` bins are all complete are kept.

ANN inputs live in a pool of histograms keyed by ``(source, time)``: the window start, the next
window start (the state-matching target input of spec section 4.3; every kept window has one)
and, with ``step_ann``, every bin end (the "ANN re-run every step" baseline, and 10x more ANN
training samples, one per label as in the paper's CNN loader). Each pool entry carries the
label at its time: the ANN's input ends at that time, so that is the pose it is trained on.

Storage: event counts as ``uint8``, clipped at 255 (a pixel rarely collects more than a few
events of one polarity in a 10 ms bin or a 7500-event histogram bin); integer labels in model
pixels (``floor(u' * scale)`` of the paper's crop label ``u'``), the crop labels themselves
(float, NaN when invisible) for MPJPE at sensor scale, and the 3D labels (mm) for
triangulation. :meth:`WindowDataset.save` / :meth:`WindowDataset.load` cache it all in one
``.npz``; :meth:`WindowDataset.to_device` puts it on a GPU once for batched training.
"""
from dataclasses import dataclass
import json
import os
from typing import Any, Iterable, Sequence

from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.estimator import window_starts
from hybrid_pose_ros.events.representations import count_frames, stacked_histogram
from hybrid_pose_ros.events.sensor import DHP19_CROP_SIZE, SensorGeometry
from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np
import torch
from tqdm import tqdm

CACHE_VERSION = 1
CALIBRATION_WINDOWS = 64
"""ANN inputs a hybrid checkpoint keeps for int8 calibration (1.5 MB at ``cpu``, stored sparse)."""
COUNT_CLIP = 255
LABEL_PERIOD_US = dhp19.LABEL_PERIOD_MS * 1000
SPLITS = ('train', 'test')


def flip_permutation() -> list[int]:
    """Return the joint order after a horizontal flip (left and right swapped)."""
    def mirrored(name: str) -> str:
        if name.endswith('_right'):
            return name[:-6] + '_left'
        if name.endswith('_left'):
            return name[:-5] + '_right'
        return name
    return [JOINT_NAMES.index(mirrored(name)) for name in JOINT_NAMES]


def list_recordings(folder: str, split: str) -> list[str]:
    """Return the recordings of ``folder`` in ``split`` (sorted; excluded ones skipped)."""
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; expected one of {SPLITS}')
    names = []
    for entry in sorted(os.listdir(folder)):
        if entry.endswith('_events.h5') and not entry.endswith('_label.h5'):
            name = entry[:-len('_events.h5')]
            try:
                if dhp19.split_of(name) == split:
                    names.append(name)
            except ValueError:
                continue
    return names


def label_index(time_us: int, num_labels: int) -> int:
    """Return the label index of the pose at ``time_us``, or -1 when there is none."""
    if time_us % LABEL_PERIOD_US:
        return -1
    index = time_us // LABEL_PERIOD_US - 1
    return int(index) if 0 <= index < num_labels else -1


def _to_uint8(counts: np.ndarray) -> np.ndarray:
    return np.minimum(counts, COUNT_CLIP).astype(np.uint8)


@dataclass(frozen=True)
class Source:
    """One recording seen by one camera."""

    folder: str
    name: str
    camera: int


class _Labels:
    """The labels of one source at given times, in every form the dataset stores."""

    def __init__(self, folder: str, name: str, camera: int, input_size: int) -> None:
        poses, _ = dhp19.read_labels(dhp19.labels_path(folder, name))
        self.poses = poses.astype(np.float32)
        self.crop = dhp19.project_to_crop(dhp19.load_projection_matrix(folder, camera),
                                          poses).astype(np.float32)
        visible = np.isfinite(self.crop).all(axis=-1)
        model = np.floor(np.nan_to_num(self.crop, nan=-1.0) * input_size / DHP19_CROP_SIZE)
        self.model = np.where(visible[..., None], model, -1).astype(np.int16)
        self.visible = visible

    def at(self, times_us: np.ndarray) -> dict[str, np.ndarray]:
        """Return the labels at ``times_us`` (any shape) with a ``valid`` mask."""
        flat = np.asarray(times_us, dtype=np.int64).reshape(-1)
        index = np.array([label_index(int(t), len(self.poses)) for t in flat], dtype=np.int64)
        valid = index >= 0
        safe = np.where(valid, index, 0)
        shape = np.shape(times_us)
        joints = self.model[safe]
        visible = self.visible[safe] & valid[:, None]
        joints = np.where(visible[..., None], joints, -1).astype(np.int16)
        crop = np.where(visible[..., None], self.crop[safe], np.nan).astype(np.float32)
        poses = np.where(valid[:, None, None], self.poses[safe], np.nan).astype(np.float32)
        return {'joints': joints.reshape(shape + joints.shape[1:]),
                'visible': visible.reshape(shape + visible.shape[1:]),
                'crop': crop.reshape(shape + crop.shape[1:]),
                'pose3d': poses.reshape(shape + poses.shape[1:]),
                'valid': valid.reshape(shape)}


def _build_source(source: Source, config: ModelConfig, geometry: SensorGeometry,
                  step_ann: bool, ann_lead_bins: int = 0) -> dict[str, np.ndarray] | None:
    """Precompute the pool entries and windows of one source (None when it has no window)."""
    events = dhp19.read_events(dhp19.events_path(source.folder, source.name), source.camera)
    times = events['t']
    window = config.window_us
    steps = config.steps_per_window
    starts = [s for s in window_starts(times, config, ann_lead_bins)
              if int(times[-1]) >= s + window]
    if not starts:
        return None
    x = events['x'].astype(np.int64) - geometry.crop_x0
    y = events['y'].astype(np.int64) - geometry.crop_y0
    inside = (x >= 0) & (x < geometry.crop_width) & (y >= 0) & (y < geometry.crop_height)
    mapped = geometry.to_model(events).events
    before = np.concatenate([[0], np.cumsum(inside)])
    height, width = config.input_height, config.input_width
    starts_arr = np.asarray(starts, dtype=np.int64)
    offsets = np.arange(steps + 1, dtype=np.int64) * config.bin_us
    ann_times = starts_arr - ann_lead_bins * config.bin_us   # each window's ANN input ends here
    if step_ann:
        pool_times = np.unique(np.concatenate([(starts_arr[:, None] + offsets[None]).reshape(-1),
                                               ann_times, ann_times + window]))
    else:
        pool_times = np.unique(np.concatenate([ann_times, ann_times + window]))
    ann = np.empty((len(pool_times), config.ann_in_channels, height, width), dtype=np.uint8)
    for i, t in enumerate(pool_times):
        n = int(np.searchsorted(times, t, side='left'))
        lo = max(0, n - config.ann_events)
        history = mapped[before[lo]:before[n]]
        ann[i] = _to_uint8(stacked_histogram(history, config.ann_bins, height, width))
    frames = np.empty((len(starts), steps, config.snn_in_channels, height, width),
                      dtype=np.uint8)
    mapped_t = mapped['t']
    for i, start in enumerate(starts_arr):
        lo, hi = np.searchsorted(mapped_t, [start, start + window], side='left')
        frames[i] = _to_uint8(count_frames(mapped[lo:hi], int(start), config.bin_us, steps,
                                           height, width))
    labels = _Labels(source.folder, source.name, source.camera, width)
    pool_labels = labels.at(pool_times)
    step_labels = labels.at(starts_arr[:, None] + offsets[None, 1:])
    pool_pos = {int(t): i for i, t in enumerate(pool_times)}
    step_index = (np.array([[pool_pos[int(s + o)] for o in offsets[1:]] for s in starts_arr])
                  if step_ann else np.full((len(starts), steps), -1, dtype=np.int64))
    return {
        'ann': ann,
        'ann_time_us': pool_times,
        'ann_joints': pool_labels['joints'],
        'ann_visible': pool_labels['visible'],
        'ann_crop': pool_labels['crop'],
        'ann_pose3d': pool_labels['pose3d'],
        'ann_valid': pool_labels['valid'],
        'frames': frames,
        'start_us': starts_arr,
        'ann_index': np.array([pool_pos[int(t)] for t in ann_times], dtype=np.int64),
        'next_index': np.array([pool_pos[int(t + window)] for t in ann_times],
                               dtype=np.int64),
        'step_ann_index': step_index.astype(np.int64),
        'joints': step_labels['joints'],
        'visible': step_labels['visible'],
        'crop': step_labels['crop'],
        'pose3d': step_labels['pose3d'],
        'step_valid': step_labels['valid'],
    }


POOL_KEYS = ('ann', 'ann_time_us', 'ann_joints', 'ann_visible', 'ann_crop', 'ann_pose3d',
             'ann_valid', 'ann_source')
WINDOW_KEYS = ('frames', 'start_us', 'ann_index', 'next_index', 'step_ann_index', 'joints',
               'visible', 'crop', 'pose3d', 'step_valid', 'window_source')
INDEX_KEYS = ('ann_index', 'next_index', 'step_ann_index')


class WindowDataset:
    """
    Every window (and ANN input) of a split, precomputed in memory; see the module doc.

    ``arrays`` holds the pool arrays (``ann*``, length M) and the window arrays (length N);
    ``sources[k]`` is the recording and camera of ``*_source == k``.
    """

    def __init__(self, arrays: dict[str, np.ndarray], sources: Sequence[Source],
                 config: ModelConfig, meta: dict[str, Any]) -> None:
        self.arrays = arrays
        self.sources = list(sources)
        self.config = config
        self.meta = meta

    @classmethod
    def build(cls, folders: str | Sequence[str], split: str, cameras: Iterable[int],
              config: ModelConfig, step_ann: bool = False, progress: bool = True,
              max_recordings: int | None = None, ann_lead_bins: int = 0) -> 'WindowDataset':
        """
        Read and precompute every recording of ``split`` in ``folders`` for ``cameras``.

        ``ann_lead_bins`` as the node's parameter: each window's ANN input (and the next
        window's) ends that many bins before its start.
        """
        folders = [folders] if isinstance(folders, str) else list(folders)
        cameras = [int(c) for c in cameras]
        sources = []
        for folder in folders:
            names = list_recordings(folder, split)
            if max_recordings is not None:
                names = names[:max_recordings]
            sources += [Source(os.path.abspath(folder), name, cam)
                        for name in names for cam in cameras]
        if not sources:
            raise ValueError(f'no {split} recordings in {folders}')
        geometry = SensorGeometry.dhp19(config.input_width, config.input_height)
        parts, kept = [], []
        for source in tqdm(sources, desc=f'precompute {split}', disable=not progress,
                           unit='rec'):
            part = _build_source(source, config, geometry, step_ann, ann_lead_bins)
            if part is not None:
                part['ann_source'] = np.full(len(part['ann']), len(kept), dtype=np.int32)
                part['window_source'] = np.full(len(part['frames']), len(kept),
                                                dtype=np.int32)
                parts.append(part)
                kept.append(source)
        if not parts:
            raise ValueError(f'no complete window in the {split} recordings of {folders}')
        arrays = {}
        pool_offset = np.cumsum([0] + [len(p['ann']) for p in parts[:-1]])
        for key in POOL_KEYS + WINDOW_KEYS:
            pieces = []
            for part, offset in zip(parts, pool_offset):
                value = part[key]
                if key in INDEX_KEYS:
                    value = np.where(value >= 0, value + offset, -1)
                pieces.append(value)
            arrays[key] = np.concatenate(pieces)
        meta = {'version': CACHE_VERSION, 'folders': [os.path.abspath(f) for f in folders],
                'split': split, 'cameras': cameras, 'config': config.to_dict(),
                'step_ann': bool(step_ann), 'max_recordings': max_recordings,
                'count_clip': COUNT_CLIP, 'ann_lead_bins': int(ann_lead_bins)}
        return cls(arrays, kept, config, meta)

    @classmethod
    def load_or_build(cls, cache: str | None, folders: str | Sequence[str], split: str,
                      cameras: Iterable[int], config: ModelConfig, step_ann: bool = False,
                      progress: bool = True, max_recordings: int | None = None,
                      ann_lead_bins: int = 0) -> 'WindowDataset':
        """Load ``cache`` if it was built with the same settings, else build and write it."""
        cameras = [int(c) for c in cameras]
        folder_list = [folders] if isinstance(folders, str) else list(folders)
        wanted = {'version': CACHE_VERSION,
                  'folders': [os.path.abspath(f) for f in folder_list], 'split': split,
                  'cameras': cameras, 'config': config.to_dict(), 'step_ann': bool(step_ann),
                  'max_recordings': max_recordings, 'count_clip': COUNT_CLIP,
                  'ann_lead_bins': int(ann_lead_bins)}
        if cache and os.path.exists(cache):
            dataset = cls.load(cache)
            if dataset.meta == wanted:
                return dataset
        dataset = cls.build(folder_list, split, cameras, config, step_ann, progress,
                            max_recordings, ann_lead_bins)
        if cache:
            dataset.save(cache)
        return dataset

    def save(self, path: str) -> None:
        """Write everything to one uncompressed ``.npz`` (atomically)."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        tmp = path + '.tmp.npz'
        np.savez(tmp, meta=np.array(json.dumps(self.meta)),
                 source_folder=np.array([s.folder for s in self.sources]),
                 source_name=np.array([s.name for s in self.sources]),
                 source_camera=np.array([s.camera for s in self.sources], dtype=np.int64),
                 **self.arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> 'WindowDataset':
        """Read a dataset written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data['meta']))
            meta.setdefault('ann_lead_bins', 0)   # caches from before the lead existed
            sources = [Source(str(f), str(n), int(c)) for f, n, c in zip(
                data['source_folder'], data['source_name'], data['source_camera'])]
            arrays = {key: data[key] for key in POOL_KEYS + WINDOW_KEYS}
        return cls(arrays, sources, ModelConfig.from_dict(meta['config']), meta)

    def __len__(self) -> int:
        """Return the number of windows."""
        return len(self.arrays['frames'])

    @property
    def pool_size(self) -> int:
        """Return the number of precomputed ANN inputs."""
        return len(self.arrays['ann'])

    @property
    def geometry(self) -> SensorGeometry:
        """Return the sensor-to-model geometry the inputs were built with."""
        return SensorGeometry.dhp19(self.config.input_width, self.config.input_height)

    def window_camera(self) -> np.ndarray:
        """Return the h5 camera index of every window."""
        cams = np.array([s.camera for s in self.sources], dtype=np.int64)
        return cams[self.arrays['window_source']]

    def window_recording(self) -> list[str]:
        """Return ``folder/name`` of every window's recording."""
        keys = [os.path.join(s.folder, s.name) for s in self.sources]
        return [keys[k] for k in self.arrays['window_source']]

    def tail_split(self, fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Split every recording in time: its last ``fraction`` validates, the rest trains.

        Returns ``(train_windows, validation_windows, train_pool)`` indices. A training window
        ends (with the ANN input at its end) before its recording's cut, validation windows
        start at or after it, and training ANN inputs lie before it, so no label is shared.
        """
        if not 0.0 < fraction < 1.0:
            raise ValueError(f'validation fraction must be in (0, 1), got {fraction}')
        start, source = self.arrays['start_us'], self.arrays['window_source']
        cut = np.zeros(len(self.sources), dtype=np.int64)
        for k in range(len(self.sources)):
            mine = start[source == k]
            if len(mine):
                first, end = int(mine.min()), int(mine.max()) + self.config.window_us
                cut[k] = first + int((1.0 - fraction) * (end - first))
        train = np.flatnonzero(start + self.config.window_us <= cut[source])
        validation = np.flatnonzero(start >= cut[source])
        pool = np.flatnonzero(self.arrays['ann_time_us'] <= cut[self.arrays['ann_source']])
        return train, validation, pool

    def calibration_inputs(self, count: int = CALIBRATION_WINDOWS,
                           pool: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """
        Return up to ``count`` ANN inputs ``uint8 [N, C, H, W]`` drawn without replacement.

        They calibrate an int8 ANN (:mod:`hybrid_pose_ros.model.openvino_init`); ``pool``
        restricts the draw to those pool indices (the training part). A smaller pool gives
        all of its inputs.
        """
        pool = np.arange(self.pool_size) if pool is None else np.asarray(pool)
        if count < 1 or not len(pool):
            raise ValueError(f'cannot draw {count} calibration windows from {len(pool)} '
                             'ANN inputs')
        count = min(count, len(pool))
        chosen = np.sort(np.random.default_rng(seed).choice(pool, count, replace=False))
        return np.ascontiguousarray(self.arrays['ann'][chosen])

    def nbytes(self) -> int:
        """Return the memory held by the arrays."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def to_device(self, device: torch.device | str) -> 'DeviceData':
        """Copy the arrays to ``device`` once (counts stay uint8 there)."""
        return DeviceData({key: torch.from_numpy(np.ascontiguousarray(value)).to(device)
                           for key, value in self.arrays.items()}, self.config)


class DeviceData:
    """The dataset's tensors on one device, cut into float batches on demand."""

    def __init__(self, tensors: dict[str, torch.Tensor], config: ModelConfig) -> None:
        self.tensors = tensors
        self.config = config
        self.device = tensors['frames'].device
        self._flip = torch.tensor(flip_permutation(), device=self.device)

    def _flip_joints(self, joints: torch.Tensor, visible: torch.Tensor,
                     flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mirror ``joints [B, ..., J, 2]`` of the samples where ``flip [B]``."""
        mirrored = joints.index_select(-2, self._flip).clone()
        mirrored_visible = visible.index_select(-1, self._flip)
        mirrored[..., 0] = torch.where(mirrored_visible, self.config.input_width - 1
                                       - mirrored[..., 0], mirrored[..., 0])
        shape = (-1,) + (1,) * (joints.dim() - 1)
        joints = torch.where(flip.view(shape), mirrored, joints)
        visible = torch.where(flip.view(shape[:-1]), mirrored_visible, visible)
        return joints, visible

    @staticmethod
    def _flip_images(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (images.dim() - 1)
        return torch.where(flip.view(shape), images.flip(-1), images)

    def pool_batch(self, index: torch.Tensor,
                   flip: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Return ANN inputs ``[B, C, H, W]`` of pool entries with their labels."""
        t = self.tensors
        index = index.to(self.device)
        batch = {'ann': t['ann'][index].float(), 'joints': t['ann_joints'][index].long(),
                 'visible': t['ann_visible'][index], 'valid': t['ann_valid'][index]}
        if flip is not None:
            flip = flip.to(self.device)
            batch['ann'] = self._flip_images(batch['ann'], flip)
            batch['joints'], batch['visible'] = self._flip_joints(batch['joints'],
                                                                  batch['visible'], flip)
        return batch

    def window_batch(self, index: torch.Tensor, flip: torch.Tensor | None = None,
                     with_next: bool = True) -> dict[str, torch.Tensor]:
        """Return a batch of windows: ANN input, next ANN input, frames, per-step labels."""
        t = self.tensors
        index = index.to(self.device)
        batch = {'ann': t['ann'][t['ann_index'][index]].float(),
                 'frames': t['frames'][index].float(),
                 'joints': t['joints'][index].long(), 'visible': t['visible'][index],
                 'valid': t['step_valid'][index]}
        if with_next:
            next_index = t['next_index'][index]
            batch['next_valid'] = next_index >= 0
            batch['next_ann'] = t['ann'][next_index.clamp(min=0)].float()
        if flip is not None:
            flip = flip.to(self.device)
            for key in ('ann', 'frames', 'next_ann'):
                if key in batch:
                    batch[key] = self._flip_images(batch[key], flip)
            batch['joints'], batch['visible'] = self._flip_joints(batch['joints'],
                                                                  batch['visible'], flip)
        return batch
