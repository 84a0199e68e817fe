"""Draw event frames and skeletons into RGB images with numpy (debug image, demo animation)."""
from hybrid_pose_ros.skeleton import SKELETON_EDGES
import numpy as np

ON_COLOR = np.array([255, 80, 60], dtype=np.uint8)
OFF_COLOR = np.array([60, 140, 255], dtype=np.uint8)


def event_image(events: np.ndarray, width: int, height: int, on_color=ON_COLOR,
                off_color=OFF_COLOR, background: int = 20) -> np.ndarray:
    """Return an ``[H, W, 3]`` uint8 image: ON events red, OFF events blue, background dark."""
    image = np.full((height, width, 3), background, dtype=np.uint8)
    inside = (events['x'] < width) & (events['y'] < height)
    events = events[inside]
    image[events['y'][events['p'] == 0], events['x'][events['p'] == 0]] = off_color
    image[events['y'][events['p'] == 1], events['x'][events['p'] == 1]] = on_color
    return image


def _paint(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, color) -> None:
    xs, ys = np.round(xs).astype(int), np.round(ys).astype(int)
    keep = (xs >= 0) & (xs < image.shape[1]) & (ys >= 0) & (ys < image.shape[0])
    image[ys[keep], xs[keep]] = color


def draw_skeleton(image: np.ndarray, xy: np.ndarray, visible: np.ndarray,
                  color: tuple[int, int, int] = (255, 255, 0), radius: int = 2) -> np.ndarray:
    """Draw bones (lines) and joints (filled squares) of visible joints in place; return it."""
    color = np.asarray(color, dtype=np.uint8)
    for a, b in SKELETON_EDGES:
        if visible[a] and visible[b]:
            n = int(np.ceil(np.abs(xy[b] - xy[a]).max())) + 1
            s = np.linspace(0.0, 1.0, n)
            _paint(image, xy[a, 0] + s * (xy[b, 0] - xy[a, 0]),
                   xy[a, 1] + s * (xy[b, 1] - xy[a, 1]), color)
    offsets = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(offsets, offsets)
    for (x, y), ok in zip(xy, visible):
        if ok:
            _paint(image, x + dx.ravel(), y + dy.ravel(), color)
    return image
