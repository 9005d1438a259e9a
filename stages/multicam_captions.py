"""Captions every 77 frames (Context-as-Memory §3.4) for multicam videos and long roams.

Uses the Memento captioner (``models.captioner.build_captioner(...).caption_clip``); we never
write our own. With ``captioner=None`` the stage is a recorded no-op: the reason goes to the log
and to ``meta["captions"]``, so a corpus built without a VLM says so in every sample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from stages.base import Resources, Sample, Stage
from stages.camera_poses import numbered_frames
from stages.video import DecodeError, read_frames

log = logging.getLogger(__name__)


def caption_windows(n_frames: int, window: int = 77, min_tail: int = 16) -> list[tuple[int, int]]:
    """``[start, end)`` windows of ``window`` frames; a tail shorter than ``min_tail`` joins the last one."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    out = [(s, min(s + window, n_frames)) for s in range(0, n_frames, window)]
    if len(out) > 1 and out[-1][1] - out[-1][0] < min_tail:
        out[-2:] = [(out[-2][0], n_frames)]
    return out


@dataclass
class CaptionWindows(Stage):
    """One caption per 77-frame window of every video (multicam) or of the roam (cam layout)."""

    captioner: str | None = None  # backend for models.captioner.build_captioner: transformers | openai | vllm
    model: str | None = None  # local folder / served model name for that backend
    window: int = 77
    min_tail: int = 16
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "mc_captions/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("captioner", "model", "window", "min_tail")

    def setup(self) -> None:
        self._cap = None
        if self.captioner is None:
            log.info("CaptionWindows skipped: no captioner configured (captions.captioner is None)")
            return
        from models.captioner import build_captioner

        self._cap = build_captioner(self.captioner, model=self.model)

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            if s.meta.get("layout") == "frames":
                continue  # a static multi-view set is not a video: nothing to caption per 77 frames
            if self._cap is None:
                s.meta["captions"] = {"skipped": "no captioner configured (captions.captioner is None)"}
                continue
            try:
                if s.meta.get("layout") == "multicam":
                    s.meta["captions"] = {cam: self._caption(self._scene_frames(s, cam), s.meta["fps"])
                                          for cam in s.meta["cameras"]}
                else:
                    s.meta["captions"] = self._caption(self._roam_frames(s), s.meta["fps"])
            except DecodeError as e:
                s.reject(e.reason, stage=self.name, detail=e.detail)
            except ValueError as e:  # models.captioner.CaptionError is a ValueError with a reason slug
                s.reject(getattr(e, "reason", "caption_failed"), stage=self.name, detail=str(e))
        return batch

    def _caption(self, frames, fps: float) -> list[dict]:
        out = []
        for start, end in caption_windows(len(frames), self.window, self.min_tail):
            out.append({"start": start, "end": end, "text": self._cap.caption_clip(frames[start:end], fps)})
        return out

    @staticmethod
    def _scene_frames(s: Sample, cam: str) -> np.ndarray:
        blob = s.blobs.get(f"{cam}.mp4")
        return read_frames(blob if blob is not None else Path(s.source["scene_dir"]) / "videos" / f"{cam}.mp4")

    @staticmethod
    def _roam_frames(s: Sample) -> _LazyFrames | np.ndarray:
        if "roam.mp4" in s.blobs:
            return read_frames(s.blobs["roam.mp4"])
        return _LazyFrames(numbered_frames(s.source["frames_dir"]))


class _LazyFrames:
    """A roam too long to hold decoded: PNGs read one window at a time."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, sl: slice) -> np.ndarray:
        imgs = [cv2.imread(str(p)) for p in self.files[sl]]
        if any(i is None for i in imgs):
            raise DecodeError("undecodable", f"unreadable PNG in {self.files[sl][0].parent}")
        return np.stack([cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in imgs])
