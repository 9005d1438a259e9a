"""The Memento demo footage carries a real person, so its corpus has reconstruction frames.

The small demo dataset (tests/conftest.py ``memento_demo_dataset``) is built from the demo footage through
the real pipeline: HOG + ByteTrack must find the composited person in every accepted sequence, and the
reconstruction boxes must sit on that person, where the footage's truth says the person was.
"""

from __future__ import annotations

import json
import tarfile

import cv2
import numpy as np
import pytest

from pipelines.dataset import DatasetFolder
from pipelines.demo_memento import Film, Shot, render_film
from pipelines.demo_memento_dataset import small_demo_footage


def _samples(root) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for tar in sorted(root.rglob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, _, member = m.name.partition(".")
                out.setdefault(key, {})[member] = t.extractfile(m).read()
    return out


@pytest.fixture(scope="module")
def demo(memento_demo_dataset):
    truth = json.loads((small_demo_footage(memento_demo_dataset) / "truth.json").read_text())
    return memento_demo_dataset, _samples(memento_demo_dataset), truth


def _to_film(box: list[float], meta: dict) -> np.ndarray:
    """A clip-pixel box in the source film's pixels: the clip is meta["crop"] scaled to meta["clip_size"]."""
    x0, y0, x1, y1 = meta["crop"]
    cw, ch = meta["clip_size"]
    sx, sy = (x1 - x0) / cw, (y1 - y0) / ch
    return np.array(box, float) * [sx, sy, sx, sy] + [x0, y0, x0, y0]


def test_every_accepted_demo_sequence_has_a_subject_and_two_recon_frames(demo):
    _, samples, truth = demo
    film = truth["film.mp4"]
    assert samples, "the small demo must accept at least one sequence"
    for key, members in samples.items():
        meta = json.loads(members["json"])
        tr = meta["tracking"]
        assert {"recon0.jpg", "recon1.jpg"} <= set(members), key
        assert tr["detector"] == "hog" and tr["sampled_frames"] > 0
        primary = next(t for t in tr["tracks"] if t["id"] == tr["primary"])
        assert primary["frames"] >= 3 and len(primary["shots"]) >= 2  # one identity linked across shots
        assert len(tr["recon_frames"]) == 2 and len(meta["captions"]["recon"]) == 2
        cw, ch = meta["clip_size"]
        a = meta["source_frames"][0]
        for k, rf in enumerate(tr["recon_frames"]):
            img = cv2.imdecode(np.frombuffer(members[f"recon{k}.jpg"], np.uint8), cv2.IMREAD_COLOR)
            assert img is not None and img.shape == (ch, cw, 3)
            x0, y0, x1, y1 = rf["box"]
            assert 0 <= x0 < x1 <= cw and 0 <= y0 < y1 <= ch and rf["track_id"] == tr["primary"]
            assert rf["area"] == pytest.approx((x1 - x0) * (y1 - y0) / (cw * ch), abs=2e-3)
            s0, s1 = meta["shots"][rf["shot"]]
            assert s0 <= rf["frame"] <= s1 < meta["frames"]
            # On the person: most of the box lies inside the real clip's patch at that frame of the film.
            bx = _to_film(rf["box"], meta)
            px = film["people"][a + rf["frame"]]
            assert px is not None, "a recon frame in a shot without the person"
            iw = max(0.0, min(bx[2], px[2]) - max(bx[0], px[0]))
            ih = max(0.0, min(bx[3], px[3]) - max(bx[1], px[1]))
            assert iw * ih >= 0.7 * (bx[2] - bx[0]) * (bx[3] - bx[1]), (key, k, bx, px)
        f0, f1 = (rf["frame"] for rf in tr["recon_frames"])
        assert abs(f0 - f1) / meta["fps"] >= 2.0  # TrackSubjects.min_gap_s


def test_demo_rejects_keep_their_reasons(demo):
    root, samples, _ = demo
    rows = DatasetFolder(root, "memento").rows("inputs")
    by_file = {json.loads(r["source"])["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert {f: (r["status"], r["reason"] or "") for f, r in by_file.items()} == {
        "film.mp4": ("accepted", ""), "short.mp4": ("rejected", "footage_too_short"),
        "choppy.mp4": ("rejected", "all_shots_too_short"), "empty.mp4": ("rejected", "empty_file"),
        "truncated.mp4": ("rejected", "undecodable")}
    assert set(by_file["film.mp4"]["samples"]) == set(samples)
    # A film sequence may only be lost to the random captioner breaking the naming rules, never to tracking.
    seq_rejects = [r for r in DatasetFolder(root, "memento").rows("rejects") if "_seq" in r["key"]]
    assert all(r["reason"].startswith("caption_") for r in seq_rejects), seq_rejects
    assert len(samples) + len(seq_rejects) == 2


def test_people_leave_the_rest_of_the_film_alone(tmp_path):
    shots = (Shot(30), Shot(30, "jump"), Shot(12, "cut", black=True), Shot(30, "fade"))
    plain = render_film(tmp_path / "plain.mp4", Film(shots, 320, 180, 24.0, seed=3))
    people = render_film(tmp_path / "people.mp4", Film(shots, 320, 180, 24.0, seed=3, people=0.6))
    boxes = people.pop("people")
    assert people == plain  # cuts, gradual spans, subtitles, logo: the same truth with or without the person
    assert all(b is None for b in boxes[60:72]) and all(b is not None for b in boxes[:60] + boxes[72:])
    for b in boxes[:60] + boxes[72:]:
        assert 0 <= b[0] < b[2] <= 320 and 0 <= b[1] < b[3] <= 180 and b[3] - b[1] == 108
    # The jump cut continues the same walker a third of the frame away (modulo its bounce off the edges).
    assert boxes[30][1] == boxes[29][1] and boxes[30][0] != boxes[29][0]


def test_missing_people_clip_is_a_clear_error(tmp_path, monkeypatch):
    import pipelines.demo_people as dp

    monkeypatch.setattr(dp, "PEOPLE_CLIP", tmp_path / "absent.mp4")
    dp.role_frames.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="tests/data/real"):
            render_film(tmp_path / "x.mp4", Film((Shot(8),), 320, 180, 24.0, people=0.6))
    finally:
        dp.role_frames.cache_clear()
