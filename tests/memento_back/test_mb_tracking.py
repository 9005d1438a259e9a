"""Tracking + reconstruction-frame choice on generated footage with ground truth, and HOG on real video."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from memento_back_synth import NoisyGT, crossing_scene, cut_scene, mot_counts, render

from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.tracking import Obs, TrackSubjects, choose_recon, link_tracks, summarise
from stages.video import encode_mp4


def _track(scene, frames, min_gap_s=0.5, **kw):
    figs, cut = scene(frames)
    video, gt = render(figs, frames, cut_at=cut)
    shots = [[0, frames - 1]] if cut is None else [[0, cut - 1], [cut, frames - 1]]
    stage = TrackSubjects(sample_fps=30, min_gap_s=min_gap_s, **kw)
    stage._detector = NoisyGT(gt)
    return stage, video, gt, shots


def test_crossing_occlusion_reentry_keeps_identities():
    stage, video, gt, shots = _track(crossing_scene, 90)
    obs, n = stage.observe(encode_mp4(video, 30), 30, shots)
    summary, recon = summarise(obs, n, stage.link_threshold, stage.min_track_frames, 2, 0.5)
    ident = link_tracks(obs, stage.link_threshold, stage.min_track_frames)
    pred = {f: {} for f in range(90)}
    for o in obs:
        pred[o.frame][ident[o.track]] = o.box
    m = mot_counts(gt, pred)
    assert n == 90
    assert m["idsw"] <= 1, m  # blue passes in front of red: at most one switch tolerated
    assert m["mota"] > 0.8, m
    # Green leaves the frame and comes back: its two ByteTrack tracks are linked into one identity.
    linked = [t for t in summary["tracks"] if len(t["track_ids"]) > 1]
    assert len(linked) == 1 and len(summary["tracks"]) == 3, summary["tracks"]
    # Blue (largest, most present) is primary; its recon frames are near its largest boxes (the end).
    blue_id = ident[next(o.track for o in obs if o.frame == 89 and o.box[0] < 60)]
    assert summary["primary"] == blue_id
    assert recon[0].frame >= 85 and abs(recon[0].frame - recon[1].frame) >= 15


def test_cut_links_subject_and_prefers_other_shot():
    stage, video, _gt, shots = _track(cut_scene, 120)
    summary, recon, _ = stage.track(encode_mp4(video, 30), 30, shots)
    primary = next(t for t in summary["tracks"] if t["id"] == summary["primary"])
    assert primary["shots"] == [0, 1], summary  # red in shot A and shot B is one identity
    # Ground truth: the largest red box is the last frame of shot B, the largest in shot A its last frame.
    assert [o.shot for o in recon] == [1, 0]
    assert recon[0].frame >= 115 and recon[1].frame >= 55, [o.frame for o in recon]


def test_choose_recon_rules():
    def ob(frame, shot, area):
        return Obs(frame, frame / 10, shot, 1, np.zeros(4), area, np.zeros(64, np.float32))

    cands = [ob(10, 0, 0.5), ob(11, 0, 0.49), ob(40, 0, 0.3), ob(60, 1, 0.2)]
    assert [o.frame for o in choose_recon(cands, 2, min_gap_s=1.0)] == [10, 60]  # other shot beats larger area
    same = [ob(10, 0, 0.5), ob(11, 0, 0.49), ob(40, 0, 0.3)]
    assert [o.frame for o in choose_recon(same, 2, min_gap_s=1.0)] == [10, 40]  # time gap beats adjacent frame
    assert [o.frame for o in choose_recon(same[:2], 2, min_gap_s=1.0)] == [10]  # nothing far enough: one frame
    assert choose_recon([], 2, 1.0) == []


def test_empty_sequence_reports_absent_recon_frames():
    video = np.full((20, 64, 96, 3), 90, np.uint8)
    s = Sample(id="empty", source={}, meta={"fps": 10.0, "frames": 20, "shots": [[0, 19]]},
               blobs={"clip.mp4": encode_mp4(video, 10)})
    out = next(iter(SequentialRunner().run([TrackSubjects()], [s])))
    assert not out.rejected
    assert out.meta["tracking"]["primary"] is None and out.meta["tracking"]["recon_frames"] == []
    assert not any(k.startswith("recon") for k in out.blobs)
    s2 = Sample(id="empty2", source={}, meta={"fps": 10.0}, blobs={"clip.mp4": encode_mp4(video, 10)})
    out2 = next(iter(SequentialRunner().run([TrackSubjects(require_subject=True)], [s2])))
    assert out2.rejected and out2.reason == "no_subject"


def test_config_and_bad_input():
    with pytest.raises(ValueError, match="bytetrack"):
        TrackSubjects(bytetrack={"nope": 1})
    with pytest.raises(ValueError, match="yolo_weights"):
        TrackSubjects(detector="yolo", yolo_weights="/nonexistent/yolo.pt").setup()
    bad = Sample(id="bad", source={}, meta={"fps": 25.0}, blobs={"clip.mp4": b"not a video"})
    out = next(iter(SequentialRunner().run([TrackSubjects()], [bad])))
    assert out.rejected and out.reason.startswith("tracking_"), out.reason


def test_hog_tracks_people_in_real_footage(real_data):
    data = (real_data / "cuts_people_640x360.mp4").read_bytes()
    s = Sample(id="real", source={}, meta={"fps": 25.0}, blobs={"clip.mp4": data})
    os.environ.setdefault("YOLO_OFFLINE", "1")
    out = next(iter(SequentialRunner().run([TrackSubjects(sample_fps=2.5)], [s])))
    tr = out.meta["tracking"]
    assert tr["primary"] is not None and len(tr["recon_frames"]) == 2
    for k, rf in enumerate(tr["recon_frames"]):
        img = cv2.imdecode(np.frombuffer(out.blobs[f"recon{k}.jpg"], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (360, 640, 3)
        x0, y0, x1, y1 = rf["box"]
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360 and rf["track_id"] == tr["primary"]


def test_bytetrack_defaults_match_installed_yaml():
    import yaml
    from ultralytics.cfg import ROOT as ULTRA

    from stages.tracking import BYTETRACK_DEFAULTS

    cfg = yaml.safe_load((ULTRA / "cfg" / "trackers" / "bytetrack.yaml").read_text())
    assert {k: cfg[k] for k in BYTETRACK_DEFAULTS} == BYTETRACK_DEFAULTS
