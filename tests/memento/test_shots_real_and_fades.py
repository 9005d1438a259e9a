"""Shot boundaries on real footage labelled by eye, and the ``fades`` option (issue 14).

Labels of the real clips (tests/data/real, no labels ship with them) were made by eye: a contact
sheet of every 6th (cuts_people) or 4th (subtitles_ru) frame over the whole clip to find every
change of shot, then each boundary's frames c-2..c+1 side by side to place it on the first frame
of the new shot (sheets drawn with stages.video.iter_frames, viewed as PNGs).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.shot_detectors import ContentDetector, cut_f1, make_shot_detector
from models.shot_fades import fade_starts
from pipelines.cli import main as cli_main
from pipelines.demo_memento import hard_cases_film
from stages.base import Sample
from stages.shots import DetectShots

# CCTV street -> CCTV shop (94) -> handheld phone, a man falls to the floor (186) -> restaurant CCTV (265)
# -> snowy yard (388); the same four cuts as the split published by the clip's source repository.
# Frames 219-223 are the fall filmed at arm's length: fast motion inside one shot, not a cut.
CUTS_PEOPLE = [94, 186, 265, 388]
# One studio portrait session, grey background throughout: every boundary is a jump cut (new pose,
# framing or close-up of an eye), no camera change of scene.
SUBTITLES_RU = [20, 42, 90, 134, 151, 166, 178, 191, 229]


@pytest.mark.parametrize("name,truth", [("cuts_people_640x360.mp4", CUTS_PEOPLE),
                                        ("subtitles_ru_1280x720.mp4", SUBTITLES_RU)])
@pytest.mark.parametrize("fades", [False, True])
def test_real_footage_cuts_by_eye(real_data, name, truth, fades):
    cuts = ContentDetector(fades=fades).detect(real_data / name).cuts
    assert cut_f1(cuts, truth) >= 0.9, cuts
    assert not [c for c in cuts if 219 <= c <= 223] or name != "cuts_people_640x360.mp4"  # the fall


def test_fast_motion_burst_is_not_a_cut(real_data):
    # Frame 221 of the phone shot peaks (47) with its neighbours at 28 and 23: motion comes in bursts.
    # (test_real_footage_cuts_by_eye: not a cut by default); without the isolation rule it would be one.
    assert 221 in ContentDetector(isolation=1.0).detect(real_data / "cuts_people_640x360.mp4").cuts


def _fade_firsts(film) -> list[int]:
    """First darkened frame of each fade in a generated film (demo_memento dims the last ``transition``
    frames of the shot before a "fade" shot)."""
    starts = np.cumsum([0] + [s.frames for s in film.shots])
    return [int(starts[i]) - s.transition for i, s in enumerate(film.shots) if s.kind == "fade" and i]


def test_fades_option_reports_each_fade_at_its_first_frame(hard_film):
    path, truth = hard_film
    fades = _fade_firsts(hard_cases_film())
    assert len(fades) == 2 and all([f, f + 23] in truth["gradual"] for f in fades)
    off = ContentDetector().detect(path).cuts
    on = ContentDetector(fades=True).detect(path).cuts
    assert cut_f1(off, truth["cuts"]) >= 0.9 and not set(off) & set(fades)  # default: hard cuts only
    assert sorted(set(on) - set(off)) == fades  # fades add exactly their first frames...
    assert cut_f1(on, sorted(truth["cuts"] + fades)) >= 0.9  # ...and score against a fades-as-cuts truth
    dissolves = [a for a, b in truth["gradual"] if a not in fades]
    assert not [c for c in on if any(a - 1 <= c <= a + 12 for a in dissolves)]  # a dissolve is no fade


def test_fade_starts_on_luma_series():
    ramp_down, ramp_up = list(np.linspace(120, 0, 13)[1:]), list(np.linspace(0, 120, 13)[1:])
    flat = [120.0] * 20
    # fade out then in: one fade, from the first darkened frame to the end of the fade-in
    assert fade_starts(flat + ramp_down + ramp_up + flat) == [(20, 43)]
    # a cut to black, two black seconds, then a fade up: starts at the black
    assert fade_starts(flat + [16.0] * 48 + ramp_up + flat) == [(20, 79)]
    # a dark night scene, or a hard cut to black and back: no ramp, no fade
    assert fade_starts([30.0 + (i % 3) for i in range(60)]) == []
    assert fade_starts(flat + [0.0] * 10 + flat) == []
    # a short dip (3 frames) is not a fade at the default 4 frames
    assert fade_starts(flat + [90.0, 60.0, 30.0, 0.0] + flat) == [] != fade_starts(flat + [90.0, 60.0, 30.0, 0.0] + flat,
                                                                                  min_frames=3)


def test_fades_setting_in_stage_cli_and_config(hard_film, capsys):
    path, _ = hard_film
    (s,) = DetectShots(fades=True)([Sample(id="f", source={"path": str(path)})])
    assert s.meta["cuts"] == ContentDetector(fades=True).detect(path).cuts
    assert "fades" in DetectShots.output_fields  # changing it rebuilds (refresh key)
    assert cli_main(["shots", str(path), "--json", "--fades"]) == 0
    assert json.loads(capsys.readouterr().out)["cuts"] == s.meta["cuts"]
    with pytest.raises(ValueError, match="fades"):
        DetectShots(backend="transnetv2", fades=True)
    with pytest.raises(ValueError, match="fades"):
        make_shot_detector("transnetv2", fades=True)
    from pipelines.build_memento_corpus import ShotsConfig

    assert ShotsConfig().fades is False
    with pytest.raises(ValueError, match="fades"):
        ShotsConfig(backend="transnetv2", fades=True)
