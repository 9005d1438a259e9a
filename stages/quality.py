"""Per-sequence quality: letterbox bars, black and static stretches, blur, resolution, aesthetics.

Frames are sampled at ``sample_fps`` (``stages.sampling``: reference frames only, the nearest to
each sample time) and scaled to ``analysis_width`` inside the decoder.
Every measure lands in ``meta["quality"]``; the ones past their limit reject the sequence
with their own reason. ``meta["crop"]`` starts as the picture inside the bars.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from stages.base import Resources, Sample, Stage
from stages.sampling import FrameSampler, keep_frames
from stages.video import DecodeError

log = logging.getLogger(__name__)


def analysis_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    w = min(target_width, width)
    return w - w % 2, max(2, round(w * height / width / 2) * 2)


def detect_letterbox(grays: list[np.ndarray], src_w: int, src_h: int, bar_luma: float = 12.0) -> list[int]:
    """Picture rectangle ``[x0, y0, x1, y1]`` in source pixels, inside black bars that are dark in every frame."""
    stack = np.stack(grays)  # (T, h, w)
    _t, h, w = stack.shape
    # A bar row is black all along and in every frame; a night sky is dark on average but not
    # everywhere, so a high percentile (not the mean) decides.
    rows = np.percentile(stack.transpose(1, 0, 2).reshape(h, -1), 98, axis=1)
    cols = np.percentile(stack.transpose(2, 0, 1).reshape(w, -1), 98, axis=1)

    def inner(profile: np.ndarray) -> tuple[int, int]:
        lit = np.flatnonzero(profile >= bar_luma)
        if len(lit) == 0 or lit[-1] - lit[0] + 1 < len(profile) // 2:
            return 0, len(profile)  # all dark, or bars would eat half: a dark scene, not bars
        a, b = int(lit[0]), int(lit[-1]) + 1
        # One analysis pixel of margin where a bar was found: its edge row blends bar and picture.
        return (a + 1 if a else 0), (b - 1 if b < len(profile) else b)

    y0, y1 = inner(rows)
    x0, x1 = inner(cols)
    sx, sy = src_w / w, src_h / h
    return [int(np.ceil(x0 * sx)), int(np.ceil(y0 * sy)), int(x1 * sx), int(y1 * sy)]


def longest_run(flags: list[bool]) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


class AestheticScorer:
    """CLIP ViT-L/14 image features through the LAION linear head (768 -> 1), /10 (DESIGN.md §7)."""

    def __init__(self, clip_model: str, head_path: str) -> None:
        if not clip_model or not Path(clip_model).is_dir():
            raise ValueError(f"quality.clip_model must be a local CLIP ViT-L/14 folder, got {clip_model!r}")
        if not head_path or not Path(head_path).is_file():
            raise ValueError(f"quality.aesthetic_head must be the LAION linear head file, got {head_path!r}")
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self._torch = torch
        self.model = CLIPModel.from_pretrained(clip_model, local_files_only=True).eval()
        self.processor = CLIPProcessor.from_pretrained(clip_model, local_files_only=True)
        state = torch.load(head_path, map_location="cpu", weights_only=True)
        state = {k.split(".")[-1]: v for k, v in state.items()}  # accept "weight" or "layers.0.weight" style keys
        dim = self.model.config.projection_dim
        self.head = torch.nn.Linear(dim, 1)
        self.head.load_state_dict(state)

    def score(self, frames: list[np.ndarray]) -> float:
        with self._torch.inference_mode():
            px = self.processor(images=list(frames), return_tensors="pt")["pixel_values"]
            f = self.model.get_image_features(pixel_values=px)
            f = getattr(f, "pooler_output", f)  # transformers 5 returns an output object: (N, 768)
            f = f / f.norm(dim=-1, keepdim=True)
            return float(self.head(f).mean()) / 10.0


@dataclass
class ScoreQuality(Stage):
    sample_fps: float = 4.0
    analysis_width: int = 320
    decode_width: int = 0  # frames are decoded at this width (0: analysis_width), measured at analysis_width
    keep_frames: bool = False  # leave the decoded frames for CropSubtitles (same fps and decode width)
    bar_luma: float = 12.0
    black_luma: float = 16.0
    max_black_fraction: float = 0.2
    static_diff: float = 0.5  # mean |luma change| between samples below which a pair is static
    max_static_fraction: float = 0.5
    min_sharpness: float = 30.0  # variance of the Laplacian at analysis_width (real footage: 400-700)
    min_short_side: int = 360  # of the picture inside the bars, in source pixels
    clip_model: str = ""  # local CLIP ViT-L/14 dir; with aesthetic_head enables the aesthetic score
    aesthetic_head: str = ""  # LAION linear head (768 -> 1) state dict file
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "quality/2"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("sample_fps", "analysis_width", "bar_luma", "black_luma", "max_black_fraction", "static_diff",
        "max_static_fraction", "min_sharpness", "min_short_side", "clip_model", "aesthetic_head")

    def setup(self) -> None:
        self._sampler = FrameSampler()
        self._aesthetic = None
        if self.clip_model or self.aesthetic_head:
            self._aesthetic = AestheticScorer(self.clip_model, self.aesthetic_head)
        else:
            log.info("aesthetic score skipped: quality.clip_model and quality.aesthetic_head are not configured")

    def process(self, batch: list[Sample]) -> list[Sample]:
        if not hasattr(self, "_aesthetic"):
            self.setup()
        for s in batch:
            m = s.meta
            start, end = m["source_frames"]
            W, H = m["size"]
            step = max(1, round(m["fps"] / self.sample_fps))
            size = analysis_size(W, H, self.decode_width or self.analysis_width)
            try:
                frames = self._sampler.sample(s.source["path"], start, end, step, size)
            except DecodeError as e:
                s.reject(f"quality_{e.reason}", stage=self.name, detail=e.detail)
                continue
            if self.keep_frames:
                keep_frames(s, (s.source["path"], start, end, step, size), frames)
            q = self.measure(self._at_analysis_size([img for _, img in frames], W, H), W, H, step / m["fps"])
            m["quality"] = q
            m["crop"] = q["letterbox"]
            reason = self.verdict(q)
            if reason:
                s.reject(reason, stage=self.name, detail=str({k: v for k, v in q.items() if k != "letterbox"}))
        return batch

    def _at_analysis_size(self, imgs: list[np.ndarray], W: int, H: int) -> list[np.ndarray]:
        w, h = analysis_size(W, H, self.analysis_width)
        if imgs and imgs[0].shape[:2] != (h, w):  # thresholds such as min_sharpness hold at analysis_width
            return [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in imgs]
        return imgs

    def measure(self, imgs: list[np.ndarray], W: int, H: int, dt: float) -> dict:
        grays = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in imgs]
        box = detect_letterbox(grays, W, H, self.bar_luma)
        black = [float(g.mean()) < self.black_luma and float(np.percentile(g, 99)) < 3 * self.black_luma for g in grays]
        diffs = [float(cv2.absdiff(a, b).mean()) for a, b in itertools.pairwise(grays)]
        static = [d < self.static_diff and not (bk1 or bk2) for d, bk1, bk2 in zip(diffs, black[:-1], black[1:])]
        sharp = [float(cv2.Laplacian(g, cv2.CV_32F).var()) for g, bk in zip(grays, black) if not bk]
        q = {
            "letterbox": box,
            "short_side": min(box[2] - box[0], box[3] - box[1]),
            "black_fraction": round(sum(black) / len(black), 4),
            "longest_black_s": round(longest_run(black) * dt, 2),
            "static_fraction": round(sum(static) / max(len(static), 1), 4),
            "longest_static_s": round(longest_run(static) * dt, 2),
            "motion": round(float(np.median(diffs)) if diffs else 0.0, 3),
            "sharpness": round(float(np.median(sharp)) if sharp else 0.0, 2),
            "aesthetic": None,
        }
        if self._aesthetic is not None:
            q["aesthetic"] = round(self._aesthetic.score(imgs[:: max(1, len(imgs) // 4)]), 4)
        return q

    def verdict(self, q: dict) -> str:
        if q["short_side"] < self.min_short_side:
            return "low_resolution"
        if q["black_fraction"] > self.max_black_fraction:
            return "mostly_black"
        if q["static_fraction"] > self.max_static_fraction:
            return "mostly_static"
        if q["sharpness"] < self.min_sharpness:
            return "blurry"
        return ""
