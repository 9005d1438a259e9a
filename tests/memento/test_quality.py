"""Quality measures on frames made in code with known answers, and the stage's reject reasons."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.demo_memento import _texture
from stages.quality import ScoreQuality, detect_letterbox


def textured(n: int, h: int = 180, w: int = 320, move: int = 6, bars: int = 0) -> list[np.ndarray]:
    tex = _texture(3, 2 * h, 2 * w)
    frames = []
    for i in range(n):
        img = tex[:h, i * move : i * move + w].copy()
        if bars:
            img[:bars] = 0
            img[h - bars :] = 0
        frames.append(img)
    return frames


@pytest.fixture
def q():
    s = ScoreQuality(min_short_side=100)
    s.setup()
    return s


def test_good_footage_passes(q):
    m = q.measure(textured(16), 320, 180, 0.25)
    assert q.verdict(m) == "" and m["letterbox"] == [0, 0, 320, 180]
    assert m["black_fraction"] == 0 and m["static_fraction"] == 0 and m["aesthetic"] is None


def test_letterbox_in_source_pixels():
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in textured(8, bars=20)]
    # analysis frames at 320x180 stand for a 1280x720 source: bars of 80 source pixels
    box = detect_letterbox(grays, 1280, 720)
    assert box[0] == 0 and box[2] == 1280
    assert 80 <= box[1] <= 88 and 632 <= box[3] <= 640


def test_dark_scene_is_not_letterbox():
    dark = [np.full((180, 320), 8, np.uint8) for _ in range(4)]
    assert detect_letterbox(dark, 320, 180) == [0, 0, 320, 180]


def test_black_static_blurry_lowres(q):
    frames = textured(16)
    black = frames[:6] + [np.zeros_like(frames[0])] * 10
    assert q.verdict(q.measure(black, 320, 180, 0.25)) == "mostly_black"
    m = q.measure([frames[0]] * 12 + frames[1:5], 320, 180, 0.25)
    assert q.verdict(m) == "mostly_static" and m["longest_static_s"] == pytest.approx(11 * 0.25)
    blurred = [cv2.GaussianBlur(f, (0, 0), 6) for f in frames]
    mb = q.measure(blurred, 320, 180, 0.25)
    assert q.verdict(mb) == "blurry" and mb["sharpness"] < q.measure(frames, 320, 180, 0.25)["sharpness"]
    assert ScoreQuality(min_short_side=360).verdict(q.measure(frames, 320, 180, 0.25)) == "low_resolution"


def test_aesthetic_config_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="quality.clip_model"):
        ScoreQuality(clip_model=str(tmp_path / "nope"), aesthetic_head="x").setup()


def test_aesthetic_score_with_a_tiny_clip(tmp_path):
    import torch

    from models.tiny import build_tiny

    clip = build_tiny("clip", tmp_path / "tiny")
    head = torch.nn.Linear(16, 1)  # the tiny CLIP projects to 16 dims (ViT-L/14: 768)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.constant_(head.bias, 7.0)
    torch.save(head.state_dict(), tmp_path / "head.pth")
    q = ScoreQuality(min_short_side=100, clip_model=str(clip), aesthetic_head=str(tmp_path / "head.pth"))
    q.setup()
    m = q.measure(textured(8), 320, 180, 0.25)
    assert m["aesthetic"] == pytest.approx(0.7, abs=1e-4)  # LAION head output / 10
    torch.nn.init.normal_(head.weight)
    torch.save(head.state_dict(), tmp_path / "head.pth")
    q.setup()
    frames = textured(8)
    assert q.measure(frames, 320, 180, 0.25)["aesthetic"] != pytest.approx(0.7, abs=1e-4)  # the features matter
