"""
Benchmark the hybrid model on this CPU: latency, compute, activity and energy per preset.

For each preset (default ``paper`` and ``cpu``) and thread count (1 and 2) it times the window
initialisation (ANN + state initialisers) and the SNN step of the inference-prepared model
(BatchNorm folded, channels-last, prepacked convs, ``torch.inference_mode``; the init also
with torch's own convs, for the packing's speed-up), and reports dense MACs, synaptic
operations, firing rates and energy estimates (:mod:`hybrid_pose_ros.model.energy`).

Input activity is a synthetic person in front of a DAVIS346: a 13-joint stick figure, about
200 px tall, doing jumping jacks at 1 Hz. Events fall on its moving limbs (ON on the leading
side of a limb, OFF on the trailing side) with 3 px jitter across the limb, plus 5 % uniform
background noise, at ``--event-rate`` events per second (default 0.5 Mev/s, i.e. 5000 events
per 10 ms bin, within the 0.3-1 Mev/s of a person moving in front of the sensor). The events go
through the package's own pipeline (DHP19 crop, scaling, count frames, stacked histogram).
Without ``--checkpoint`` the weights are random (Xavier) with BatchNorm statistics calibrated on
the synthetic input, so the layers see unit-scale currents and fire; the firing rates and
synaptic operations then show the accounting at a plausible activity, not what a trained model
would do. Latencies do not depend on the weights (dense CPU inference).
"""
import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.representations import count_frames, stacked_histogram
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH, SensorGeometry
from hybrid_pose_ros.model import energy
from hybrid_pose_ros.model.checkpoint import load_checkpoint
from hybrid_pose_ros.model.config import ModelConfig, PRESETS
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.model.inference import (
    native_bfloat16, prepare_for_inference, resolve_ann_precision, set_threads, to_channels_last)
from hybrid_pose_ros.model.macs import ann_macs, initializer_macs, snn_step_macs
from hybrid_pose_ros.model.openvino_init import nncf_available, openvino_available
from hybrid_pose_ros.skeleton import SKELETON_EDGES
import numpy as np
import torch

HEAVY_STEP_MACS = 1e9
"""Presets whose dense SNN step exceeds this many MACs get ``--heavy-reps`` repetitions."""


def person_pose(t_s: np.ndarray) -> np.ndarray:
    """Joint positions ``[len(t), 13, 2]`` (sensor x, y) of the jumping-jack figure at ``t_s``."""
    t_s = np.asarray(t_s, dtype=np.float64)
    lift = 0.5 * (1.0 - np.cos(2.0 * np.pi * t_s))
    centre_x = DHP19_WIDTH / 2.0 + 10.0 * np.sin(2.0 * np.pi * 0.3 * t_s)
    pose = np.zeros((len(t_s), 13, 2))

    def put(joint: int, x: np.ndarray, y: np.ndarray) -> None:
        pose[:, joint, 0], pose[:, joint, 1] = x, y

    put(0, centre_x, np.full_like(t_s, 35.0))
    for side, (shoulder, elbow, hand, hip, knee, foot) in ((-1, (1, 3, 7, 5, 9, 11)),
                                                           (1, (2, 4, 8, 6, 10, 12))):
        put(shoulder, centre_x + side * 25.0, np.full_like(t_s, 70.0))
        put(hip, centre_x + side * 15.0, np.full_like(t_s, 140.0))
        arm = side * (0.3 + 2.2 * lift)
        put(elbow, pose[:, shoulder, 0] + 40.0 * np.sin(arm), 70.0 + 40.0 * np.cos(arm))
        put(hand, pose[:, elbow, 0] + 40.0 * np.sin(arm), pose[:, elbow, 1] + 40.0 * np.cos(arm))
        leg = side * (0.05 + 0.35 * lift)
        put(knee, pose[:, hip, 0] + 50.0 * np.sin(leg), 140.0 + 50.0 * np.cos(leg))
        put(foot, pose[:, knee, 0] + 50.0 * np.sin(leg), pose[:, knee, 1] + 50.0 * np.cos(leg))
    return pose


def person_events(rng: np.random.Generator, start_us: int, end_us: int,
                  rate_hz: float) -> np.ndarray:
    """Events of the moving figure in ``[start_us, end_us)`` on the DAVIS346 sensor."""
    count = int(round(rate_hz * (end_us - start_us) * 1e-6))
    t = np.sort(rng.integers(start_us, end_us, size=count))
    t_s = t * 1e-6
    pose, later = person_pose(t_s), person_pose(t_s + 1e-3)
    bones = np.array(SKELETON_EDGES)
    mid = person_pose(np.array([(start_us + end_us) * 0.5e-6]))[0]
    mid_next = person_pose(np.array([(start_us + end_us) * 0.5e-6 + 1e-3]))[0]
    length = np.linalg.norm(mid[bones[:, 1]] - mid[bones[:, 0]], axis=1)
    speed = np.linalg.norm(mid_next[bones].mean(axis=1) - mid[bones].mean(axis=1), axis=1)
    weight = length * (0.3 + speed)
    bone = rng.choice(len(bones), size=count, p=weight / weight.sum())
    rows = np.arange(count)
    a, b = pose[rows, bones[bone, 0]], pose[rows, bones[bone, 1]]
    along = rng.random(count)[:, None]
    point = a + along * (b - a)
    direction = (b - a) / np.maximum(np.linalg.norm(b - a, axis=1, keepdims=True), 1e-6)
    normal = np.stack((-direction[:, 1], direction[:, 0]), axis=1)
    offset = rng.normal(0.0, 3.0, size=count)
    point += offset[:, None] * normal
    velocity = (later[rows, bones[bone, 0]] + along * (later[rows, bones[bone, 1]]
                                                       - later[rows, bones[bone, 0]])) - (
        a + along * (b - a))
    leading = np.sign(offset) * np.sign((velocity * normal).sum(axis=1)) > 0
    polarity = np.where(rng.random(count) < 0.8, leading, ~leading).astype(np.uint8)
    noise = rng.random(count) < 0.05
    point[noise, 0] = rng.uniform(0, DHP19_WIDTH, noise.sum())
    point[noise, 1] = rng.uniform(0, DHP19_HEIGHT, noise.sum())
    x = np.clip(point[:, 0], 0, DHP19_WIDTH - 1).astype(np.int64)
    y = np.clip(point[:, 1], 0, DHP19_HEIGHT - 1).astype(np.int64)
    return make_events(t, x, y, polarity)


def window_inputs(config: ModelConfig, rate_hz: float, seed: int, window: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """ANN input ``[1, 20, H, W]`` and frames ``[1, T, 2, H, W]`` of window number ``window``."""
    rng = np.random.default_rng(seed + window)
    geometry = SensorGeometry.dhp19(config.input_width, config.input_height)
    start = 1_000_000 + window * config.window_us
    history_us = int(np.ceil(config.ann_events / rate_hz * 1e6 * 1.2))
    history = geometry.to_model(person_events(rng, start - history_us, start, rate_hz)).events
    history = history[-config.ann_events:]
    ann = stacked_histogram(history, config.ann_bins, config.input_height, config.input_width)
    events = geometry.to_model(person_events(rng, start, start + config.window_us,
                                             rate_hz)).events
    frames = count_frames(events, start, config.bin_us, config.steps_per_window,
                          config.input_height, config.input_width)
    return torch.from_numpy(ann)[None], torch.from_numpy(frames)[None]


@torch.no_grad()
def calibrate_batchnorm(model: HybridPoseNet,
                        windows: list[tuple[torch.Tensor, torch.Tensor]], steps: int) -> None:
    """Set every BatchNorm's running statistics to their average over the given windows."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for ann_input, frames in windows:
        model.forward_window(ann_input, frames[:, :steps])
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def _timed(function, repetitions: int) -> list[float]:
    durations = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return durations


def _summary(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    return {'median_ms': statistics.median(ordered) * 1e3,
            'p99_ms': ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
            'count': len(ordered)}


@torch.inference_mode()
def bench_latency(model: HybridPoseNet, windows: list[tuple[torch.Tensor, torch.Tensor]],
                  steps: int, inits: int) -> dict[str, Any]:
    """Time ``inits`` window initialisations and ``steps`` SNN steps (cycling the windows)."""
    ann_input, frames = windows[0]
    model.step(model.init_window(ann_input)[0], frames[:, 0])  # warm-up
    init = _timed(lambda: model.init_window(ann_input), inits)
    step_durations: list[float] = []
    index = 0
    while len(step_durations) < steps:
        ann_input, frames = windows[index % len(windows)]
        state, _ = model.init_window(ann_input)
        for t in range(min(frames.shape[1], steps - len(step_durations))):
            start = time.perf_counter()
            _, state, _ = model.step(state, frames[:, t])
            step_durations.append(time.perf_counter() - start)
        index += 1
    return {'init': _summary(init), 'step': _summary(step_durations)}


@torch.inference_mode()
def bench_init(model: HybridPoseNet, ann_input: torch.Tensor, inits: int) -> dict[str, float]:
    """Time ``inits`` window initialisations (after one warm-up)."""
    model.init_window(ann_input)
    return _summary(_timed(lambda: model.init_window(ann_input), inits))


@torch.inference_mode()
def window_activity(model: HybridPoseNet, config: ModelConfig,
                    windows: list[tuple[torch.Tensor, torch.Tensor]]) -> energy.StepAccounting:
    """Mean per-step accounting over the given windows."""
    steps = []
    for ann_input, frames in windows:
        state, _ = model.init_window(ann_input)
        for t in range(frames.shape[1]):
            _, state, activity = model.step(state, frames[:, t])
            steps.append(energy.account_step(config, frames[:, t], activity.spikes))
    return energy.mean_accounting(steps)


def calibrated(model: HybridPoseNet, windows: list[tuple[torch.Tensor, torch.Tensor]]
               ) -> HybridPoseNet:
    """Return ``model``, given the windows' ANN inputs as int8 calibration if it has none."""
    if model.ann_calibration is None:
        counts = np.concatenate([ann_input.numpy() for ann_input, _ in windows])
        model.ann_calibration = counts.clip(0, 255).astype(np.uint8)
    return model


def bench_preset(name: str, config: ModelConfig, model: HybridPoseNet, args: argparse.Namespace,
                 trained: bool) -> dict[str, Any]:
    """Benchmark one configuration at every thread count."""
    heavy = snn_step_macs(config) > HEAVY_STEP_MACS
    steps = args.heavy_reps if heavy else args.reps
    inits = max(2, steps // 5)
    windows = [window_inputs(config, args.event_rate, args.seed, w)
               for w in range(1 if heavy else 3)]
    if not trained:
        calibrate_batchnorm(model, windows, 3 if heavy else config.steps_per_window)
    prepared = prepare_for_inference(model)
    unpacked = prepare_for_inference(model, ann_precision='auto', pack_convs=False)
    reduced = (prepare_for_inference(model, ann_precision='bfloat16')
               if native_bfloat16() else None)
    windows = [(to_channels_last(a), to_channels_last(f.squeeze(0)).unsqueeze(0))
               for a, f in windows]
    native = resolve_ann_precision('auto')   # bfloat16 where the CPU has it, as for torch
    latency = {}
    for threads in args.threads:
        set_threads(threads)
        result = bench_latency(prepared, windows, steps, inits)
        # the node's init (ann_precision auto) with torch's own convs, which reorder their
        # weights on every call: the baseline of the prepacked convs, same run
        result['init_unpacked'] = bench_init(unpacked, windows[0][0], inits)
        if reduced is not None:   # the bfloat16 ANN of ann_precision:=auto, same run
            result['init_bfloat16'] = bench_init(reduced, windows[0][0], inits)
        if openvino_available():   # the node's default ann_runtime, same run
            compiled = prepare_for_inference(model, threads, ann_precision=native,
                                             ann_runtime='openvino')
            result['init_openvino'] = bench_init(compiled, windows[0][0], inits)
            if nncf_available():   # and its default precision with a calibrated checkpoint
                quantised = prepare_for_inference(calibrated(model, windows), threads,
                                                  ann_precision='int8', ann_runtime='openvino')
                result['init_openvino_int8'] = bench_init(quantised, windows[0][0], inits)
        result['budget_ms'] = (result['step']['median_ms']
                               + result['init']['median_ms'] / config.steps_per_window)
        result['realtime_load'] = result['budget_ms'] * config.snn_rate_hz / 1e3
        latency[str(threads)] = result
    set_threads(max(args.threads))
    activity = window_activity(prepared, config, windows[:1])
    events_per_bin = float(windows[0][1].sum()) / windows[0][1].shape[1]
    return {
        'preset': name,
        'config': config.to_dict(),
        'trained_weights': trained,
        'latency': latency,
        'dense_macs': {'ann_pass': ann_macs(config), 'initializer_pass': initializer_macs(config),
                       'snn_step': snn_step_macs(config)},
        'events_per_bin_in_crop': events_per_bin,
        'report': energy.energy_report(config, activity),
    }


def format_results(results: list[dict[str, Any]]) -> str:
    """Render the benchmark results as plain-text tables."""
    lines = ['latency (median / p99 ms); budget = step + init / steps_per_window; bf16 init: '
             'median with the ANN in bfloat16 (ann_precision); unpacked: median init at the '
             "node's precision (auto) with torch's per-call weight reorder (pack_convs=False), "
             'and its ratio to the packed one; openvino: median init at that precision in '
             'OpenVINO (ann_runtime), and the packed torch init over it; ov int8: median init '
             'with int8 convs in OpenVINO (ann_precision int8), and the openvino one over it',
             f'{"preset":<12}{"input":>9}{"thr":>5}{"init med":>10}{"init p99":>10}'
             f'{"step med":>10}{"step p99":>10}{"budget":>9}{"of 1 s":>7}{"bf16 init":>11}'
             f'{"unpacked":>10}{"packed x":>10}{"openvino":>10}{"ov x":>7}{"ov int8":>9}'
             f'{"int8 x":>8}']
    for result in results:
        config = result['config']
        size = f'{config["input_width"]}x{config["input_height"]}'
        for threads, lat in result['latency'].items():
            reduced = lat.get('init_bfloat16')
            compiled = lat.get('init_openvino')
            quantised = lat.get('init_openvino_int8')
            packed = (reduced or lat['init'])['median_ms']
            lines.append(
                f'{result["preset"]:<12}{size:>9}{threads:>5}'
                f'{lat["init"]["median_ms"]:>10.2f}{lat["init"]["p99_ms"]:>10.2f}'
                f'{lat["step"]["median_ms"]:>10.2f}{lat["step"]["p99_ms"]:>10.2f}'
                f'{lat["budget_ms"]:>9.2f}{lat["realtime_load"]:>7.0%}'
                + (f'{reduced["median_ms"]:>11.2f}' if reduced else f'{"-":>11}')
                + f'{lat["init_unpacked"]["median_ms"]:>10.2f}'
                + f'{lat["init_unpacked"]["median_ms"] / packed:>9.2f}x'
                + (f'{compiled["median_ms"]:>10.2f}{packed / compiled["median_ms"]:>6.2f}x'
                   if compiled else f'{"-":>10}{"-":>7}')
                + (f'{quantised["median_ms"]:>9.2f}'
                   f'{compiled["median_ms"] / quantised["median_ms"]:>7.2f}x'
                   if quantised else f'{"-":>9}{"-":>8}'))
    lines += ['', 'compute per pass / step (GMAC dense; G synaptic ops per step)',
              f'{"preset":<12}{"ANN":>8}{"init":>8}{"SNN":>8}{"fire %":>8}{"synops":>9}'
              f'{"fused":>8}{"simpl.":>8}{"ev/bin":>8}']
    for result in results:
        macs, step = result['dense_macs'], result['report']['step']
        lines.append(
            f'{result["preset"]:<12}{macs["ann_pass"] / 1e9:>8.3f}'
            f'{macs["initializer_pass"] / 1e9:>8.3f}{macs["snn_step"] / 1e9:>8.3f}'
            f'{100 * step["mean_firing_rate"]:>8.2f}{step["synaptic_ops"] / 1e9:>9.4f}'
            f'{step["fused_synaptic_ops"] / 1e9:>8.4f}{step["simplified_ops"] / 1e9:>8.4f}'
            f'{result["events_per_bin_in_crop"]:>8.0f}')
    lines += ['', 'power at the SNN rate (W): hybrid (SNN priced as: paper simplified / '
              'event-driven / fused / dense) vs ANN only',
              f'{"preset":<12}{"constants":<10}{"simpl.":>9}{"event":>9}{"fused":>9}'
              f'{"dense":>9}{"ANN":>9}']
    for result in results:
        for name, block in result['report']['energy'].items():
            power = block['power']
            lines.append(
                f'{result["preset"]:<12}{name:<10}'
                + ''.join(f'{power[view]["hybrid_w"]:>9.4f}' for view in energy.SNN_ENERGY_VIEWS)
                + f'{power["dense"]["ann_only_w"]:>9.4f}')
    if not all(result['trained_weights'] for result in results):
        lines += ['', 'note: random weights; firing rates and synaptic ops are not those of a '
                  'trained model (use --checkpoint)']
    return '\n'.join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog='hybrid_pose_model_bench', description=__doc__.split(
        '\n\n')[0].strip(), formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--presets', nargs='+', default=None, choices=sorted(PRESETS),
                        help='presets to benchmark (default: paper cpu, or that of --checkpoint)')
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2],
                        help='intra-op thread counts to time')
    parser.add_argument('--reps', type=int, default=100, help='timed SNN steps per thread count')
    parser.add_argument('--heavy-reps', type=int, default=3,
                        help='timed SNN steps for presets above 1 GMAC per step (paper)')
    parser.add_argument('--checkpoint', default=None,
                        help='trained hybrid checkpoint to use for its preset')
    parser.add_argument('--event-rate', type=float, default=5e5,
                        help='synthetic events per second on the whole sensor')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='write the results to this JSON file')
    args = parser.parse_args(argv)
    if args.reps < 1 or args.heavy_reps < 1 or min(args.threads) < 1:
        parser.error('--reps, --heavy-reps and --threads must be at least 1')
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    args = parse_args(argv)
    loaded = load_checkpoint(args.checkpoint) if args.checkpoint else None
    if loaded is not None and loaded.kind != 'hybrid':
        print(f'{args.checkpoint}: holds a {loaded.kind} model; the benchmark needs a hybrid '
              'checkpoint', file=sys.stderr)
        return 2
    presets = args.presets or ([loaded.preset] if loaded else ['paper', 'cpu'])
    results = []
    for name in presets:
        if loaded is not None and loaded.preset == name:
            config, model, trained = loaded.config, loaded.model, True
        else:
            config = PRESETS[name]
            torch.manual_seed(args.seed)
            model, trained = HybridPoseNet(config).eval(), False
        print(f'benchmarking {name} ({config.input_width}x{config.input_height}, ANN width '
              f'{config.ann_base_width}, SNN width {config.snn_base_width}) ...', flush=True)
        results.append(bench_preset(name, config, model, args, trained))
    print(f'\nCPU: {os.cpu_count()} cores, torch {torch.__version__}, load average '
          f'{os.getloadavg()[0]:.2f}')
    print(format_results(results))
    if args.json:
        with open(args.json, 'w') as stream:
            json.dump({'torch': torch.__version__, 'cpu_count': os.cpu_count(),
                       'load_average': os.getloadavg()[0], 'results': results}, stream, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
