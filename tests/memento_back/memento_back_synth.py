"""Generated footage with ground-truth boxes and identities, for tracking tests and the benchmark.

Figures are coloured bodies with heads moving on straight paths; scenarios cover crossing with
occlusion (the nearer figure is drawn last), leaving the frame and re-entering, and a cut between
two shots. HOG does not fire on these drawings, so tests drive the tracker with ``NoisyGT``, a
detector that returns jittered ground-truth boxes with misses, weak scores and false positives.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from models.detectors import Detections


@dataclass
class Figure:
    id: int
    color: tuple[int, int, int]
    size: tuple[int, int]  # body width, height in pixels
    path: list[tuple[int, float, float]]  # keyframes (frame, centre x, centre y); linear in between
    depth: float  # larger is nearer (drawn later)
    grow: float = 0.0  # the size is multiplied by up to 1 + grow at the end of the path (walking closer)

    def centre(self, f: int) -> tuple[float, float] | None:
        ks = self.path
        if f < ks[0][0] or f > ks[-1][0]:
            return None
        for (f0, x0, y0), (f1, x1, y1) in itertools.pairwise(ks):
            if f0 <= f <= f1:
                a = (f - f0) / max(f1 - f0, 1)
                return x0 + a * (x1 - x0), y0 + a * (y1 - y0)
        return ks[-1][1], ks[-1][2]

    def dims(self, f: int) -> tuple[int, int]:
        a = (f - self.path[0][0]) / max(self.path[-1][0] - self.path[0][0], 1)
        k = 1 + self.grow * a
        return round(self.size[0] * k), round(self.size[1] * k)


def render(figures: list[Figure], frames: int, w: int = 320, h: int = 192, seed: int = 0,
           cut_at: int | None = None):
    """Returns (frames THWC uint8, gt: list per frame of {id: (visible_box xyxy, visible_fraction)})."""
    rng = np.random.default_rng(seed)
    bg = [rng.integers(60, 110, (h, w, 3), dtype=np.uint8), rng.integers(120, 170, (h, w, 3), dtype=np.uint8)]
    video = np.empty((frames, h, w, 3), np.uint8)
    gt = []
    for f in range(frames):
        img = bg[1 if cut_at is not None and f >= cut_at else 0].copy()
        owner = np.full((h, w), -1, np.int32)
        boxes = {}
        for fig in sorted(figures, key=lambda g: g.depth):
            c = fig.centre(f)
            if c is None:
                continue
            bw, bh = fig.dims(f)
            x0, y0 = int(c[0] - bw / 2), int(c[1] - bh / 2)
            box = np.array([x0, y0, x0 + bw, y0 + bh], np.float32)
            xs, ys = slice(max(x0, 0), max(min(x0 + bw, w), 0)), slice(max(y0, 0), max(min(y0 + bh, h), 0))
            img[ys, xs] = fig.color
            owner[ys, xs] = fig.id
            head = int(bw * 0.35)  # a darker head block on top: something with structure to look at
            img[max(y0, 0) : max(min(y0 + head, h), 0), max(x0 + bw // 4, 0) : max(min(x0 + 3 * bw // 4, w), 0)] = (
                np.array(fig.color) * 0.6).astype(np.uint8)
            boxes[fig.id] = (box, bw * bh)
        frame_gt = {}
        for fid, (box, full) in boxes.items():
            visible = int((owner == fid).sum())
            if visible / full < 0.3:
                continue  # mostly hidden or out of frame: not a ground-truth object this frame
            clipped = np.clip(box, 0, [w, h, w, h])
            frame_gt[fid] = (clipped, visible / full)
        video[f] = img
        gt.append(frame_gt)
    return video, gt


def crossing_scene(frames: int = 90) -> tuple[list[Figure], int | None]:
    """Two figures cross (blue passes in front of red), a third leaves right and re-enters. Blue is
    the largest and most present, so it is the primary subject; it grows as it walks, so its
    largest boxes are its last frames."""
    red = Figure(1, (200, 40, 40), (36, 90), [(0, 40, 110), (frames - 1, 280, 110)], depth=1)
    blue = Figure(2, (40, 60, 210), (36, 88), [(0, 280, 110), (frames - 1, 40, 100)], depth=2, grow=0.25)
    green = Figure(3, (40, 190, 60), (30, 76), [(0, 160, 60), (30, 345, 60), (45, 345, 60), (frames - 1, 200, 80)],
                   depth=0)
    return [red, blue, green], None


def cut_scene(frames: int = 120, cut_at: int = 60) -> tuple[list[Figure], int]:
    """Shot A: red walks and grows; shot B (after a cut): red again elsewhere, growing larger, plus a
    small blue. Ground truth: red is primary; its largest boxes are the last frame of B, then of A."""
    red_a = Figure(1, (200, 40, 40), (36, 90), [(0, 80, 100), (cut_at - 1, 120, 100)], depth=1, grow=0.2)
    red_b = Figure(1, (200, 40, 40), (44, 110), [(cut_at, 220, 96), (frames - 1, 200, 96)], depth=1, grow=0.2)
    blue = Figure(2, (40, 60, 210), (24, 60), [(cut_at, 60, 120), (frames - 1, 100, 120)], depth=0)
    return [red_a, red_b, blue], cut_at


class NoisyGT:
    """A detector that reads the ground truth: jitter, misses, weak scores, occasional false positives.
    Frames must be fed in order, one call per ground-truth frame (``step`` skips sampled-out frames)."""

    name = "noisy_gt"

    def __init__(self, gt, jitter: float = 2.0, miss: float = 0.1, false_pos: float = 0.05, step: int = 1,
                 seed: int = 0) -> None:
        self.gt, self.jitter, self.miss, self.fp, self.step = gt, jitter, miss, false_pos, step
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def detect(self, frame: np.ndarray) -> Detections:
        f = self.calls * self.step
        self.calls += 1
        boxes, confs = [], []
        for _, (box, vis) in sorted(self.gt[f].items()):
            if self.rng.random() < self.miss:
                continue
            boxes.append(box + self.rng.normal(0, self.jitter, 4))
            confs.append(float(np.clip(0.35 + 0.6 * vis - self.rng.random() * 0.3, 0.12, 0.99)))
        if self.rng.random() < self.fp:
            h, w = frame.shape[:2]
            x, y = self.rng.uniform(0, w - 20), self.rng.uniform(0, h - 40)
            boxes.append(np.array([x, y, x + 20, y + 40]))
            confs.append(0.3)
        if not boxes:
            return Detections.empty()
        return Detections(np.asarray(boxes, np.float32), np.asarray(confs, np.float32), np.zeros(len(confs), np.float32))


def largest_gt_frames(gt, fid: int, k: int = 2) -> list[int]:
    frames = [(-(b[2] - b[0]) * (b[3] - b[1]), f) for f, g in enumerate(gt) if fid in g for b in [g[fid][0]]]
    return [f for _, f in sorted(frames)[:k]]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mot_counts(gt, pred: dict[int, dict[int, np.ndarray]], iou_min: float = 0.5) -> dict[str, float]:
    """CLEAR-MOT style counts. ``pred[frame] = {identity: box}``; frames absent from pred are skipped
    (detection ran on sampled frames only). ID switches count a GT object matched to a new identity."""
    fn = fp = idsw = n_gt = 0
    last: dict[int, int] = {}
    for f in sorted(pred):
        g, p = gt[f], pred[f]
        gids, pids = list(g), list(p)
        n_gt += len(gids)
        # Greedy by IoU: with well-separated figures it equals the optimal assignment.
        pairs = sorted(((_iou(g[i][0], p[j]), i, j) for i in gids for j in pids), key=lambda x: -x[0])
        used_g, used_p, matched = set(), set(), []
        for iou, i, j in pairs:
            if iou >= iou_min and i not in used_g and j not in used_p:
                used_g.add(i), used_p.add(j), matched.append((i, j))
        fn += len(gids) - len(matched)
        fp += len(pids) - len(matched)
        for gi, pj in matched:
            if gi in last and last[gi] != pj:
                idsw += 1
            last[gi] = pj
    mota = 1 - (fn + fp + idsw) / max(n_gt, 1)
    return {"gt": n_gt, "fn": fn, "fp": fp, "idsw": idsw, "mota": mota}
