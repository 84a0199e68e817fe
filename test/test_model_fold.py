"""BatchNorm folding and the other inference preparations keep the model's results."""
from helpers.streams import randomize_batchnorm
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet, PureSNN
from hybrid_pose_ros.model.inference import (
    fold_batchnorm, prepare_for_inference, ReducedPrecisionAnn, resolve_ann_precision,
    set_threads, to_channels_last)
from hybrid_pose_ros.model.packed import PackedConv2d
import pytest
import torch

SIZE = 32
STEPS = 6


def config():
    return make_config('paper', input_height=SIZE, input_width=SIZE, ann_base_width=8,
                       snn_base_width=8)


BFLOAT16_TOLERANCE = 0.05
"""Largest ANN output error of the bfloat16 path, as a fraction of the output's range."""

FOLD_STATISTICS = {'mean': 0.3, 'var': (2.0, 0.2), 'weight': (2.0, 1.0), 'bias': (0.3, 0.3)}
"""BatchNorm statistics far from the identity, so that a wrong fold shows."""


def inputs(dtype: torch.dtype):
    generator = torch.Generator().manual_seed(3)
    ann_input = torch.poisson(torch.rand(2, 20, SIZE, SIZE, generator=generator), generator)
    frames = torch.poisson(torch.rand(2, STEPS, 2, SIZE, SIZE, generator=generator) * 0.6,
                           generator)
    return ann_input.to(dtype), frames.to(dtype)


def assert_windows_match(reference, candidate, ann_input, frames, tolerance):
    with torch.no_grad():
        expected = reference.forward_window(ann_input, frames, keep_activity=True)
        actual = candidate.forward_window(ann_input, frames, keep_activity=True)
    torch.testing.assert_close(actual['ann_heatmap'], expected['ann_heatmap'],
                               rtol=0, atol=tolerance)
    membranes = zip((*actual['initial_membranes'], *actual['final_membranes']),
                    (*expected['initial_membranes'], *expected['final_membranes']))
    for got, want in membranes:
        torch.testing.assert_close(got, want, rtol=0, atol=tolerance)
    torch.testing.assert_close(actual['heatmaps'], expected['heatmaps'], rtol=0, atol=tolerance)
    spike_counts = dict.fromkeys(expected['activity'][0].spikes, 0.0)
    for got, want in zip(actual['activity'], expected['activity']):
        for name, spikes in want.spikes.items():
            assert torch.equal(got.spikes[name], spikes), name
            spike_counts[name] += float(spikes.sum())
    # The comparison covers spikes in every layer, not a silent network.
    assert min(spike_counts.values()) > 10, spike_counts


def conv_dtypes(module):
    """Return the weight dtypes of the plain and prepacked convs under ``module``."""
    return ({m.weight.dtype for m in module.modules() if isinstance(m, torch.nn.Conv2d)}
            | {m.dtype for m in module.modules() if isinstance(m, PackedConv2d)})


@pytest.fixture(scope='module')
def hybrid():
    torch.manual_seed(0)
    model = HybridPoseNet(config())
    randomize_batchnorm(model, seed=1, **FOLD_STATISTICS)
    return model.eval()


def test_folding_removes_every_batchnorm(hybrid):
    folded = fold_batchnorm(hybrid)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in hybrid.modules())
    assert folded.snn.static_conv[0].bias is not None and not folded.training


def test_folded_hybrid_matches_over_several_steps_float64(hybrid):
    reference = hybrid.double()
    try:
        ann_input, frames = inputs(torch.float64)
        assert_windows_match(reference, fold_batchnorm(reference), ann_input, frames, 1e-9)
    finally:
        hybrid.float()


def test_folded_hybrid_matches_float32_within_1e5(hybrid):
    ann_input, frames = inputs(torch.float32)
    folded = fold_batchnorm(hybrid)
    with torch.no_grad():
        state, ann_heatmap = hybrid.init_window(ann_input)
        folded_state, folded_heatmap = folded.init_window(ann_input)
        torch.testing.assert_close(folded_heatmap, ann_heatmap, rtol=0, atol=1e-5)
        for got, want in zip(folded_state.membranes, state.membranes):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        # Step from identical states so a threshold flip cannot accumulate over steps.
        heatmap, _, activity = hybrid.step(state, frames[:, 0])
        folded_heatmap, _, folded_activity = folded.step(state, frames[:, 0])
    flips = sum(int((folded_activity.spikes[n] != s).sum()) for n, s in activity.spikes.items())
    assert flips <= 2
    if flips == 0:
        torch.testing.assert_close(folded_heatmap, heatmap, rtol=0, atol=1e-5)


def test_folded_pure_snn_matches():
    torch.manual_seed(0)
    model = PureSNN(config())
    randomize_batchnorm(model, seed=2, **FOLD_STATISTICS)
    model = model.eval().double()
    _, frames = inputs(torch.float64)
    folded = fold_batchnorm(model)
    with torch.no_grad():
        expected = model.forward_window(frames)['heatmaps']
        actual = folded.forward_window(frames)['heatmaps']
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-9)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())


def test_prepare_for_inference_channels_last_and_threads(hybrid):
    previous = torch.get_num_threads()
    try:
        prepared = prepare_for_inference(hybrid, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        set_threads(previous)
    assert not any(p.requires_grad for p in prepared.parameters())
    ann_input, frames = inputs(torch.float32)
    with torch.inference_mode():
        state, ann_heatmap = hybrid.init_window(ann_input)
        fast_state, fast_heatmap = prepared.init_window(to_channels_last(ann_input))
        torch.testing.assert_close(fast_heatmap, ann_heatmap, rtol=0, atol=1e-5)
        torch.testing.assert_close(fast_state.membranes[4], state.membranes[4], rtol=0,
                                   atol=1e-5)
    with pytest.raises(ValueError, match='at least 1'):
        set_threads(0)


def test_bfloat16_ann_hands_float32_state_to_the_snn(hybrid):
    full = prepare_for_inference(hybrid)
    reduced = prepare_for_inference(hybrid, ann_precision='bfloat16')
    assert isinstance(reduced.ann, ReducedPrecisionAnn)
    assert conv_dtypes(reduced.ann) == {torch.bfloat16}
    assert conv_dtypes(reduced.snn) == conv_dtypes(reduced.initializers) == {torch.float32}
    ann_input, frames = inputs(torch.float32)
    with torch.inference_mode():
        expected = full.forward_window(to_channels_last(ann_input), frames)
        actual = reduced.forward_window(to_channels_last(ann_input), frames)
    for got, want in zip(actual['initial_membranes'], expected['initial_membranes']):
        assert got.dtype == torch.float32
        # bfloat16 keeps 8 significant bits: a few percent of the range after ~30 layers
        assert float((got - want).abs().max()) <= BFLOAT16_TOLERANCE * float(want.abs().max())
    heatmap, reference = actual['ann_heatmap'], expected['ann_heatmap']
    assert heatmap.dtype == torch.float32
    assert float((heatmap - reference).abs().max()) <= (
        BFLOAT16_TOLERANCE * float(reference.abs().max()))


def test_ann_precision_choices():
    assert resolve_ann_precision('auto', 'cuda') == 'float32'
    assert resolve_ann_precision('auto', 'cpu') in ('float32', 'bfloat16')
    assert resolve_ann_precision('bfloat16', 'cpu') == 'bfloat16'
    with pytest.raises(ValueError, match='unknown ann_precision'):
        resolve_ann_precision('int4', 'cpu')
