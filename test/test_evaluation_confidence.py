"""Evaluation extras: paired bootstrap, dropped visible joints, scenes without a person."""
from hybrid_pose_ros.estimator import PoseStep
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
from hybrid_pose_ros.model.config import make_config
from hybrid_pose_ros.model.hybrid import HybridPoseNet
from hybrid_pose_ros.training.evaluate import format_table, paired_bootstrap
from hybrid_pose_ros.training.no_person import (moving_camera_scene, no_person_report,
                                                noise_scene, published_fraction)
import numpy as np
import pytest
import torch


def test_paired_bootstrap_interval_brackets_a_known_shift():
    rng = np.random.default_rng(1)
    b = rng.uniform(4.0, 8.0, (400, 10))
    a = b - 0.3 + rng.normal(0.0, 0.1, (400, 10))
    a[5, :] = np.nan                                   # a window without errors is left out
    result = paired_bootstrap(a, b, resamples=2000)
    assert result['windows'] == 399
    assert result['mean_difference'] == pytest.approx(-0.3, abs=0.01)
    low, high = result['ci95']
    assert low < -0.3 < high and high < 0
    assert result['better_share'] == 1.0
    same = paired_bootstrap(b, b, resamples=200)
    assert same['mean_difference'] == 0.0 and same['ci95'] == [0.0, 0.0]


def _step(confidence, xy=None):
    xy = np.zeros((13, 2)) if xy is None else xy
    return PoseStep(0, 0, 0, xy, np.asarray(confidence, dtype=np.float32), {})


def test_table_shows_the_3d_median_not_the_outlier_driven_mean():
    row = {'mpjpe_2d_px': {'mean': 20.0, 'per_step': [19.0] * 10, 'last_step': 21.0},
           'mpjpe_3d_mm': {'mean': 32818.59, 'median': 162.04},
           'visible_dropped_fraction': 0.017}
    table = format_table({'models': {'hybrid': row}, 'min_confidence': 0.025})
    header, line = table.splitlines()
    assert '3D mm md' in header
    assert '162.04' in line and '32818' not in line and '1.70%' in line


def test_published_fraction_counts_confident_finite_joints():
    xy = np.zeros((13, 2))
    xy[0] = np.nan
    steps = [_step(np.full(13, 0.5), xy), _step(np.full(13, 0.1))]
    assert published_fraction(steps, 0.2) == pytest.approx(12 / 26)
    assert published_fraction(steps, 0.05) == pytest.approx(25 / 26)
    assert published_fraction(steps, 0.5) == pytest.approx(12 / 26)    # at the threshold: kept
    assert published_fraction([], 0.2) is None


def test_scenes_without_a_person_are_sensor_sized_and_seeded():
    noise = noise_scene(0.3, seed=4)
    assert len(noise) > 0 and np.all(np.diff(noise['t']) >= 0)
    assert noise['x'].max() < DHP19_WIDTH and noise['y'].max() < DHP19_HEIGHT
    assert np.array_equal(noise, noise_scene(0.3, seed=4))
    moving = moving_camera_scene(0.2, seed=1)
    # the swaying camera makes the room's edges fire: far more events than noise alone
    assert len(moving) > 3 * len(noise_scene(0.2, seed=1))


def test_no_person_report_runs_the_hybrid_on_each_scene():
    torch.manual_seed(0)
    model = HybridPoseNet(make_config('cpu', input_height=32, input_width=32)).eval()
    events = np.sort(noise_scene(1.0, seed=2), order='t')
    report = no_person_report(model, {'noise': (events, DHP19_WIDTH, DHP19_HEIGHT),
                                      'empty': (events[:0], DHP19_WIDTH, DHP19_HEIGHT)}, 0.5)
    assert report['empty']['steps'] == 0 and report['empty']['missing_fraction'] is None
    noise = report['noise']
    assert noise['steps'] > 0
    assert noise['missing_fraction'] == pytest.approx(1.0 - noise['published_fraction'])
