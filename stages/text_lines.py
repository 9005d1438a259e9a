"""Text lines over time, for the subtitle finder: merging detector boxes, linking, measuring rows.

The detector says where text is, roughly: its boxes are padded, a widely letter-spaced caption
can come back as several boxes, and the same box at the same place may hold different text
(two subtitles of one width). Everything here works on grey analysis frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def same_place(a: list[int], b: list[int], tol: float) -> bool:
    """Same text line: every edge within ``tol`` px (a new subtitle line almost never has the same width)."""
    return all(abs(p - q) <= tol for p, q in zip(a, b))


def same_row(a: list[int], b: list[int], tol: float) -> bool:
    """Top and bottom within ``tol`` and most of the narrower box shared: the detector may drop a letter."""
    share = min(a[2], b[2]) - max(a[0], b[0])
    return abs(a[1] - b[1]) <= tol and abs(a[3] - b[3]) <= tol and share >= 0.7 * min(a[2] - a[0], b[2] - b[0])


def merge_lines(boxes: list[list[int]]) -> list[list[int]]:
    """Join boxes on one row whose gap is at most a line height (spaced letters, words split by the detector)."""
    out = sorted((list(b) for b in boxes), key=lambda b: b[0])
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                ha, hb = a[3] - a[1], b[3] - b[1]
                overlap = min(a[3], b[3]) - max(a[1], b[1])
                gap = max(a[0], b[0]) - min(a[2], b[2])
                if overlap >= 0.6 * min(ha, hb) and max(ha, hb) <= 1.6 * min(ha, hb) and gap <= max(ha, hb):
                    out[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out


def edge_map(gray: np.ndarray) -> np.ndarray:
    """|horizontal| + |vertical| luma differences (uint8): text is dense strokes, stable while it is shown."""
    g = gray.astype(np.int16)
    e = np.zeros_like(g)
    e[:, 1:] += np.abs(g[:, 1:] - g[:, :-1])
    e[1:] += np.abs(g[1:] - g[:-1])
    return np.minimum(e, 255).astype(np.uint8)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two equal-shaped images (0 when either is flat)."""
    a = a.astype(np.float32) - a.mean()
    b = b.astype(np.float32) - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / d if d > 0 else 0.0


@dataclass
class Instance:
    """One line of text at one place while it stays the same text."""

    box: list[int]  # latest detector box, analysis pixels
    first: int  # frame index of the first sample showing it
    last: int
    first_k: int  # sample numbers
    last_k: int
    tbox: list[int]  # where the template was cut
    template: np.ndarray  # running mean edge image: the letters stay, a moving background averages out
    ks: list[int] = field(default_factory=list)
    boxes: list[list[int]] = field(default_factory=list)
    seen: int = 1
    rows: tuple[float, float] = (0.0, 0.0)  # measured text rows (analysis pixels, fractional)

    @classmethod
    def start(cls, box: list[int], frame: int, k: int, edges: np.ndarray) -> Instance:
        tb = list(box)
        return cls(list(box), frame, frame, k, k, tb, edges[tb[1]:tb[3], tb[0]:tb[2]].astype(np.float32), [k], [tb])

    def crop(self, edges: np.ndarray) -> np.ndarray:
        return edges[self.tbox[1]:self.tbox[3], self.tbox[0]:self.tbox[2]]

    def add(self, box: list[int], frame: int, k: int, edges: np.ndarray) -> None:
        self.template = (self.template * self.seen + self.crop(edges)) / (self.seen + 1)
        self.box, self.last, self.last_k, self.seen = list(box), frame, k, self.seen + 1
        self.ks.append(k)
        self.boxes.append(list(box))

    def median_box(self) -> list[int]:
        """The line's place: median edges over the samples (one dropped letter does not shrink it)."""
        a = np.asarray(self.boxes)
        return [int(v) for v in np.median(a, axis=0)]


def row_extent(grays: list[np.ndarray], x: Instance, level: float = 0.4, pct: float = 98, most: int = 12,
               ) -> tuple[float, float]:
    """The rows the letters of ``x`` cover (fractional analysis pixels), from its horizontal-edge row profile.

    The profile is averaged over (up to ``most``) samples showing the line, so a moving
    background flattens while the letters add up; the text is the run of rows around the
    peak above ``level`` of the way from the floor to the peak, edges interpolated.
    """
    x0, y0, x1, y1 = x.box
    h = y1 - y0
    pad = max(3, h // 2)
    ya, yb = max(0, y0 - pad), min(grays[0].shape[0], y1 + pad)
    ks = x.ks if len(x.ks) <= most else [x.ks[round(j)] for j in np.linspace(0, len(x.ks) - 1, most)]
    mean = np.zeros((yb - ya, max(1, x1 - x0 - 1)), np.float32)
    for k in ks:
        g = grays[k][ya:yb, x0:x1].astype(np.int16)
        mean += np.abs(np.diff(g, axis=1))
    # A high percentile along the row, not the mean: ascenders and descenders are a few letters wide.
    prof = np.percentile(mean / len(ks), pct, axis=1).astype(np.float64)
    inside = prof[y0 - ya: y1 - ya] if y1 > y0 else prof
    peak_at = int(np.argmax(inside)) + (y0 - ya)
    floor, peak = float(prof.min()), float(prof[peak_at])
    if peak - floor < 1.0:  # no letters to measure (e.g. a flat box): keep the detector's rows
        return float(y0), float(y1)
    thr = floor + level * (peak - floor)
    a = peak_at
    while a > 0 and prof[a - 1] >= thr:
        a -= 1
    b = peak_at
    while b < len(prof) - 1 and prof[b + 1] >= thr:
        b += 1
    # Row r covers [r, r + 1): the edge lies where the profile crosses thr between a-1 and a.
    top = a - (_frac(prof[a - 1], prof[a], thr) if a > 0 else 0.0) + 0.5
    bottom = b + 1 + (_frac(prof[b + 1], prof[b], thr) if b < len(prof) - 1 else 0.0) - 0.5
    return ya + top, ya + bottom


def _frac(out: float, inn: float, thr: float) -> float:
    """How far past the last row above ``thr`` the crossing lies, in rows (0..1)."""
    return float(np.clip((out - thr) / (inn - out) + 1.0, 0.0, 1.0)) if inn > out else 0.0
