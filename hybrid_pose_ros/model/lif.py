"""
Leaky integrate-and-fire neurons in plain PyTorch (spec section 3.3).

The membrane state is an ordinary tensor passed in and returned, never stored on a module, so
the streaming node and batched training run the same code. One step with input current ``x``:

1. charge ``V <- V + (x - V) / tau`` (the official code's order of operations);
2. fire ``S = Theta(V - V_th)`` with ``Theta(0) = 1``;
3. soft reset ``V <- V - S * V_th`` (the reset is not detached: gradients flow through it).

The Heaviside step has the ATan surrogate gradient of spikingjelly,
``dS/dV = alpha / (2 * (1 + (pi/2 * alpha * (V - V_th))^2))``.
"""
import math

import torch


class SpikeFunction(torch.autograd.Function):
    """Heaviside step ``Theta(V - V_th)`` (``Theta(0) = 1``) with the ATan surrogate gradient."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, v_threshold: float, alpha: float) -> torch.Tensor:
        """Return ``1.0`` where ``v >= v_threshold``, else ``0.0``."""
        ctx.save_for_backward(v)
        ctx.v_threshold = v_threshold
        ctx.alpha = alpha
        return (v >= v_threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        """Scale the incoming gradient by the ATan surrogate derivative."""
        (v,) = ctx.saved_tensors
        return grad_output * atan_surrogate_grad(v - ctx.v_threshold, ctx.alpha), None, None


def spike(v: torch.Tensor, v_threshold: float = 1.0, alpha: float = 2.0) -> torch.Tensor:
    """Fire where ``v >= v_threshold``, with the ATan(``alpha``) surrogate gradient."""
    return SpikeFunction.apply(v, v_threshold, alpha)


def atan_surrogate_grad(centred: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Return the surrogate derivative ``dS/dV`` at ``centred = V - V_th``."""
    return alpha / (2.0 * (1.0 + (math.pi / 2.0 * alpha * centred) ** 2))


def lif_charge(v: torch.Tensor, current: torch.Tensor, tau: float) -> torch.Tensor:
    """
    Leaky charge ``V + (x - V) / tau`` (also the non-spiking readout of the pure SNN).

    Rounded as the official code rounds it (``(x - V) / tau``, then ``+ V``), so that float32
    runs are bitwise comparable with it; in place on the difference, which costs about what one
    fused ``torch.lerp`` did (``docs/architecture.md``).
    """
    return torch.sub(current, v).div_(tau).add_(v)


def lif_step(v: torch.Tensor, current: torch.Tensor, tau: float, v_threshold: float = 1.0,
             alpha: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Advance LIF neurons by one step.

    ``v`` is the membrane before this step's charge (for the first step of a window: the
    initial state, zeros or the ANN prediction). Returns ``(spikes, v_after_reset)``.
    """
    charged = lif_charge(v, current, tau)
    spikes = spike(charged, v_threshold, alpha)
    return spikes, torch.sub(charged, spikes, alpha=v_threshold)  # charged - S * V_th
