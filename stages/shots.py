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
    detector's peak ratio; ``None`` keeps the backend default.
    """

    backend: str = "content"  # "content" | "transnetv2"
    threshold: float | None = None
    device: str = "cpu"  # TransNetV2 only: "cuda" on GPU workers (give the stage Resources(gpus=...))
    min_frames: int = 2
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "shots/2"  # 2: content backend reads decoder planes, skips deblocking (same cuts on the tests)
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("backend", "threshold", "min_frames")

    def __post_init__(self) -> None:
        if self.backend not in ("content", "transnetv2"):
            raise ValueError(f"DetectShots.backend must be 'content' or 'transnetv2', got {self.backend!r}")

    def setup(self) -> None:
        self._detector = make_shot_detector(self.backend, self.threshold, self.device)

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
