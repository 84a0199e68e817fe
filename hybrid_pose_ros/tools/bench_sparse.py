"""
The event-driven (sparse) SNN step against the dense torch step, on this CPU.

Two tables, both timed in the same run for a ratio:

* per layer: each SNN conv (BatchNorm folded, the decoder's upsampling included) fed inputs at
  a set activity (1, 3 and 5 % of inputs nonzero: spikes, or event counts for the first layer),
  dense torch (channels-last) against the scatter kernels given the active list (in a step the
  LIF update that fires the spikes writes that list; its cost is in the whole-step numbers);
* per step: whole SNN steps (conv, LIF and the spike lists), dense against sparse (which runs a
  layer dense above ``DENSE_ABOVE_ACTIVITY`` active inputs), with the firing rate they ran at
  and the largest output difference between the two paths. The ``cpu``
  preset runs its bundled weights on the sample bag (real input, real activity). The ``paper``
  preset has no trained weights: its random weights get BatchNorm statistics from the synthetic
  person of ``hybrid_pose_model_bench``, then every SNN BatchNorm bias is tuned until its layer
  fires at about 3 % (the paper reports 2-5 %); the measured rate is printed beside the timing.

Dense torch uses ``threads`` intra-op threads; the sparse kernels use one.
"""
import statistics
import time
from typing import Any

from hybrid_pose_ros.estimator import HybridEstimator, window_starts
from hybrid_pose_ros.events.binning import split_into_bins
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model.checkpoint import load_checkpoint
from hybrid_pose_ros.model.config import ModelConfig, PRESETS
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.model.inference import prepare_for_inference, set_threads, to_channels_last
from hybrid_pose_ros.model.macs import snn_conv_specs
from hybrid_pose_ros.model.snn import SNN_LAYERS, upsample2x
from hybrid_pose_ros.model.sparse import median_ms, SparseSpikingUNet, SpikeList
from hybrid_pose_ros.ros.node import default_checkpoint
from hybrid_pose_ros.sample_bag import sample_bag
from hybrid_pose_ros.tools import demo, model_bench
import numpy as np
import torch

ACTIVITIES = (0.01, 0.03, 0.05)
PAPER_ACTIVITY = 0.03
"""Firing rate the random ``paper`` weights are calibrated to (the paper reports 2-5 %)."""
Windows = list[tuple[torch.Tensor, torch.Tensor]]


def layer_inputs(config: ModelConfig, name: str, activity: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Return a ``[1, C_in, H, W]`` input of layer ``name`` with ``activity`` of it nonzero."""
    spec = snn_conv_specs(config)[name]
    if name.startswith('up'):   # the conv input before the 2x upsampling
        shape = (1, spec.in_channels, spec.out_height // 2, spec.out_width // 2)
    else:
        shape = (1, spec.in_channels, spec.out_height * spec.stride, spec.out_width * spec.stride)
    active = (torch.rand(shape, generator=generator) < activity).float()
    if name == 'static_conv':
        return active * torch.randint(1, 4, shape, generator=generator)
    return active


def bench_layers(config: ModelConfig, activities: tuple[float, ...] = ACTIVITIES,
                 repetitions: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """Dense vs sparse time of every SNN conv (and the head) at each input activity."""
    torch.manual_seed(seed)
    model = HybridPoseNet(config).eval()
    dense = prepare_for_inference(model).snn
    sparse = SparseSpikingUNet(model.snn, dense_above=1.0)   # the scatter kernels only
    generator = torch.Generator().manual_seed(seed)
    rows = []
    with torch.inference_mode():
        for name in SNN_LAYERS + ('head',):
            conv = getattr(dense, name)
            for activity in activities:
                inputs = to_channels_last(layer_inputs(config, name, activity, generator))
                spikes = [SpikeList.from_dense(np.ascontiguousarray(
                    inputs[0].permute(1, 2, 0).numpy()), binary=name != 'static_conv')]

                def dense_layer(x=inputs, conv=conv, name=name) -> torch.Tensor:
                    return conv(upsample2x(x) if name.startswith('up') else x)

                def sparse_layer(spikes=spikes, name=name) -> np.ndarray:
                    return sparse.layer_current(name, spikes)

                dense_ms = median_ms(dense_layer, repetitions)
                sparse_ms = median_ms(sparse_layer, repetitions)
                difference = float(np.abs(sparse_layer() - dense_layer()[0]
                                          .permute(1, 2, 0).numpy()).max())
                rows.append({'layer': name, 'activity': activity,
                             'active_inputs': spikes[0].count,
                             'dense_macs': snn_conv_specs(config)[name].macs,
                             'dense_ms': dense_ms, 'sparse_ms': sparse_ms,
                             'ratio': dense_ms / sparse_ms, 'max_abs_difference': difference})
    return rows


def sample_bag_windows(config: ModelConfig, count: int) -> Windows:
    """ANN inputs and SNN frames of the first ``count`` windows of the bundled sample bag."""
    data = demo.read_bag(sample_bag(), duration=None)
    geometry = SensorGeometry.for_sensor(data.width, data.height, config.input_width,
                                         config.input_height)
    builder = HybridEstimator(HybridPoseNet(config), geometry)
    events, windows = data.events, []
    for start in window_starts(events['t'], config)[:count]:
        first = int(np.searchsorted(events['t'], start))
        history = events[first - config.ann_events:first]
        end = start + config.window_us
        bins = split_into_bins(events[first:np.searchsorted(events['t'], end)], start,
                               config.bin_us, config.steps_per_window)
        frames = torch.stack([builder.snn_input(b)[0] for b in bins])[None]
        windows.append((builder.ann_input(history), frames))
    return windows


def calibrate_activity(model: HybridPoseNet, windows: Windows, target: float,
                       iterations: int = 12) -> dict[str, float]:
    """
    Set BatchNorm so that every SNN layer fires at about ``target`` over ``windows``.

    BatchNorm statistics come from :func:`model_bench.calibrate_batchnorm`; then each layer's
    BN bias is moved by ``0.5 * log(target / rate)`` per iteration (the rates measured on the
    sparse path). Returns the last measured rate per layer.
    """
    model_bench.calibrate_batchnorm(model, windows, model.config.steps_per_window)
    rates: dict[str, float] = {}
    for _ in range(iterations):
        rates = window_firing_rates(prepare_for_inference(model, snn_backend='sparse'), windows)
        for name, rate in rates.items():
            norm = getattr(model.snn, name)[1]
            norm.bias.data += float(np.clip(0.5 * np.log(target / max(rate, 1e-4)), -1, 1))
    return rates


@torch.inference_mode()
def window_firing_rates(model: torch.nn.Module, windows: Windows) -> dict[str, float]:
    """Mean firing rate of every SNN layer over all steps of ``windows``."""
    totals: dict[str, list[float]] = {}
    for ann_input, frames in windows:
        state, _ = model.init_window(to_channels_last(ann_input))
        for t in range(frames.shape[1]):
            _, state, activity = model.step(state, frames[:, t])
            for name, rate in activity.firing_rates().items():
                totals.setdefault(name, []).append(rate)
    return {name: float(np.mean(values)) for name, values in totals.items()}


def bench_steps(model: HybridPoseNet, windows: Windows, threads: int) -> dict[str, Any]:
    """Time every SNN step of ``windows`` on the dense and the sparse path; check they agree."""
    set_threads(threads)
    paths = {'dense': prepare_for_inference(model),
             'sparse': prepare_for_inference(model, snn_backend='sparse')}
    durations: dict[str, list[float]] = {name: [] for name in paths}
    heatmaps: dict[str, list[torch.Tensor]] = {name: [] for name in paths}
    rates = []
    with torch.inference_mode():
        for name, prepared in paths.items():
            ann_input, frames = windows[0]
            prepared.step(prepared.init_window(to_channels_last(ann_input))[0], frames[:, 0])
            for ann_input, frames in windows:
                state, _ = prepared.init_window(to_channels_last(ann_input))
                for t in range(frames.shape[1]):
                    start = time.perf_counter()
                    heatmap, state, activity = prepared.step(state, frames[:, t])
                    durations[name].append(time.perf_counter() - start)
                    heatmaps[name].append(heatmap.clone())
                    if name == 'sparse':
                        rates.append(float(np.mean(list(activity.firing_rates().values()))))
    first = np.arange(len(rates)) % windows[0][1].shape[1] == 0   # each window's first step
    result = {name: {'median_ms': statistics.median(d) * 1e3, 'mean_ms': float(np.mean(d)) * 1e3,
                     'p99_ms': float(np.percentile(d, 99)) * 1e3, 'steps': len(d),
                     'first_steps_mean_ms': float(np.mean(np.array(d)[first])) * 1e3}
              for name, d in durations.items()}
    result['first_steps_firing_rate'] = float(np.mean(np.array(rates)[first]))
    result['ratio'] = result['dense']['median_ms'] / result['sparse']['median_ms']
    result['mean_ratio'] = result['dense']['mean_ms'] / result['sparse']['mean_ms']
    result['mean_firing_rate'] = float(np.mean(rates))
    result['max_abs_difference'] = max(float((a - b).abs().max()) for a, b in
                                       zip(heatmaps['dense'], heatmaps['sparse']))
    result['max_abs_output'] = max(float(h.abs().max()) for h in heatmaps['dense'])
    result['threads'] = threads
    return result


def bench_sparse(presets: tuple[str, ...] = ('paper', 'cpu'), threads: int = 2,
                 windows: int = 3, quick: bool = False,
                 checkpoint: str | None = None) -> dict[str, Any]:
    """Run the layer and step tables for each preset (``cpu``: ``checkpoint`` or the bundled)."""
    results: dict[str, Any] = {}
    for name in presets:
        config = PRESETS[name]
        heavy = name.startswith('paper')
        set_threads(threads)
        layers = bench_layers(config, (0.03,) if quick else ACTIVITIES,
                              repetitions=1 if quick else (3 if heavy else 20))
        if name == 'cpu':
            model = load_checkpoint(checkpoint or str(default_checkpoint())).model
            step_windows = sample_bag_windows(config, 1 if quick else windows)
            source = 'bundled weights, sample bag'
        else:
            torch.manual_seed(0)
            model = HybridPoseNet(config).eval()
            step_windows = [model_bench.window_inputs(config, 5e5, 0, w)
                            for w in range(1 if quick or heavy else windows)]
            calibrate_activity(model, step_windows, PAPER_ACTIVITY)
            source = f'random weights, BN set to fire about {PAPER_ACTIVITY:.0%} per layer'
        if quick:
            step_windows = [(a, f[:, :2]) for a, f in step_windows]
        steps = bench_steps(model, step_windows, threads)
        results[name] = {'layers': layers, 'steps': steps, 'step_input': source}
    return results


def print_sparse(results: dict[str, Any]) -> None:
    """Print the per-layer and per-step tables."""
    for name, result in results.items():
        print(f'\nsparse vs dense SNN, preset {name}: per layer (ms, median; dense torch '
              f'{result["steps"]["threads"]} threads, sparse 1 thread)')
        print(f'| {"layer":<11} | {"active":>6} | {"dense ms":>9} | {"sparse ms":>9} | '
              f'{"ratio":>6} |')
        print(f'|{"-" * 13}|{"-" * 8}|{"-" * 11}|{"-" * 11}|{"-" * 8}|')
        for row in result['layers']:
            print(f'| {row["layer"]:<11} | {row["activity"]:>6.0%} | {row["dense_ms"]:>9.2f} | '
                  f'{row["sparse_ms"]:>9.2f} | {row["ratio"]:>5.1f}x |')
        steps = result['steps']
        dense, sparse = steps['dense'], steps['sparse']
        print(f'whole SNN step ({result["step_input"]}; {dense["steps"]} steps, firing '
              f'{steps["mean_firing_rate"]:.1%}, first step of a window '
              f'{steps["first_steps_firing_rate"]:.1%}): median dense {dense["median_ms"]:.2f} '
              f'ms, sparse {sparse["median_ms"]:.2f} ms: **{steps["ratio"]:.1f}x**; mean '
              f'{dense["mean_ms"]:.2f} vs {sparse["mean_ms"]:.2f} ms '
              f'({steps["mean_ratio"]:.1f}x); '
              f'first steps {dense["first_steps_mean_ms"]:.2f} vs '
              f'{sparse["first_steps_mean_ms"]:.2f} ms; max |dense - sparse| '
              f'{steps["max_abs_difference"]:.1e} (outputs up to {steps["max_abs_output"]:.3g})')
