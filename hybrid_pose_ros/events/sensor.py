# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
Sensor geometry: how sensor pixels map to model-input pixels, in one place.

The model was trained on DHP19 (DAVIS346, 346x260) cropped to rows 2:258 and columns 34:290,
a 256x256 window at native scale (paper spec §1.1, §6.1). :class:`SensorGeometry` describes an
axis-aligned crop window on the sensor (``crop_x0, crop_y0, crop_width, crop_height``; it may
extend past the sensor, which pads) scaled uniformly to the model input
(``scale = input_width / crop_width = input_height / crop_height``). Sensor pixel ``u`` maps to
model pixel ``floor((u - crop_x0) * scale)``; pixels outside the window are dropped.

:meth:`SensorGeometry.for_sensor` builds one with a policy:

* ``'auto'`` (default). A DHP19-sized sensor (346x260) with a square input gets exactly the
  DHP19 window, downscaled if the input is smaller than 256 (128 -> scale 0.5). Any other sensor
  keeps a person at the apparent size the network saw in DHP19, because the network is not
  scale-invariant and a person filling the frame should fill the input as in DHP19: the
  reference is DHP19's 256-row window on a 260-row sensor, i.e. a window of
  ``256 * max(1, height / 260)`` sensor rows (rounded to whole pixels) scaled to the input. For
  a 256x256 input, a sensor taller than 260 rows is thus downscaled so that its height maps to
  about 260 input rows (area factor 260 / height: 480 rows -> x0.5417, 720 rows -> x0.361), then
  centre-cropped to the input aspect. A sensor of 260 rows or fewer is never upscaled relative
  to DHP19 (an upscaled event stream has a different density and texture): it gets a 256-row
  window, centre-cropped or centre-padded (320x240 and 240x180 with a 256x256 input get a
  256x256 window with negative offsets, so no event falls outside it). An input other than 256
  rows scales all of this by ``input_height / 256``, exactly as for DHP19.
* ``'crop'``: centre crop at native scale (pads a smaller sensor).
* ``'resize'``: the whole sensor fitted into the input with one uniform scale, centre-padded.

Crop windows are whole sensor pixels with the input's aspect ratio, so the mapping is exact
integer arithmetic and the scale is the same on both axes.
"""
from dataclasses import asdict, dataclass
import math
from typing import Any, NamedTuple

from hybrid_pose_ros.events.event_array import select_events
import numpy as np

DHP19_WIDTH = 346
DHP19_HEIGHT = 260
DHP19_CROP_X0 = 34
DHP19_CROP_Y0 = 2
DHP19_CROP_SIZE = 256
"""The DHP19 sensor (346x260) and its 256x256 crop, rows 2:258 and columns 34:290."""
# the scale reference of policy 'auto': a 256-row window of a 260-row sensor, as in DHP19
REFERENCE_CROP_ROWS = DHP19_CROP_SIZE
REFERENCE_SENSOR_ROWS = DHP19_HEIGHT

POLICIES = ('auto', 'crop', 'resize')


class MappedEvents(NamedTuple):
    """Events in model-input coordinates and how many fell outside the crop window."""

    events: np.ndarray
    dropped: int


@dataclass(frozen=True)
class SensorGeometry:
    """A crop window on the sensor scaled uniformly to the model input; see the module doc."""

    sensor_width: int
    sensor_height: int
    crop_x0: int
    crop_y0: int
    crop_width: int
    crop_height: int
    input_width: int
    input_height: int
    policy: str = 'custom'

    def __post_init__(self) -> None:
        """Validate sizes and that the window has the input's aspect ratio."""
        for name in ('sensor_width', 'sensor_height', 'crop_width', 'crop_height',
                     'input_width', 'input_height'):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        for name in ('crop_x0', 'crop_y0'):
            if not isinstance(getattr(self, name), (int, np.integer)):
                raise ValueError(f'{name} must be an integer, got {getattr(self, name)!r}')
        if self.crop_width * self.input_height != self.crop_height * self.input_width:
            raise ValueError(
                f'crop {self.crop_width}x{self.crop_height} and input '
                f'{self.input_width}x{self.input_height} differ in aspect ratio; the scale '
                'must be uniform')

    @property
    def scale(self) -> float:
        """Model pixels per sensor pixel (the same on both axes)."""
        return self.input_width / self.crop_width

    @classmethod
    def dhp19(cls, input_width: int = 256, input_height: int = 256) -> 'SensorGeometry':
        """Return the DHP19 window (rows 2:258, cols 34:290) scaled to a square input."""
        if input_width != input_height:
            raise ValueError('the DHP19 window is square: input_width must equal input_height')
        return cls(DHP19_WIDTH, DHP19_HEIGHT, DHP19_CROP_X0, DHP19_CROP_Y0, DHP19_CROP_SIZE,
                   DHP19_CROP_SIZE, input_width, input_height, 'dhp19')

    @classmethod
    def for_sensor(
            cls, width: int, height: int, input_width: int = 256, input_height: int = 256,
            policy: str = 'auto') -> 'SensorGeometry':
        """Build the geometry for a ``width x height`` sensor with a policy (see module doc)."""
        if policy not in POLICIES:
            raise ValueError(f'unknown policy {policy!r}; expected one of {POLICIES}')
        if min(width, height, input_width, input_height) <= 0:
            raise ValueError(
                f'sizes must be positive: sensor {width}x{height}, '
                f'input {input_width}x{input_height}')
        if (policy == 'auto' and (width, height) == (DHP19_WIDTH, DHP19_HEIGHT)
                and input_width == input_height):
            return cls.dhp19(input_width, input_height)
        # Windows are k * (a, b) sensor pixels, (a, b) the input aspect in lowest terms, so the
        # scale g / k is exactly uniform.
        g = math.gcd(input_width, input_height)
        a, b = input_width // g, input_height // g
        if policy == 'resize':
            k = max(math.ceil(width / a), math.ceil(height / b))
        elif policy == 'crop':
            k = g
        else:
            # DHP19 shows REFERENCE_CROP_ROWS sensor rows of a REFERENCE_SENSOR_ROWS-row sensor
            rows = REFERENCE_CROP_ROWS * max(1.0, height / REFERENCE_SENSOR_ROWS)
            k = max(1, round(rows / b))
        crop_width, crop_height = k * a, k * b
        return cls(width, height, (width - crop_width) // 2, (height - crop_height) // 2,
                   crop_width, crop_height, input_width, input_height, policy)

    def to_model(self, events: np.ndarray) -> MappedEvents:
        """Return a new event array in model-input coordinates and the number of dropped events."""
        x = events['x'].astype(np.int64) - self.crop_x0
        y = events['y'].astype(np.int64) - self.crop_y0
        keep = (x >= 0) & (x < self.crop_width) & (y >= 0) & (y < self.crop_height)
        out = select_events(events, keep)
        if self.crop_width == self.input_width:
            out['x'] = x[keep]
            out['y'] = y[keep]
        else:
            out['x'] = (x[keep] * self.input_width) // self.crop_width
            out['y'] = (y[keep] * self.input_height) // self.crop_height
        return MappedEvents(out, int(len(events) - len(out)))

    def model_to_sensor(self, xy: np.ndarray) -> np.ndarray:
        """
        Map model pixel coordinates ``[..., (x, y)]`` to sensor pixel coordinates (float).

        Pixel centres map to pixel centres: ``u = x0 + (x + 0.5) / scale - 0.5``, which is
        ``x + 34`` for the DHP19 window at scale 1.
        """
        xy = np.asarray(xy, dtype=np.float64)
        origin = np.array([self.crop_x0, self.crop_y0], dtype=np.float64)
        return origin + (xy + 0.5) / self.scale - 0.5

    def sensor_to_model(self, uv: np.ndarray) -> np.ndarray:
        """Map sensor pixel coordinates ``[..., (u, v)]`` to model coordinates (inverse map)."""
        uv = np.asarray(uv, dtype=np.float64)
        origin = np.array([self.crop_x0, self.crop_y0], dtype=np.float64)
        return (uv - origin + 0.5) * self.scale - 0.5

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain Python values (for checkpoints and parameters)."""
        return {key: (value if isinstance(value, str) else int(value))
                for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'SensorGeometry':
        """Rebuild a geometry written by :meth:`to_dict`; unknown or missing keys raise."""
        fields = set(cls.__dataclass_fields__)
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f'unknown SensorGeometry keys: {sorted(unknown)}')
        values = {}
        for key, value in data.items():
            if key != 'policy':
                if int(value) != value:
                    raise ValueError(f'SensorGeometry {key} must be an integer, got {value!r}')
                value = int(value)
            values[key] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f'incomplete SensorGeometry dict: {exc}') from None
