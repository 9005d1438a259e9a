"""Decoded shard samples -> training examples (pixels in [-1, 1], memory chosen at load time).

One builder per corpus, each tolerant of missing optional members: a sample that cannot make
an example returns None and is skipped (counted by the loader), never crashing a long run.
Videos are (3, F, H, W) float tensors; F is 1 + 4k so the Wan VAE maps it to 1 + k latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.retrieval import choose, rank_segments


@dataclass(frozen=True)
class ExampleConfig:
    frames: int = 9  # pixel frames per target / user / memory clip (1 + 4k)
    size: tuple[int, int] = (64, 64)  # (H, W) after resizing, multiple of 16
    memory_k: int = 4
    memory_mode: str = "retrieved"  # retrieved | random | none
    memory_frames: int | None = None  # frames per memory clip (default: frames)

    def __post_init__(self) -> None:
        if (self.frames - 1) % 4:
            raise ValueError(f"frames must be 1 + 4k for the Wan VAE, got {self.frames}")
        if self.size[0] % 16 or self.size[1] % 16:
            raise ValueError(f"size must be multiples of 16 (VAE 8x, patch 2x), got {self.size}")
        if self.memory_mode not in ("retrieved", "random", "none"):
            raise ValueError(f"memory_mode must be retrieved|random|none, got {self.memory_mode!r}")


def to_clip(frames: np.ndarray, n: int, size: tuple[int, int]) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, n, h, w) float in [-1, 1], n frames evenly sampled."""
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    x = torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(0, 3, 1, 2).float()  # (n, 3, H, W)
    if x.shape[-2:] != size:
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (x / 127.5 - 1.0).permute(1, 0, 2, 3).contiguous()


def _spans(segments, lo: int, hi: int, length: int) -> list[tuple[int, int]]:
    """Segments [s, e) inside [lo, hi); from meta (lists or dicts) or cut every ``length`` frames.

    ``SegmentDescriptors`` writes ``meta["segments"]`` as a dict whose ``"target"`` list holds
    the memory segments of the extended clip (one per row of ``target_dino``).
    """
    if isinstance(segments, dict):
        segments = segments.get("target")
    out = []
    for s in segments or []:
        a, b = (s.get("start"), s.get("end")) if isinstance(s, dict) else (s[0], s[1])
        if a is not None and b is not None and lo <= a < b <= hi:
            out.append((int(a), int(b)))
    if not out:
        out = [(a, min(a + length, hi)) for a in range(lo, hi - 1, length)]
    return out


def senorita_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Target = the original target clip, user = the source clip, memory = extended segments."""
    meta = s.get("json") or {}
    ext = s.get("target_extended.mp4")
    src, tgt = s.get("source.mp4"), s.get("target.mp4")
    if src is None or (tgt is None and ext is None):
        return None
    full = ext if ext is not None else tgt
    m_lo, m_hi = (meta.get("extension") or {}).get("memory_frames", [len(tgt) if tgt is not None else 0, len(full)])
    m_hi = min(m_hi, len(full))
    spans = _spans(meta.get("segments"), m_lo, m_hi, max(len(src), 2)) if m_hi - m_lo >= 2 else []
    ranked = None
    if spans and cfg.memory_mode == "retrieved":
        descs = s.get("target_dino.npy")
        query = s.get("source_dino.npy")
        if descs is not None and query is not None and len(descs) >= len(spans):
            cache = np.asarray(descs[-len(spans) :])[::-1]  # memory segments, farthest first: last = adjacent
            order, _ = rank_segments(np.asarray(query).mean(0), cache, enforce_recent_first=True)
            ranked = len(spans) - 1 - np.asarray(order)  # back to span indices
        else:
            ranked = np.arange(len(spans))  # no descriptors: nearest in time first
    pick = choose(cfg.memory_mode, cfg.memory_k, len(spans), rng, ranked)
    mf = cfg.memory_frames or cfg.frames
    return {
        "target": to_clip(tgt if tgt is not None else full[: len(src)], cfg.frames, cfg.size),
        "user": to_clip(src, cfg.frames, cfg.size),
        "memory": [to_clip(full[a:b], mf, cfg.size) for a, b in (spans[i] for i in pick)],
        "caption": str(meta.get("instruction", "")),
    }


def _camera_videos(s: dict) -> list[str]:
    return sorted(k for k in s if k.endswith(".mp4") and k.startswith("cam"))


def multicam_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Target = one camera's video; memory = the scene's other videos ranked by VideoFOV score."""
    meta = s.get("json") or {}
    vids = _camera_videos(s)
    if len(vids) < 2:
        return None
    i = int(rng.integers(len(vids)))
    scores = next((v for k, v in s.items() if k.endswith(".npy") and "score" in k), None)
    others = [j for j in range(len(vids)) if j != i]
    ranked = None
    if scores is not None and np.shape(scores) == (len(vids), len(vids)):
        row = np.asarray(scores)[i, others]
        ranked = np.argsort(-row, kind="stable")
    elif cfg.memory_mode == "retrieved":
        return None  # no index to retrieve from: not a retrieval example
    pick = [others[j] for j in choose(cfg.memory_mode, cfg.memory_k, len(others), rng, ranked)]
    ex = {
        "target": to_clip(s[vids[i]], cfg.frames, cfg.size),
        "memory": [to_clip(s[vids[j]], cfg.memory_frames or cfg.frames, cfg.size) for j in pick],
        "caption": str(
            (meta.get("captions") or [""])[0] if isinstance(meta.get("captions"), list) else meta.get("caption", "")
        ),
    }
    poses = next((v for k, v in s.items() if k.endswith(".npy") and "pose" in k), None)
    if poses is not None and np.ndim(poses) == 4 and len(poses) == len(vids):
        cam = lambda j: (
            torch.from_numpy(
                np.asarray(poses[j])[np.linspace(0, len(poses[j]) - 1, cfg.frames).round().astype(int)][:, :3, :4]
            )
            .float()
            .flatten(1)
        )
        ex["cams"] = {"target": cam(i), "memory": [cam(j) for j in pick]}
    return ex


def memento_example(s: dict, cfg: ExampleConfig, rng: np.random.Generator) -> dict | None:
    """Target = one shot (not the first); history = earlier shots; recon = a subject frame."""
    meta = s.get("json") or {}
    clip = s.get("clip.mp4")
    shots = meta.get("shots") or []
    if clip is None or len(shots) < 2:
        return None
    spans = _spans(shots, 0, len(clip), len(clip))
    if len(spans) < 2:
        return None
    t = int(rng.integers(1, len(spans)))
    a, b = spans[t]
    shot_caps = [(sh.get("caption", "") if isinstance(sh, dict) else "") for sh in shots]
    caps = meta.get("captions") or {}
    story = caps.get("story", "") if isinstance(caps, dict) else ""
    recon = next((v for k, v in sorted(s.items()) if k.startswith("recon") and k.endswith((".jpg", ".png"))), None)
    ex = {
        "target": to_clip(clip[a:b], cfg.frames, cfg.size),
        "history": [to_clip(clip[x:y], cfg.memory_frames or cfg.frames, cfg.size) for x, y in spans[:t]],
        "caption": shot_caps[t] if t < len(shot_caps) else "",
        "story": str(story),
    }
    if recon is not None:
        ex["recon"] = to_clip(recon[None], 1, cfg.size)  # (3, 1, H, W)
    return ex


BUILDERS = {"senorita_long": senorita_example, "multicam": multicam_example, "memento": memento_example}


def example_builder(corpus: str):
    for name, fn in BUILDERS.items():
        if corpus.startswith(name):
            return fn
    raise ValueError(f"no training example builder for corpus {corpus!r}; known: {sorted(BUILDERS)}")
