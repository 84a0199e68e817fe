"""
Training losses of the paper (spec section 4): blurred one-hot heatmap MSE and state matching.

Targets: a one-hot map at the joint's pixel, blurred with a Gaussian (sigma 2 at 256x256,
``sigma = max(1, 2 * scale)`` at other resolutions; kernel size
``int(((sigma - 0.8) / 0.3 + 1) * 2 + 1)``, made odd; reflect padding, as torchvision's
``gaussian_blur``), then divided by its maximum so the peak is 1. Invisible joints are all
zero. The blur is separable and the target of one joint is therefore the outer product of two
blurred 1D one-hot vectors, each max-normalised: the loss uses that factorisation and never
builds the ``[B, T, J, H, W]`` target tensor (:func:`blurred_targets` builds it, for tests and
plots).
"""
import torch
import torch.nn.functional as F

PAPER_SIGMA = 2.0
PAPER_RESOLUTION = 256
HEATMAP_WEIGHT = 0.95
STATE_WEIGHT = 0.05


def target_sigma(input_size: int) -> float:
    """Return the blur sigma for a ``input_size``-pixel input: 2 at 256, scaled, at least 1."""
    return max(1.0, PAPER_SIGMA * input_size / PAPER_RESOLUTION)


def kernel_size(sigma: float) -> int:
    """Return torchvision's default size for ``sigma``, made odd (11 for sigma 2)."""
    size = int(((sigma - 0.8) / 0.3 + 1) * 2 + 1)
    return size if size % 2 else size + 1


def gaussian_kernel(sigma: float, device: torch.device | str | None = None) -> torch.Tensor:
    """Return the normalised 1D Gaussian kernel of :func:`kernel_size` taps."""
    size = kernel_size(sigma)
    x = torch.linspace(-(size - 1) / 2, (size - 1) / 2, size, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def blurred_profiles(coords: torch.Tensor, visible: torch.Tensor, length: int,
                     sigma: float) -> torch.Tensor:
    """
    Blur one-hot vectors along one axis and max-normalise them.

    ``coords [...]`` are integer pixel indices, ``visible [...]`` masks them; returns
    ``[..., length]`` (all zero where invisible or out of range).
    """
    shape = coords.shape
    flat = coords.reshape(-1).long()
    inside = visible.reshape(-1).bool() & (flat >= 0) & (flat < length)
    onehot = torch.zeros(flat.numel(), 1, length, device=coords.device)
    rows = torch.nonzero(inside).squeeze(1)
    onehot[rows, 0, flat[rows]] = 1.0
    kernel = gaussian_kernel(sigma, coords.device)
    pad = kernel.numel() // 2
    if pad >= length:
        raise ValueError(f'blur kernel of {kernel.numel()} taps is too wide for {length} pixels')
    blurred = F.conv1d(F.pad(onehot, (pad, pad), mode='reflect'), kernel.view(1, 1, -1))
    peak = blurred.amax(dim=-1, keepdim=True)
    blurred = blurred / torch.where(peak > 0, peak, torch.ones_like(peak))
    return blurred.reshape(*shape, length)


def blurred_targets(joints: torch.Tensor, visible: torch.Tensor, height: int, width: int,
                    sigma: float) -> torch.Tensor:
    """Return the targets ``[..., J, H, W]`` of joints ``[..., J, (col, row)]``."""
    gx = blurred_profiles(joints[..., 0], visible, width, sigma)
    gy = blurred_profiles(joints[..., 1], visible, height, sigma)
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


def heatmap_mse(prediction: torch.Tensor, joints: torch.Tensor, visible: torch.Tensor,
                sigma: float) -> torch.Tensor:
    """
    Return the MSE over the pixels of every map: ``prediction [..., J, H, W]`` -> ``[...]``.

    Computed as ``(sum p^2 - 2 gy^T P gx + |gy|^2 |gx|^2) / (J H W)``, exactly the MSE against
    :func:`blurred_targets` without building them.
    """
    height, width = prediction.shape[-2:]
    gx = blurred_profiles(joints[..., 0], visible, width, sigma)
    gy = blurred_profiles(joints[..., 1], visible, height, sigma)
    squares = prediction.square().sum(dim=(-2, -1))
    cross = torch.einsum('...jh,...jhw,...jw->...j', gy, prediction, gx)
    target_squares = gy.square().sum(-1) * gx.square().sum(-1)
    per_joint = squares - 2.0 * cross + target_squares
    return per_joint.sum(-1) / (prediction.shape[-3] * height * width)


def heatmap_loss(prediction: torch.Tensor, joints: torch.Tensor, visible: torch.Tensor,
                 sigma: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """
    Return the paper's heatmap loss: MSE over all pixels, mean over samples and steps.

    ``prediction`` is ``[B, J, H, W]`` or ``[B, T, J, H, W]``, ``joints`` ``[B, (T), J, 2]``,
    ``visible`` ``[B, (T), J]``; ``valid [B, (T)]`` drops samples or steps without a label.
    """
    per_map = heatmap_mse(prediction, joints, visible, sigma)
    if valid is None:
        return per_map.mean()
    valid = valid.to(per_map.dtype)
    return (per_map * valid).sum() / valid.sum().clamp(min=1.0)


def state_matching_loss(targets: tuple[torch.Tensor, ...] | list[torch.Tensor],
                        finals: tuple[torch.Tensor, ...] | list[torch.Tensor],
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """
    Return the mean over layers of ``MSE(init_l(ANN(next input)), V_l after the last step)``.

    ``valid [B]`` drops samples without a next window (their state has no target).
    """
    if len(targets) != len(finals) or not targets:
        raise ValueError('need one target per final membrane')
    losses = []
    for target, final in zip(targets, finals):
        per_sample = (target - final).square().flatten(1).mean(dim=1)
        if valid is None:
            losses.append(per_sample.mean())
        else:
            weight = valid.to(per_sample.dtype)
            losses.append((per_sample * weight).sum() / weight.sum().clamp(min=1.0))
    return torch.stack(losses).mean()


def hybrid_loss(heatmap: torch.Tensor, state: torch.Tensor,
                heatmap_weight: float = HEATMAP_WEIGHT,
                state_weight: float = STATE_WEIGHT) -> torch.Tensor:
    """Return ``0.95 * heatmap + 0.05 * state`` (spec section 4.3)."""
    return heatmap_weight * heatmap + state_weight * state
