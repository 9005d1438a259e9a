"""Extend each Señorita target clip forward with FramePack F1 (memory-v2v §0.E.2.1).

The original 33 target frames are kept bit-for-bit before encoding and 200 frames are
generated after them, giving a 233-frame clip whose extended part is the training memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from stages.base import Resources, Sample, Stage
from stages.video import DecodeError, encode_mp4, read_frames


@dataclass
class ExtendTarget(Stage):
    """blobs["target.mp4"] -> blobs["target_extended.mp4"] (original + ``num_new_frames`` generated)."""

    model: str = ""  # local FramePack folder or hub id (config key senorita.extend.model)
    transformer: str | None = None  # e.g. lllyasviel/FramePack_F1_I2V_HY_20250503 when `model` is the base repo
    image_encoder: str | None = None  # e.g. lllyasviel/flux_redux_bfl
    backend: str = "framepack"
    num_new_frames: int = 200
    steps: int = 25
    guidance: float = 10.0
    latent_window_size: int = 9
    resolution: int | None = None  # working area ~ resolution**2 (FramePack buckets use 640); None: input size
    decode_once: bool = False  # True: one VAE pass over all new latents (faster on CPU, more GPU memory)
    device: str = "cpu"
    dtype: str | None = None
    prompt_field: str = "enhanced_instruction"  # falls back to "instruction" when empty
    min_frames: int = 2
    seed: int = 0
    crf: int = 18
    config_key: str = "senorita.extend.model"
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    batch_size: int = 1
    version: str = "extend/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("model", "transformer", "image_encoder", "backend", "num_new_frames", "steps", "guidance",
        "latent_window_size", "resolution", "decode_once", "dtype", "prompt_field", "min_frames", "seed", "crf")

    def __post_init__(self) -> None:
        if self.backend != "framepack":
            raise ValueError(f"backend must be 'framepack', got {self.backend!r}")
        if not self.model:
            raise ValueError(f"{self.config_key} is empty: give a FramePack folder or hub id")
        if self.num_new_frames < 1:
            raise ValueError(f"num_new_frames must be >= 1, got {self.num_new_frames}")
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {self.min_frames}")

    def setup(self) -> None:
        from models.framepack import FramePackExtender
        from models.tiny import is_tiny

        self._extender = FramePackExtender(
            self.model,
            device=self.device,
            dtype=self.dtype,
            steps=self.steps,
            guidance=self.guidance,
            latent_window_size=self.latent_window_size,
            resolution=self.resolution,
            transformer=self.transformer,
            image_encoder=self.image_encoder,
            decode_once=self.decode_once,
            config_key=self.config_key,
        )
        self._tiny = is_tiny(self.model)

    def _prompt(self, s: Sample) -> str:
        return str(s.meta.get(self.prompt_field) or s.meta.get("instruction") or "")

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            data = s.blobs.get("target.mp4")
            if not data:
                s.reject("missing_target", stage=self.name, detail="no blobs['target.mp4']")
                continue
            try:
                frames = read_frames(data)
            except DecodeError as e:
                s.reject(f"target_{e.reason}", stage=self.name, detail=str(e))
                continue
            if len(frames) < self.min_frames:
                s.reject("target_too_short", stage=self.name, detail=f"{len(frames)} < {self.min_frames} frames")
                continue
            if frames.shape[1] % 2 or frames.shape[2] % 2:
                s.reject("target_odd_size", stage=self.name, detail=f"{frames.shape[2]}x{frames.shape[1]}")
                continue
            fps = float(s.meta.get("fps") or 0) or 30.0
            t0 = time.perf_counter()
            try:
                video = self._extender.extend(frames, self._prompt(s), self.num_new_frames, seed=self.seed)
            except (RuntimeError, ValueError) as e:  # e.g. CUDA OOM on a huge clip, a degenerate size
                s.reject("extension_failed", stage=self.name, detail=f"{type(e).__name__}: {e}")
                continue
            seconds = time.perf_counter() - t0
            t = len(frames)
            s.blobs["target_extended.mp4"] = encode_mp4(video, fps=fps, crf=self.crf)
            s.meta["extension"] = {
                "backend": self.backend,
                "model": self.model,
                "transformer": self.transformer,
                "tiny_random": self._tiny,
                "frames_original": t,
                "frames_generated": len(video) - t,
                "memory_frames": [t, len(video)],  # [start, end) of the generated part: the memory
                "steps": self.steps,
                "guidance": self.guidance,
                "seed": self.seed,
                "seconds": round(seconds, 3),
            }
        return batch
