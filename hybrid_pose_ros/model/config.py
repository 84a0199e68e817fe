"""
Model configuration: every size, rate and neuron constant of the hybrid ANN-SNN, as data.

A :class:`ModelConfig` fully describes the networks built by :mod:`hybrid_pose_ros.model`:
resolution, channel widths, LIF constants, output decay and timing. Presets:

``paper``
    The official 100 Hz model (spec sections 2-3): 256x256 input, ANN widths 32..512, SNN widths
    32..256, tau 3, output decay 0.8, 10 bins of 10 ms per 100 ms window.
``paper_200hz``
    The 200 Hz variant: 20 bins of 5 ms per window, tau 5, output decay 0.9.
``cpu``
    The same architecture scaled for real time on two CPU cores (100 Hz SNN + 10 Hz ANN): the
    256x256 crop is downscaled by 4 to 64x64, the ANN widths are halved (16..256) and the SNN
    widths quartered (8..64). Measured with ``hybrid_pose_model_bench`` on a 2-core AMD EPYC
    (torch 2.13, BatchNorm folded, channels-last): SNN step about 2.8 ms and ANN + initialisers
    about 8.5 ms, i.e. about 3.6 ms of compute per 10 ms bin on 2 threads (5.0 ms on 1 thread).
    128x128 with SNN width 4 needed about 5.1 ms per bin on 2 threads and 8 ms on 1 thread.
"""
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from hybrid_pose_ros.skeleton import NUM_JOINTS

ANN_WIDTH_MULTIPLIERS = (1, 2, 4, 8, 16, 16)
"""ANN encoder widths relative to ``ann_base_width`` (conv1/conv2, down1..down5)."""

SNN_WIDTH_MULTIPLIERS = (1, 2, 4, 8)
"""SNN encoder widths relative to ``snn_base_width`` (static_conv, down1..down3)."""

ANN_SIZE_DIVISOR = 32
"""The ANN has five 2x average pools, so the input sides must be multiples of 32."""


@dataclass(frozen=True)
class ModelConfig:
    """
    All knobs of the hybrid ANN-SNN model.

    Sizes are in model-input pixels; ``bin_us`` is the SNN time step in microseconds. The ANN runs
    once per window of ``steps_per_window`` SNN steps.
    """

    preset: str = 'paper'
    input_height: int = 256
    input_width: int = 256
    ann_in_channels: int = 20
    ann_bins: int = 10
    ann_events: int = 7500
    snn_in_channels: int = 2
    ann_base_width: int = 32
    snn_base_width: int = 32
    num_joints: int = NUM_JOINTS
    tau: float = 3.0
    v_threshold: float = 1.0
    surrogate_alpha: float = 2.0
    output_decay: float = 0.8
    bin_us: int = 10000
    steps_per_window: int = 10
    pure_snn_tau: float = 2.0
    leaky_slope: float = 0.1

    def __post_init__(self) -> None:
        """Reject configurations the networks cannot be built with."""
        for name in ('input_height', 'input_width'):
            size = getattr(self, name)
            if size <= 0 or size % ANN_SIZE_DIVISOR:
                raise ValueError(f'{name}={size} must be a positive multiple of '
                                 f'{ANN_SIZE_DIVISOR} (five 2x pools in the ANN)')
        positive = ('ann_in_channels', 'ann_bins', 'ann_events', 'snn_in_channels',
                    'ann_base_width', 'snn_base_width', 'num_joints', 'bin_us',
                    'steps_per_window')
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f'{name}={getattr(self, name)} must be positive')
        if self.ann_in_channels != self.snn_in_channels * self.ann_bins:
            raise ValueError(f'ann_in_channels={self.ann_in_channels} must equal polarities '
                             f'({self.snn_in_channels}) x ann_bins ({self.ann_bins})')
        for name in ('tau', 'pure_snn_tau'):
            if getattr(self, name) < 1.0:
                raise ValueError(f'{name}={getattr(self, name)} must be >= 1 (V += (x - V)/tau)')
        if self.v_threshold <= 0 or self.surrogate_alpha <= 0:
            raise ValueError('v_threshold and surrogate_alpha must be positive')

    @property
    def ann_widths(self) -> tuple[int, ...]:
        """ANN encoder widths: conv1/conv2, down1, ..., down5 (paper: 32, 64, ..., 512, 512)."""
        return tuple(self.ann_base_width * m for m in ANN_WIDTH_MULTIPLIERS)

    @property
    def snn_widths(self) -> tuple[int, ...]:
        """SNN encoder widths: static_conv, down1, down2, down3 (paper: 32, 64, 128, 256)."""
        return tuple(self.snn_base_width * m for m in SNN_WIDTH_MULTIPLIERS)

    @property
    def snn_rate_hz(self) -> float:
        """SNN steps per second (one step per ``bin_us`` bin)."""
        return 1e6 / self.bin_us

    @property
    def window_us(self) -> int:
        """Length of one ANN window (re-initialisation period) in microseconds."""
        return self.bin_us * self.steps_per_window

    @property
    def ann_rate_hz(self) -> float:
        """ANN passes (state initialisations) per second."""
        return 1e6 / self.window_us

    def to_dict(self) -> dict[str, Any]:
        """Plain-typed dictionary of every field (for checkpoints and JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> 'ModelConfig':
        """Build a config from :meth:`to_dict` output; unknown or missing fields raise."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        missing = sorted(names - set(values))
        if unknown or missing:
            raise ValueError(f'model config fields do not match: unknown {unknown}, '
                             f'missing {missing}')
        return cls(**values)


PRESETS: dict[str, ModelConfig] = {
    'paper': ModelConfig(preset='paper'),
    'paper_200hz': ModelConfig(preset='paper_200hz', bin_us=5000, steps_per_window=20, tau=5.0,
                               output_decay=0.9),
    'cpu': ModelConfig(preset='cpu', input_height=64, input_width=64, ann_base_width=16,
                       snn_base_width=8),
}
"""Named configurations; :func:`make_config` starts from one of these."""


def make_config(preset: str, **overrides: Any) -> ModelConfig:
    """Return preset ``preset`` with ``overrides`` applied (the preset name is kept)."""
    if preset not in PRESETS:
        raise ValueError(f'unknown model preset {preset!r}; known presets: '
                         f'{", ".join(sorted(PRESETS))}')
    if 'preset' in overrides:
        raise ValueError('the preset name cannot be overridden; pass it as the first argument')
    return replace(PRESETS[preset], **overrides)
