"""Wan2.2-A14B's two denoising experts behind one MemoryDiT-shaped module.

The high-noise expert (``transformer/``) denoises timesteps ``t >= boundary``, the low-noise one
(``transformer_2/``) the rest, as diffusers' WanPipeline switches them. What is shared and why:

- Per expert: the whole Wan transformer (patch embedding, time/text embedder, blocks, head). These
  are the pretrained experts; each keeps its own weights and only trains on its own noise range.
- Shared: everything MemoryDiT adds (dynamic tokenizers, token merger, camera embedding, Memento
  bank). They are new, trained from scratch on our corpora, and must describe the same memory to
  both experts; shared, every step trains them instead of half of the steps. The bank is also
  built before the step's noise level is known (training/step.py), so it cannot be per expert.
  The tokenizers start from the high-noise expert's patch embedding.

Training draws one noise regime per step (``sample_sigmas``), identical on every rank, so under
FSDP all ranks gather the same expert's shards; the forward itself routes per sample, so a batch
mixing both sides of the boundary (evaluation, sampling) is still denoised by the right experts.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from models.memory_dit import MemoryDiT, MemoryDiTConfig


def backbones(dit: nn.Module) -> list[nn.Module]:
    """The Wan transformer(s) inside a MemoryDiT or an ExpertDiT."""
    return [dit.transformer, dit.transformer_2] if isinstance(dit, ExpertDiT) else [dit.backbone]


def build_dit(experts: list[nn.Module], cfg: MemoryDiTConfig, boundary: float | None, seed: int = 0) -> nn.Module:
    """A MemoryDiT on a single expert (Wan2.1, tiny), an ExpertDiT on two (Wan2.2-A14B).

    Experts on the meta device (a rank that receives rank 0's weights later) give a DiT all on meta.
    """
    assert len(experts) in (1, 2) and (len(experts) == 1) == (boundary is None), "one expert, or two and a boundary"
    on_meta = next(experts[0].parameters()).is_meta
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        if len(experts) == 1:
            return MemoryDiT(experts[0], cfg)
        return ExpertDiT(experts[0], experts[1], cfg, boundary, seed)


def _take(x, idx: torch.Tensor, b: int):
    """The rows ``idx`` of every batch-first tensor in ``x`` (nested lists/tuples/dicts); other values as they are."""
    if torch.is_tensor(x):
        return x[idx.to(x.device)] if x.dim() > 0 and x.shape[0] == b else x
    if isinstance(x, (list, tuple)):
        return type(x)(_take(v, idx, b) for v in x)
    if isinstance(x, dict):
        return {k: _take(v, idx, b) for k, v in x.items()}
    return x


class ExpertDiT(nn.Module):
    def __init__(self, high: nn.Module, low: nn.Module, cfg: MemoryDiTConfig, boundary: float, seed: int = 0):
        super().__init__()
        self.transformer, self.transformer_2 = high, low  # state-dict keys mirror the diffusers folder
        views = (MemoryDiT(high, cfg), MemoryDiT(low, cfg))
        # Tie every MemoryDiT-owned part (present or future) of the low view to the high view's, and register it
        # here once: a tuple attribute is not a submodule, so the views add no duplicate state-dict keys.
        for name, child in views[0].named_children():
            if name != "backbone":
                setattr(views[1], name, child)
                self.add_module(name, child)
        for name, p in views[0].named_parameters(recurse=False):
            setattr(views[1], name, p)
            self.register_parameter(name, p)
        for name, buf in views[0].named_buffers(recurse=False):
            setattr(views[1], name, buf)
            self.register_buffer(name, buf)
        self._views = views
        self.boundary = float(boundary)  # timestep, in the units of ``timestep`` (1000·σ)
        self.seed = seed
        self._regime = torch.Generator(device="cpu").manual_seed(seed)  # cpu even when built under meta
        self.routed = [0, 0]  # samples sent to (transformer, transformer_2) since set_step: for per-expert logs

    def __getattr__(self, name: str):
        # merger/camera/bank (possibly None), cfg, bank_tokens, ...: read from the high view, which shares them
        try:
            return super().__getattr__(name)
        except AttributeError:
            views = self.__dict__.get("_views")
            if views is None:
                raise
            return getattr(views[0], name)

    def train(self, mode: bool = True):
        super().train(mode)
        for view in self._views:  # not submodules, so nn.Module.train does not reach their own flag
            view.training = mode
        return self

    def set_step(self, step: int) -> None:
        """Make this step's regime draws a function of (seed, step): the same on every rank, and after a resume."""
        self._regime.manual_seed(self.seed * 1_000_003 + step)
        self.routed = [0, 0]

    def sample_sigmas(self, b: int, generator: torch.Generator | None = None, shift: float = 1.0) -> torch.Tensor:
        """σ per sample (like training.losses.sample_sigmas), all on one side of the boundary.

        The side is drawn with the probability the single-expert distribution puts there, so the marginal σ is
        unchanged; per-sample values come from ``generator`` as before. σ(u) = shift·u / (1 + (shift-1)·u).
        """
        s_b = self.boundary / 1000.0  # loss convention: timestep = 1000·σ
        u_b = s_b / (shift - (shift - 1) * s_b)  # quantile of the boundary under σ(u)
        high = float(torch.rand((), generator=self._regime)) >= u_b  # P(high) = 1 - u_b = P(σ >= s_b)
        lo, hi = (u_b, 1.0) if high else (0.0, u_b)
        u = (lo + torch.rand(b, generator=generator) * (hi - lo)).clamp(1e-3, 1 - 1e-3)
        sigma = shift * u / (1 + (shift - 1) * u)
        # a σ rounded onto the other side would route that sample to the other expert (and desync FSDP ranks)
        return sigma.clamp(min=s_b + 1e-4) if high else sigma.clamp(max=s_b - 1e-4)

    def forward(self, target: torch.Tensor, timestep: torch.Tensor, *args, **kw):
        # target: (B, C, T, H, W); timestep: (B,) -- each sample goes to the expert of its timestep
        high = timestep >= self.boundary  # (B,)
        n_high = int(high.sum())
        self.routed = [self.routed[0] + n_high, self.routed[1] + len(high) - n_high]
        stats_wanted = kw.get("return_stats", False)
        if bool(high.all()) or not bool(high.any()):
            which = 0 if bool(high.all()) else 1
            out = self._views[which](target, timestep, *args, **kw)
            if stats_wanted:
                out[1]["expert_samples"] = [len(high), 0] if which == 0 else [0, len(high)]
            return out
        b = target.shape[0]
        parts, order = [], []
        for view, mask in zip(self._views, (high, ~high)):
            idx = mask.nonzero().squeeze(1)  # (b_e,)
            sub = _take((target, timestep, args, kw), idx, b)
            parts.append(view(sub[0], sub[1], *sub[2], **sub[3]))
            order.append(idx)
        outs = [p[0] if stats_wanted else p for p in parts]
        inv = torch.argsort(torch.cat(order)).to(target.device)
        out = torch.cat(outs)[inv]  # (B, C, T, H, W) back in batch order
        if not stats_wanted:
            return out
        stats = dict(parts[0][1], expert_samples=[len(order[0]), len(order[1])], low_noise_stats=parts[1][1])
        return out, stats
