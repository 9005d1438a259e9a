"""Frames for analysis stages that look at a few frames a second: decode as little as possible.

Quality (4 fps) and subtitles (2 fps) look at one frame in 6-12. Decoding every frame and
scaling it, as a plain frame iterator does, spends most of the time on frames nobody looks
at. :class:`FrameSampler` instead seeks to the sequence (no decode of the film before it),
decodes reference frames only (x264's non-reference B-frames, about 40 % of frames, are
never decoded) and scales only the frame nearest each sample time. A sample can therefore
sit a frame or two off the regular grid; its index says where it really is.
Stages that sample the same frames (quality, then subtitles) hand them on in ``Sample.scratch``
(:func:`keep_frames` / :func:`take_frames`) instead of decoding twice.
"""

from __future__ import annotations

import av
import numpy as np

from stages.video import DecodeError, _open, _rotation_of, _threads, _upright, _video_stream, demux_pts

KEPT = "analysis_frames"


def keep_frames(s, key: tuple, frames: list) -> None:
    """Leave sampled frames on sample ``s`` for the next stage that samples the same ``key``."""
    s.scratch[KEPT] = (key, frames)


def take_frames(s, key: tuple) -> list | None:
    """The frames a previous stage kept for ``key`` (removed from ``s`` either way: they are big)."""
    kept = s.scratch.pop(KEPT, None)
    return kept[1] if kept is not None and kept[0] == key else None


def frame_rgb(f: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    """``f`` as upright RGB, scaled inside libswscale to ``size=(w, h)`` (upright sizes) when given."""
    rot = _rotation_of(f)
    if size is None:
        return _upright(f.to_ndarray(format="rgb24"), rot)
    w, h = size if rot not in (90, 270) else (size[1], size[0])
    return _upright(f.to_ndarray(format="rgb24", width=w, height=h), rot)


class FrameSampler:
    """``sample(path, start, end, step, size)``: ``[(index, rgb)]``, one frame near each of ``start, start+step, ...``.

    Indices are decoded-frame numbers (display order), found from the packets' timestamps, so
    they agree with the shot detector's numbering, also for variable frame rate. Files whose
    packets lack timestamps are read frame by frame from the start (no skipping possible).
    The timestamp index of the last file is kept: the sequences of one film come one after another.
    """

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._index: tuple[str, list[int] | None] | None = None

    def _order(self, path: str) -> list[int] | None:
        if self._index is None or self._index[0] != path:
            try:
                order = sorted(demux_pts(path)[0])
                self._index = (path, order if len(set(order)) == len(order) else None)
            except DecodeError as e:
                if e.reason != "no_pts":
                    raise
                self._index = (path, None)
        return self._index[1]

    def sample(self, path: str, start: int, end: int | None, step: int, size: tuple[int, int] | None):
        if step < 1 or start < 0:
            raise ValueError(f"sample: need step >= 1 and start >= 0, got step={step}, start={start}")
        order = self._order(str(path))
        end = (len(order) if order is not None else 1 << 62) if end is None else end
        picked = self._pick(path, order, start, end, step, size)
        if not picked:
            raise DecodeError("no_frames", f"no frames in [{start}, {end})")
        return picked

    def _pick(self, path: str, order: list[int] | None, start: int, end: int, step: int, size) -> list:
        targets = iter(range(start, end, step))
        target = next(targets, None)
        picked: list[tuple[int, np.ndarray]] = []
        prev: tuple[int, av.VideoFrame] | None = None

        def take(i: int, f: av.VideoFrame) -> None:
            if not picked or picked[-1][0] != i:  # several targets can share one decoded frame
                picked.append((i, frame_rgb(f, size)))  # now: holding decoded 720p frames costs 1.4 MB each

        for i, f in self._decoded(path, order, start, end):
            while target is not None and i >= target:
                # The nearer of the decoded frames on either side of the target (the target itself when decoded).
                take(*(prev if prev is not None and target - prev[0] < i - target else (i, f)))
                target = next(targets, None)
            if target is None:
                break
            prev = (i, f)
        if target is not None and prev is not None:
            take(*prev)  # the range ended between two decoded frames
        return picked

    def _decoded(self, path: str, order: list[int] | None, start: int, end: int):
        """``(index, frame)`` for the frames decoded in ``[start, end)``: references only when numbered by pts."""
        try:
            with _open(path) as c:
                s = _video_stream(c)
                _threads(s, self.threads)
                if order is None:
                    for i, f in enumerate(c.decode(s)):
                        if i >= end:
                            return
                        if i >= start:
                            yield i, f
                    return
                if start >= len(order):
                    return
                rank = {p: k for k, p in enumerate(order)}
                s.codec_context.skip_frame = "NONREF"
                if start:
                    c.seek(order[start], stream=s, backward=True, any_frame=False)
                for f in c.decode(s):
                    i = rank.get(f.pts, -1)
                    if i >= end:
                        return
                    if i >= start:
                        yield i, f
        except av.error.FFmpegError as e:
            raise DecodeError("undecodable", str(e)) from e
