"""
The hybrid ANN-SNN (spec sections 3.4-3.5) and the pure-SNN baseline, with explicit state.

Per window of ``steps_per_window`` event bins::

    state, ann_heatmap = model.init_window(ann_input)   # V_l := init_l(ANN features), H := ANN
    for frame in frames:                                  # one 2xHxW event-count frame per bin
        heatmap, state, activity = model.step(state, frame)

The initial membranes are the values *before* the first charge (the official code overwrites V
after ``reset_net`` and then charges), and the output is the accumulator
``H <- output_decay * H + delta``. State is never carried across windows: call
:meth:`HybridPoseNet.init_window` again every window. :meth:`HybridPoseNet.forward_window`
is the same loop, so the streaming and batched paths agree by construction.
"""
from dataclasses import dataclass
from typing import Any, Callable

from hybrid_pose_ros.model.ann import AnnUNet, xavier_init_convs
from hybrid_pose_ros.model.config import ModelConfig
from hybrid_pose_ros.model.lif import lif_charge
from hybrid_pose_ros.model.snn import SNN_LAYERS, SpikingUNet, StepActivity
import numpy as np
import torch
from torch import nn

MODEL_KINDS = ('hybrid', 'ann', 'pure_snn')
"""Model kinds a checkpoint can hold."""

INITIALIZER_SOURCES = {
    'static_conv': 'conv2',
    'down1': 'down1',
    'down2': 'down2',
    'down3': 'down3',
    'res_conv1': 'up1',
    'res_conv2': 'up2',
    'up1': 'up3',
    'up2': 'up4',
    'up3': 'up5',
}
"""Which ANN feature initialises which SNN layer (official ``states_in``, ``states_1..8``)."""

UPSAMPLED_SOURCES = ('res_conv1',)
"""Initialisers whose ANN feature has half the membrane resolution (``states_4``: up1 x2)."""


@dataclass(frozen=True)
class WindowState:
    """
    Everything the model carries from one step to the next.

    ``membranes`` are the nine LIF potentials (:data:`SNN_LAYERS` order), ``heatmap`` is the
    output accumulator ``H`` (hybrid) or the readout membrane (pure SNN), ``steps_taken`` counts
    the steps since the window was initialised.
    """

    membranes: tuple[torch.Tensor, ...]
    heatmap: torch.Tensor
    steps_taken: int = 0


class StateInitializer(nn.Sequential):
    """``[bilinear x2] -> conv1x1 -> BN -> LeakyReLU -> conv1x1 -> BN``: ANN feature to V."""

    def __init__(self, in_channels: int, out_channels: int, slope: float,
                 upsample: bool = False) -> None:
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode='bilinear',
                                               align_corners=False)] if upsample else []
        layers += [
            nn.Conv2d(in_channels, out_channels, 1),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(slope),
            nn.Conv2d(out_channels, out_channels, 1),
            nn.BatchNorm2d(out_channels),
        ]
        super().__init__(*layers)


class StateInitializers(nn.ModuleDict):
    """The nine initialisers, keyed by SNN layer name (paper: 552,064 parameters)."""

    def __init__(self, config: ModelConfig) -> None:
        a0, a1, a2, a3, a4, _ = config.ann_widths
        s0, s1, s2, s3 = config.snn_widths
        ann_channels = {'conv2': a0, 'down1': a1, 'down2': a2, 'down3': a3, 'up1': a4,
                        'up2': a3, 'up3': a2, 'up4': a1, 'up5': a0}
        snn_channels = dict(zip(SNN_LAYERS, (s0, s1, s2, s3, s3, s3, s2, s1, s0)))
        super().__init__({
            layer: StateInitializer(ann_channels[source], snn_channels[layer],
                                    config.leaky_slope, upsample=layer in UPSAMPLED_SOURCES)
            for layer, source in INITIALIZER_SOURCES.items()
        })
        xavier_init_convs(self)

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Predict the nine initial membranes from the ANN features."""
        return tuple(self[layer](features[INITIALIZER_SOURCES[layer]]) for layer in SNN_LAYERS)


def _check_frames(frames: torch.Tensor, config: ModelConfig) -> None:
    if frames.dim() != 5 or frames.shape[2] != config.snn_in_channels or frames.shape[1] < 1:
        raise ValueError(f'frames must be [B, T >= 1, {config.snn_in_channels}, H, W], '
                         f'got {tuple(frames.shape)}')


def _run_steps(step, state: WindowState, frames: torch.Tensor,
               keep_activity: bool) -> dict[str, Any]:
    """Apply ``step`` over ``frames [B, T, ...]``; the per-step results of a window, stacked."""
    heatmaps, activity = [], []
    for t in range(frames.shape[1]):
        heatmap, state, step_activity = step(state, frames[:, t])
        heatmaps.append(heatmap)
        if keep_activity:
            activity.append(step_activity)
    result = {'heatmaps': torch.stack(heatmaps, dim=1), 'final_membranes': state.membranes}
    if keep_activity:
        result['activity'] = activity
    return result


WindowInit = Callable[[torch.Tensor], tuple[WindowState, torch.Tensor]]
"""A compiled replacement of :meth:`HybridPoseNet.init_window`'s ANN and initialisers."""

DELTA_HEAD_INIT_SCALE = 1.0 / 2500.0
"""
Shrink of the SNN's delta head at initialisation: the package's choice, not the official recipe.

The official ``init_weights_div_last_layer`` divides by 2500 only the ANN head (``conv3_cnn``,
which the pretrained CNN then replaces); its line for the SNN head is commented out, so official
training starts with an undivided Xavier SNN head (``docs/fidelity.md``).
"""


class HybridPoseNet(nn.Module):
    """
    ANN + state initialisers + spiking UNet with the delta-accumulator output.

    The SNN's delta head starts with its Xavier weights divided by 2500
    (:data:`DELTA_HEAD_INIT_SCALE`). This is the package's choice: the official code divides only
    its ANN head by 2500 and starts the SNN head undivided. Here the initial deltas are
    negligible, so an untrained SNN leaves the decaying ANN heatmap (and its argmax) in place and
    training starts from the "ANN held for the window" prediction instead of from noise; whether
    that trains better than the undivided head has not been measured.

    ``compiled_init``, when set (:func:`~hybrid_pose_ros.model.inference.prepare_for_inference`
    with ``ann_runtime='openvino'``), replaces the ANN and initialisers in :meth:`init_window`.
    ``ann_calibration``, when set (a checkpoint that stores them), holds training ANN inputs
    ``uint8 [N, ann_in_channels, H, W]`` that calibrate an int8 ANN (``ann_precision='int8'``).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.ann = AnnUNet(config)
        self.initializers = StateInitializers(config)
        self.snn = SpikingUNet(config, tau=config.tau, head_batchnorm=False)
        with torch.no_grad():
            self.snn.head.weight.mul_(DELTA_HEAD_INIT_SCALE)
        self.compiled_init: WindowInit | None = None
        self.ann_calibration: np.ndarray | None = None

    def freeze_ann(self) -> None:
        """Stop gradients into the ANN (stage-2 training trains the SNN and initialisers)."""
        for parameter in self.ann.parameters():
            parameter.requires_grad_(False)

    def ann_heatmap(self, ann_input: torch.Tensor) -> torch.Tensor:
        """ANN-only prediction ``[B, J, H, W]`` (the ANN @10 Hz / @100 Hz baselines)."""
        return self.ann(ann_input).heatmap

    def init_window(self, ann_input: torch.Tensor) -> tuple[WindowState, torch.Tensor]:
        """
        Start a window from the ANN input ``[B, ann_in_channels, H, W]``.

        Returns the state (``V_l := init_l(features)``, ``H :=`` detached ANN heatmap) and the
        ANN heatmap itself.
        """
        if self.compiled_init is not None:
            return self.compiled_init(ann_input)
        heatmap, features = self.ann(ann_input)
        membranes = self.initializers(features)
        return WindowState(membranes, heatmap.detach()), heatmap

    def step(self, state: WindowState, frame: torch.Tensor
             ) -> tuple[torch.Tensor, WindowState, StepActivity]:
        """One SNN step on ``frame [B, snn_in_channels, H, W]``: ``H <- decay * H + delta``."""
        heatmap, membranes, activity = self.snn.step(frame, list(state.membranes),
                                                     state.heatmap, self.config.output_decay)
        new_state = WindowState(tuple(membranes), heatmap, state.steps_taken + 1)
        return heatmap, new_state, activity

    def forward_window(self, ann_input: torch.Tensor, frames: torch.Tensor,
                       keep_activity: bool = False) -> dict[str, Any]:
        """
        Run a whole window: ANN init, then :meth:`step` over ``frames [B, T, 2, H, W]``.

        Returns ``heatmaps [B, T, J, H, W]``, ``ann_heatmap``, ``initial_membranes``,
        ``final_membranes`` and, with ``keep_activity``, the per-step ``activity`` list.
        """
        _check_frames(frames, self.config)
        state, ann_heatmap = self.init_window(ann_input)
        result = _run_steps(self.step, state, frames, keep_activity)
        result.update(ann_heatmap=ann_heatmap, initial_membranes=state.membranes)
        return result


class PureSNN(nn.Module):
    """
    The SNN-only baseline: zero initial state, tau ``pure_snn_tau``, BN(J) head.

    The prediction is the membrane of a non-spiking LIF readout, ``H <- H + (x - H) / tau``,
    starting from zero each window.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.snn = SpikingUNet(config, tau=config.pure_snn_tau, head_batchnorm=True)

    def init_window(self, batch_size: int, height: int | None = None, width: int | None = None,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> WindowState:
        """Return the reset state: all membranes and the readout at zero."""
        height = self.config.input_height if height is None else height
        width = self.config.input_width if width is None else width
        membranes = self.snn.zero_membranes(batch_size, height, width, device, dtype)
        readout = torch.zeros(batch_size, self.config.num_joints, height, width, device=device,
                              dtype=dtype)
        return WindowState(tuple(membranes), readout)

    def step(self, state: WindowState, frame: torch.Tensor
             ) -> tuple[torch.Tensor, WindowState, StepActivity]:
        """One SNN step; the readout membrane is the heatmap."""
        current, membranes, activity = self.snn.step(frame, list(state.membranes))
        heatmap = lif_charge(state.heatmap, current, self.config.pure_snn_tau)
        new_state = WindowState(tuple(membranes), heatmap, state.steps_taken + 1)
        return heatmap, new_state, activity

    def forward_window(self, frames: torch.Tensor,
                       keep_activity: bool = False) -> dict[str, Any]:
        """Run :meth:`step` from the reset state over ``frames [B, T, 2, H, W]``."""
        _check_frames(frames, self.config)
        batch, _, _, height, width = frames.shape
        state = self.init_window(batch, height, width, frames.device, frames.dtype)
        return _run_steps(self.step, state, frames, keep_activity)


def build_model(kind: str, config: ModelConfig) -> nn.Module:
    """Build an untrained ``hybrid``, ``ann`` or ``pure_snn`` model from ``config``."""
    if kind == 'hybrid':
        return HybridPoseNet(config)
    if kind == 'ann':
        return AnnUNet(config)
    if kind == 'pure_snn':
        return PureSNN(config)
    raise ValueError(f'unknown model kind {kind!r}; known kinds: {", ".join(MODEL_KINDS)}')
