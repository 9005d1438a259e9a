"""Analysis-scan helpers in stages.video: packet timestamps, plane-based YCrCb frames, skipping and seeking."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from stages.video import DecodeError, demux_pts, encode_mp4, iter_frames, iter_ycrcb

SIZE = (32, 24)


def _moving_frames(n: int = 72, w: int = 96, h: int = 64) -> np.ndarray:
    """Smooth gradients drifting at a different speed per channel, plus a hard change every 24 frames."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t in range(n):
        k = t // 24
        r = 127 + 100 * np.sin((xx + 3 * t) / (9 + 4 * k))
        g = 127 + 100 * np.cos((yy - 2 * t) / (7 + 3 * k))
        b = 127 + 100 * np.sin((xx + yy + t) / (11 + 5 * k))
        out.append(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def bframe_video(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("seek") / "b.mp4"
    path.write_bytes(encode_mp4(_moving_frames(), 24.0))
    full = list(iter_ycrcb(path, SIZE))
    return path, full


def test_demux_pts_numbers_frames_like_the_decoder(bframe_video):
    path, _ = bframe_video
    pts, tb = demux_pts(path)
    assert isinstance(tb, Fraction) and len(pts) == 72
    assert pts != sorted(pts)  # x264 veryfast uses B-frames: file order is not display order
    times = [t for _, t, _ in iter_frames(path, size=SIZE)]
    assert [float(p * tb) for p in sorted(pts)] == pytest.approx(times, abs=1e-9)


def test_iter_ycrcb_matches_rgb_conversion(bframe_video):
    path, full = bframe_video
    rgb = list(iter_frames(path, size=SIZE))
    assert [i for i, _, _ in full] == list(range(72)) and [t for _, t, _ in full] == [t for _, t, _ in rgb]
    for (_, _, ycc), (_, _, img) in zip(full, rgb, strict=True):
        assert ycc.shape == (24, 32, 3) and ycc.dtype == np.uint8
        ref = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.int16)
        # Different resamplers (area vs swscale bilinear) and rounding: close, not identical.
        assert np.abs(ycc.astype(np.int16) - ref).mean() < 4.0


def test_skip_nonref_yields_a_correctly_numbered_subset(bframe_video):
    path, full = bframe_video
    pts, _ = demux_pts(path)
    part = list(iter_ycrcb(path, SIZE, skip_nonref=True, pts_index=pts))
    idx = [i for i, _, _ in part]
    assert 0 in idx and len(idx) < 60 and idx == sorted(set(idx))
    for i, t, img in part:  # reference frames decode identically whether or not the rest is skipped
        assert t == full[i][1] and np.array_equal(img, full[i][2])


@pytest.mark.parametrize("lo, hi", [(37, 50), (0, 5), (60, 71)])
def test_window_after_seek_is_frame_exact(bframe_video, lo, hi):
    path, full = bframe_video
    pts, _ = demux_pts(path)
    order = sorted(pts)
    win = list(iter_ycrcb(path, SIZE, pts_index=pts, start_pts=order[lo], stop_pts=order[hi]))
    assert [i for i, _, _ in win] == list(range(lo, hi + 1))
    for i, t, img in win:
        assert t == full[i][1] and np.array_equal(img, full[i][2])


def test_rotated_vfr_frames_come_out_upright(tmp_path):
    from pipelines.demo_memento import Film, Shot, render_film

    film = Film((Shot(12), Shot(12, "jump")), 64, 48, 24.0, rotation=90, vfr=True, subtitles=False, logo=False)
    truth = render_film(tmp_path / "phone.mp4", film)
    pts, _ = demux_pts(tmp_path / "phone.mp4")
    rgb = list(iter_frames(tmp_path / "phone.mp4", size=(32, 24)))
    ycc = list(iter_ycrcb(tmp_path / "phone.mp4", (32, 24), skip_nonref=True, pts_index=pts))
    assert [t for _, t, _ in rgb] == pytest.approx(truth["times"], abs=1e-3)
    for i, t, img in ycc:
        assert img.shape == (24, 32, 3) and t == rgb[i][1]  # upright, numbered right despite skipping and VFR
        ref = cv2.cvtColor(rgb[i][2], cv2.COLOR_RGB2YCrCb).astype(np.int16)
        # Sharp generated edges at 64x48 separate area averaging from swscale's bilinear more than smooth video.
        assert np.abs(img.astype(np.int16) - ref).mean() < 6.0
        assert np.abs(img.astype(np.int16).mean((0, 1)) - ref.mean((0, 1))).max() < 3.0  # same colours overall


def test_bad_calls(bframe_video, tmp_path):
    path, _ = bframe_video
    with pytest.raises(ValueError, match="pts_index"):
        next(iter_ycrcb(path, SIZE, skip_nonref=True))
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 100)
    with pytest.raises(DecodeError) as e:
        demux_pts(tmp_path / "junk.mp4")
    assert e.value.reason == "undecodable"
