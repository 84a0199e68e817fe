# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The event-driven SNN step equals the dense torch step (values, spikes, membranes, poses)."""
import dataclasses
import os

from helpers.streams import moving_blob_events, randomize_batchnorm
from hybrid_pose_ros.estimator import HybridEstimator, run_offline
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model import sparse as sparse_module
from hybrid_pose_ros.model.checkpoint import load_checkpoint
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet, PureSNN
from hybrid_pose_ros.model.inference import prepare_for_inference
from hybrid_pose_ros.model.snn import SpikingUNet, upsample2x
from hybrid_pose_ros.model.sparse import (
    DENSE_ABOVE_ACTIVITY, fuse_upsampled_conv, LAYER_INPUTS, PRESET_DENSE_ABOVE,
    SparseSpikingUNet, SpikeList, use_sparse_snn)
import numpy as np
import pytest
import torch
import torch.nn.functional as F

WEIGHTS = os.path.join(os.path.dirname(__file__), '..', 'weights', 'hybrid_cpu.pt')


SNN_STATISTICS = {'weight': (2.0, 1.0), 'bias': (0.3, 0.2)}
"""BatchNorm statistics that fold into non-trivial weights and make the layers fire."""


def random_snn(seed: int) -> SpikingUNet:
    torch.manual_seed(seed)
    config = make_config('paper', input_height=32, input_width=32, snn_base_width=4)
    return randomize_batchnorm(SpikingUNet(config, tau=3.0), seed, **SNN_STATISTICS).eval()


def sparse_frame(height: int, width: int, seed: int, density: float = 0.05) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    active = torch.rand(1, 2, height, width, generator=generator) < density
    counts = torch.randint(1, 4, (1, 2, height, width), generator=generator)
    return (active * counts).float()


ALTERNATING = {name: float(i % 2) for i, name in enumerate(LAYER_INPUTS)}
"""Per-layer thresholds: every other layer dense, the rest always scattering."""


@pytest.mark.parametrize('height,width,dense_above', [
    (32, 32, DENSE_ABOVE_ACTIVITY), (24, 40, DENSE_ABOVE_ACTIVITY), (8, 16, DENSE_ABOVE_ACTIVITY),
    (24, 40, 1.0), (24, 40, 0.0),   # 1.0: every layer scatters; 0.0: every layer dense
    (24, 40, ALTERNATING)])
def test_sparse_step_equals_dense_over_several_steps(height, width, dense_above):
    dense = random_snn(seed=height + width)
    sparse = SparseSpikingUNet(dense, dense_above=dense_above)
    generator = torch.Generator().manual_seed(7)
    membranes = [torch.randn(shape, generator=generator) * 0.8
                 for shape in dense.membrane_shapes(1, height, width)]
    dense_state, sparse_state = membranes, membranes
    dense_readout = sparse_readout = None
    fired = 0.0
    with torch.inference_mode():
        for step in range(4):
            # the first step returns the head output; the later ones add it to a decayed readout
            frame = sparse_frame(height, width, seed=step)
            expected, dense_state, expected_activity = dense.step(frame, dense_state,
                                                                  dense_readout, 0.9)
            actual, sparse_state, actual_activity = sparse.step(frame, sparse_state,
                                                                sparse_readout, 0.9)
            torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)
            dense_readout, sparse_readout = expected, actual
            for e, a in zip(dense_state, sparse_state):
                torch.testing.assert_close(a, e, atol=1e-4, rtol=0)
            for name, spikes in expected_activity.spikes.items():
                assert torch.equal(actual_activity.spikes[name], spikes)
            # the sparse step's rates come from the spikes it listed, the dense one's from the maps
            assert actual_activity.rates is not None
            assert actual_activity.firing_rates() == pytest.approx(
                expected_activity.firing_rates(), abs=1e-7)
            fired += float(sum(s.sum() for s in expected_activity.spikes.values()))
    assert fired > 100   # the comparison covers real spikes, not an all-silent network


def test_fused_upsampled_kernel_is_conv_of_upsampled_impulse():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 5, 5, generator=generator)   # [C_out, C_in, 5, 5]
    fused = fuse_upsampled_conv(weight.permute(1, 2, 3, 0).numpy().copy())
    impulse = torch.zeros(1, 2, 8, 8)
    impulse[0, 1, 4, 3] = 1.0                               # an interior input, channel 1
    expected = F.conv2d(upsample2x(impulse), weight, padding=2)[0].permute(1, 2, 0)
    placed = torch.zeros(16, 16, 3)
    placed[2 * 4 - 3:2 * 4 + 5, 2 * 3 - 3:2 * 3 + 5] = torch.from_numpy(fused[1])
    torch.testing.assert_close(placed, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('height,width', [(4, 6), (2, 2), (1, 3), (3, 1), (1, 1)])
def test_layer_current_of_a_concatenation_equals_the_dense_conv(height, width):
    """Every input class of the fused upsampled conv: inner, edges, corners, maps 1 wide."""
    dense = random_snn(seed=5)
    sparse = SparseSpikingUNet(dense, dense_above=1.0)
    generator = torch.Generator().manual_seed(2)
    parts = [(torch.rand(1, 32, height, width, generator=generator) < 0.3).float()
             for _ in range(2)]
    lists = [SpikeList.from_dense(p[0].permute(1, 2, 0).numpy().copy()) for p in parts]
    folded = prepare_for_inference(dense).up1
    with torch.inference_mode():
        expected = folded(upsample2x(torch.cat(parts, dim=1)))[0].permute(1, 2, 0)
    actual = torch.from_numpy(sparse.layer_current('up1', lists))
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='unknown layer'):
        sparse.layer_current('up4', lists)


@pytest.mark.parametrize('dense_above,calls', [
    (1.0, [(0, -1)]),                                        # one call does the whole step
    ({**dict.fromkeys(LAYER_INPUTS, 1.0), 'up2': 0.0}, [(0, 7), (8, -1)]),   # up2 in torch
    ({**dict.fromkeys(LAYER_INPUTS, 1.0), 'head': 0.0}, [(0, 9)]),
])
def test_a_dense_layer_splits_the_compiled_step(monkeypatch, dense_above, calls):
    snn = random_snn(seed=11)
    sparse = SparseSpikingUNet(snn, dense_above=dense_above)
    recorded = []

    def spy(start, *args):
        dense_layer = run_layers(start, *args)
        recorded.append((start, dense_layer))
        return dense_layer

    run_layers = sparse_module._run_layers
    monkeypatch.setattr(sparse_module, '_run_layers', spy)
    generator = torch.Generator().manual_seed(5)
    state = [torch.randn(shape, generator=generator) * 0.8
             for shape in snn.membrane_shapes(1, 24, 40)]
    dense_state = state
    with torch.inference_mode():
        for step in range(3):
            frame = sparse_frame(24, 40, seed=step, density=0.1)
            recorded.clear()
            out, state, activity = sparse.step(frame, state)
            assert recorded == calls
            expected, dense_state, _ = snn.step(frame, dense_state)
            torch.testing.assert_close(out, expected, rtol=0, atol=1e-4)
            for got, want in zip(state, dense_state):
                torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert sum(float(s.sum()) for s in activity.spikes.values()) > 0


def test_layers_with_more_spikes_than_the_frame_has_pixels():
    """A burst: every membrane starts above threshold, so most neurons of every layer fire."""
    dense = random_snn(seed=12)
    sparse = SparseSpikingUNet(dense, dense_above=1.0)
    membranes = [torch.full(shape, 3.0) for shape in dense.membrane_shapes(1, 16, 16)]
    frame = sparse_frame(16, 16, seed=0, density=0.5)
    with torch.inference_mode():
        expected, _, expected_activity = dense.step(frame, membranes)
        actual, _, activity = sparse.step(frame, membranes)
    spikes = activity.spikes
    assert spikes['static_conv'].sum() > frame.numel()   # more spikes than frame entries
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-4)
    for name, want in expected_activity.spikes.items():
        assert torch.equal(spikes[name], want)
    assert activity.firing_rates() == pytest.approx(expected_activity.firing_rates(), abs=1e-7)


def test_bundled_weights_give_the_same_poses_on_events():
    loaded = load_checkpoint(WEIGHTS)
    config = loaded.model.config
    geometry = SensorGeometry.for_sensor(346, 260, config.input_width, config.input_height)
    events = moving_blob_events()
    dense = HybridEstimator(prepare_for_inference(loaded.model), geometry)
    sparse = HybridEstimator(prepare_for_inference(loaded.model, snn_backend='sparse'),
                             geometry)
    expected, actual = run_offline(dense, events), run_offline(sparse, events)
    assert len(expected) >= 20 and len(actual) == len(expected)
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a.xy, e.xy, atol=1e-3)
        np.testing.assert_allclose(a.confidence, e.confidence, atol=1e-4)
        # float rounding of a current right at the threshold can flip a single spike
        assert a.firing_rates == pytest.approx(e.firing_rates, abs=1e-3)
    assert max(max(p.firing_rates.values()) for p in expected) > 0


def test_calibration_sets_one_threshold_per_layer():
    sparse = SparseSpikingUNet(random_snn(seed=4))
    thresholds = sparse.calibrate(32, 32)
    assert set(thresholds) == set(LAYER_INPUTS)
    assert all(0.0 <= value <= 1.0 for value in thresholds.values())
    assert sparse.dense_above == thresholds
    # preparation uses fixed thresholds (no timing), so the same input takes the same path
    cpu = prepare_for_inference(HybridPoseNet(make_config('cpu')).eval(), snn_backend='sparse')
    assert cpu.snn.dense_above == PRESET_DENSE_ABOVE['cpu']
    small_paper = make_config('paper', input_height=32, input_width=32, ann_base_width=4,
                              snn_base_width=4)
    paper = prepare_for_inference(HybridPoseNet(small_paper).eval(), snn_backend='sparse')
    assert paper.snn.dense_above == PRESET_DENSE_ABOVE['paper']
    custom = dataclasses.replace(make_config('cpu'), preset='custom')   # e.g. from a checkpoint
    other = prepare_for_inference(HybridPoseNet(custom).eval(), snn_backend='sparse')
    assert other.snn.dense_above == dict.fromkeys(LAYER_INPUTS, DENSE_ABOVE_ACTIVITY)


def test_pure_snn_window_matches():
    torch.manual_seed(3)
    config = make_config('paper', input_height=32, input_width=32, snn_base_width=4)
    model = randomize_batchnorm(PureSNN(config), seed=3, **SNN_STATISTICS).eval()
    frames = torch.stack([sparse_frame(32, 32, seed=s, density=0.2) for s in range(5)], dim=1)
    with torch.inference_mode():
        expected = model.forward_window(frames)['heatmaps']
        actual = use_sparse_snn(prepare_for_inference(model)).forward_window(frames)['heatmaps']
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)


def test_clear_errors():
    sparse = SparseSpikingUNet(random_snn(seed=1))
    membranes = [torch.zeros(s) for s in random_snn(seed=1).membrane_shapes(1, 16, 16)]
    with pytest.raises(ValueError, match='steps one sample'):
        sparse.step(torch.zeros(2, 2, 16, 16), membranes)
    with pytest.raises(ValueError, match='expected 9 membranes'):
        sparse.step(torch.zeros(1, 2, 16, 16), membranes[:3])
    with pytest.raises(ValueError, match=r'readout \(1, 13, 8, 8\) does not fit'):
        sparse.step(torch.zeros(1, 2, 16, 16), membranes, torch.zeros(1, 13, 8, 8))
    with pytest.raises(ValueError, match='static_conv: membrane'):
        sparse.step(torch.zeros(1, 2, 16, 16), [torch.zeros(s) for s in
                                                random_snn(1).membrane_shapes(1, 8, 8)])
    with pytest.raises(ValueError, match=r"dense_above lacks layers \['down1'"):
        SparseSpikingUNet(random_snn(seed=1), dense_above={'static_conv': 0.1})
    with pytest.raises(ValueError, match='call .eval'):
        SparseSpikingUNet(random_snn(seed=1).train())
    with pytest.raises(TypeError, match='no dense SpikingUNet'):
        use_sparse_snn(HybridPoseNet(make_config('cpu')).ann)
    with pytest.raises(ValueError, match='unknown snn_backend'):
        prepare_for_inference(random_snn(seed=1), snn_backend='fast')
