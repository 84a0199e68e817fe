"""LIF dynamics, the hybrid's state semantics and gradient flow through a whole window."""
import math

from helpers.streams import randomize_batchnorm
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet, PureSNN
from hybrid_pose_ros.model.lif import atan_surrogate_grad, lif_step, spike
from hybrid_pose_ros.model.snn import SNN_LAYERS
import pytest
import torch

SIZE = 32


def small_config(preset: str = 'paper', **overrides):
    return make_config(preset, input_height=SIZE, input_width=SIZE, ann_base_width=4,
                       snn_base_width=4, **overrides)


def event_frames(batch: int, steps: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rate = torch.rand(batch, steps, 2, SIZE, SIZE, generator=generator) * 0.5
    return torch.poisson(rate, generator=generator)


def test_lif_step_hand_computed():
    v = torch.tensor([0.0, 0.0, 0.5, 2.0, -1.0])
    x = torch.tensor([3.0, 1.5, 0.0, 0.0, 6.0])
    spikes, v_after = lif_step(v, x, tau=3.0, v_threshold=1.0)
    # charge V + (x - V)/3: 1.0 (exactly at threshold: fires), 0.5, 1/3, 4/3, 4/3
    assert spikes.tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
    expected = torch.tensor([0.0, 0.5, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0])
    torch.testing.assert_close(v_after, expected)


def test_soft_reset_subtracts_threshold_and_keeps_excess():
    spikes, v_after = lif_step(torch.tensor([4.0]), torch.tensor([4.0]), tau=2.0, v_threshold=1.5)
    assert spikes.item() == 1.0
    assert v_after.item() == pytest.approx(2.5)  # 4.0 - 1.5: at most one spike per step


def test_atan_surrogate_gradient_values():
    centred = torch.tensor([0.0, 0.5, -2.0], requires_grad=True)
    spike(centred + 1.0, 1.0, 2.0).sum().backward()
    expected = [1.0, 1.0 / (1.0 + (math.pi / 2.0) ** 2), 1.0 / (1.0 + (2.0 * math.pi) ** 2)]
    torch.testing.assert_close(centred.grad, torch.tensor(expected))
    torch.testing.assert_close(atan_surrogate_grad(centred.detach(), 2.0), torch.tensor(expected))
    # alpha / (2 (1 + (pi/2 alpha x)^2)) for another alpha
    assert atan_surrogate_grad(torch.tensor(0.0), 4.0).item() == pytest.approx(2.0)


def test_defaults_are_threshold_one_and_alpha_two_and_backward_uses_alpha():
    v, x = torch.tensor([0.0, 0.5, 0.9]), torch.tensor([3.0, 1.5, 2.0])
    default, explicit = lif_step(v, x, tau=3.0), lif_step(v, x, tau=3.0, v_threshold=1.0)
    assert all(torch.equal(a, b) for a, b in zip(default, explicit))
    assert default[0].tolist() == [1.0, 0.0, 1.0]
    centred = torch.tensor([0.25, -0.5])
    torch.testing.assert_close(atan_surrogate_grad(centred), atan_surrogate_grad(centred, 2.0))
    membrane = torch.tensor([1.25, 0.5], requires_grad=True)
    spike(membrane, 1.0, 4.0).sum().backward()
    torch.testing.assert_close(membrane.grad, atan_surrogate_grad(centred, 4.0))
    assert membrane.grad[0].item() == pytest.approx(2.0 / (1.0 + (math.pi / 2.0) ** 2))
    membrane = torch.tensor([1.0, 0.999, 1.5], requires_grad=True)
    fired = spike(membrane)
    assert fired.tolist() == [1.0, 0.0, 1.0]
    fired.sum().backward()
    torch.testing.assert_close(membrane.grad, atan_surrogate_grad(membrane.detach() - 1.0, 2.0))
    # lif_step passes its alpha on to the surrogate gradient
    v = torch.tensor([0.0, 0.5], requires_grad=True)
    spikes, _ = lif_step(v, torch.tensor([3.0, 2.0]), tau=2.0, v_threshold=1.0, alpha=4.0)
    spikes.sum().backward()
    charged = torch.tensor([1.5, 1.25])
    torch.testing.assert_close(v.grad, atan_surrogate_grad(charged - 1.0, 4.0) * 0.5)


def test_reset_is_not_detached():
    v = torch.tensor([0.0], requires_grad=True)
    _, v_after = lif_step(v, torch.tensor([4.5]), tau=3.0, v_threshold=1.0)
    v_after.backward()
    # v_after = c - S(c - 1) with c = 2/3 v + x/3 = 1.5: dv_after/dv = 2/3 (1 - S'(0.5))
    surrogate = 1.0 / (1.0 + (math.pi / 2.0) ** 2)
    assert v.grad.item() == pytest.approx(2.0 / 3.0 * (1.0 - surrogate))


@pytest.fixture
def hybrid():
    torch.manual_seed(0)
    model = HybridPoseNet(small_config())
    randomize_batchnorm(model, seed=1)
    return model.eval()


def test_initial_state_is_overwritten_before_the_first_charge(hybrid):
    ann_input = torch.rand(1, 20, SIZE, SIZE) * 3
    frame = event_frames(1, 1, seed=2)[:, 0]
    with torch.no_grad():
        state, ann_heatmap = hybrid.init_window(ann_input)
        features = hybrid.ann(ann_input).features
        v_init = hybrid.initializers['static_conv'](features['conv2'])
        torch.testing.assert_close(state.membranes[0], v_init)
        torch.testing.assert_close(state.heatmap, ann_heatmap)
        assert state.steps_taken == 0
        _, new_state, activity = hybrid.step(state, frame)
        charged = v_init + (hybrid.snn.static_conv(frame) - v_init) / 3.0
        expected_spikes = (charged >= 1.0).float()
    assert torch.equal(activity.spikes['static_conv'], expected_spikes)
    torch.testing.assert_close(new_state.membranes[0], charged - expected_spikes)
    assert new_state.steps_taken == 1
    assert 0.0 < activity.firing_rates()['static_conv'] < 1.0


def test_output_accumulator(hybrid):
    ann_input = torch.rand(2, 20, SIZE, SIZE)
    frames = event_frames(2, 3, seed=3)
    with torch.no_grad():
        state, ann_heatmap = hybrid.init_window(ann_input)
        previous = ann_heatmap
        for t in range(3):
            delta, _, _ = hybrid.snn.step(frames[:, t], list(state.membranes))
            heatmap, state, _ = hybrid.step(state, frames[:, t])
            torch.testing.assert_close(heatmap, 0.8 * previous + delta)
            previous = heatmap


def test_forward_window_equals_streaming_steps(hybrid):
    ann_input = torch.rand(2, 20, SIZE, SIZE)
    frames = event_frames(2, 4, seed=4)
    with torch.no_grad():
        out = hybrid.forward_window(ann_input, frames, keep_activity=True)
        state, ann_heatmap = hybrid.init_window(ann_input)
        assert torch.equal(out['ann_heatmap'], ann_heatmap)
        for t in range(4):
            heatmap, state, activity = hybrid.step(state, frames[:, t])
            assert torch.equal(out['heatmaps'][:, t], heatmap)
            assert out['activity'][t].spikes.keys() == activity.spikes.keys()
    assert out['heatmaps'].shape == (2, 4, 13, SIZE, SIZE)
    for final, streamed in zip(out['final_membranes'], state.membranes):
        assert torch.equal(final, streamed)
    assert len(out['initial_membranes']) == len(SNN_LAYERS)
    with pytest.raises(ValueError, match='frames must be'):
        hybrid.forward_window(ann_input, frames[:, 0])


def test_pure_snn_starts_from_zero_and_reads_out_a_leaky_membrane():
    torch.manual_seed(0)
    model = PureSNN(small_config()).eval()
    frames = event_frames(1, 3, seed=5)
    with torch.no_grad():
        state = model.init_window(1)
        assert all(float(v.abs().sum()) == 0.0 for v in state.membranes)
        readout = torch.zeros(1, 13, SIZE, SIZE)
        for t in range(3):
            current, _, _ = model.snn.step(frames[:, t], list(state.membranes))
            heatmap, state, _ = model.step(state, frames[:, t])
            readout = 0.5 * readout + 0.5 * current  # tau 2
            torch.testing.assert_close(heatmap, readout)
        out = model.forward_window(frames)
    torch.testing.assert_close(out['heatmaps'][:, -1], heatmap)
    assert model.snn.tau == 2.0 and isinstance(model.snn.head[1], torch.nn.BatchNorm2d)


def test_surrogate_gradient_reaches_first_layer_and_initializers_through_10_steps():
    torch.manual_seed(0)
    model = HybridPoseNet(small_config()).train()
    model.freeze_ann()
    ann_input = torch.rand(2, 20, SIZE, SIZE) * 2
    frames = event_frames(2, 10, seed=6)
    out = model.forward_window(ann_input, frames)
    target = torch.zeros_like(out['heatmaps'][:, -1])
    # Only the last step's heatmap is scored: gradients must cross all ten steps.
    loss = ((out['heatmaps'][:, -1] - target) ** 2).mean()
    loss = loss + sum((v ** 2).mean() for v in out['final_membranes'])
    loss.backward()
    first_conv = model.snn.static_conv[0].weight
    assert first_conv.grad is not None and float(first_conv.grad.abs().sum()) > 0
    for layer in SNN_LAYERS:
        for parameter in model.initializers[layer].parameters():
            assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, layer
    assert all(p.grad is None for p in model.ann.parameters())


def test_ann_heatmap_enters_the_accumulator_detached():
    torch.manual_seed(0)
    model = HybridPoseNet(small_config()).train()
    state, ann_heatmap = model.init_window(torch.rand(1, 20, SIZE, SIZE))
    assert ann_heatmap.requires_grad and not state.heatmap.requires_grad
    heatmap, _, _ = model.step(state, event_frames(1, 1, seed=7)[:, 0])
    heatmap.sum().backward()
    assert model.ann.head.weight.grad is None  # only through the initialisers' features
    assert float(model.ann.conv1[0].weight.grad.abs().sum()) > 0
