"""Find burned-in subtitles, tell them from static overlays, and crop them away.

Frames are sampled (default 2 fps, plus the sequence's last frame) and scaled to
``analysis_width``; the text detector runs on a bottom and a top strip of every sample. A
strip is only skipped when no block of it changed since the detection whose boxes it reuses
(a global mean hides a subtitle change: it is a few thin strokes). Detector boxes on one row
are merged into text lines, and lines are linked over samples into text instances: same
place *and* same text, checked by correlating the line's edge image with the instance's
running mean (two subtitles of one width at one place are two instances).

Text in one place off the centre line for ``overlay_seconds`` or more is a static overlay
(logo, watermark, channel bug, camera timestamp); centred text is one too when one unchanged
line stays longer than any subtitle does (``max_subtitle_seconds``: a copyright line).
The others, horizontal and centred in one band, are subtitle events. Samples with no line
in the subtitle rows get a second, enlarged look at those rows (thin captions score near
the detector's threshold). The band's rows are measured on the pixels (a row profile of
horizontal edges averaged over the samples showing the line): detector boxes are padded by
several pixels, more than a small caption is tall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models.ocr import make_text_detector
from stages.base import Resources, Sample, Stage
from stages.quality import analysis_size, detect_letterbox
from stages.sampling import FrameSampler, take_frames
from stages.subtitle_crop import crop_without_band, plan_crop  # noqa: F401  (crop_without_band: public here too)
from stages.text_lines import Instance, edge_map, merge_lines, ncc, row_extent, same_place, same_row
from stages.video import DecodeError, probe


@dataclass
class SubtitleFinder:
    """The analysis, independent of samples: used by the stage and by ``memcorpus subtitles``."""

    detector: object
    sample_fps: float = 2.0
    analysis_width: int = 720  # small captions (1.5 % of the height) need ~6 px rows: 720 px for 16:9
    bottom_fraction: float = 0.25
    top_fraction: float = 0.15
    reuse_diff: float = 3.0  # max mean |change| of any 16 px block of a strip under which its boxes are reused
    same_text: float = 0.5  # edge-image correlation above which a line at one place is the same text
    rescue_scale: float = 2.0  # enlargement for the second look at the subtitle rows (1: no second look)
    centre_tolerance: float = 0.15  # subtitles are centred: |line centre - frame centre| < this x width
    max_gap: int = 1  # samples a line may be missed (a flash) and still be the same instance
    overlay_seconds: float = 3.0  # off-centre text at one place this long (in all) is an overlay
    max_subtitle_seconds: float = 8.0  # one centred line unchanged this long is an overlay (copyright line)
    overlay_fraction: float = 0.6  # ...as is centred text at one place in this share of samples of a long clip
    min_events: int = 1  # text lines needed for a band (and seen in >= 2 samples in all)

    def analyze(self, path: str, start: int, end: int | None, fps: float, W: int, H: int,
                sampler: FrameSampler | None = None, frames: list | None = None) -> dict:
        """``frames``: ``[(index, rgb)]`` already sampled with :meth:`sampling`; decoded here when None."""
        step, (aw, ah) = self.sampling(fps, W, H)
        sampler = sampler or FrameSampler()
        if frames is None:
            frames = sampler.sample(path, start, end, step, (aw, ah))
        frames = list(frames) + self._tail(sampler, path, frames[-1][0], end, step, (aw, ah))
        tol = max(3.0, 0.012 * aw)  # detector box jitter, analysis pixels
        strips = [(int(ah * (1 - self.bottom_fraction)), ah), (0, int(ah * self.top_fraction))]
        cache: list[tuple[np.ndarray, list] | None] = [None, None]
        grays, per_sample = [], []
        for _i, img in frames:
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            grays.append(gray)
            stale = [j for j, (a, b) in enumerate(strips) if not self._unchanged(cache[j], gray[a:b])]
            for j, found in zip(stale, self._detect_strips(img, [strips[j] for j in stale])):
                cache[j] = (gray[strips[j][0]:strips[j][1]].copy(), found)
            per_sample.append([b for c in cache for b in merge_lines(c[1])])
        self._rescue(frames, per_sample, aw, ah)
        live: list[Instance] = []
        done: list[Instance] = []
        for k, ((i, _), boxes) in enumerate(zip(frames, per_sample)):
            self._link(boxes, edge_map(grays[k]), i, k, live, done, tol)
        done += live
        letterbox = detect_letterbox([g[::2, ::2] for g in grays], W, H)
        dt = step / fps
        return self._classify(done, grays, [i for i, _ in frames], start, dt, aw, ah, W / aw, H / ah, letterbox, tol)

    def _rescue(self, frames: list, per_sample: list[list], aw: int, ah: int) -> None:
        """Look again, enlarged, at the subtitle rows of samples where nothing was found there.

        A caption a few pixels tall scores near the detector's threshold: found in most
        samples, missed in some, and a short line shown in one sample only is missed
        for its whole event. The rows come from the lines found elsewhere; the strip is thin,
        so even twice enlarged it costs a fraction of a normal detection.
        """
        lines = [b for boxes in per_sample for b in boxes if self._centred(b, aw) and b[2] - b[0] > 1.2 * (b[3] - b[1])]
        if not lines or self.rescue_scale <= 1:
            return
        bottom = [b for b in lines if (b[1] + b[3]) / 2 > ah / 2]
        side = max(bottom, [b for b in lines if (b[1] + b[3]) / 2 <= ah / 2], key=len)
        cy = float(np.median([(b[1] + b[3]) / 2 for b in side]))
        hh = float(np.median([b[3] - b[1] for b in side]))
        ra, rb = max(0, int(cy - 1.5 * hh)), min(ah, int(np.ceil(cy + 1.5 * hh)))
        f = self.rescue_scale
        for (_, img), boxes in zip(frames, per_sample):
            if any(ra <= (b[1] + b[3]) / 2 <= rb for b in boxes):
                continue
            big = cv2.resize(img[ra:rb], None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
            found = [[int(x0 / f), int(y0 / f) + ra, int(np.ceil(x1 / f)), int(np.ceil(y1 / f)) + ra]
                     for (x0, y0, x1, y1), _ in self.detector.detect(big)]
            # Only what looks like the other lines: enlarged picture texture passes for text too.
            boxes += [b for b in merge_lines(found) if self._centred(b, aw) and 0.6 * hh <= b[3] - b[1] <= 1.6 * hh
                      and b[2] - b[0] > 1.2 * (b[3] - b[1]) and abs((b[1] + b[3]) / 2 - cy) <= 0.5 * hh]

    def _centred(self, b: list[int], aw: int) -> bool:
        return abs((b[0] + b[2]) / 2 - aw / 2) < self.centre_tolerance * aw

    def sampling(self, fps: float, W: int, H: int) -> tuple[int, tuple[int, int]]:
        """Frame step and analysis size for footage at ``fps`` and ``W`` x ``H``."""
        return max(1, round(fps / self.sample_fps)), analysis_size(W, H, self.analysis_width)

    @staticmethod
    def _tail(sampler: FrameSampler, path: str, last: int, end: int | None, step: int, size) -> list:
        """The frame nearest the end when the regular samples stop short of it (up to a step of text unseen)."""
        end = probe(path).frames if end is None else end
        s0 = max(last + 1, end - 1 - step // 4)
        if end - 1 - last < step // 2 or s0 >= end:
            return []
        try:
            return [f for f in sampler.sample(path, s0, end, end - s0, size) if f[0] > last]
        except DecodeError:
            return []

    def _unchanged(self, cached: tuple | None, strip: np.ndarray) -> bool:
        if cached is None or self.reuse_diff <= 0:
            return False
        d = cv2.absdiff(cached[0], strip)
        blocks = cv2.resize(d, (max(1, d.shape[1] // 16), max(1, d.shape[0] // 16)), interpolation=cv2.INTER_AREA)
        return float(blocks.max()) <= self.reuse_diff

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
        for (x0, y0, x1, y1), _ in self.detector.detect(np.concatenate(parts[:-1])):
            j = max(k for k, t in enumerate(tops) if t <= (y0 + y1) / 2)
            a, b = strips[j]
            box = [x0, max(a, y0 - tops[j] + a), x1, min(b, y1 - tops[j] + a)]
            if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                out[j].append(box)
        return out

    def _link(self, boxes: list, edges: np.ndarray, frame: int, k: int, live: list, done: list, tol: float) -> None:
        taken: set[int] = set()
        for box in boxes:
            best, score = None, self.same_text
            for x in live:
                if id(x) in taken or x.last_k >= k or not same_row(x.box, box, tol):
                    continue
                c = ncc(x.template, x.crop(edges))
                if c >= score:
                    best, score = x, c
            if best is None:
                best = Instance.start(box, frame, k, edges)
                live.append(best)
            else:
                best.add(box, frame, k, edges)
            taken.add(id(best))
        for x in [x for x in live if x.last_k < k - self.max_gap]:
            live.remove(x)
            done.append(x)

    def _classify(self, inst: list[Instance], grays: list, idx: list[int], start: int, dt: float, aw: int, ah: int,
                  sx: float, sy: float, letterbox: list[int], tol: float) -> dict:
        def src(b) -> list[int]:
            return [int(b[0] * sx), int(np.rint(b[1] * sy)), int(np.ceil(b[2] * sx)), int(np.rint(b[3] * sy))]

        def centred(b) -> bool:
            return self._centred(b, aw)

        samples = len(idx)
        for x in inst:
            x.box = x.median_box()
        groups: list[list[Instance]] = []  # one place, any text (a camera clock changes its digits)
        for x in sorted(inst, key=lambda x: -x.seen):
            g = next((g for g in groups if same_place(g[0].box, x.box, 1.5 * tol)), None)
            if g:
                g.append(x)
            else:
                groups.append([x])

        def is_overlay(g: list[Instance]) -> bool:
            seen = sum(x.seen for x in g)
            if not centred(g[0].box):
                return seen * dt >= self.overlay_seconds or (samples >= 3 and seen > self.overlay_fraction * samples)
            longest = max((x.last_k - x.first_k + 1) * dt for x in g)
            return longest >= self.max_subtitle_seconds or (
                samples * dt >= self.max_subtitle_seconds and seen > self.overlay_fraction * samples)

        static = [g for g in groups if is_overlay(g)]
        in_static = {id(x) for g in static for x in g}
        rest = [x for x in inst if id(x) not in in_static and centred(x.box)
                and x.box[2] - x.box[0] > 1.2 * (x.box[3] - x.box[1])]
        for x in rest:  # rows measured on the pixels, for the band and the event boxes
            x.rows = row_extent(grays, x)
        bottom = [x for x in rest if (x.box[1] + x.box[3]) / 2 > ah / 2]
        top = [x for x in rest if (x.box[1] + x.box[3]) / 2 <= ah / 2]
        subs = max(bottom, top, key=lambda side: sum(x.seen for x in side))
        if subs:  # one band: lines near the time-weighted middle row (two-line subtitles, a second style stay in)
            w = [x.seen for x in subs]
            cy = _weighted_median([(x.rows[0] + x.rows[1]) / 2 for x in subs], w)
            hh = _weighted_median([x.rows[1] - x.rows[0] for x in subs], w)
            subs = [x for x in subs if abs((x.rows[0] + x.rows[1]) / 2 - cy) <= 3 * hh
                    and 0.4 * hh <= x.rows[1] - x.rows[0] <= 3 * hh]
        band = None
        if len(subs) >= self.min_events and sum(x.seen for x in subs) >= 2:
            # Time-weighted 5th/95th percentiles, not min/max: one line measured on a flash must not widen the band.
            w = [x.seen for x in subs]
            y0 = np.percentile(np.repeat([x.rows[0] for x in subs], w), 5, method="lower")
            y1 = np.percentile(np.repeat([x.rows[1] for x in subs], w), 95, method="higher")
            band = src([0, y0, 0, y1])[1::2]
        else:
            subs = []
        ev = sorted(({"start": x.first - start, "end": x.last - start,
                      "box": src([x.box[0], x.rows[0], x.box[2], x.rows[1]])} for x in subs), key=lambda e: e["start"])
        ov = [{"start": min(x.first for x in g) - start, "end": max(x.last for x in g) - start,
               "box": src(_union([x.box for x in g])), "seconds": round(sum(x.seen for x in g) * dt, 2)}
              for g in static]
        return {"band": band, "events": ev, "overlays": ov, "samples": samples, "letterbox": letterbox}


def make_finder(backend: str = "rapidocr", model_dir: str = "", **settings) -> SubtitleFinder:
    """A finder with its detector; the detector takes the enlarged second-look strips at full size."""
    f = SubtitleFinder(None, **settings)
    f.detector = make_text_detector(backend, model_dir, max_side=int(f.analysis_width * max(1.0, f.rescue_scale)))
    return f


def _weighted_median(values: list[float], weights: list[int]) -> float:
    return float(np.median(np.repeat(values, weights)))


def _union(boxes: list[list[int]]) -> list[int]:
    """The box that the median edges describe: one place seen many times, jitter and all."""
    a = np.asarray(boxes)
    return [int(np.median(a[:, 0])), int(np.median(a[:, 1])), int(np.median(a[:, 2])), int(np.median(a[:, 3]))]


@dataclass
class CropSubtitles(Stage):
    backend: str = "rapidocr"  # "rapidocr" | "paddle"
    model_dir: str = ""  # PaddleOCR PP-OCRv5 det folder (backend "paddle")
    sample_fps: float = 2.0
    analysis_width: int = 720
    aspect: float = 0.0  # w/h of the crop; 0 keeps the picture's aspect
    crop_overlays: bool = True  # also cut static overlays (logos, watermarks) off the crop...
    overlay_budget: float = 0.35  # ...each at most this share of the crop's area
    reject_overlay_kept: bool = True  # reject ("overlay_kept") a sequence whose crop still shows an overlay
    min_kept_fraction: float = 0.4
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "subtitles/3"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("backend", "model_dir", "sample_fps", "analysis_width", "aspect", "crop_overlays",
                     "overlay_budget", "reject_overlay_kept", "min_kept_fraction")

    def setup(self) -> None:
        self._finder = make_finder(self.backend, self.model_dir, sample_fps=self.sample_fps,
                                   analysis_width=self.analysis_width)
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
            ovs = res["overlays"]
            plan = plan_crop(W, H, picture, res["band"], self.aspect, overlays=[o["box"] for o in ovs],
                             overlay_budget=self.overlay_budget if self.crop_overlays else 0.0)
            for k, o in enumerate(ovs):
                o["kept"] = k in plan["kept_overlays"]
            m["subtitles"] = {k: res[k] for k in ("band", "events", "overlays")}
            m["crop"], m["kept_fraction"] = plan["crop"], plan["kept_fraction"]
            m["overlay_kept"] = len(plan["kept_overlays"])
            if plan["kept_fraction"] < self.min_kept_fraction:
                s.reject("crop_too_small", stage=self.name,
                         detail=f"kept {plan['kept_fraction']:.2f} < {self.min_kept_fraction}")
            elif m["overlay_kept"] and self.reject_overlay_kept:
                s.reject("overlay_kept", stage=self.name,
                         detail=f"{m['overlay_kept']} overlay(s) inside the crop: {[o['box'] for o in ovs if o['kept']]}")
        return batch
