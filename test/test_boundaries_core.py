# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Boundaries and invariances of the core, each with data on both sides of its edge.

Sensor windows of large sensors, triangulation's invariance to the scale of each projection
matrix, the binner's reset rule, the window start at the ``ann_events``-th event, and the SNN's
firing threshold on exact ties (sparse path against dense).
"""
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.sensor import SensorGeometry
from hybrid_pose_ros.geometry.triangulation import project, triangulate
import numpy as np
import pytest


# --- sensor windows ------------------------------------------------------------------------

@pytest.mark.parametrize('width, height, inputs, window', [
    # 256 * height / 260 sensor rows, rounded to whole pixels (945.2 -> 945, 1063.4 -> 1063)
    (1280, 960, (256, 256), (167, 7, 945, 945)),
    (1920, 1080, (256, 256), (428, 8, 1063, 1063)),
    # rounded, not truncated: 708.9 -> 709 rows, 472.6 -> 473
    (1280, 720, (256, 256), (285, 5, 709, 709)),
    (640, 480, (256, 256), (83, 3, 473, 473)),
    # a smaller input scales the same window (k whole input pixels of the aspect)
    (1280, 960, (128, 128), (167, 7, 945, 945)),
    # a 5:4 input: 945.2 rows / 4 = 236.3 -> k = 236, a window of 1180x944
    (1280, 960, (320, 256), (50, 8, 1180, 944)),
    (1920, 1080, (320, 256), (295, 8, 1330, 1064)),   # 265.8 -> k = 266
])
def test_auto_windows_of_large_sensors(width, height, inputs, window):
    geometry = SensorGeometry.for_sensor(width, height, *inputs)
    assert (geometry.crop_x0, geometry.crop_y0, geometry.crop_width,
            geometry.crop_height) == window
    assert geometry.scale == inputs[0] / window[2]


@pytest.mark.parametrize('width, height', [(1280, 960), (1920, 1080)])
def test_large_sensor_window_edges_map_to_the_input_edges(width, height):
    geometry = SensorGeometry.for_sensor(width, height)
    x0, y0, size = geometry.crop_x0, geometry.crop_y0, geometry.crop_width
    xs = [x0 - 1, x0, x0 + size - 1, x0 + size, x0 + 1, x0 + size // 2]
    ys = [y0 + 1, y0, y0 + size - 1, y0, y0 - 1, y0 + size]
    mapped = geometry.to_model(make_events(np.arange(6), xs, ys, [1] * 6))
    # kept: the window's first and last pixel; dropped: one past each of its four edges
    assert mapped.dropped == 4
    assert mapped.events['x'].tolist() == [0, 255]
    assert mapped.events['y'].tolist() == [0, 255]
    centre = geometry.model_to_sensor(np.array([127.5, 127.5]))
    np.testing.assert_allclose(centre, [x0 + (size - 1) / 2, y0 + (size - 1) / 2])


# --- triangulation -------------------------------------------------------------------------

def _cameras() -> np.ndarray:
    matrices = []
    for angle, shift in [(-0.5, -200.0), (0.1, 150.0), (0.6, 40.0)]:
        k = np.array([[250.0, 0, 173], [0, 250, 130], [0, 0, 1]])
        r = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                      [-np.sin(angle), 0, np.cos(angle)]])
        matrices.append(k @ np.hstack([r, np.array([[shift], [80.0], [3000.0]])]))
    return np.stack(matrices)


def test_triangulation_does_not_depend_on_the_scale_of_each_projection_matrix():
    rng = np.random.default_rng(7)
    cameras = _cameras()
    points = rng.uniform(-600, 600, (4, 13, 3))
    uv = np.stack([project(p, points) for p in cameras], axis=-2)
    uv += rng.normal(0.0, 2.0, uv.shape)         # noisy: the scale would move the least squares
    weights = rng.uniform(0.2, 1.0, uv.shape[:-1])
    reference = triangulate(cameras, uv, weights)
    for scales in ([1e3, 1.0, 1e-3], [-1.0, 7.0, 0.01], [5.0, 5.0, 5.0]):
        scaled = cameras * np.array(scales)[:, None, None]
        np.testing.assert_allclose(triangulate(scaled, uv, weights), reference, rtol=1e-9,
                                   atol=1e-6)
    # the weights do move it, and a matrix scale must not act as a weight
    assert np.abs(triangulate(cameras, uv) - reference).max() > 0.1
    unscaled_rows = triangulate(cameras, uv, weights * np.array([1e3, 1.0, 1e-3]))
    assert np.abs(unscaled_rows - reference).max() > 0.1
