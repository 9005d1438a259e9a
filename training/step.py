"""One optimisation step of the memory DiT: encode, perturb as the papers train, predict, loss.

Training-time perturbations (all from the papers, all configurable):
- caption dropout p_text = 0.1 (memento §4.1);
- memory-token noise σ_mem when both user input and memory are present, and dropping the
  user-input RoPE range with probability p_user (memory-v2v §0.E.1.1, Eq. 15);
- merge ratio r ~ U[0.3, 0.7] at the merge blocks (DESIGN §2);
- Memento: bank from the history shots, L = L_diff + 0.5·L_recon.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.token_merge import sample_ratio
from training.losses import drop_text, flow_loss, memento_loss, noisy, sample_sigmas


@dataclass(frozen=True)
class StepConfig:
    caption_dropout: float = 0.1
    memory_noise: float = 0.1  # σ of Eq. 15 (the paper does not give a value)
    user_dropout: float = 0.1  # p of §0.E.1.1 (not given either)
    merge_range: tuple[float, float] = (0.3, 0.7)
    recon_weight: float = 0.5
    sigma_shift: float = 1.0


def collate(examples: list[dict]) -> dict:
    """Stack examples; memory lists are cut to the shortest so the batch shares one token layout."""
    out: dict = {"target": torch.stack([e["target"] for e in examples])}
    out["caption"] = [e.get("caption", "") for e in examples]
    if all("user" in e for e in examples):
        out["user"] = torch.stack([e["user"] for e in examples])
    k = min(len(e.get("memory", [])) for e in examples)
    out["memory"] = [torch.stack([e["memory"][j] for e in examples]) for j in range(k)]
    if all("cams" in e for e in examples):
        out["cams"] = {
            "target": torch.stack([e["cams"]["target"] for e in examples]),
            "memory": [torch.stack([e["cams"]["memory"][j] for e in examples]) for j in range(k)],
        }
    if all("history" in e for e in examples):
        h = min(len(e["history"]) for e in examples)
        out["history"] = [torch.stack([e["history"][j] for e in examples]) for j in range(h)]
        out["story"] = [e.get("story", "") for e in examples]
    if all("recon" in e for e in examples):
        out["recon"] = torch.stack([e["recon"] for e in examples])
    return out


class LatentEncoder:
    """Pixels (B, 3, F, H, W) in [-1, 1] -> normalised Wan VAE latents (B, C, 1+(F-1)/4, H/8, W/8)."""

    def __init__(self, vae):
        self.vae = vae.eval().requires_grad_(False)
        c = vae.config
        self.mean = torch.tensor(c.latents_mean).view(1, -1, 1, 1, 1)
        self.inv_std = 1.0 / torch.tensor(c.latents_std).view(1, -1, 1, 1, 1)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        dev = next(self.vae.parameters()).device
        z = self.vae.encode(x.to(dev, torch.float32)).latent_dist.mean
        return (z - self.mean.to(dev)) * self.inv_std.to(dev)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        dev = next(self.vae.parameters()).device
        z = z.to(dev, torch.float32) / self.inv_std.to(dev) + self.mean.to(dev)
        return self.vae.decode(z).sample.clamp(-1, 1)


def encode_batch(batch: dict, enc: LatentEncoder, text_fn, device) -> dict:
    """Latents and text states for a collated batch (cheap to cache for a fixed batch)."""
    z = {"target": enc(batch["target"]), "text": text_fn(batch["caption"]).to(device)}
    z["user"] = enc(batch["user"]) if "user" in batch else None
    z["memory"] = [enc(m) for m in batch["memory"]]
    if "cams" in batch:
        z["cams"] = {
            "target": batch["cams"]["target"].to(device),
            "memory": [c.to(device) for c in batch["cams"]["memory"]],
        }
    if "history" in batch:
        z["history"] = [enc(h) for h in batch["history"]]
        z["story"] = text_fn(batch["story"]).to(device)
    if "recon" in batch:
        z["recon"] = enc(batch["recon"])
    return z


def _camera_rows(cams: dict | None, lat_frames: int) -> dict | None:
    """Pixel-frame cameras (B, F, 12) -> one per latent frame (Wan's VAE keeps frame 0, then every 4th)."""
    if cams is None:
        return None
    pick = lambda c: c[:, ::4][:, :lat_frames]
    return {"target": pick(cams["target"]), "memory": [pick(c) for c in cams["memory"]]}


class FlowObjective(nn.Module):
    """The DiT plus its training loss in one module, so DDP/FSDP wrap a single forward per step
    (Memento's reconstruction branch is a second pass through the same DiT)."""

    def __init__(self, dit: nn.Module, cfg: StepConfig = StepConfig()):
        super().__init__()
        self.dit = dit
        self.cfg = cfg

    def forward(self, z: dict, g: torch.Generator, merge: bool = True) -> tuple[torch.Tensor, dict]:
        return loss_on(self.dit, z, self.cfg, g, merge)


def loss_on(model, z: dict, cfg: StepConfig, g: torch.Generator, merge: bool = True) -> tuple[torch.Tensor, dict]:
    """The training loss for encoded inputs ``z``; ``g`` drives every random choice (reproducible)."""
    core = model
    x0 = z["target"]
    b, dev = x0.shape[0], x0.device
    text = drop_text(z["text"], cfg.caption_dropout, g).to(dev)
    user, memory = z["user"], list(z["memory"])
    if user is not None and memory and cfg.memory_noise > 0:
        memory = [m + cfg.memory_noise * torch.randn(m.shape, generator=g).to(dev) for m in memory]
    if user is not None and memory and float(torch.rand((), generator=g)) < cfg.user_dropout:
        user = None  # train memory as an independent condition
    ratio = sample_ratio(*cfg.merge_range, generator=g) if merge and core.merger is not None else 0.0
    bank = None
    if core.bank is not None and z.get("history"):
        hist = torch.cat([core.bank_tokens(h) for h in z["history"]], dim=1)  # (B, N, D)
        bank, _ = core.bank(None, hist, z["story"], text)
    sigma = sample_sigmas(b, g, cfg.sigma_shift)
    xt, v = noisy(x0, sigma, torch.randn(x0.shape, generator=g).to(dev))
    cams = _camera_rows(z.get("cams"), x0.shape[2]) if core.camera is not None else None
    pred = model(xt, (sigma * 1000).to(dev), text, user=user, memory=memory, merge_ratio=ratio, cams=cams, bank=bank)
    l_diff = flow_loss(pred, v)
    l_recon = None
    if bank is not None and z.get("recon") is not None:
        r0 = z["recon"]
        s2 = sample_sigmas(b, g, cfg.sigma_shift)
        rt, rv = noisy(r0, s2, torch.randn(r0.shape, generator=g).to(dev))
        story = drop_text(z["story"], cfg.caption_dropout, g)
        l_recon = flow_loss(model(rt, (s2 * 1000).to(dev), story, bank=bank), rv)  # memory + story only (Eq. 7)
    loss = memento_loss(l_diff, l_recon, cfg.recon_weight)
    stats = {"loss": float(loss.detach()), "l_diff": float(l_diff.detach()), "merge_ratio": ratio}
    if l_recon is not None:
        stats["l_recon"] = float(l_recon.detach())
    return loss, stats
