"""Find burned-in subtitles, tell them from static overlays, and crop them away.

Frames are sampled (default 2 fps) and scaled to ``analysis_width``; the text detector runs
only on a bottom and a top strip, and a strip that did not change since its last detection
reuses those boxes (DESIGN.md §8: the detector is the cost). Boxes are linked over samples
into text instances (same box edges). An instance present in most
samples is a static overlay (logo, watermark, channel bug); the others, horizontally
centred in one band whose text changes over time, are subtitle events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models.ocr import make_text_detector
from stages.base import Resources, Sample, Stage
from stages.quality import analysis_size, detect_letterbox
from stages.sampling import FrameSampler, take_frames
from stages.video import DecodeError


def _same_place(a: list[int], b: list[int], tol: float) -> bool:
    """Same text line: every edge within ``tol`` px (a new subtitle line almost never has the same width)."""
    return all(abs(p - q) <= tol for p, q in zip(a, b))


@dataclass
class _Instance:
    box: list[int]
    first: int  # frame index of the first sample showing it
    last: int
    last_k: int
    seen: int = 1


@dataclass
class SubtitleFinder:
    """The analysis, independent of samples: used by the stage and by ``memcorpus subtitles``."""

    detector: object
    sample_fps: float = 2.0
    analysis_width: int = 480
    bottom_fraction: float = 0.3
    top_fraction: float = 0.2
    reuse_diff: float = 1.5  # mean |change| of a strip thumbnail under which boxes are reused
    overlay_fraction: float = 0.6  # text in one place in more of the samples than this is an overlay...
    overlay_min_seconds: float = 8.0  # ...if off-centre, or centred and on screen at least this long
    min_events: int = 1  # text lines needed for a band (and seen in >= 2 samples in all)

    def analyze(self, path: str, start: int, end: int | None, fps: float, W: int, H: int,
                sampler: FrameSampler | None = None, frames: list | None = None) -> dict:
        """``frames``: ``[(index, rgb)]`` already sampled with :meth:`sampling`; decoded here when None."""
        step, (aw, ah) = self.sampling(fps, W, H)
        sx, sy = W / aw, H / ah
        tol = max(3.0, 0.012 * aw)  # detector box jitter, analysis pixels
        strips = [(int(ah * (1 - self.bottom_fraction)), ah), (0, int(ah * self.top_fraction))]
        cache: list[tuple[np.ndarray | None, list]] = [(None, []), (None, [])]
        live: list[_Instance] = []
        done: list[_Instance] = []
        grays, k = [], -1
        if frames is None:
            frames = (sampler or FrameSampler()).sample(path, start, end, step, (aw, ah))
        for i, img in frames:
            k += 1
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            grays.append(gray[::2, ::2])
            stale = []
            for j, (a, b) in enumerate(strips):
                thumb = gray[a:b:8, ::8].astype(np.int16)
                prev = cache[j][0]
                if prev is None or float(np.abs(thumb - prev).mean()) > self.reuse_diff:
                    stale.append(j)
                    cache[j] = (thumb, [])
            for j, found in zip(stale, self._detect_strips(img, [strips[j] for j in stale])):
                cache[j] = (cache[j][0], found)
            boxes = cache[0][1] + cache[1][1]
            self._link(boxes, i, k, live, done, tol)
        done += live
        letterbox = detect_letterbox(grays, W, H)
        return self._classify(done, k + 1, start, aw, ah, sx, sy, letterbox, tol)

    def sampling(self, fps: float, W: int, H: int) -> tuple[int, tuple[int, int]]:
        """Frame step and analysis size for footage at ``fps`` and ``W`` x ``H``."""
        return max(1, round(fps / self.sample_fps)), analysis_size(W, H, self.analysis_width)

    def _detect_strips(self, img: np.ndarray, strips: list[tuple[int, int]]) -> list[list[list[int]]]:
        """Text boxes (frame coordinates) in each strip ``(y0, y1)``, from one detector call.

        A detector call has a fixed cost comparable to its pixel cost on a strip, so the
        strips go in stacked, apart by a black gap that no text box bridges.
        """
        if not strips:
            return []
        gap = np.zeros((16, img.shape[1], 3), img.dtype)
        parts, tops, y = [], [], 0
        for a, b in strips:
            parts += [img[a:b], gap]
            tops.append(y)
            y += b - a + len(gap)
        out: list[list[list[int]]] = [[] for _ in strips]
        # Not padded to the detector's stride of 32 rows: it stretches the stack to fit, and padding
        # instead measured worse band IoU on the generated films (0.815/0.758 vs 0.863/0.926 at 720p/360p).
        for (x0, y0, x1, y1), _ in self.detector.detect(np.concatenate(parts[:-1])):
            j = max(k for k, t in enumerate(tops) if t <= (y0 + y1) / 2)
            a, b = strips[j]
            out[j].append([x0, max(a, y0 - tops[j] + a), x1, min(b, y1 - tops[j] + a)])
        return out

    def _link(self, boxes: list, frame: int, k: int, live: list, done: list, tol: float) -> None:
        for box in boxes:
            match = next((x for x in live if x.last_k == k - 1 and _same_place(x.box, box, tol)), None)
            if match:
                match.box, match.last, match.last_k, match.seen = box, frame, k, match.seen + 1
            else:
                live.append(_Instance(box, frame, frame, k))
        for x in [x for x in live if x.last_k < k]:
            live.remove(x)
            done.append(x)

    def _classify(self, inst: list, samples: int, start: int, aw: int, ah: int, sx: float, sy: float,
                  letterbox: list[int], tol: float) -> dict:
        def src(b: list[int]) -> list[int]:
            return [int(b[0] * sx), int(b[1] * sy), int(np.ceil(b[2] * sx)), int(np.ceil(b[3] * sy))]

        # Overlays: one place, unchanged box, in most samples (links may break on a flash).
        groups: list[list[_Instance]] = []
        for x in sorted(inst, key=lambda x: -x.seen):
            g = next((g for g in groups if _same_place(g[0].box, x.box, 1.5 * tol)), None)
            if g:
                g.append(x)
            else:
                groups.append([x])

        def is_overlay(g: list[_Instance]) -> bool:
            if samples < 3 or sum(x.seen for x in g) <= self.overlay_fraction * samples:
                return False
            # One centred line on screen through a short clip is still a subtitle.
            b = g[0].box
            centred = abs((b[0] + b[2]) / 2 - aw / 2) < 0.2 * aw
            return not centred or samples >= self.overlay_min_seconds * self.sample_fps

        static = [g for g in groups if is_overlay(g)]
        in_static = {id(x) for g in static for x in g}
        # Subtitles: horizontal text centred in the frame, all in one band.
        rest = [x for x in inst if id(x) not in in_static and abs((x.box[0] + x.box[2]) / 2 - aw / 2) < 0.2 * aw
                and x.box[2] - x.box[0] > 2 * (x.box[3] - x.box[1])]
        bottom = [x for x in rest if (x.box[1] + x.box[3]) / 2 > ah / 2]
        top = [x for x in rest if (x.box[1] + x.box[3]) / 2 <= ah / 2]
        subs = max(bottom, top, key=lambda side: sum(x.seen for x in side))
        if subs:
            cy = float(np.median([(x.box[1] + x.box[3]) / 2 for x in subs]))
            hh = float(np.median([x.box[3] - x.box[1] for x in subs]))
            subs = [x for x in subs if abs((x.box[1] + x.box[3]) / 2 - cy) < 0.6 * hh
                    and 0.6 * hh <= x.box[3] - x.box[1] <= 1.6 * hh]
        band = None
        if len(subs) >= self.min_events and sum(x.seen for x in subs) >= 2:
            # Percentiles weighted by time on screen: one odd box (text on a flash) must not widen the band.
            y0s = np.repeat([x.box[1] for x in subs], [x.seen for x in subs])
            y1s = np.repeat([x.box[3] for x in subs], [x.seen for x in subs])
            ys = src([0, int(np.percentile(y0s, 25)), 0, int(np.ceil(np.percentile(y1s, 75)))])
            band = [ys[1], ys[3]]
        else:
            subs = []
        ev = sorted(({"start": x.first - start, "end": x.last - start, "box": src(x.box)} for x in subs),
                    key=lambda e: e["start"])
        ov = [{"start": min(x.first for x in g) - start, "end": max(x.last for x in g) - start, "box": src(g[0].box)}
              for g in static]
        return {"band": band, "events": ev, "overlays": ov, "samples": samples, "letterbox": letterbox}


def _fit(rect: list[int], target: float) -> list[int]:
    """The largest centred rectangle inside ``rect`` with aspect ``target`` (w/h), even sizes."""
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return [0, 0, 0, 0]
    if w / h > target:
        nw = int(h * target)
        x0, x1 = x0 + (w - nw) // 2, x0 + (w - nw) // 2 + nw
    else:
        nh = int(w / target)
        y0, y1 = y0 + (h - nh) // 2, y0 + (h - nh) // 2 + nh
    return [x0, y0, x1 - (x1 - x0) % 2, y1 - (y1 - y0) % 2]


def _area(r: list[int]) -> int:
    return max(0, r[2] - r[0]) * max(0, r[3] - r[1])


def crop_without_band(W: int, H: int, picture: list[int], band: list[int] | None, aspect: float = 0.0,
                      margin: int | None = None, overlays: list[list[int]] = ()) -> tuple[list[int], float]:
    """Largest rectangle inside ``picture`` that avoids the subtitle band and ``overlays``, at ``aspect``.

    ``aspect`` (w/h) 0 keeps the picture's own aspect. Each overlay box (a logo) is cut off
    by whichever edge keeps the most picture. Returns the crop (even sizes) and the
    fraction of the frame it keeps.
    """
    x0, y0, x1, y1 = picture
    target = aspect or (x1 - x0) / max(y1 - y0, 1)
    margin = max(4, H // 100) if margin is None else margin  # outline and glow around the letters
    if band is not None:
        if (band[0] + band[1]) / 2 > (y0 + y1) / 2:
            y1 = min(y1, band[0] - margin)
        else:
            y0 = max(y0, band[1] + margin)
    rect = [x0, y0, x1, y1]
    for b in overlays:
        if _area([max(rect[0], b[0]), max(rect[1], b[1]), min(rect[2], b[2]), min(rect[3], b[3])]) == 0:
            continue
        r = rect
        options = [[r[0], b[3] + margin, r[2], r[3]], [r[0], r[1], r[2], b[1] - margin],
                   [b[2] + margin, r[1], r[2], r[3]], [r[0], r[1], b[0] - margin, r[3]]]
        rect = max(options, key=lambda o: _area(_fit(o, target)))
    crop = _fit(rect, target)
    return crop, round(_area(crop) / float(W * H), 4)


@dataclass
class CropSubtitles(Stage):
    backend: str = "rapidocr"  # "rapidocr" | "paddle"
    model_dir: str = ""  # PaddleOCR PP-OCRv5 det folder (backend "paddle")
    sample_fps: float = 2.0
    analysis_width: int = 480
    aspect: float = 0.0  # w/h of the crop; 0 keeps the picture's aspect
    crop_overlays: bool = True  # also cut static overlays (logos, channel bugs) off the crop
    min_kept_fraction: float = 0.4
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "subtitles/2"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("backend", "model_dir", "sample_fps", "analysis_width", "aspect", "crop_overlays",
        "min_kept_fraction")

    def setup(self) -> None:
        det = make_text_detector(self.backend, self.model_dir, max_side=self.analysis_width)
        self._finder = SubtitleFinder(det, sample_fps=self.sample_fps, analysis_width=self.analysis_width)
        self._sampler = FrameSampler()

    def process(self, batch: list[Sample]) -> list[Sample]:
        if not hasattr(self, "_finder"):
            self.setup()
        for s in batch:
            m = s.meta
            W, H = m["size"]
            start, end = m["source_frames"]
            step, size = self._finder.sampling(m["fps"], W, H)
            kept = take_frames(s, (s.source["path"], start, end, step, size))
            try:
                res = self._finder.analyze(s.source["path"], start, end, m["fps"], W, H, self._sampler, kept)
            except DecodeError as e:
                s.reject(f"subtitles_{e.reason}", stage=self.name, detail=e.detail)
                continue
            picture = m.get("crop") or res["letterbox"]
            boxes = [o["box"] for o in res["overlays"]] if self.crop_overlays else []
            crop, kept = crop_without_band(W, H, picture, res["band"], self.aspect, overlays=boxes)
            m["subtitles"] = {k: res[k] for k in ("band", "events", "overlays")}
            m["crop"], m["kept_fraction"] = crop, kept
            if kept < self.min_kept_fraction:
                s.reject("crop_too_small", stage=self.name, detail=f"kept {kept:.2f} < {self.min_kept_fraction}")
        return batch
