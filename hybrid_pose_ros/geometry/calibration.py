"""
Camera calibration for multi-view pose: one internal convention, loaders, triangulation.

Internal convention (every loader converts to it once): a 3x4 matrix ``P`` maps homogeneous
world points in METRES to the ``~/pose`` pixel convention of ``hybrid_pose_node``: top-left
origin, ``x`` the column to the right, ``y`` the row downwards, integer values at pixel centres
(the OpenCV / ``sensor_msgs/CameraInfo`` convention). ``[x w, y w, w] = P [X, Y, Z, 1]``.

Sources:

* ``projection`` (3x4): a matrix already in this convention, or with ``units: mm`` (world in
  millimetres) and/or ``pixel_origin: corner`` (pixel ``c`` covers ``[c, c + 1)``, as in DHP19
  and :mod:`hybrid_pose_ros.data.cameras`, so a pixel centre is at ``c + 0.5``).
* ``K``, ``R``, ``t``: intrinsics and the world-to-camera rotation and translation (metres,
  camera x right, y down, z forward); ``pixel_origin`` as above.
* ``dhp19_projection_mm`` (3x4), as ``hybrid_pose_convert`` writes into ``cameras.yaml``: a
  DHP19 P matrix, world in mm, image origin at the BOTTOM (``v = 260 - y / w``) and pixel
  ``c`` covering ``[c, c + 1)``. Converted as ``x = x_p - 0.5``, ``y = 259.5 - y_p``. (The
  paper's code triangulates integer labels with ``v = 260 - y`` and no half pixel, which puts
  every joint half a pixel off; the ``pose_gt`` topics written by ``hybrid_pose_convert`` and
  this module use pixel centres.)
* A DHP19 folder with ``P1.npy`` .. ``P4.npy``: camera ``cam{k}`` uses ``P{CAM_TO_P[k]}.npy``
  (``cam3 -> P2``, ``cam2 -> P3``, ``cam1 -> P1``, ``cam0 -> P4``), then as above.

YAML schema (a ``cameras:`` mapping, or camera names at the top level as in ``cameras.yaml``;
top-level entries that are not mappings, e.g. ``joint_names``, are ignored)::

    cameras:
      cam3:
        frame_id: cam3_optical_frame   # optional, default <name>_optical_frame
        width: 346                     # optional sensor size, default 346 x 260
        height: 260
        projection: [[...], [...], [...]]   # or K/R/t, or dhp19_projection_mm
        units: m                       # projection only: m (default) or mm
        pixel_origin: center           # projection, K/R/t: center (default) or corner

Numpy only; no ROS imports.
"""
from dataclasses import dataclass
import os
import pathlib

from hybrid_pose_ros.data.cameras import CAM_TO_P
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH
from hybrid_pose_ros.geometry.triangulation import project, triangulate
import numpy as np
import yaml

PIXEL_ORIGINS = ('center', 'corner')
UNITS = {'m': 1.0, 'mm': 1e-3}
_SOURCES = ('projection', 'K', 'dhp19_projection_mm')


class CalibrationError(ValueError):
    """A calibration file or entry that cannot be used, with the reason."""


@dataclass(frozen=True)
class CameraCalibration:
    """One camera in the internal convention (world metres -> pixel-centre sensor pixels)."""

    name: str
    projection: np.ndarray
    frame_id: str
    width: int = DHP19_WIDTH
    height: int = DHP19_HEIGHT

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points ``[..., 3]`` (m) to pixels ``[..., 2]``."""
        return project(self.projection, points)

    def decompose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``K``, world-to-camera ``R`` and ``t`` (see :func:`decompose_projection`)."""
        return decompose_projection(self.projection)

    @property
    def center(self) -> np.ndarray:
        """Return the camera centre in world metres."""
        _, rotation, translation = self.decompose()
        return -rotation.T @ translation

    def optical_frame_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """
        Return the optical frame's pose in the world: translation and quaternion ``xyzw``.

        This is the ``world -> optical frame`` transform (x right, y down, z forward).
        """
        _, rotation, translation = self.decompose()
        return -rotation.T @ translation, rotation_to_quaternion(rotation.T)


def _pixel_shift(pixel_origin: str) -> np.ndarray:
    """Return the 3x3 matrix taking ``pixel_origin`` pixel coordinates to pixel centres."""
    if pixel_origin not in PIXEL_ORIGINS:
        raise CalibrationError(f'pixel_origin must be one of {PIXEL_ORIGINS}, '
                               f'got {pixel_origin!r}')
    offset = 0.5 if pixel_origin == 'corner' else 0.0
    return np.array([[1.0, 0.0, -offset], [0.0, 1.0, -offset], [0.0, 0.0, 1.0]])


def _matrix(value, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f'{what} must be a numeric array of shape {shape}') from None
    if array.shape != shape or not np.isfinite(array).all():
        raise CalibrationError(f'{what} must be a finite array of shape {shape}, '
                               f'got shape {array.shape}')
    return array


def from_projection(projection: np.ndarray, units: str = 'm',
                    pixel_origin: str = 'center') -> np.ndarray:
    """Convert a 3x4 matrix in ``units`` and ``pixel_origin`` pixels to the internal one."""
    if units not in UNITS:
        raise CalibrationError(f'units must be one of {tuple(UNITS)}, got {units!r}')
    scale = np.diag([1.0 / UNITS[units]] * 3 + [1.0])
    return _pixel_shift(pixel_origin) @ _matrix(projection, (3, 4), 'projection') @ scale


def from_krt(camera_matrix: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
             pixel_origin: str = 'center') -> np.ndarray:
    """Build the internal P from intrinsics ``K`` and world-to-camera ``R``, ``t`` (m)."""
    k = _matrix(camera_matrix, (3, 3), 'K')
    r = _matrix(rotation, (3, 3), 'R')
    t = _matrix(translation, (3,), 't')
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
        raise CalibrationError('R must be a rotation matrix (orthonormal, det +1)')
    return _pixel_shift(pixel_origin) @ k @ np.hstack([r, t[:, None]])


def from_dhp19(projection_mm: np.ndarray, height: int = DHP19_HEIGHT) -> np.ndarray:
    """Convert a DHP19 P matrix (mm, bottom-origin rows, corner pixels) to the internal one."""
    flip = np.array([[1.0, 0.0, -0.5], [0.0, -1.0, height - 0.5], [0.0, 0.0, 1.0]])
    return flip @ _matrix(projection_mm, (3, 4), 'dhp19_projection_mm') @ np.diag(
        [1e3, 1e3, 1e3, 1.0])


def decompose_projection(projection: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Split ``P`` into ``K`` (positive diagonal, ``K[2, 2] = 1``), rotation ``R`` and ``t``.

    ``P ~ K [R | t]`` with ``R`` a proper rotation (world to camera); the overall sign is chosen
    so that points in front of the camera have positive depth.
    """
    p = _matrix(projection, (3, 4), 'projection')
    if np.linalg.det(p[:, :3]) < 0:
        p = -p
    # RQ decomposition of the left 3x3 block through QR of its flipped transpose
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ p[:, :3]).T)
    k = flip @ r.T @ flip
    rotation = flip @ q.T
    signs = np.diag(np.sign(np.diag(k)))
    k, rotation = k @ signs, signs @ rotation
    translation = np.linalg.solve(k, p[:, 3])
    return k / k[2, 2], rotation, translation


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Return the unit quaternion ``[x, y, z, w]`` (``w >= 0``) of a rotation matrix."""
    m = np.asarray(rotation, dtype=np.float64)
    candidates = np.array([
        [m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], 1.0 + np.trace(m)],
        [1.0 + m[0, 0] - m[1, 1] - m[2, 2], m[0, 1] + m[1, 0], m[0, 2] + m[2, 0],
         m[2, 1] - m[1, 2]],
        [m[0, 1] + m[1, 0], 1.0 - m[0, 0] + m[1, 1] - m[2, 2], m[1, 2] + m[2, 1],
         m[0, 2] - m[2, 0]],
        [m[0, 2] + m[2, 0], m[1, 2] + m[2, 1], 1.0 - m[0, 0] - m[1, 1] + m[2, 2],
         m[1, 0] - m[0, 1]],
    ])
    # the row with the largest norm is the best conditioned (Shepperd's method)
    q = candidates[np.argmax(np.linalg.norm(candidates, axis=1))]
    q = q / np.linalg.norm(q)
    return q if q[3] >= 0 else -q


def parse_camera(name: str, entry: dict) -> CameraCalibration:
    """Convert one YAML camera entry (see the module docstring) to a calibration."""
    if not isinstance(entry, dict):
        raise CalibrationError(f'camera {name!r}: expected a mapping')
    present = [key for key in _SOURCES if key in entry]
    if len(present) != 1:
        raise CalibrationError(f'camera {name!r}: give exactly one of projection, K/R/t or '
                               f'dhp19_projection_mm (found {present or "none"})')
    width = int(entry.get('width', DHP19_WIDTH))
    height = int(entry.get('height', DHP19_HEIGHT))
    try:
        if present[0] == 'projection':
            p = from_projection(entry['projection'], entry.get('units', 'm'),
                                entry.get('pixel_origin', 'center'))
        elif present[0] == 'K':
            missing = {'R', 't'} - set(entry)
            if missing:
                raise CalibrationError(f'K needs R and t too (missing {sorted(missing)})')
            p = from_krt(entry['K'], entry['R'], entry['t'], entry.get('pixel_origin', 'center'))
        else:
            p = from_dhp19(entry['dhp19_projection_mm'], height)
    except CalibrationError as error:
        raise CalibrationError(f'camera {name!r}: {error}') from None
    if np.linalg.matrix_rank(p[:, :3]) < 3:
        raise CalibrationError(f'camera {name!r}: the projection matrix is degenerate')
    return CameraCalibration(name, p, str(entry.get('frame_id') or f'{name}_optical_frame'),
                             width, height)


def parse_calibration(document: dict) -> dict[str, CameraCalibration]:
    """Convert a parsed YAML document (``cameras:`` or top-level camera names) to cameras."""
    if not isinstance(document, dict):
        raise CalibrationError('expected a YAML mapping of camera names')
    entries = document.get('cameras', document)
    if not isinstance(entries, dict):
        raise CalibrationError("'cameras' must map camera names to entries")
    cameras = {str(name): parse_camera(str(name), entry) for name, entry in entries.items()
               if isinstance(entry, dict)}
    if not cameras:
        raise CalibrationError('no camera entries found')
    return cameras


def load_dhp19_folder(folder: str | os.PathLike) -> dict[str, CameraCalibration]:
    """Load every ``P{n}.npy`` of a DHP19 folder as cameras ``cam{k}`` (``CAM_TO_P``)."""
    cameras = {}
    for cam, p_index in sorted(CAM_TO_P.items()):
        path = pathlib.Path(folder) / f'P{p_index}.npy'
        if path.exists():
            name = f'cam{cam}'
            cameras[name] = CameraCalibration(name, from_dhp19(np.load(path)),
                                              f'{name}_optical_frame')
    if not cameras:
        raise CalibrationError(f'{folder}: no P1.npy .. P4.npy found')
    return cameras


def load_calibration(path: str | os.PathLike) -> dict[str, CameraCalibration]:
    """Load a calibration YAML file or a DHP19 folder of ``P*.npy``; keyed by camera name."""
    path = pathlib.Path(path)
    if path.is_dir():
        return load_dhp19_folder(path)
    try:
        with open(path) as f:
            document = yaml.safe_load(f)
    except OSError as error:
        raise CalibrationError(f'{path}: {error.strerror}') from None
    except yaml.YAMLError as error:
        raise CalibrationError(f'{path}: not valid YAML ({error})') from None
    try:
        return parse_calibration(document)
    except CalibrationError as error:
        raise CalibrationError(f'{path}: {error}') from None


def refine_points(projections: np.ndarray, uv: np.ndarray, weights: np.ndarray,
                  points: np.ndarray, iterations: int = 5) -> np.ndarray:
    """
    Refine points by Gauss-Newton on the weighted squared reprojection error.

    Shapes as in :func:`hybrid_pose_ros.geometry.triangulation.triangulate`: ``projections``
    ``[C, 3, 4]``, ``uv`` ``[N, C, 2]``, ``weights`` ``[N, C]`` (views with weight <= 0 or a
    non-finite ``uv`` do not count), ``points`` ``[N, 3]`` (NaN stays NaN). A step is kept only
    where it lowers the error, so the result is never worse than the start.
    """
    projections = np.asarray(projections, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    usable = np.isfinite(uv).all(axis=-1) & np.isfinite(weights) & (weights > 0)
    w = np.where(usable, weights, 0.0)
    target = np.where(usable[..., None], uv, 0.0)
    x = np.array(points, dtype=np.float64)
    active = np.isfinite(x).all(axis=-1)

    def residuals(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hom = np.einsum('cij,nj->nci', projections[:, :, :3], pts) + projections[:, :, 3]
        with np.errstate(divide='ignore', invalid='ignore'):
            proj = hom[..., :2] / hom[..., 2:]
        r = np.where(usable[..., None], proj - target, 0.0)
        cost = np.nansum(w * (r ** 2).sum(-1), axis=-1)
        return r, hom, np.where(np.isfinite(cost), cost, np.inf)

    safe = np.where(active[:, None], x, 0.0)
    r, hom, cost = residuals(safe)
    for _ in range(iterations):
        # d(u)/dX = (P_0 - u P_2) / w_h, d(v)/dX = (P_1 - v P_2) / w_h, per view
        proj = r + target
        jac = (projections[None, :, :2, :3]
               - proj[..., None] * projections[None, :, 2:3, :3]) / hom[..., 2, None, None]
        jac = np.where(usable[..., None, None], jac, 0.0)
        hessian = np.einsum('nc,ncki,nckj->nij', w, jac, jac) + 1e-9 * np.eye(3)
        gradient = np.einsum('nc,ncki,nck->ni', w, jac, r)
        try:
            step = np.linalg.solve(hessian, -gradient[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        candidate = safe + np.where(np.isfinite(step), step, 0.0)
        new_r, new_hom, new_cost = residuals(candidate)
        better = new_cost < cost
        safe = np.where(better[:, None], candidate, safe)
        r = np.where(better[:, None, None], new_r, r)
        hom = np.where(better[:, None, None], new_hom, hom)
        cost = np.where(better, new_cost, cost)
    return np.where(active[:, None], safe, np.nan)


def triangulate_joints(cameras: list[CameraCalibration], xy: np.ndarray,
                       confidence: np.ndarray | None = None, min_views: int = 2,
                       refine_iterations: int = 5) -> np.ndarray:
    """
    Triangulate joints seen by several cameras; return ``[J, 3]`` metres, NaN where missing.

    ``xy`` is ``[C, J, 2]`` in the ``~/pose`` pixel convention (NaN = not seen) and
    ``confidence`` ``[C, J]`` the weights (default 1; <= 0 or NaN = not seen). A confidence-
    weighted DLT is refined by ``refine_iterations`` Gauss-Newton steps on the weighted
    reprojection error. Joints seen by fewer than ``min_views`` cameras are NaN.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[0] != len(cameras) or xy.shape[2] != 2:
        raise ValueError(f'expected xy [{len(cameras)}, J, 2], got {xy.shape}')
    weights = np.ones(xy.shape[:2]) if confidence is None else np.asarray(confidence, float)
    projections = np.stack([camera.projection for camera in cameras])
    uv = np.swapaxes(xy, 0, 1)
    w = np.swapaxes(weights, 0, 1)
    points = triangulate(projections, uv, w, min_views=max(2, min_views))
    if refine_iterations > 0:
        points = refine_points(projections, uv, w, points, refine_iterations)
    return points
