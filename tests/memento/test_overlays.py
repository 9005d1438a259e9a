"""Static overlays on generated films: a corner logo, a half-transparent watermark and a copyright line.

The film carries burned-in subtitles too (lifted above the copyright line); the truth comes
from the renderer. Every overlay must be reported as an overlay and never as a subtitle, the
band must be the subtitle rows (not the copyright line), and the crop must cut the overlays
away when it can afford to, else the sequence is flagged ``overlay_kept``.
"""

from __future__ import annotations

import pytest

from pipelines.demo_memento import hard_cases_film, memento_film, render_film
from stages.subtitles import make_finder, plan_crop
from tests.geometry import box_iou


def overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    path = tmp_path_factory.mktemp("overlays") / "marked.mp4"
    truth = render_film(path, hard_cases_film(watermark=True, copyright=True))
    finder = make_finder()
    return finder.analyze(str(path), 0, None, truth["fps"], *truth["size"]), truth, finder


def test_every_overlay_is_an_overlay_and_never_a_subtitle(marked):
    res, truth, _ = marked
    assert len(truth["overlays"]) == 3  # logo, watermark, copyright line
    for t in truth["overlays"]:
        assert any(box_iou(o["box"], t) > 0.5 for o in res["overlays"]), (t, res["overlays"])
        assert not any(overlaps(e["box"], t) for e in res["events"]), t
    assert len(res["overlays"]) == 3


def test_band_and_events_with_a_copyright_line_below(marked):
    res, truth, finder = marked
    ink = truth["ink_band"]  # the rows the letters cover
    iou = max(0, min(res["band"][1], ink[1]) - max(res["band"][0], ink[0])) / (max(res["band"][1], ink[1]) - min(res["band"][0], ink[0]))
    assert iou >= 0.8, (res["band"], ink)
    assert res["band"][1] < truth["copyright_box"][1]  # the band stops above the copyright line
    step = finder.sampling(truth["fps"], *truth["size"])[0]
    tol = step + 2
    hits = [t for t in truth["subtitle_events"] if any(
        abs(e["start"] - t["start"]) <= tol and abs(e["end"] - t["end"]) <= tol and box_iou(e["box"], t["box"]) > 0.5
        for e in res["events"])]
    assert len(hits) / len(truth["subtitle_events"]) >= 0.9


def test_crop_cuts_edge_overlays_within_budget_and_keeps_the_rest(marked):
    res, truth, _ = marked
    W, H = truth["size"]
    boxes = [o["box"] for o in res["overlays"]]
    plan = plan_crop(W, H, res["letterbox"], res["band"], overlays=boxes)
    plain = plan_crop(W, H, res["letterbox"], res["band"])
    # Both top corners go with one strip off the top: one overlay's budget, not two.
    assert plan["kept_overlays"] == [] and plan["kept_fraction"] >= (1 - 0.35) * plain["kept_fraction"]
    assert not any(overlaps(plan["crop"], t) for t in truth["overlays"])
    tight = plan_crop(W, H, res["letterbox"], res["band"], overlays=boxes, overlay_budget=0.0)
    kept = [boxes[k] for k in tight["kept_overlays"]]
    assert kept and all(overlaps(tight["crop"], b) for b in kept)  # top corners cost a strip: over a zero budget
    # An overlay in mid-frame cannot be cut at any reasonable price: kept and reported.
    mid = plan_crop(W, H, [0, 0, W, H], None, overlays=[[W // 2 - 20, H // 2 - 8, W // 2 + 20, H // 2 + 8]])
    assert mid["kept_overlays"] == [0] and mid["kept_fraction"] > 0.9


def test_stage_flags_overlay_kept_and_the_report_draws_it(tmp_path):
    from pipelines.build_memento_corpus import (
        CaptionConfig,
        MementoConfig,
        QualityConfig,
        SequenceConfig,
        SubtitleConfig,
        TrackingConfig,
        front_half,
    )
    from pipelines.report_samples import overlays_in_clip
    from pipelines.runner import SequentialRunner
    from stages.base import Sample

    path = tmp_path / "film.mp4"
    truth = render_film(path, memento_film(320, 180, 24.0, scale=0.25, watermark=True, copyright=True))

    def run(**sub):
        cfg = MementoConfig(sequences=SequenceConfig(min_seconds=9, max_seconds=15, min_shot_seconds=1.25),
                            quality=QualityConfig(min_short_side=100), subtitles=SubtitleConfig(min_kept_fraction=0.3, **sub),
                            tracking=TrackingConfig(enabled=False), captions=CaptionConfig(enabled=False))
        stages = front_half(cfg)
        assert type(stages[-1]).__name__ == "WriteClip"  # not needed here: the crop is decided before it
        return list(SequentialRunner().run(stages[:-1], [Sample(id="f", source={"path": str(path)})]))

    cut = run()  # 180p: the logo, watermark and band are big next to the frame, hence a 0.3 floor
    assert cut and all(not s.rejected for s in cut), [s.errors for s in cut]
    for s in cut:
        m = s.meta
        assert m["overlay_kept"] == 0 and {o["kept"] for o in m["subtitles"]["overlays"]} == {False}
        assert not any(overlaps(m["crop"], t) for t in truth["overlays"])
        assert overlays_in_clip(m) == []
    flagged = run(overlay_budget=0.0)
    assert flagged and all(s.rejected and s.reason == "overlay_kept" for s in flagged)
    m = flagged[0].meta
    assert m["overlay_kept"] >= 1 and any(o["kept"] for o in m["subtitles"]["overlays"])
    boxes = overlays_in_clip(m)  # the report outlines what stayed in, as fractions of the clip frame
    assert len(boxes) == m["overlay_kept"] and all(0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1 for b in boxes)
    no_reject = run(overlay_budget=0.0, reject_overlay_kept=False)
    assert all(not s.rejected and s.meta["overlay_kept"] >= 1 for s in no_reject)
