"""Write each sequence as a cropped, scaled, frame-exact H.264 clip.

The picture never goes through RGB: PyAV decodes the source (frame threading), an FFmpeg
filter graph turns each decoded yuv frame upright (transpose/flip for the rotation metadata),
crops it to ``meta["crop"]``, scales it so its short side is ``short_side`` (Memento trains on
480x832) and hands it in yuv420p straight to libx264. The old path (RGB decode, numpy crop,
RGB back to yuv420p) spent ~5 of ~21 ms CPU per 720p frame converting colours, and encoding
at 480p instead of the full crop takes ~9 instead of ~13 ms.

Sequences of one film arrive in order, so :class:`_Cursor` continues one decode across them;
frames are numbered in decoded order, as ``stages.video.iter_frames`` and the shot detector do.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from stages.base import Resources, Sample, Stage
from stages.video import DecodeError, _open, _rotation_of, _threads, _video_stream

# Filters that make a stored picture upright, by display-matrix angle (counter-clockwise, as
# ``stages.video._upright``): a 90 degree matrix means the picture is stored turned clockwise.
_UPRIGHT = {0: [], 90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")]}


class Mp4Writer:
    """Streaming twin of ``encode_mp4``: H.264 yuv420p in MP4, frames pushed one at a time.

    ``write`` takes RGB arrays; ``write_frame`` takes decoded/filtered yuv420p ``av.VideoFrame``s.
    """

    TIME_BASE = Fraction(1, 90000)

    def __init__(
        self, fps: float, width: int, height: int, crf: int = 18, preset: str = "veryfast", rotation: int = 0
    ) -> None:
        """``rotation``: display-matrix degrees (counter-clockwise) stored for players, as phones do."""
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"H.264 yuv420p needs positive even frame sizes, got {width}x{height}")
        self.buf = io.BytesIO()
        self.rate = Fraction(fps).limit_denominator(1001)
        self._c = av.open(self.buf, mode="w", format="mp4")
        self._s = self._c.add_stream("libx264", rate=self.rate)
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
        self._encode(frame)

    def write_frame(self, frame: av.VideoFrame) -> None:
        """Append a yuv420p frame of the writer's size as is, timed by the nominal rate like ``write``."""
        if (frame.width, frame.height, frame.format.name) != (self._s.width, self._s.height, "yuv420p"):
            raise ValueError(
                f"write_frame needs {self._s.width}x{self._s.height} yuv420p, got "
                f"{frame.width}x{frame.height} {frame.format.name}"
            )
        if not self.frames:  # the samples are the source's: so are their colour matrix and range
            cc = self._s.codec_context
            cc.colorspace, cc.color_range = frame.colorspace, frame.color_range
            cc.color_primaries, cc.color_trc = frame.color_primaries, frame.color_trc
        frame.pts, frame.time_base, frame.duration = self.frames, 1 / self.rate, 0
        frame.pict_type = av.video.frame.PictureType.NONE  # a decoder's I/P/B would force libx264's choices
        self._encode(frame)

    def _encode(self, frame: av.VideoFrame) -> None:
        for pkt in self._s.encode(frame):
            self._c.mux(pkt)
        self.frames += 1

    def close(self) -> bytes:
        for pkt in self._s.encode():
            self._c.mux(pkt)
        self._c.close()
        return self.buf.getvalue()


def even_crop(crop: list[int], width: int, height: int) -> list[int]:
    """Clamp ``[x0, y0, x1, y1]`` to the frame and shrink it to even offsets, width and height.

    yuv420p has one chroma sample per 2x2 pixels: an odd offset would crop the chroma half a
    pixel off the luma (colour fringes), so the box shrinks inwards onto the chroma grid.
    """
    x0, y0 = max(0, int(crop[0])), max(0, int(crop[1]))
    x0, y0 = x0 + x0 % 2, y0 + y0 % 2
    x1, y1 = min(width, int(crop[2])), min(height, int(crop[3]))
    x1 -= (x1 - x0) % 2
    y1 -= (y1 - y0) % 2
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"crop {crop} leaves nothing of a {width}x{height} frame")
    return [x0, y0, x1, y1]


def clip_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Even ``(w, h)`` with the short side ``short_side`` and the aspect kept; never upscales (0: keep)."""
    if not short_side or min(width, height) <= short_side:
        return width, height
    k = short_side / min(width, height)
    return max(2, 2 * round(width * k / 2)), max(2, 2 * round(height * k / 2))


class _Cursor:
    """Decoded ``av.VideoFrame``s ``[start, end)`` of a file, continuing the decode when ranges come in order.

    Restarting at frame 0 for each sequence would decode a film N times for N sequences; a range
    before the cursor (or another file) reopens it.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._path: str | None = None
        self._c = self._it = None
        self.pos = 0  # index of the next frame the decoder returns

    def frames(self, path: str, start: int, end: int) -> Iterator[av.VideoFrame]:
        if self._path != str(path) or start < self.pos:
            self._reopen(str(path))
        try:
            while self.pos < end:
                f = next(self._it, None)
                if f is None:
                    return  # end of file; the caller counts what it got
                self.pos += 1  # before yielding: a consumer that stops early leaves the cursor right
                if self.pos > start:
                    yield f
        except av.error.FFmpegError as e:
            self.close()
            raise DecodeError("undecodable", str(e)) from e

    def _reopen(self, path: str) -> None:
        self.close()
        c = _open(path)  # DecodeError for missing, empty or unreadable files
        try:
            s = _video_stream(c)
        except DecodeError:
            c.close()
            raise
        _threads(s, self.threads)
        self._c, self._it, self._path, self.pos = c, c.decode(s), path, 0

    def close(self) -> None:
        if self._c is not None:
            self._c.close()
        self._c = self._it = self._path = None


def _filter_graph(f: av.VideoFrame, rotation: int, crop: list[int], size: tuple[int, int], flags: str):
    """buffer -> upright -> crop -> scale (if needed) -> yuv420p -> buffersink, for frames like ``f``."""
    g = av.filter.Graph()
    x0, y0, x1, y1 = crop
    chain = [
        g.add_buffer(width=f.width, height=f.height, format=f.format, time_base=f.time_base or Fraction(1, 90000))
    ]
    chain += [g.add(name, args) for name, args in _UPRIGHT.get(rotation, [])]  # others: as iter_frames
    chain.append(g.add("crop", f"{x1 - x0}:{y1 - y0}:{x0}:{y0}"))  # even_crop put it on the chroma grid
    if size != (x1 - x0, y1 - y0):
        chain.append(g.add("scale", f"{size[0]}:{size[1]}:flags={flags}"))
    chain += [g.add("format", "yuv420p"), g.add("buffersink")]
    g.link_nodes(*chain)
    g.configure()
    return g


def _drain(g: av.filter.Graph, writer: Mp4Writer) -> None:
    while True:
        try:
            out = g.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        writer.write_frame(out)


@dataclass
class WriteClip(Stage):
    """Decode the sequence's source frames, crop to ``meta["crop"]``, scale and encode ``clip.mp4``."""

    crf: int = 18
    # libx264 at crf 18 on 854x480 crops of a 720p film, 2 cores (frames/s, MB per minute of clip):
    # ultrafast 342 f/s 79 MB, superfast 172 f/s 37 MB, veryfast 154 f/s 12 MB, faster 87 f/s 14 MB,
    # fast 72 f/s 15 MB. veryfast writes the smallest files; the faster presets triple them or worse.
    preset: str = "veryfast"
    short_side: int = 480  # Memento trains on 480x832; 0 keeps the crop's size
    # swscale's bicubic widens its kernel when shrinking, so it antialiases like area, and keeps
    # ~25 % more fine detail (Laplacian variance, 720p -> 480p) for ~0.5 ms/frame more.
    scale_flags: str = "bicubic"
    decode_threads: int = 2
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "clips/2"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("crf", "preset", "short_side", "scale_flags")

    def __post_init__(self) -> None:
        if self.short_side < 0 or self.short_side % 2:
            raise ValueError(f"short_side must be 0 (keep) or a positive even number, got {self.short_side}")

    def process(self, batch: list[Sample]) -> list[Sample]:
        # Sequences of one film arrive in order: one cursor continues the decode across them.
        cursor = self.__dict__.setdefault("_cursor", _Cursor(self.decode_threads))
        for s in batch:
            start, end = s.meta["source_frames"]
            w, h = s.meta["size"]
            crop = even_crop(s.meta.get("crop") or [0, 0, w, h], w, h)
            x0, y0, x1, y1 = crop
            size = clip_size(x1 - x0, y1 - y0, self.short_side)
            writer = Mp4Writer(s.meta["fps"], *size, crf=self.crf, preset=self.preset)
            graph, key = None, None
            try:
                for f in cursor.frames(s.source["path"], start, end):
                    rot = _rotation_of(f)
                    if (f.width, f.height, f.format.name, rot) != key:  # a graph is built for one input shape
                        if graph is not None:
                            graph.push(None)
                            _drain(graph, writer)
                        key = (f.width, f.height, f.format.name, rot)
                        graph = _filter_graph(f, rot, crop, size, self.scale_flags)
                    graph.push(f)
                    _drain(graph, writer)
                if graph is not None:
                    graph.push(None)
                    _drain(graph, writer)
                data = writer.close()
            except DecodeError as e:
                s.reject(f"clip_{e.reason}", stage=self.name, detail=e.detail)
                continue
            except av.error.FFmpegError as e:  # the filter or the encoder refused (e.g. a crop off the frame)
                s.reject("clip_filter_failed", stage=self.name, detail=f"{type(e).__name__}: {e}")
                continue
            if writer.frames != end - start:
                s.reject("clip_truncated", stage=self.name, detail=f"wrote {writer.frames} of {end - start} frames")
                continue
            s.blobs["clip.mp4"] = data
            s.meta["crop"] = crop
            s.meta["clip_size"] = list(size)
            s.meta["kept_fraction"] = round((x1 - x0) * (y1 - y0) / float(w * h), 4)
            s.meta["frames"] = end - start
        return batch
