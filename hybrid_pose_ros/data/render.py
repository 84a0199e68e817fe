"""
Grayscale rendering of the capsule body in a textured room, as one camera sees it.

Exact ray casting: every sub-pixel ray from the camera centre is intersected with every capsule
whose projected bounding box contains it (closed-form ray-capsule intersection), with a depth
test between capsules. ``supersample`` x ``supersample`` rays per pixel are averaged, so edges
move smoothly (anti-aliasing). Shading is Lambertian with an ambient term; the texture comes
from :func:`hybrid_pose_ros.data.body.texture`. The room (floor ``z = 0`` with tiles, walls
with a low-frequency pattern and posters) is static and rendered once per camera.

Intensities are linear irradiance in (0, 1]; the event simulator takes their log.
"""
from hybrid_pose_ros.data.body import BODY, capsules, forward_direction, Part, texture
from hybrid_pose_ros.data.cameras import Camera
import numpy as np

LIGHT = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
AMBIENT = 0.35
ROOM_HALF_X = 4.5
ROOM_HALF_Y = 5.0
ROOM_HEIGHT = 3.2


def _room_intensity(origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Intensity of the static room along rays [..., 3] from ``origin``."""
    t_best = np.full(dirs.shape[:-1], np.inf)
    which = np.full(dirs.shape[:-1], -1)
    planes = [(2, 0.0), (2, ROOM_HEIGHT), (0, -ROOM_HALF_X), (0, ROOM_HALF_X),
              (1, -ROOM_HALF_Y), (1, ROOM_HALF_Y)]
    with np.errstate(divide='ignore', invalid='ignore'):
        for i, (axis, value) in enumerate(planes):
            t = (value - origin[axis]) / dirs[..., axis]
            better = (t > 1e-6) & (t < t_best)
            t_best = np.where(better, t, t_best)
            which = np.where(better, i, which)
    p = origin + np.where(np.isfinite(t_best), t_best, 0.0)[..., None] * dirs
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    tiles = ((np.floor(x / 0.5) + np.floor(y / 0.5)) % 2) * 0.06
    floor = 0.30 + tiles + 0.03 * np.sin(1.7 * x) * np.cos(2.3 * y)
    ceiling = np.full_like(x, 0.6)
    lateral = np.where(np.abs(x) >= ROOM_HALF_X - 1e-3, y, x)
    wall = (0.45 + 0.10 * np.sin(2 * np.pi * lateral / 2.3) * np.sin(2 * np.pi * z / 1.7)
            + 0.05 * np.sin(2 * np.pi * (lateral + 0.6 * z) / 0.9))
    poster = ((np.abs(np.mod(lateral, 3.1) - 1.5) < 0.4) & (np.abs(z - 1.6) < 0.5))
    wall = np.where(poster, 0.25 + 0.5 * (np.mod(np.floor(lateral * 5) + np.floor(z * 5), 2)),
                    wall)
    out = np.select([which == 0, which == 1], [floor, ceiling], wall)
    return np.clip(out, 0.02, 1.0)


class Renderer:
    """Renders landmark poses [K, 3] (m) to (H, W) float32 images for one camera."""

    def __init__(self, camera: Camera, supersample: int = 2, body: tuple[Part, ...] = BODY):
        self.camera = camera
        self.ss = int(supersample)
        self.body = body
        ss = self.ss
        h, w = camera.height, camera.width
        offs = (np.arange(ss) + 0.5) / ss
        u = (np.arange(w)[:, None] + offs[None, :]).ravel()
        v = (np.arange(h)[:, None] + offs[None, :]).ravel()
        uu, vv = np.meshgrid(u, v)
        self.origin = camera.center
        self.dirs = camera.ray_directions(uu, vv).astype(np.float32)
        room = _room_intensity(self.origin, self.dirs.astype(np.float64))
        self.background_ss = room.astype(np.float32)
        self.background = room.reshape(h, ss, w, ss).mean(axis=(1, 3)).astype(np.float32)
        self.radii = np.array([p.radius for p in body])

    def _bounds(self, a: np.ndarray, b: np.ndarray) -> list[tuple[int, int, int, int] | None]:
        """Sub-pixel bounding boxes ``(r0, r1, c0, c1)`` of every capsule (None if unseen)."""
        cam = self.camera
        ends = np.stack([a, b], axis=1)
        uv, z = cam.project(ends)
        boxes = []
        hs, ws = cam.height * self.ss, cam.width * self.ss
        for i in range(len(a)):
            r = self.radii[i]
            if np.min(z[i]) <= r + 0.05:
                boxes.append(None)
                continue
            pad = cam.K[0, 0] * r / (np.min(z[i]) - r) + 1.0
            lo = (np.min(uv[i], axis=0) - pad) * self.ss
            hi = (np.max(uv[i], axis=0) + pad) * self.ss
            c0, r0 = max(0, int(lo[0])), max(0, int(lo[1]))
            c1, r1 = min(ws, int(np.ceil(hi[0])) + 1), min(hs, int(np.ceil(hi[1])) + 1)
            boxes.append((r0, r1, c0, c1) if r1 > r0 and c1 > c0 else None)
        return boxes

    def render(self, lm: np.ndarray) -> np.ndarray:
        """Image (H, W) float32 of the body at landmark positions ``lm`` [K, 3]."""
        a, b = capsules(lm, self.body)
        boxes = self._bounds(a, b)
        shown = [bx for bx in boxes if bx is not None]
        image = self.background.copy()
        if not shown:
            return image
        ss = self.ss
        r0 = min(bx[0] for bx in shown) // ss * ss
        c0 = min(bx[2] for bx in shown) // ss * ss
        r1 = -(-max(bx[1] for bx in shown) // ss) * ss
        c1 = -(-max(bx[3] for bx in shown) // ss) * ss
        depth = np.full((r1 - r0, c1 - c0), np.inf, dtype=np.float32)
        shade = self.background_ss[r0:r1, c0:c1].copy()
        forward = forward_direction(lm)
        origin = self.origin
        for i, bx in enumerate(boxes):
            if bx is None:
                continue
            sl = (slice(bx[0] - r0, bx[1] - r0), slice(bx[2] - c0, bx[3] - c0))
            d = self.dirs[bx[0]:bx[1], bx[2]:bx[3]]
            t = _intersect(origin, d, a[i], b[i], self.radii[i])
            closer = t < depth[sl]
            if not closer.any():
                continue
            depth[sl] = np.where(closer, t, depth[sl])
            dh = d[closer].astype(np.float64)
            th = t[closer].astype(np.float64)[:, None]
            shade_view = shade[sl]
            shade_view[closer] = self._shade(origin + th * dh, a[i], b[i], self.radii[i],
                                             self.body[i], forward)
        image[r0 // ss:r1 // ss, c0 // ss:c1 // ss] = shade.reshape(
            (r1 - r0) // ss, ss, (c1 - c0) // ss, ss).mean(axis=(1, 3))
        return image

    @staticmethod
    def _shade(p: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float, part: Part,
               forward: np.ndarray) -> np.ndarray:
        ba = b - a
        length = np.linalg.norm(ba)
        axis = ba / length if length > 1e-9 else np.array([0.0, 0.0, 1.0])
        rel = p - a
        axial = rel @ axis
        s = np.clip(axial, 0.0, length)
        normal = (rel - s[:, None] * axis) / radius
        e1 = forward - (forward @ axis) * axis
        n1 = np.linalg.norm(e1)
        e1 = e1 / n1 if n1 > 1e-6 else np.array([1.0, 0.0, 0.0])
        e2 = np.cross(axis, e1)
        angle = np.arctan2(normal @ e2, normal @ e1)
        light = AMBIENT + (1.0 - AMBIENT) * np.maximum(normal @ LIGHT, 0.0)
        return texture(part.material, axial, angle) * light


def _intersect(origin: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray,
               radius: float) -> np.ndarray:
    """Distance along unit rays ``d`` [..., 3] from ``origin`` to a capsule (inf for misses)."""
    ba = (b - a).astype(np.float32)
    oa = (origin - a).astype(np.float32)
    baba = float(ba @ ba)
    baoa = float(ba @ oa)
    oaoa = float(oa @ oa)
    r2 = radius * radius
    proj = d @ np.stack([ba, oa], axis=1)
    bard, rdoa = proj[..., 0], proj[..., 1]
    inf = np.float32(np.inf)
    if baba < 1e-12:
        h = rdoa * rdoa - (oaoa - r2)
        return np.where(h > 0, -rdoa - np.sqrt(np.maximum(h, 0)), inf)
    ka = baba - bard * bard
    kb = baba * rdoa - baoa * bard
    kc = baba * oaoa - baoa * baoa - r2 * baba
    h = kb * kb - ka * kc
    hit = h >= 0
    t_cyl = (-kb - np.sqrt(np.maximum(h, 0))) / np.maximum(ka, 1e-12)
    y = baoa + t_cyl * bard
    side = hit & (y > 0) & (y < baba)
    cap_b = y >= baba
    bb = np.where(cap_b, rdoa - bard, rdoa)
    cc = np.where(cap_b, oaoa - 2 * baoa + baba - r2, oaoa - r2)
    h2 = bb * bb - cc
    t_cap = -bb - np.sqrt(np.maximum(h2, 0))
    t = np.where(side, t_cyl, np.where(hit & (h2 > 0), t_cap, inf))
    return np.where(t > 0, t, inf).astype(np.float32)
