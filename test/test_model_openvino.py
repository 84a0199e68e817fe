"""The OpenVINO window initialisation computes what the torch model computes."""
import copy
import pathlib

from helpers.streams import calibration_counts, randomize_batchnorm
from hybrid_pose_ros.estimator import HybridEstimator, run_offline
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.model import inference, openvino_init
from hybrid_pose_ros.model.checkpoint import load_checkpoint
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.model.inference import (
    native_bfloat16, prepare_for_inference, resolve_ann_precision, resolve_ann_runtime,
    to_channels_last)
from hybrid_pose_ros.model.openvino_init import OpenVinoWindowInit
from hybrid_pose_ros.sample_bag import sample_bag
from hybrid_pose_ros.tools import demo
import numpy as np
import pytest
import torch

pytest.importorskip('openvino')

SIZE = 32
WEIGHTS = pathlib.Path(__file__).resolve().parents[1] / 'weights' / 'hybrid_cpu.pt'
BFLOAT16_TOLERANCE = 0.05
"""Largest error of the bfloat16 graph, as a fraction of each output's range (as for torch)."""


@pytest.fixture(scope='module')
def hybrid():
    torch.manual_seed(0)
    model = HybridPoseNet(make_config('paper', input_height=SIZE, input_width=SIZE,
                                      ann_base_width=8, snn_base_width=8))
    # statistics far from the identity, so that BatchNorms OpenVINO folded wrongly would show
    randomize_batchnorm(model, seed=1, mean=0.3, var=(2.0, 0.2), weight=(2.0, 1.0),
                        bias=(0.3, 0.3))
    return model.eval()


@pytest.fixture(scope='module')
def compiled(hybrid, tmp_path_factory):
    return OpenVinoWindowInit(hybrid, 'float32', cache_dir=tmp_path_factory.mktemp('ov'))


def ann_inputs(batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.poisson(torch.rand(batch, 20, SIZE, SIZE, generator=generator), generator)


def outputs(state, heatmap):
    return (heatmap, *state.membranes)


def assert_outputs_close(actual, expected, tolerance):
    assert len(actual) == len(expected) == 10
    for got, want in zip(actual, expected):
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert float((got - want).abs().max()) <= tolerance * float(want.abs().max())


def assert_read_from_cache(monkeypatch, module, name, make, reference):
    """``make()`` must not call ``module.name`` and must compute what ``reference`` computes."""
    def must_not_run(*args, **kwargs):
        raise AssertionError(f'{name} ran again although the cache holds the model')

    monkeypatch.setattr(module, name, must_not_run)
    cached = make()
    monkeypatch.undo()
    ann_input = ann_inputs(1)
    for got, want in zip(outputs(*cached(ann_input)), outputs(*reference(ann_input))):
        assert torch.equal(got, want)


def test_float32_graph_matches_the_torch_model(hybrid, compiled):
    ann_input = ann_inputs()
    with torch.no_grad():
        expected = outputs(*hybrid.init_window(ann_input))
    actual = outputs(*compiled(ann_input))
    assert_outputs_close(actual, expected, 1e-5)
    # channels-last, the layout the sparse SNN reads without a copy
    assert all(output.is_contiguous(memory_format=torch.channels_last) for output in actual)
    assert compiled.precision == 'float32' and compiled.threads == 1


def test_submit_returns_the_same_state_as_a_call(compiled):
    ann_input = ann_inputs(1)
    state, heatmap = compiled(ann_input)
    pending = compiled.submit(to_channels_last(ann_input))
    second = compiled.submit(ann_input * 2)   # two in flight keep their own outputs
    result = pending.result()
    assert pending.done() and result is pending.result()
    for got, want in zip(outputs(result, result.heatmap), outputs(state, heatmap)):
        assert torch.equal(got, want)
    assert not torch.equal(second.result().heatmap, heatmap)


def test_a_cancelled_initialisation_has_no_result(compiled):
    pending = compiled.submit(ann_inputs(1))
    assert pending.cancel() and pending.done()
    with pytest.raises(RuntimeError, match='cancelled'):
        pending.result()


@pytest.mark.skipif(not native_bfloat16(), reason='the CPU has no native bfloat16')
def test_bfloat16_graph_stays_within_the_torch_bfloat16_tolerance(hybrid, tmp_path):
    ann_input = ann_inputs()
    with torch.no_grad():
        expected = outputs(*hybrid.init_window(ann_input))
    reduced = OpenVinoWindowInit(hybrid, 'bfloat16', cache_dir=tmp_path)
    actual = outputs(*reduced(ann_input))
    assert_outputs_close(actual, expected, BFLOAT16_TOLERANCE)
    assert any(not torch.equal(got, want) for got, want in zip(actual, expected))


def test_the_converted_model_is_cached_per_weights_and_repaired(hybrid, tmp_path, monkeypatch):
    first = OpenVinoWindowInit(hybrid, 'float32', cache_dir=tmp_path)
    assert len(list(tmp_path.glob('window_init_*.xml'))) == 1
    import openvino
    assert_read_from_cache(monkeypatch, openvino, 'convert_model',
                           lambda: OpenVinoWindowInit(hybrid, 'float32', cache_dir=tmp_path),
                           first)
    ann_input = ann_inputs(1)
    (cached,) = tmp_path.glob('window_init_*.xml')
    cached.write_text('damaged')
    repaired = OpenVinoWindowInit(hybrid, 'float32', cache_dir=tmp_path)
    assert torch.equal(repaired(ann_input)[1], first(ann_input)[1])
    assert cached.read_text() != 'damaged'
    changed = HybridPoseNet(hybrid.config).eval()
    OpenVinoWindowInit(changed, 'float32', cache_dir=tmp_path)
    assert len(list(tmp_path.glob('window_init_*.xml'))) == 2


def test_prepared_model_initialises_windows_through_openvino(hybrid):
    prepared = prepare_for_inference(hybrid, snn_backend='sparse', ann_runtime='openvino')
    reference = prepare_for_inference(hybrid, snn_backend='sparse')
    assert isinstance(prepared.compiled_init, OpenVinoWindowInit)
    assert reference.compiled_init is None
    generator = torch.Generator().manual_seed(4)
    frames = torch.poisson(torch.rand(1, 4, 2, SIZE, SIZE, generator=generator) * 0.6,
                           generator)
    ann_input = to_channels_last(ann_inputs(1))
    with torch.inference_mode():
        actual = prepared.forward_window(ann_input, frames)
        expected = reference.forward_window(ann_input, frames)
    torch.testing.assert_close(actual['heatmaps'], expected['heatmaps'], rtol=0, atol=1e-4)


def test_ann_runtime_choices(monkeypatch):
    assert resolve_ann_runtime('auto', 'cpu') == 'openvino'
    assert resolve_ann_runtime('auto', 'cuda') == 'torch'
    assert resolve_ann_runtime('torch', 'cpu') == 'torch'
    with pytest.raises(ValueError, match='unknown ann_runtime'):
        resolve_ann_runtime('onnx', 'cpu')
    with pytest.raises(ValueError, match='CPU only'):
        resolve_ann_runtime('openvino', 'cuda')
    monkeypatch.setattr(inference, 'openvino_available', lambda: False)
    assert resolve_ann_runtime('auto', 'cpu') == 'torch'
    with pytest.raises(ValueError, match='needs the openvino package'):
        resolve_ann_runtime('openvino', 'cpu')
    with pytest.raises(ValueError, match='unknown precision'):
        OpenVinoWindowInit(HybridPoseNet(make_config('cpu')), 'int4')
    with pytest.raises(ValueError, match='does not store; add them with hybrid_pose_calibrate'):
        OpenVinoWindowInit(HybridPoseNet(make_config('cpu')), 'int8')
    assert openvino_init.default_cache_dir().parts[-2:] == ('hybrid_pose_ros', 'openvino')


def test_int8_is_chosen_where_openvino_nncf_and_calibration_are(monkeypatch):
    monkeypatch.setattr(inference, 'nncf_available', lambda: True)
    native = 'bfloat16' if native_bfloat16() else 'float32'
    assert resolve_ann_precision('auto', 'cpu', 'openvino', calibrated=True) == 'int8'
    assert resolve_ann_precision('auto', 'cpu', 'openvino', calibrated=False) == native
    assert resolve_ann_precision('auto', 'cpu', 'torch', calibrated=True) == native
    assert resolve_ann_precision('int8', 'cpu', 'openvino', calibrated=True) == 'int8'
    with pytest.raises(ValueError, match='int8 runs in OpenVINO only, not with ann_runtime '
                       'torch'):
        resolve_ann_precision('int8', 'cpu', 'torch', calibrated=True)
    with pytest.raises(ValueError, match='needs calibration inputs'):
        resolve_ann_precision('int8', 'cpu', 'openvino', calibrated=False)
    monkeypatch.setattr(inference, 'nncf_available', lambda: False)
    assert resolve_ann_precision('auto', 'cpu', 'openvino', calibrated=True) == native
    with pytest.raises(ValueError, match='needs the nncf package'):
        resolve_ann_precision('int8', 'cpu', 'openvino', calibrated=True)


def test_int8_graph_is_cached_per_calibration(hybrid, tmp_path, monkeypatch):
    pytest.importorskip('nncf')
    hybrid = copy.deepcopy(hybrid)
    hybrid.ann_calibration = calibration_counts(hybrid.config, windows=8)
    first = OpenVinoWindowInit(hybrid, 'int8', cache_dir=tmp_path)
    full = OpenVinoWindowInit(hybrid, 'float32', cache_dir=tmp_path)
    assert len(list(tmp_path.glob('window_init_*.xml'))) == 2
    convolutions = sum(full.convolution_precisions().values())
    assert full.convolution_precisions() == {'f32': convolutions}
    assert set(first.convolution_precisions()) <= {'u8', 'i8'}   # every conv quantised
    assert sum(first.convolution_precisions().values()) == convolutions
    assert_read_from_cache(monkeypatch, openvino_init, '_quantised',
                           lambda: OpenVinoWindowInit(hybrid, 'int8', cache_dir=tmp_path),
                           first)
    hybrid.ann_calibration = calibration_counts(hybrid.config, windows=8, seed=6)
    OpenVinoWindowInit(hybrid, 'int8', cache_dir=tmp_path)
    assert len(list(tmp_path.glob('window_init_*.xml'))) == 3


def test_int8_graph_keeps_the_shipped_models_accuracy_on_the_sample_bag():
    """The quantised ANN moves single joints, not the error against the bag's labels."""
    pytest.importorskip('nncf')
    data = demo.read_bag(sample_bag(), duration=None)
    loaded = load_checkpoint(WEIGHTS)
    assert loaded.model.ann_calibration is not None   # the shipped weights are calibrated
    config = loaded.config
    geometry = SensorGeometry.for_sensor(data.width, data.height, config.input_width,
                                         config.input_height)
    errors, poses = {}, {}
    for precision in ('float32', 'int8'):
        model = prepare_for_inference(loaded.model, snn_backend='sparse',
                                      ann_precision=precision, ann_runtime='openvino')
        assert model.compiled_init.precision == precision
        steps = run_offline(HybridEstimator(model, geometry), data.events)
        stamps = np.array([step.end_us for step in steps])
        xy = np.stack([step.xy for step in steps])
        errors[precision] = np.nanmean(demo.pose_errors(stamps, xy, data.labels))
        poses[precision] = xy
    # float32 12.13 px, int8 12.73 px against the labels of the sample bag (CMU subject 13,
    # held out), with the 128 calibration inputs the bundled weights store
    assert abs(errors['int8'] - errors['float32']) < 1.0
    assert errors['float32'] < 13.0
    assert np.isfinite(poses['int8']).all()
    assert not np.array_equal(poses['int8'], poses['float32'])   # really quantised
