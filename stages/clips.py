"""Write each sequence as a cropped, frame-exact H.264 clip.

``stages.video.encode_mp4`` takes the whole clip as one array; a 60 s 720p sequence is ~5 GB
of RGB, so clips are encoded frame by frame with :class:`Mp4Writer` (same codec settings).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from stages.base import Resources, Sample, Stage
from stages.sequences import FrameCursor
from stages.video import DecodeError


class Mp4Writer:
    """Streaming twin of ``encode_mp4``: H.264 yuv420p in MP4, frames pushed one at a time."""

    TIME_BASE = Fraction(1, 90000)

    def __init__(self, fps: float, width: int, height: int, crf: int = 18, preset: str = "veryfast",
                 rotation: int = 0) -> None:
        """``rotation``: display-matrix degrees (counter-clockwise) stored for players, as phones do."""
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"H.264 yuv420p needs positive even frame sizes, got {width}x{height}")
        self.buf = io.BytesIO()
        self._c = av.open(self.buf, mode="w", format="mp4")
        self._s = self._c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._s.width, self._s.height, self._s.pix_fmt = width, height, "yuv420p"
        self._s.options = {"crf": str(crf), "preset": preset}
        if rotation:
            self._s.set_display_rotation(rotation)
        self.frames = 0

    def write(self, img: np.ndarray, t: float | None = None) -> None:
        """Append a frame; ``t`` (seconds) gives it an explicit timestamp (variable frame rate)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        if t is not None:
            self._s.codec_context.time_base = self.TIME_BASE
            frame.pts, frame.time_base = round(t / self.TIME_BASE), self.TIME_BASE
        for pkt in self._s.encode(frame):
            self._c.mux(pkt)
        self.frames += 1

    def close(self) -> bytes:
        for pkt in self._s.encode():
            self._c.mux(pkt)
        self._c.close()
        return self.buf.getvalue()


def even_crop(crop: list[int], width: int, height: int) -> list[int]:
    """Clamp ``[x0, y0, x1, y1]`` to the frame and shrink it to even width and height (yuv420p)."""
    x0, y0 = max(0, int(crop[0])), max(0, int(crop[1]))
    x1, y1 = min(width, int(crop[2])), min(height, int(crop[3]))
    x1 -= (x1 - x0) % 2
    y1 -= (y1 - y0) % 2
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"crop {crop} leaves nothing of a {width}x{height} frame")
    return [x0, y0, x1, y1]


@dataclass
class WriteClip(Stage):
    """Decode the sequence's source frames, apply ``meta["crop"]`` and encode ``clip.mp4``."""

    crf: int = 18
    preset: str = "veryfast"
    decode_threads: int = 2
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "clips/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            start, end = s.meta["source_frames"]
            w, h = s.meta["size"]
            crop = even_crop(s.meta.get("crop") or [0, 0, w, h], w, h)
            x0, y0, x1, y1 = crop
            writer = Mp4Writer(s.meta["fps"], x1 - x0, y1 - y0, crf=self.crf, preset=self.preset)
            # Sequences of one film arrive in order: continue one decode across them.
            cursor = self.__dict__.setdefault("_cursor", FrameCursor(threads=self.decode_threads))
            try:
                for _, _, img in cursor.frames(s.source["path"], start, end):
                    writer.write(img[y0:y1, x0:x1])
            except DecodeError as e:
                s.reject(f"clip_{e.reason}", stage=self.name, detail=e.detail)
                continue
            data = writer.close()
            if writer.frames != end - start:
                s.reject("clip_truncated", stage=self.name, detail=f"wrote {writer.frames} of {end - start} frames")
                continue
            s.blobs["clip.mp4"] = data
            s.meta["crop"] = crop
            s.meta["kept_fraction"] = round((x1 - x0) * (y1 - y0) / float(w * h), 4)
            s.meta["frames"] = end - start
        return batch
