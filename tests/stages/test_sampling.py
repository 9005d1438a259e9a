"""FrameSampler: reference frames only, nearest to each sample time, numbered like a full decode."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.demo_memento import Film, Shot, render_film
from stages.sampling import FrameSampler
from stages.video import DecodeError, encode_mp4, iter_frames


def _indexed_frames(n: int = 120, w: int = 64, h: int = 48) -> np.ndarray:
    """Frame t shows a bright bar at column t % 60 over a grey ramp: every frame is tell-apart."""
    base = np.tile(np.linspace(40, 120, w, dtype=np.float32), (h, 1))
    out = []
    for t in range(n):
        img = base.copy()
        img[:, t % 60] = 255
        out.append(np.repeat(img[..., None], 3, -1).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("sampling") / "bars.mp4"
    path.write_bytes(encode_mp4(_indexed_frames(), 24.0))
    return path, [img for _, _, img in iter_frames(path)]


def _same_frame(img: np.ndarray, full: list[np.ndarray], i: int) -> bool:
    err = [float(np.abs(img.astype(np.int16) - f.astype(np.int16)).mean()) for f in full]
    return int(np.argmin(err)) % 60 == i % 60


def test_samples_sit_near_the_grid_and_are_the_frames_they_claim(video):
    path, full = video
    got = FrameSampler().sample(str(path), 0, 120, 6, None)
    idx = [i for i, _ in got]
    assert idx == sorted(set(idx)) and 0 <= idx[0] and idx[-1] < 120
    assert len(idx) >= 18  # 20 targets; neighbouring targets may share a decoded frame only rarely
    for target in range(0, 120, 6):
        assert min(abs(i - target) for i in idx) <= 2
    for i, img in got:
        assert _same_frame(img, full, i), f"sample {i} is not frame {i}"


def test_non_reference_frames_are_not_decoded(video):
    path, _ = video
    sampler = FrameSampler()
    order = sampler._order(str(path))
    decoded = [i for i, _ in sampler._decoded(str(path), order, 0, 120)]
    assert 0 < len(decoded) < 100  # x264's default B-frames are skipped


def test_a_range_in_the_middle_seeks_and_stays_inside(video):
    path, full = video
    got = FrameSampler().sample(str(path), 50, 90, 12, None)
    assert all(50 <= i < 90 for i, _ in got)
    assert [min(abs(i - t) for i, _ in got) <= 2 for t in (50, 62, 74, 86)] == [True] * 4
    for i, img in got:  # after the seek, still the frames they claim to be
        assert _same_frame(img, full, i), f"sample {i} is not frame {i}"
    small = FrameSampler().sample(str(path), 50, 90, 12, (32, 24))
    assert [i for i, _ in small] == [i for i, _ in got] and small[0][1].shape == (24, 32, 3)


def test_rotated_variable_frame_rate_file(tmp_path):
    film = Film((Shot(30), Shot(30)), 96, 64, 24.0, rotation=90, vfr=True, subtitles=False, logo=False)
    render_film(tmp_path / "phone.mp4", film)
    full = [img for _, _, img in iter_frames(tmp_path / "phone.mp4")]
    got = FrameSampler().sample(str(tmp_path / "phone.mp4"), 10, 60, 5, None)
    assert all(img.shape == full[0].shape for _, img in got)  # upright, like iter_frames
    for i, img in got:
        err = [float(np.abs(img.astype(np.int16) - f.astype(np.int16)).mean()) for f in full]
        assert err[i] <= min(err) + 0.5, f"sample {i} does not match frame {i}"


def test_empty_range_and_bad_calls(video, tmp_path):
    path, _ = video
    with pytest.raises(DecodeError) as e:
        FrameSampler().sample(str(path), 500, 600, 6, None)
    assert e.value.reason == "no_frames"
    with pytest.raises(ValueError, match="step"):
        FrameSampler().sample(str(path), 0, 10, 0, None)
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(DecodeError) as e:
        FrameSampler().sample(str(tmp_path / "junk.mp4"), 0, 10, 2, None)
    assert e.value.reason == "undecodable"
