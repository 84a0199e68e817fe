"""Exact parameter and MAC counts of the paper preset, and the configuration presets."""
from hybrid_pose_ros.model import macs
from hybrid_pose_ros.model.config import make_config, ModelConfig, PRESETS
from hybrid_pose_ros.model.hybrid import HybridPoseNet, PureSNN, StateInitializers
from hybrid_pose_ros.model.snn import SNN_LAYERS
from hybrid_pose_ros.skeleton import NUM_JOINTS
import pytest
import torch
from torch import nn


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def paper_on_meta():
    with torch.device('meta'):
        return HybridPoseNet(make_config('paper')), PureSNN(make_config('paper'))


def test_paper_parameter_counts(paper_on_meta):
    hybrid, pure = paper_on_meta
    assert count_parameters(hybrid.ann) == 19_818_669
    assert count_parameters(hybrid.snn) == 4_410_112
    assert count_parameters(hybrid.initializers) == 552_064
    assert count_parameters(hybrid) == 24_780_845
    assert count_parameters(pure) == 4_410_138


def test_paper_initializer_parameters_per_layer(paper_on_meta):
    hybrid, _ = paper_on_meta
    expected = [2_240, 8_576, 33_536, 132_608, 198_144, 132_608, 33_536, 8_576, 2_240]
    assert [count_parameters(hybrid.initializers[layer]) for layer in SNN_LAYERS] == expected


def test_paper_mac_counts():
    config = make_config('paper')
    assert round(macs.ann_macs(config) / 1e9, 2) == 22.60
    assert round(macs.snn_step_macs(config) / 1e9, 2) == 24.02
    assert round(macs.initializer_macs(config) / 1e9, 3) == 1.275
    per_layer = [round(m / 1e6, 1) for m in macs.snn_layer_macs(config).values()]
    assert per_layer == [104.9, 838.9, 838.9, 838.9, 604.0, 604.0, 6710.9, 6710.9, 6710.9, 54.5]
    assert list(macs.snn_layer_macs(config)) == [*SNN_LAYERS, 'head']


def test_macs_scale_with_pixels():
    small = make_config('paper', input_height=32, input_width=64)
    paper = make_config('paper')
    assert macs.ann_macs(paper) == macs.ann_macs(small) * 32
    assert macs.snn_step_macs(paper) == macs.snn_step_macs(small) * 32
    assert macs.initializer_macs(paper) == macs.initializer_macs(small) * 32


class ConvMacCounter:
    """Forward hooks summing ``C_out * H_out * W_out * C_in/groups * kh * kw`` over convs."""

    def __init__(self, module: nn.Module) -> None:
        self.total = 0
        self.handles = [m.register_forward_hook(self.hook) for m in module.modules()
                        if isinstance(m, nn.Conv2d)]

    def hook(self, conv: nn.Conv2d, inputs, output: torch.Tensor) -> None:
        kh, kw = conv.kernel_size
        self.total += output[0].numel() * conv.in_channels // conv.groups * kh * kw

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize('preset', ['paper', 'cpu'])
def test_analytic_macs_match_a_hooked_forward(preset):
    config = make_config(preset, input_height=32, input_width=64)
    torch.manual_seed(0)
    model = HybridPoseNet(config).eval()
    ann_input = torch.rand(1, config.ann_in_channels, 32, 64)
    frame = torch.rand(1, config.snn_in_channels, 32, 64)
    with torch.no_grad():
        counter = ConvMacCounter(model.ann)
        output = model.ann(ann_input)
        counter.remove()
        assert counter.total == macs.ann_macs(config)
        counter = ConvMacCounter(model.initializers)
        membranes = model.initializers(output.features)
        counter.remove()
        assert counter.total == macs.initializer_macs(config)
        counter = ConvMacCounter(model.snn)
        model.snn.step(frame, list(membranes))
        counter.remove()
        assert counter.total == macs.snn_step_macs(config)


def test_initializers_produce_membrane_shapes():
    config = make_config('cpu', input_height=32, input_width=64)
    model = HybridPoseNet(config).eval()
    with torch.no_grad():
        state, heatmap = model.init_window(torch.rand(2, config.ann_in_channels, 32, 64))
    assert heatmap.shape == (2, NUM_JOINTS, 32, 64)
    assert [tuple(v.shape) for v in state.membranes] == model.snn.membrane_shapes(2, 32, 64)
    assert isinstance(model.initializers, StateInitializers)


def test_presets():
    assert set(PRESETS) == {'paper', 'paper_200hz', 'cpu'}
    paper = make_config('paper')
    assert paper.ann_widths == (32, 64, 128, 256, 512, 512)
    assert paper.snn_widths == (32, 64, 128, 256)
    assert (paper.tau, paper.output_decay, paper.bin_us, paper.steps_per_window) == (
        3.0, 0.8, 10_000, 10)
    assert (paper.snn_rate_hz, paper.ann_rate_hz, paper.window_us) == (100.0, 10.0, 100_000)
    assert (paper.ann_in_channels, paper.ann_bins, paper.ann_events) == (20, 10, 7500)
    fast = make_config('paper_200hz')
    assert (fast.bin_us, fast.steps_per_window, fast.tau, fast.output_decay) == (
        5000, 20, 5.0, 0.9)
    assert fast.snn_rate_hz == 200.0 and fast.ann_rate_hz == 10.0
    for config in PRESETS.values():
        assert config.num_joints == NUM_JOINTS
        assert config.pure_snn_tau == 2.0 and config.leaky_slope == 0.1
        assert config.v_threshold == 1.0 and config.surrogate_alpha == 2.0


def test_make_config_overrides_and_errors():
    config = make_config('cpu', tau=4.0, input_height=64)
    assert config.preset == 'cpu' and config.tau == 4.0 and config.input_height == 64
    with pytest.raises(ValueError, match=r"unknown model preset 'fast'.*cpu, paper, paper_200hz"):
        make_config('fast')
    with pytest.raises(ValueError, match='multiple of 32'):
        make_config('paper', input_height=100)
    with pytest.raises(ValueError, match='ann_in_channels'):
        make_config('paper', ann_bins=5)
    with pytest.raises(TypeError):
        make_config('paper', hidden_width=3)


def test_config_dict_round_trip():
    config = make_config('paper_200hz', snn_base_width=16)
    values = config.to_dict()
    assert all(isinstance(v, (str, int, float)) for v in values.values())
    assert ModelConfig.from_dict(values) == config
    with pytest.raises(ValueError, match='unknown'):
        ModelConfig.from_dict({**values, 'extra': 1})
    values.pop('tau')
    with pytest.raises(ValueError, match="missing \\['tau'\\]"):
        ModelConfig.from_dict(values)
