# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
The DHP19 baseline CNN (Calabrese et al., CVPRW 2019) in PyTorch, with its trained weights.

A referee trained on real DHP19 recordings: ``weights/dhp19/DHP_CNN.model`` is the Keras 2.2.4
HDF5 file of SensorsINI/DHP19 @ 12a3fe6 (MIT), read here with h5py. :class:`Dhp19Cnn` has the
layers of its ``model_config`` under their Keras names and in their order: 3x3 convolutions
without biases, all 'same', each followed by a ReLU (the last one and both transposed
convolutions too); 2x2 max pools ('valid'); dilation 2 in blocks 3 and 4. 218,592 parameters.

Keras stores convolution kernels ``(kh, kw, in, out)`` and transposed-convolution kernels
``(kh, kw, out, in)``; PyTorch wants ``(out, in, kh, kw)`` and ``(in, out, kh, kw)``, so both take
the same axis permutation ``(3, 2, 0, 1)`` and neither is flipped (TensorFlow and PyTorch both
correlate). TensorFlow's 'same' stride-2 transposed convolution of ``n`` pixels is the full
``2n + 1`` output without its last row and column (the matching forward convolution pads one
pixel after the data, none before): :class:`SameConvTranspose2d`.

Input: one ``(260, 344)`` frame of :func:`hybrid_pose_ros.events.dhp19_filters.dhp19_frame`,
values 0..255 as float32 (Keras cast DHP19's uint8 frames without scaling). Output: 13 heatmaps
of the same size in :data:`~hybrid_pose_ros.skeleton.JOINT_NAMES` order, the DHP19 order. A
joint is the first maximum in row-major order of its map, as (column, row) sensor pixels.
"""
from collections import OrderedDict
import os
import pathlib

import h5py
from hybrid_pose_ros.bundled import bundled_file
import numpy as np
import torch
from torch import nn

WEIGHTS_FILE = pathlib.Path('weights') / 'dhp19' / 'DHP_CNN.model'
INPUT_HEIGHT = 260
INPUT_WIDTH = 344


def _conv(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Conv2d:
    """Return Keras ``Conv2D(out_channels, 3, padding='same', use_bias=False)``."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation,
                     bias=False)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """Keras ``Conv2DTranspose(out, 3, strides=2, padding='same', use_bias=False)``: n -> 2n."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the full transposed convolution without its last row and column."""
        return super().forward(x)[..., :-1, :-1]


class Dhp19Cnn(nn.Sequential):
    """The DHP19 baseline CNN; children named and ordered as the Keras model's layers."""

    def __init__(self) -> None:
        super().__init__(OrderedDict([
            ('conv1', _conv(1, 16)), ('activation_1', nn.ReLU()),
            ('pool1', nn.MaxPool2d(2)),
            ('conv2a', _conv(16, 32)), ('activation_2', nn.ReLU()),
            ('conv2b', _conv(32, 32)), ('activation_3', nn.ReLU()),
            ('conv2d', _conv(32, 32)), ('activation_4', nn.ReLU()),
            ('pool2', nn.MaxPool2d(2)),
            ('conv3a', _conv(32, 64, 2)), ('activation_5', nn.ReLU()),
            ('conv3b', _conv(64, 64, 2)), ('activation_6', nn.ReLU()),
            ('conv3c', _conv(64, 64, 2)), ('activation_7', nn.ReLU()),
            ('conv3d', _conv(64, 64, 2)), ('activation_8', nn.ReLU()),
            ('conv3_up', SameConvTranspose2d(64, 32)), ('activation_9', nn.ReLU()),
            ('conv4a', _conv(32, 32, 2)), ('activation_10', nn.ReLU()),
            ('conv4b', _conv(32, 32, 2)), ('activation_11', nn.ReLU()),
            ('conv4c', _conv(32, 32, 2)), ('activation_12', nn.ReLU()),
            ('conv4d', _conv(32, 32, 2)), ('activation_13', nn.ReLU()),
            ('conv4_up', SameConvTranspose2d(32, 16)), ('activation_14', nn.ReLU()),
            ('conv5a', _conv(16, 16)), ('activation_15', nn.ReLU()),
            ('conv5d', _conv(16, 16)), ('activation_16', nn.ReLU()),
            ('pred_cube', _conv(16, 13)), ('activation_17', nn.ReLU()),
        ]))


def default_dhp19_cnn_path() -> pathlib.Path:
    """Find the bundled weights: the installed share directory, else the source weights/."""
    path = bundled_file(WEIGHTS_FILE)
    if path is not None:
        return path
    raise FileNotFoundError(f'the bundled {WEIGHTS_FILE} is not installed')


def read_keras_kernels(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return ``{layer name: kernel}`` of a Keras HDF5 model file, as stored."""
    kernels = {}
    with h5py.File(path, 'r') as f:
        weights = f['model_weights']
        for name in weights.attrs['layer_names']:
            name = name.decode() if isinstance(name, bytes) else str(name)
            names = [w.decode() if isinstance(w, bytes) else str(w)
                     for w in weights[name].attrs['weight_names']]
            if not names:
                continue
            if len(names) != 1 or not names[0].endswith('/kernel:0'):
                raise ValueError(f'{path}: layer {name} has weights {names}, expected one kernel')
            kernels[name] = weights[name][names[0]][()]
    return kernels


def load_dhp19_cnn(path: str | os.PathLike | None = None) -> Dhp19Cnn:
    """Build :class:`Dhp19Cnn` with the weights of a Keras file (default: the bundled one)."""
    path = default_dhp19_cnn_path() if path is None else path
    kernels = read_keras_kernels(path)
    model = Dhp19Cnn()
    layers = {name: layer for name, layer in model.named_children()
              if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d)}
    if set(kernels) != set(layers):
        raise ValueError(f'{path}: weighted layers {sorted(kernels)} are not the DHP19 CNN '
                         f'{sorted(layers)}')
    with torch.no_grad():
        for name, kernel in kernels.items():
            weight = torch.from_numpy(np.ascontiguousarray(
                kernel.transpose(3, 2, 0, 1), dtype=np.float32))
            if weight.shape != layers[name].weight.shape:
                raise ValueError(f'{path}: {name} kernel {kernel.shape} does not fit '
                                 f'{tuple(layers[name].weight.shape)}')
            layers[name].weight.copy_(weight)
    return model.eval()


@torch.inference_mode()
def predict_heatmaps(model: Dhp19Cnn, frames: np.ndarray) -> np.ndarray:
    """Return float32 heatmaps ``[..., 13, 260, 344]`` of frames ``[..., 260, 344]`` (CPU)."""
    frames = np.asarray(frames)
    if frames.shape[-2:] != (INPUT_HEIGHT, INPUT_WIDTH):
        raise ValueError(f'DHP19 frames are {INPUT_HEIGHT}x{INPUT_WIDTH}, got {frames.shape}')
    leading = frames.shape[:-2]
    x = torch.from_numpy(frames.reshape(-1, 1, INPUT_HEIGHT, INPUT_WIDTH).astype(np.float32))
    heatmaps = model(x).numpy()
    return heatmaps.reshape(leading + heatmaps.shape[1:])


def heatmap_peaks(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Return each map's first maximum (row-major) and its value: ``[..., J, 2]``, ``[..., J]``.

    The coordinates are (column, row) pixel indices, DHP19's rule (``np.argwhere(map ==
    map.max())[0]``).
    """
    *leading, height, width = heatmaps.shape
    flat = heatmaps.reshape(*leading, height * width)
    index = flat.argmax(axis=-1)
    uv = np.stack([index % width, index // width], axis=-1).astype(np.float64)
    return uv, np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]


def predict_joints(model: Dhp19Cnn, frame: np.ndarray) -> np.ndarray:
    """Return the 13 joints ``(13, 2)`` as (u, v) sensor pixels of a ``(260, 344)`` frame."""
    return heatmap_peaks(predict_heatmaps(model, frame))[0]
