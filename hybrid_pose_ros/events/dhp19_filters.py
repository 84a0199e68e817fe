# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
DHP19's own event preprocessing, as its MATLAB code does it (``generate_DHP19/*.m``).

The three filters (:func:`hot_pixel_filter`, :func:`background_activity_filter`,
:func:`ir_mask_filter`; :func:`dhp19_filters` applies them in DHP19's order) and the
constant-count frame the DHP19 baseline CNN reads (:func:`dhp19_frame`), on
:data:`~hybrid_pose_ros.events.event_array.EVENT_DTYPE` arrays of one camera in sensor
coordinates (346x260).

Coordinates. ``extract_from_aedat.m`` takes the raw AEDAT address ``(x, y)`` of camera ``cam``
(0-3, the h5 camera index) into one 1-based image of the four cameras side by side,
``X = (346 - x) + cam * 346`` and ``Y = 260 - y``, so camera ``cam`` covers
``X = cam * 346 + 1 .. (cam + 1) * 346``. The DHP19-format event files this package reads store
``X - cam * 346`` and ``Y`` (1-based, as MATLAB wrote them) and
:func:`hybrid_pose_ros.data.dhp19.read_events` subtracts 1, so a sensor pixel here is
``u = X - cam * 346 - 1`` (column), ``v = Y - 1`` (row): the pixel of DHP19's h5 frames, of the
P-matrix projection (``u = x/w``, ``v = 260 - y/w``) and of the CNN's input. Hence:

* Hot pixels (``HotPixelFilter.m``): events are counted per pixel of the multiplexed image,
  i.e. per camera and pixel, over the whole recording; a pixel with at least ``10^4`` events
  loses all of them.
* Background activity (``BackgroundFilter.m``, 70 ms): the events are walked in time order
  with a per-pixel "last support time" map that starts at 0 on the events' clock. An event
  passes when ``t - map[pixel] <= dt`` (it fails only when strictly greater); then, whether it
  passed or not, unless it lies on the border of the multiplexed image, it writes ``t`` into
  its 8 neighbours, never its own pixel. So an event no neighbour supported passes only when
  ``t <= dt`` on its clock (DHP19's AEDAT clock is absolute, so there it never does; this
  package's files start at 0); a border event is filtered like any other but supports nobody;
  and MATLAB's ``uint32 - double`` saturating at 0 lets an out-of-order event pass, as
  ``t - map <= dt`` does here. The border is ``Y = 1`` and ``Y = 260`` (rows ``v = 0`` and
  ``v = 259``) of every camera, ``X = 1`` (column ``u = 0``) of camera 0 only and ``X = 1384``
  (``u = 345``) of camera 3 only. The other edge columns are seams inside the multiplexed
  image: their events support their in-camera neighbours here as in DHP19, where they also
  stamp the adjacent camera's edge column; that cross-camera spill is the one effect a
  per-camera filter leaves out.
* IR-light masks (``maskRegionFilter.m`` with the rectangles of ``Generate_DHP19.m``): events
  strictly inside ``780 < X < 810, 115 < Y < 145`` are removed, which is camera 2, columns
  ``u = 88..116``, rows ``v = 115..143``; and strictly inside ``1252 < X < 1259, 136 < Y < 144``
  (``346 * 3 + 214``, ``346 * 3 + 221``), camera 3, ``u = 214..219``, ``v = 136..142``.
  Cameras 0 and 1 have no mask.
* Frames (``ExtractEventsToFramesAndMeanLabels.m``): both polarities counted per pixel, each
  camera's whole 346x260 image normalised by ``normalizeImage3Sigma.m``; the network reads
  columns 0..343 (the DHP19 notebook's ``[:, :344]``).
"""
from hybrid_pose_ros.events.event_array import select_events
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
import numba
import numpy as np

NUM_CAMERAS = 4
HOT_PIXEL_THRESHOLD = 10_000
"""``thrEventHotPixel``: a pixel with at least this many events in a recording is hot."""
BACKGROUND_DT_US = 70_000
"""``dt`` of the background-activity filter (us)."""
IR_MASKS: tuple[tuple[int, int, int, int], ...] = (
    (780, 810, 115, 145),
    (346 * 3 + 214, 346 * 3 + 221, 136, 144),
)
"""``(xmin, xmax, ymin, ymax)`` of ``Generate_DHP19.m``'s two masks, in MATLAB's 1-based
multiplexed coordinates (``X = u + 1 + cam * 346``, ``Y = v + 1``); the bounds are exclusive."""
EVENTS_PER_CAMERA = 7_500
"""DHP19's frames hold 30,000 events of the four cameras, about this many per camera."""
NETWORK_WIDTH = 344
"""Columns 0..343 of the normalised frame are the CNN's input."""
NUM_SIGMAS = 3.0
MIN_SIGMA = 0.1 / 255
"""``normalizeImage3Sigma.m`` floors the standard deviation here (one pixel, or all equal)."""


def _check(events: np.ndarray, camera: int | None = None) -> None:
    """Raise ValueError for events outside the 346x260 sensor or a camera outside 0-3."""
    if camera is not None and not 0 <= camera < NUM_CAMERAS:
        raise ValueError(f'DHP19 camera index must be 0..{NUM_CAMERAS - 1}, got {camera}')
    if len(events) and (int(events['x'].max()) >= DHP19_WIDTH
                        or int(events['y'].max()) >= DHP19_HEIGHT):
        raise ValueError(f'events outside the {DHP19_WIDTH}x{DHP19_HEIGHT} DHP19 sensor')


def _pixels(events: np.ndarray) -> np.ndarray:
    """Return ``v * 346 + u`` as int64."""
    return events['y'].astype(np.int64) * DHP19_WIDTH + events['x']


def hot_pixel_filter(events: np.ndarray, threshold: int = HOT_PIXEL_THRESHOLD) -> np.ndarray:
    """Drop every event of a pixel that has at least ``threshold`` events (HotPixelFilter.m)."""
    _check(events)
    pixels = _pixels(events)
    counts = np.bincount(pixels, minlength=DHP19_WIDTH * DHP19_HEIGHT)
    return select_events(events, counts[pixels] < threshold)


@numba.njit(cache=True, nogil=True)
def _background_keep(x: np.ndarray, y: np.ndarray, t: np.ndarray, dt_us: int, width: int,
                     height: int, left_border: bool, right_border: bool) -> np.ndarray:
    """
    Return BackgroundFilter.m's keep mask for one camera's time-ordered events.

    The map has a spare column at each side (map column ``u + 1``) for the stamps a seam event
    writes into the neighbouring camera.
    """
    last = np.zeros((height, width + 2), dtype=np.int64)
    keep = np.empty(len(t), dtype=np.bool_)
    for i in range(len(t)):
        u = np.int64(x[i]) + 1
        v = np.int64(y[i])
        keep[i] = t[i] - last[v, u] <= dt_us
        if (v == 0 or v == height - 1 or (left_border and u == 1)
                or (right_border and u == width)):
            continue
        for dv in range(-1, 2):
            for du in range(-1, 2):
                if dv != 0 or du != 0:
                    last[v + dv, u + du] = t[i]
    return keep


def background_activity_filter(events: np.ndarray, camera: int,
                               dt_us: int = BACKGROUND_DT_US) -> np.ndarray:
    """
    Keep the events that a neighbour supported within ``dt_us`` (BackgroundFilter.m).

    ``events`` are one camera's, in time order; ``camera`` (h5 index 0-3) decides which edge
    columns are borders of DHP19's multiplexed image (see the module doc).
    """
    _check(events, camera)
    keep = _background_keep(events['x'], events['y'], events['t'], int(dt_us), DHP19_WIDTH,
                            DHP19_HEIGHT, camera == 0, camera == NUM_CAMERAS - 1)
    return select_events(events, keep)


def ir_mask_filter(events: np.ndarray, camera: int) -> np.ndarray:
    """Drop the events inside DHP19's IR-light masks (maskRegionFilter.m, both masks)."""
    _check(events, camera)
    x = events['x'].astype(np.int64) + 1 + camera * DHP19_WIDTH
    y = events['y'].astype(np.int64) + 1
    keep = np.ones(len(events), dtype=bool)
    for xmin, xmax, ymin, ymax in IR_MASKS:
        keep &= ~((x > xmin) & (x < xmax) & (y > ymin) & (y < ymax))
    return select_events(events, keep)


def dhp19_filters(events: np.ndarray, camera: int) -> np.ndarray:
    """Apply DHP19's hot-pixel, background-activity and IR-mask filters, in that order."""
    events = hot_pixel_filter(events)
    events = background_activity_filter(events, camera)
    return ir_mask_filter(events, camera)


def normalize_image_3sigma(counts: np.ndarray) -> np.ndarray:
    """
    Rescale a count image as normalizeImage3Sigma.m (rectified polarity) does.

    A nonzero count ``c`` becomes ``floor(min(255, c * 255 / (3 sigma)))``, ``sigma`` the
    standard deviation (N - 1) of the nonzero counts, at least 0.1 / 255 (so a single nonzero
    pixel, or all equal, give 255); zeros stay 0. The .m file also computes the mean of the
    nonzero counts but does not use it. Returns float64 values 0..255.
    """
    counts = np.asarray(counts, dtype=np.float64)
    nonzero = counts != 0
    values = counts[nonzero]
    sigma = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    sigma = max(sigma, MIN_SIGMA)
    out = np.zeros_like(counts)
    out[nonzero] = np.floor(np.minimum(255.0, values * 255.0 / (NUM_SIGMAS * sigma)))
    return out


def dhp19_frame(events: np.ndarray) -> np.ndarray:
    """
    Return the DHP19 CNN's input from one camera's events: ``uint8 (260, 344)``.

    Counts both polarities per pixel, normalises the full 346-wide image with
    :func:`normalize_image_3sigma` and keeps columns 0..343.
    """
    _check(events)
    counts = np.bincount(_pixels(events), minlength=DHP19_WIDTH * DHP19_HEIGHT)
    image = normalize_image_3sigma(counts.reshape(DHP19_HEIGHT, DHP19_WIDTH))
    return image[:, :NETWORK_WIDTH].astype(np.uint8)
