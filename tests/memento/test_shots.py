"""Shot boundaries against generated ground truth, the CLI format, odd files and bad input."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from models.shot_detectors import ContentDetector, TransNetV2Detector, cut_f1
from pipelines.cli import main as cli_main
from pipelines.demo_memento import Film, Shot, render_film
from stages.base import Sample
from stages.shots import DetectShots


def test_content_detector_on_hard_cases(hard_film):
    path, truth = hard_film
    res = ContentDetector().detect(path)
    assert res.frames == truth["frames"] and res.fps == pytest.approx(24.0, abs=0.01)
    assert cut_f1(res.cuts, truth["cuts"]) >= 0.9
    # Hard and jump cuts land on the exact first frame of the new shot.
    assert sum(c in truth["cuts"] for c in res.cuts) >= len(truth["cuts"]) - 1
    for a, b in truth["gradual"]:
        assert not [c for c in res.cuts if a - 1 <= c <= b + 1], f"cut inside the fade/dissolve {a}-{b}"
    for fl in truth["flashes"]:
        assert not [c for c in res.cuts if fl - 2 <= c <= fl + 4], f"cut on the flash at {fl}"


def test_jump_cut_keeping_background_and_subtitle(tmp_path):
    film = Film((Shot(40, pan=(0.5, 0.0)), Shot(40, "jump", pan=(0.5, 0.0))), 320, 180, 24.0, subtitle_every=10.0)
    truth = render_film(tmp_path / "jump.mp4", film)
    assert truth["subtitle_events"][0]["start"] < 40 < truth["subtitle_events"][0]["end"]  # subtitle spans the cut
    assert ContentDetector().detect(tmp_path / "jump.mp4").cuts == [40]


def test_rotated_variable_frame_rate_file(tmp_path):
    film = Film(
        (Shot(30), Shot(30), Shot(30, "jump")), 128, 72, 24.0, rotation=90, vfr=True, subtitles=False, logo=False
    )
    truth = render_film(tmp_path / "phone.mp4", film)
    s = DetectShots()([Sample(id="x", source={"path": str(tmp_path / "phone.mp4")})])[0]
    assert not s.rejected
    assert s.meta["size"] == [128, 72] and s.meta["rotation"] == 90  # upright size
    assert s.meta["cuts"] == truth["cuts"] == [30, 60]
    assert s.scratch["times"] == pytest.approx(truth["times"], abs=1e-3)
    assert s.meta["fps"] == pytest.approx((90 - 1) / truth["times"][-1], rel=1e-3)


def test_transnetv2_backend_finds_hard_cuts(tmp_path):
    # 48 frames: one 100-frame window of the model (~3 s on a loaded 2-core CPU)
    film = Film((Shot(16), Shot(16), Shot(16)), 96, 54, 24.0, subtitles=False, logo=False, seed=9)
    truth = render_film(tmp_path / "t.mp4", film)
    res = TransNetV2Detector().detect(tmp_path / "t.mp4")
    assert res.backend == "transnetv2" and res.frames == 48
    assert cut_f1(res.cuts, truth["cuts"]) == 1.0


def test_cli_json_format(hard_film, capsys):
    path, truth = hard_film
    assert cli_main(["shots", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"fps", "frames", "cuts", "shots", "backend"}
    assert out["backend"] == "content" and out["frames"] == truth["frames"]
    assert out["shots"][0][0] == 0 and out["shots"][-1][1] == truth["frames"] - 1
    assert [s[0] for s in out["shots"][1:]] == out["cuts"]


def _one_frame(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def _audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_bad_inputs_get_specific_reasons(tmp_path, hard_film):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "trunc.mp4").write_bytes(hard_film[0].read_bytes()[:5000])
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    _one_frame(tmp_path / "one.mp4")
    _audio_only(tmp_path / "audio.m4a")
    names = ["empty.mp4", "trunc.mp4", "junk.mp4", "one.mp4", "audio.m4a", "missing.mp4"]
    out = DetectShots()([Sample(id=n.split(".")[0], source={"path": str(tmp_path / n)}) for n in names])
    reasons = {s.id: s.reason for s in out}
    assert all(s.rejected for s in out)
    assert reasons["empty"] == "empty_file" and reasons["missing"] == "missing_file"
    assert reasons["one"] == "too_few_frames" and reasons["audio"] == "no_video_stream"
    assert reasons["trunc"] in ("undecodable", "no_frames") and reasons["junk"] == "undecodable"


def test_chunked_scan_equals_one_sequential_scan(hard_film):
    path, truth = hard_film
    det = ContentDetector(min_chunk_frames=40)
    order, bounds = det._plan(path)
    assert len(bounds) >= 3 and [lo for lo, _ in bounds][1:] == sorted({lo for lo, _ in bounds[1:]})
    # x264 puts key frames on cuts, so chunk edges fall on cuts: those are judged from both chunks.
    assert {lo for lo, _ in bounds} & set(truth["cuts"])
    one = ContentDetector(workers=1).detect(path)
    chunked = det.detect(path)
    assert chunked.cuts == one.cuts and chunked.frames == one.frames == truth["frames"] == len(order)
    assert chunked.times == pytest.approx(one.times, abs=1e-9)
    assert cut_f1(chunked.cuts, truth["cuts"]) >= 0.9


def test_chunked_scan_on_rotated_variable_frame_rate_file(tmp_path):
    film = Film(
        (Shot(30), Shot(30), Shot(30, "jump")), 128, 72, 24.0, rotation=90, vfr=True, subtitles=False, logo=False
    )
    truth = render_film(tmp_path / "phone.mp4", film)
    det = ContentDetector(min_chunk_frames=20)
    assert len(det._plan(tmp_path / "phone.mp4")[1]) >= 2
    res = det.detect(tmp_path / "phone.mp4")
    assert res.cuts == truth["cuts"] == [30, 60]
    assert res.times == pytest.approx(truth["times"], abs=1e-3)


def test_one_gop_file_is_scanned_in_one_piece(tmp_path):
    # One key frame only (no scene-cut key frames): nowhere to split, the one-piece scan runs.
    rng = np.random.default_rng(3)
    shots = [np.repeat(rng.integers(0, 255, (1, 48, 64, 3), dtype=np.uint8), 60, 0) for _ in range(3)]
    with av.open(str(tmp_path / "gop.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"crf": "18", "x264-params": "keyint=1000:scenecut=0"}
        for img in np.concatenate(shots):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    det = ContentDetector(min_chunk_frames=20)
    assert det._plan(tmp_path / "gop.mp4") is None
    assert det.detect(tmp_path / "gop.mp4").cuts == [60, 120]


def test_incomplete_chunked_scan_falls_back_to_one_piece(hard_film, monkeypatch, caplog):
    path, truth = hard_film
    expected = ContentDetector(workers=1).detect(path).cuts
    monkeypatch.setattr(ContentDetector, "_complete", staticmethod(lambda parts, n: False))
    res = ContentDetector(min_chunk_frames=40).detect(path)
    assert res.cuts == expected and res.frames == truth["frames"]
    assert "scanning in one piece" in caplog.text


def test_cut_f1_scores_an_empty_prediction_on_a_cut_free_clip_as_perfect():
    assert cut_f1([], []) == 1.0
    assert cut_f1([], [10]) == 0.0 and cut_f1([10], []) == 0.0
    assert cut_f1([11], [10]) == 1.0 and cut_f1([13], [10]) == 0.0  # within / beyond the 2-frame tolerance
    assert cut_f1([10, 40], [10]) == pytest.approx(2 / 3)
