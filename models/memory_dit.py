"""A memory-conditioned video DiT on a diffusers ``WanTransformer3DModel`` backbone.

The backbone's own time/text embedder, blocks and output head are reused unchanged; what
changes is the token sequence the blocks see:

    [ target (1x2x2) | user input (1x2x2) | memory videos (1x4x4 top-3, 1x8x8 rest, or one
      level for all) | Memento bank tokens ]

with per-token RoPE whose time ranges follow the task's layout (models/rope.py: novel view,
editing, context), optional per-video camera embeddings (Eq. 17), and adaptive token
merging of memory frames at chosen blocks. The layout and the tokenizer level of each memory
video are per-call arguments, so the training step can follow the papers' per-step schedules
(training/step.py). Only target tokens are decoded, so conditioning tokens are context, never
updated outputs (Context-as-Memory §3.2: frame-axis concatenation, only the target denoised).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from models.camera_embed import CameraEmbed
from models.dynamic_tokenizer import PATCHES, DynamicTokenizer, levels_for
from models.memento_memory import DualPathMemory
from models.rope import LAYOUTS, MEMORY, TARGET, USER, grid_positions, rope_cos_sin, video_times
from models.token_layout import FrameSpan, TokenSeq, concat
from models.token_merge import TokenMerger, responsiveness


@dataclass(frozen=True)
class MemoryDiTConfig:
    merge_blocks: tuple[int, ...] = (10, 20)  # merge before these 0-based block indices (paper: 10, 20 of 30)
    merge_stride: int = 2  # each merged frame keeps 1/stride² of its tokens
    top_mid: int = 3  # memory videos tokenised at 1x4x4; the rest at 1x8x8
    # A fixed level for every memory video on every call (overrides the training schedule); None: the
    # caller's per-call levels, else the by-rank mix. "fine": all at 1x2x2 (Context-as-Memory).
    memory_level: str | None = None
    camera: bool = False
    bank: bool = False  # Memento dual-path memory bank
    bank_k: int = 16
    merge_user: bool = False  # also merge low-responsive user-input frames (the paper leaves this open)
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.merge_stride < 1:
            raise ValueError(f"merge_stride must be >= 1, got {self.merge_stride}")
        if self.memory_level not in (None, "fine", "mid", "coarse"):
            raise ValueError(f"memory_level must be None|fine|mid|coarse, got {self.memory_level!r}")


class MemoryDiT(nn.Module):
    def __init__(self, backbone: nn.Module, cfg: MemoryDiTConfig = MemoryDiTConfig()):
        super().__init__()
        bc = backbone.config
        if tuple(bc.patch_size) != (1, 2, 2):
            raise ValueError(f"the backbone must patchify 1x2x2 (Wan), got patch_size={bc.patch_size}")
        self.backbone = backbone
        self.cfg = cfg
        self.dim = bc.num_attention_heads * bc.attention_head_dim
        self.head_dim = bc.attention_head_dim
        self.tokenizer = DynamicTokenizer(bc.in_channels, self.dim)
        self.tokenizer.init_from(backbone.patch_embedding)
        n_blocks = len(backbone.blocks)
        bad = [b for b in cfg.merge_blocks if not 0 <= b < n_blocks]
        if bad:
            raise ValueError(f"merge_blocks {bad} outside the backbone's {n_blocks} blocks")
        self.merger = TokenMerger(self.dim, cfg.merge_stride) if cfg.merge_blocks else None
        self.camera = CameraEmbed(self.dim, n_blocks) if cfg.camera else None
        self.bank = DualPathMemory(self.dim, bc.text_dim, k=cfg.bank_k) if cfg.bank else None

    # ---- tokenisation -------------------------------------------------------------------
    def _video_tokens(self, lat, kind, video, t_target, level, layout, reverse=False, cams=None, offset=0):
        # lat: (B, C, F, H, W); cams: (B, F, 12) or None -> TokenSeq
        if level == "target":
            x = self.backbone.patch_embedding(lat)  # (B, D, F, H/2, W/2)
            f, h, w = x.shape[2:]
            x, stride = x.flatten(2).transpose(1, 2), 1.0
        else:
            tok = self.tokenizer(lat, level)
            x, f, h, w, stride = tok.x, tok.frames, tok.h, tok.w, tok.stride
        times = video_times(layout, kind, video, f, t_target, reverse, offset)
        pos = grid_positions(times, h, w, stride).to(lat.device)
        spans = [FrameSpan(kind, video, i * h * w, h, w) for i in range(f)]
        c = cams.repeat_interleave(h * w, dim=1) if cams is not None else None  # (B, F*h*w, 12)
        return TokenSeq(x=x, pos=pos, spans=spans, cams=c)

    def memory_levels(self, n: int, levels: str | list[str] | None = None) -> list[str]:
        """Tokenizer level per memory video: ``levels`` (one for all, or one each), else the config's
        fixed level, else the dynamic by-rank mix (memory-v2v §3.2.2: top-3 at 1x4x4, rest 1x8x8)."""
        if levels is None:
            levels = self.cfg.memory_level
        if levels is None:
            return levels_for(n, self.cfg.top_mid)
        out = [levels] * n if isinstance(levels, str) else list(levels)
        bad = [lv for lv in out if lv not in PATCHES]
        if len(out) != n or bad:
            raise ValueError(f"memory_levels must name one of {sorted(PATCHES)} per memory video ({n}), got {levels}")
        return out

    def build_sequence(
        self,
        target,
        user=None,
        memory=(),
        reverse_memory=False,
        cams=None,
        bank=None,
        layout: str = "novel_view",
        memory_levels: str | list[str] | None = None,
    ) -> TokenSeq:
        """The joint token sequence. ``memory``: latents in retrieval order, most relevant first.

        ``cams``: optional dict with "target", "user" (B, F, 12) and "memory" (list of (B, F, 12)).
        ``layout``: RoPE time ranges, one of rope.LAYOUTS; ``memory_levels``: see ``memory_levels``.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; known: {LAYOUTS}")
        t = target.shape[2]
        cams = cams or {}
        parts = [self._video_tokens(target, TARGET, 0, t, "target", layout, cams=cams.get("target"))]
        if user is not None:
            parts.append(self._video_tokens(user, USER, 0, t, "fine", layout, cams=cams.get("user")))
        levels = self.memory_levels(len(memory), memory_levels)
        mem_cams = cams.get("memory") or [None] * len(memory)
        offset = 0  # latent frames of the memory videos so far (the context layout lines them up)
        for j, (m, lvl) in enumerate(zip(memory, levels)):
            parts.append(self._video_tokens(m, MEMORY, j, t, lvl, layout, reverse_memory, mem_cams[j], offset))
            offset += m.shape[2]
        if bank is not None:
            # Bank tokens are a bag of selected latents: one shared position at the memory range start.
            b, n, _ = bank.shape
            pos = torch.zeros(n, 3, dtype=torch.float64, device=bank.device)
            pos[:, 0] = 2 * t
            c = torch.zeros(b, n, 12, device=bank.device) if self.camera is not None else None
            parts.append(TokenSeq(x=bank, pos=pos, spans=[FrameSpan(MEMORY, -1, 0, 1, n)], cams=c))
        if self.camera is not None:
            for i, p in enumerate(parts):
                if p.cams is None:
                    parts[i] = replace(p, cams=torch.zeros(*p.x.shape[:2], 12, device=p.x.device))
        return concat(parts)

    def bank_tokens(self, shot_latents: torch.Tensor) -> torch.Tensor:
        """VAE latents of a shot (B, C, F, H, W) -> candidate memory tokens (B, N, D) at 1x4x4."""
        return self.tokenizer(shot_latents, "mid").x

    # ---- blocks -------------------------------------------------------------------------
    @torch.no_grad()
    def _responsiveness(self, block, seq: TokenSeq, tproj: torch.Tensor) -> torch.Tensor:
        if hasattr(block, "unshard"):  # FSDP2: gather this block's weights now; its forward reuses them
            block.unshard()
        shift, scale = (block.scale_shift_table + tproj.float()).chunk(6, dim=1)[:2]
        h = (block.norm1(seq.x.float()) * (1 + scale) + shift).type_as(seq.x)
        attn = block.attn1
        if getattr(attn, "fused_projections", False):
            q, k, _ = attn.to_qkv(h).chunk(3, dim=-1)
        else:
            q, k = attn.to_q(h), attn.to_k(h)
        q, k = attn.norm_q(q), attn.norm_k(k)  # (B, N, D)
        frames = [seq.spans[i] for i in seq.memory_frames(self.cfg.merge_user)]
        return responsiveness(q[:, : seq.n_target], [k[:, s.start : s.stop] for s in frames])

    def forward(
        self,
        target: torch.Tensor,  # (B, C, T, H, W) noisy target latents
        timestep: torch.Tensor,  # (B,) in [0, 1000)
        text: torch.Tensor,  # (B, L, text_dim) text-encoder states (zeros = dropped caption)
        user: torch.Tensor | None = None,  # (B, C, T, H, W)
        memory: tuple[torch.Tensor, ...] | list[torch.Tensor] = (),  # each (B, C, Fm, H, W), most relevant first
        merge_ratio: float = 0.0,
        reverse_memory: bool = False,
        cams: dict | None = None,
        bank: torch.Tensor | None = None,  # (B, Nb, D) Memento memory bank tokens
        return_stats: bool = False,
        layout: str = "novel_view",  # RoPE time ranges: novel_view | editing | context (models/rope.py)
        memory_levels: str | list[str] | None = None,  # tokenizer level(s) of the memory videos
    ):
        bb = self.backbone
        b, _c, t, hh, ww = target.shape
        seq = self.build_sequence(target, user, memory, reverse_memory, cams, bank, layout, memory_levels)
        n_target = seq.n_target
        temb, tproj, enc, _ = bb.condition_embedder(timestep, text, None)
        tproj = tproj.unflatten(1, (6, -1))  # (B, 6, D)
        stats = {"tokens_in": seq.x.shape[1], "tokens_per_block": []}
        rot, rot_pos = None, None
        for i, block in enumerate(bb.blocks):
            if (
                self.merger is not None
                and i in self.cfg.merge_blocks
                and merge_ratio > 0
                and seq.memory_frames(self.cfg.merge_user)
            ):
                seq = self.merger(seq, self._responsiveness(block, seq, tproj), merge_ratio, self.cfg.merge_user)
            if rot_pos is not seq.pos:
                rot, rot_pos = rope_cos_sin(seq.pos, self.head_dim), seq.pos
                rot = (rot[0].to(seq.x.device), rot[1].to(seq.x.device))
            x = self.camera(seq.x, seq.cams, i) if self.camera is not None else seq.x
            if self.cfg.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, enc, tproj, rot, use_reentrant=False)
            else:
                x = block(x, enc, tproj, rot)
            seq = replace(seq, x=x)
            stats["tokens_per_block"].append(x.shape[1])
        assert seq.n_target == n_target  # merging never touches the target
        shift, scale = (bb.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        out = (bb.norm_out(seq.x[:, :n_target].float()) * (1 + scale) + shift).type_as(seq.x)
        out = bb.proj_out(out)  # (B, T*H/2*W/2, C*4)
        out = out.reshape(b, t, hh // 2, ww // 2, 1, 2, 2, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        out = out.flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, T, H, W)
        return (out, stats) if return_stats else out
