"""Checkpoint round trip and readable errors naming the file and the mismatch."""
from hybrid_pose_ros.model.checkpoint import (
    add_ann_calibration, CheckpointError, export_checkpoint, FORMAT_TAG, load_checkpoint,
    save_checkpoint)
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import build_model, HybridPoseNet
from hybrid_pose_ros.skeleton import JOINT_NAMES
import numpy as np
import pytest
import torch

GEOMETRY = {'sensor_width': 346, 'sensor_height': 260, 'crop': [34, 2, 256, 256], 'scale': 0.5}
METADATA = {'epochs': 3, 'dataset': 'synthetic', 'val_mpjpe_px': 6.5, 'seed': 2022}


def small_config(**overrides):
    sizes = {'input_height': 32, 'input_width': 32, 'ann_base_width': 8, 'snn_base_width': 4}
    return make_config('cpu', **{**sizes, **overrides})


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    config = small_config()
    model = HybridPoseNet(config)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
    path = tmp_path / 'hybrid.pt'
    save_checkpoint(path, model, config, 'hybrid', GEOMETRY, METADATA)
    return path, model, config


def rewrite(path, **changes):
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value
    torch.save(payload, path)


def test_round_trip(saved):
    path, model, config = saved
    loaded = load_checkpoint(path, expect_preset='cpu')
    assert loaded.kind == 'hybrid' and loaded.preset == 'cpu' and loaded.config == config
    assert loaded.geometry == GEOMETRY and loaded.metadata == METADATA
    assert loaded.joint_names == JOINT_NAMES and loaded.path == str(path)
    assert not loaded.model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    model.eval()
    ann_input, frame = torch.rand(1, 20, 32, 32), torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        expected = model.step(model.init_window(ann_input)[0], frame)[0]
        actual = loaded.model.step(loaded.model.init_window(ann_input)[0], frame)[0]
    assert torch.equal(expected, actual)


@pytest.mark.parametrize('kind', ['ann', 'pure_snn'])
def test_round_trip_other_kinds(tmp_path, kind):
    config = small_config()
    model = build_model(kind, config)
    save_checkpoint(tmp_path / 'm.pt', model, config, kind)
    loaded = load_checkpoint(tmp_path / 'm.pt')
    assert loaded.kind == kind and type(loaded.model) is type(model)
    assert loaded.geometry == {} and loaded.metadata == {}


def test_file_holds_only_plain_types(saved):
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    assert payload['format'] == FORMAT_TAG and payload['version'] == 1
    assert payload['joint_names'] == list(JOINT_NAMES)


def test_missing_file(tmp_path):
    path = tmp_path / 'nothing.pt'
    with pytest.raises(CheckpointError, match=f'{path}: file does not exist'):
        load_checkpoint(path)


@pytest.mark.parametrize('content', [b'hello world', b'PK\x03\x04 not really a zip', b''])
def test_not_a_torch_file(tmp_path, content):
    path = tmp_path / 'notes.pt'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f'{path}: (not a PyTorch checkpoint|empty file)'):
        load_checkpoint(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(CheckpointError, match='is a directory'):
        load_checkpoint(tmp_path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / 'foreign.pt'
    torch.save({'model': {}}, path)
    with pytest.raises(CheckpointError, match=f'{path}: not a hybrid_pose_ros checkpoint'):
        load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="format tag 'Tensor'"):
        load_checkpoint(path)


class Opaque:
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / 'pickled.pt'
    torch.save({'format': FORMAT_TAG, 'metadata': Opaque()}, path)
    with pytest.raises(CheckpointError, match=f'{path}: holds Python objects'):
        load_checkpoint(path)


def test_missing_keys(saved):
    path, _, _ = saved
    rewrite(path, metadata=None, geometry=None)
    with pytest.raises(CheckpointError, match=rf"{path}: missing keys \['geometry', 'metadata'\]"):
        load_checkpoint(path)


def test_unknown_preset(saved):
    path, _, _ = saved
    rewrite(path, preset='jetson')
    with pytest.raises(CheckpointError,
                       match=f"{path}: unknown preset 'jetson' .known: cpu, paper, paper_200hz"):
        load_checkpoint(path)


def test_unexpected_preset(saved):
    path, _, _ = saved
    with pytest.raises(CheckpointError,
                       match=f"{path}: preset 'cpu' differs from the expected preset 'paper'"):
        load_checkpoint(path, expect_preset='paper')


def test_joint_names_differ(saved):
    path, _, _ = saved
    names = list(JOINT_NAMES)
    names[7], names[8] = names[8], names[7]
    rewrite(path, joint_names=names)
    with pytest.raises(CheckpointError, match=f'{path}: joint names differ') as error:
        load_checkpoint(path)
    assert "'hand_left', 'hand_right'" in str(error.value)


def test_shape_mismatch_lists_parameters_with_both_shapes(saved):
    path, _, config = saved
    wider = small_config(snn_base_width=config.snn_base_width * 2)
    rewrite(path, config=wider.to_dict())
    with pytest.raises(CheckpointError, match=f'{path}: .* parameter shapes differ') as error:
        load_checkpoint(path)
    message = str(error.value)
    assert ('initializers.static_conv.0.weight: file (4, 8, 1, 1) vs model (8, 8, 1, 1); '
            'initializers.static_conv.0.bias: file (4,) vs model (8,)') in message
    assert message.endswith('(and 149 more)')


def test_state_dict_of_another_kind(saved, tmp_path):
    path, _, _ = saved
    rewrite(path, kind='pure_snn')
    with pytest.raises(CheckpointError, match=f'{path}: state_dict does not fit a pure_snn model'
                       ) as error:
        load_checkpoint(path)
    assert 'missing [snn.head.0.weight' in str(error.value)
    assert 'unexpected [ann.conv1.0.weight; ann.conv1.0.bias;' in str(error.value)


def test_invalid_config(saved):
    path, _, config = saved
    rewrite(path, config={**config.to_dict(), 'input_height': 33})
    with pytest.raises(CheckpointError, match=f'{path}: invalid model config: .*multiple of 32'):
        load_checkpoint(path)


def test_unsupported_version(saved):
    path, _, _ = saved
    rewrite(path, version=7)
    with pytest.raises(CheckpointError, match=f'{path}: format version 7 is not supported'):
        load_checkpoint(path)


def test_save_rejects_unknown_kind(tmp_path):
    config = small_config()
    with pytest.raises(ValueError, match="unknown model kind 'rnn'"):
        save_checkpoint(tmp_path / 'x.pt', build_model('ann', config), config, 'rnn')


def test_half_storage_halves_the_file_and_loads_as_float32(tmp_path):
    config = make_config('cpu', input_height=32, input_width=32)
    torch.manual_seed(1)
    model = HybridPoseNet(config)
    save_checkpoint(tmp_path / 'full.pt', model, config, 'hybrid')
    save_checkpoint(tmp_path / 'half.pt', model, config, 'hybrid', half=True)
    ratio = (tmp_path / 'half.pt').stat().st_size / (tmp_path / 'full.pt').stat().st_size
    assert ratio < 0.55
    loaded = load_checkpoint(tmp_path / 'half.pt').model
    for name, value in loaded.state_dict().items():
        original = model.state_dict()[name]
        assert value.dtype == original.dtype
        if original.is_floating_point():
            torch.testing.assert_close(value, original.half().float())


def calibration_counts(config, windows=6, seed=0):
    rng = np.random.default_rng(seed)
    shape = (windows, config.ann_in_channels, config.input_height, config.input_width)
    return (rng.poisson(0.1, shape)).astype(np.uint8)


def test_calibration_inputs_round_trip_and_survive_export(saved, tmp_path):
    path, model, config = saved
    assert load_checkpoint(path).model.ann_calibration is None
    counts = calibration_counts(config)
    counts[0, 0, 0, 0] = 255
    add_ann_calibration(path, counts, tmp_path / 'calibrated.pt', source='toy windows')
    calibrated = load_checkpoint(tmp_path / 'calibrated.pt')
    np.testing.assert_array_equal(calibrated.model.ann_calibration, counts)
    assert calibrated.model.ann_calibration.dtype == np.uint8
    assert calibrated.metadata == dict(METADATA, ann_calibration_from='toy windows')
    for name, tensor in model.state_dict().items():
        assert torch.equal(calibrated.model.state_dict()[name], tensor), name
    # stored sparse: only the nonzero counts take space
    stored = torch.load(tmp_path / 'calibrated.pt', weights_only=True)['ann_calibration']
    assert len(stored['count']) == np.count_nonzero(counts) < counts.size / 5
    export_checkpoint(tmp_path / 'calibrated.pt', tmp_path / 'exported.pt')
    np.testing.assert_array_equal(
        load_checkpoint(tmp_path / 'exported.pt').model.ann_calibration, counts)


def test_calibration_inputs_of_the_wrong_shape_or_kind_are_refused(saved, tmp_path):
    path, model, config = saved
    with pytest.raises(CheckpointError, match=r'ann_calibration must be uint8 \[N, 20, 32, 32\] '
                       r'ANN inputs, got uint8 \[6, 20, 64, 32\]'):
        add_ann_calibration(path, calibration_counts(small_config(input_height=64)))
    with pytest.raises(CheckpointError, match='got float32'):
        add_ann_calibration(path, calibration_counts(config).astype(np.float32))
    add_ann_calibration(path, calibration_counts(config))
    payload = torch.load(path, weights_only=True)
    payload['ann_calibration']['shape'] = [6, 20, 32, 31]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r'checkpoint .*hybrid.pt: malformed '
                       'ann_calibration'):
        load_checkpoint(path)
    snn_path = tmp_path / 'snn.pt'
    save_checkpoint(snn_path, build_model('pure_snn', config), config, 'pure_snn')
    with pytest.raises(CheckpointError, match='a pure_snn checkpoint has no ANN initialisation'):
        add_ann_calibration(snn_path, calibration_counts(config))
