"""
The real DHP19 rig of four DAVIS346 cameras, and the DHP19 projection conventions.

World: the DHP19 Vicon frame in metres, Z up; the four cameras look at about (0, 0, 0.83) m and
a subject facing -Y faces the two frontal cameras (h5 cam3 = P2 and cam2 = P3, about 2 m high,
3.3-3.5 m away, +-42 degrees to the side, focal length 340-360 px).

Sensor pixels (``project``): top-left origin, ``u`` to the right, ``v`` down, continuous
coordinates in which pixel column ``c`` covers ``[c, c + 1)`` (so ``int(u)`` is the pixel that
contains a projected point, as the DHP19 labels assume).

DHP19 P matrices (``dhp19_matrix``) map homogeneous world points in MILLIMETRES to
``[x, y, w]`` with the image origin at the BOTTOM: ``u = x / w`` and ``v_img = 260 - y / w``.

The h5 camera index is not the P index: ``cam1 -> P1``, ``cam3 -> P2``, ``cam2 -> P3``,
``cam0 -> P4`` (:data:`CAM_TO_P`, defined only here).

:data:`DHP19_P_MATRICES` are the four matrices of the DHP19 release as distributed with
EventPointPose (MasterHow/EventPointPose @ bbbc60f, ``P_matrices/``, MIT); :func:`dhp19_rig`
decomposes them into pinhole cameras (intrinsics with the small skew they carry, rotation and
centre), which reproduce the matrices to rounding.
"""
from dataclasses import dataclass

from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
import numpy as np

CAM_TO_P: dict[int, int] = {1: 1, 3: 2, 2: 3, 0: 4}
"""h5 camera index -> DHP19 P-matrix index (``P{n}.npy``)."""
P_TO_CAM: dict[int, int] = {p: c for c, p in CAM_TO_P.items()}

DHP19_P_MATRICES: dict[int, np.ndarray] = {
    1: np.array([[-0.06506658794292798, 0.10280371611880136, -0.02991671991993662,
                  226.32713855489936],
                 [-0.07982530276208322, -0.005739210846646318, 0.08041816785398746,
                  19.108805492245697],
                 [-0.0002985130992924634, -2.6319147339609605e-05, -0.00016321114926096114,
                  1.0]]),
    2: np.array([[0.04504472931694892, 0.09380784662930192, -0.014391922975556649,
                  160.94826518059733],
                 [-0.0369902927897163, 0.047861798931755, 0.08092164901391627,
                  43.386977678106064],
                 [-0.0001639806790971754, 0.00019276984391487437, -7.910054207826804e-05,
                  1.0]]),
    3: np.array([[0.09385359589564321, -0.03211491168723093, -0.02381457697985833,
                  171.9239972226072],
                 [0.04888594811112287, 0.04378180959764298, 0.07345563524481341,
                  52.69097143832967],
                 [0.0001649830265849639, 0.00019099866454787284, -0.00010198764454588324,
                  1.0]]),
    4: np.array([[0.05547159207521162, -0.099648113038456, -0.03531374152052813,
                  195.34742544632326],
                 [0.08271149398364297, 0.0017698764732507197, 0.07409964275720979,
                  32.111135629052015],
                 [0.0002786441186927585, 2.790850290513517e-05, -0.00016420305584222833,
                  1.0]]),
}
"""The real DHP19 projection matrices by P index (world mm -> bottom-origin image)."""

CAPTURE_CENTER = np.array([0.0, 0.0, 0.83])
"""Where the four cameras' optical axes pass closest (m): the middle of the capture volume."""

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


def camera_from_dhp19(cam_index: int, p_matrix: np.ndarray) -> Camera:
    """Decompose a DHP19 P matrix (mm, bottom-origin image) into a :class:`Camera` (m)."""
    top = _FLIP @ np.asarray(p_matrix, dtype=np.float64) @ np.diag([1e3, 1e3, 1e3, 1.0])
    k, r = _rq(top[:, :3])
    signs = np.diag(np.sign(np.diag(k)))
    k, r = k @ signs, signs @ r
    t = np.linalg.solve(k, top[:, 3])
    return Camera(cam_index, k / k[2, 2], r, t)


def _rq(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RQ decomposition of a 3x3 matrix: upper-triangular ``r`` times orthonormal ``q``."""
    reverse = np.eye(3)[::-1]
    q, r = np.linalg.qr((reverse @ m).T)
    return reverse @ r.T @ reverse, reverse @ q.T


def dhp19_rig() -> dict[int, Camera]:
    """Return the four real DHP19 cameras keyed by h5 camera index (0..3)."""
    return {cam: camera_from_dhp19(cam, DHP19_P_MATRICES[CAM_TO_P[cam]]) for cam in range(4)}


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
