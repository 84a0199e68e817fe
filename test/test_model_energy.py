"""Synaptic-op counting on hand-made activity and the paper's energy arithmetic."""
import json

from hybrid_pose_ros.model import energy
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.model.inference import native_bfloat16
from hybrid_pose_ros.model.macs import snn_conv_specs
from hybrid_pose_ros.model.openvino_init import nncf_available, openvino_available
from hybrid_pose_ros.model.snn import SNN_LAYERS
from hybrid_pose_ros.tools import model_bench
import pytest
import torch

SIZE = 32


def small_config():
    return make_config('paper', input_height=SIZE, input_width=SIZE, ann_base_width=4,
                       snn_base_width=4)


def silent(config):
    specs = snn_conv_specs(config)
    frame = torch.zeros(1, 2, SIZE, SIZE)
    spikes = {name: torch.zeros(1, specs[name].out_channels, specs[name].out_height,
                                specs[name].out_width) for name in SNN_LAYERS}
    return frame, spikes


def rows(accounting):
    return {layer.name: layer for layer in accounting.layers}


def test_silent_step_costs_nothing_event_driven():
    config = small_config()
    step = energy.account_step(config, *silent(config))
    assert step.synaptic_ops == 0 and step.fused_synaptic_ops == 0 and step.simplified_ops == 0
    assert step.dense_macs == sum(s.macs for s in snn_conv_specs(config).values())
    assert step.mean_firing_rate == 0.0


def test_first_layer_counts_every_event():
    config = small_config()
    frame, spikes = silent(config)
    frame[0, 0, 10, 12] = 3.0   # interior pixel, 3 OFF events
    frame[0, 1, 0, 0] = 2.0     # corner pixel, 2 ON events: only 3x3 of the 5x5 taps exist
    layer = rows(energy.account_step(config, frame, spikes))['static_conv']
    c_out = config.snn_widths[0]
    assert layer.input_kind == 'event_counts'
    assert layer.synaptic_ops == 3 * 25 * c_out + 2 * 9 * c_out
    assert layer.output_firing_rate == 0.0


def test_binary_layers_count_spikes_times_fan_out():
    config = small_config()
    frame, spikes = silent(config)
    spikes['static_conv'][0, 1, 10, 10] = 1.0  # even position: 3x3 outputs of the s2 5x5 conv
    spikes['static_conv'][0, 2, 11, 11] = 1.0  # odd position: 2x2 outputs
    spikes['down3'][0, 0, 2, 2] = 1.0          # interior of the 4x4 map: full 3x3 fan-out
    by_name = rows(energy.account_step(config, frame, spikes))
    c0, c1, c2, c3 = config.snn_widths
    assert by_name['down1'].synaptic_ops == (9 + 4) * c1
    assert by_name['res_conv1'].synaptic_ops == 9 * c3
    # head reads cat(up3, static_conv): one synapse per joint per spike
    assert by_name['head'].synaptic_ops == 2 * config.num_joints
    neurons = c0 * SIZE * SIZE
    assert by_name['static_conv'].output_firing_rate == pytest.approx(2 / neurons)
    assert by_name['static_conv'].simplified_ops == pytest.approx(
        2 / neurons * by_name['static_conv'].dense_macs)


def test_decoder_counts_upsampled_inputs_and_fused_spikes():
    config = small_config()
    frame, spikes = silent(config)
    spikes['res_conv2'][0, 0, 1, 2] = 1.0  # one spike on the 4x4 map feeding up1 (8x8)
    layer = rows(energy.account_step(config, frame, spikes))['up1']
    c_out = config.snn_widths[2]
    assert layer.input_kind == 'upsampled_spikes'
    # bilinear x2 spreads the spike over 4x4 pixels (rows 1..4, cols 3..6 of 8x8); each feeds
    # the 5x5 taps that fall inside the 8x8 map
    inside = [sum(1 for d in range(-2, 3) if 0 <= p + d < 8) for p in range(8)]
    expected = sum(inside[r] * inside[c] for r in range(1, 5) for c in range(3, 7)) * c_out
    assert layer.synaptic_ops == expected
    # fused: the spike reaches output rows 0..6 and cols 1..7 (4 + 5 - 1 = 8, cut by borders)
    assert layer.fused_synaptic_ops == 7 * 7 * c_out
    assert layer.fused_synaptic_ops < layer.synaptic_ops


def test_interior_fused_reach_is_eight_by_eight():
    config = make_config('paper', input_height=64, input_width=64, ann_base_width=4,
                         snn_base_width=4)
    specs = snn_conv_specs(config)
    frame = torch.zeros(1, 2, 64, 64)
    spikes = {n: torch.zeros(1, specs[n].out_channels, specs[n].out_height, specs[n].out_width)
              for n in SNN_LAYERS}
    spikes['up2'][0, 0, 16, 16] = 1.0  # feeds up3 at 64x64
    layer = rows(energy.account_step(config, frame, spikes))['up3']
    assert layer.fused_synaptic_ops == 64 * config.snn_widths[0]
    assert layer.synaptic_ops == 16 * 25 * config.snn_widths[0]


def test_batch_counts_are_per_sample():
    config = small_config()
    frame, spikes = silent(config)
    frame[0, 0, 10, 12] = 2.0
    single = energy.account_step(config, frame, spikes)
    doubled = energy.account_step(config, frame.repeat(2, 1, 1, 1),
                                  {k: v.repeat(2, 1, 1, 1) for k, v in spikes.items()})
    assert doubled.to_dict() == single.to_dict()
    averaged = energy.mean_accounting([single, energy.account_step(config, *silent(config))])
    assert averaged.synaptic_ops == single.synaptic_ops / 2


def test_real_step_accounting_is_consistent():
    torch.manual_seed(0)
    config = small_config()
    model = HybridPoseNet(config).eval()
    frame = torch.poisson(torch.rand(1, 2, SIZE, SIZE))
    with torch.no_grad():
        state, _ = model.init_window(torch.rand(1, 20, SIZE, SIZE) * 2)
        _, _, activity = model.step(state, frame)
    step = energy.account_step(config, frame, activity.spikes)
    rates = activity.firing_rates()
    for layer in step.layers:
        if layer.name != 'head':
            assert layer.output_firing_rate == pytest.approx(rates[layer.name])
        if layer.input_kind == 'spikes':
            assert layer.synaptic_ops <= layer.dense_macs
    report = energy.energy_report(config, step)
    json.dumps(report)  # plain types only, ready to publish
    assert set(report['energy']) == {'arxiv_v1', 'cvprw'}
    assert set(report['energy']['cvprw']['power']) == set(energy.SNN_ENERGY_VIEWS)


def test_paper_initializer_energy_example():
    paper = make_config('paper')
    comparison = energy.power_comparison(paper, 0.0, energy.ARXIV_V1)
    # 1.275 GMAC x 4.6 pJ = 5.87 mJ per initialisation; 22.60 GMAC x 4.6 pJ per ANN pass
    assert comparison.initializer_pass_j * 1e3 == pytest.approx(5.87, abs=0.005)
    assert comparison.ann_pass_j * 1e3 == pytest.approx(103.96, abs=0.01)


def test_simplified_count_reproduces_the_cvprw_power_figure():
    paper = make_config('paper')
    # 789 M synaptic ops per step (2.7 % mean firing, cam3) at 0.38 pJ, 100 Hz
    comparison = energy.power_comparison(paper, 789e6 * 0.38e-12, energy.CVPRW, 'paper')
    assert comparison.snn_w == pytest.approx(0.030, abs=0.0005)
    assert comparison.initializer_w == pytest.approx(0.021, abs=0.0005)
    assert comparison.ann_w == pytest.approx(0.372, abs=0.0005)
    assert comparison.hybrid_w == pytest.approx(0.423, abs=0.001)
    assert comparison.ann_only_w == pytest.approx(3.718, abs=0.001)
    assert comparison.power_saving == pytest.approx(0.886, abs=0.001)
    fast = make_config('paper_200hz')
    at_200hz = energy.power_comparison(fast, 494e6 * 0.38e-12, energy.CVPRW)
    assert at_200hz.hybrid_w == pytest.approx(0.430, abs=0.002)
    assert at_200hz.ann_only_w == pytest.approx(7.436, abs=0.002)


def test_simplified_count_from_rates_reproduces_step_energy():
    paper = make_config('paper')
    specs = snn_conv_specs(paper)
    rate = 0.027
    ops = sum(rate * specs[name].macs for name in SNN_LAYERS)
    layers = tuple(
        energy.LayerAccounting(name, 'spikes', 1, spec.macs, 0.0, 0.0,
                               None if name == 'head' else rate,
                               0.0 if name == 'head' else rate * spec.macs)
        for name, spec in specs.items())
    step = energy.StepAccounting(layers)
    assert step.simplified_ops == pytest.approx(ops)
    priced = energy.snn_step_energy(step, energy.ARXIV_V1)
    assert priced.paper_simplified_j == pytest.approx(ops * 0.9e-12)
    assert priced.dense_j == pytest.approx(step.dense_macs * 4.6e-12)
    # arXiv v1 per 100 ms window: ANN + init + 10 SNN steps vs ANN at 100 Hz: ~89 % less
    window = energy.power_comparison(paper, priced.paper_simplified_j, energy.ARXIV_V1)
    ratio = window.hybrid_window_j / window.ann_only_window_j
    assert 0.10 < ratio < 0.13
    assert window.power_saving == pytest.approx(1 - ratio)


def test_dense_snn_on_conventional_hardware_saves_nothing():
    paper = make_config('paper')
    step = energy.account_step(
        make_config('paper', input_height=SIZE, input_width=SIZE), *silent(
            make_config('paper', input_height=SIZE, input_width=SIZE)))
    dense_j = energy.snn_step_energy(step, energy.CVPRW).dense_j * (256 // SIZE) ** 2
    comparison = energy.power_comparison(paper, dense_j, energy.CVPRW)
    assert comparison.hybrid_w > comparison.ann_only_w  # 24.0 GMAC per step vs 22.6 per pass
    with pytest.raises(ValueError, match='unknown SNN energy view'):
        energy.snn_step_energy(step, energy.CVPRW).view('gpu')


def test_model_bench_reports_synthetic_person_activity(tmp_path, capsys):
    previous = torch.get_num_threads()
    try:
        code = model_bench.main(['--presets', 'cpu', '--reps', '3', '--threads', '1',
                                 '--json', str(tmp_path / 'bench.json')])
    finally:
        torch.set_num_threads(previous)
    assert code == 0
    results = json.loads((tmp_path / 'bench.json').read_text())['results']
    (result,) = results
    assert result['preset'] == 'cpu' and not result['trained_weights']
    assert result['latency']['1']['step']['count'] == 3
    # the bfloat16 ANN is timed beside the float32 one wherever the CPU runs it natively
    assert ('init_bfloat16' in result['latency']['1']) == native_bfloat16()
    assert result['latency']['1']['init_unpacked']['count'] >= 2   # the packing's baseline
    # the node's default ANN runtime is timed in the same run wherever OpenVINO is installed
    assert ('init_openvino' in result['latency']['1']) == openvino_available()
    # and its int8 variant, calibrated on the bench's own windows (random weights)
    assert ('init_openvino_int8' in result['latency']['1']) == (
        openvino_available() and nncf_available())
    assert 2000 < result['events_per_bin_in_crop'] < 6000  # 0.5 Mev/s over the sensor
    assert 0.001 < result['report']['step']['mean_firing_rate'] < 0.5
    printed = capsys.readouterr().out
    assert 'power at the SNN rate' in printed and 'packed x' in printed and 'ov x' in printed
    assert 'int8 x' in printed
