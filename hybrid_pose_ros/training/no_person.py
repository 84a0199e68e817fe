"""
Scenes without a person, and how many joints a model still claims in them.

A pose estimator that always draws a skeleton is wrong whenever nobody is in view. The
evaluation runs the hybrid, as the node does (:func:`estimator.run_offline`), on event streams
without a person and counts the joints it would publish (confidence at least
``min_confidence``). Scenes, all at the DHP19 sensor size (346 x 260):

``noise``
    The empty room seen by a still DHP19 camera: only the sensor's own events (background
    activity, shot noise, hot pixels) of a sensor drawn as for training.
``moving_camera``
    The same empty room seen by a camera that sways by about a degree (a robot or a hand
    holding it), so the room's edges fire.
a real recording
    Any AEDAT4 file of the same sensor size, e.g. the DAVIS346 road-traffic recording that the
    ``aedat`` package ships in its tests.
"""
import math

from hybrid_pose_ros.data.cameras import Camera, dhp19_rig
from hybrid_pose_ros.data.render import Renderer
from hybrid_pose_ros.data.simulator import EventSimulator, random_config
from hybrid_pose_ros.estimator import HybridEstimator, PoseStep, run_offline
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
from hybrid_pose_ros.events.sensor import DHP19_HEIGHT, DHP19_WIDTH, SensorGeometry
from hybrid_pose_ros.model.hybrid import HybridPoseNet
import numpy as np
import torch

SCENE_HZ = 250.0
SWAY_DEG = 1.0
SWAY_HZ = (0.7, 1.9)


def _simulate(frames: list[np.ndarray], seed: int) -> np.ndarray:
    """Events of a frame sequence at :data:`SCENE_HZ` from a sensor drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    simulator = EventSimulator(random_config(rng), seed=int(rng.integers(2**31)))
    simulator.reset(frames[0], 0)
    period_us = int(round(1e6 / SCENE_HZ))
    parts = [simulator.step(frame, k * period_us) for k, frame in enumerate(frames[1:], 1)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)


def noise_scene(seconds: float, seed: int, cam_index: int = 3) -> np.ndarray:
    """Events of the empty room seen by a still camera: sensor noise only."""
    background = Renderer(dhp19_rig()[cam_index], supersample=1).background
    return _simulate([background] * (int(seconds * SCENE_HZ) + 1), seed)


def _swayed(camera: Camera, yaw: float, pitch: float) -> Camera:
    """Return the camera turned about its own centre by ``yaw`` and ``pitch`` (radians)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]]) @ np.array(
        [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rotation = turn @ camera.R
    return Camera(camera.cam_index, camera.K, rotation, -rotation @ camera.center)


def moving_camera_scene(seconds: float, seed: int, cam_index: int = 3) -> np.ndarray:
    """Events of the empty room seen by a camera swaying by about :data:`SWAY_DEG`."""
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0.0, 2.0 * math.pi, (2, len(SWAY_HZ)))
    camera = dhp19_rig()[cam_index]
    frames = []
    for k in range(int(seconds * SCENE_HZ) + 1):
        t = k / SCENE_HZ
        yaw, pitch = (math.radians(SWAY_DEG) * sum(
            math.sin(2.0 * math.pi * f * t + phases[axis, i]) for i, f in enumerate(SWAY_HZ))
            / len(SWAY_HZ) for axis in range(2))
        frames.append(Renderer(_swayed(camera, yaw, pitch), supersample=1).background)
    return _simulate(frames, seed)


def published_fraction(steps: list[PoseStep], min_confidence: float) -> float | None:
    """Share of the joints of ``steps`` that a node would publish (None without steps)."""
    if not steps:
        return None
    confidence = np.stack([s.confidence for s in steps])
    xy = np.stack([s.xy for s in steps])
    shown = np.isfinite(xy).all(axis=-1) & (confidence >= min_confidence)
    return float(shown.mean())


Scene = tuple[np.ndarray, int, int]
"""Events in sensor pixels with the sensor's width and height."""


def standard_scenes(seconds: float = 2.0) -> dict[str, Scene]:
    """Return the synthetic scenes of the module doc at the DHP19 sensor size, seeded."""
    return {'noise': (noise_scene(seconds, seed=0), DHP19_WIDTH, DHP19_HEIGHT),
            'moving_camera': (moving_camera_scene(seconds, seed=1), DHP19_WIDTH, DHP19_HEIGHT)}


def no_person_report(model: HybridPoseNet, scenes: dict[str, Scene], min_confidence: float
                     ) -> dict[str, dict[str, float | int | None]]:
    """
    Per scene: steps run, joints published and missing as shares, and the confidence quantiles.

    The hybrid runs as in the node, with the sensor geometry policy of
    :meth:`SensorGeometry.for_sensor`. The missing share is what the confidence gate must make
    large (target: at least 0.9).
    """
    config = model.config
    report = {}
    for name, (events, width, height) in scenes.items():
        estimator = HybridEstimator(model, SensorGeometry.for_sensor(
            width, height, config.input_width, config.input_height))
        with torch.no_grad():
            steps = run_offline(estimator, events) if len(events) else []
        shown = published_fraction(steps, min_confidence)
        confidence = (np.stack([s.confidence for s in steps]).ravel() if steps
                      else np.zeros(0))
        report[name] = {
            'events': int(len(events)), 'steps': len(steps),
            'published_fraction': shown,
            'missing_fraction': None if shown is None else 1.0 - shown,
            'confidence_p50': float(np.nanmedian(confidence)) if len(confidence) else None,
            'confidence_p95': (float(np.nanpercentile(confidence, 95)) if len(confidence)
                               else None)}
    return report
