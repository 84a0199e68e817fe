# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""The DHP19 baseline CNN, DHP19's filters and frames, and its row in the evaluation."""
import json
import math

import h5py
from hybrid_pose_ros.data import dhp19
from hybrid_pose_ros.events import dhp19_filters as filters
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.dhp19_cnn import (default_dhp19_cnn_path, Dhp19Cnn, heatmap_peaks,
                                             load_dhp19_cnn, predict_joints,
                                             SameConvTranspose2d)
from hybrid_pose_ros.skeleton import JOINT_NAMES, NUM_JOINTS
from hybrid_pose_ros.tools import evaluate as evaluate_cli
from hybrid_pose_ros.training import evaluate
from hybrid_pose_ros.training.dataset import WindowDataset
import numpy as np
import pytest
import torch
from torch import nn

WEIGHTS = default_dhp19_cnn_path()
# (Keras layer, output channels, height, width) for a 260x344 input
LAYER_SHAPES = [('conv1', 16, 260, 344), ('pool1', 16, 130, 172)] + [
    (name, 32, 130, 172) for name in ('conv2a', 'conv2b', 'conv2d')] + [
    ('pool2', 32, 65, 86)] + [(f'conv3{k}', 64, 65, 86) for k in 'abcd'] + [
    ('conv3_up', 32, 130, 172)] + [(f'conv4{k}', 32, 130, 172) for k in 'abcd'] + [
    ('conv4_up', 16, 260, 344), ('conv5a', 16, 260, 344), ('conv5d', 16, 260, 344),
    ('pred_cube', 13, 260, 344)]


@pytest.fixture(scope='module')
def model():
    return load_dhp19_cnn(WEIGHTS)


def _keras_layers():
    with h5py.File(WEIGHTS, 'r') as f:
        return json.loads(f.attrs['model_config'])['config']['layers']


def _kernels():
    with h5py.File(WEIGHTS, 'r') as f:
        group = f['model_weights']
        return {name: group[f'{name}/{name}/kernel:0'][()] for name in group
                if len(group[name])}


def test_parameter_count_and_every_layer_shape(model):
    assert sum(p.numel() for p in model.parameters()) == 218_592
    assert all(p.dtype == torch.float32 for p in model.parameters())
    x = torch.zeros(1, 1, 260, 344)
    shapes = {}
    with torch.inference_mode():
        for name, layer in model.named_children():
            x = layer(x)
            shapes[name] = tuple(x.shape[1:])
    for name, channels, height, width in LAYER_SHAPES:
        assert shapes[name] == (channels, height, width), name
    assert shapes['activation_17'] == (13, 260, 344)


def test_layers_follow_the_keras_model_config():
    layers = _keras_layers()
    assert layers[0]['class_name'] == 'InputLayer'
    assert layers[0]['config']['batch_input_shape'] == [None, 260, 344, 1]
    children = list(Dhp19Cnn().named_children())
    assert [layer['config']['name'] for layer in layers[1:]] == [name for name, _ in children]
    previous = layers[0]['config']['name']
    for layer, (name, module) in zip(layers[1:], children):
        config = layer['config']
        assert layer['inbound_nodes'] == [[[previous, 0, 0, {}]]]    # a plain chain
        previous = name
        if layer['class_name'] == 'Activation':
            assert config['activation'] == 'relu' and isinstance(module, nn.ReLU)
        elif layer['class_name'] == 'MaxPooling2D':
            assert (config['pool_size'], config['strides'], config['padding']) == (
                [2, 2], [2, 2], 'valid')
            assert isinstance(module, nn.MaxPool2d)
            assert (module.kernel_size, module.stride, module.padding) == (2, 2, 0)
        else:
            assert (config['kernel_size'], config['padding'], config['use_bias'],
                    config['activation']) == ([3, 3], 'same', False, 'linear')
            assert module.bias is None and module.kernel_size == (3, 3)
            assert module.out_channels == config['filters']
            if layer['class_name'] == 'Conv2DTranspose':
                assert isinstance(module, SameConvTranspose2d)
                assert config['strides'] == [2, 2] and config['output_padding'] is None
                assert module.stride == (2, 2)
            else:
                assert layer['class_name'] == 'Conv2D' and type(module) is nn.Conv2d
                assert config['strides'] == [1, 1] and module.stride == (1, 1)
                dilation = config['dilation_rate'][0]
                assert config['dilation_rate'] == [dilation, dilation]
                assert module.dilation == (dilation, dilation)
                assert module.padding == (dilation, dilation)      # 'same', stride 1


def test_weights_equal_the_h5_datasets(model):
    kernels = _kernels()
    assert len(kernels) == 17
    for name, kernel in kernels.items():
        weight = getattr(model, name).weight.detach().numpy()
        # Conv2D: (kh, kw, in, out) <- (out, in, kh, kw); Conv2DTranspose: (kh, kw, out, in)
        # <- (in, out, kh, kw): one permutation for both, no flip
        np.testing.assert_array_equal(weight.transpose(2, 3, 1, 0), kernel, err_msg=name)


def keras_conv2d_transpose_same(x: np.ndarray, kernel: np.ndarray,
                                stride: int = 2) -> np.ndarray:
    """Return TensorFlow's conv2d_transpose, 'same': x [H, W, in], kernel [kh, kw, out, in]."""
    height, width, _ = x.shape
    kh, kw, channels, _ = kernel.shape
    out_h, out_w = height * stride, width * stride
    # the forward 'same' convolution of the (out_h, out_w) image pads half (rounded down) before
    pad_top = max((height - 1) * stride + kh - out_h, 0) // 2
    pad_left = max((width - 1) * stride + kw - out_w, 0) // 2
    out = np.zeros((out_h, out_w, channels))
    for i in range(height):
        for j in range(width):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * stride + a - pad_top, j * stride + b - pad_left
                    if 0 <= r < out_h and 0 <= c < out_w:
                        out[r, c] += kernel[a, b] @ x[i, j]
    return out


def keras_conv2d_same(x: np.ndarray, kernel: np.ndarray, dilation: int) -> np.ndarray:
    """Return TensorFlow's conv2d (a correlation), stride 1, 'same'; kernel [kh, kw, in, out]."""
    pad = dilation                                      # (3 - 1) * dilation split evenly
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    height, width, _ = x.shape
    out = np.zeros((height, width, kernel.shape[-1]))
    for a in range(3):
        for b in range(3):
            out += padded[a * dilation:a * dilation + height,
                          b * dilation:b * dilation + width] @ kernel[a, b]
    return out


def test_whole_network_equals_a_numpy_keras_reference(model):
    kernels = _kernels()
    x = np.random.default_rng(1).uniform(0, 255, (12, 16, 1))
    with torch.inference_mode():
        out = model(torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)))
    reference = x
    for layer in _keras_layers()[1:]:
        config = layer['config']
        if layer['class_name'] == 'Conv2D':
            reference = keras_conv2d_same(reference, kernels[config['name']],
                                          config['dilation_rate'][0])
        elif layer['class_name'] == 'Conv2DTranspose':
            reference = keras_conv2d_transpose_same(reference, kernels[config['name']])
        elif layer['class_name'] == 'MaxPooling2D':
            h, w, c = reference.shape
            reference = reference.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
        else:
            reference = np.maximum(reference, 0.0)
    assert reference.shape == (12, 16, 13) and reference.max() > 0
    np.testing.assert_allclose(out[0].numpy().transpose(1, 2, 0), reference,
                               rtol=1e-4, atol=1e-4 * reference.max())


def test_transposed_conv_orientation_and_same_padding(model):
    kernel = _kernels()['conv3_up']                     # (3, 3, 32 out, 64 in)
    layer = model.conv3_up
    impulse = np.zeros((5, 6, 64), dtype=np.float32)
    impulse[2, 3, 7] = 1.0
    impulse[4, 5, 9] = 1.0                              # last row and column
    with torch.inference_mode():
        out = layer(torch.from_numpy(impulse.transpose(2, 0, 1))[None])[0].numpy()
    out = out.transpose(1, 2, 0)
    assert out.shape == (10, 12, 32)
    # hand-computed: input (i, j) reaches outputs (2i + a, 2j + b) with tap kernel[a, b]
    for a in range(3):
        for b in range(3):
            np.testing.assert_allclose(out[4 + a, 6 + b], kernel[a, b, :, 7], atol=1e-7)
    # the last input pixel keeps taps 0 and 1 only: Keras pads after the data
    np.testing.assert_allclose(out[8:, 10:], kernel[:2, :2, :, 9], atol=1e-7)
    assert np.count_nonzero(np.abs(out).sum(axis=-1)) == 9 + 4
    np.testing.assert_allclose(out, keras_conv2d_transpose_same(impulse, kernel), atol=1e-6)
    x = np.random.default_rng(0).normal(size=(4, 5, 64)).astype(np.float32)
    with torch.inference_mode():
        out = layer(torch.from_numpy(x.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(out, keras_conv2d_transpose_same(x, kernel), atol=1e-4)


def test_joint_order_is_dhp19s():
    # XYZPOS fields of ExtractEventsToFramesAndMeanLabels.m, in pose order
    matlab = ('head', 'shoulderR', 'shoulderL', 'elbowR', 'elbowL', 'hipR', 'hipL', 'handR',
              'handL', 'kneeR', 'kneeL', 'footR', 'footL')
    names = tuple(n if n == 'head' else n[:-1] + ('_right' if n[-1] == 'R' else '_left')
                  for n in matlab)
    assert names == JOINT_NAMES


def test_heatmap_peaks_take_the_first_maximum():
    maps = np.zeros((2, 4, 5), dtype=np.float32)
    maps[0, 1, 3] = maps[0, 2, 0] = 2.0                 # tie: row-major first is (row 1, col 3)
    maps[1, 3, 4] = 0.5
    uv, peak = heatmap_peaks(maps)
    np.testing.assert_array_equal(uv, [[3, 1], [4, 3]])
    np.testing.assert_array_equal(peak, [2.0, 0.5])
    uv, _ = heatmap_peaks(np.zeros((1, 3, 3)))           # all zero (ReLU): pixel (0, 0)
    np.testing.assert_array_equal(uv, [[0, 0]])


def test_predict_joints(model):
    frame = np.zeros((260, 344), dtype=np.uint8)
    frame[60:200, 150:190] = 40
    joints = predict_joints(model, frame)
    assert joints.shape == (NUM_JOINTS, 2)
    assert ((joints >= 0) & (joints < [344, 260])).all()
    with pytest.raises(ValueError, match='260x344'):
        predict_joints(model, np.zeros((260, 346)))


def _events(rows):
    """Build events from ``(t_us, x, y)`` rows (polarity 1), sorted by time."""
    rows = sorted(rows)
    t, x, y = (np.array(column) for column in zip(*rows))
    return make_events(t, x, y, np.ones(len(rows)))


def _xyt(events):
    return {(int(e['x']), int(e['y']), int(e['t'])) for e in events}


def test_frame_normalisation_by_hand():
    # counts 1, 1, 1 and 5 (the 5 in column 345, outside the network's input): the nonzero
    # counts have mean 2 and sample variance (1 + 1 + 1 + 9) / 3 = 4, so sigma 2 and
    # 1 -> floor(255 / 6) = 42
    events = _events([(0, 0, 0), (1, 1, 0), (2, 2, 259)] + [(3 + k, 345, 10) for k in range(5)])
    events['p'][::2] = 0                               # both polarities count
    frame = filters.dhp19_frame(events)
    assert frame.dtype == np.uint8 and frame.shape == (260, 344)
    expected = np.zeros((260, 344), dtype=np.uint8)
    expected[0, 0] = expected[0, 1] = expected[259, 2] = 42
    np.testing.assert_array_equal(frame, expected)
    counts = np.zeros((260, 346))
    counts[0, :3] = 1
    counts[10, 345] = 5
    assert filters.normalize_image_3sigma(counts)[10, 345] == 212   # floor(5 * 255 / 6)
    # ten 1s and one 12: mean 2, variance (10 + 100) / 10 = 11; 12 -> 307.6, clipped to 255
    events = _events([(k, k, 0) for k in range(10)] + [(10 + k, 50, 50) for k in range(12)])
    frame = filters.dhp19_frame(events)
    assert frame[50, 50] == 255
    assert frame[0, 3] == math.floor(255 / (3 * math.sqrt(11))) == 25
    assert np.count_nonzero(frame) == 11
    # one pixel, or all equal: sigma floored at 0.1/255, so 255; no events: all zero
    frame = filters.dhp19_frame(_events([(0, 7, 8), (1, 7, 8), (5, 9, 9), (6, 9, 9)]))
    assert frame[8, 7] == frame[9, 9] == 255 and np.count_nonzero(frame) == 2
    assert not filters.dhp19_frame(_events([(0, 7, 8)])[:0]).any()


def test_background_activity_filter():
    ms = 1000
    rows = [
        (100 * ms, 100, 100),          # isolated after 70 ms: removed
        (170 * ms, 101, 101),          # stamped 70 ms earlier by its neighbour: kept
        (100 * ms, 200, 50),           # removed
        (171 * ms, 201, 50),           # its neighbour 71 ms earlier: removed
        (300 * ms, 50, 150), (310 * ms, 50, 150),   # an event does not support its own pixel
        (400 * ms, 10, 0), (410 * ms, 11, 1),       # row 0 is a border: it supports nobody
        (500 * ms, 0, 100), (510 * ms, 1, 100),     # column 0: a border of camera 0 only
        (600 * ms, 345, 120), (610 * ms, 344, 121),  # column 345: a border of camera 3 only
        (50 * ms, 300, 200),           # within 70 ms of the clock's 0, unsupported: kept
    ]
    events = _events(rows)
    kept = {(101, 101, 170 * ms), (300, 200, 50 * ms)}
    assert _xyt(filters.background_activity_filter(events, 1)) == kept | {
        (1, 100, 510 * ms), (344, 121, 610 * ms)}
    assert _xyt(filters.background_activity_filter(events, 0)) == kept | {(344, 121, 610 * ms)}
    assert _xyt(filters.background_activity_filter(events, 3)) == kept | {(1, 100, 510 * ms)}
    with pytest.raises(ValueError, match='camera'):
        filters.background_activity_filter(events, 4)


def test_hot_pixel_filter():
    hot = [(k, 20, 30) for k in range(10_000)]
    warm = [(k, 21, 30) for k in range(9_999)]
    events = _events(hot + warm + [(5, 100, 100)])
    kept = filters.hot_pixel_filter(events)
    assert len(kept) == 10_000 and not ((kept['x'] == 20) & (kept['y'] == 30)).any()


def test_ir_masks():
    mask1 = [(88, 115), (116, 143), (100, 130)]
    mask2 = [(214, 136), (219, 142), (216, 140)]
    outside1 = [(87, 115), (117, 143), (100, 114), (100, 144)]
    outside2 = [(213, 136), (220, 142), (214, 135), (214, 143)]
    points = mask1 + mask2 + outside1 + outside2
    events = _events([(k, x, y) for k, (x, y) in enumerate(points)])

    def kept(camera):
        return {(x, y) for x, y, _ in _xyt(filters.ir_mask_filter(events, camera))}
    assert kept(2) == set(points) - set(mask1)
    assert kept(3) == set(points) - set(mask2)
    assert kept(0) == kept(1) == set(points)


def test_filters_run_in_dhp19s_order():
    # hot pixel, then background: the hot pixel's events are gone, so they support nobody;
    # an event the background filter removes still supports its neighbours; then the IR mask
    hot = [(200_000 + k, 150, 150) for k in range(10_000)]
    events = _events(hot + [(220_000, 151, 150), (221_000, 152, 150), (221_500, 101, 130),
                            (222_000, 100, 130)])
    assert _xyt(filters.background_activity_filter(events, 2)) == {
        (151, 150, 220_000), (152, 150, 221_000), (100, 130, 222_000)}
    assert _xyt(filters.dhp19_filters(events, 2)) == {(152, 150, 221_000)}


def test_per_joint_error_by_hand():
    crop = np.full((1, 2, NUM_JOINTS, 2), np.nan)
    crop[0, :, 0] = (10, 20)
    crop[0, :, 1] = (0, 0)
    dataset = WindowDataset({'crop': crop, 'step_valid': np.array([[True, False]])}, [],
                            make_config('cpu'), {})
    uv = np.zeros((1, 2, NUM_JOINTS, 2))
    uv[0, :, 0] = (34 + 13, 2 + 24)                    # crop (13, 24): 3-4-5 from (10, 20)
    uv[0, :, 1] = (34, 2)                              # exact
    uv[0, :, 2] = (100, 100)                           # its label is invisible: not counted
    errors = evaluate.sensor_window_errors(dataset, np.array([0]), uv)
    assert errors[0, 0] == pytest.approx(2.5) and np.isnan(errors[0, 1])
    means = evaluate.per_camera_means(np.array([[1.0, 3.0], [5.0, np.nan], [7.0, 7.0]]),
                                      np.array([2, 3, 2]))
    assert means == {'2': pytest.approx(4.5), '3': pytest.approx(5.0)}


def _write_toy_recording(folder):
    """One test-split recording (S13) of camera 3: a standing figure emitting events."""
    f, depth, height = 300.0, 3500.0, 1000.0
    # DHP19 convention: u = x / w, v = 260 - y / w; camera at (0, -3500, 1000) mm looking +Y
    p_matrix = np.array([[f, 173.0, 0.0, 173.0 * depth],
                         [0.0, 130.0, f, 130.0 * depth - f * height],
                         [0.0, 1.0, 0.0, depth]])
    dhp19.write_cameras(folder, {2: p_matrix}, {2: np.array([0.0, -depth, height])})
    body = np.array([[0, 0, 1700], [-200, 0, 1450], [200, 0, 1450], [-300, 0, 1150],
                     [300, 0, 1150], [-100, 0, 950], [100, 0, 950], [-350, 0, 900],
                     [350, 0, 900], [-100, 0, 500], [100, 0, 500], [-100, 0, 50],
                     [100, 0, 50]], dtype=np.float64)
    name = dhp19.recording_name(13, 1, 1)
    times = dhp19.label_times_us(800_000)
    dhp19.write_labels(dhp19.labels_path(folder, name),
                       np.repeat(body.T[None], len(times), axis=0), times)
    hom = np.concatenate([body, np.ones((NUM_JOINTS, 1))], axis=1) @ p_matrix.T
    uv = np.stack([hom[:, 0] / hom[:, 2], 260 - hom[:, 1] / hom[:, 2]], axis=1)
    rng = np.random.default_rng(0)
    n = 24_000
    xy = uv[rng.integers(0, NUM_JOINTS, n)] + rng.normal(0, 1.5, (n, 2))
    events = make_events(np.sort(rng.integers(0, 800_000, n)), np.clip(xy[:, 0], 0, 345),
                         np.clip(xy[:, 1], 0, 259), rng.integers(0, 2, n))
    dhp19.write_events(dhp19.events_path(folder, name), {3: events})


def test_dhp19_cnn_row_on_a_tiny_dataset(tmp_path, model):
    _write_toy_recording(str(tmp_path))
    config = make_config('cpu', input_height=32, input_width=32, ann_events=500)
    dataset = WindowDataset.build(str(tmp_path), 'test', [3], config, step_ann=True,
                                  progress=False)
    results = evaluate.evaluate_models(dataset, dataset.to_device('cpu'), None, None, None,
                                       energy_windows=0, progress=False, max_windows=2,
                                       dhp19_cnn=model)
    row = results['models']['dhp19_cnn']
    assert set(results['models']) == {'dhp19_cnn'}
    assert math.isfinite(row['mpjpe_2d_px']['mean']) and row['mpjpe_2d_px']['mean'] >= 0
    assert len(row['mpjpe_2d_px']['per_step']) == config.steps_per_window
    assert row['mpjpe_2d_px_per_camera'] == {'3': pytest.approx(row['mpjpe_2d_px']['mean'])}
    assert row['dhp19_filters'] is True and row['mpjpe_3d_mm'] is None
    assert 'DHP19 CNN (trained on real DHP19)' in evaluate.format_table(results)
    # the frames are the last 7,500 filtered events before each window start
    start = dataset.arrays['start_us'][-1:]
    frames = evaluate.dhp19_cnn_frames(dataset.sources[0], start)
    events = filters.dhp19_filters(dhp19.read_events(
        dhp19.events_path(str(tmp_path), dataset.sources[0].name), 3), 3)
    end = np.searchsorted(events['t'], start[0])
    assert end > 7500
    np.testing.assert_array_equal(frames[0], filters.dhp19_frame(events[end - 7500:end]))


def test_cli_options(monkeypatch):
    calls = []
    monkeypatch.setattr(evaluate_cli, 'run', lambda *args, **kwargs: calls.append(kwargs))
    base = ['--hybrid', 'h.pt', '--data', 'folder']
    evaluate_cli.main(base)
    evaluate_cli.main(base + ['--dhp19-cnn', 'other.model', '--dhp19-cnn-no-filters'])
    evaluate_cli.main(base + ['--no-dhp19-cnn'])
    assert [(c['dhp19_cnn'], c['dhp19_cnn_filters']) for c in calls] == [
        (str(WEIGHTS), True), ('other.model', False), (None, True)]
    with pytest.raises(SystemExit):
        evaluate_cli.main(base + ['--no-dhp19-cnn', '--dhp19-cnn', 'x.model'])
