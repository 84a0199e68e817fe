# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Training: targets, losses, windows matching the node, tiny end-to-end train/resume/eval."""
import csv
import importlib.util
import json
import os

from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.data.cameras import CAM_TO_P, dhp19_rig
from hybrid_pose_ros.estimator import HybridEstimator, window_starts
from hybrid_pose_ros.events.binning import split_into_bins
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.model.checkpoint import load_checkpoint
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.skeleton import JOINT_INDEX
from hybrid_pose_ros.tools import calibrate as calibrate_cli
from hybrid_pose_ros.tools import evaluate as evaluate_cli
from hybrid_pose_ros.training import losses
from hybrid_pose_ros.training.dataset import flip_permutation, WindowDataset
from hybrid_pose_ros.training.train import load_config, train
import numpy as np
import pytest
import torch
import torch.nn.functional as F

CONFIG = make_config('cpu', input_height=32, input_width=32, ann_events=500)
BODY_M = np.array([[0, 0, 1.7], [-0.2, 0, 1.45], [0.2, 0, 1.45], [-0.3, 0, 1.15],
                   [0.3, 0, 1.15], [-0.1, 0, 0.95], [0.1, 0, 0.95], [-0.35, 0, 0.9],
                   [0.35, 0, 0.9], [-0.1, 0, 0.5], [0.1, 0, 0.5], [-0.1, 0, 0.05],
                   [0.1, 0, 0.05]])


def write_toy_dhp19(folder, subjects=(1, 13), seconds=1.2, cameras=(2, 3), rate=30, seed=0):
    """Write DHP19 files of a swaying stick figure whose joints emit events (and P matrices)."""
    rig = dhp19_rig()
    dhp19.write_cameras(folder, {CAM_TO_P[k]: c.dhp19_matrix() for k, c in rig.items()},
                        {CAM_TO_P[k]: c.center * 1000.0 for k, c in rig.items()})
    rng = np.random.default_rng(seed)
    for subject in subjects:
        name = dhp19.recording_name(subject, 1, 1)
        ms = np.arange(int(seconds * 1000) + 1)
        phase = 2 * np.pi * ms / 1000.0 * (0.7 + 0.1 * (subject % 3))
        poses = np.repeat(BODY_M[None], len(ms), axis=0)
        poses[:, :, 0] += 0.4 * np.sin(phase)[:, None]
        poses[:, 7:9, 2] += 0.4 * np.sin(3 * phase)[:, None]
        times = dhp19.label_times_us(int(seconds * 1e6))
        dhp19.write_labels(dhp19.labels_path(folder, name),
                           np.swapaxes(poses[times // 1000] * 1000.0, 1, 2), times)
        per_cam = {}
        for cam in cameras:
            uv, _ = rig[cam].project(poses)
            n = len(ms) * rate
            t = np.sort(rng.integers(0, len(ms), n) * 1000 + rng.integers(0, 1000, n))
            xy = uv[t // 1000, rng.integers(0, 13, n)] + rng.normal(0, 1.5, (n, 2))
            per_cam[cam] = make_events(t, np.clip(xy[:, 0], 0, 345), np.clip(xy[:, 1], 0, 259),
                                       rng.integers(0, 2, n))
        dhp19.write_events(dhp19.events_path(folder, name), per_cam)


@pytest.fixture(scope='module')
def toy_data(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('toy_dhp19'))
    write_toy_dhp19(folder)
    return folder


def test_blurred_target_peak_shape_and_paper_kernel():
    assert losses.kernel_size(2.0) == 11
    assert losses.target_sigma(256) == 2.0 and losses.target_sigma(64) == 1.0
    assert losses.target_sigma(512) == 4.0
    joints = torch.tensor([[[100, 40], [0, 255], [5, 5]]])
    visible = torch.tensor([[True, True, False]])
    target = losses.blurred_targets(joints, visible, 256, 256, 2.0)
    assert target.shape == (1, 3, 256, 256)
    assert target[0, 0, 40, 100] == 1.0 and target[0, 0].max() == 1.0
    assert target[0, 1, 255, 0] == 1.0                     # reflect padding at the border
    assert target[0, 2].abs().max() == 0.0                 # invisible: all zero
    # the separable result equals a 2D 11x11 Gaussian blur (reflect) of the one-hot, max 1
    onehot = torch.zeros(1, 1, 256, 256)
    onehot[0, 0, 255, 0] = 1.0
    kernel = losses.gaussian_kernel(2.0)
    blurred = F.conv2d(F.pad(onehot, (5, 5, 5, 5), mode='reflect'),
                       torch.outer(kernel, kernel)[None, None])
    assert torch.allclose(target[0, 1], blurred[0, 0] / blurred.max(), atol=1e-6)
    assert target[0, 0, 40, 102] == pytest.approx(np.exp(-0.5), rel=1e-5)


def test_heatmap_loss_values():
    joints = torch.tensor([[[[3, 4], [10, 20]], [[5, 5], [0, 0]]]])      # [B=1, T=2, J=2, 2]
    visible = torch.tensor([[[True, True], [True, False]]])
    target = losses.blurred_targets(joints, visible, 24, 32, 1.0)
    assert target.shape == (1, 2, 2, 24, 32)
    assert losses.heatmap_loss(target, joints, visible, 1.0) == pytest.approx(0.0, abs=1e-6)
    zeros = torch.zeros_like(target)
    expected = float(target.square().mean())
    assert losses.heatmap_loss(zeros, joints, visible, 1.0) == pytest.approx(expected)
    prediction = torch.randn_like(target)
    assert losses.heatmap_loss(prediction, joints, visible, 1.0) == pytest.approx(
        float((prediction - target).square().mean()), rel=1e-5)
    ones = torch.ones_like(target)
    step_mse = (ones - target).square().mean(dim=(2, 3, 4))[0]
    valid = torch.tensor([[True, False]])
    assert losses.heatmap_loss(ones, joints, visible, 1.0, valid) == pytest.approx(
        float(step_mse[0]), rel=1e-6)


def test_state_matching_and_hybrid_loss():
    targets = (torch.ones(2, 3, 4, 4), torch.full((2, 5, 2, 2), 2.0))
    finals = (torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 2, 2))
    assert losses.state_matching_loss(targets, finals) == pytest.approx((1.0 + 4.0) / 2)
    finals = (torch.zeros(2, 3, 4, 4), torch.stack([torch.zeros(5, 2, 2),
                                                    torch.full((5, 2, 2), 2.0)]))
    valid = torch.tensor([True, False])
    assert losses.state_matching_loss(targets, finals, valid) == pytest.approx(2.5)
    assert losses.state_matching_loss(targets, finals) == pytest.approx((1.0 + 2.0) / 2)
    assert losses.hybrid_loss(torch.tensor(2.0), torch.tensor(4.0)) == pytest.approx(2.1)


def test_windows_are_the_node_inputs(toy_data):
    dataset = WindowDataset.build(toy_data, 'train', [3], CONFIG, step_ann=True, progress=False)
    events = dhp19.read_events(dhp19.events_path(toy_data, 'S1_session1_mov1'), 3)
    starts = window_starts(events['t'], CONFIG)
    kept = [s for s in starts if events['t'][-1] >= s + CONFIG.window_us]
    assert list(dataset.arrays['start_us']) == kept and len(kept) >= 8
    estimator = HybridEstimator(HybridPoseNet(CONFIG), dataset.geometry)
    arrays = dataset.arrays
    for w in (0, len(kept) - 1):
        start = kept[w]
        n = int(np.searchsorted(events['t'], start))
        history = events[max(0, n - CONFIG.ann_events):n]
        node_ann = estimator.ann_input(history)[0].numpy()
        assert np.array_equal(arrays['ann'][arrays['ann_index'][w]], np.minimum(node_ann, 255))
        bins = split_into_bins(events, start, CONFIG.bin_us, CONFIG.steps_per_window)
        node_frames = np.stack([estimator.snn_input(b)[0].numpy() for b in bins])
        assert np.array_equal(arrays['frames'][w], np.minimum(node_frames, 255))
        assert arrays['ann_time_us'][arrays['next_index'][w]] == start + CONFIG.window_us
        assert list(arrays['ann_time_us'][arrays['step_ann_index'][w]]) == [
            start + (i + 1) * CONFIG.bin_us for i in range(CONFIG.steps_per_window)]
    # labels: the end of each bin; model pixels = floor(crop label * scale)
    poses, _ = dhp19.read_labels(dhp19.labels_path(toy_data, 'S1_session1_mov1'))
    crop = dhp19.project_to_crop(dhp19.load_projection_matrix(toy_data, 3), poses)
    label = dhp19.bin_label_index(kept[0] // 1000, 4)
    assert np.array_equal(arrays['crop'][0, 4], crop[label].astype(np.float32))
    assert np.array_equal(arrays['joints'][0, 4], np.floor(crop[label] * 32 / 256))
    ann_label = kept[0] // 10_000 - 1
    assert np.array_equal(arrays['ann_crop'][arrays['ann_index'][0]], crop[ann_label])
    assert arrays['step_valid'].all() and arrays['visible'].all()


def test_a_lead_moves_each_windows_ann_input_as_the_node_does(toy_data):
    lead = 1
    dataset = WindowDataset.build(toy_data, 'train', [3], CONFIG, progress=False,
                                  ann_lead_bins=lead)
    events = dhp19.read_events(dhp19.events_path(toy_data, 'S1_session1_mov1'), 3)
    kept = [s for s in window_starts(events['t'], CONFIG, lead)
            if events['t'][-1] >= s + CONFIG.window_us]
    arrays = dataset.arrays
    assert list(arrays['start_us']) == kept and dataset.meta['ann_lead_bins'] == lead
    estimator = HybridEstimator(HybridPoseNet(CONFIG), dataset.geometry, ann_lead_bins=lead)
    for w, start in enumerate(kept):
        ann_time = start - estimator.ann_lead_us
        n = int(np.searchsorted(events['t'], ann_time))
        node_ann = estimator.ann_input(events[max(0, n - CONFIG.ann_events):n])[0].numpy()
        assert np.array_equal(arrays['ann'][arrays['ann_index'][w]], np.minimum(node_ann, 255))
        assert arrays['ann_time_us'][arrays['ann_index'][w]] == ann_time
        assert arrays['ann_time_us'][arrays['next_index'][w]] == ann_time + CONFIG.window_us


def test_flip_batches(toy_data):
    dataset = WindowDataset.build(toy_data, 'test', [3], CONFIG, progress=False)
    data = dataset.to_device('cpu')
    index = torch.tensor([0, 1])
    plain = data.window_batch(index)
    flipped = data.window_batch(index, torch.tensor([True, False]))
    assert torch.equal(flipped['frames'][0], plain['frames'][0].flip(-1))
    assert torch.equal(flipped['next_ann'][1], plain['next_ann'][1])
    perm = flip_permutation()
    assert perm[JOINT_INDEX['hand_left']] == JOINT_INDEX['hand_right']
    assert torch.equal(flipped['joints'][0, :, :, 0], 31 - plain['joints'][0][:, perm, 0])
    assert torch.equal(flipped['joints'][0, :, :, 1], plain['joints'][0][:, perm, 1])
    assert torch.equal(flipped['joints'][1], plain['joints'][1])


def test_tail_split_keeps_validation_labels_out_of_training(toy_data):
    dataset = WindowDataset.build(toy_data, 'train', [2, 3], CONFIG, step_ann=True,
                                  progress=False)
    train_windows, validation, pool = dataset.tail_split(0.3)
    arrays = dataset.arrays
    assert len(train_windows) and len(validation) and len(pool) < dataset.pool_size
    assert not set(train_windows) & set(validation)
    for source in range(len(dataset.sources)):
        mine_train = train_windows[arrays['window_source'][train_windows] == source]
        mine_val = validation[arrays['window_source'][validation] == source]
        mine_pool = pool[arrays['ann_source'][pool] == source]
        cut = arrays['start_us'][mine_val].min()
        assert (arrays['start_us'][mine_train] + CONFIG.window_us <= cut).all()
        assert (arrays['ann_time_us'][mine_pool] <= cut).all()
        assert set(arrays['next_index'][mine_train]) <= set(pool)   # state targets train too
    with pytest.raises(ValueError, match='fraction'):
        dataset.tail_split(1.0)


def test_config_overrides():
    config = load_config('config/train_cpu.yaml', ['ann.lr=2e-4', 'model.input_height=32',
                                                   'cameras=[2, 3]'])
    assert config['ann']['lr'] == 2e-4 and config['model'] == {'input_height': 32}
    assert config['cameras'] == [2, 3] and config['preset'] == 'cpu'
    with pytest.raises(KeyError):
        load_config(None, ['ann.learning_rate=1'])


def _log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_resume_evaluate_end_to_end(toy_data, tmp_path, capsys):
    out = str(tmp_path / 'run')
    sets = [f'data=[{toy_data}]', f'out_dir={out}', f'cache_dir={tmp_path / "cache"}',
            'model={input_height: 32, input_width: 32, ann_events: 500}', 'device=cpu',
            'cameras=[3]', 'progress=false', 'tensorboard=false', 'augment_flip=true',
            'augment={scale: [0.8, 1.2], shift: 0.1, negative: 0.1}',
            'val_max_windows=8', 'num_threads=1', 'ann.lr=1e-3', 'ann.batch_size=8',
            'ann.max_batches=3',
            'hybrid.lr=1e-3', 'hybrid.batch_size=4', 'pure_snn.lr=1e-3',
            'pure_snn.batch_size=4', 'ann.epochs=3', 'hybrid.epochs=3', 'pure_snn.epochs=2']
    train(load_config('config/train_cpu.yaml', sets), log=lambda _: None)
    for stage in ('ann', 'hybrid', 'pure_snn'):
        rows = _log(os.path.join(out, f'{stage}_log.csv'))
        assert float(rows[-1]['train_loss']) < float(rows[0]['train_loss']), stage
        assert rows[-1]['val_mpjpe_px']
    assert _log(os.path.join(out, 'hybrid_log.csv'))[0]['train_state_loss']
    ann = load_checkpoint(os.path.join(out, 'ann.pt'))
    hybrid = load_checkpoint(os.path.join(out, 'hybrid.pt'))
    assert (ann.kind, hybrid.kind) == ('ann', 'hybrid')
    assert hybrid.metadata['epochs'] == 3 and hybrid.metadata['seed'] == 2022
    for name, value in ann.model.state_dict().items():
        assert torch.equal(hybrid.model.ann.state_dict()[name], value)   # the frozen ANN
    # the hybrid carries training ANN inputs for int8 calibration
    (cache,) = (tmp_path / 'cache').glob('train_*.npz')
    pool = WindowDataset.load(str(cache)).arrays['ann']
    calibration = hybrid.model.ann_calibration
    assert calibration.dtype == np.uint8 and calibration.shape[1:] == pool.shape[1:]
    assert 0 < len(calibration) <= 64 and len(np.unique(calibration, axis=0)) > 1
    assert all(any(np.array_equal(row, ann_input) for ann_input in pool) for row in calibration)
    # hybrid_pose_calibrate writes them into a checkpoint that has none
    calibrate_cli.main(['--checkpoint', os.path.join(out, 'hybrid.pt'), '--data', toy_data,
                        '--cameras', '3', '--windows', '5', '--seed', '1', '--quiet',
                        '--out', str(tmp_path / 'recalibrated.pt')])
    recalibrated = load_checkpoint(tmp_path / 'recalibrated.pt')
    assert recalibrated.model.ann_calibration.shape == (5,) + pool.shape[1:]
    assert '5 training ANN inputs' in recalibrated.metadata['ann_calibration_from']
    assert all(any(np.array_equal(row, ann_input) for ann_input in pool)
               for row in recalibrated.model.ann_calibration)
    with pytest.raises(SystemExit) as error:   # one line, no traceback
        calibrate_cli.main(['--checkpoint', os.path.join(out, 'pure_snn.pt'), '--data',
                            toy_data, '--quiet'])
    assert error.value.code == 2
    assert 'a pure_snn checkpoint has no ANN initialisation' in capsys.readouterr().err
    # resume: one more pure-SNN epoch continues the log and the weights
    before = load_checkpoint(os.path.join(out, 'pure_snn.pt')).model.state_dict()
    train(load_config('config/train_cpu.yaml', sets + ['pure_snn.epochs=3',
                                                       'pure_snn.lr=2e-4']), resume=True,
          log=lambda _: None)
    rows = _log(os.path.join(out, 'pure_snn_log.csv'))
    assert [r['epoch'] for r in rows] == ['1', '2', '3']
    assert float(rows[-1]['lr']) == 2e-4 != float(rows[0]['lr'])   # the configured rate
    assert len(_log(os.path.join(out, 'ann_log.csv'))) == 3               # not retrained
    after = load_checkpoint(os.path.join(out, 'pure_snn.pt'))
    assert after.metadata['epochs'] == 3
    assert any(not torch.equal(before[k], v) for k, v in after.model.state_dict().items())
    # a time budget stops a stage after its first batch and still writes the checkpoint
    budget = str(tmp_path / 'budget')
    train(load_config('config/train_cpu.yaml', sets + [
        f'out_dir={budget}', 'stages=ann', 'ann.max_minutes=1e-6']), log=lambda _: None)
    rows = _log(os.path.join(budget, 'ann_log.csv'))
    assert len(rows) == 1 and rows[0]['stopped'] == 'True' and rows[0]['iterations'] == '1'
    assert load_checkpoint(os.path.join(budget, 'ann.pt')).metadata['stopped_early']
    # keep_best: the usable checkpoint is the epoch with the lowest validation error
    best = str(tmp_path / 'best')
    train(load_config('config/train_cpu.yaml', sets + [
        f'out_dir={best}', 'stages=ann', 'keep_best=true']), log=lambda _: None)
    rows = _log(os.path.join(best, 'ann_log.csv'))
    errors = [float(r['val_mpjpe_px']) for r in rows]
    kept = load_checkpoint(os.path.join(best, 'ann.pt')).metadata
    assert kept['val_mpjpe_px'] == pytest.approx(min(errors))
    assert kept['best_epoch'] == kept['epochs'] == 1 + errors.index(min(errors))
    # init_hybrid: fine-tuning starts from the given hybrid (lr 0 keeps its weights)
    tuned = str(tmp_path / 'tuned')
    train(load_config('config/train_cpu.yaml', sets + [
        f'out_dir={tuned}', 'stages=hybrid', f'init_hybrid={out}/hybrid.pt', 'hybrid.lr=0',
        'hybrid.epochs=1']), log=lambda _: None)
    start = dict(hybrid.model.named_parameters())
    for name, value in load_checkpoint(os.path.join(tuned, 'hybrid.pt')).model.named_parameters():
        assert torch.equal(value, start[name]), name
    # a fine-tune may change the output decay (no parameters), not the architecture
    train(load_config('config/train_cpu.yaml', sets + [
        f'out_dir={tuned}', 'stages=hybrid', f'init_hybrid={out}/hybrid.pt', 'hybrid.lr=0',
        'hybrid.epochs=1', 'model.output_decay=0.95']), log=lambda _: None)
    assert load_checkpoint(os.path.join(tuned, 'hybrid.pt')).config.output_decay == 0.95
    with pytest.raises(ValueError, match='is not a hybrid model of this configuration'):
        train(load_config('config/train_cpu.yaml', sets + [
            f'out_dir={tuned}', 'stages=hybrid', f'init_hybrid={out}/hybrid.pt',
            'hybrid.epochs=1', 'model.snn_base_width=4']), log=lambda _: None)
    train(load_config('config/train_cpu.yaml', sets + [
        f'out_dir={tuned}', 'stages=pure_snn', f'init_pure_snn={out}/pure_snn.pt',
        'pure_snn.lr=0', 'pure_snn.epochs=1']), log=lambda _: None)
    start = dict(after.model.named_parameters())
    for name, value in load_checkpoint(os.path.join(tuned, 'pure_snn.pt')).model.named_parameters(
            ):
        assert torch.equal(value, start[name]), name
    # evaluation of the four models and the DHP19 CNN on the test split, two cameras -> 3D
    evaluate_cli.main(['--run-dir', out, '--data', toy_data, '--cameras', '2', '3',
                       '--device', 'cpu', '--quiet', '--energy-windows', '2'])
    with open(os.path.join(out, 'evaluation', 'evaluation.json')) as f:
        results = json.load(f)
    assert set(results['models']) == {'ann_every_step', 'ann_held', 'hybrid', 'pure_snn',
                                      'dhp19_cnn'}
    for row in results['models'].values():
        assert len(row['mpjpe_2d_px']['per_step']) == CONFIG.steps_per_window
        assert row['mpjpe_2d_px']['mean'] > 0 and row['mpjpe_3d_mm']['mean'] > 0
    energy = results['energy']['per_window_mj']['cvprw']['paper_simplified']
    assert energy['ann_every_step'] == pytest.approx(10 * energy['ann_held'])
    assert energy['ann_held'] < energy['hybrid'] < energy['ann_every_step']
    assert os.path.getsize(os.path.join(out, 'evaluation', 'mpjpe_per_step.png')) > 0
    # the node's bfloat16 ANN, evaluated: the same table, slightly different numbers
    evaluate_cli.main(['--run-dir', out, '--data', toy_data, '--cameras', '2', '3',
                       '--device', 'cpu', '--quiet', '--energy-windows', '2',
                       '--out-dir', os.path.join(out, 'bf16'), '--ann-precision', 'bfloat16'])
    with open(os.path.join(out, 'bf16', 'evaluation.json')) as f:
        reduced = json.load(f)
    assert results['ann_precision'] == 'float32' and reduced['ann_precision'] == 'bfloat16'
    assert set(reduced['models']) == set(results['models'])
    for name, row in reduced['models'].items():
        assert row['mpjpe_2d_px']['mean'] == pytest.approx(
            results['models'][name]['mpjpe_2d_px']['mean'], rel=0.5)
    # the node's int8 ANN (OpenVINO, calibrated on the inputs the trainer stored)
    if importlib.util.find_spec('openvino') and importlib.util.find_spec('nncf'):
        evaluate_cli.main(['--run-dir', out, '--data', toy_data, '--cameras', '2', '3',
                           '--device', 'cpu', '--quiet', '--energy-windows', '2',
                           '--out-dir', os.path.join(out, 'int8'), '--ann-precision', 'int8',
                           '--ann-runtime', 'openvino'])
        with open(os.path.join(out, 'int8', 'evaluation.json')) as f:
            quantised = json.load(f)
        assert (quantised['ann_precision'], quantised['ann_runtime']) == ('int8', 'openvino')
        assert quantised['models']['hybrid']['mpjpe_2d_px']['mean'] == pytest.approx(
            results['models']['hybrid']['mpjpe_2d_px']['mean'], rel=0.5)
