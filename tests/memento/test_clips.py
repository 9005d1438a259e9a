"""WriteClip: frame-exact ranges, crop, downscale, rotation and bad input, on small synthetic films."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stages.base import Sample
from stages.clips import Mp4Writer, WriteClip, _Cursor, clip_size
from stages.video import probe, psnr, read_frames

W, H, N = 360, 200, 60


def _frame(i: int) -> np.ndarray:
    """A colour ramp with a white bar at x = 10 + 5 i: every frame differs from its neighbours."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.dstack([x * 255 // W, y * 255 // H, (x + 2 * y) % 256]).astype(np.uint8)
    img[:, 10 + 5 * i : 14 + 5 * i] = 255
    return img


def _film(path, rotation: int = 0) -> np.ndarray:
    """Write N upright frames, stored turned clockwise under a display matrix like phone video."""
    sideways = rotation in (90, 270)
    w = Mp4Writer(24.0, H if sideways else W, W if sideways else H, crf=10, rotation=rotation)
    for i in range(N):
        w.write(np.rot90(_frame(i), -(rotation // 90)) if rotation else _frame(i))
    path.write_bytes(w.close())
    return read_frames(path)  # upright, as the pipeline sees it


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "film.mp4"
    return path, _film(path)


def _sample(path, a: int, b: int, crop=None, key="seq") -> Sample:
    meta = {"source_frames": [a, b], "size": [W, H], "fps": 24.0}
    if crop is not None:
        meta["crop"] = crop
    return Sample(id=key, source={"path": str(path)}, meta=meta)


def _best_matches(clip: np.ndarray, src: np.ndarray) -> list[int]:
    """For each clip frame, the index of the source frame it resembles most."""
    return [int(np.argmax([psnr(c, s) for s in src])) for c in clip]


def test_consecutive_sequences_continue_one_decode_and_are_frame_exact(film, monkeypatch):
    path, src = film
    opened = []
    reopen = _Cursor._reopen
    monkeypatch.setattr(_Cursor, "_reopen", lambda self, p: (opened.append(p), reopen(self, p)))
    stage = WriteClip(short_side=0)
    for a, b, reopens in [(0, 20, 1), (20, 45, 1), (47, 60, 1), (10, 30, 2)]:  # the last starts before the cursor
        (s,) = stage.process([_sample(path, a, b)])
        assert not s.rejected, s.errors
        assert len(opened) == reopens, f"[{a}, {b}) opened the file {len(opened)} times"
        clip = read_frames(s.blobs["clip.mp4"])
        assert clip.shape == (b - a, H, W, 3) and s.meta["frames"] == b - a
        assert _best_matches(clip, src) == list(range(a, b))
        assert min(psnr(c, t) for c, t in zip(clip, src[a:b])) > 35
        assert s.meta["clip_size"] == [W, H] and s.meta["crop"] == [0, 0, W, H] and s.meta["kept_fraction"] == 1.0


def test_crop_matches_the_numpy_crop_and_is_made_even(film):
    path, src = film
    (s,) = WriteClip().process([_sample(path, 5, 30, crop=[11, 7, 303, 183])])  # odd offsets, odd width/height
    assert not s.rejected, s.errors
    x0, y0, x1, y1 = s.meta["crop"]
    assert [x0, y0, x1, y1] == [12, 8, 302, 182]  # shrunk inwards onto yuv420p's 2x2 chroma grid
    assert s.meta["clip_size"] == [290, 174]  # short side 174 <= 480: kept
    assert s.meta["kept_fraction"] == pytest.approx(290 * 174 / (W * H), abs=1e-4)
    clip = read_frames(s.blobs["clip.mp4"])
    want = src[5:30, y0:y1, x0:x1]
    assert clip.shape == want.shape
    assert min(psnr(c, t) for c, t in zip(clip, want)) > 35
    assert psnr(clip[0], src[5, y0 + 1 : y1 + 1, x0 + 1 : x1 + 1]) < psnr(clip[0], want[0]) - 5  # not off by one


def test_downscale_to_the_short_side_and_never_upscale(film):
    path, src = film
    (s,) = WriteClip(short_side=100).process([_sample(path, 0, 12)])
    assert not s.rejected, s.errors
    clip = read_frames(s.blobs["clip.mp4"])
    assert clip.shape == (12, 100, 180, 3) and s.meta["clip_size"] == [180, 100]
    assert s.meta["crop"] == [0, 0, W, H] and s.meta["kept_fraction"] == 1.0  # crop stays in source pixels
    want = [cv2.resize(f, (180, 100), interpolation=cv2.INTER_AREA) for f in src[:12]]
    assert min(psnr(c, t) for c, t in zip(clip, want)) > 28
    (s,) = WriteClip(short_side=480).process([_sample(path, 0, 12)])
    assert read_frames(s.blobs["clip.mp4"]).shape == (12, H, W, 3) and s.meta["clip_size"] == [W, H]


def test_clip_size_rules():
    assert clip_size(1110, 624, 480) == (854, 480)
    assert clip_size(624, 1110, 480) == (480, 854)  # portrait: the width is the short side
    assert clip_size(360, 200, 100) == (180, 100)
    assert clip_size(1000, 642, 480) == (748, 480)  # 747.7 rounds to the nearest even width
    assert clip_size(320, 180, 480) == (320, 180) and clip_size(1280, 720, 0) == (1280, 720)
    for bad in (-2, 481):
        with pytest.raises(ValueError, match="short_side"):
            WriteClip(short_side=bad)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_source_gives_an_upright_clip(tmp_path, film, rotation):
    _, upright = film
    path = tmp_path / f"rot{rotation}.mp4"
    src = _film(path, rotation)
    assert probe(path).rotation == rotation and psnr(src, upright) > 40  # the film decodes upright
    (s,) = WriteClip(short_side=0).process([_sample(path, 8, 40, crop=[12, 8, 302, 182])])
    assert not s.rejected, s.errors
    clip = read_frames(s.blobs["clip.mp4"])
    want = src[8:40, 8:182, 12:302]
    assert clip.shape == want.shape
    assert min(psnr(c, t) for c, t in zip(clip, want)) > 35
    assert probe(s.blobs["clip.mp4"]).rotation == 0  # upright pixels, no display matrix left


def test_ranges_past_the_end_are_truncated(film):
    path, _ = film
    stage = WriteClip()
    out = stage.process([_sample(path, 30, N + 10, key="a"), _sample(path, N + 5, N + 20, key="b")])
    assert [s.reason for s in out] == ["clip_truncated", "clip_truncated"]
    assert "wrote 30 of 40" in out[0].errors[0]["detail"] and "clip.mp4" not in out[0].blobs


def test_bad_files_are_rejected_with_a_clip_reason(tmp_path, film):
    path, _ = film
    garbage, cut, empty = tmp_path / "garbage.mp4", tmp_path / "cut.mp4", tmp_path / "empty.mp4"
    garbage.write_bytes(b"not a video at all " * 500)
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    empty.write_bytes(b"")
    stage = WriteClip()
    samples = [_sample(p, 0, 20, key=p.stem) for p in (garbage, cut, empty, tmp_path / "missing.mp4")]
    reasons = [s.reason for s in stage.process(samples)]
    assert all(r and r.startswith("clip_") for r in reasons), reasons
    assert reasons[2:] == ["clip_empty_file", "clip_missing_file"]
    (s,) = stage.process([_sample(path, 0, 20)])  # the stage recovers for the next good file
    assert not s.rejected and read_frames(s.blobs["clip.mp4"]).shape == (20, H, W, 3)
