"""Training augmentation: zoom/shift keeps images and labels together, negatives have no person."""
from hybrid_pose_ros.training.augment import (affine_images, affine_joints, augment_batch,
                                              Augmentation, negative_images)
import pytest
import torch


def _impulses(joints: torch.Tensor, height: int, width: int) -> torch.Tensor:
    images = torch.zeros(joints.shape[0], joints.shape[1], height, width)
    for b in range(joints.shape[0]):
        for j in range(joints.shape[1]):
            images[b, j, joints[b, j, 1], joints[b, j, 0]] = 1.0
    return images


def test_integer_shift_moves_images_and_joints_alike():
    joints = torch.tensor([[[5, 7], [60, 3], [30, 30]]])
    visible = torch.ones(1, 3, dtype=torch.bool)
    images = _impulses(joints, 64, 64)
    affine = torch.tensor([[1.0, 6.0, -4.0]])
    moved, still = affine_joints(joints, visible, affine, 64, 64)
    assert moved[0, 0].tolist() == [11, 3] and moved[0, 2].tolist() == [36, 26]
    assert still.tolist() == [[True, False, True]]            # x = 66 left the image
    out = affine_images(images, affine)
    assert torch.equal(out[0, 0], torch.roll(images[0, 0], (-4, 6), (0, 1)))
    assert out[0, 1].sum() == 0                               # shifted out: nothing left


@pytest.mark.parametrize('seed', range(5))
def test_zoomed_joint_lands_on_its_zoomed_pixel(seed):
    generator = torch.Generator().manual_seed(seed)
    joints = torch.randint(8, 56, (4, 13, 2), generator=generator)
    visible = torch.ones(4, 13, dtype=torch.bool)
    affine = torch.stack([1.0 + torch.rand(4, generator=generator),
                          torch.rand(4, generator=generator) * 10 - 5,
                          torch.rand(4, generator=generator) * 10 - 5], dim=1)
    moved, still = affine_joints(joints, visible, affine, 64, 64)
    out = affine_images(_impulses(joints, 64, 64), affine)
    for b in range(4):
        for j in range(13):
            if still[b, j]:
                assert out[b, j, moved[b, j, 1], moved[b, j, 0]] == 1.0


def test_zoom_out_keeps_the_person_smaller_about_the_centre():
    joints = torch.tensor([[[0, 0], [63, 63]]])
    moved, still = affine_joints(joints, torch.ones(1, 2, dtype=torch.bool),
                                 torch.tensor([[0.5, 0.0, 0.0]]), 64, 64)
    assert moved[0].tolist() == [[16, 16], [47, 47]] and still.all()


def test_negatives_hide_every_joint_and_keep_or_replace_events():
    generator = torch.Generator().manual_seed(3)
    frames = torch.poisson(torch.full((6, 10, 2, 64, 64), 0.3), generator=generator)
    batch = {'frames': frames.clone(), 'ann': frames[:, 0].clone(),
             'joints': torch.zeros(6, 10, 13, 2, dtype=torch.long),
             'visible': torch.ones(6, 10, 13, dtype=torch.bool)}
    augment_batch(batch, Augmentation(negative=0.9), generator)
    changed = (batch['frames'] != frames).flatten(1).any(dim=1)
    assert changed.sum() >= 4
    # every joint of a negative is hidden; the others keep theirs
    assert torch.equal(batch['visible'].flatten(1).any(dim=1), ~changed)
    tiled = torch.tensor([0, 1, 2])
    shuffled = negative_images(frames[tiled], torch.tensor([False, False, False]), generator)
    # a tiled negative is a permutation of the sample's own events, channel by channel
    assert torch.equal(shuffled.sum(dim=(-2, -1)), frames[tiled].sum(dim=(-2, -1)))
    assert not torch.equal(shuffled, frames[tiled])
    noise = negative_images(frames[tiled], torch.tensor([True, True, True]), generator)
    density = noise.mean(dim=(1, 2, 3, 4))
    assert torch.all(density > 0.001) and torch.all(density < 0.07)


def test_default_augmentation_changes_nothing():
    generator = torch.Generator().manual_seed(0)
    batch = {'ann': torch.rand(2, 20, 64, 64), 'joints': torch.randint(0, 64, (2, 13, 2)),
             'visible': torch.ones(2, 13, dtype=torch.bool)}
    copy = {k: v.clone() for k, v in batch.items()}
    augment_batch(batch, Augmentation(), generator)
    assert all(torch.equal(batch[k], copy[k]) for k in copy)


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match='scale'):
        Augmentation(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match='shift'):
        Augmentation(shift=1.5)
    with pytest.raises(ValueError, match='negative'):
        Augmentation(negative=-0.1)
