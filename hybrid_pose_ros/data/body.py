"""
A clothed body of capsules around the mocap skeleton, with surface textures.

Every :class:`Part` is a capsule (a cylinder with hemispherical caps) between two points given
as ``(landmark_a, landmark_b, f)`` = ``a + f (b - a)`` of the landmarks of
:mod:`hybrid_pose_ros.data.joint_mapping`; radii are those of an adult (metres). Each part has a
material (albedo, texture): a light striped shirt, dark patterned trousers, skin, dark shoes.
Textures are functions of body-fixed surface coordinates (distance along the capsule axis and
angle around it, measured from the torso's forward direction), so they move with the body and
motion creates internal edges, as clothing folds and prints do on a real person.
"""
from dataclasses import dataclass

from hybrid_pose_ros.data.joint_mapping import LANDMARK_INDEX
import numpy as np

Point = tuple[str, str, float]


@dataclass(frozen=True)
class Material:
    """Albedo in [0, 1] and a texture ``albedo * (1 + amp * pattern(axial, angle))``."""

    albedo: float
    amp: float
    axial_period: float
    twist: float


SKIN = Material(0.55, 0.06, 0.07, 0.0)
SHIRT = Material(0.78, 0.35, 0.06, 0.0)
TROUSERS = Material(0.22, 0.45, 0.05, 3.0)
SHOES = Material(0.08, 0.3, 0.04, 2.0)
HAIR = Material(0.35, 0.25, 0.03, 4.0)


@dataclass(frozen=True)
class Part:
    """A capsule from point ``a`` to point ``b`` with radius ``radius`` (m)."""

    name: str
    a: Point
    b: Point
    radius: float
    material: Material


def _j(name: str) -> Point:
    return (name, name, 0.0)


@dataclass(frozen=True)
class Outfit:
    """What a person wears: materials of the upper body, legs, feet, skin and hair."""

    shirt: Material = SHIRT
    trousers: Material = TROUSERS
    shoes: Material = SHOES
    skin: Material = SKIN
    hair: Material = HAIR
    sleeves: bool = False


def _symmetric(side: str, girth: float, outfit: Outfit) -> list[Part]:
    s = side
    forearm = outfit.shirt if outfit.sleeves else outfit.skin
    return [
        Part(f'torso_{s}', ('neck', f'shoulder_{s}', 0.45), ('pelvis', f'hip_{s}', 0.6),
             0.105 * girth, outfit.shirt),
        Part(f'upper_arm_{s}', _j(f'shoulder_{s}'), _j(f'elbow_{s}'), 0.047 * girth,
             outfit.shirt),
        Part(f'forearm_{s}', _j(f'elbow_{s}'), _j(f'hand_{s}'), 0.037 * girth, forearm),
        Part(f'hand_{s}', _j(f'hand_{s}'), (f'elbow_{s}', f'hand_{s}', 1.3), 0.04, outfit.skin),
        Part(f'thigh_{s}', _j(f'hip_{s}'), _j(f'knee_{s}'), 0.075 * girth, outfit.trousers),
        Part(f'shin_{s}', _j(f'knee_{s}'), _j(f'foot_{s}'), 0.052 * girth, outfit.trousers),
        Part(f'foot_{s}', _j(f'foot_{s}'), _j(f'toe_{s}'), 0.042, outfit.shoes),
    ]


def make_body(girth: float = 1.0, head_size: float = 1.0, outfit: Outfit = Outfit()
              ) -> tuple[Part, ...]:
    """Return the 18 capsules of a person: ``girth`` scales the trunk and limbs."""
    return tuple(
        [Part('head', ('head', 'head_top', -0.5), _j('head'), 0.092 * head_size, outfit.hair),
         Part('neck', _j('neck'), ('neck', 'head', 0.7), 0.055 * girth, outfit.skin),
         Part('shoulders', ('shoulder_left', 'shoulder_right', 0.1),
              ('shoulder_left', 'shoulder_right', 0.9), 0.07 * girth, outfit.shirt),
         Part('pelvis', _j('hip_left'), _j('hip_right'), 0.1 * girth, outfit.trousers)]
        + _symmetric('right', girth, outfit) + _symmetric('left', girth, outfit))


BODY: tuple[Part, ...] = make_body()
"""The default body: 18 capsules, a light striped shirt and dark patterned trousers."""


def _material(rng: np.random.Generator, albedo: tuple[float, float],
              amp: tuple[float, float]) -> Material:
    return Material(float(rng.uniform(*albedo)), float(rng.uniform(*amp)),
                    float(rng.uniform(0.03, 0.12)), float(rng.uniform(0.0, 4.0)))


def random_body(rng: np.random.Generator) -> tuple[Part, ...]:
    """
    Draw a person for one recording: girth 0.85-1.3, head 0.9-1.1, mostly plain clothes.

    Clothing albedo and pattern contrast are uniform (contrast 0-0.35: from plain cloth to
    prints), sleeves long in a third of the draws; skin and hair vary too.
    """
    outfit = Outfit(shirt=_material(rng, (0.1, 0.9), (0.0, 0.35)),
                    trousers=_material(rng, (0.05, 0.7), (0.0, 0.3)),
                    shoes=_material(rng, (0.03, 0.5), (0.0, 0.3)),
                    skin=_material(rng, (0.2, 0.7), (0.0, 0.08)),
                    hair=_material(rng, (0.03, 0.6), (0.0, 0.3)),
                    sleeves=bool(rng.random() < 1 / 3))
    return make_body(float(rng.uniform(0.85, 1.3)), float(rng.uniform(0.9, 1.1)), outfit)


def _point(lm: np.ndarray, p: Point) -> np.ndarray:
    a = lm[..., LANDMARK_INDEX[p[0]], :]
    if p[2] == 0.0:
        return a
    return a + p[2] * (lm[..., LANDMARK_INDEX[p[1]], :] - a)


def capsules(lm: np.ndarray, body: tuple[Part, ...] = BODY) -> tuple[np.ndarray, np.ndarray]:
    """Capsule end points ``a, b`` [..., P, 3] from landmarks [..., K, 3]."""
    a = np.stack([_point(lm, p.a) for p in body], axis=-2)
    b = np.stack([_point(lm, p.b) for p in body], axis=-2)
    return a, b


def forward_direction(lm: np.ndarray) -> np.ndarray:
    """Return the unit forward direction of the torso [..., 3] (up x right)."""
    def at(name: str) -> np.ndarray:
        return lm[..., LANDMARK_INDEX[name], :]

    right = at('shoulder_right') - at('shoulder_left')
    up = at('neck') - at('pelvis')
    f = np.cross(up, right)
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-9)


def texture(material: Material, axial: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Albedo at body-fixed surface coordinates (axial metres, angle radians)."""
    phase = 2.0 * np.pi * axial / material.axial_period + material.twist * angle
    pattern = np.tanh(2.5 * np.sin(phase)) * 0.7 + 0.3 * np.sin(2.0 * angle + 0.5 * phase)
    return material.albedo * (1.0 + material.amp * pattern)
