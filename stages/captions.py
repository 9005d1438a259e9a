"""Memento's three caption stages on a sequence sample, with validation and bounded re-asks.

Reads ``clip.mp4``, ``meta["shots"]``, ``recon{k}.jpg`` and ``meta["tracking"]``; writes
``meta["captions"]``. Requests are batched across the samples of a batch: all stories first, then
every shot and reconstruction caption in one go (both only need the story). A caption that breaks
the naming rules is re-asked with the violation stated, at most ``max_retries`` times, then the
sample is rejected with the violation's slug. The Ray + vLLM variant is ``CaptionWithVLLM``
(stages/captions_vllm.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from models.captioner import CaptionError, CaptionLimits, Request, build_captioner, with_feedback
from stages.base import Resources, Sample, Stage
from stages.caption_validation import Violation, check_caption, check_story
from stages.tracking import TrackSubjects
from stages.video import DecodeError, iter_frames

# Errors the backend already retried (server down) or that a re-ask cannot fix.
_FINAL = {"caption_server_unavailable", "caption_server_error", "caption_backend_error"}


@dataclass
class _Job:
    """One caption to obtain: how to ask, how to check, and what came back."""

    sample: int
    slot: tuple[str, int]  # ("story", 0) | ("shot", i) | ("recon", k)
    request: Request
    check: Callable[[dict[str, Any]], list[Violation]]
    result: dict[str, Any] | None = None
    error: CaptionError | None = None
    feedback: str = ""
    retries: int = 0


def decode_for_captions(video: bytes, fps: float, lim: CaptionLimits) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames kept at about twice the caption sampling rate, at most the per-frame pixel cap.
    Returns (frames, their source indices, their rate). Keeping all frames of a 60 s clip would not fit."""
    step = max(1, int(fps // (2 * lim.video_fps)))
    kept, idx = [], []
    for i, _, frame in iter_frames(video):
        if i % step:
            continue
        h, w = frame.shape[:2]
        f = min(1.0, (lim.max_frame_pixels / (h * w)) ** 0.5)
        kept.append(frame if f == 1.0 else cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA))
        idx.append(i)
    if not kept:
        raise DecodeError("no_frames", "clip.mp4 decodes to nothing")
    return np.stack(kept), np.asarray(idx), fps / step


@dataclass
class CaptionSequence(Stage):
    """Story + subject inventory, one caption per shot, one per reconstruction frame (Memento §3.1)."""

    backend: str = "transformers"  # "transformers" | "openai" | "vllm" (in-process; Ray: CaptionWithVLLM)
    model: str = ""  # local folder (transformers), served model name (openai), hub id or folder (vllm)
    backend_kwargs: dict = field(default_factory=dict)  # e.g. {"base_url": ..., "device": "cuda"}
    limits: CaptionLimits = field(default_factory=CaptionLimits)
    max_retries: int = 2
    check_names: bool = True  # re-ask captions with pronouns / unnamed or unknown names
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    batch_size: int = 4
    version: str = "captions/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("backend", "model", "limits", "check_names")

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"captions.max_retries must be >= 0, got {self.max_retries}")

    def setup(self) -> None:
        self._captioner = build_captioner(self.backend, self.model or None, self.limits, **self.backend_kwargs)

    def _ask(self, jobs: list[_Job]) -> None:
        pending = jobs
        for attempt in range(self.max_retries + 1):
            if not pending:
                return
            reqs = [with_feedback(j.request, j.feedback) for j in pending]
            again = []
            for j, a in zip(pending, self._captioner.answer(reqs)):
                problems = [] if isinstance(a, CaptionError) else (j.check(a) if self.check_names else [])
                if not isinstance(a, CaptionError) and not problems:
                    j.result, j.error = a, None
                    continue
                if isinstance(a, CaptionError):
                    j.error = a
                    j.feedback = f"it was not valid JSON matching the schema ({a.detail[:200]})."
                else:
                    j.error = CaptionError(problems[0].reason, " ".join(p.message for p in problems))
                    j.feedback = j.error.detail
                if attempt < self.max_retries and j.error.reason not in _FINAL:
                    j.retries += 1
                    again.append(j)
            pending = again

    def process(self, batch: list[Sample]) -> list[Sample]:
        lim = self.limits
        work: dict[int, dict[str, Any]] = {}
        for n, s in enumerate(batch):
            fps = float(s.meta.get("fps") or 0)
            if not s.blobs.get("clip.mp4") or fps <= 0:
                s.reject("captions_no_clip", stage=self.name, detail="needs blobs['clip.mp4'] and meta['fps'] > 0")
                continue
            try:
                frames, idx, rate = decode_for_captions(s.blobs["clip.mp4"], fps, lim)
            except DecodeError as e:
                s.reject(f"captions_{e.reason}", stage=self.name, detail=e.detail)
                continue
            shots = s.meta.get("shots") or [[0, int(idx[-1])]]
            recon = [cv2.imdecode(np.frombuffer(s.blobs[k], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
                     for k in sorted(b for b in s.blobs if b.startswith("recon") and b.endswith(".jpg"))]
            work[n] = {"frames": frames, "idx": idx, "rate": rate, "shots": shots, "recon": recon}

        # Stage 1: stories, batched over samples.
        stories = [_Job(n, ("story", 0), self._captioner.story_request(w["frames"], w["rate"]), check_story)
                   for n, w in work.items()]
        self._ask(stories)
        # Stages 2 and 3 both only need the story: one batch for every shot and recon frame.
        jobs: list[_Job] = []
        for j in stories:
            if j.result is None:
                continue
            w, story = work[j.sample], j.result
            names = [x["name"] for x in story["subjects"]]

            def check(a: dict[str, Any], names: list[str] = names) -> list[Violation]:
                return check_caption(a["caption"], names)

            for i, (a, b) in enumerate(w["shots"]):
                sel = (w["idx"] >= a) & (w["idx"] <= b)
                if sel.sum() == 0:  # a shot shorter than the keep step: its nearest kept frame
                    sel = np.abs(w["idx"] - a) == np.abs(w["idx"] - a).min()
                req = self._captioner.shot_request(w["frames"][sel], w["rate"], story, i, len(w["shots"]))
                jobs.append(_Job(j.sample, ("shot", i), req, check))
            for k, img in enumerate(w["recon"]):
                jobs.append(_Job(j.sample, ("recon", k), self._captioner.recon_request(img, story), check))
        self._ask(jobs)

        by_sample: dict[int, list[_Job]] = {}
        for j in stories + jobs:
            by_sample.setdefault(j.sample, []).append(j)
        for n, js in by_sample.items():
            s = batch[n]
            failed = next((j for j in js if j.result is None), None)
            if failed is not None:
                kind, i = failed.slot
                s.reject(failed.error.reason, stage=self.name,
                         detail=f"{kind} {i} after {failed.retries} re-asks: {failed.error.detail}")
                continue
            story = js[0].result
            s.meta["captions"] = {
                "story": story["story"], "subjects": story["subjects"],
                "shots": [j.result["caption"] for j in js if j.slot[0] == "shot"],
                "recon": [j.result["caption"] for j in js if j.slot[0] == "recon"],
                **self._captioner.info, "retries": sum(j.retries for j in js),
            }
        return batch


def back_half_stages(tracking_cfg: dict[str, Any] | None = None, caption_cfg: dict[str, Any] | None = None) -> list[Stage]:
    """The stages the Memento pipeline appends after clip writing: tracking, then captions.
    ``caption_cfg["backend"] == "vllm_ray"`` selects the ray.data.llm stage instead."""
    tracking = TrackSubjects(**(tracking_cfg or {}))
    cfg = dict(caption_cfg or {})
    if cfg.get("backend") == "vllm_ray":
        from stages.captions_vllm import CaptionWithVLLM

        cfg.pop("backend")
        return [tracking, CaptionWithVLLM(**cfg)]
    if isinstance(cfg.get("limits"), dict):
        cfg["limits"] = CaptionLimits(**cfg["limits"])
    return [tracking, CaptionSequence(**cfg)]

