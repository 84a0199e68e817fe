# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Tests for the sensor-to-model geometry."""
from hybrid_pose_ros.events.event_array import make_events
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH, SensorGeometry
import numpy as np
import pytest


def _all_pixels(width, height):
    """Return one event on every sensor pixel."""
    y, x = np.mgrid[0:height, 0:width]
    n = width * height
    return make_events(np.arange(n), x.ravel(), y.ravel(), np.arange(n) % 2)


def test_dhp19_crop_mapping():
    geo = SensorGeometry.for_sensor(DHP19_WIDTH, DHP19_HEIGHT)
    assert (geo.crop_x0, geo.crop_y0, geo.crop_width, geo.crop_height) == (34, 2, 256, 256)
    assert geo.scale == 1.0
    events = make_events([0, 1, 2, 3, 4, 5], [34, 289, 33, 290, 100, 34],
                         [2, 257, 2, 2, 1, 258], [0, 1, 0, 1, 0, 1])
    mapped, dropped = geo.to_model(events)
    assert dropped == 4
    np.testing.assert_array_equal(mapped['x'], [0, 255])
    np.testing.assert_array_equal(mapped['y'], [0, 255])
    np.testing.assert_array_equal(mapped['t'], [0, 1])
    np.testing.assert_array_equal(mapped['p'], [0, 1])
    assert events['x'][0] == 34  # the input is not modified


def test_dhp19_round_trip_points():
    geo = SensorGeometry.for_sensor(346, 260)
    model = np.array([[0, 0], [255, 255], [10.5, 20.25]])
    sensor = geo.model_to_sensor(model)
    np.testing.assert_allclose(sensor, [[34, 2], [289, 257], [44.5, 22.25]])
    np.testing.assert_allclose(geo.sensor_to_model(sensor), model)
    # the paper's back-projection: u = x + 34, v = 260 - (y + 2)
    u, v = geo.model_to_sensor([100, 50])
    assert (u, DHP19_HEIGHT - v) == (134, 260 - 52)


def test_dhp19_downscaled_input():
    geo = SensorGeometry.for_sensor(346, 260, 128, 128)
    assert (geo.crop_x0, geo.crop_y0, geo.crop_width, geo.scale) == (34, 2, 256, 0.5)
    mapped, _ = geo.to_model(make_events([0, 1, 2], [34, 35, 289], [2, 3, 257], [0, 0, 0]))
    np.testing.assert_array_equal(mapped['x'], [0, 0, 127])
    np.testing.assert_array_equal(mapped['y'], [0, 0, 127])
    # model pixel centre 0 is the centre of sensor pixels 34 and 35
    np.testing.assert_allclose(geo.model_to_sensor([0, 0]), [34.5, 2.5])


@pytest.mark.parametrize('width, height, expected', [
    # never upscaled: a 256x256 window at native scale, centre-padded (negative offsets) where
    # the sensor is smaller than 256
    (320, 240, (32, -8, 256, 1.0)),
    (240, 180, (-8, -38, 256, 1.0)),
    # taller than 260 rows: downscaled so the height maps to ~260 rows, then centre-cropped
    (640, 480, (83, 3, 473, 256 / 473)),
    (1280, 720, (285, 5, 709, 256 / 709)),
])
def test_auto_policy(width, height, expected):
    geo = SensorGeometry.for_sensor(width, height)
    assert geo.policy == 'auto'
    assert (geo.crop_x0, geo.crop_y0, geo.crop_width, geo.scale) == pytest.approx(expected)
    assert geo.crop_height == geo.crop_width
    if height > 260:
        assert height * geo.scale == pytest.approx(260, abs=0.5)
    mapped, dropped = geo.to_model(_all_pixels(width, height))
    assert mapped['x'].max() < 256 and mapped['y'].max() < 256
    assert len(mapped) + dropped == width * height
    # rows are padded, never cropped, below 260 rows; columns past the window are cropped
    # (at native scale 320 columns cannot fit 256, just as DHP19 crops 90 of its 346)
    kept_cols = min(width, geo.crop_width) if height <= 260 else geo.crop_width
    kept_rows = height if height <= 260 else geo.crop_height
    assert len(mapped) == kept_cols * kept_rows


def test_crop_and_resize_policies():
    crop = SensorGeometry.for_sensor(640, 480, policy='crop')
    assert (crop.crop_x0, crop.crop_y0, crop.crop_width, crop.scale) == (192, 112, 256, 1.0)
    resize = SensorGeometry.for_sensor(640, 480, policy='resize')
    assert resize.crop_width >= 640 and resize.crop_height >= 480
    mapped, dropped = resize.to_model(_all_pixels(640, 480))
    assert dropped == 0
    assert mapped['x'].max() == 255 and mapped['y'].max() < 256


def test_non_square_input_keeps_uniform_scale():
    geo = SensorGeometry.for_sensor(640, 480, 320, 256)
    assert geo.input_width / geo.crop_width == geo.input_height / geo.crop_height
    mapped, _ = geo.to_model(_all_pixels(640, 480))
    assert mapped['x'].max() == 319 and mapped['y'].max() == 255


def test_dict_round_trip_and_validation():
    geo = SensorGeometry.for_sensor(640, 480)
    assert SensorGeometry.from_dict(geo.to_dict()) == geo
    with pytest.raises(ValueError):
        SensorGeometry.from_dict({**geo.to_dict(), 'bogus': 1})
    with pytest.raises(ValueError):
        SensorGeometry.from_dict({'sensor_width': 346})
    with pytest.raises(ValueError):
        SensorGeometry(346, 260, 0, 0, 256, 200, 256, 256)
    with pytest.raises(ValueError):
        SensorGeometry.for_sensor(346, 260, policy='stretch')
