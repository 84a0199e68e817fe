# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Deterministic event streams and small models for tests."""
from hybrid_pose_ros.estimator import HybridEstimator, run_offline
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model.checkpoint import load_checkpoint, save_checkpoint
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.model.inference import prepare_for_inference
import numpy as np
import torch


def moving_blob_events(duration_us=450_000, rate_per_us=0.06, seed=3, t0_us=1_234_000):
    """Make a blob crossing a 346x260 sensor plus 20 % uniform noise, time-sorted."""
    rng = np.random.default_rng(seed)
    n = int(duration_us * rate_per_us)
    t = np.sort(rng.integers(t0_us, t0_us + duration_us, n))
    phase = (t - t[0]) / duration_us
    x = 60 + 220 * phase + rng.normal(0, 12, n)
    y = 130 + 60 * np.sin(6 * phase) + rng.normal(0, 20, n)
    noise = rng.random(n) < 0.2
    x[noise] = rng.integers(0, 346, noise.sum())
    y[noise] = rng.integers(0, 260, noise.sum())
    return make_events(t, np.clip(x, 0, 345), np.clip(y, 0, 259), rng.integers(0, 2, n))


def split_messages(events, message_us):
    """Cut time-sorted events into non-empty messages of ``message_us`` of event time."""
    edges = np.arange(events['t'][0], events['t'][-1] + message_us, message_us)
    idx = np.searchsorted(events['t'], edges)
    messages = [events[a:b] for a, b in zip(idx[:-1], idx[1:])] + [events[idx[-1]:]]
    return [m for m in messages if len(m)]


def seeded_model(config, seed=0):
    """Build an untrained hybrid model with non-trivial BatchNorm statistics (so neurons fire)."""
    torch.manual_seed(seed)
    model = HybridPoseNet(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def calibration_counts(config, windows=16, seed=5):
    """Return seeded ``uint8`` ANN inputs of ``config``'s shape, sparse like event counts."""
    rng = np.random.default_rng(seed)
    shape = (windows, config.ann_in_channels, config.input_height, config.input_width)
    return (rng.poisson(0.08, shape) * (rng.random(shape) < 0.5)).astype(np.uint8)


def small_checkpoint(path, calibrated=False, **overrides):
    """
    Write an untrained, seeded ``cpu``-preset hybrid checkpoint; return the config.

    With ``calibrated`` it stores int8 calibration inputs (:func:`calibration_counts`).
    """
    config = make_config('cpu', **overrides)
    model = seeded_model(config)
    if calibrated:
        model.ann_calibration = calibration_counts(config)
    save_checkpoint(path, model, config, 'hybrid',
                    metadata={'trained': False, 'purpose': 'tests'})
    return config


def randomize_batchnorm(model, seed, mean=0.2, var=(1.0, 0.5), weight=(1.0, 0.5),
                        bias=(0.2, 0.0)):
    """
    Give every BatchNorm2d seeded, non-trivial statistics and affine parameters; return ``model``.

    Running means are ``mean * N(0, 1)``; ``var``, ``weight`` (uniform) and ``bias`` (normal) are
    ``(scale, offset)`` pairs.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * mean)
            module.running_var.copy_(torch.rand(n, generator=generator) * var[0] + var[1])
            module.weight.data.copy_(torch.rand(n, generator=generator) * weight[0] + weight[1])
            module.bias.data.copy_(torch.randn(n, generator=generator) * bias[0] + bias[1])
    return model


def offline_reference(checkpoint, events, ann_runtime='auto', ann_lead_bins=0):
    """
    Return the poses ``run_offline`` gives for 346x260-sensor ``events`` with ``checkpoint``.

    The model is prepared as the node prepares it (sparse SNN, ``ann_precision`` ``auto``,
    ``ann_runtime`` as given: the node's default ``auto``), so that both compute the same
    arithmetic; ``ann_lead_bins`` as the node's parameter.
    """
    loaded = load_checkpoint(checkpoint)
    geometry = SensorGeometry.for_sensor(346, 260, loaded.config.input_width,
                                         loaded.config.input_height)
    model = prepare_for_inference(loaded.model, snn_backend='sparse', ann_precision='auto',
                                  ann_runtime=ann_runtime)
    return run_offline(HybridEstimator(model, geometry, ann_lead_bins=ann_lead_bins), events)
