"""
Training of the three models of the paper (spec section 4), from in-memory windows.

Stages (``stages: all`` runs them in this order):

``ann``
    The ANN alone: heatmap MSE of the ANN output against the pose at the time its input ends.
    The ANN input of a window starting at ``t0`` ends at ``t0``, so its target is the label at
    ``t0`` (the previous bin's end label, index ``t0 / 10 ms - 1``). With
    ``step_ann_train: true`` the pool holds an ANN input at every bin end, i.e. one sample per
    label, as the paper's CNN loader (10x the window starts). Adam, lr 1e-4 (paper batch 8).
``hybrid``
    Loads ``ann.pt`` into the hybrid, freezes it (:meth:`HybridPoseNet.freeze_ann`; Adam over
    the parameters that still require gradients: SNN and initialisers) and trains with BPTT
    over the window: ``0.95 * heatmap + 0.05 * state matching``, where the state target is the
    initialisers applied to the frozen ANN's features of the next window's input (gradients
    flow into both sides, as in the paper). Adam, lr 5e-5 (paper batch 2).
``pure_snn``
    The baseline: the SNN alone from zero state (tau ``pure_snn_tau``), heatmap loss only.

Batches are cut on the device from uint8 tensors put there once. Larger batches than the
paper's are fine; scaling the learning rate with them (linear, at most ~sqrt for Adam) is the
user's choice through the config. Every epoch writes ``{stage}_state.pt`` (weights, optimiser,
epoch; ``--resume`` continues from it with the configured learning rate, so a schedule can be
changed between runs: an epoch stopped by the deadline counts as done) and
the usable checkpoint ``{stage}.pt`` (:func:`save_checkpoint`), and appends a row to
``{stage}_log.csv`` (and TensorBoard when importable). Per-epoch validation runs on the test
subjects, as the paper's (spec section 6.15). Shuffling, flips and the augmentation of
:mod:`hybrid_pose_ros.training.augment` (``augment: {scale, shift, negative}``) derive from
``seed`` and the epoch, so a resumed run sees the same batches as an uninterrupted one.

Multi-GPU: start with ``torchrun --nproc_per_node N``; with ``WORLD_SIZE > 1`` every rank
trains a DDP replica on its shard (DistributedSampler) and rank 0 writes every file.
"""
import copy
import csv
import math
import os
import random
import subprocess
import time
from typing import Any, Callable

from hybrid_pose_ros.model.ann import AnnUNet
from hybrid_pose_ros.model.checkpoint import load_checkpoint, save_checkpoint
from hybrid_pose_ros.model.config import make_config, ModelConfig
from hybrid_pose_ros.model.hybrid import HybridPoseNet, PureSNN, WindowState
from hybrid_pose_ros.training import evaluate
from hybrid_pose_ros.training.augment import augment_batch, Augmentation
from hybrid_pose_ros.training.dataset import DeviceData, WindowDataset
from hybrid_pose_ros.training.losses import (heatmap_loss, hybrid_loss, state_matching_loss,
                                             target_sigma)
import numpy as np
import torch
from torch import nn
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm
import yaml

STAGES = ('ann', 'hybrid', 'pure_snn')
"""The training stages in order; each writes ``{stage}.pt``, a checkpoint of that model kind."""
LOG_FIELDS = ('epoch', 'iterations', 'train_loss', 'train_heatmap_loss', 'train_state_loss',
              'val_mpjpe_px', 'lr', 'batch_size', 'world_size', 'epoch_s', 'elapsed_s',
              'stopped')

DEFAULTS: dict[str, Any] = {
    'preset': 'cpu',
    'model': {},
    'data': ['data/synthetic_dhp19'],
    'cameras': [3],
    'out_dir': 'runs/train',
    'cache_dir': None,
    'seed': 2022,
    'device': 'auto',
    'stages': 'all',
    'step_ann_train': True,
    'max_recordings': None,
    'val_split': 'train_tail',
    'val_fraction': 0.15,
    'val_max_windows': 256,
    'val_batch_size': 32,
    'augment_flip': False,
    'augment': {'scale': [1.0, 1.0], 'shift': 0.0, 'negative': 0.0},
    'progress': True,
    'tensorboard': True,
    'num_threads': None,
    'init_ann': None,
    'init_ann_stage': None,
    'init_hybrid': None,
    'init_pure_snn': None,
    'keep_best': False,
    'ann': {'epochs': 5, 'batch_size': 8, 'lr': 1.0e-4, 'max_minutes': None,
            'max_batches': None},
    'hybrid': {'epochs': 5, 'batch_size': 2, 'lr': 5.0e-5, 'max_minutes': None,
               'max_batches': None, 'heatmap_weight': 0.95, 'state_weight': 0.05},
    'pure_snn': {'epochs': 5, 'batch_size': 2, 'lr': 5.0e-5, 'max_minutes': None,
                 'max_batches': None},
}
"""Every configuration key with its default; a YAML file and ``--set`` override them."""


def _improved(state: dict[str, Any]) -> bool:
    """Record the epoch in ``state`` if its validation error is the best so far (or absent)."""
    val, best = state['val_mpjpe_px'], state.get('best_val_mpjpe_px')
    if val is not None and best is not None and val >= best:
        return False
    state['best_val_mpjpe_px'], state['best_epoch'] = val, state['epoch']
    return True


FINE_TUNE_ADJUSTABLE = ('output_decay',)
"""Model settings without parameters that a fine-tune (``init_hybrid``, ``init_pure_snn``) may
change."""


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``update`` (unknown keys raise)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key not in out:
            raise KeyError(f'unknown configuration key {key!r}')
        if isinstance(out[key], dict) and key != 'model':
            if not isinstance(value, dict):
                raise ValueError(f'configuration key {key!r} needs a mapping')
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_option(config: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b=value`` (value parsed as YAML, ``2e-4`` as a number) to ``config``."""
    if '=' not in assignment:
        raise ValueError(f'--set needs key=value, got {assignment!r}')
    key, raw = assignment.split('=', 1)
    parts = key.strip().split('.')
    node = config
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            raise KeyError(f'unknown configuration key {key!r}')
        node = node[part]
    if parts[-1] not in node and not (len(parts) == 2 and parts[0] == 'model'):
        raise KeyError(f'unknown configuration key {key!r}')
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:  # YAML 1.1 reads 2e-4 as a string
            value = float(value)
        except ValueError:
            pass
    node[parts[-1]] = value


def load_config(path: str | None, assignments: list[str] | None = None) -> dict[str, Any]:
    """Return the defaults updated with the YAML file at ``path`` and the assignments."""
    config = copy.deepcopy(DEFAULTS)
    if path:
        with open(path) as f:
            config = merge(config, yaml.safe_load(f) or {})
    for assignment in assignments or []:
        set_option(config, assignment)
    if isinstance(config['data'], str):
        config['data'] = [config['data']]
    return config


def stage_list(stages: str | list[str]) -> list[str]:
    """Return the stages to run, in training order."""
    names = [stages] if isinstance(stages, str) else list(stages)
    if 'all' in names:
        return list(STAGES)
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ValueError(f'unknown stages {unknown}; expected {STAGES} or all')
    return [name for name in STAGES if name in names]


def model_config(config: dict[str, Any]) -> ModelConfig:
    """Return the model configuration of the training config."""
    return make_config(config['preset'], **(config.get('model') or {}))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_commit() -> str | None:
    """Return the source tree's git commit (with ``-dirty``), or None outside git."""
    folder = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=folder, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                               cwd=folder, capture_output=True, text=True, timeout=10).stdout
        return commit + ('-dirty' if dirty.strip() else '')
    except (OSError, subprocess.SubprocessError):
        return None


class Runtime:
    """Process context: device, distributed rank and world size, output folder, logging."""

    def __init__(self, device: str) -> None:
        self.world_size = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        self.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        if self.world_size > 1:
            use_cuda = device != 'cpu' and torch.cuda.is_available()
            if use_cuda:
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group('nccl' if use_cuda else 'gloo')
            self.device = torch.device(f'cuda:{self.local_rank}' if use_cuda else 'cpu')
        else:
            self.device = evaluate.resolve_device(device)
        if self.device.type == 'cuda':
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

    @property
    def main(self) -> bool:
        """Whether this process writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.world_size > 1:
            dist.barrier()

    def any_rank(self, flag: bool) -> bool:
        """Return whether ``flag`` is true on any rank."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def close(self) -> None:
        """Tear the process group down."""
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


class AnnObjective(nn.Module):
    """ANN stage: heatmap loss of the ANN against the label at its input's end."""

    def __init__(self, ann: AnnUNet, sigma: float) -> None:
        super().__init__()
        self.ann = ann
        self.sigma = sigma

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return the loss terms of one batch of pool entries."""
        heat = heatmap_loss(self.ann(batch['ann']).heatmap, batch['joints'], batch['visible'],
                            self.sigma, batch['valid'])
        return {'loss': heat, 'heatmap': heat}


class HybridObjective(nn.Module):
    """Hybrid stage: BPTT over the window, heatmap loss plus state matching."""

    def __init__(self, model: HybridPoseNet, sigma: float, heatmap_weight: float,
                 state_weight: float) -> None:
        super().__init__()
        self.model = model
        self.sigma = sigma
        self.heatmap_weight = heatmap_weight
        self.state_weight = state_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return the loss terms of one batch of windows."""
        model = self.model
        size = batch['ann'].shape[0]
        with torch.no_grad():  # the ANN is frozen: one pass for this and the next window
            heatmaps, features = model.ann(torch.cat((batch['ann'], batch['next_ann'])))
        initial = model.initializers({k: v[:size] for k, v in features.items()})
        targets = model.initializers({k: v[size:] for k, v in features.items()})
        state = WindowState(initial, heatmaps[:size])
        outputs = []
        for t in range(batch['frames'].shape[1]):
            heatmap, state, _ = model.step(state, batch['frames'][:, t])
            outputs.append(heatmap)
        heat = heatmap_loss(torch.stack(outputs, dim=1), batch['joints'], batch['visible'],
                            self.sigma, batch['valid'])
        match = state_matching_loss(targets, state.membranes, batch['next_valid'])
        loss = hybrid_loss(heat, match, self.heatmap_weight, self.state_weight)
        return {'loss': loss, 'heatmap': heat, 'state': match}


class PureSnnObjective(nn.Module):
    """Pure-SNN stage: heatmap loss over the window from zero state."""

    def __init__(self, model: PureSNN, sigma: float) -> None:
        super().__init__()
        self.model = model
        self.sigma = sigma

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return the loss terms of one batch of windows."""
        heat = heatmap_loss(self.model.forward_window(batch['frames'])['heatmaps'],
                            batch['joints'], batch['visible'], self.sigma, batch['valid'])
        return {'loss': heat, 'heatmap': heat}


class Trainer:
    """Runs the stages of one configuration; see the module doc."""

    def __init__(self, config: dict[str, Any], resume: bool = False,
                 log: Callable[[str], None] = print) -> None:
        self.config = config
        self.resume = resume
        self.runtime = Runtime(str(config['device']))
        self._log = log
        self.model_config = model_config(config)
        self.out_dir = config['out_dir']
        self.progress = bool(config['progress']) and self.runtime.main
        self._threads = torch.get_num_threads()
        if config.get('num_threads'):
            torch.set_num_threads(int(config['num_threads']))
        self.sigma = target_sigma(self.model_config.input_width)
        settings = config.get('augment') or {}
        self.augmentation = Augmentation(scale=tuple(float(v) for v in settings.get(
            'scale', (1.0, 1.0))), shift=float(settings.get('shift', 0.0)),
            negative=float(settings.get('negative', 0.0)))
        self.geometry = None
        self.train_set: WindowDataset | None = None
        self.val_set: WindowDataset | None = None
        self.train_windows = self.train_pool = self.val_index = np.zeros(0, dtype=np.int64)
        self.train_data: DeviceData | None = None
        self.val_data: DeviceData | None = None
        self.started = time.time()
        self.tensorboard = None

    def log(self, message: str) -> None:
        """Print on rank 0."""
        if self.runtime.main:
            self._log(message)

    def _dataset(self, split: str, step_ann: bool) -> WindowDataset:
        config = self.config
        cache = None
        if config.get('cache_dir'):
            cfg = self.model_config
            cams = '-'.join(str(c) for c in config['cameras'])
            cache = os.path.join(config['cache_dir'],
                                 f'{split}_{cfg.preset}_{cfg.input_width}x{cfg.input_height}_'
                                 f'cams{cams}{"_steps" if step_ann else ""}.npz')
        build = (lambda: WindowDataset.load_or_build(
            cache, config['data'], split, config['cameras'], self.model_config, step_ann,
            self.progress, config.get('max_recordings')))
        if self.runtime.world_size > 1 and cache:
            if self.runtime.main:
                dataset = build()
            self.runtime.barrier()
            if not self.runtime.main:
                dataset = build()
            return dataset
        return build()

    def load_data(self) -> None:
        """Precompute (or load from the cache) the train and validation windows."""
        if self.train_set is not None:
            return
        start = time.time()
        self.train_set = self._dataset('train', bool(self.config['step_ann_train']))
        self.train_windows = np.arange(len(self.train_set))
        self.train_pool = np.arange(self.train_set.pool_size)
        if self.config['val_split'] == 'train_tail':
            self.train_windows, self.val_index, self.train_pool = self.train_set.tail_split(
                float(self.config['val_fraction']))
            self.val_set = self.train_set
        else:
            try:
                self.val_set = self._dataset(self.config['val_split'], False)
                self.val_index = np.arange(len(self.val_set))
            except ValueError as error:
                self.log(f'no validation: {error}')
        self.log(f'train: {len(self.train_windows)} windows, {len(self.train_pool)} ANN inputs '
                 f'({self.train_set.nbytes() / 2**20:.0f} MiB)')
        if self.val_set is not None:
            self.log(f'validation ({self.config["val_split"]}): {len(self.val_index)} windows')
        self.train_data = self.train_set.to_device(self.runtime.device)
        if self.val_set is self.train_set:
            self.val_data = self.train_data
        elif self.val_set is not None:
            self.val_data = self.val_set.to_device(self.runtime.device)
        self.log(f'data ready in {time.time() - start:.1f} s on {self.runtime.device}')

    def path(self, name: str) -> str:
        """Return a path in the output folder."""
        return os.path.join(self.out_dir, name)

    def _build(self, stage: str) -> tuple[nn.Module, nn.Module]:
        """Return (the model saved in the checkpoint, the objective trained)."""
        config = self.model_config
        if stage == 'ann':
            ann = AnnUNet(config)
            if self.config['init_ann_stage']:   # continue from a trained ANN (ann or hybrid)
                ann.load_state_dict(self._trained_ann(self.config['init_ann_stage']).state_dict())
            return ann, AnnObjective(ann, self.sigma)
        if stage == 'hybrid':
            model = HybridPoseNet(config)
            if self.config['init_hybrid']:   # fine-tune a trained hybrid (its ANN included)
                start = self._load_matching(self.config['init_hybrid'], 'hybrid',
                                            FINE_TUNE_ADJUSTABLE)
                model.load_state_dict(start.state_dict())
                if self.config['init_ann']:   # its SNN and initialisers with a newer ANN
                    model.ann.load_state_dict(self._load_matching(
                        self.config['init_ann'], 'ann').state_dict())
            else:
                model.ann.load_state_dict(self._load_matching(
                    self.config['init_ann'] or self.path('ann.pt'), 'ann').state_dict())
            model.freeze_ann()
            weights = self.config['hybrid']
            return model, HybridObjective(model, self.sigma, float(weights['heatmap_weight']),
                                          float(weights['state_weight']))
        model = PureSNN(config)
        if self.config['init_pure_snn']:   # continue training a pure SNN
            model.load_state_dict(self._load_matching(
                self.config['init_pure_snn'], 'pure_snn', FINE_TUNE_ADJUSTABLE).state_dict())
        return model, PureSnnObjective(model, self.sigma)

    def _trained_ann(self, path: str) -> nn.Module:
        """Return the ANN of an ``ann`` or ``hybrid`` checkpoint of this configuration."""
        kind = load_checkpoint(path, map_location='cpu').kind
        if kind == 'hybrid':
            return self._load_matching(path, 'hybrid', FINE_TUNE_ADJUSTABLE).ann
        return self._load_matching(path, 'ann')

    def _load_matching(self, path: str, kind: str, adjustable: tuple[str, ...] = ()
                       ) -> nn.Module:
        """Load a ``kind`` checkpoint whose model config equals ours except in ``adjustable``."""
        loaded = load_checkpoint(path, map_location='cpu')
        theirs, ours = loaded.config.to_dict(), self.model_config.to_dict()
        for name in adjustable:
            theirs.pop(name)
            ours.pop(name)
        if loaded.kind != kind or theirs != ours:
            raise ValueError(f'{loaded.path} is not a {kind} model of this configuration')
        return loaded.model.float()

    def _train_index(self, stage: str) -> np.ndarray:
        arrays = self.train_set.arrays
        if stage == 'ann':
            return np.intersect1d(np.flatnonzero(arrays['ann_valid']), self.train_pool)
        if stage == 'hybrid':
            return np.intersect1d(np.flatnonzero(arrays['next_index'] >= 0), self.train_windows)
        return self.train_windows

    def _batch(self, stage: str, index: torch.Tensor, flip: torch.Tensor | None):
        if stage == 'ann':
            return self.train_data.pool_batch(index, flip)
        return self.train_data.window_batch(index, flip, with_next=stage == 'hybrid')

    @torch.no_grad()
    def validate(self, stage: str, model: nn.Module) -> float | None:
        """Return the validation 2D MPJPE (sensor px; mean over the window for SNN stages)."""
        if self.val_set is None or len(self.val_index) == 0:
            return None
        index = self.val_index
        if len(index) > int(self.config['val_max_windows']):   # evenly over the recordings
            index = index[np.linspace(0, len(index) - 1, int(self.config['val_max_windows']))
                          .astype(np.int64)]
        batch_size = int(self.config['val_batch_size'])
        was_training = model.training
        model.eval()
        try:
            if stage == 'ann':
                pool = self.val_set.arrays['ann_index'][index]
                xy, _ = evaluate.predict_ann_pool(model, self.val_data, pool, batch_size)
                labels = self.val_set.arrays['ann_crop'][pool]
                errors = evaluate.per_sample_error(evaluate.crop_coordinates(xy, self.val_set),
                                                   labels)
                return evaluate._nanmean(errors)
            if stage == 'hybrid':
                xy = evaluate.predict_hybrid(model, self.val_data, index, batch_size)[
                    'hybrid_xy']
            else:
                xy, _ = evaluate.predict_pure_snn(model, self.val_data, index, batch_size)
            return evaluate.summarise(evaluate.window_errors(self.val_set, index, xy))['mean']
        finally:
            model.train(was_training)

    def _metadata(self, stage: str, state: dict[str, Any]) -> dict[str, Any]:
        settings = self.config[stage]
        return {
            'stage': stage, 'data': list(self.config['data']), 'split': 'train',
            'validation_split': self.config['val_split'], 'cameras': list(self.config['cameras']),
            'epochs': int(state['epoch']), 'epochs_planned': int(settings['epochs']),
            'iterations': int(state['iterations']), 'batch_size': int(settings['batch_size']),
            'world_size': self.runtime.world_size, 'lr': float(settings['lr']),
            'seed': int(self.config['seed']), 'git_commit': git_commit(),
            'wall_time_s': float(state['elapsed_s']), 'device': str(self.runtime.device),
            'device_name': (torch.cuda.get_device_name(self.runtime.device)
                            if self.runtime.device.type == 'cuda' else 'cpu'),
            'torch': str(torch.__version__), 'train_windows': len(self.train_windows),
            'initialised_from': (self.config['init_ann_stage'] if stage == 'ann' else
                                 self.config.get(f'init_{stage}') or (
                                     self.config['init_ann'] if stage == 'hybrid' else None)),
            'ann_from': self.config['init_ann'] if stage == 'hybrid' else None,
            'val_mpjpe_px': state.get('val_mpjpe_px'), 'stopped_early': bool(state['stopped']),
            'best_epoch': state.get('best_epoch'), 'keep_best': bool(self.config['keep_best']),
            'augment_flip': bool(self.config['augment_flip']),
            'augment': {'scale': list(self.augmentation.scale),
                        'shift': self.augmentation.shift,
                        'negative': self.augmentation.negative}, 'sigma': self.sigma,
        }

    def _write_log(self, stage: str, row: dict[str, Any]) -> None:
        path = self.path(f'{stage}_log.csv')
        new = not os.path.exists(path)
        with open(path, 'a', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({key: row.get(key) for key in LOG_FIELDS})
        if self.tensorboard is not None:
            for key in ('train_loss', 'train_heatmap_loss', 'train_state_loss', 'val_mpjpe_px'):
                if row.get(key) is not None:
                    self.tensorboard.add_scalar(f'{stage}/{key}', row[key], row['epoch'])
            self.tensorboard.flush()

    def _open_tensorboard(self) -> None:
        if self.tensorboard is not None or not self.config['tensorboard'] or not self.runtime.main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.tensorboard = SummaryWriter(self.path('tensorboard'))

    def run_stage(self, stage: str) -> dict[str, Any]:
        """Train one stage (resuming if asked); return its final state summary."""
        settings = self.config[stage]
        epochs = int(settings['epochs'])
        state_path = self.path(f'{stage}_state.pt')
        seed_everything(int(self.config['seed']))
        model, objective = self._build(stage)
        device = self.runtime.device
        objective.to(device).train()
        parameters = [p for p in objective.parameters() if p.requires_grad]
        optimiser = torch.optim.Adam(parameters, lr=float(settings['lr']))
        state = {'epoch': 0, 'iterations': 0, 'elapsed_s': 0.0, 'stopped': False,
                 'val_mpjpe_px': None, 'best_val_mpjpe_px': None, 'best_epoch': None}
        if self.resume and os.path.exists(state_path):
            saved = torch.load(state_path, map_location=device, weights_only=True)
            model.load_state_dict(saved['model'])
            optimiser.load_state_dict(saved['optimiser'])
            for group in optimiser.param_groups:   # the configured rate applies from here on
                group['lr'] = float(settings['lr'])
            state.update(saved['progress'])
            self.log(f'{stage}: resumed after epoch {state["epoch"]} '
                     f'({state["iterations"]} iterations), lr {settings["lr"]}')
        if state['epoch'] >= epochs:
            self.log(f'{stage}: already trained for {state["epoch"]} epochs')
            return state
        trained = objective
        if self.runtime.world_size > 1:
            trained = nn.parallel.DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == 'cuda' else None)
        index = self._train_index(stage)
        sampler = DistributedSampler(range(len(index)), num_replicas=self.runtime.world_size,
                                     rank=self.runtime.rank, shuffle=True,
                                     seed=int(self.config['seed']))
        batch_size = int(settings['batch_size'])
        max_minutes = settings.get('max_minutes')
        deadline = (time.time() + 60.0 * float(max_minutes)) if max_minutes else math.inf
        max_batches = settings.get('max_batches')
        self.log(f'{stage}: {len(index)} samples, batch {batch_size} x {self.runtime.world_size} '
                 f'rank(s), lr {settings["lr"]}, epochs {state["epoch"]}..{epochs}')
        stage_start = time.time() - float(state['elapsed_s'])
        for epoch in range(int(state['epoch']), epochs):
            sampler.set_epoch(epoch)
            order = torch.as_tensor(index[np.fromiter(iter(sampler), dtype=np.int64)])
            batches = list(torch.split(order, batch_size))
            if max_batches:
                batches = batches[:int(max_batches)]
            flips = torch.Generator().manual_seed(int(self.config['seed']) * 1000 + epoch)
            totals: dict[str, torch.Tensor] = {}
            count = 0
            epoch_start = time.time()
            stopped = False
            bar = tqdm(batches, desc=f'{stage} epoch {epoch + 1}/{epochs}',
                       disable=not self.progress, unit='batch', leave=False)
            for chunk in bar:
                flip = (torch.rand(len(chunk), generator=flips) < 0.5
                        if self.config['augment_flip'] else None)
                batch = self._batch(stage, chunk, flip)
                if self.augmentation != Augmentation():
                    batch = augment_batch(batch, self.augmentation, flips)
                terms = trained(batch)
                optimiser.zero_grad(set_to_none=True)
                terms['loss'].backward()
                optimiser.step()
                state['iterations'] += 1
                count += 1
                for key, value in terms.items():
                    totals[key] = totals.get(key, 0.0) + value.detach()
                if self.progress and count % 10 == 1:
                    bar.set_postfix(loss=f'{float(totals["loss"]) / count:.4g}')
                if self.runtime.any_rank(time.time() >= deadline):
                    stopped = True
                    break
            bar.close()
            state['epoch'] = epoch + 1
            state['stopped'] = stopped
            state['elapsed_s'] = time.time() - stage_start
            means = {key: float(value) / max(count, 1) for key, value in totals.items()}
            row = {'epoch': epoch + 1, 'iterations': state['iterations'],
                   'train_loss': means.get('loss', math.nan),
                   'train_heatmap_loss': means.get('heatmap', math.nan),
                   'train_state_loss': means.get('state'),
                   'lr': optimiser.param_groups[0]['lr'], 'batch_size': batch_size,
                   'world_size': self.runtime.world_size,
                   'epoch_s': time.time() - epoch_start, 'elapsed_s': state['elapsed_s'],
                   'stopped': stopped}
            if self.runtime.main:
                row['val_mpjpe_px'] = state['val_mpjpe_px'] = self.validate(stage, model)
                improved = _improved(state)
                self._save(stage, model, optimiser, state,
                           checkpoint=improved or not self.config['keep_best'])
                self._write_log(stage, row)
                val = row['val_mpjpe_px']
                self.log(f'{stage} epoch {epoch + 1}: loss {row["train_loss"]:.5g}, '
                         f'val MPJPE {"-" if val is None else f"{val:.2f}"} px, '
                         f'{row["epoch_s"]:.1f} s' + (' (time budget reached)' if stopped
                                                      else ''))
            self.runtime.barrier()
            if stopped:
                break
        return state

    def _save(self, stage: str, model: nn.Module, optimiser: torch.optim.Optimizer,
              state: dict[str, Any], checkpoint: bool = True) -> None:
        """Write the resumable state and, when ``checkpoint``, the usable ``{stage}.pt``."""
        os.makedirs(self.out_dir, exist_ok=True)
        tmp = self.path(f'{stage}_state.pt.tmp')
        torch.save({'model': model.state_dict(), 'optimiser': optimiser.state_dict(),
                    'progress': dict(state)}, tmp)
        os.replace(tmp, self.path(f'{stage}_state.pt'))
        if not checkpoint:
            return
        if stage == 'hybrid' and model.ann_calibration is None:
            # training inputs for int8 ANN calibration travel with the hybrid
            model.ann_calibration = self.train_set.calibration_inputs(pool=self.train_pool)
        tmp = self.path(f'{stage}.pt.tmp')
        save_checkpoint(tmp, model, self.model_config, stage,
                        self.train_set.geometry.to_dict(), self._metadata(stage, state))
        os.replace(tmp, self.path(f'{stage}.pt'))

    def run(self, stages: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Run the configured stages in order; return each stage's final state."""
        stages = stage_list(self.config['stages']) if stages is None else stages
        if self.runtime.main:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(self.path('train_config.yaml'), 'w') as f:
                yaml.safe_dump(self.config, f, sort_keys=False)
        self.load_data()
        self._open_tensorboard()
        results = {}
        try:
            for stage in stages:
                results[stage] = self.run_stage(stage)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
        self.log(f'done in {time.time() - self.started:.1f} s; outputs in {self.out_dir}')
        return results

    def close(self) -> None:
        """Release the process group and restore torch's thread count."""
        self.runtime.close()
        torch.set_num_threads(self._threads)


def train(config: dict[str, Any], resume: bool = False,
          log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """
    Train the stages of ``config`` (see :data:`DEFAULTS`); return each stage's state.

    A ``data`` folder that is a raw DHP19 download is converted first (``docs/dhp19.md``).
    """
    from hybrid_pose_ros.data.dhp19_raw import resolve_data_folders
    splits = ('train', 'test') if config.get('val_split') == 'test' else ('train',)
    config = dict(config, data=resolve_data_folders(config['data'], config['cameras'], splits,
                                                    progress=config.get('progress', True),
                                                    log=log))
    trainer = Trainer(config, resume, log)
    try:
        return trainer.run()
    finally:
        trainer.close()
