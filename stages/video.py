"""Video reading and writing through PyAV, shared by every stage.

Frame numbering is always *decoded-frame order*: frame ``i`` is the i-th frame the decoder
returns, which is what a variable-frame-rate file needs (timestamps are kept beside it).
Rotation metadata (phone video) is applied so frames come out upright.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class DecodeError(ValueError):
    """The file is not a decodable video (missing, empty, truncated, no video stream)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # frames the container claims; 0 when unknown (count them with read_frames)
    fps: float
    width: int  # after rotation
    height: int
    duration: float  # seconds
    rotation: int  # degrees, counter-clockwise, as stored in the display matrix


def _open(src: str | Path | bytes) -> av.container.InputContainer:
    if isinstance(src, bytes):
        if not src:
            raise DecodeError("empty_file", "zero bytes")
        return av.open(io.BytesIO(src), mode="r")
    p = Path(src)
    if not p.is_file():
        raise DecodeError("missing_file", str(p))
    if p.stat().st_size == 0:
        raise DecodeError("empty_file", str(p))
    try:
        return av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError) as e:
        raise DecodeError("undecodable", f"{p}: {e}") from e


def _video_stream(c: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not c.streams.video:
        kinds = sorted({s.type for s in c.streams}) or ["none"]
        raise DecodeError("no_video_stream", f"streams: {', '.join(kinds)}")
    return c.streams.video[0]


def _rotation_of(frame: av.VideoFrame) -> int:
    return int(round(getattr(frame, "rotation", 0) or 0)) % 360


def probe(src: str | Path | bytes) -> VideoInfo:
    """Container-level facts, plus the first frame's rotation. Raises DecodeError."""
    try:
        with _open(src) as c:
            s = _video_stream(c)
            rate = s.average_rate or s.guessed_rate or Fraction(0)
            first = next(c.decode(s), None)
            if first is None:
                raise DecodeError("no_frames", "the video stream decodes to nothing")
            rot = _rotation_of(first)
            w, h = first.width, first.height
            if rot in (90, 270):
                w, h = h, w
            dur = float(s.duration * s.time_base) if s.duration else float(c.duration or 0) / av.time_base
            return VideoInfo(frames=int(s.frames or 0), fps=float(rate), width=w, height=h, duration=dur, rotation=rot)
    except av.error.FFmpegError as e:
        raise DecodeError("undecodable", str(e)) from e


def _upright(img: np.ndarray, rotation: int) -> np.ndarray:
    # The display matrix angle is counter-clockwise; np.rot90 with k>0 is also CCW.
    k = {0: 0, 90: 1, 180: 2, 270: 3}.get(rotation, 0)
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def iter_frames(
    src: str | Path | bytes,
    size: tuple[int, int] | None = None,
    threads: int = 0,
    skip_nonkey: bool = False,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, time_s, rgb HxWx3 uint8)`` in decoded order, upright.

    ``size=(w, h)`` scales inside libswscale (cheap); ``threads`` > 0 enables frame
    threading; ``skip_nonkey`` decodes only key frames (for coarse scans).
    """
    try:
        with _open(src) as c:
            s = _video_stream(c)
            if threads:
                s.thread_type = "AUTO"
                s.thread_count = threads
            if skip_nonkey:
                s.codec_context.skip_frame = "NONKEY"
            tb = s.time_base
            for i, f in enumerate(c.decode(s)):
                rot = _rotation_of(f)
                if size is not None:
                    w, h = size if rot not in (90, 270) else (size[1], size[0])
                    img = f.to_ndarray(format="rgb24", width=w, height=h)
                else:
                    img = f.to_ndarray(format="rgb24")
                t = float(f.pts * tb) if f.pts is not None else float("nan")
                yield i, t, _upright(img, rot)
    except av.error.FFmpegError as e:
        raise DecodeError("undecodable", str(e)) from e


def read_frames(
    src: str | Path | bytes, size: tuple[int, int] | None = None, start: int = 0, end: int | None = None
) -> np.ndarray:
    """Decoded frames ``[start, end)`` as a ``(T, H, W, 3)`` uint8 array. Raises DecodeError."""
    out = []
    for i, _, img in iter_frames(src, size=size):
        if i < start:
            continue
        if end is not None and i >= end:
            break
        out.append(img)
    if not out:
        raise DecodeError("no_frames", f"no frames in [{start}, {end})")
    return np.stack(out)


def encode_mp4(frames: np.ndarray, fps: float, crf: int = 18, preset: str = "veryfast") -> bytes:
    """Encode ``(T, H, W, 3)`` uint8 RGB as H.264 in MP4 (yuv420p, even sizes required)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"encode_mp4 needs (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {w}x{h}")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(crf), "preset": preset}
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return buf.getvalue()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 arrays of the same shape (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
