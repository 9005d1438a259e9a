"""Subtitles and overlays on the real clips in tests/data/real, against labels made by eye.

How the labels were made: every frame of each clip was decoded, the subtitle strip cut out
and stacked into PNG sheets with frame numbers (every 5th frame, then every frame around
each change), and looked at with an image viewer. Text rows are the rows holding letter
pixels, read off a luma threshold on the letters (white captions: luma > 235 for the
Russian clip, > 200 for the Chinese one) in every frame of each event and checked on the sheets.
Overlays were read off full frames (PNG, 640x360) at 0, 60, 125, 250, 300 and 450.
"""

from __future__ import annotations

import pytest

from stages.subtitles import make_finder
from stages.video import probe
from tests.geometry import iou_1d

# subtitles_ru_1280x720.mp4 (30 fps, 240 frames): thin, widely letter-spaced white capitals ~11 px tall.
RU_ROWS = [670, 681]
RU_EVENTS = [  # first and last frame showing each caption, inclusive
    (0, 19),  # ЭТО УЛЫБКА
    (20, 41),  # И СМЕХ (short: one 2 fps sample sees it)
    (42, 89),  # ЭТО ГЛАЗА, В КОТОРЫХ ЦЕЛЫЙ ОКЕАН
    (90, 133),  # КРАСОТА В МЫСЛЯХ
    (134, 190),  # В ЭМОЦИЯХ
    (191, 228),  # В ЧУВСТВАХ (same width and place as the line before it)
    (229, 239),  # ОНА НЕОСЯЗАЕМА (the last 0.37 s of the clip)
]
# subtitles_zh_1920x800.mp4 (24 fps, 72 frames): white Chinese subtitles ~40 px tall; no text in 28-36 and 61-71.
ZH_ROWS = [713, 753]
ZH_EVENTS = [(0, 9), (10, 27), (37, 60)]  # 空间里面他绝对赢不了的 / 我进去帮他 / 你们接着善后
# cuts_people_640x360.mp4 (25 fps), frames 0-387: four sources joined by cuts (94, 186, 265).
CUTS_END = 388
CUTS_CAPTIONS = [(50, 89), (226, 264)]  # yellow 门：早看你不爽了 (left of centre, y ~283-306), 哈哈哈哈哈 (y ~316-329)
CUTS_OVERLAYS = [  # (first frame, last frame, a point inside the text)
    (0, 93, (525, 345)),  # two-line disclaimer 监控画面 / 未造成人员伤亡, bottom right
    (94, 185, (445, 344)),  # camera clock 2021-03-27 09:59:4x, bottom, right of centre
    (265, 387, (512, 12)),  # the same disclaimer, two lines, top right
]



def recalled(events: list[dict], truth: list[tuple[int, int]], step: int) -> list[tuple[int, int]]:
    """Truth events found with their start and end right to one sample (``step`` frames, +2 for seeking)."""
    tol = step + 2
    return [t for t in truth if any(abs(e["start"] - t[0]) <= tol and abs(e["end"] - t[1]) <= tol for e in events)]


@pytest.fixture(scope="module")
def finder():
    return make_finder()


def analyze(finder, path, end=None):
    info = probe(path)
    return finder.analyze(str(path), 0, end, info.fps, info.width, info.height), info


def test_thin_spaced_captions_every_event_and_the_rows(real_data, finder):
    res, info = analyze(finder, real_data / "subtitles_ru_1280x720.mp4")
    assert iou_1d(res["band"], RU_ROWS) >= 0.8, res["band"]
    step = finder.sampling(info.fps, info.width, info.height)[0]
    found = recalled(res["events"], RU_EVENTS, step)
    assert len(found) / len(RU_EVENTS) >= 0.9, (found, res["events"])
    assert (229, 239) in found  # the tail is sampled
    assert (134, 190) in found and (191, 228) in found  # same place, new text: two events
    assert res["overlays"] == []


def test_a_gap_without_text_splits_two_subtitles(real_data, finder):
    res, info = analyze(finder, real_data / "subtitles_zh_1920x800.mp4")
    assert iou_1d(res["band"], ZH_ROWS) >= 0.8, res["band"]
    step = finder.sampling(info.fps, info.width, info.height)[0]
    assert recalled(res["events"], ZH_EVENTS, step) == ZH_EVENTS, res["events"]
    # No event covers the text-free frames 28-36 (a reused box used to carry 我进去帮他 across them).
    assert not any(e["start"] <= 30 and e["end"] >= 34 for e in res["events"])
    assert res["overlays"] == []


def test_disclaimers_and_a_camera_clock_are_overlays_captions_are_subtitles(real_data, finder):
    res, info = analyze(finder, real_data / "cuts_people_640x360.mp4", end=CUTS_END)
    for first, last, (px, py) in CUTS_OVERLAYS:
        assert any(o["box"][0] <= px <= o["box"][2] and o["box"][1] <= py <= o["box"][3]
                   and o["start"] <= first + 13 and o["end"] >= last - 13 for o in res["overlays"]), (first, res)
    for e in res["events"]:  # no overlay reported as a subtitle
        assert not any(e["box"][0] <= px <= e["box"][2] and e["box"][1] <= py <= e["box"][3]
                       for _, _, (px, py) in CUTS_OVERLAYS), e
    step = finder.sampling(info.fps, info.width, info.height)[0]
    assert len(recalled(res["events"], CUTS_CAPTIONS, step)) == 2, res["events"]
    assert res["band"][0] <= 285 and res["band"][1] >= 329  # both caption rows are cut


def test_no_band_on_a_street_without_subtitles(real_data, finder):
    res, _ = analyze(finder, real_data / "street_people_1920x1080.mp4")
    assert res["band"] is None and res["events"] == []
