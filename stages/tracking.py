"""Track subjects through a sequence and pick the reconstruction frames of the primary subject.

Memento §3.1: ByteTrack follows the primary subject over time; the two frames where its box is
largest become reconstruction targets. ByteTrack associates by box overlap only, which means
nothing across a cut, so the tracker is restarted at every shot boundary and the per-shot tracks
are then linked into identities by colour appearance (a person re-entering, or the same person
in the next shot). The primary subject is the identity with the largest presence x mean area.

Detectors fire on scenery too (HOG named a storefront the subject of a crowded street,
tests/data/real/street_people_1920x1080.mp4), so boxes of no person's shape or size, or cut by
the frame edge, are dropped before tracking (models.detectors.PersonShape), and only a credible
identity can be primary: long enough, confidently detected, steadily tracked (``summarise``).
With none, the sequence reports no primary and no reconstruction frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import cv2
import numpy as np

from models.detectors import Detections, PersonShape, check_weights, make_detector
from stages.base import Resources, Sample, Stage
from stages.video import DecodeError, iter_frames

# ultralytics/cfg/trackers/bytetrack.yaml defaults, which assume a 30 fps stream.
BYTETRACK_DEFAULTS = {"track_high_thresh": 0.25, "track_low_thresh": 0.1, "new_track_thresh": 0.25, "track_buffer": 30,
                          "match_thresh": 0.8, "fuse_score": True}


@dataclass
class Obs:
    """One tracked box: where, when, and the appearance used to link tracks across shots."""

    frame: int
    time: float
    shot: int
    track: int  # raw ByteTrack id, unique within the sequence
    box: np.ndarray  # (4,) xyxy in clip pixels (the clip is cropped and scaled: meta["crop"], meta["clip_size"])
    area: float  # box area / frame area
    hist: np.ndarray  # (H*S,) normalised hue-saturation histogram of the box
    conf: float = 1.0  # the detector's score of the box ByteTrack matched
    rank: float = -1.0  # area smoothed over neighbouring frames (set by smooth_areas); -1: use area


def appearance(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (round(v) for v in box)
    crop = frame[max(y0, 0) : max(y1, 1), max(x0, 0) : max(x1, 1)]
    if crop.size == 0:
        return np.zeros(8 * 8, np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1], None, [8, 8], [0, 180, 0, 256]).reshape(-1)
    return (h / max(float(h.sum()), 1.0)).astype(np.float32)


class ShotTracker:
    """ByteTrack restarted at each shot; gives ids unique across the whole sequence."""

    def __init__(self, sample_fps: float, **overrides) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        args = {**BYTETRACK_DEFAULTS, **overrides}
        # track_buffer is in frames at 30 fps; we feed sampled frames, so keep the same seconds.
        args["track_buffer"] = max(1, math.ceil(args["track_buffer"] * sample_fps / 30.0))
        self._make = lambda: BYTETracker(SimpleNamespace(**args))
        self._shot, self._tracker, self._ids = None, None, {}

    def update(self, shot: int, dets: Detections) -> list[tuple[int, np.ndarray, float]]:
        """Returns ``(track id, detection box xyxy, score)`` for every box tracked in this frame."""
        if shot != self._shot:
            self._shot, self._tracker = shot, self._make()
        rows = self._tracker.update(dets)
        out = []
        for r in rows:
            gid = self._ids.setdefault((shot, int(r[4])), len(self._ids) + 1)
            # The detection box, not the Kalman-smoothed one: recon frames must show what is there.
            out.append((gid, dets.xyxy[int(r[7])].copy(), float(r[5])))
        return out


def link_tracks(obs: list[Obs], threshold: float, min_frames: int) -> dict[int, int]:
    """Map raw track id -> identity id (the first track's id), merging tracks that never overlap in
    time and look alike (histogram correlation >= threshold). Short tracks stay alone."""
    by_track: dict[int, list[Obs]] = {}
    for o in obs:
        by_track.setdefault(o.track, []).append(o)
    identities: list[dict] = []  # {"id", "frames": set, "hist"}
    mapping = {}
    for tid in sorted(by_track, key=lambda t: by_track[t][0].frame):
        os_ = by_track[tid]
        frames = {o.frame for o in os_}
        hist = np.mean([o.hist for o in os_], axis=0).astype(np.float32)
        best, best_sim = None, threshold
        if len(os_) >= min_frames:
            for ident in identities:
                if ident["frames"] & frames or ident["n"] < min_frames:
                    continue
                sim = float(cv2.compareHist(ident["hist"], hist, cv2.HISTCMP_CORREL))
                if sim >= best_sim:
                    best, best_sim = ident, sim
        if best is None:
            identities.append({"id": tid, "frames": frames, "hist": hist, "n": len(os_)})
            mapping[tid] = tid
        else:
            w = best["n"] / (best["n"] + len(os_))
            best["hist"] = (w * best["hist"] + (1 - w) * hist).astype(np.float32)
            best["frames"] |= frames
            best["n"] += len(os_)
            mapping[tid] = best["id"]
    return mapping


def smooth_areas(obs: list[Obs], radius: int) -> None:
    """Rank boxes by their area averaged over ``radius`` neighbours in the same shot: one jittery box
    should not win over a subject that is steadily large (box noise is a few % of the area, the
    frame-to-frame growth of a walking subject much less)."""
    by_shot: dict[int, list[Obs]] = {}
    for o in sorted(obs, key=lambda o: o.frame):
        by_shot.setdefault(o.shot, []).append(o)
    for run in by_shot.values():
        areas = np.array([o.area for o in run])
        for i, o in enumerate(run):
            o.rank = float(areas[max(0, i - radius) : i + radius + 1].mean())


def choose_recon(cands: list[Obs], count: int, min_gap_s: float) -> list[Obs]:
    """Largest boxes first; later picks prefer another shot and at least ``min_gap_s`` from earlier picks."""
    ranked = sorted(cands, key=lambda o: (-(o.rank if o.rank >= 0 else o.area), o.frame))
    chosen: list[Obs] = []
    while ranked and len(chosen) < count:
        far = [o for o in ranked if all(abs(o.time - c.time) >= min_gap_s for c in chosen)]
        other_shot = [o for o in far if all(o.shot != c.shot for c in chosen)]
        pick = (other_shot or far or [None])[0]
        if pick is None:
            break  # no frame far enough from the first: report one, never invent a second
        chosen.append(pick)
        ranked.remove(pick)
    return chosen


def summarise(obs: list[Obs], n_sampled: int, link_threshold: float, min_frames: int, recon_count: int,
              min_gap_s: float, smooth: int = 2, min_conf: float = 0.0, min_coverage: float = 0.0,
              step: int = 1) -> tuple[dict, list[Obs]]:
    """Identities, the primary subject, and its reconstruction frames (absent when no credible subject).

    A credible subject is tracked on at least ``min_frames`` sampled frames, with a mean detector score of
    at least ``min_conf`` (weak boxes are how scenery looks to a detector), and steadily: seen on at least
    ``min_coverage`` of the sampled frames (every ``step``-th) from its first to its last box in each shot.
    """
    ident = link_tracks(obs, link_threshold, min_frames)
    groups: dict[int, list[Obs]] = {}
    for o in obs:
        groups.setdefault(ident[o.track], []).append(o)
    tracks = []
    for gid, os_ in sorted(groups.items()):
        frames = len({o.frame for o in os_})
        span = sum((max(o.frame for o in os_ if o.shot == k) - min(o.frame for o in os_ if o.shot == k)) // step + 1
                   for k in {o.shot for o in os_})
        tracks.append({"id": gid, "frames": frames, "mean_area": float(np.mean([o.area for o in os_])),
                       "mean_conf": round(float(np.mean([o.conf for o in os_])), 4),
                       "coverage": round(frames / max(span, 1), 4),
                       "track_ids": sorted({o.track for o in os_}), "shots": sorted({o.shot for o in os_})})
    eligible = [t for t in tracks
                if t["frames"] >= min_frames and t["mean_conf"] >= min_conf and t["coverage"] >= min_coverage]
    primary = max(eligible, key=lambda t: t["frames"] / max(n_sampled, 1) * t["mean_area"], default=None)
    if primary:
        smooth_areas(groups[primary["id"]], smooth)
    recon = choose_recon(groups[primary["id"]], recon_count, min_gap_s) if primary else []
    return {"primary": primary["id"] if primary else None, "tracks": tracks}, recon


@dataclass
class TrackSubjects(Stage):
    """Detect and track subjects in ``clip.mp4``; add ``meta["tracking"]`` and ``recon{i}.jpg``."""

    detector: str = "hog"  # "hog" (offline, people only) | "yolo" (local weights)
    yolo_weights: str = ""
    trust_weights: bool = False  # load a pickled .pt (can run code); default: ONNX weights only
    classes: tuple[int, ...] = (0,)  # COCO class ids to track
    sample_fps: float = 5.0  # detection rate; ByteTrack's buffer is rescaled to it
    max_width: int = 640  # HOG runs on frames downscaled to this width
    bytetrack: dict = field(default_factory=dict)  # overrides of bytetrack.yaml keys
    link_threshold: float = 0.6  # histogram correlation to merge tracks into one identity
    min_track_frames: int = 3  # shorter identities are noise, never the primary subject
    person_shape: bool = True  # drop boxes of no person's shape or size, or cut by the frame (PersonShape)
    min_subject_conf: float = 0.3  # a primary subject's boxes score at least this on average (HOG: margin 0.36)
    min_coverage: float = 0.5  # ...and it is seen on at least this share of the sampled frames of its span
    recon_count: int = 2
    min_gap_s: float = 2.0
    smooth_frames: int = 2  # recon frames rank boxes by area averaged over +-this many sampled frames
    require_subject: bool = False  # reject sequences where nobody is tracked
    jpeg_quality: int = 95
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    batch_size: int = 1
    version: str = "tracking/2"  # 2: person-shaped boxes only; a primary subject must be confident and steady
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("detector", "yolo_weights", "classes", "sample_fps", "max_width", "bytetrack",
        "link_threshold", "min_track_frames", "person_shape", "min_subject_conf", "min_coverage", "recon_count",
        "min_gap_s", "smooth_frames", "require_subject", "jpeg_quality")

    def __post_init__(self) -> None:
        unknown = set(self.bytetrack) - set(BYTETRACK_DEFAULTS)
        if unknown:
            raise ValueError(f"tracking.bytetrack has unknown keys {sorted(unknown)}; known: {sorted(BYTETRACK_DEFAULTS)}")
        if self.sample_fps <= 0 or self.recon_count < 0 or self.min_gap_s < 0:
            raise ValueError("tracking.sample_fps must be > 0, recon_count and min_gap_s >= 0")
        if not 0 <= self.min_subject_conf <= 1 or not 0 <= self.min_coverage <= 1:
            raise ValueError("tracking.min_subject_conf and tracking.min_coverage must be in [0, 1]")
        if self.detector == "yolo":  # refuse untrusted pickled weights now, not later in a worker
            check_weights(self.yolo_weights, self.trust_weights)

    def setup(self) -> None:
        self._detector = make_detector(self.detector, self.yolo_weights, tuple(self.classes), self.max_width,
                                       self.trust_weights)

    def observe(self, video: bytes | str, fps: float, shots: list[list[int]] | None) -> tuple[list[Obs], int]:
        """Detection + ByteTrack on sampled frames; returns every tracked box and the number of frames sampled."""
        step = max(1, round(fps / self.sample_fps))
        tracker = ShotTracker(fps / step, **self.bytetrack)
        shape = PersonShape() if self.person_shape else None
        obs, n = [], 0
        for i, t, frame in iter_frames(video):
            if i % step:
                continue
            n += 1
            shot = shot_of(i, shots)
            h, w = frame.shape[:2]
            dets = self._detector.detect(frame)
            if shape is not None:
                dets = dets[shape.keep(dets, w, h)]
            for tid, box, conf in tracker.update(shot, dets):
                box = np.clip(box, 0, [w, h, w, h])
                area = float((box[2] - box[0]) * (box[3] - box[1])) / (w * h)
                obs.append(Obs(i, i / fps, shot, tid, box, area, appearance(frame, box), conf))
        return obs, n

    def track(self, video: bytes | str, fps: float, shots: list[list[int]] | None) -> tuple[dict, list[Obs], int]:
        """Tracking summary (identities, primary), the primary's recon observations, frames sampled."""
        obs, n = self.observe(video, fps, shots)
        summary, recon = summarise(obs, n, self.link_threshold, self.min_track_frames, self.recon_count,
                                   self.min_gap_s, self.smooth_frames, self.min_subject_conf, self.min_coverage,
                                   max(1, round(fps / self.sample_fps)))
        return summary, recon, n

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            video, fps = s.blobs.get("clip.mp4"), float(s.meta.get("fps") or 0)
            if not video or fps <= 0:
                s.reject("tracking_no_clip", stage=self.name, detail="needs blobs['clip.mp4'] and meta['fps'] > 0")
                continue
            try:
                summary, recon, n = self.track(video, fps, s.meta.get("shots"))
                images = frames_at(video, [o.frame for o in recon])
            except DecodeError as e:
                s.reject(f"tracking_{e.reason}", stage=self.name, detail=e.detail)
                continue
            summary["recon_frames"] = []
            for k, o in enumerate(recon):
                ok, jpg = cv2.imencode(".jpg", images[o.frame][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                assert ok, "JPEG encoding of a decoded frame cannot fail"
                s.blobs[f"recon{k}.jpg"] = jpg.tobytes()
                summary["recon_frames"].append({"frame": o.frame, "box": [round(float(v), 1) for v in o.box],
                                                "track_id": summary["primary"], "shot": o.shot,
                                                "area": round(o.area, 4)})
            summary.update(detector=self.detector, sampled_frames=n)
            s.meta["tracking"] = summary
            if self.require_subject and summary["primary"] is None:
                s.reject("no_subject", stage=self.name,
                         detail=f"no track of >= {self.min_track_frames} frames with mean score >= "
                                f"{self.min_subject_conf} and coverage >= {self.min_coverage}")
        return batch


def shot_of(frame: int, shots: list[list[int]] | None) -> int:
    for k, (a, b) in enumerate(shots or []):
        if a <= frame <= b:
            return k
    return 0 if not shots else len(shots) - 1


def frames_at(video: bytes | str, indices: list[int]) -> dict[int, np.ndarray]:
    """Full-resolution frames at ``indices`` (one decode pass, stopping after the last one)."""
    want, out = set(indices), {}
    if not want:
        return out
    for i, _, frame in iter_frames(video):
        if i in want:
            out[i] = frame
        if i >= max(want):
            break
    return out
