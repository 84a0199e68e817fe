# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""An untrained hybrid starts from the ANN-held prediction (shrunk delta head)."""
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.decode import decode_heatmaps
from hybrid_pose_ros.model.hybrid import HybridPoseNet
import torch


def test_untrained_hybrid_keeps_the_ann_argmax_through_the_window():
    torch.manual_seed(0)
    config = make_config('cpu', input_height=32, input_width=32)
    model = HybridPoseNet(config).eval()
    ann_input = torch.poisson(torch.full((2, config.ann_in_channels, 32, 32), 0.3))
    frames = torch.poisson(torch.full((2, 10, 2, 32, 32), 0.2))
    with torch.no_grad():
        out = model.forward_window(ann_input, frames)
    held = decode_heatmaps(out['ann_heatmap']).xy
    for step in range(10):
        assert torch.equal(decode_heatmaps(out['heatmaps'][:, step]).xy, held)
    delta = out['heatmaps'][:, 0] - config.output_decay * out['ann_heatmap']
    assert delta.abs().max() < 1e-2 * out['ann_heatmap'].abs().max()
