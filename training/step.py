"""One optimisation step of the memory DiT: encode, perturb as the papers train, predict, loss.

Per-step recipe (every random choice from the step's generator ``g``, all rates configurable):
- RoPE layout by batch kind: senorita -> "editing" (memory-v2v §0.E.2.2), multicam -> "novel_view"
  (§0.E.1.1), roam -> "context" (Context-as-Memory §3.2), memento -> "novel_view" (bank only);
- tokenizer schedule (memory-v2v §4.1.1): on 50 % of steps one level, drawn uniformly from
  fine/mid/coarse, for all memory videos, otherwise the by-rank mix; roam always "fine";
- adaptive token merging on 50 % of steps with r ~ U[0.3, 0.7] (memory-v2v §4.1.1);
- memory-token noise σ when user input and memory are both present, and user-range RoPE dropout
  p (memory-v2v §0.E.1.1, Eq. 15);
- caption dropout p_text = 0.1, story and shot caption each on its own (memento §4.1);
- Memento: the bank is built shot by shot (Eqs. 2-5), the DiT cross-attends to [story ; shot],
  L = L_diff + 0.5·L_recon with L_recon the mean over the reconstruction frames (Eqs. 7-8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.token_merge import sample_ratio
from training.losses import drop_text, flow_loss, memento_loss, noisy, sample_sigmas

KINDS = ("senorita", "multicam", "roam", "memento")
LAYOUT = {"senorita": "editing", "multicam": "novel_view", "roam": "context", "memento": "novel_view"}
LEVELS = ("fine", "mid", "coarse")


@dataclass(frozen=True)
class StepConfig:
    caption_dropout: float = 0.1  # memento §4.1
    memory_noise: float = 0.1  # σ of Eq. 15 (the paper does not give a value)
    user_dropout: float = 0.1  # p of §0.E.1.1 (not given either)
    merge_range: tuple[float, float] = (0.3, 0.7)  # memory-v2v §4.1.1
    merge_prob: float = 0.5  # merging "enabled with 50% probability" (memory-v2v §4.1.1)
    single_level_prob: float = 0.5  # one tokenizer for all memory on 50 % of steps (memory-v2v §4.1.1)
    recon_weight: float = 0.5  # λ of memento Eq. 8 (§4.1)
    sigma_shift: float = 1.0
    # Pixel frames per latent frame after the first: the Wan VAE keeps frame 0, then every 4th, so the
    # per-frame camera rows are subsampled alike. 1 for a codec without temporal compression.
    latent_time_stride: int = 4

    def __post_init__(self) -> None:
        if self.latent_time_stride < 1:
            raise ValueError(f"latent_time_stride must be >= 1, got {self.latent_time_stride}")
        for name in ("caption_dropout", "memory_noise", "user_dropout", "merge_prob", "single_level_prob"):
            v = getattr(self, name)
            if not 0 <= v <= (1 if name != "memory_noise" else float("inf")):
                raise ValueError(f"{name} must be in [0, 1] (memory_noise >= 0), got {v}")


def _stack(examples: list[dict], key: str, n: int, last: bool = False) -> list[torch.Tensor]:
    """Item j of every example's list ``key``, stacked; ``last``: keep each list's final n items."""
    lists = [list(e.get(key) or []) for e in examples]
    lists = [lst[len(lst) - n :] if last else lst[:n] for lst in lists]
    return [torch.stack([lst[j] for lst in lists]) for j in range(n)]


def collate(examples: list[dict], memory_k: int | None = None) -> dict:
    """Stack examples of one kind; list members are cut to the shortest so the batch shares one token layout.

    ``memory_k``: further cut of the memory list (the trainer draws it per batch: memory-v2v §4.1.1 samples
    1-6 memory videos per iteration).
    """
    kinds = {e.get("kind") for e in examples}
    if len(kinds) != 1:
        raise ValueError(f"a batch must hold one example kind, got {sorted(map(str, kinds))}")
    kind = kinds.pop()
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown example kind {kind!r}; known: {KINDS}")
    if memory_k is not None and memory_k < 0:
        raise ValueError(f"memory_k must be >= 0, got {memory_k}")
    out: dict = {"kind": kind, "target": torch.stack([e["target"] for e in examples])}
    out["caption"] = [e.get("caption", "") for e in examples]
    has_user = all(e.get("user") is not None for e in examples)
    if has_user:
        out["user"] = torch.stack([e["user"] for e in examples])
    k = min(len(e.get("memory", [])) for e in examples)
    k = k if memory_k is None else min(k, memory_k)
    out["memory"] = _stack(examples, "memory", k)
    if all(e.get("cams") is not None for e in examples):
        out["cams"] = {
            "target": torch.stack([e["cams"]["target"] for e in examples]),
            "memory": [torch.stack([e["cams"]["memory"][j] for e in examples]) for j in range(k)],
        }
        if has_user and all(e["cams"].get("user") is not None for e in examples):
            out["cams"]["user"] = torch.stack([e["cams"]["user"] for e in examples])
    if all(e.get("history") for e in examples):
        # Keep the most recent shots: the last bank update must see the shot just before the target (Eq. 2).
        h = min(len(e["history"]) for e in examples)
        out["history"] = _stack(examples, "history", h, last=True)
        out["story"] = [e.get("story", "") for e in examples]
        if all(len(e.get("history_captions") or []) == len(e["history"]) for e in examples):
            out["history_captions"] = [
                [e["history_captions"][len(e["history"]) - h + j] for e in examples] for j in range(h)
            ]
    recons = [_as_list(e.get("recon")) for e in examples]
    r = min(len(x) for x in recons)
    if r:
        out["recon"] = [torch.stack([x[j] for x in recons]) for j in range(r)]
        caps = [e.get("recon_captions") or [""] * r for e in examples]
        out["recon_captions"] = [[c[j] if j < len(c) else "" for c in caps] for j in range(r)]
    return out


def _as_list(recon) -> list[torch.Tensor]:
    if recon is None:
        return []
    return [recon] if isinstance(recon, torch.Tensor) else list(recon)  # one (3, 1, H, W) frame or a list


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
    z = {"kind": batch.get("kind"), "target": enc(batch["target"]), "text": text_fn(batch["caption"]).to(device)}
    z["user"] = enc(batch["user"]) if "user" in batch else None
    z["memory"] = [enc(m) for m in batch["memory"]]
    if "cams" in batch:
        z["cams"] = {
            k: (v.to(device) if k != "memory" else [c.to(device) for c in v]) for k, v in batch["cams"].items()
        }
    if "history" in batch:
        z["history"] = [enc(h) for h in batch["history"]]
        z["story"] = text_fn(batch["story"]).to(device)
        # The bank after history shot i is built for shot i+1 (Eq. 3 conditions shot queries on C_shot^t):
        # the next history shot's caption, the target's for the last. Without history captions every
        # update reads the target's caption (the examples do not carry them yet).
        caps = batch.get("history_captions")
        z["history_text"] = (
            [text_fn(c).to(device) for c in caps[1:]] + [z["text"]] if caps else [z["text"]] * len(z["history"])
        )
    if batch.get("recon"):
        z["recon"] = [enc(r) for r in batch["recon"]]
    return z


def _camera_rows(cams: dict | None, stride: int = 4) -> dict | None:
    """Pixel-frame cameras (B, F, 12) -> one per latent frame (Wan's VAE keeps frame 0, then every 4th).

    Each video keeps its own frame count (a roam context frame is one pixel frame, one latent frame).
    """
    if cams is None:
        return None
    return {k: (v[:, ::stride] if k != "memory" else [c[:, ::stride] for c in v]) for k, v in cams.items()}


@dataclass(frozen=True)
class Schedule:
    levels: str | None  # one tokenizer level for every memory video, or None: the by-rank mix
    merge_ratio: float  # 0: no merging this step


def draw_schedule(kind: str | None, cfg: StepConfig, g: torch.Generator, fixed_level: str | None = None) -> Schedule:
    """This step's tokenizer levels and merge ratio; always consumes the same four draws from ``g``."""
    u_level, pick = float(torch.rand((), generator=g)), int(torch.randint(len(LEVELS), (), generator=g))
    u_merge, r = float(torch.rand((), generator=g)), sample_ratio(*cfg.merge_range, generator=g)
    if kind == "roam":
        levels = "fine"  # Context-as-Memory §3.2: context frames join the frame axis at full resolution
    elif fixed_level is not None:
        levels = fixed_level  # an explicit MemoryDiTConfig.memory_level overrides the schedule
    else:
        levels = LEVELS[pick] if u_level < cfg.single_level_prob else None
    return Schedule(levels, r if u_merge < cfg.merge_prob else 0.0)


class FlowObjective(nn.Module):
    """The DiT plus its training loss in one module, so DDP/FSDP wrap a single forward per step
    (Memento's reconstruction branch is a second pass through the same DiT)."""

    def __init__(self, dit: nn.Module, cfg: StepConfig = StepConfig()):
        super().__init__()
        self.dit = dit
        self.cfg = cfg

    def forward(self, z: dict, g: torch.Generator, merge: bool = True) -> tuple[torch.Tensor, dict]:
        return loss_on(self.dit, z, self.cfg, g, merge)


def cross_text(story: torch.Tensor | None, shot: torch.Tensor) -> torch.Tensor:
    """Text states the DiT cross-attends to: [story ; shot] along the sequence (memento Fig. 2, Eq. 6).

    One sequence rather than two cross-attention modules keeps the pretrained Wan cross-attention
    unchanged; both captions stay separable for CFG because each is dropped (zeroed) on its own.
    """
    return shot if story is None else torch.cat([story, shot], dim=1)  # (B, Ls + L, text_dim)


def loss_on(model, z: dict, cfg: StepConfig, g: torch.Generator, merge: bool = True) -> tuple[torch.Tensor, dict]:
    """The training loss for encoded inputs ``z``; ``g`` drives every random choice (reproducible)."""
    core = model
    kind = z.get("kind")
    layout = LAYOUT.get(kind, "novel_view")
    x0 = z["target"]
    b, dev = x0.shape[0], x0.device
    sched = draw_schedule(kind, cfg, g, core.cfg.memory_level)  # first draws of g: a test replays them
    ratio = sched.merge_ratio if merge and core.merger is not None else 0.0
    shot = drop_text(z["text"], cfg.caption_dropout, g).to(dev)
    story = drop_text(z["story"], cfg.caption_dropout, g).to(dev) if z.get("story") is not None else None
    user, memory = z["user"], list(z["memory"])
    if user is not None and memory and cfg.memory_noise > 0:
        memory = [m + cfg.memory_noise * torch.randn(m.shape, generator=g).to(dev) for m in memory]
    if user is not None and memory and float(torch.rand((), generator=g)) < cfg.user_dropout:
        user = None  # train memory as an independent condition
    bank, n_updates = None, 0
    if z.get("history"):
        if core.bank is None:
            raise ValueError("a batch with history shots (memento) needs MemoryDiTConfig(bank=True)")
        # Bank selection reads the undropped captions: at inference it runs once per shot, outside CFG.
        shots = [core.bank_tokens(h) for h in z["history"]]  # each (B, N, D)
        captions = z.get("history_text") or [z["text"]] * len(shots)
        bank = core.bank.build(shots, z["story"], captions)[-1]  # M_t after one update per shot
        n_updates = len(shots)
    # A two-expert DiT (models/experts.py) draws σ on one side of its switch, the same side on every rank.
    sigma = getattr(core, "sample_sigmas", sample_sigmas)(b, g, cfg.sigma_shift)
    xt, v = noisy(x0, sigma, torch.randn(x0.shape, generator=g).to(dev))
    cams = _camera_rows(z.get("cams"), cfg.latent_time_stride) if core.camera is not None else None
    pred = model(
        xt, (sigma * 1000).to(dev), cross_text(story, shot), user=user, memory=memory, merge_ratio=ratio,
        cams=cams, bank=bank, layout=layout, memory_levels=sched.levels,
    )  # fmt: skip
    l_diff = flow_loss(pred, v)
    l_recon = _recon_loss(model, z, cfg, g, bank, layout) if bank is not None and z.get("recon") else None
    loss = memento_loss(l_diff, l_recon, cfg.recon_weight)
    stats = {
        "loss": float(loss.detach()),
        "l_diff": float(l_diff.detach()),
        "merge_ratio": ratio,
        "tokenizer": sched.levels or "mixed",
        "layout": layout,
    }
    if bank is not None:
        stats["bank_updates"] = n_updates
    if l_recon is not None:
        stats["l_recon"] = float(l_recon.detach())
    return loss, stats


def _recon_loss(model, z: dict, cfg: StepConfig, g: torch.Generator, bank: torch.Tensor, layout: str):
    """Memento Eq. 7: each reconstruction frame denoised from the bank and the story caption only.

    All frames go through one pass (stacked on the batch axis), so the loss is their mean. The shot
    caption is absent, written as zeros: the same form the DiT sees when the shot caption is dropped.
    """
    n, b, dev = len(z["recon"]), z["recon"][0].shape[0], bank.device
    r0 = torch.cat(z["recon"], dim=0)  # (n*B, C, 1, H, W), frame-major
    s2 = getattr(model, "sample_sigmas", sample_sigmas)(n * b, g, cfg.sigma_shift)
    rt, rv = noisy(r0, s2, torch.randn(r0.shape, generator=g).to(dev))
    story = drop_text(z["story"].repeat(n, 1, 1), cfg.caption_dropout, g).to(dev)
    text = cross_text(story, torch.zeros_like(z["text"]).repeat(n, 1, 1).to(dev))
    pred = model(rt, (s2 * 1000).to(dev), text, bank=bank.repeat(n, 1, 1), layout=layout)
    return flow_loss(pred, rv)
