"""
Compute and energy accounting of the hybrid model, as plain data.

Per SNN step, :func:`account_step` reports for every layer (spec sections 3.2 and 5.6):

``dense_macs``
    ``C_out * H_out * W_out * C_in * k * k`` (see :mod:`hybrid_pose_ros.model.macs`).
``synaptic_ops``
    Operations an event-driven chip would trigger: every non-zero input value times the
    number of (output neuron, weight) pairs it reaches, computed exactly at the borders (a tap
    that falls on padding is no synapse). Input kinds:

    * ``event_counts`` (``static_conv``): an input of n events costs n accumulates, so the
      count is ``sum(|input|) x fan-out``;
    * ``spikes`` (``down1..res_conv2``, ``head``): binary inputs, ``non-zeros x fan-out``;
    * ``upsampled_spikes`` (``up1..up3``): the conv input is the bilinearly upsampled spike map,
      whose values are fractional: ``non-zeros of the upsampled map x fan-out``. These are
      multiply-accumulates, priced at ``E_MAC`` in the ``event_driven`` energy.
``fused_synaptic_ops``
    The decoder seen as one linear map from the low-resolution spikes (upsampling folded into
    the conv, as event-driven hardware would do it): ``spikes x number of outputs reachable
    through upsample-then-conv x C_out``. Equal to ``synaptic_ops`` for the other layers.
``simplified_ops``
    The paper's own count: the layer's *output* firing rate times its own dense MACs (ignores
    the input counts, the fractional decoder inputs and the head).

The identity residual add of ``res_conv2`` (one add per ``down3`` spike) is not a synapse and
is not counted. Energies are given for both constant sets of the paper: ``arxiv_v1``
(E_MAC 4.6 pJ, E_AC 0.9 pJ, 45 nm Horowitz) and ``cvprw`` (1.645 pJ/MAC, 0.38 pJ/SynOp).
All counts are per sample (batch averages).
"""
from dataclasses import asdict, dataclass
import functools
from typing import Any, Mapping, Sequence

from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.model.macs import ann_macs, ConvSpec, initializer_macs, snn_conv_specs
from hybrid_pose_ros.model.snn import SNN_LAYERS, upsample2x
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class EnergyConstants:
    """Energy per dense multiply-accumulate and per accumulate-only synaptic operation."""

    name: str
    e_mac_pj: float
    e_ac_pj: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


ARXIV_V1 = EnergyConstants('arxiv_v1', e_mac_pj=4.6, e_ac_pj=0.9)
"""45 nm Horowitz FP32 constants of the older accounting (``final_plots.py``)."""

CVPRW = EnergyConstants('cvprw', e_mac_pj=1.645, e_ac_pj=0.38)
"""Constants consistent with the CVPRW power figure (``results/iccv/core.py``)."""

ENERGY_CONSTANTS = (ARXIV_V1, CVPRW)

SNN_ENERGY_VIEWS = ('paper_simplified', 'event_driven', 'event_driven_fused', 'dense')
"""How an SNN step is priced; see :class:`SnnStepEnergy`."""

INPUT_KINDS = {
    'static_conv': 'event_counts',
    'up1': 'upsampled_spikes',
    'up2': 'upsampled_spikes',
    'up3': 'upsampled_spikes',
}
"""Layers whose input is not a binary spike map (all others: ``spikes``)."""


@dataclass(frozen=True)
class LayerAccounting:
    """Per-sample counts of one SNN layer in one step (see the module docstring)."""

    name: str
    input_kind: str
    neurons: int
    dense_macs: int
    synaptic_ops: float
    fused_synaptic_ops: float
    output_firing_rate: float | None
    simplified_ops: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class StepAccounting:
    """Per-sample counts of one SNN step (or the mean over several), layer by layer."""

    layers: tuple[LayerAccounting, ...]

    @property
    def dense_macs(self) -> int:
        """Dense MACs of the step."""
        return sum(layer.dense_macs for layer in self.layers)

    @property
    def synaptic_ops(self) -> float:
        """Event-driven operations (inputs x fan-out), decoder counted after upsampling."""
        return sum(layer.synaptic_ops for layer in self.layers)

    @property
    def fused_synaptic_ops(self) -> float:
        """Event-driven operations with the decoder counted from the spikes before upsampling."""
        return sum(layer.fused_synaptic_ops for layer in self.layers)

    @property
    def simplified_ops(self) -> float:
        """Return the paper's count: sum over LIF layers of output rate x dense MACs."""
        return sum(layer.simplified_ops for layer in self.layers)

    @property
    def firing_rates(self) -> dict[str, float]:
        """Output firing rate of each LIF layer."""
        return {layer.name: layer.output_firing_rate for layer in self.layers
                if layer.output_firing_rate is not None}

    @property
    def mean_firing_rate(self) -> float:
        """Fraction of all LIF neurons that fired (neuron-weighted)."""
        lif_layers = [layer for layer in self.layers if layer.output_firing_rate is not None]
        neurons = sum(layer.neurons for layer in lif_layers)
        spikes = sum(layer.neurons * layer.output_firing_rate for layer in lif_layers)
        return spikes / neurons if neurons else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary with the per-layer rows and the totals."""
        return {
            'layers': [layer.to_dict() for layer in self.layers],
            'dense_macs': self.dense_macs,
            'synaptic_ops': self.synaptic_ops,
            'fused_synaptic_ops': self.fused_synaptic_ops,
            'simplified_ops': self.simplified_ops,
            'mean_firing_rate': self.mean_firing_rate,
        }


def _tap_count(values: torch.Tensor, spec: ConvSpec) -> float:
    """Sum over outputs of the input mass inside each receptive field (padding excluded)."""
    kernel = values.new_ones(1, 1, spec.kernel_size, spec.kernel_size)
    per_output = F.conv2d(values, kernel, stride=spec.stride, padding=spec.kernel_size // 2)
    return float(per_output.sum(dtype=torch.float64))


@functools.lru_cache(maxsize=64)
def _reach_1d(length: int, kernel_size: int) -> torch.Tensor:
    """Per low-resolution index: output positions reached through bilinear x2 then a conv."""
    eye = torch.eye(length, dtype=torch.float64)[None]
    upsample = F.interpolate(eye, scale_factor=2, mode='linear', align_corners=False)[0].T
    index = torch.arange(2 * length)
    band = ((index[:, None] - index[None, :]).abs() <= kernel_size // 2).double()
    return ((band @ upsample) > 0).sum(dim=0).float()


def _reach_map(height: int, width: int, kernel_size: int) -> torch.Tensor:
    return torch.outer(_reach_1d(height, kernel_size), _reach_1d(width, kernel_size))


def _layer_inputs(frame: torch.Tensor,
                  spikes: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map each layer to the tensor its conv reads (before upsampling, for the decoder)."""
    s = spikes
    return {
        'static_conv': frame,
        'down1': s['static_conv'],
        'down2': s['down1'],
        'down3': s['down2'],
        'res_conv1': s['down3'],
        'res_conv2': s['res_conv1'],
        'up1': torch.cat((s['res_conv2'], s['down3']), dim=1),
        'up2': torch.cat((s['up1'], s['down2']), dim=1),
        'up3': torch.cat((s['up2'], s['down1']), dim=1),
        'head': torch.cat((s['up3'], s['static_conv']), dim=1),
    }


@torch.no_grad()
def account_step(config: ModelConfig, frame: torch.Tensor,
                 spikes: Mapping[str, torch.Tensor]) -> StepAccounting:
    """
    Count one SNN step from its input ``frame [B, 2, H, W]`` and its spike maps.

    ``spikes`` maps each name of :data:`SNN_LAYERS` to its ``[B, C, h, w]`` spikes
    (``StepActivity.spikes``). Counts are per sample. The exact border-aware counting costs
    about as much as an SNN step of the ``cpu`` preset (~2 ms on 2 cores): a live node should
    sample it (e.g. one step per window) rather than run it on every step.
    """
    missing = [name for name in SNN_LAYERS if name not in spikes]
    if missing:
        raise ValueError(f'spike maps missing for layers {missing}')
    batch = frame.shape[0]
    specs = snn_conv_specs(config)
    inputs = _layer_inputs(frame.detach().float(),
                           {k: v.detach().float() for k, v in spikes.items()})
    rows = []
    for name, spec in specs.items():
        kind = INPUT_KINDS.get(name, 'spikes')
        low_res = inputs[name]
        if kind == 'event_counts':
            mass = low_res.abs().sum(dim=1, keepdim=True)
        elif kind == 'upsampled_spikes':
            # channels-last: bilinear upsampling of many small channels is ~10x faster on CPU
            upsampled = upsample2x(low_res.contiguous(memory_format=torch.channels_last))
            mass = (upsampled != 0).sum(dim=1, keepdim=True).float()
        else:
            mass = (low_res != 0).sum(dim=1, keepdim=True).float()
        ops = _tap_count(mass, spec) * spec.out_channels / batch
        fused_ops = ops
        if kind == 'upsampled_spikes':
            reach = _reach_map(low_res.shape[2], low_res.shape[3], spec.kernel_size)
            spike_count = (low_res != 0).sum(dim=(0, 1)).float()
            fused_ops = float((spike_count * reach).sum(dtype=torch.float64)) * (
                spec.out_channels / batch)
        rate = (None if name == 'head'
                else float(spikes[name].detach().sum(dtype=torch.float64)) / spikes[name].numel())
        simplified = 0.0 if rate is None else rate * spec.macs
        neurons = spec.out_channels * spec.out_height * spec.out_width
        rows.append(LayerAccounting(name, kind, neurons, spec.macs, ops, fused_ops, rate,
                                    simplified))
    return StepAccounting(tuple(rows))


def mean_accounting(steps: Sequence[StepAccounting]) -> StepAccounting:
    """Average several steps layer by layer (e.g. over a window or a recording)."""
    if not steps:
        raise ValueError('no steps to average')
    rows = []
    for layer_rows in zip(*(step.layers for step in steps)):
        first = layer_rows[0]
        n = len(layer_rows)
        rate = (None if first.output_firing_rate is None
                else sum(r.output_firing_rate for r in layer_rows) / n)
        rows.append(LayerAccounting(
            first.name, first.input_kind, first.neurons, first.dense_macs,
            sum(r.synaptic_ops for r in layer_rows) / n,
            sum(r.fused_synaptic_ops for r in layer_rows) / n,
            rate,
            sum(r.simplified_ops for r in layer_rows) / n))
    return StepAccounting(tuple(rows))


@dataclass(frozen=True)
class SnnStepEnergy:
    """
    Energy of one SNN step in joules, priced four ways.

    ``paper_simplified``: ``simplified_ops x E_AC`` (how the paper's figures price the SNN);
    ``event_driven``: ``synaptic_ops`` at ``E_AC`` for event-count and spike inputs and at
    ``E_MAC`` for the fractional decoder inputs, head included; ``event_driven_fused``: all
    ``fused_synaptic_ops`` at ``E_AC``; ``dense``: every dense MAC at ``E_MAC`` (the SNN run as
    a conventional CNN, e.g. on a GPU or CPU).
    """

    constants: str
    paper_simplified_j: float
    event_driven_j: float
    event_driven_fused_j: float
    dense_j: float

    def view(self, name: str) -> float:
        """Energy in joules of view ``name`` (one of :data:`SNN_ENERGY_VIEWS`)."""
        if name not in SNN_ENERGY_VIEWS:
            raise ValueError(f'unknown SNN energy view {name!r}; known: {SNN_ENERGY_VIEWS}')
        return getattr(self, f'{name}_j')

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def snn_step_energy(step: StepAccounting, constants: EnergyConstants) -> SnnStepEnergy:
    """Price one (mean) SNN step with ``constants``."""
    e_mac, e_ac = constants.e_mac_pj * 1e-12, constants.e_ac_pj * 1e-12
    event_driven = sum(
        layer.synaptic_ops * (e_mac if layer.input_kind == 'upsampled_spikes' else e_ac)
        for layer in step.layers)
    return SnnStepEnergy(
        constants=constants.name,
        paper_simplified_j=step.simplified_ops * e_ac,
        event_driven_j=event_driven,
        event_driven_fused_j=step.fused_synaptic_ops * e_ac,
        dense_j=step.dense_macs * e_mac,
    )


@dataclass(frozen=True)
class PowerComparison:
    """
    Average power of the hybrid and of the ANN alone, both producing poses at the SNN rate.

    The hybrid runs the ANN and the initialisers at ``ann_rate_hz`` and the SNN at
    ``snn_rate_hz``; the ANN-only baseline reruns the ANN at ``snn_rate_hz``. Per-window
    energies (one ANN period) are the older, arXiv-v1 way of reporting the same numbers.
    """

    constants: str
    snn_view: str
    snn_rate_hz: float
    ann_rate_hz: float
    ann_pass_j: float
    initializer_pass_j: float
    snn_step_j: float
    ann_w: float
    initializer_w: float
    snn_w: float
    hybrid_w: float
    ann_only_w: float
    hybrid_window_j: float
    ann_only_window_j: float
    power_saving: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def power_comparison(config: ModelConfig, snn_step_j: float, constants: EnergyConstants,
                     snn_view: str = 'custom') -> PowerComparison:
    """Compare hybrid and ANN-only power at the config's rates for a given SNN step energy."""
    e_mac = constants.e_mac_pj * 1e-12
    ann_pass_j = ann_macs(config) * e_mac
    initializer_pass_j = initializer_macs(config) * e_mac
    ann_w = config.ann_rate_hz * ann_pass_j
    initializer_w = config.ann_rate_hz * initializer_pass_j
    snn_w = config.snn_rate_hz * snn_step_j
    hybrid_w = ann_w + initializer_w + snn_w
    ann_only_w = config.snn_rate_hz * ann_pass_j
    steps = config.steps_per_window
    return PowerComparison(
        constants=constants.name, snn_view=snn_view, snn_rate_hz=config.snn_rate_hz,
        ann_rate_hz=config.ann_rate_hz, ann_pass_j=ann_pass_j,
        initializer_pass_j=initializer_pass_j, snn_step_j=snn_step_j, ann_w=ann_w,
        initializer_w=initializer_w, snn_w=snn_w, hybrid_w=hybrid_w, ann_only_w=ann_only_w,
        hybrid_window_j=ann_pass_j + initializer_pass_j + steps * snn_step_j,
        ann_only_window_j=steps * ann_pass_j,
        power_saving=1.0 - hybrid_w / ann_only_w,
    )


def energy_report(config: ModelConfig, step: StepAccounting,
                  constants: Sequence[EnergyConstants] = ENERGY_CONSTANTS) -> dict[str, Any]:
    """
    Everything as one plain dictionary (what the ROS node publishes).

    Keys: ``step`` (per-layer counts), ``dense_macs`` (ANN pass, initialisation, SNN step) and
    ``energy[constants name]`` with ``snn_step`` energies and a ``power`` comparison per view.
    """
    report: dict[str, Any] = {
        'preset': config.preset,
        'step': step.to_dict(),
        'dense_macs': {'ann_pass': ann_macs(config),
                       'initializer_pass': initializer_macs(config),
                       'snn_step': step.dense_macs},
        'energy': {},
    }
    for constant_set in constants:
        step_energy = snn_step_energy(step, constant_set)
        report['energy'][constant_set.name] = {
            'constants': constant_set.to_dict(),
            'snn_step': step_energy.to_dict(),
            'power': {view: power_comparison(config, step_energy.view(view), constant_set,
                                             view).to_dict()
                      for view in SNN_ENERGY_VIEWS},
        }
    return report
