"""Smoke tests on the real clips vendored in tests/data/real (no labels: facts checked by eye on contact sheets)."""

from __future__ import annotations

import pytest

from models.ocr import make_text_detector
from models.shot_detectors import ContentDetector
from stages.subtitles import SubtitleFinder
from stages.video import probe


def test_hard_cuts_in_real_footage(real_data):
    res = ContentDetector().detect(real_data / "cuts_people_640x360.mp4")
    assert res.frames == 630 and res.fps == pytest.approx(25.0, abs=0.01)
    for cut in (94, 186, 388):  # unmistakable scene changes, seen on a contact sheet
        assert cut in res.cuts
    # A studio shoot cut into jump cuts on one grey background.
    jumps = ContentDetector().detect(real_data / "subtitles_ru_1280x720.mp4").cuts
    assert {20, 42, 90, 134} <= set(jumps)


@pytest.mark.parametrize("name", ["subtitles_ru_1280x720.mp4", "subtitles_zh_1920x800.mp4"])
def test_real_subtitle_band_is_found_at_the_bottom(name, real_data):
    info = probe(real_data / name)
    res = SubtitleFinder(make_text_detector("rapidocr")).analyze(str(real_data / name), 0, None, info.fps, info.width,
                                                                 info.height)
    assert res["band"] is not None and res["band"][0] > 0.8 * info.height
    assert res["events"] and not res["overlays"]
