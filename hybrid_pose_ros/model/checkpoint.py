"""
One-file model checkpoints: weights plus everything needed to use them correctly.

A checkpoint is a ``torch.save`` of a plain dictionary (loadable with ``weights_only=True``)::

    format        'hybrid_pose_ros.checkpoint'
    version       1
    kind          'hybrid' | 'ann' | 'pure_snn'
    preset        preset name the config was made from (must be a known preset)
    config        ModelConfig.to_dict()
    state_dict    the model's weights and BatchNorm statistics
    joint_names   skeleton.JOINT_NAMES at save time (heatmap channel order)
    geometry      sensor geometry dict given by the caller (opaque here)
    metadata      training metadata dict given by the caller

and, optionally, for a hybrid::

    ann_calibration  training ANN inputs for int8 calibration, stored sparse:
                     {'shape': [N, C, H, W], 'index': int32 flat indices of the nonzero
                     counts, 'count': their uint8 values}; loaded into the model's
                     ``ann_calibration``

Every problem raises :class:`CheckpointError` naming the file and the mismatch.
"""
from dataclasses import dataclass
import os
import pickle
from typing import Any

from hybrid_pose_ros.model.config import ModelConfig, PRESETS
from hybrid_pose_ros.model.hybrid import build_model, MODEL_KINDS
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np
import torch
from torch import nn

FORMAT_TAG = 'hybrid_pose_ros.checkpoint'
FORMAT_VERSION = 1
REQUIRED_KEYS = ('format', 'version', 'kind', 'preset', 'config', 'state_dict', 'joint_names',
                 'geometry', 'metadata')
MAX_LISTED_MISMATCHES = 5


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A loaded checkpoint with its model rebuilt from the stored config (in eval mode)."""

    path: str
    kind: str
    preset: str
    config: ModelConfig
    model: nn.Module
    joint_names: tuple[str, ...]
    geometry: dict[str, Any]
    metadata: dict[str, Any]
    version: int


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: ModelConfig, kind: str,
                    geometry: dict[str, Any] | None = None,
                    metadata: dict[str, Any] | None = None, half: bool = False) -> None:
    """
    Write ``model`` (of ``kind``, built from ``config``) and its context to ``path``.

    With ``half`` the floating-point tensors are stored as float16 (half the file size, as for
    the weights shipped in the package) unless a value does not fit float16; loading converts
    them back to the model's float32.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f'unknown model kind {kind!r}; known kinds: {", ".join(MODEL_KINDS)}')
    if config.preset not in PRESETS:
        raise ValueError(f'config preset {config.preset!r} is not one of {sorted(PRESETS)}')
    payload = {
        'format': FORMAT_TAG,
        'version': FORMAT_VERSION,
        'kind': kind,
        'preset': config.preset,
        'config': config.to_dict(),
        'state_dict': {k: _stored(v.detach().cpu(), half)
                       for k, v in model.state_dict().items()},
        'joint_names': list(JOINT_NAMES),
        'geometry': dict(geometry or {}),
        'metadata': dict(metadata or {}),
    }
    calibration = getattr(model, 'ann_calibration', None)
    if calibration is not None:
        payload['ann_calibration'] = _encode_calibration(calibration)
    torch.save(payload, os.fspath(path))


def add_ann_calibration(path: str | os.PathLike, calibration: np.ndarray,
                        target: str | os.PathLike | None = None, source: str = '') -> None:
    """
    Store ``calibration`` (``uint8 [N, C, H, W]`` ANN inputs) in the hybrid checkpoint ``path``.

    Writes ``target`` (``path`` itself when None, atomically); the weights are copied as
    stored. ``source`` (where the inputs came from) goes into the metadata.
    """
    path = os.fspath(path)
    loaded = load_checkpoint(path)
    require_calibratable(loaded)
    _check_calibration(np.asarray(calibration), loaded.config, path)
    payload = _read(path, 'cpu')
    payload['ann_calibration'] = _encode_calibration(calibration)
    payload['metadata'] = dict(payload['metadata'], ann_calibration_from=source)
    target = os.fspath(target) if target is not None else path
    tmp = target + '.tmp'
    torch.save(payload, tmp)
    os.replace(tmp, target)


def require_calibratable(loaded: LoadedCheckpoint) -> None:
    """Raise :class:`CheckpointError` unless ``loaded`` is a hybrid (an ANN initialisation)."""
    if loaded.kind != 'hybrid':
        raise CheckpointError(f'checkpoint {loaded.path}: a {loaded.kind} checkpoint has no ANN '
                              'initialisation to calibrate')


def _encode_calibration(calibration: np.ndarray) -> dict[str, Any]:
    """Return uint8 ANN inputs as their shape, flat nonzero indices and values (5 % nonzero)."""
    flat = np.ascontiguousarray(calibration, dtype=np.uint8).ravel()
    index = np.flatnonzero(flat).astype(np.int32)   # calibration sets are far below 2**31
    return {'shape': list(np.shape(calibration)), 'index': torch.from_numpy(index),
            'count': torch.from_numpy(flat[index])}


def _decode_calibration(stored: Any, config: ModelConfig, path: str) -> np.ndarray:
    """Rebuild the stored calibration inputs; raise :class:`CheckpointError` if malformed."""
    try:
        shape = tuple(int(n) for n in stored['shape'])
        index = stored['index'].cpu().numpy()
        count = stored['count'].cpu().numpy()
        calibration = np.zeros(int(np.prod(shape)), dtype=np.uint8)
        calibration[index] = count
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise CheckpointError(f'checkpoint {path}: malformed ann_calibration '
                              f'({type(error).__name__}: {error})') from None
    calibration = calibration.reshape(shape)
    _check_calibration(calibration, config, path)
    return calibration


def _check_calibration(calibration: np.ndarray, config: ModelConfig, path: str) -> None:
    """Raise :class:`CheckpointError` unless ``calibration`` is ``uint8 [N, C, H, W]``."""
    expected = (config.ann_in_channels, config.input_height, config.input_width)
    if (calibration.dtype != np.uint8 or calibration.ndim != 4 or not len(calibration)
            or calibration.shape[1:] != expected):
        raise CheckpointError(f'checkpoint {path}: ann_calibration must be uint8 '
                              f'[N, {", ".join(map(str, expected))}] ANN inputs, got '
                              f'{calibration.dtype} {list(calibration.shape)}')


def _stored(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    """Return ``tensor`` as float16 when asked and lossless in range, else unchanged."""
    if not half or not tensor.is_floating_point():
        return tensor
    if tensor.numel() and tensor.abs().max() > torch.finfo(torch.float16).max:
        return tensor
    return tensor.half()


def _shape_mismatches(expected: dict[str, torch.Tensor],
                      stored: dict[str, Any]) -> list[str]:
    return [f'{name}: file {tuple(stored[name].shape)} vs model {tuple(tensor.shape)}'
            for name, tensor in expected.items()
            if name in stored and isinstance(stored[name], torch.Tensor)
            and stored[name].shape != tensor.shape]


def _first(names: list[str]) -> str:
    shown = '; '.join(names[:MAX_LISTED_MISMATCHES])
    more = len(names) - MAX_LISTED_MISMATCHES
    return shown + (f' (and {more} more)' if more > 0 else '')


def _read(path: str, map_location: str | torch.device) -> dict[str, Any]:
    if not os.path.exists(path):
        raise CheckpointError(f'checkpoint {path}: file does not exist')
    if os.path.isdir(path):
        raise CheckpointError(f'checkpoint {path}: is a directory, expected a .pt file')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint {path}: empty file, expected a .pt checkpoint')
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if 'Weights only load failed' in str(error):
            raise CheckpointError(f'checkpoint {path}: holds Python objects other than tensors '
                                  'and plain types; refusing to unpickle it') from None
        raise CheckpointError(f'checkpoint {path}: not a PyTorch checkpoint file '
                              f'(unpickling failed: {error})') from None
    except Exception as error:  # torch.load raises many types for foreign files
        summary = str(error).strip().splitlines()[0][:120] if str(error).strip() else ''
        raise CheckpointError(f'checkpoint {path}: not a PyTorch checkpoint file '
                              f'({type(error).__name__}: {summary})') from error
    if not isinstance(payload, dict) or payload.get('format') != FORMAT_TAG:
        found = payload.get('format') if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f'checkpoint {path}: not a hybrid_pose_ros checkpoint '
                              f'(format tag {found!r}, expected {FORMAT_TAG!r})')
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = 'cpu',
                    expect_preset: str | None = None) -> LoadedCheckpoint:
    """
    Load ``path`` and rebuild its model with the stored weights.

    With ``expect_preset`` the stored preset must match it (e.g. the node's configured preset).
    """
    path = os.fspath(path)
    payload = _read(path, map_location)
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f'checkpoint {path}: missing keys {missing}')
    if payload['version'] != FORMAT_VERSION:
        raise CheckpointError(f'checkpoint {path}: format version {payload["version"]} is not '
                              f'supported (this code reads version {FORMAT_VERSION})')
    kind, preset = payload['kind'], payload['preset']
    if kind not in MODEL_KINDS:
        raise CheckpointError(f'checkpoint {path}: unknown model kind {kind!r} '
                              f'(known: {", ".join(MODEL_KINDS)})')
    if preset not in PRESETS:
        raise CheckpointError(f'checkpoint {path}: unknown preset {preset!r} '
                              f'(known: {", ".join(sorted(PRESETS))})')
    if expect_preset is not None and preset != expect_preset:
        raise CheckpointError(f'checkpoint {path}: preset {preset!r} differs from the '
                              f'expected preset {expect_preset!r}')
    joint_names = tuple(payload['joint_names'])
    if joint_names != JOINT_NAMES:
        raise CheckpointError(f'checkpoint {path}: joint names differ: file {list(joint_names)} '
                              f'vs code {list(JOINT_NAMES)}')
    try:
        config = ModelConfig.from_dict(dict(payload['config']))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f'checkpoint {path}: invalid model config: {error}') from error
    model = build_model(kind, config)
    expected, stored = model.state_dict(), payload['state_dict']
    absent = [name for name in expected if name not in stored]
    unexpected = [name for name in stored if name not in expected]
    if absent or unexpected:
        raise CheckpointError(f'checkpoint {path}: state_dict does not fit a {kind} model: '
                              f'missing [{_first(absent)}], unexpected [{_first(unexpected)}]')
    mismatched = _shape_mismatches(expected, stored)
    if mismatched:
        raise CheckpointError(f'checkpoint {path}: {len(mismatched)} parameter shapes differ '
                              f'from the {kind} model built from its config: '
                              f'{_first(mismatched)}')
    model.load_state_dict(stored)
    model.to(map_location).eval()
    if 'ann_calibration' in payload:
        if kind != 'hybrid':
            raise CheckpointError(f'checkpoint {path}: ann_calibration in a {kind} checkpoint')
        model.ann_calibration = _decode_calibration(payload['ann_calibration'], config, path)
    return LoadedCheckpoint(path=path, kind=kind, preset=preset, config=config, model=model,
                            joint_names=joint_names, geometry=dict(payload['geometry']),
                            metadata=dict(payload['metadata']), version=payload['version'])


def export_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a checkpoint with float16 storage (the size the package ships), keeping its context."""
    loaded = load_checkpoint(source)
    metadata = dict(loaded.metadata, exported_from=os.path.basename(os.fspath(source)),
                    storage='float16')
    save_checkpoint(target, loaded.model, loaded.config, loaded.kind, loaded.geometry, metadata,
                    half=True)
