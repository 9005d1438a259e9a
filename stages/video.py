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


def _threads(s: av.video.stream.VideoStream, threads: int) -> None:
    if threads:  # frame threading; 0 keeps FFmpeg's default
        s.thread_type = "AUTO"
        s.thread_count = threads


def _rotation_of(frame: av.VideoFrame) -> int:
    return round(getattr(frame, "rotation", 0) or 0) % 360


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
            _threads(s, threads)
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


# Planar 8-bit layouts whose planes are Y, Cb, Cr (chroma possibly subsampled); anything else goes through swscale.
_YUV_PLANAR = {
    "yuv420p": False,
    "yuv422p": False,
    "yuv444p": False,
    "yuvj420p": True,
    "yuvj422p": True,
    "yuvj444p": True,
}


def demux_index(src: str | Path | bytes) -> tuple[list[int], list[int], Fraction]:
    """Packet presentation timestamps in file (decode) order, those of the key frames, and the time base.

    Reads packets without decoding (cheap). Sorted, entry ``i`` of the first list is decoded frame
    ``i``'s pts, so a scan that skips or seeks can still number its frames in decoded-frame order
    (also right for variable frame rate); pts out of order in file order mean the stream has
    B-frames. Key frames are where an independent decode can start (chunked scans).
    Raises DecodeError, also when a packet has no pts (frames cannot be numbered this way).
    """
    try:
        with _open(src) as c:
            s = _video_stream(c)
            packets = [(p.pts, p.is_keyframe) for p in c.demux(s) if p.size]
            tb = s.time_base
    except av.error.FFmpegError as e:
        raise DecodeError("undecodable", str(e)) from e
    if any(p is None for p, _ in packets):
        raise DecodeError("no_pts", "a video packet has no presentation timestamp")
    return [p for p, _ in packets], [p for p, key in packets if key], tb


def demux_pts(src: str | Path | bytes) -> tuple[list[int], Fraction]:
    """:func:`demux_index` without the key frames."""
    pts, _, tb = demux_index(src)
    return pts, tb


def _plane(f: av.VideoFrame, i: int, size: tuple[int, int]) -> np.ndarray:
    """Plane ``i`` as a view, every k-th row and column where that still leaves >= 4x4 samples per output pixel.

    Averaging 16+ regular samples per analysis pixel is as good as all of them for change
    scores, and reading 1/4-1/16 of a 720p plane is most of what the area resize costs.
    """
    p = f.planes[i]
    k = 1
    while p.width // (2 * k) >= 4 * size[0] and p.height // (2 * k) >= 4 * size[1]:
        k *= 2
    return np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[::k, : p.width : k]


def small_ycrcb(f: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """``f`` area-averaged to ``size=(w, h)`` (upright) as full-range YCrCb uint8 (OpenCV's channel order).

    Large downscales average a regular subsample of the planes (>= 4x4 samples per pixel), not every pixel.

    Read straight from the decoder's planes: at analysis sizes a per-frame swscale to RGB costs
    more than decoding the frame. Limited-range ("tv") video is expanded so values match
    ``cv2.cvtColor(rgb, COLOR_RGB2YCrCb)`` of the same picture.
    """
    import cv2  # only analysis needs OpenCV

    rot = _rotation_of(f)
    w, h = size if rot not in (90, 270) else (size[1], size[0])
    full = _YUV_PLANAR.get(f.format.name)
    if full is None:
        rgb = f.to_ndarray(format="rgb24", width=w, height=h)
        return _upright(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb), rot)
    y, cb, cr = (cv2.resize(_plane(f, i, (w, h)), (w, h), interpolation=cv2.INTER_AREA) for i in range(3))
    if not full and getattr(f, "color_range", 0) != 2:  # 2 = AVCOL_RANGE_JPEG: yuv420p flagged full range
        y, cr, cb = _TV_TO_PC[0][y], _TV_TO_PC[1][cr], _TV_TO_PC[1][cb]
    return _upright(np.dstack([y, cr, cb]), rot)


def _tv_to_pc() -> tuple[np.ndarray, np.ndarray]:
    v = np.arange(256, dtype=np.float32)
    luma = np.clip(np.rint((v - 16) * 255 / 219), 0, 255).astype(np.uint8)
    chroma = np.clip(np.rint((v - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)
    return luma, chroma


_TV_TO_PC = _tv_to_pc()


def iter_ycrcb(
    src: str | Path | bytes,
    size: tuple[int, int],
    threads: int = 0,
    skip_nonref: bool = False,
    pts_index: list[int] | None = None,
    start_pts: int | None = None,
    stop_pts: int | None = None,
    skip_loop_filter: bool = False,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, time_s, small_ycrcb(frame, size))`` in display order, for analysis scans.

    Without skipping or seeking ``index`` counts decoded frames like :func:`iter_frames`. With
    ``skip_nonref`` (only frames other frames reference are decoded: x264's default B-frames
    are skipped) or ``start_pts`` (seek to the key frame before it, decode from there, yield
    frames from ``start_pts`` on) frames are numbered by their rank in ``pts_index``
    (from :func:`demux_pts`, any order), which is then required, as for ``stop_pts`` (the scan
    ends after that frame).
    While seeking, frames before ``start_pts`` are decoded with non-reference frames skipped.
    ``skip_loop_filter`` skips H.264/HEVC deblocking: faster, with block edges an area-averaged
    analysis size does not see.
    """
    if (skip_nonref or start_pts is not None or stop_pts is not None) and pts_index is None:
        raise ValueError("iter_ycrcb: skip_nonref/start_pts/stop_pts need pts_index (from demux_pts)")
    rank = {p: i for i, p in enumerate(sorted(pts_index))} if pts_index is not None else None
    try:
        with _open(src) as c:
            s = _video_stream(c)
            _threads(s, threads)
            cc = s.codec_context
            if skip_loop_filter:
                cc.options = {**cc.options, "skip_loop_filter": "all"}
            lead_in = start_pts is not None and not skip_nonref
            if skip_nonref or lead_in:
                cc.skip_frame = "NONREF"
            if start_pts is not None:
                c.seek(start_pts, stream=s, backward=True, any_frame=False)
            tb = s.time_base
            n = -1
            for pkt in c.demux(s):
                # Every frame shown at or after start_pts is in a packet at or after the first such packet
                # (file order), so switching to full decoding there misses none of them.
                if lead_in and pkt.pts is not None and pkt.pts >= start_pts:
                    cc.skip_frame = "DEFAULT"
                    lead_in = False
                for f in s.decode(pkt):
                    n += 1
                    if f.pts is None and rank is not None:
                        raise DecodeError("no_pts", "a decoded frame has no presentation timestamp")
                    if start_pts is not None and f.pts < start_pts:
                        continue
                    if stop_pts is not None and f.pts > stop_pts:
                        return
                    i = n if rank is None else rank.get(f.pts, -1)
                    if i < 0:
                        raise DecodeError("no_pts", f"decoded pts {f.pts} is not among the demuxed packets")
                    t = float(f.pts * tb) if f.pts is not None else float("nan")
                    yield i, t, small_ycrcb(f, size)
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
    _, h, w, _ = frames.shape
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
