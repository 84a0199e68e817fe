"""
Training-batch augmentation for what users' cameras show and the synthetic data lacks.

Every change is drawn per sample and applied alike to all of a sample's images (a window's
ANN input, its frames and the next window's ANN input) and its joint labels:

* **zoom and shift** (:func:`draw_affine`): the person nearer or farther (scale about the
  image centre) and elsewhere in the crop (translation); joints that leave the image become
  invisible, so people cut by the frame border and partial views are trained on. Images are
  resampled with nearest-neighbour lookups, so they keep whole event counts.
* **no person** (:func:`draw_negatives`): the sample's images are replaced by a scene without
  a person, every joint invisible (all-zero target heatmaps), so a confident peak means a
  joint is there. Two kinds, drawn per sample: sensor noise alone (uniform events at a random
  density, as a static scene gives) and the sample's own events with the image cut into
  tiles and the tiles shuffled (real event texture without a body's layout).

Left-right flips with the joint swap live in :class:`dataset.DeviceData`.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NEGATIVE_TILE = 8
"""Side (model pixels) of the tiles shuffled in a tiled negative."""
NOISE_SHARE = 2 / 3
"""Share of negatives that are noise alone; the rest are shuffled tiles."""
NOISE_DENSITY = (0.002, 0.06)
"""Range of noise events per pixel and channel of a noise negative."""


@dataclass(frozen=True)
class Augmentation:
    """Random per-sample changes of training batches; the defaults change nothing."""

    scale: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    negative: float = 0.0

    def __post_init__(self) -> None:
        """Reject ranges that cannot be drawn from."""
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f'augment scale {self.scale}: need 0 < low <= high')
        if not 0.0 <= self.shift < 1.0:
            raise ValueError(f'augment shift {self.shift}: need 0 <= shift < 1')
        if not 0.0 <= self.negative < 1.0:
            raise ValueError(f'augment negative {self.negative}: need 0 <= fraction < 1')

    @property
    def affine(self) -> bool:
        """Return True when zoom or shift is on."""
        return self.scale != (1.0, 1.0) or self.shift > 0


def draw_affine(count: int, augmentation: Augmentation, width: int, height: int,
                generator: torch.Generator) -> torch.Tensor:
    """Per-sample ``[scale, shift_x, shift_y]`` (shifts in pixels) ``[count, 3]``."""
    low, high = augmentation.scale
    u = torch.rand(count, 3, generator=generator)
    scale = torch.exp(torch.log(torch.tensor(low)) + u[:, 0] * (torch.log(torch.tensor(high))
                                                                - torch.log(torch.tensor(low))))
    shift_x = (2.0 * u[:, 1] - 1.0) * augmentation.shift * width
    shift_y = (2.0 * u[:, 2] - 1.0) * augmentation.shift * height
    return torch.stack([scale, shift_x, shift_y], dim=1)


def affine_images(images: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """
    Zoom and shift images ``[B, ..., H, W]`` by ``affine [B, 3]``.

    Output pixel centre ``x_out`` shows input point ``(x_out - cx - shift) / scale + cx``
    (``cx`` the image centre), looked up at the nearest pixel; outside the input is zero.
    """
    batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    flat = images.reshape(batch, -1, height, width).float()
    scale, shift_x, shift_y = affine[:, 0], affine[:, 1], affine[:, 2]
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = 1.0 / scale
    theta[:, 1, 1] = 1.0 / scale
    theta[:, 0, 2] = -2.0 * shift_x.to(images.device) / (width * scale)
    theta[:, 1, 2] = -2.0 * shift_y.to(images.device) / (height * scale)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode='nearest', padding_mode='zeros', align_corners=False)
    return out.reshape(images.shape)


def affine_joints(joints: torch.Tensor, visible: torch.Tensor, affine: torch.Tensor,
                  width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Move integer joint pixels ``[B, ..., J, 2]`` as :func:`affine_images` moves the image.

    A joint's pixel centre maps to ``scale * (x + 0.5 - cx) + cx + shift``, floored; joints
    that land outside the image become invisible.
    """
    shape = (-1,) + (1,) * (joints.dim() - 2)
    scale = affine[:, 0].view(shape).to(joints.device)
    moved = torch.empty_like(joints)
    for axis, size, shift in ((0, width, affine[:, 1]), (1, height, affine[:, 2])):
        centre = size / 2.0
        position = scale * (joints[..., axis].float() + 0.5 - centre) + centre \
            + shift.view(shape).to(joints.device)
        moved[..., axis] = torch.floor(position).long()
    inside = ((moved[..., 0] >= 0) & (moved[..., 0] < width) & (moved[..., 1] >= 0)
              & (moved[..., 1] < height))
    return moved, visible & inside


def draw_negatives(count: int, fraction: float, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Which samples become negatives ``[count]`` and which of those are noise ``[count]``."""
    u = torch.rand(count, 2, generator=generator)
    return u[:, 0] < fraction, u[:, 1] < NOISE_SHARE


def negative_images(images: torch.Tensor, noise: torch.Tensor, generator: torch.Generator
                    ) -> torch.Tensor:
    """
    Return scenes without a person in place of ``images [B, ..., H, W]``.

    Noise where ``noise [B]``, else the image's tiles shuffled (one permutation per sample,
    for all its channels).
    """
    batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    out = images.float().clone()
    density = NOISE_DENSITY[0] + torch.rand(batch, generator=generator) * (
        NOISE_DENSITY[1] - NOISE_DENSITY[0])
    rates = density.view((-1,) + (1,) * (images.dim() - 1)).expand(images.shape)
    noise_images = torch.poisson(rates.contiguous(), generator=generator).to(images.device)
    tiles_y, tiles_x = height // NEGATIVE_TILE, width // NEGATIVE_TILE
    for b in range(batch):
        if bool(noise[b]):
            out[b] = noise_images[b]
            continue
        order = torch.randperm(tiles_y * tiles_x, generator=generator)
        tiles = out[b].reshape(-1, tiles_y, NEGATIVE_TILE, tiles_x, NEGATIVE_TILE)
        tiles = tiles.permute(1, 3, 0, 2, 4).reshape(tiles_y * tiles_x, -1, NEGATIVE_TILE,
                                                     NEGATIVE_TILE)
        tiles = tiles[order.to(images.device)]
        out[b] = tiles.reshape(tiles_y, tiles_x, -1, NEGATIVE_TILE, NEGATIVE_TILE).permute(
            2, 0, 3, 1, 4).reshape(out[b].shape)
    return out


IMAGE_KEYS = ('ann', 'frames', 'next_ann')
"""The image tensors of a training batch (:class:`dataset.DeviceData`)."""


def augment_batch(batch: dict[str, torch.Tensor], augmentation: Augmentation,
                  generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Apply ``augmentation`` to a training batch (images, ``joints``, ``visible``) in place."""
    keys = [key for key in IMAGE_KEYS if key in batch]
    count = batch['joints'].shape[0]
    height, width = batch[keys[0]].shape[-2:]
    if augmentation.affine:
        affine = draw_affine(count, augmentation, width, height, generator)
        for key in keys:
            batch[key] = affine_images(batch[key], affine)
        batch['joints'], batch['visible'] = affine_joints(batch['joints'], batch['visible'],
                                                          affine, width, height)
    if augmentation.negative > 0:
        chosen, noise = draw_negatives(count, augmentation.negative, generator)
        rows = torch.nonzero(chosen).squeeze(1)
        if len(rows):
            for key in keys:
                batch[key][rows.to(batch[key].device)] = negative_images(
                    batch[key][rows.to(batch[key].device)], noise[rows], generator)
            visible = batch['visible'].clone()
            visible[rows.to(visible.device)] = False
            batch['visible'] = visible
    return batch
