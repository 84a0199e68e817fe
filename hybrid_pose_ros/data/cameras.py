"""
A DHP19-like rig of four DAVIS346 cameras, and the DHP19 projection conventions.

World: metres, Z up, the person near the origin facing -Y (towards the frontal cameras).

Sensor pixels (``project``): top-left origin, ``u`` to the right, ``v`` down, continuous
coordinates in which pixel column ``c`` covers ``[c, c + 1)`` (so ``int(u)`` is the pixel that
contains a projected point, as the DHP19 labels assume).

DHP19 P matrices (``dhp19_matrix``) map homogeneous world points in MILLIMETRES to
``[x, y, w]`` with the image origin at the BOTTOM: ``u = x / w`` and ``v_img = 260 - y / w``.

The h5 camera index is not the P index: ``cam1 -> P1``, ``cam3 -> P2``, ``cam2 -> P3``,
``cam0 -> P4`` (:data:`CAM_TO_P`, defined only here).

Rig (chosen to resemble DHP19; its real geometry is not public here). DAVIS346: 346 x 260
pixels of 18.5 um behind a 4.5 mm lens, so ``fx = fy = 4.5 / 0.0185 = 243.2`` px, principal
point at the sensor centre. All cameras look at ``(0, 0, 0.9)`` m:

========  ======  =====================  ========  ========
h5 cam    P       placement              distance  height
========  ======  =====================  ========  ========
cam3      P2      front, 25 deg right     3.0 m     1.3 m
cam2      P3      front, 25 deg left      3.0 m     1.3 m
cam1      P1      side (person's left)    3.3 m     1.2 m
cam0      P4      back, 20 deg off axis   3.5 m     1.4 m
========  ======  =====================  ========  ========
"""
from dataclasses import dataclass
import math

from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
import numpy as np

PIXEL_PITCH_M = 18.5e-6
FOCAL_LENGTH_M = 4.5e-3
FOCAL_PX = FOCAL_LENGTH_M / PIXEL_PITCH_M

CAM_TO_P: dict[int, int] = {1: 1, 3: 2, 2: 3, 0: 4}
"""h5 camera index -> DHP19 P-matrix index (``P{n}.npy``)."""
P_TO_CAM: dict[int, int] = {p: c for c, p in CAM_TO_P.items()}

LOOK_AT = np.array([0.0, 0.0, 0.9])

# h5 camera index -> (azimuth of the camera position in degrees, measured from -Y towards +X,
# distance m, height m). The person faces -Y, so azimuth 0 is straight in front.
RIG_LAYOUT: dict[int, tuple[float, float, float]] = {
    3: (-25.0, 3.0, 1.3),
    2: (25.0, 3.0, 1.3),
    1: (-90.0, 3.3, 1.2),
    0: (160.0, 3.5, 1.4),
}

_FLIP = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, float(DHP19_HEIGHT)], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``K`` (top-left pixels), world-to-camera ``R``, ``t`` (metres)."""

    cam_index: int
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int = DHP19_WIDTH
    height: int = DHP19_HEIGHT

    @property
    def p_index(self) -> int:
        """Return the DHP19 P-matrix index of this h5 camera."""
        return CAM_TO_P[self.cam_index]

    @property
    def center(self) -> np.ndarray:
        """Return the camera centre in world metres."""
        return -self.R.T @ self.t

    @property
    def matrix(self) -> np.ndarray:
        """Return the 3x4 projection to top-left sensor pixels from world metres."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    def dhp19_matrix(self) -> np.ndarray:
        """3x4 DHP19-convention projection: world millimetres, bottom-origin image."""
        return _FLIP @ self.matrix @ np.diag([1e-3, 1e-3, 1e-3, 1.0])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] (m) in camera coordinates (x right, y down, z forward)."""
        return np.asarray(points) @ self.R.T + self.t

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points [..., 3] (m): top-left pixel coordinates [..., 2] and depth."""
        pc = self.to_camera(points)
        z = pc[..., 2]
        uv = (pc @ self.K.T)[..., :2] / z[..., None]
        return uv, z

    def ray_directions(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Return unit world ray directions [..., 3] through top-left pixel coordinates."""
        pix = np.stack([u, v, np.ones_like(u)], axis=-1)
        d = pix @ np.linalg.inv(self.K).T @ self.R
        return d / np.linalg.norm(d, axis=-1, keepdims=True)


def intrinsics(focal_px: float = FOCAL_PX) -> np.ndarray:
    """Pinhole intrinsics with the principal point at the sensor centre."""
    return np.array([[focal_px, 0.0, DHP19_WIDTH / 2.0], [0.0, focal_px, DHP19_HEIGHT / 2.0],
                     [0.0, 0.0, 1.0]])


def look_at(center: np.ndarray, target: np.ndarray,
            up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``R, t`` of a camera at ``center`` looking at ``target`` (y down)."""
    z = np.asarray(target, dtype=float) - center
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    return r, -r @ center


def make_camera(cam_index: int, azimuth_deg: float, distance: float, height: float,
                focal_px: float = FOCAL_PX, target: np.ndarray = LOOK_AT) -> Camera:
    """Place a camera on a circle around the origin; azimuth 0 is at -Y, positive towards +X."""
    a = math.radians(azimuth_deg)
    center = np.array([distance * math.sin(a), -distance * math.cos(a), height])
    r, t = look_at(center, target)
    return Camera(cam_index, intrinsics(focal_px), r, t)


def dhp19_rig(focal_px: float = FOCAL_PX) -> dict[int, Camera]:
    """Return the four cameras keyed by h5 camera index (0..3)."""
    return {cam: make_camera(cam, *RIG_LAYOUT[cam], focal_px=focal_px) for cam in range(4)}


def project_dhp19(p_matrix: np.ndarray, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DHP19 projection of world points [..., 3] (mm): ``u = x/w`` and ``v_img = 260 - y/w``."""
    pts = np.asarray(points_mm, dtype=np.float64)
    hom = np.concatenate([pts, np.ones(pts.shape[:-1] + (1,))], axis=-1) @ p_matrix.T
    return hom[..., 0] / hom[..., 2], DHP19_HEIGHT - hom[..., 1] / hom[..., 2]


def camera_center_from_matrix(p_matrix: np.ndarray) -> np.ndarray:
    """Camera centre (in the matrix's world units) as the right null vector of P."""
    _, _, vt = np.linalg.svd(p_matrix)
    c = vt[-1]
    return c[:3] / c[3]
