"""Prepacked oneDNN convs compute what the torch modules they replace compute."""
import copy

from hybrid_pose_ros.model import inference, packed
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.model.inference import prepare_for_inference, to_channels_last
from hybrid_pose_ros.model.packed import pack_convolutions, PackedConv2d, packing_available
import pytest
import torch
from torch import nn

pytestmark = pytest.mark.skipif(not packing_available(), reason='torch has no oneDNN here')


def sample(channels: int, size: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=generator)


@pytest.mark.parametrize('kernel,stride,bias', [(7, 1, True), (5, 2, False), (1, 1, True)])
def test_packed_conv_equals_conv(kernel, stride, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 20, kernel, stride=stride, padding=kernel // 2, bias=bias).eval()
    packed_conv = PackedConv2d(conv)
    with torch.inference_mode():
        for layout in (torch.contiguous_format, torch.channels_last):
            for size in (16, 9):   # any input size, not only the one it was packed for
                x = sample(12, size).contiguous(memory_format=layout)
                torch.testing.assert_close(packed_conv(x), conv(x), rtol=0, atol=1e-5)


def test_leaky_relu_is_fused_past_identities():
    torch.manual_seed(1)
    block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Identity(), nn.LeakyReLU(0.1),
                          nn.Conv2d(8, 4, 1), nn.Identity()).eval()
    x = sample(8, 12)
    with torch.inference_mode():
        expected = block(x)
        packed_block = pack_convolutions(copy.deepcopy(block))
        actual = packed_block(x)
    assert [type(m).__name__ for m in packed_block] == ['PackedConv2d', 'Identity', 'Identity',
                                                        'PackedConv2d', 'Identity']
    assert packed_block[0].attr == 'leaky_relu' and packed_block[0].scalars == [0.1]
    assert packed_block[3].attr == 'none'
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
    assert (expected < 0).any()   # the negative slope was exercised


def test_prepared_hybrid_with_packed_convs_matches_unpacked():
    torch.manual_seed(2)
    config = make_config('cpu', input_height=32, input_width=32)
    model = HybridPoseNet(config).eval()
    packed_model = prepare_for_inference(model)
    plain = prepare_for_inference(model, pack_convs=False)
    assert not any(isinstance(m, nn.Conv2d) for m in packed_model.modules())
    ann_input = to_channels_last(torch.poisson(torch.rand(1, 20, 32, 32) * 2))
    frame = torch.poisson(torch.rand(1, 2, 32, 32))
    with torch.inference_mode():
        for candidate in (packed_model, copy.deepcopy(packed_model)):
            state, heatmap = candidate.init_window(ann_input)
            expected_state, expected_heatmap = plain.init_window(ann_input)
            torch.testing.assert_close(heatmap, expected_heatmap, rtol=0, atol=1e-5)
            for got, want in zip(state.membranes, expected_state.membranes):
                torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
            torch.testing.assert_close(candidate.step(expected_state, frame)[0],
                                       plain.step(expected_state, frame)[0], rtol=0, atol=1e-4)


def test_wrong_input_dtype_is_a_clear_error():
    packed_conv = PackedConv2d(nn.Conv2d(4, 4, 3, padding=1))
    with pytest.raises(TypeError, match='float32 weights, got a torch.bfloat16 input'):
        packed_conv(sample(4, 8).to(torch.bfloat16))
    with pytest.raises(ValueError, match='numeric zero padding'):
        PackedConv2d(nn.Conv2d(4, 4, 3, padding=1, padding_mode='reflect'))


def test_without_working_kernels_the_convs_stay_plain(monkeypatch):
    def unsupported(self, x):
        raise RuntimeError('no such kernel on this CPU')

    monkeypatch.setattr(PackedConv2d, 'forward', unsupported)
    assert not packed._packed_conv_runs.__wrapped__(torch.float32)
    monkeypatch.setattr(inference, 'packing_available', lambda device: False)
    model = HybridPoseNet(make_config('cpu', input_height=32, input_width=32)).eval()
    prepared = inference.prepare_for_inference(model)
    assert any(isinstance(m, nn.Conv2d) for m in prepared.modules())
    assert not any(isinstance(m, PackedConv2d) for m in prepared.modules())
