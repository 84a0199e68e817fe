"""
The paper's evaluation table (spec section 5.1) on a DHP19-format split.

Four models per window, all on the node's windows (:mod:`hybrid_pose_ros.training.dataset`),
and a referee trained on real data:

``ann_every_step``
    The ANN re-run at every step on the ``ann_events`` events before the step's end
    ("ANN @100 Hz").
``ann_held``
    The ANN heatmap of the window start held for all steps ("ANN @10 Hz").
``hybrid``
    The hybrid ANN-SNN.
``pure_snn``
    The SNN baseline from zero state every window.
``dhp19_cnn``
    The DHP19 baseline CNN with its weights trained on real DHP19
    (:mod:`hybrid_pose_ros.model.dhp19_cnn`), fed as DHP19 feeds it: each camera's recording
    filtered by DHP19's filters (hot pixels, background activity, IR masks; optional), the last
    7,500 of its events before the window start made into a DHP19 frame
    (:mod:`hybrid_pose_ros.events.dhp19_filters`), read straight from the DHP19-format event
    files. Its joints (full-sensor pixels) are held for all steps, like ``ann_held``.

2D MPJPE: the argmax of each heatmap, mapped back to sensor pixels through the geometry (the
DHP19 CNN's are sensor pixels already) and then to the 256x256 crop (``u - 34``, ``v - 2``),
against the paper's integer crop label; nanmean over the visible joints of a sample, mean over
samples per step, and the headline is the mean over the window's steps; the same per camera.
3D MPJPE (mm): windows seen at the same time by two or more
cameras with P matrices are triangulated per step (weighted DLT, weights = heatmap confidence,
floored at 1e-3 so an all-zero heatmap still counts) and compared with that step's 3D label.
Energy per window comes from the exact synaptic-op accounting of :mod:`hybrid_pose_ros.model.
energy`, sampled on a few windows.
"""
import json
import math
import os
from typing import Any, Callable, Sequence
import warnings

from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.events.dhp19_filters import dhp19_filters, dhp19_frame, EVENTS_PER_CAMERA
from hybrid_pose_ros.events.sensor import DHP19_CROP_X0, DHP19_CROP_Y0
from hybrid_pose_ros.geometry.calibration import CameraCalibration, from_dhp19, triangulate_joints
from hybrid_pose_ros.model.ann import AnnUNet
from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.model.decode import decode_heatmaps, DEFAULT_MIN_CONFIDENCE
from hybrid_pose_ros.model.dhp19_cnn import (Dhp19Cnn, heatmap_peaks, INPUT_HEIGHT, INPUT_WIDTH,
                                             load_dhp19_cnn, predict_heatmaps)
from hybrid_pose_ros.model.energy import (account_step, ENERGY_CONSTANTS, energy_report,
                                          mean_accounting, snn_step_energy, StepAccounting)
from hybrid_pose_ros.model.hybrid import HybridPoseNet, PureSNN
from hybrid_pose_ros.model.inference import (
    has_ann_calibration, resolve_ann_precision, resolve_ann_runtime, with_ann_precision,
    with_ann_runtime)
from hybrid_pose_ros.model.macs import ann_macs, initializer_macs
from hybrid_pose_ros.skeleton import NUM_JOINTS
from hybrid_pose_ros.training.dataset import DeviceData, Source, WindowDataset
from hybrid_pose_ros.training.no_person import no_person_report, Scene
import numpy as np
import torch
from tqdm import tqdm

MODEL_NAMES = ('ann_every_step', 'ann_held', 'hybrid', 'pure_snn', 'dhp19_cnn')
MODEL_LABELS = {'ann_every_step': 'ANN every step', 'ann_held': 'ANN held (window start)',
                'hybrid': 'Hybrid ANN-SNN', 'pure_snn': 'Pure SNN',
                'dhp19_cnn': 'DHP19 CNN (trained on real DHP19)'}
MIN_TRIANGULATION_WEIGHT = 1e-3
ENERGY_VIEWS = ('paper_simplified', 'event_driven', 'dense')


def crop_from_sensor(uv: np.ndarray) -> np.ndarray:
    """Map sensor pixels ``[..., (u, v)]`` to the 256x256 DHP19 crop: ``(u - 34, v - 2)``."""
    return np.asarray(uv, dtype=np.float64) - np.array([DHP19_CROP_X0, DHP19_CROP_Y0],
                                                       dtype=np.float64)


def crop_coordinates(xy_model: np.ndarray, dataset: WindowDataset) -> np.ndarray:
    """Map model pixels ``[..., (x, y)]`` to the 256x256 DHP19 crop (sensor scale)."""
    return crop_from_sensor(dataset.geometry.model_to_sensor(xy_model))


def per_sample_error(prediction: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Return the nanmean over joints of the Euclidean error: ``[..., J, D]`` -> ``[...]``."""
    distance = np.linalg.norm(np.asarray(prediction, dtype=np.float64)
                              - np.asarray(label, dtype=np.float64), axis=-1)
    counted = np.isfinite(distance)
    total = np.where(counted, distance, 0.0).sum(axis=-1)
    count = counted.sum(axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def summarise(errors: np.ndarray) -> dict[str, Any]:
    """Summarise per-sample errors ``[N, T]``: per-step means, their mean, the last step."""
    errors = np.asarray(errors, dtype=np.float64)
    per_step = [_nanmean(errors[:, t]) for t in range(errors.shape[1])]
    finite = [e for e in per_step if e is not None]
    values = errors[np.isfinite(errors)]
    return {'mean': float(np.mean(finite)) if finite else None,
            'median': float(np.median(values)) if len(values) else None,
            'per_step': per_step, 'last_step': per_step[-1] if per_step else None,
            'samples': int(np.isfinite(errors).any(axis=1).sum())}


BOOTSTRAP_RESAMPLES = 10000


def paired_bootstrap(errors_a: np.ndarray, errors_b: np.ndarray,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """
    Paired comparison of two models' per-sample errors ``[N, T]`` on the same windows.

    The difference ``a - b`` of each window's mean over its steps, its mean, and a 95 %
    percentile bootstrap interval over windows (``resamples`` draws, seeded). Windows where
    either model has no error are left out.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)   # windows without any error: NaN
        a = np.nanmean(np.asarray(errors_a, dtype=np.float64), axis=1)
        b = np.nanmean(np.asarray(errors_b, dtype=np.float64), axis=1)
    diff = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if not len(diff):
        return {'windows': 0, 'mean_difference': None, 'ci95': None}
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {'windows': int(len(diff)), 'mean_difference': float(diff.mean()),
            'ci95': [float(low), float(high)], 'resamples': resamples,
            'better_share': float((diff < 0).mean())}


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None


def _batches(index: np.ndarray, batch_size: int, progress: bool, desc: str):
    chunks = [index[i:i + batch_size] for i in range(0, len(index), batch_size)]
    return tqdm(chunks, desc=desc, disable=not progress, leave=False, unit='batch')


def _decode(heatmaps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    joints = decode_heatmaps(heatmaps)
    return joints.xy.cpu().numpy(), joints.confidence.cpu().numpy()


@torch.inference_mode()
def predict_hybrid(model: HybridPoseNet, data: DeviceData, index: np.ndarray,
                   batch_size: int, progress: bool = False) -> dict[str, np.ndarray]:
    """Return model-pixel joints and confidences ``[N, T, J, *]`` of the hybrid and held ANN."""
    out: dict[str, list[np.ndarray]] = {'hybrid_xy': [], 'hybrid_conf': [], 'held_xy': [],
                                        'held_conf': []}
    for chunk in _batches(index, batch_size, progress, 'hybrid'):
        batch = data.window_batch(torch.from_numpy(chunk), with_next=False)
        result = model.forward_window(batch['ann'], batch['frames'])
        xy, conf = _decode(result['heatmaps'])
        held_xy, held_conf = _decode(result['ann_heatmap'])
        steps = xy.shape[1]
        out['hybrid_xy'].append(xy)
        out['hybrid_conf'].append(conf)
        out['held_xy'].append(np.repeat(held_xy[:, None], steps, axis=1))
        out['held_conf'].append(np.repeat(held_conf[:, None], steps, axis=1))
    return {key: np.concatenate(value) for key, value in out.items()}


@torch.inference_mode()
def predict_pure_snn(model: PureSNN, data: DeviceData, index: np.ndarray, batch_size: int,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return model-pixel joints and confidences ``[N, T, J, *]`` of the pure SNN."""
    xys, confs = [], []
    for chunk in _batches(index, batch_size, progress, 'pure SNN'):
        batch = data.window_batch(torch.from_numpy(chunk), with_next=False)
        xy, conf = _decode(model.forward_window(batch['frames'])['heatmaps'])
        xys.append(xy)
        confs.append(conf)
    return np.concatenate(xys), np.concatenate(confs)


@torch.inference_mode()
def predict_ann_pool(ann: AnnUNet, data: DeviceData, pool_index: np.ndarray, batch_size: int,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return the ANN's model-pixel joints and confidences for pool entries (any shape)."""
    flat = np.asarray(pool_index).reshape(-1)
    xys, confs = [], []
    for chunk in _batches(flat, batch_size, progress, 'ANN'):
        batch = data.pool_batch(torch.from_numpy(chunk))
        xy, conf = _decode(ann(batch['ann']).heatmap)
        xys.append(xy)
        confs.append(conf)
    shape = np.shape(pool_index)
    xy, conf = np.concatenate(xys), np.concatenate(confs)
    return xy.reshape(shape + xy.shape[1:]), conf.reshape(shape + conf.shape[1:])


def dhp19_cnn_frames(source: Source, starts_us: np.ndarray, filters: bool = True) -> np.ndarray:
    """
    Return the DHP19 CNN's inputs ``uint8 [N, 260, 344]`` of one source at window starts.

    The camera's whole recording is read from its DHP19-format file and, with ``filters``,
    filtered as DHP19 filters a recording; each frame is made of the last 7,500 remaining
    events before its start (fewer where the recording has fewer).
    """
    events = dhp19.read_events(dhp19.events_path(source.folder, source.name), source.camera)
    if filters:
        events = dhp19_filters(events, source.camera)
    ends = np.searchsorted(events['t'], np.asarray(starts_us, dtype=np.int64), side='left')
    frames = np.empty((len(ends), INPUT_HEIGHT, INPUT_WIDTH), dtype=np.uint8)
    for i, end in enumerate(ends):
        frames[i] = dhp19_frame(events[max(0, end - EVENTS_PER_CAMERA):end])
    return frames


def predict_dhp19_cnn(model: Dhp19Cnn, dataset: WindowDataset, index: np.ndarray,
                      filters: bool = True, batch_size: int = 16,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return the DHP19 CNN's sensor-pixel joints ``[N, J, 2]`` and peaks ``[N, J]``."""
    sources = dataset.arrays['window_source'][index]
    starts = dataset.arrays['start_us'][index]
    uv = np.empty((len(index), NUM_JOINTS, 2))
    peaks = np.empty((len(index), NUM_JOINTS), dtype=np.float32)
    for source in tqdm(np.unique(sources), desc='DHP19 CNN', disable=not progress,
                       leave=False, unit='rec'):
        positions = np.flatnonzero(sources == source)
        frames = dhp19_cnn_frames(dataset.sources[source], starts[positions], filters)
        for lo in range(0, len(positions), batch_size):
            chunk = positions[lo:lo + batch_size]
            uv[chunk], peaks[chunk] = heatmap_peaks(
                predict_heatmaps(model, frames[lo:lo + batch_size]))
    return uv, peaks


def sensor_window_errors(dataset: WindowDataset, index: np.ndarray,
                         uv: np.ndarray) -> np.ndarray:
    """Return per-sample 2D errors ``[N, T]`` of sensor-pixel joints ``uv [N, T, J, 2]``."""
    labels = dataset.arrays['crop'][index]
    errors = per_sample_error(crop_from_sensor(uv), labels)
    return np.where(dataset.arrays['step_valid'][index], errors, np.nan)


def window_errors(dataset: WindowDataset, index: np.ndarray, xy_model: np.ndarray) -> np.ndarray:
    """Return per-sample 2D errors ``[N, T]`` in sensor pixels of windows ``index``."""
    return sensor_window_errors(dataset, index, dataset.geometry.model_to_sensor(xy_model))


def dropped_fraction(dataset: WindowDataset, index: np.ndarray, confidence: np.ndarray,
                     min_confidence: float) -> float | None:
    """Share of the labelled visible joints ``[N, T, J]`` a node would drop as unconfident."""
    visible = np.isfinite(dataset.arrays['crop'][index]).all(axis=-1)
    visible &= dataset.arrays['step_valid'][index][..., None]
    if not visible.any():
        return None
    kept = np.isfinite(confidence) & (confidence >= min_confidence)
    return float((visible & ~kept).sum() / visible.sum())


def per_camera_means(errors: np.ndarray, cameras: np.ndarray) -> dict[str, float | None]:
    """Return the headline 2D error (:func:`summarise`'s mean) of each camera's windows."""
    return {str(camera): summarise(errors[cameras == camera])['mean']
            for camera in np.unique(cameras)}


def _calibrations(dataset: WindowDataset) -> dict[tuple[str, int], CameraCalibration]:
    """Return the cameras with P matrices, in the node's convention (metres, pixel centres)."""
    cameras = {}
    for source in dataset.sources:
        try:
            matrix = dhp19.load_projection_matrix(source.folder, source.camera)
        except (OSError, KeyError):
            continue
        cameras[(source.folder, source.camera)] = CameraCalibration(
            f'cam{source.camera}', from_dhp19(matrix), f'cam{source.camera}_optical_frame')
    return cameras


def triangulation_groups(dataset: WindowDataset, index: np.ndarray) -> list[np.ndarray]:
    """Return, per recording and start time seen by 2+ cameras, positions into ``index``."""
    recordings = dataset.window_recording()
    starts = dataset.arrays['start_us']
    groups: dict[tuple[str, int], list[int]] = {}
    for position, i in enumerate(index):
        groups.setdefault((recordings[i], int(starts[i])), []).append(position)
    return [np.array(g) for g in groups.values() if len(g) >= 2]


def errors_3d(dataset: WindowDataset, index: np.ndarray, uv: np.ndarray,
              confidence: np.ndarray) -> np.ndarray | None:
    """
    Return per-window 3D errors ``[G, T]`` in mm, or None with fewer than two cameras.

    Each group of windows (same recording and start, 2+ cameras with P matrices) is
    triangulated per step and joint from its sensor-pixel joints ``uv [N, T, J, 2]``, weighted
    by the confidences.
    """
    calibrations = _calibrations(dataset)
    cameras = dataset.window_camera()
    folders = [dataset.sources[k].folder for k in dataset.arrays['window_source']]
    rows = []
    for group in triangulation_groups(dataset, index):
        windows = index[group]
        keys = [(folders[w], int(cameras[w])) for w in windows]
        usable = np.array([k in calibrations for k in keys])
        if usable.sum() < 2:
            continue
        group = group[usable]
        views = [calibrations[k] for k, u in zip(keys, usable) if u]
        sensor = uv[group]
        weights = np.maximum(confidence[group], MIN_TRIANGULATION_WEIGHT)
        points_mm = 1000.0 * np.stack([
            triangulate_joints(views, sensor[:, t], weights[:, t])
            for t in range(sensor.shape[1])])
        label = np.swapaxes(dataset.arrays['pose3d'][index[group[0]]], -1, -2)
        rows.append(per_sample_error(points_mm, label))
    return np.stack(rows) if rows else None


def _account(config: ModelConfig, frames: torch.Tensor, activity: list) -> StepAccounting:
    """Return the mean accounting of a window's steps (counted on the CPU)."""
    return mean_accounting([
        account_step(config, frames[:, t], {k: v.cpu() for k, v in step.spikes.items()})
        for t, step in enumerate(activity)])


@torch.inference_mode()
def energy_summary(config: ModelConfig, hybrid: HybridPoseNet | None, pure: PureSNN | None,
                   data: DeviceData, index: np.ndarray) -> dict[str, Any]:
    """
    Return energy per window (mJ) of the four models and the hybrid's full energy report.

    The SNN steps of the windows ``index`` are accounted exactly (:func:`account_step`) and
    averaged; ANN passes are priced as dense MACs.
    """
    if len(index) == 0:
        return {}
    batch = data.window_batch(torch.from_numpy(np.asarray(index)), with_next=False)
    steps = config.steps_per_window
    accounted = {}
    frames = batch['frames'].cpu()
    if hybrid is not None:
        out = hybrid.forward_window(batch['ann'], batch['frames'], keep_activity=True)
        accounted['hybrid'] = _account(config, frames, out['activity'])
    if pure is not None:
        out = pure.forward_window(batch['frames'], keep_activity=True)
        accounted['pure_snn'] = _account(config, frames, out['activity'])
    summary: dict[str, Any] = {'windows_sampled': int(len(index)), 'per_window_mj': {}}
    for constants in ENERGY_CONSTANTS:
        e_mac = constants.e_mac_pj * 1e-12
        ann_j = ann_macs(config) * e_mac
        init_j = initializer_macs(config) * e_mac
        table: dict[str, Any] = {}
        for view in ENERGY_VIEWS:
            row = {'ann_every_step': steps * ann_j * 1e3, 'ann_held': ann_j * 1e3}
            if 'hybrid' in accounted:
                snn_j = snn_step_energy(accounted['hybrid'], constants).view(view)
                row['hybrid'] = (ann_j + init_j + steps * snn_j) * 1e3
            if 'pure_snn' in accounted:
                snn_j = snn_step_energy(accounted['pure_snn'], constants).view(view)
                row['pure_snn'] = steps * snn_j * 1e3
            table[view] = row
        summary['per_window_mj'][constants.name] = table
    for name, step in accounted.items():
        summary[f'{name}_mean_firing_rate'] = step.mean_firing_rate
    if 'hybrid' in accounted:
        summary['hybrid_report'] = energy_report(config, accounted['hybrid'])
    return summary


def format_table(results: dict[str, Any]) -> str:
    """
    Return the results as a text table: 2D px (mean, first and last step), 3D mm, energy.

    The 3D column is the median error: a few wrong 2D joints triangulate metres away and
    dominate the mean, which ``mpjpe_3d_mm`` keeps in the JSON.
    """
    energy = results.get('energy', {}).get('per_window_mj', {}).get('cvprw', {}).get(
        'paper_simplified', {})
    lines = [f'{"model":<34}{"2D px":>9}{"step 1":>9}{"last":>9}{"3D mm md":>10}'
             f'{"mJ/window":>11}{"dropped":>9}']
    for name in MODEL_NAMES:
        row = results['models'].get(name)
        if row is None:
            continue

        def fmt(value: float | None, width: int = 9) -> str:
            return f' {value:>{width - 1}.2f}' if value is not None else f'{"-":>{width}}'
        two = row['mpjpe_2d_px']
        three = row.get('mpjpe_3d_mm') or {}
        dropped = row.get('visible_dropped_fraction')
        lines.append(f'{MODEL_LABELS[name]:<34}{fmt(two["mean"])}{fmt(two["per_step"][0])}'
                     f'{fmt(two["last_step"])}{fmt(three.get("median"), 10)}'
                     f'{fmt(energy.get(name), 11)}'
                     f'{fmt(None if dropped is None else 100.0 * dropped, 8)}%')
    for scene, report in results.get('no_person', {}).items():
        missing = report['missing_fraction']
        lines.append(f'no person, {scene}: {report["steps"]} steps, '
                     + ('no step' if missing is None else f'{100.0 * missing:.1f} % of joints '
                        f'missing at min_confidence {results["min_confidence"]:g}'))
    return '\n'.join(lines)


def plot_per_step(results: dict[str, Any], path: str, bin_ms: float) -> None:
    """Write a PNG of the 2D error per step of every evaluated model."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in MODEL_NAMES:
        row = results['models'].get(name)
        if row is None:
            continue
        per_step = [math.nan if v is None else v for v in row['mpjpe_2d_px']['per_step']]
        times = [(i + 1) * bin_ms for i in range(len(per_step))]
        ax.plot(times, per_step, marker='o', label=MODEL_LABELS[name])
    ax.set_xlabel('time since window start (ms)')
    ax.set_ylabel('2D MPJPE (sensor px)')
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_models(dataset: WindowDataset, data: DeviceData, hybrid: HybridPoseNet | None,
                    pure: PureSNN | None, ann: AnnUNet | None, batch_size: int = 16,
                    energy_windows: int = 4, progress: bool = True,
                    max_windows: int | None = None, dhp19_cnn: Dhp19Cnn | None = None,
                    dhp19_cnn_filters: bool = True,
                    min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> dict[str, Any]:
    """
    Evaluate the given models on every window of ``dataset``; return the results dict.

    Every row also gives the share of labelled visible joints whose confidence is below
    ``min_confidence`` (the node would publish them as missing).

    ``dhp19_cnn`` adds its row, fed events filtered by DHP19's filters if
    ``dhp19_cnn_filters``.
    """
    index = np.arange(len(dataset))
    if max_windows is not None:
        index = index[:max_windows]
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if hybrid is not None:
        hybrid_out = predict_hybrid(hybrid, data, index, batch_size, progress)
        predictions['hybrid'] = (hybrid_out['hybrid_xy'], hybrid_out['hybrid_conf'])
        predictions['ann_held'] = (hybrid_out['held_xy'], hybrid_out['held_conf'])
        if ann is None:
            ann = hybrid.ann
    if ann is not None:
        step_index = dataset.arrays['step_ann_index'][index]
        if (step_index >= 0).all():
            predictions['ann_every_step'] = predict_ann_pool(ann, data, step_index,
                                                             batch_size, progress)
        if hybrid is None:
            xy, conf = predict_ann_pool(ann, data, dataset.arrays['ann_index'][index],
                                        batch_size, progress)
            steps = dataset.config.steps_per_window
            predictions['ann_held'] = (np.repeat(xy[:, None], steps, axis=1),
                                       np.repeat(conf[:, None], steps, axis=1))
    if pure is not None:
        predictions['pure_snn'] = predict_pure_snn(pure, data, index, batch_size, progress)
    sensor = {name: (dataset.geometry.model_to_sensor(xy), conf)
              for name, (xy, conf) in predictions.items()}
    if dhp19_cnn is not None:
        uv, peaks = predict_dhp19_cnn(dhp19_cnn, dataset, index, dhp19_cnn_filters, batch_size,
                                      progress)
        steps = dataset.config.steps_per_window
        sensor['dhp19_cnn'] = (np.repeat(uv[:, None], steps, axis=1),
                               np.repeat(peaks[:, None], steps, axis=1))
    cameras = dataset.window_camera()[index]
    models = {}
    window_errors_2d = {}
    for name in MODEL_NAMES:
        if name not in sensor:
            continue
        uv, conf = sensor[name]
        errors = window_errors_2d[name] = sensor_window_errors(dataset, index, uv)
        row = {'mpjpe_2d_px': summarise(errors),
               'mpjpe_2d_px_per_camera': per_camera_means(errors, cameras),
               'visible_dropped_fraction': dropped_fraction(dataset, index, conf,
                                                            min_confidence)}
        three = errors_3d(dataset, index, uv, conf)
        row['mpjpe_3d_mm'] = summarise(three) if three is not None else None
        models[name] = row
    if 'dhp19_cnn' in models:
        models['dhp19_cnn'].update({'dhp19_filters': bool(dhp19_cnn_filters),
                                    'events_per_frame': EVENTS_PER_CAMERA})
    comparisons = {}
    if 'hybrid' in window_errors_2d and 'ann_held' in window_errors_2d:
        comparisons['hybrid_minus_ann_held'] = paired_bootstrap(window_errors_2d['hybrid'],
                                                                window_errors_2d['ann_held'])
        every = models.get('ann_every_step', {}).get('mpjpe_2d_px', {}).get('mean')
        held = models['ann_held']['mpjpe_2d_px']['mean']
        hybrid_mean = models['hybrid']['mpjpe_2d_px']['mean']
        if every is not None and held is not None and hybrid_mean is not None \
                and held != every:
            comparisons['gap_recovered'] = (held - hybrid_mean) / (held - every)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(index, size=min(energy_windows, len(index)), replace=False))
    results = {
        'models': models,
        'comparisons': comparisons,
        'dataset': {'windows': int(len(index)), 'split': dataset.meta['split'],
                    'cameras': dataset.meta['cameras'], 'folders': dataset.meta['folders'],
                    'recordings': sorted({s.name for s in dataset.sources}),
                    'steps_per_window': dataset.config.steps_per_window,
                    'bin_ms': dataset.config.bin_us / 1000.0},
        'config': dataset.config.to_dict(),
        'energy': energy_summary(dataset.config, hybrid, pure, data, sample),
    }
    return results


def write_results(results: dict[str, Any], out_dir: str) -> tuple[str, str]:
    """Write ``evaluation.json`` and ``mpjpe_per_step.png`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, 'evaluation.json')
    with open(json_path, 'w') as f:
        json.dump(results, f, indent=2, default=float)
    png_path = os.path.join(out_dir, 'mpjpe_per_step.png')
    plot_per_step(results, png_path, results['dataset']['bin_ms'])
    return json_path, png_path


def run(checkpoints: dict[str, str | None], data: Sequence[str], cameras: Sequence[int],
        out_dir: str, split: str = 'test', device: str = 'auto', batch_size: int = 16,
        cache: str | None = None, energy_windows: int = 4, progress: bool = True,
        max_windows: int | None = None, ann_precision: str = 'float32',
        ann_runtime: str = 'torch', ann_lead_bins: int = 0,
        dhp19_cnn: str | os.PathLike | None = None, dhp19_cnn_filters: bool = True,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        no_person: dict[str, Scene] | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """
    Load checkpoints (``hybrid``, ``pure_snn``, ``ann``; any may be None), evaluate, write.

    ``ann_precision`` (``float32``, ``bfloat16``, ``int8`` or ``auto``, as the node's parameter)
    sets the arithmetic of every ANN, to measure what the node's reduced-precision ANN does to
    the errors (``int8`` needs OpenVINO and the hybrid's calibration inputs, and quantises the
    hybrid's window initialisation only). ``ann_runtime`` (``torch``, ``openvino`` or ``auto``,
    as the node's parameter) sets what runs the hybrid's window initialisation, which also gives
    the "ANN held" heatmap; the "ANN every step" baseline always runs in torch.
    ``ann_lead_bins`` (the node's parameter) ends each window's ANN input that many bins
    before its start, for the hybrid and the held ANN alike.
    ``dhp19_cnn``, the path of the DHP19 baseline CNN's Keras file, adds its row (float32 on
    the CPU), with DHP19's filters if ``dhp19_cnn_filters``; None leaves it out.
    ``no_person`` scenes (:mod:`hybrid_pose_ros.training.no_person`) are run through the hybrid
    as the node runs it, and the share of joints it would still publish at ``min_confidence``
    is reported under ``no_person``.

    The model config comes from the first checkpoint given; every checkpoint must share its
    input size and timing.
    """
    from hybrid_pose_ros.model.checkpoint import load_checkpoint
    device = resolve_device(device)
    loaded = {kind: load_checkpoint(path, map_location=device)
              for kind, path in checkpoints.items() if path}
    if not loaded:
        raise ValueError('give at least one checkpoint')
    config = next(iter(loaded.values())).config
    for kind, checkpoint in loaded.items():
        other = checkpoint.config
        if ((other.input_height, other.input_width, other.bin_us, other.steps_per_window,
             other.ann_events) != (config.input_height, config.input_width, config.bin_us,
                                   config.steps_per_window, config.ann_events)):
            raise ValueError(f'{kind} checkpoint {checkpoint.path} has another input size or '
                             'timing than the others')
    dataset = WindowDataset.load_or_build(cache, list(data), split, cameras, config,
                                          step_ann=True, progress=progress,
                                          ann_lead_bins=ann_lead_bins)
    log(f'{split}: {len(dataset)} windows from {len(dataset.sources)} recording-cameras '
        f'({dataset.nbytes() / 2**20:.0f} MiB)')
    device_data = dataset.to_device(device)
    runtime = resolve_ann_runtime(ann_runtime, device)
    hybrid = loaded.get('hybrid')
    precision = resolve_ann_precision(ann_precision, device, runtime,
                                      hybrid is not None and has_ann_calibration(hybrid.model))
    models = {kind: with_ann_precision(with_ann_runtime(checkpoint.model.to(device).eval(),
                                                        runtime, precision,
                                                        torch.get_num_threads()), precision)
              for kind, checkpoint in loaded.items()}
    referee = load_dhp19_cnn(dhp19_cnn) if dhp19_cnn is not None else None
    results = evaluate_models(dataset, device_data, models.get('hybrid'),
                              models.get('pure_snn'), models.get('ann'), batch_size,
                              energy_windows, progress, max_windows, referee, dhp19_cnn_filters,
                              min_confidence)
    results['min_confidence'] = min_confidence
    if no_person and 'hybrid' in models:
        results['no_person'] = no_person_report(models['hybrid'], no_person, min_confidence)
    results['checkpoints'] = {kind: os.path.abspath(c.path) for kind, c in loaded.items()}
    if dhp19_cnn is not None:
        results['checkpoints']['dhp19_cnn'] = os.path.abspath(dhp19_cnn)
    results['device'] = str(device)
    results['ann_precision'] = precision
    results['ann_runtime'] = runtime
    results['ann_lead_bins'] = ann_lead_bins
    json_path, png_path = write_results(results, out_dir)
    log(format_table(results))
    log(f'wrote {json_path} and {png_path}')
    return results


def resolve_device(device: str) -> torch.device:
    """Return ``cuda`` when ``device`` is 'auto' and a GPU is present, else the given device."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)
