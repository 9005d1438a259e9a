"""Find shot boundaries in each footage file (one sample per input, cuts in decoded-frame indices)."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.shot_detectors import make_shot_detector
from stages.base import Resources, Sample, Stage
from stages.video import DecodeError, probe


@dataclass
class DetectShots(Stage):
    """Adds ``meta`` fps, frames, size, cuts, shots and ``scratch["times"]`` (per-frame seconds).

    ``threshold`` is the backend's own knob: TransNetV2's probability, or the content
    detector's peak ratio; ``None`` keeps the backend default. ``fades`` (content backend, off by
    default) also cuts at the first frame of each fade to or from black; Memento's sequences are
    built from hard cuts, so its corpus keeps it off (models/shot_fades.py).
    """

    backend: str = "content"  # "content" | "transnetv2"
    threshold: float | None = None
    device: str = "cpu"  # TransNetV2 only: "cuda" on GPU workers (give the stage Resources(gpus=...))
    fades: bool = False
    min_frames: int = 2
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    # 3: a content peak with a neighbour scoring >= 0.4 of it is motion, not a cut; 2: decoder planes, no deblocking
    version: str = "shots/3"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("backend", "threshold", "fades", "min_frames")

    def __post_init__(self) -> None:
        if self.backend not in ("content", "transnetv2"):
            raise ValueError(f"DetectShots.backend must be 'content' or 'transnetv2', got {self.backend!r}")
        if self.fades and self.backend != "content":
            raise ValueError("DetectShots.fades is an option of the 'content' backend")

    def setup(self) -> None:
        self._detector = make_shot_detector(self.backend, self.threshold, self.device, self.fades)

    def process(self, batch: list[Sample]) -> list[Sample]:
        if not hasattr(self, "_detector"):
            self.setup()
        for s in batch:
            try:
                info = probe(s.source["path"])
                res = self._detector.detect(s.source["path"])
            except DecodeError as e:
                s.reject(e.reason, stage=self.name, detail=e.detail)
                continue
            s.footage_s = res.frames / res.fps if res.fps else 0.0
            if res.frames < self.min_frames:
                s.reject("too_few_frames", stage=self.name, detail=f"{res.frames} decodable frame(s)")
                continue
            s.meta.update(
                fps=round(res.fps, 4),
                frames=res.frames,
                size=[info.width, info.height],
                rotation=info.rotation,
                cuts=res.cuts,
                shots=res.shots,
                shot_backend=res.backend,
            )
            s.scratch["times"] = res.times
        return batch
