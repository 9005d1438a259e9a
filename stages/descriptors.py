"""DINOv2 segment descriptors for Señorita-Long retrieval (memory-v2v Alg. 2).

Descriptors are the mean per-frame DINOv2 CLS feature of each segment. Target segments are
cut from the *extended* part only (memory-v2v §0.E.2.1: memory is sampled from it), the
source clip gets its own segments, and the original target clip one query descriptor, so a
trainer can rank memory segments with ``models.dino.rank_segments`` without touching pixels.

Default segment length 33 frames: one Señorita clip, i.e. the target-segment length T the
memory model conditions on (RoPE ranges [0,T), [T,2T), [2T,3T)), so each memory segment is
a drop-in T-frame clip. 200 generated frames give 6 segments; the 2-frame tail is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stages.base import Resources, Sample, Stage
from stages.video import DecodeError, read_frames


@dataclass
class SegmentDescriptors(Stage):
    """arrays["source_dino"], ["target_dino"] (memory segments), ["target_query_dino"]; meta["segments"]."""

    model: str = ""  # local DINOv2 folder or hub id, e.g. facebook/dinov2-base (config key below)
    segment_frames: int = 33
    segment_stride: int | None = None  # None: non-overlapping segments
    device: str = "cpu"
    frame_batch: int = 32
    config_key: str = "senorita.descriptors.model"
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    batch_size: int = 1
    version: str = "descriptors/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("model", "segment_frames", "segment_stride")

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError(f"{self.config_key} is empty: give a DINOv2 folder or hub id")
        if self.segment_frames < 1:
            raise ValueError(f"segment_frames must be >= 1, got {self.segment_frames}")
        if self.segment_stride is not None and self.segment_stride < 1:
            raise ValueError(f"segment_stride must be >= 1 or None, got {self.segment_stride}")

    def setup(self) -> None:
        from models.dino import DinoFeatures

        self._dino = DinoFeatures(
            self.model, device=self.device, batch_size=self.frame_batch, config_key=self.config_key
        )

    def _decode(self, s: Sample, name: str):
        data = s.blobs.get(name)
        if not data:
            s.reject(f"missing_{name.split('.')[0]}", stage=self.name, detail=f"no blobs[{name!r}]")
            return None
        try:
            return read_frames(data)
        except DecodeError as e:
            s.reject(f"{name.split('.')[0]}_{e.reason}", stage=self.name, detail=str(e))
            return None

    def process(self, batch: list[Sample]) -> list[Sample]:
        from models.dino import segment_bounds, segment_descriptors

        for s in batch:
            source = self._decode(s, "source.mp4")
            target = None if s.rejected else self._decode(s, "target_extended.mp4")
            if s.rejected:
                continue
            memory = (s.meta.get("extension") or {}).get("memory_frames")
            if not memory or memory[1] > len(target) or memory[0] >= memory[1]:
                s.reject(
                    "no_memory_frames",
                    stage=self.name,
                    detail=f"extension.memory_frames={memory}, decoded {len(target)} frames",
                )
                continue
            src_bounds = segment_bounds(0, len(source), self.segment_frames, self.segment_stride)
            mem_bounds = segment_bounds(memory[0], memory[1], self.segment_frames, self.segment_stride)
            src_feat = self._dino.frame_features(source)
            # Features of the original target frames and the memory part in one pass.
            tgt_feat = self._dino.frame_features(target[: memory[1]])
            s.arrays["source_dino"] = segment_descriptors(src_feat, src_bounds)
            s.arrays["target_dino"] = segment_descriptors(tgt_feat, mem_bounds)
            s.arrays["target_query_dino"] = segment_descriptors(tgt_feat, [(0, memory[0])])
            s.meta["segments"] = {
                "frames": self.segment_frames,
                "stride": self.segment_stride or self.segment_frames,
                "source": [list(b) for b in src_bounds],
                "target": [list(b) for b in mem_bounds],  # rows of target_dino, in extended-clip frames
                "target_query": [0, memory[0]],
                "feature": "dinov2_cls",
                "dim": self._dino.dim,
            }
        return batch
