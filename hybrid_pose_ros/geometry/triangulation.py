"""
Weighted linear (DLT) triangulation of points seen by several calibrated cameras.

Each camera ``i`` has a 3x4 projection matrix ``P_i`` and observes ``(u, v)`` with
``[u w, v w, w] = P_i [X, Y, Z, 1]``. Every view adds the two rows ``u P_i3 - P_i1`` and
``v P_i3 - P_i2``, scaled by the view's weight (e.g. the heatmap confidence); the point is the
right singular vector of the smallest singular value. Conventions of real cameras and DHP19's
P matrices are converted once, in :mod:`hybrid_pose_ros.geometry.calibration`.
"""
import numpy as np


def triangulate(projections: np.ndarray, uv: np.ndarray,
                weights: np.ndarray | None = None, min_views: int = 2) -> np.ndarray:
    """
    Triangulate points from ``C`` views.

    ``projections`` is ``[C, 3, 4]``, ``uv`` is ``[..., C, 2]`` in the P matrices' image
    coordinates and ``weights`` ``[..., C]`` (default 1). Views with a non-finite ``uv`` or a
    weight <= 0 are ignored; points with fewer than ``min_views`` usable views are NaN. Returns
    ``[..., 3]``.
    """
    projections = np.asarray(projections, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    num_views = projections.shape[0]
    if projections.shape[1:] != (3, 4) or uv.shape[-2:] != (num_views, 2):
        raise ValueError(f'expected projections [C, 3, 4] and uv [..., C, 2], got '
                         f'{projections.shape} and {uv.shape}')
    if weights is None:
        weights = np.ones(uv.shape[:-1])
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), uv.shape[:-1])
    usable = np.isfinite(uv).all(axis=-1) & np.isfinite(weights) & (weights > 0)
    w = np.where(usable, weights, 0.0)
    safe_uv = np.where(usable[..., None], uv, 0.0)
    rows_u = safe_uv[..., 0, None] * projections[:, 2] - projections[:, 0]
    rows_v = safe_uv[..., 1, None] * projections[:, 2] - projections[:, 1]
    system = np.concatenate([rows_u, rows_v], axis=-2)
    # unit rows: a view weighs by its weight, not by the scale of its P matrix
    norms = np.linalg.norm(system, axis=-1, keepdims=True)
    system = system / np.where(norms > 0, norms, 1.0) * np.concatenate([w, w], axis=-1)[..., None]
    _, _, vh = np.linalg.svd(system)
    hom = vh[..., -1, :]
    with np.errstate(divide='ignore', invalid='ignore'):
        points = hom[..., :3] / hom[..., 3:]
    enough = usable.sum(axis=-1) >= min_views
    return np.where(enough[..., None], points, np.nan)


def project(projection: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Project ``[..., 3]`` points with a 3x4 matrix to ``[..., 2]`` image coordinates."""
    points = np.asarray(points, dtype=np.float64)
    hom = np.concatenate([points, np.ones(points.shape[:-1] + (1,))], axis=-1) @ np.asarray(
        projection, dtype=np.float64).T
    return hom[..., :2] / hom[..., 2:]
