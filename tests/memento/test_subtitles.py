"""Subtitle band, events and overlays against generated ground truth; the crop; the CLI format."""

from __future__ import annotations

import json

import pytest

from models.ocr import make_text_detector
from pipelines.cli import main as cli_main
from stages.subtitles import crop_without_band, make_finder
from tests.geometry import box_iou, iou_1d


def contains_centre(box, truth) -> bool:
    """Overlay boxes only need to say where the logo is: around its centre, not much larger."""
    cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    area = (truth[2] - truth[0]) * (truth[3] - truth[1])
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and (box[2] - box[0]) * (box[3] - box[1]) < 4 * area


@pytest.fixture(scope="module")
def finder():
    return make_finder()


@pytest.fixture(scope="module")
def hard_result(hard_film, finder):
    path, truth = hard_film
    return finder.analyze(str(path), 0, None, truth["fps"], *truth["size"]), truth


def test_band_events_and_overlays(hard_result):
    res, truth = hard_result
    assert res["band"] is not None and iou_1d(res["band"], truth["band"]) >= 0.8
    recalled = [
        t for t in truth["subtitle_events"]
        if any(e["start"] <= t["end"] and t["start"] <= e["end"] and box_iou(e["box"], t["box"]) > 0.5
               for e in res["events"])
    ]
    assert len(recalled) / len(truth["subtitle_events"]) >= 0.9
    # The corner logo is an overlay, never a subtitle.
    assert any(contains_centre(o["box"], truth["logo_box"]) for o in res["overlays"])
    assert not any(box_iou(e["box"], truth["logo_box"]) > 0.1 for e in res["events"])


def test_no_subtitles_means_no_band(tmp_path, finder):
    from pipelines.demo_memento import Film, Shot, render_film

    truth = render_film(tmp_path / "clean.mp4", Film((Shot(48), Shot(48)), 320, 180, 24.0, subtitles=False))
    res = finder.analyze(str(tmp_path / "clean.mp4"), 0, None, 24.0, 320, 180)
    assert res["band"] is None and res["events"] == []
    assert len(res["overlays"]) == 1 and contains_centre(res["overlays"][0]["box"], truth["logo_box"])


def test_crop_removes_band_and_bars_keeping_aspect(letterboxed_film, finder):
    path, truth = letterboxed_film
    res = finder.analyze(str(path), 0, None, 24.0, *truth["size"])
    _x0, y0, _x1, y1 = truth["letterbox"]
    assert res["letterbox"][1] >= y0 and res["letterbox"][3] <= y1  # bars found
    assert abs(res["letterbox"][1] - y0) <= 4 and abs(res["letterbox"][3] - y1) <= 4
    crop, kept = crop_without_band(320, 240, res["letterbox"], res["band"])
    assert crop[3] <= truth["band"][0] and crop[1] >= y0  # neither subtitles nor bars remain
    assert (crop[2] - crop[0]) / (crop[3] - crop[1]) == pytest.approx(320 / 180, rel=0.03)
    assert kept == pytest.approx((crop[2] - crop[0]) * (crop[3] - crop[1]) / (320 * 240), abs=1e-3)
    assert (crop[2] - crop[0]) % 2 == 0 and (crop[3] - crop[1]) % 2 == 0


def test_crop_cuts_a_corner_logo_by_the_cheapest_edge():
    logo = [1180, 20, 1260, 60]  # top-right channel bug on a 1280x720 frame
    crop, kept = crop_without_band(1280, 720, [0, 0, 1280, 720], [640, 690], overlays=[logo])
    inter = max(0, min(crop[2], logo[2]) - max(crop[0], logo[0])) * max(0, min(crop[3], logo[3]) - max(crop[1], logo[1]))
    assert inter == 0 and crop[3] <= 640
    _, plain_kept = crop_without_band(1280, 720, [0, 0, 1280, 720], [640, 690])
    assert 0.7 * plain_kept < kept <= plain_kept  # at most a strip (here free: the aspect trim had slack)


def test_crop_with_top_band_and_fixed_aspect():
    crop, kept = crop_without_band(1280, 720, [0, 0, 1280, 720], [20, 80], aspect=1.0)
    assert crop[1] >= 80 and crop[2] - crop[0] == crop[3] - crop[1]
    assert kept == pytest.approx((crop[2] - crop[0]) ** 2 / (1280 * 720), abs=1e-3)


def test_cli_json_format(hard_film, capsys):
    path, truth = hard_film
    assert cli_main(["subtitles", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # Compatible: the first format's fields all stay (fields are only ever added).
    assert {"band", "events", "overlays", "crop", "kept_fraction"} <= set(out) and out["overlay_kept"] == 0
    assert {"start", "end", "box"} <= set(out["events"][0]) and len(out["crop"]) == 4
    assert {"start", "end", "box", "kept"} <= set(out["overlays"][0]) and out["overlays"][0]["kept"] is False
    assert out["crop"][3] <= truth["band"][0] and 0 < out["kept_fraction"] < 1
    logo, crop = truth["logo_box"], out["crop"]
    assert crop[2] <= logo[0] or crop[1] >= logo[3], "the corner logo must be cut off too"


def test_paddle_backend_without_model_dir_names_the_key():
    with pytest.raises(ValueError, match="model_dir"):
        make_text_detector("paddle")


def test_top_subtitles_are_cropped_from_the_top(tmp_path, finder):
    from pipelines.demo_memento import Film, Shot, render_film

    film = Film((Shot(60), Shot(60, "jump")), 320, 180, 24.0, subtitles_on_top=True, logo=False, subtitle_every=1.5)
    truth = render_film(tmp_path / "top.mp4", film)
    res = finder.analyze(str(tmp_path / "top.mp4"), 0, None, 24.0, 320, 180)
    assert res["band"] is not None and iou_1d(res["band"], truth["band"]) >= 0.7 and res["band"][1] < 90
    crop, _ = crop_without_band(320, 180, res["letterbox"], res["band"])
    assert crop[1] >= truth["band"][1] and crop[3] <= 180
