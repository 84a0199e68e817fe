"""
Event-driven execution of the spiking UNet's inference step on the CPU (batch size 1).

The SNN's layers receive binary spikes (a few percent active) and sparse event counts. A dense
conv multiplies every input, active or not; here every *active* input scatters its weight slice
into the output instead, so the work is proportional to the activity::

    out[Y, X, :] += value * W[c, dy, dx, :]     for each active input (c, y, x) and tap (dy, dx)

The decoder's ``conv5x5(up2x(s))`` is linear in the spikes ``s``, so the bilinear upsampling and
the conv are fused into one 8x8 stride-2 kernel per input channel: 64 taps per spike instead of 16
upsampled values x 25 taps. The upsampling clamps at the map's edges, so inputs on the first or
last row or column use a kernel fused along columns only, one per column class (first, inner,
last), with the row stencil applied as they scatter. In every layer (weights arranged by
:func:`phase_runs` and the fused kernels) each kernel row adds one contiguous run of output columns
x channels, a loop the compiler vectorises (its index starts at 0: Numba checks negative indices,
and a check on every element stops the vectorising). The LIF update of a layer collects the spike
list that the next layers scatter, in position order; a layer whose weights outweigh its output
(``up1``, the residual convs of ``paper``) scatters it channel by channel instead, so each weight
slice is read from memory once per step rather than once per spike. A layer whose inputs are more
active than its threshold runs as a dense torch conv instead, so the cost of a burst stays bounded.
The thresholds are fixed per preset (:data:`PRESET_DENSE_ABOVE`, else
:data:`DENSE_ABOVE_ACTIVITY`), so a model always takes the same path on the same input.
:meth:`SparseSpikingUNet.calibrate` measures them on a machine (where each layer's scatter time
crosses its conv's), but timing varies from run to run, and so would the last bits of the results
(the two paths differ by float rounding, which can flip a spike at the threshold), so it only
informs those constants. Everything runs on the BatchNorm-folded weights in channels-last layout,
in kernels compiled by Numba (cached on disk after the first compile) that release the GIL, so the
node's ANN thread runs beside them.

The layers of a step run in one compiled call (:func:`_run_layers`: no Python between them, the
GIL released throughout) up to a layer above its threshold; that layer runs as a torch conv,
and the next call goes on from the layer after it.

:class:`SparseSpikingUNet` has the same :meth:`step` as :class:`SpikingUNet`, so
``use_sparse_snn(model)`` swaps it into a hybrid or pure-SNN model for inference; the outputs
equal the dense path's up to float rounding (tested within 1e-4). Only the dense fallback uses
torch threads; nothing takes gradients.
"""
from collections.abc import Iterator, Mapping
import copy
import time
from typing import Any, Callable

from hybrid_pose_ros.model.packed import PackedConv2d
from hybrid_pose_ros.model.snn import (
    MembraneLayout, Membranes, SNN_LAYERS, SpikingUNet, StepActivity, upsample2x)
import numba
import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

HWC_ARRAY = '_hwc_array'
"""Attribute of a tensor made by the sparse step: the ``[H, W, C]`` array it views."""

DENSE_ABOVE_ACTIVITY = 0.08
"""
Above this fraction of nonzero inputs a layer runs as a dense torch conv instead.

The default for models whose preset has no table in :data:`PRESET_DENSE_ABOVE`. The scatter's
cost grows with the spikes and the conv's does not; on this CPU the break-even of the calibrated
layers lies at 11-100 % (the tables), so 8 % keeps a burst of activity at most about a dense
step on any architecture.
"""

PAPER_DENSE_ABOVE = {'static_conv': 0.15, 'down1': 0.14, 'down2': 0.16, 'down3': 0.24,
                     'res_conv1': 0.23, 'res_conv2': 0.23, 'up1': 0.35, 'up2': 0.3, 'up3': 0.48,
                     'head': 0.99}
"""Thresholds of the ``paper`` architecture (both rates): see :data:`PRESET_DENSE_ABOVE`."""

PRESET_DENSE_ABOVE: dict[str, float | dict[str, float]] = {
    'cpu': {'static_conv': 0.48, 'down1': 0.17, 'down2': 0.27, 'down3': 0.47, 'res_conv1': 0.45,
            'res_conv2': 0.5, 'up1': 0.63, 'up2': 0.9, 'up3': 1.0, 'head': 0.75},
    'paper': PAPER_DENSE_ABOVE, 'paper_200hz': PAPER_DENSE_ABOVE,
}
"""
Thresholds of a preset, one for every layer or one per layer.

``cpu``: 1.5 times the medians of 14 :meth:`SparseSpikingUNet.calibrate` runs on this 2-core
AMD EPYC with one torch thread (the node's setting), at most 1 (never dense). Calibration compares
a layer's scatter with its torch conv one layer at a time, each paying Python overhead; in the
compiled step a sparse layer pays none and a dense one pays more (it interrupts the call), which
moves each break-even up. Since the scatters add contiguous runs, the thresholds matter little on
real input: on the sample bag (three runs) steps took 1.01-1.12 ms on average with this table,
0.99-1.11 ms with the medians themselves and 0.97-1.06 ms never going dense; the first step of a
window (the most active) 1.25-1.40 ms at the median and at most 1.8-2.2 ms with this table.

``paper`` and ``paper_200hz``: the medians of 3 calibrations (their layers are large, so Python
overhead does not move the break-even; the runs agreed within 0.03). Against 8 % everywhere, the
first step of a window at 7.7 % activity took 146 instead of 220-239 ms (``hybrid_pose_bench
--sections sparse``), the mean step over a window 68 instead of 73-81 ms.
"""

CALIBRATION_ACTIVITIES = (0.02, 0.3)
"""Input activities at which :meth:`SparseSpikingUNet.calibrate` times each layer's scatter."""

LAYER_INPUTS = {
    'static_conv': ('frame',), 'down1': ('static_conv',), 'down2': ('down1',),
    'down3': ('down2',), 'res_conv1': ('down3',), 'res_conv2': ('res_conv1',),
    'up1': ('res_conv2', 'down3'), 'up2': ('up1', 'down2'), 'up3': ('up2', 'down1'),
    'head': ('up3', 'static_conv'),
}
"""The conv layers of a step and whose spikes (or the event ``frame``) each one reads."""

NO_FUSED = np.empty((0, 1, 1, 1), dtype=np.float32)
NO_COLUMNS = np.empty((0, 1, 1, 1, 1), dtype=np.float32)
"""The fused-kernel arguments of layers without upsampling (empty arrays)."""

NO_READOUT = np.empty((0, 0, 0), dtype=np.float32)
"""The compiled step's ``readout`` when the head output is returned as it is."""

UPSAMPLE_STENCIL = np.array([0.25, 0.75, 0.75, 0.25], dtype=np.float32)
"""Weights of input row ``y`` on upsampled rows ``2y-1 .. 2y+2`` (bilinear x2, no corners)."""

UPSAMPLE_EDGE_STENCILS = np.array([[0.0, 1.0, 0.75, 0.25], UPSAMPLE_STENCIL,
                                   [0.25, 0.75, 1.0, 0.0]], dtype=np.float32)
"""
The stencil of a first, inner and last input of a map side (see :func:`_edge_class`).

The upsampling clamps at the edges: the outermost upsampled row or column reads only the edge
input, and there is no position before the first or after the last.
"""


@numba.njit(cache=True, nogil=True)
def _lif(current: np.ndarray, v_in: np.ndarray, v_out: np.ndarray, spikes: np.ndarray,
         active: np.ndarray, tau: np.float32, threshold: np.float32) -> int:
    """
    LIF step on ``[H, W, C]`` arrays; writes spikes, the reset membrane and the spike list.

    The charge ``v + (x - v) / tau`` is rounded as :func:`~hybrid_pose_ros.model.lif.lif_charge`
    (and the official code) rounds it: float32 throughout, no fastmath.
    """
    height, width, channels = current.shape
    count = 0
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                v = v_in[y, x, c]
                v = v + (current[y, x, c] - v) / tau
                if v >= threshold:
                    spikes[y, x, c] = 1.0
                    v = v - threshold
                    active[count, 0] = y
                    active[count, 1] = x
                    active[count, 2] = c
                    count += 1
                else:
                    spikes[y, x, c] = 0.0
                v_out[y, x, c] = v
    return count


@numba.njit(cache=True, nogil=True)
def _sort_by_channel(active: np.ndarray, count: int, channels: int) -> np.ndarray:
    """Return the first ``count`` rows of ``active`` ordered by channel (stable counting sort)."""
    starts = np.zeros(channels + 1, dtype=np.int64)
    for i in range(count):
        starts[active[i, 2] + 1] += 1
    for c in range(channels):
        starts[c + 1] += starts[c]
    ordered = np.empty((count, 3), dtype=np.int32)
    for i in range(count):
        c = active[i, 2]
        ordered[starts[c]] = active[i]
        starts[c] += 1
    return ordered


@numba.njit(cache=True, fastmath=True, nogil=True)
def _scatter_conv(active: np.ndarray, count: int, channel_offset: int, values: np.ndarray,
                  runs: np.ndarray, stride: int, pad: int, out: np.ndarray) -> None:
    """
    Add ``values[i] * W[c]`` of every active input to the conv output ``[Ho, Wo, C_out]``.

    ``runs`` is the weight as :func:`phase_runs` arranges it: each kernel row reaching the
    output adds one contiguous run of output columns x channels.
    """
    in_channels, kernel, taps, out_channels = runs.shape[1:]
    out_h, out_w = out.shape[0], out.shape[1]
    out_flat, runs_flat = out.reshape(-1), runs.reshape(-1)
    row_size = out_w * out_channels
    if kernel == 1 and stride == 1:  # the head: one run per input, no phase arithmetic
        for i in range(count):
            target = (active[i, 0] * out_w + active[i, 1]) * out_channels
            source = (active[i, 2] + channel_offset) * out_channels
            _add_run(out_flat[target:], runs_flat[source:], values[i], out_channels)
        return
    for i in range(count):
        y, x, c = active[i, 0], active[i, 1], active[i, 2] + channel_offset
        phase = (x + pad) % stride
        phase_taps = (kernel - phase + stride - 1) // stride
        first_col = (x + pad - phase) // stride - (phase_taps - 1)
        first_m, last_m = max(0, -first_col), min(phase_taps, out_w - first_col)
        length = (last_m - first_m) * out_channels
        target = (first_col + first_m) * out_channels
        for dy in range((y + pad) % stride, kernel, stride):
            row = (y + pad - dy) // stride
            if row < 0 or row >= out_h:
                continue
            source = (((phase * in_channels + c) * kernel + dy) * taps + first_m) * out_channels
            _add_run(out_flat[row * row_size + target:], runs_flat[source:], values[i], length)


@numba.njit(cache=True, nogil=True)
def _edge_class(index: int, size: int) -> int:
    """Row of :data:`UPSAMPLE_EDGE_STENCILS` for input ``index`` of a side ``size`` > 1 long."""
    return 0 if index == 0 else (2 if index == size - 1 else 1)


@numba.njit(cache=True, nogil=True)
def _stencil_weight(index: int, tap: int, size: int) -> np.float32:
    """Weight of input ``index`` on upsampled position ``2*index - 1 + tap`` (0 if none)."""
    if size == 1:  # the only input is first and last: both upsampled positions read it
        return np.float32(1.0) if tap == 1 or tap == 2 else np.float32(0.0)
    return UPSAMPLE_EDGE_STENCILS[_edge_class(index, size), tap]


@numba.njit(cache=True, fastmath=True, nogil=True)
def _scatter_upsampled_conv(active: np.ndarray, count: int, channel_offset: int,
                            fused: np.ndarray, columns: np.ndarray, runs: np.ndarray,
                            in_h: int, in_w: int, out: np.ndarray) -> None:
    """
    Add every active spike's ``conv5x5(up2x(spike))`` to the output ``[2H, 2W, C_out]``.

    Each kernel row adds one contiguous run of (output columns x channels): from the fused 8x8
    kernel for inner inputs, from the column-fused kernel of the input's column class and the
    row stencil for inputs on an edge.
    """
    out_h, out_w, out_channels = out.shape
    in_channels = fused.shape[0]
    out_flat, fused_flat, columns_flat = out.reshape(-1), fused.reshape(-1), columns.reshape(-1)
    row_size = out_w * out_channels
    for i in range(count):
        y, x, c = active[i, 0], active[i, 1], active[i, 2] + channel_offset
        top, left = 2 * y - 3, 2 * x - 3
        first_q, last_q = max(0, -left), min(8, out_w - left)
        length = (last_q - first_q) * out_channels
        target = (left + first_q) * out_channels
        if 0 < y < in_h - 1 and 0 < x < in_w - 1:
            for r in range(max(0, -top), min(8, out_h - top)):
                source = ((c * 8 + r) * 8 + first_q) * out_channels
                _add_run(out_flat[(top + r) * row_size + target:], fused_flat[source:],
                         np.float32(1.0), length)
            continue
        if in_w == 1:
            _scatter_upsampled_exact(y, x, c, runs, in_h, in_w, out)
            continue
        column_class = _edge_class(x, in_w)
        for tap_y in range(4):
            weight_y = _stencil_weight(y, tap_y, in_h)
            if weight_y == 0.0:
                continue
            for dy in range(5):
                row = top + 4 + tap_y - dy  # upsampled row 2y - 1 + tap_y, conv tap dy
                if row < 0 or row >= out_h:
                    continue
                source = (((column_class * in_channels + c) * 5 + dy) * 8 + first_q) * out_channels
                _add_run(out_flat[row * row_size + target:], columns_flat[source:], weight_y,
                         length)


@numba.njit(cache=True, fastmath=True, nogil=True, inline='always')
def _add_run(target: np.ndarray, source: np.ndarray, scale: np.float32, length: int) -> None:
    """``target[:length] += scale * source[:length]`` (indices from 0, so the loop vectorises)."""
    for j in range(length):
        target[j] += scale * source[j]


@numba.njit(cache=True, fastmath=True, nogil=True)
def _scatter_upsampled_exact(y: int, x: int, c: int, runs: np.ndarray, in_h: int, in_w: int,
                             out: np.ndarray) -> None:
    """Add one spike's ``conv5x5(up2x(spike))`` tap by tap (maps one column wide)."""
    out_h, out_w, out_channels = out.shape
    for tap_y in range(4):
        weight_y = _stencil_weight(y, tap_y, in_h)
        if weight_y == 0.0:
            continue
        for tap_x in range(4):
            weight_x = _stencil_weight(x, tap_x, in_w)
            if weight_x == 0.0:
                continue
            scale = weight_y * weight_x
            for dy in range(5):
                row = 2 * y - 1 + tap_y + 2 - dy
                if row < 0 or row >= out_h:
                    continue
                for dx in range(5):
                    col = 2 * x - 1 + tap_x + 2 - dx
                    if col < 0 or col >= out_w:
                        continue
                    for o in range(out_channels):
                        out[row, col, o] += scale * runs[0, c, dy, 4 - dx, o]


@numba.njit(cache=True, nogil=True)
def _accumulate(out: np.ndarray, active: np.ndarray, count: int, channels: int,
                channel_offset: int, values: np.ndarray, binary: bool, runs: np.ndarray,
                fused: np.ndarray, columns: np.ndarray, stride: int, in_h: int,
                in_w: int) -> None:
    """Scatter one input's active list into ``out`` as :meth:`SparseSpikingUNet._scatter` does."""
    upsampled = fused.shape[0] > 0
    by_channel = binary and (fused.size if upsampled else runs.size) > out.size
    ordered = _sort_by_channel(active, count, channels) if by_channel else active
    if upsampled:
        _scatter_upsampled_conv(ordered, count, channel_offset, fused, columns, runs, in_h,
                                in_w, out)
    else:
        _scatter_conv(ordered, count, channel_offset, values, runs, stride, runs.shape[2] // 2,
                      out)


LAYER_SOURCES = tuple(
    tuple(SNN_LAYERS.index(source) for source in sources if source != 'frame')
    + (-1,) * (2 - sum(source != 'frame' for source in sources))
    for sources in LAYER_INPUTS.values())
""":data:`LAYER_INPUTS` as indices into :data:`SNN_LAYERS` for the compiled step (-1: none)."""

FRAME_LAYER = list(LAYER_INPUTS).index('static_conv')
HEAD_LAYER = list(LAYER_INPUTS).index('head')
RESIDUAL_LAYER, RESIDUAL_SOURCE = list(LAYER_INPUTS).index('res_conv2'), SNN_LAYERS.index('down3')
"""The layer that reads the event frame, the head, and the residual ``res_conv2 += down3``."""

FRAME_COUNT = len(SNN_LAYERS)
"""Where the compiled step keeps the frame's number of nonzero counts in its ``counts``."""


@numba.njit(cache=True, nogil=True)
def _add_scaled(target: np.ndarray, source: np.ndarray, scale: np.float32) -> None:
    """``target += scale * source`` for C-contiguous ``[H, W, C]`` arrays of one shape."""
    flat_target = target.reshape(-1)
    flat_source = source.reshape(-1)
    for i in range(flat_target.size):
        flat_target[i] += scale * flat_source[i]


@numba.njit(cache=True, nogil=True)
def _run_layers(start, frame, frame_active, frame_values, v_in, v_out, spikes, actives, counts,
                runs, biases, fused, columns, strides, limits, tau, threshold,
                out, readout, readout_decay) -> int:
    """
    Run the step's layers from ``start`` in one call (no Python between them, no GIL held).

    Layers are in :data:`LAYER_INPUTS` order (the nine LIF layers, then the head, which writes
    ``out``); each LIF layer writes its membrane, spikes and spike list (``actives``,
    ``counts``), which later layers and skip connections read. The first call lists the frame's
    nonzero counts (``frame_active``, ``frame_values``, ``counts[FRAME_COUNT]``). ``runs`` holds
    each layer's weights as :func:`phase_runs` arranges them, ``fused`` and ``columns`` its
    upsampled kernels (empty for layers without upsampling). A nonempty ``readout`` adds
    ``readout_decay * readout`` to the complete head output (``decay * H + delta``, as
    :meth:`SpikingUNet.step` and the official code compute it). Returns the index of
    the first layer whose active inputs exceed ``limits[i]`` of its inputs, for the caller to
    run densely before calling again from the next layer, or -1 when the step is complete.
    """
    height, width, channels = frame.shape
    if start == FRAME_LAYER:
        n_events = 0
        for y in range(height):
            for x in range(width):
                for c in range(channels):
                    if frame[y, x, c] != 0.0:
                        frame_active[n_events, 0] = y
                        frame_active[n_events, 1] = x
                        frame_active[n_events, 2] = c
                        frame_values[n_events] = frame[y, x, c]
                        n_events += 1
        counts[FRAME_COUNT] = n_events
    largest = 0
    for layer_spikes in spikes:
        largest = max(largest, layer_spikes.size)
    ones = np.ones(largest, dtype=np.float32)   # the values of binary spikes
    for layer in range(start, len(LAYER_SOURCES)):
        sources = LAYER_SOURCES[layer]
        if layer == FRAME_LAYER:
            active_inputs, size_inputs = counts[FRAME_COUNT], frame.size
            in_h, in_w = height, width
        else:
            active_inputs, size_inputs = 0, 0
            for source in sources:
                if source >= 0:
                    active_inputs += counts[source]
                    size_inputs += spikes[source].size
            in_h, in_w = spikes[sources[0]].shape[0], spikes[sources[0]].shape[1]
        if active_inputs > limits[layer] * size_inputs:
            return layer
        upsampled = fused[layer].shape[0] > 0
        stride = strides[layer]
        out_h = 2 * in_h if upsampled else in_h // stride
        out_w = 2 * in_w if upsampled else in_w // stride
        current = out if layer == HEAD_LAYER else np.empty(
            (out_h, out_w, biases[layer].size), dtype=np.float32)
        current[:, :] = biases[layer]
        if layer == FRAME_LAYER:
            _accumulate(current, frame_active, counts[FRAME_COUNT], channels, 0, frame_values,
                        False, runs[layer], fused[layer], columns[layer], stride, in_h, in_w)
        offset = 0
        for source in sources:
            if source < 0:
                continue
            source_channels = spikes[source].shape[2]
            _accumulate(current, actives[source], counts[source], source_channels, offset, ones,
                        True, runs[layer], fused[layer], columns[layer], stride, in_h, in_w)
            offset += source_channels
        if layer == HEAD_LAYER:
            if readout.size > 0:
                _add_scaled(current, readout, readout_decay)
            return -1
        if layer == RESIDUAL_LAYER:
            current += spikes[RESIDUAL_SOURCE]
        counts[layer] = _lif(current, v_in[layer], v_out[layer], spikes[layer], actives[layer],
                             tau, threshold)
    return -1


def phase_runs(weight: np.ndarray, stride: int) -> np.ndarray:
    """
    Arrange a conv's taps ``[C_in, k, k, C_out]`` as contiguous output runs.

    The result is ``[stride, C_in, k, ceil(k / stride), C_out]``. An input at column ``x``
    reaches the output through the taps ``dx`` congruent to its phase ``(x + k // 2) mod
    stride``; ``runs[phase, c, dy]`` holds them by ascending output column (descending ``dx``),
    zero-padded where a phase has fewer taps.
    """
    in_channels, kernel, _, out_channels = weight.shape
    runs = np.zeros((stride, in_channels, kernel, -(-kernel // stride), out_channels),
                    dtype=np.float32)
    for phase in range(stride):
        taps = list(range(phase, kernel, stride))[::-1]
        runs[phase, :, :, :len(taps)] = weight[:, :, taps]
    return runs


def fuse_upsampled_conv(weight: np.ndarray) -> np.ndarray:
    """
    Fuse bilinear x2 upsampling into a 5x5 conv: ``[C_in, 5, 5, C_out] -> [C_in, 8, 8, C_out]``.

    ``fused[c, r, q]`` is the weight of an interior input at ``(y, x)`` on output
    ``(2y - 3 + r, 2x - 3 + q)``.
    """
    if weight.shape[1:3] != (5, 5):
        raise ValueError(f'expected a 5x5 kernel, got {weight.shape[1:3]}')
    fused = np.zeros((weight.shape[0], 8, 8, weight.shape[3]), dtype=np.float64)
    for tap_y, weight_y in enumerate(UPSAMPLE_STENCIL):
        for tap_x, weight_x in enumerate(UPSAMPLE_STENCIL):
            for dy in range(5):
                for dx in range(5):
                    fused[:, tap_y - dy + 4, tap_x - dx + 4] += (
                        float(weight_y) * float(weight_x) * weight[:, dy, dx])
    return fused.astype(np.float32)


def fuse_upsampled_columns(weight: np.ndarray) -> np.ndarray:
    """
    Fuse x2 upsampling along columns into a 5x5 conv, per column class (first, inner, last).

    ``[C_in, 5, 5, C_out] -> [3, C_in, 5, 8, C_out]``: ``columns[k, c, dy, q]`` is the weight of
    an input at column ``x`` of class ``k`` on output column ``2x - 3 + q``, through kernel row
    ``dy`` of the upsampled row it reaches; the upsampling along rows stays a stencil.
    """
    if weight.shape[1:3] != (5, 5):
        raise ValueError(f'expected a 5x5 kernel, got {weight.shape[1:3]}')
    columns = np.zeros((3, weight.shape[0], 5, 8, weight.shape[3]), dtype=np.float64)
    for column_class, stencil in enumerate(UPSAMPLE_EDGE_STENCILS):
        for tap_x, weight_x in enumerate(stencil):
            for dx in range(5):
                columns[column_class, :, :, tap_x - dx + 4] += float(weight_x) * weight[:, :, dx]
    return columns.astype(np.float32)


def _folded_conv(module: nn.Module) -> nn.Conv2d:
    """
    Return the conv of a ``conv [-> BatchNorm]`` layer with the BN (eval statistics) folded.

    A prepacked conv (:class:`~hybrid_pose_ros.model.packed.PackedConv2d`) is unpacked.
    """
    if isinstance(module, (nn.Conv2d, PackedConv2d)):
        module = nn.Sequential(module)
    conv, norm = module[0], module[1] if len(module) > 1 else None
    if isinstance(conv, PackedConv2d):
        conv = conv.unpacked()
    return fuse_conv_bn_eval(conv, norm) if isinstance(norm, nn.BatchNorm2d) else conv


class _Layer:
    """One BN-folded conv in scatter layout: weight ``[C_in, k, k, C_out]`` and bias."""

    def __init__(self, module: nn.Module, upsampled: bool = False) -> None:
        conv = _folded_conv(module)
        self.weight = np.ascontiguousarray(
            conv.weight.detach().float().permute(1, 2, 3, 0).numpy())
        self.bias = (conv.bias.detach().float().numpy() if conv.bias is not None
                     else np.zeros(self.weight.shape[3], dtype=np.float32))
        self.stride = int(conv.stride[0])
        self.fused = fuse_upsampled_conv(self.weight) if upsampled else NO_FUSED
        self.columns = fuse_upsampled_columns(self.weight) if upsampled else NO_COLUMNS
        self.runs = phase_runs(self.weight, 1 if upsampled else self.stride)
        self.upsampled = upsampled
        self.conv = copy.deepcopy(conv).requires_grad_(False).to(
            memory_format=torch.channels_last)

    def dense_current(self, inputs: list['SpikeList']) -> np.ndarray:
        """Compute the layer with torch on the dense inputs (the high-activity fallback)."""
        parts = [torch.from_numpy(spikes.dense).permute(2, 0, 1).unsqueeze(0)
                 for spikes in inputs]
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        x = upsample2x(x) if self.upsampled else x
        current = self.conv(x.contiguous(memory_format=torch.channels_last))
        return np.ascontiguousarray(current[0].permute(1, 2, 0).numpy())

    def output(self, height: int, width: int) -> np.ndarray:
        """Return a fresh ``[height, width, C_out]`` accumulator holding the bias."""
        out = np.empty((height, width, self.weight.shape[3]), dtype=np.float32)
        out[...] = self.bias
        return out


class SpikeList:
    """
    A layer's input in both forms: the dense ``[H, W, C]`` map and its active ``(y, x, c)``.

    ``values`` holds the active entries' values, or None for binary spikes (all ones).
    """

    def __init__(self, dense: np.ndarray, active: np.ndarray, count: int,
                 values: np.ndarray | None = None) -> None:
        self.dense = dense
        self.active = active
        self.count = count
        self.values = values

    @classmethod
    def from_dense(cls, dense: np.ndarray, binary: bool = True) -> 'SpikeList':
        """List the nonzero entries of a ``[H, W, C]`` array (with their values unless binary)."""
        nonzero = np.nonzero(dense)
        values = None if binary else dense[nonzero].astype(np.float32)
        return cls(dense, np.stack(nonzero, axis=1).astype(np.int32), len(nonzero[0]), values)

    def scale(self) -> np.ndarray:
        """Return the value of every active entry."""
        return np.ones(self.count, np.float32) if self.values is None else self.values


def median_ms(function: Callable[[], Any], repeats: int = 5,
              budget_s: float = float('inf')) -> float:
    """
    Median wall time of ``function()`` in ms after one warm-up call.

    At most ``repeats`` timed calls, fewer (at least one) once ``budget_s`` seconds have passed.
    """
    function()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeats and (not times or time.perf_counter() < deadline):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def _hwc(tensor: torch.Tensor) -> np.ndarray:
    """
    ``[1, C, H, W]`` tensor as a C-contiguous ``[H, W, C]`` float32 array (a view if it can).

    A tensor :func:`_nchw` made gives back its array at once (the previous step's membranes);
    others move their axes in numpy, not torch, since each torch view op costs microseconds of
    dispatch.
    """
    array = getattr(tensor, HWC_ARRAY, None)
    if array is not None:
        return array
    if tensor.dtype != torch.float32:
        tensor = tensor.to(torch.float32)
    return np.ascontiguousarray(tensor.detach().numpy()[0].transpose(1, 2, 0))


def _nchw(array: np.ndarray) -> torch.Tensor:
    """``[H, W, C]`` array as a ``[1, C, H, W]`` tensor sharing its memory (channels-last)."""
    tensor = torch.from_numpy(array.reshape(1, *array.shape).transpose(0, 3, 1, 2))
    setattr(tensor, HWC_ARRAY, array)
    return tensor


class SpikeMaps(Mapping[str, torch.Tensor]):
    """
    A step's spike maps ``[1, C, H, W]`` by layer, made from its ``[H, W, C]`` arrays when read.

    The node reads only the firing rates, so most steps never pay the nine tensor views.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = arrays
        self._tensors: dict[str, torch.Tensor] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._tensors:
            self._tensors[name] = _nchw(self._arrays[name])
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


class SparseSpikingUNet(MembraneLayout, nn.Module):
    """
    The spiking UNet's step, event-driven: work proportional to the spikes (batch size 1).

    Built from a :class:`SpikingUNet`, folded or not (BatchNorm is folded here with its eval
    statistics); holds no trainable parameters. :meth:`step` takes and returns what
    :meth:`SpikingUNet.step` does.
    """

    def __init__(self, snn: SpikingUNet,
                 dense_above: float | dict[str, float] = DENSE_ABOVE_ACTIVITY) -> None:
        super().__init__()
        if snn.training:
            raise ValueError('the sparse SNN uses BatchNorm eval statistics: call .eval() first')
        self.dense_above = self._thresholds(dense_above)
        self.config = snn.config
        self.tau = snn.tau
        self.v_threshold = snn.v_threshold
        self.tau_float32 = np.float32(snn.tau)
        self.layers = {name: _Layer(getattr(snn, name), upsampled=name.startswith('up'))
                       for name in SNN_LAYERS}
        self.layers['head'] = _Layer(snn.head)
        ordered = [self.layers[name] for name in LAYER_INPUTS]
        self._kernel_args = (tuple(layer.runs for layer in ordered),
                             tuple(layer.bias for layer in ordered),
                             tuple(layer.fused for layer in ordered),
                             tuple(layer.columns for layer in ordered),
                             tuple(layer.stride for layer in ordered))
        self._warm_up()

    @staticmethod
    def _thresholds(dense_above: float | dict[str, float]) -> dict[str, float]:
        """Per-layer dense thresholds from one value for all layers or a complete mapping."""
        if not isinstance(dense_above, dict):
            return dict.fromkeys(LAYER_INPUTS, float(dense_above))
        missing = sorted(set(LAYER_INPUTS) - set(dense_above))
        if missing:
            raise ValueError(f'dense_above lacks layers {missing}')
        return {name: float(dense_above[name]) for name in LAYER_INPUTS}

    def _warm_up(self) -> None:
        """
        Compile the kernels (or load Numba's disk cache) and set up the dense fallback now.

        The dense pass runs at the model's input size, so oneDNN creates its conv primitives
        here and not in the first burst of activity.
        """
        height, width = self.config.input_height, self.config.input_width
        frame = torch.zeros(1, self.config.snn_in_channels, height, width)
        dense_above = self.dense_above
        try:
            for everywhere in (1.0, -1.0):   # every layer sparse, then every layer dense
                self.dense_above = self._thresholds(everywhere)
                self.step(frame, self.zero_membranes(1, height, width))
        finally:
            self.dense_above = dense_above

    def calibrate(self, height: int | None = None, width: int | None = None,
                  seed: int = 0) -> dict[str, float]:
        """
        Set each layer's dense threshold where its scatter gets slower than its dense conv.

        Both paths of every layer are timed on random inputs of an input of ``height x width``
        (default: the model's) at :data:`CALIBRATION_ACTIVITIES`, with the current torch thread
        count; the scatter's time is taken as linear in the activity. Returns the thresholds
        (also stored in :attr:`dense_above`). Which path runs never changes the results beyond
        float rounding, only their cost.
        """
        height = self.config.input_height if height is None else height
        width = self.config.input_width if width is None else width
        rng = np.random.default_rng(seed)
        shapes = dict(zip(SNN_LAYERS, (shape[1:] for shape in
                                       self.membrane_shapes(1, height, width))))
        shapes['frame'] = (self.config.snn_in_channels, height, width)
        low, high = CALIBRATION_ACTIVITIES
        thresholds = {}
        for name, sources in LAYER_INPUTS.items():
            def inputs(activity: float) -> list[SpikeList]:
                lists = []
                for source in sources:
                    channels, rows, cols = shapes[source]
                    dense = (rng.random((rows, cols, channels)) < activity).astype(np.float32)
                    lists.append(SpikeList.from_dense(dense, binary=source != 'frame'))
                return lists

            layer, sparse, busy = self.layers[name], inputs(low), inputs(high)
            dense_ms = median_ms(lambda: layer.dense_current(sparse), budget_s=0.5)
            low_ms = median_ms(lambda: self._scatter(name, sparse), budget_s=0.5)
            high_ms = median_ms(lambda: self._scatter(name, busy), budget_s=0.5)
            slope = (high_ms - low_ms) / (high - low)
            crossing = low + (dense_ms - low_ms) / slope if slope > 0 else 1.0
            thresholds[name] = float(np.clip(crossing, 0.0, 1.0))
        self.dense_above = thresholds
        return thresholds

    def _dense(self, name: str, inputs: list[SpikeList]) -> bool:
        """Whether layer ``name`` fed ``inputs`` runs dense (its activity is above threshold)."""
        active = sum(spikes.count for spikes in inputs)
        return active > self.dense_above[name] * sum(spikes.dense.size for spikes in inputs)

    def _scatter(self, name: str, inputs: list[SpikeList]) -> np.ndarray:
        """Compute the layer's current from its active inputs only (sparse path, no dispatch)."""
        layer = self.layers[name]
        height, width = inputs[0].dense.shape[:2]
        if layer.upsampled:
            out = layer.output(2 * height, 2 * width)
        else:
            out = layer.output(height // layer.stride, width // layer.stride)
        offset = 0
        for spikes in inputs:
            channels = spikes.dense.shape[2]
            _accumulate(out, spikes.active, spikes.count, channels, offset, spikes.scale(),
                        spikes.values is None, layer.runs, layer.fused, layer.columns,
                        layer.stride, height, width)
            offset += channels
        return out

    def layer_current(self, name: str, inputs: list[SpikeList]) -> np.ndarray:
        """
        Return one layer's input current (conv + folded BN), ``[Ho, Wo, C_out]``.

        ``inputs`` are the layer's conv inputs in channel order (the parts of a concatenation;
        for ``up*`` before the upsampling); only their active entries do work, unless the
        layer's activity is above its dense threshold.
        """
        if name not in self.layers:
            raise ValueError(f'unknown layer {name!r}; layers: {", ".join(self.layers)}')
        if self._dense(name, inputs):
            return self.layers[name].dense_current(inputs)
        return self._scatter(name, inputs)

    @torch.inference_mode()
    def step(self, frame: torch.Tensor, membranes: Membranes,
             readout: torch.Tensor | None = None, readout_decay: float = 1.0
             ) -> tuple[torch.Tensor, Membranes, StepActivity]:
        """
        Run one event-driven step on ``frame [1, C, H, W]``; see :meth:`SpikingUNet.step`.

        Returns the head output ``[1, J, H, W]`` (with ``readout``: ``readout_decay * readout``
        plus the head output), the nine new membranes and the spike maps
        (channels-last tensors sharing memory with the step's arrays) with their spike counts.
        """
        if len(membranes) != len(SNN_LAYERS):
            raise ValueError(f'expected {len(SNN_LAYERS)} membranes, got {len(membranes)}')
        if frame.dim() != 4 or frame.shape[0] != 1:
            raise ValueError(f'the sparse SNN steps one sample: frame must be [1, C, H, W], '
                             f'got {tuple(frame.shape)}')
        height, width = frame.shape[2:]
        if height % 8 or width % 8:
            raise ValueError(f'the frame is {height}x{width}; the UNet needs sides that are '
                             'multiples of 8 (three stride-2 convs)')
        for name, membrane, shape in zip(SNN_LAYERS, membranes,
                                         self.membrane_shapes(1, height, width)):
            if tuple(membrane.shape) != shape:
                raise ValueError(f'{name}: membrane {tuple(membrane.shape)} does not fit the '
                                 f'layer output {shape}')
        frame_hwc = _hwc(frame)
        v_in = tuple(_hwc(membrane) for membrane in membranes)
        v_out = tuple(np.empty_like(v) for v in v_in)
        spikes = tuple(np.empty_like(v) for v in v_in)
        actives = tuple(np.empty((v.size, 3), dtype=np.int32) for v in v_in)
        frame_active = np.empty((frame_hwc.size, 3), dtype=np.int32)
        frame_values = np.empty(frame_hwc.size, dtype=np.float32)
        counts = np.zeros(FRAME_COUNT + 1, dtype=np.int64)
        out = np.empty((height, width, self.layers['head'].weight.shape[3]), dtype=np.float32)
        if readout is not None and tuple(readout.shape) != (1, out.shape[2], height, width):
            raise ValueError(f'readout {tuple(readout.shape)} does not fit the head output '
                             f'{(1, out.shape[2], height, width)}')
        readout_hwc = NO_READOUT if readout is None else _hwc(readout)
        decay = np.float32(readout_decay)
        limits = np.array([self.dense_above[name] for name in LAYER_INPUTS])
        runs, biases, fused, columns, strides = self._kernel_args
        threshold = np.float32(self.v_threshold)
        start = 0
        while start >= 0:
            dense_layer = _run_layers(start, frame_hwc, frame_active, frame_values, v_in, v_out,
                                      spikes, actives, counts, runs, biases, fused, columns,
                                      strides, limits, self.tau_float32, threshold, out,
                                      readout_hwc, decay)
            if dense_layer < 0:
                break
            name = list(LAYER_INPUTS)[dense_layer]
            if dense_layer == FRAME_LAYER:
                inputs = [SpikeList(frame_hwc, frame_active, int(counts[FRAME_COUNT]),
                                    frame_values)]
            else:
                inputs = [SpikeList(spikes[i], actives[i], int(counts[i]))
                          for i in LAYER_SOURCES[dense_layer] if i >= 0]
            current = self.layers[name].dense_current(inputs)
            if dense_layer == HEAD_LAYER:
                out[...] = current
                if readout is not None:
                    _add_scaled(out, readout_hwc, decay)
                break
            if dense_layer == RESIDUAL_LAYER:
                current += spikes[RESIDUAL_SOURCE]
            counts[dense_layer] = _lif(current, v_in[dense_layer], v_out[dense_layer],
                                       spikes[dense_layer], actives[dense_layer],
                                       self.tau_float32, threshold)
            start = dense_layer + 1
        activity = StepActivity(SpikeMaps(dict(zip(SNN_LAYERS, spikes))),
                                {name: count / s.size for name, count, s
                                 in zip(SNN_LAYERS, counts.tolist(), spikes)})
        return _nchw(out), [_nchw(v) for v in v_out], activity


def use_sparse_snn(model: nn.Module, dense_above: float | dict[str, float] | None = None
                   ) -> nn.Module:
    """
    Replace ``model.snn`` (hybrid or pure SNN, eval mode) by its event-driven twin, in place.

    Without ``dense_above`` the preset's thresholds are used (:data:`PRESET_DENSE_ABOVE`, else
    :data:`DENSE_ABOVE_ACTIVITY` for every layer).
    """
    snn = getattr(model, 'snn', None)
    if not isinstance(snn, SpikingUNet):
        raise TypeError(f'{type(model).__name__} has no dense SpikingUNet to make sparse '
                        f'(found {type(snn).__name__})')
    if dense_above is None:
        dense_above = PRESET_DENSE_ABOVE.get(snn.config.preset, DENSE_ABOVE_ACTIVITY)
    model.snn = SparseSpikingUNet(snn, dense_above)
    return model
