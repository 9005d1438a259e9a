"""Decoded shard samples -> training examples, one builder per corpus layout, as each paper trains.

The builders read exactly what the corpus writers store (pipelines/schema.py): member names,
shot lists with inclusive ends, captions under ``captions``, stacked per-scene poses, CSR
co-visibility lists. A sample that cannot make an example returns None and is skipped (the
loader counts it), never crashing a long run. Videos are (3, F, H, W) floats in [-1, 1]; F is
1 + 4k so the Wan VAE maps it to 1 + k latents. An example's ``kind`` selects the recipe in
training/step.py (RoPE layout, tokenizers, Memento bank).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.retrieval import choose, rank_segments

MEMORY_MODES = ("paper", "retrieved", "random", "none")


@dataclass(frozen=True)
class ExampleConfig:
    frames: int = 9  # pixel frames per target / user / memory clip (1 + 4k)
    size: tuple[int, int] = (64, 64)  # (H, W) after resizing, multiple of 16
    memory_k: int = 6  # most memory videos per example (memory-v2v §4.1.1: 1–6; the trainer draws per batch)
    memory_mode: str = "paper"  # paper: each corpus as its paper trains | retrieved | random | none
    memory_frames: int | None = None  # frames per memory clip (default: frames)
    context_size: int = 20  # Context-as-Memory §4.1: 20 context frames

    def __post_init__(self) -> None:
        if (self.frames - 1) % 4:
            raise ValueError(f"frames must be 1 + 4k for the Wan VAE, got {self.frames}")
        if self.size[0] % 16 or self.size[1] % 16:
            raise ValueError(f"size must be multiples of 16 (VAE 8x, patch 2x), got {self.size}")
        if self.memory_mode not in MEMORY_MODES:
            raise ValueError(f"memory_mode must be one of {MEMORY_MODES}, got {self.memory_mode!r}")
        if self.memory_k < 0 or self.context_size < 1:
            raise ValueError(f"need memory_k >= 0 and context_size >= 1, got {self.memory_k}, {self.context_size}")


def to_clip(frames: np.ndarray, n: int, size: tuple[int, int]) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, n, h, w) float in [-1, 1], n frames evenly sampled."""
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    x = torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(0, 3, 1, 2).float()  # (n, 3, H, W)
    if x.shape[-2:] != size:
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (x / 127.5 - 1.0).permute(1, 0, 2, 3).contiguous()


def cam_rows(poses: np.ndarray, n: int) -> torch.Tensor:
    """(T, 4, 4) camera-to-world -> (n, 12) [R|t] rows at the frames ``to_clip`` samples (Eq. 17's cam_v)."""
    idx = np.linspace(0, len(poses) - 1, n).round().astype(int)
    return torch.from_numpy(np.ascontiguousarray(poses[idx][:, :3, :4], np.float32)).flatten(1)


def _mode(cfg: ExampleConfig, paper: str) -> str:
    return paper if cfg.memory_mode == "paper" else cfg.memory_mode


def senorita_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Memory-V2V long editing: target = the original target clip, user = the source clip, memory =
    segments of the FramePack extension. ``paper``: memory-v2v §0.E.2.1 samples them at random from the
    extended part, and §0.E.2.2 gives the immediately preceding segment its own RoPE range, so memory[0]
    is the segment adjacent to the target (the paper does not say it is always drawn; we always include
    it, since that slot exists for it) and the rest are random. ``retrieved``: Alg. 2 (most recent first,
    then by DINOv2 similarity to the source); ``random``: segments at random, none forced (an ablation)."""
    meta = s.get("json") or {}
    src, tgt, ext = s.get("source.mp4"), s.get("target.mp4"), s.get("target_extended.mp4")
    if src is None or tgt is None or ext is None:
        return None
    lo, hi = (meta.get("extension") or {}).get("memory_frames", [len(tgt), len(ext)])
    spans = sorted((int(a), int(b)) for a, b in (meta.get("segments") or {}).get("target", []))
    spans = [(a, b) for a, b in spans if lo <= a < b <= min(hi, len(ext))]  # rows of target_dino, in time order
    pick: list[int] = []
    if spans and cfg.memory_mode != "none" and cfg.memory_k:
        if cfg.memory_mode == "retrieved":
            descs, query = s.get("target_dino.npy"), s.get("source_dino.npy")
            if descs is None or query is None or len(descs) != len(spans):
                return None  # no index to retrieve from: not a retrieval example
            order, _ = rank_segments(np.asarray(query).mean(0), np.asarray(descs)[::-1], enforce_recent_first=True)
            pick = [len(spans) - 1 - int(i) for i in order]  # back to time order: 0 = adjacent, ranked first
        elif cfg.memory_mode == "random":
            pick = [int(i) for i in rng.permutation(len(spans))]
        else:
            rest = [int(i) for i in rng.permutation(np.arange(1, len(spans)))]
            pick = [0, *rest]
        pick = pick[: cfg.memory_k]
    mf = cfg.memory_frames or cfg.frames
    return {
        "kind": "senorita",
        "target": to_clip(tgt, cfg.frames, cfg.size),
        "user": to_clip(src, cfg.frames, cfg.size),
        "memory": [to_clip(ext[spans[i][0] : spans[i][1]], mf, cfg.size) for i in pick],
        "caption": str(meta.get("instruction", "")),
    }


def _scene_caption(meta: dict, cam: str) -> str:
    caps = meta.get("captions")
    got = caps.get(cam) if isinstance(caps, dict) else caps
    if isinstance(got, list) and got:
        got = got[0]
    return got.get("caption", "") if isinstance(got, dict) else str(got or "")


def multicam_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Memory-V2V novel view synthesis (§3.2-3.3, §0.E.1): target = one camera's video, user = another
    camera's video of the scene (the input to re-render), memory = the other videos ranked by the stored
    VideoFOV scores against the target (Alg. 1, the stored top-k is this ranking's prefix); every video
    carries its own camera rows (Eq. 17)."""
    meta = s.get("json") or {}
    cams, poses, scores = meta.get("cameras") or [], s.get("poses.npy"), s.get("scores.npy")
    n = len(cams)
    if n < 2 or poses is None or np.shape(poses)[0] != n or any(f"{c}.mp4" not in s for c in cams):
        return None
    i, u = (int(x) for x in rng.choice(n, size=2, replace=False))
    others = [j for j in range(n) if j not in (i, u)]
    ranked = None
    if scores is not None and np.shape(scores) == (n, n):
        ranked = np.argsort(-np.asarray(scores)[i, others], kind="stable")
    mode = _mode(cfg, "retrieved")
    if mode == "retrieved" and ranked is None:
        return None
    pick = [others[j] for j in choose(mode, cfg.memory_k, len(others), rng, ranked)]
    mf = cfg.memory_frames or cfg.frames
    return {
        "kind": "multicam",
        "target": to_clip(s[f"{cams[i]}.mp4"], cfg.frames, cfg.size),
        "user": to_clip(s[f"{cams[u]}.mp4"], cfg.frames, cfg.size),
        "memory": [to_clip(s[f"{cams[j]}.mp4"], mf, cfg.size) for j in pick],
        "cams": {"target": cam_rows(poses[i], cfg.frames), "user": cam_rows(poses[u], cfg.frames),
                 "memory": [cam_rows(poses[j], mf) for j in pick]},
        "caption": _scene_caption(meta, cams[i]),
    }


def context_frames(s: dict, start: int, end: int, k: int, rng: np.random.Generator) -> list[int]:
    """Context-as-Memory's retrieval (§3.3) for target frames [start, end): the earlier frames whose
    view overlaps a target frame's, one drawn at random per run of adjacent co-visible frames, the
    most recent frame always included, at most ``k`` (random among the rest when there are more).
    Most recent first."""
    off, rs, rl = (s.get(f"covis_{x}.npy") for x in ("offsets", "run_start", "run_len"))
    runs: list[tuple[int, int]] = []
    if off is not None and rs is not None and rl is not None:
        for i in range(start, min(end, len(off) - 1)):
            for r in range(int(off[i]), int(off[i + 1])):
                a, b = int(rs[r]), min(int(rs[r] + rl[r]), start)  # context precedes the target
                if a < b:
                    runs.append((a, b))
    merged: list[list[int]] = []  # runs seen from different target frames overlap: one group each
    for a, b in sorted(runs):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    # The group holding the most recent frame is represented by it; every other group gives one frame.
    picks = sorted(int(rng.integers(a, b)) for a, b in merged if not a <= start - 1 < b)
    if len(picks) > k - 1:
        picks = sorted(int(x) for x in rng.choice(picks, size=k - 1, replace=False))
    return [start - 1, *reversed(picks)]


def roam_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Context-as-Memory (§3.2-3.3, Alg. 1): target = ``frames`` consecutive frames of a long roam, context
    = up to 20 earlier co-visible frames (``context_frames``), each its own 1-frame memory concatenated
    along the frame axis at full resolution; every frame carries its camera. Only the target is denoised."""
    meta, video, poses = s.get("json") or {}, s.get("roam.mp4"), s.get("poses.npy")
    if video is None or poses is None or len(poses) != len(video) or len(video) < cfg.frames + 1:
        return None
    start = int(rng.integers(1, len(video) - cfg.frames + 1))
    mode = _mode(cfg, "retrieved")
    if mode == "retrieved":
        ctx = context_frames(s, start, start + cfg.frames, cfg.context_size, rng)
    else:
        ctx = choose(mode, cfg.context_size, start, rng)  # random / none ablations over all earlier frames
    tgt = slice(start, start + cfg.frames)
    return {
        "kind": "roam",
        "target": to_clip(video[tgt], cfg.frames, cfg.size),
        "memory": [to_clip(video[j : j + 1], 1, cfg.size) for j in ctx],
        "cams": {"target": cam_rows(poses[tgt], cfg.frames), "memory": [cam_rows(poses[j : j + 1], 1) for j in ctx]},
        "caption": _scene_caption({"captions": meta.get("captions")}, ""),
    }


def memento_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Memento (§3.2-3.3): target = shot t >= 2 of the sequence, history = shots 1..t-1 in time order (the
    bank grows shot by shot from them), story and shot captions, and the sequence's reconstruction frames
    with their captions (Eq. 7). Shot ends are inclusive, as SplitSequences writes them."""
    meta, clip = s.get("json") or {}, s.get("clip.mp4")
    if clip is None:
        return None
    shots = [(int(a), int(b) + 1) for a, b in meta.get("shots") or [] if 0 <= a <= b < len(clip)]
    if len(shots) < 2:
        return None
    caps = meta.get("captions") or {}
    shot_caps = caps.get("shots") or []
    t = int(rng.integers(1, len(shots)))
    mf = cfg.memory_frames or cfg.frames
    recon = [s[k] for k in ("recon0.jpg", "recon1.jpg") if k in s]
    return {
        "kind": "memento",
        "target": to_clip(clip[shots[t][0] : shots[t][1]], cfg.frames, cfg.size),
        "history": [to_clip(clip[a:b], mf, cfg.size) for a, b in shots[:t]],
        "caption": str(shot_caps[t]) if t < len(shot_caps) else "",
        "history_captions": [str(c) for c in shot_caps[:t]] + [""] * max(0, t - len(shot_caps)),
        "story": str(caps.get("story", "")),
        "recon": [to_clip(r[None], 1, cfg.size) for r in recon],  # each (3, 1, H, W)
        "recon_captions": [str(c) for c in (caps.get("recon") or [])][: len(recon)],
    }


def build_example(s: dict, corpus: str, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """The example of one decoded sample of ``corpus`` (a multi-camera dataset holds scenes and roams)."""
    if corpus.startswith("senorita_long"):
        return senorita_example(s, cfg, rng)
    if corpus.startswith("memento"):
        return memento_example(s, cfg, rng)
    if corpus.startswith("multicam"):
        layout = (s.get("json") or {}).get("layout")
        builder = {"multicam": multicam_example, "cam": roam_example}.get(layout)
        return builder(s, cfg, rng) if builder else None
    raise ValueError(f"no training example builder for corpus {corpus!r}; known: senorita_long, memento, multicam")
