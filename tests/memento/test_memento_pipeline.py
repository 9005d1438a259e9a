"""The front half end to end: footage folder -> dataset shards of cropped, frame-exact sequence clips."""

from __future__ import annotations

import json
import shutil
import tarfile

import numpy as np
import pytest

from pipelines.build_memento_corpus import MementoConfig, SequenceConfig, build_inputs, build_stages, main
from pipelines.runner import SequentialRunner
from stages.video import psnr, read_frames

SMALL = ["--set", "sequences.min_seconds=7.5", "--set", "sequences.max_seconds=15",
         "--set", "sequences.min_shot_seconds=1.25", "--set", "quality.min_short_side=120", "--set", "run.progress=false"]


@pytest.fixture(scope="module")
def footage_dir(small_film, tmp_path_factory):
    d = tmp_path_factory.mktemp("footage_dir")
    shutil.copy(small_film[0], d / "film.mp4")
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.txt").write_text("not footage")  # ignored by extension
    return d


@pytest.fixture(scope="module")
def built(footage_dir, tmp_path_factory):
    """The whole pipeline, back half included: HOG tracking and a tiny random Qwen3-VL captioner."""
    from models.tiny import build_tiny
    from pipelines.build_memento_corpus import DEMO_CAPTION_LIMITS

    out = tmp_path_factory.mktemp("dataset")
    qwen = build_tiny("qwen3vl", tmp_path_factory.mktemp("tiny"))
    limits = ",".join(f"{k}: {v}" for k, v in DEMO_CAPTION_LIMITS.items())
    assert main(["--footage", str(footage_dir), "--out", str(out), "--runner", "sequential", *SMALL,
                 "--set", f"captions.model={qwen}", "--set", f"captions.limits={{{limits}}}"]) == 0
    samples = {}
    for tar in sorted(out.rglob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, _, member = m.name.partition(".")
                samples.setdefault(key, {})[member] = t.extractfile(m).read()
    return out, samples


def test_sequences_written_with_the_contract(built, small_film):
    _, samples = built
    path, truth = small_film
    assert len(samples) == 2
    for key, members in samples.items():
        assert set(members) == {"json", "clip.mp4"} and "_seq00" in key  # no recon .jpg: nobody to track
        meta = json.loads(members["json"])
        assert meta["tracking"]["primary"] is None and meta["tracking"]["recon_frames"] == []
        caps = meta["captions"]
        assert caps["tiny_random"] and caps["story"] and len(caps["shots"]) == len(meta["shots"])
        for k in ("fps", "frames", "source_frames", "shots", "crop", "kept_fraction", "quality", "subtitles"):
            assert k in meta, k
        a, b = meta["source_frames"]
        assert a in [0, *truth["cuts"]] and b in [*truth["cuts"], truth["frames"]]  # starts and ends on cuts
        assert [[x + a, y + a] for x, y in meta["shots"]] == [s for s in truth["shots"] if a <= s[0] < b]
        assert 7.5 <= meta["frames"] / meta["fps"] <= 15
        x0, y0, x1, y1 = meta["crop"]
        assert y1 <= truth["band"][0], "the subtitle band must be cropped away"
        assert meta["subtitles"]["band"] is not None and meta["subtitles"]["events"]
        assert meta["kept_fraction"] == pytest.approx((x1 - x0) * (y1 - y0) / (320 * 180), abs=1e-3)
        # Frame-exact and cropped: the clip's first/last frames match source frames a and b-1, not their neighbours.
        clip = read_frames(members["clip.mp4"])
        assert clip.shape == (b - a, y1 - y0, x1 - x0, 3)
        src = read_frames(path, start=a - 1 if a else 0, end=b + 1)[:, y0:y1, x0:x1]
        off = 1 if a else 0
        assert psnr(clip[0], src[off]) > 25 and psnr(clip[-1], src[off + b - a - 1]) > 25  # grain, re-encoded
        if a:
            assert psnr(clip[0], src[off]) > psnr(clip[0], src[0]) + 5
        if b < truth["frames"]:
            assert psnr(clip[-1], src[off + b - a - 1]) > psnr(clip[-1], src[-1]) + 5


def test_every_input_has_a_manifest_row(built):
    out, _ = built
    from pipelines.dataset import DatasetFolder

    rows = DatasetFolder(out, "memento").rows("inputs")
    by_status = sorted((r["status"], r.get("reason") or "") for r in rows)
    assert by_status == [("accepted", ""), ("rejected", "empty_file")]


def test_stages_read_top_to_bottom_and_switch_off():
    from pipelines.build_memento_corpus import CaptionConfig, QualityConfig, TrackingConfig

    names = [s.name for s in build_stages(MementoConfig())]
    assert names == ["DetectShots", "SplitSequences", "ScoreQuality", "CropSubtitles", "WriteClip", "TrackSubjects",
                     "CaptionSequence"]
    cfg = MementoConfig(quality=QualityConfig(enabled=False), tracking=TrackingConfig(enabled=False),
                        captions=CaptionConfig(enabled=False))
    assert [s.name for s in build_stages(cfg)] == ["DetectShots", "SplitSequences", "CropSubtitles", "WriteClip"]
    with pytest.raises(ValueError, match="captions.model"):
        from pipelines.build_memento_corpus import resolve_models

        resolve_models(MementoConfig(footage="."))
    with pytest.raises(ValueError, match="min_seconds"):
        SequenceConfig(min_seconds=90)


def test_no_sequence_rejects_the_footage_with_the_rule(footage_dir):
    cfg = MementoConfig(footage=str(footage_dir))
    out = list(SequentialRunner().run(build_stages(cfg)[:2], build_inputs(cfg)))  # paper numbers on 24 s footage
    assert sorted(s.reason for s in out) == ["empty_file", "footage_too_short"]


def test_odd_sized_footage_gives_an_even_cropped_clip(tmp_path):
    import av

    from pipelines.build_memento_corpus import QualityConfig
    from pipelines.demo_memento import Film, Shot, render_film
    from stages.base import Sample

    truth = render_film(tmp_path / "even.mp4", Film(tuple(Shot(40) for _ in range(6)), 322, 182, 24.0, seed=3))
    with av.open(str(tmp_path / "odd.mp4"), "w") as c:  # x264 takes odd sizes in 4:4:4
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 321, 181, "yuv444p"
        for img in read_frames(tmp_path / "even.mp4"):
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:181, :321]), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    from pipelines.build_memento_corpus import CaptionConfig, TrackingConfig

    cfg = MementoConfig(sequences=SequenceConfig(min_seconds=7.5, max_seconds=15, min_shot_seconds=1.25),
                        quality=QualityConfig(min_short_side=120), tracking=TrackingConfig(enabled=False),
                        captions=CaptionConfig(enabled=False))
    out = list(SequentialRunner().run(build_stages(cfg), [Sample(id="odd", source={"path": str(tmp_path / "odd.mp4")})]))
    assert len(out) == 1 and not out[0].rejected, out[0].errors
    x0, y0, x1, y1 = out[0].meta["crop"]
    clip = read_frames(out[0].blobs["clip.mp4"])
    assert clip.shape == (truth["frames"], y1 - y0, x1 - x0, 3) and (x1 - x0) % 2 == 0 and (y1 - y0) % 2 == 0
