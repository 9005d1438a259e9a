"""Rectified flow matching (memory-v2v Eq. 8) and Memento's multi-task loss (memento Eq. 8).

Convention (diffusers FlowMatch / Wan): x_σ = (1-σ)·x0 + σ·ε, σ ∈ (0, 1), and the network
predicts the velocity v = ε - x0 (the paper writes the same loss with the opposite sign of
time). The timestep fed to Wan is 1000·σ.
"""

from __future__ import annotations

import itertools

import torch


def sample_sigmas(b: int, generator: torch.Generator | None = None, shift: float = 1.0) -> torch.Tensor:
    """σ per sample: uniform, optionally shifted toward noise like Wan's scheduler (shift > 1)."""
    u = torch.rand(b, generator=generator).clamp(1e-3, 1 - 1e-3)
    return shift * u / (1 + (shift - 1) * u)


def noisy(x0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_σ, velocity target) for clean latents x0 (B, ...) and σ (B,)."""
    s = sigma.view(-1, *([1] * (x0.ndim - 1))).to(x0)
    return (1 - s) * x0 + s * noise, noise - x0


def flow_loss(pred_v: torch.Tensor, target_v: torch.Tensor) -> torch.Tensor:
    return torch.mean((pred_v.float() - target_v.float()) ** 2)


def memento_loss(l_diff: torch.Tensor, l_recon: torch.Tensor | None, weight: float = 0.5) -> torch.Tensor:
    """L = L_diff + λ·L_recon, λ = 0.5 (memento §4.1)."""
    return l_diff if l_recon is None else l_diff + weight * l_recon


def drop_text(text: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each sample's text states by zeros with probability p (10 %: classifier-free guidance)."""
    if p <= 0:
        return text
    keep = (torch.rand(text.shape[0], generator=generator) >= p).to(text)
    return text * keep.view(-1, *([1] * (text.ndim - 1)))


def euler_sample(
    model_fn,
    shape,
    steps: int,
    generator: torch.Generator | None = None,
    start: torch.Tensor | None = None,
    sigma_start: float = 1.0,
) -> torch.Tensor:
    """Integrate dx/dσ = v from σ=sigma_start to 0 with ``steps`` Euler steps; model_fn(x, σ (B,)) -> v.

    From pure noise by default; with ``start`` (clean latents) it begins at x_σ = (1-σ)·start + σ·ε
    (SDEdit-style partial denoising, used to probe what a barely trained model recovers).
    """
    x = torch.randn(shape, generator=generator)
    if start is not None:
        x = (1 - sigma_start) * start + sigma_start * x
    sig = torch.linspace(sigma_start, 0.0, steps + 1)
    for a, b in itertools.pairwise(sig):
        v = model_fn(x, torch.full((shape[0],), float(a)))
        x = x + (b - a) * v
    return x
