"""A generated sequence sample (the front half's contract) through tracking and captioning, sequentially."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
from memento_back_synth import NoisyGT, cut_scene, render

from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.captions import CaptionSequence, back_half_stages
from stages.tracking import TrackSubjects
from stages.video import encode_mp4

MEMBER = re.compile(r"^[a-z0-9_]+\.(mp4|jpg|png|json|txt|npy)$")


def _front_half_sample(key: str, video: np.ndarray, shots: list[list[int]], fps: float = 30.0) -> Sample:
    return Sample(id=key, source={"path": f"{key}.mkv"},
                  meta={"fps": fps, "frames": len(video), "shots": shots},
                  blobs={"clip.mp4": encode_mp4(video, fps)})


def _stages(tiny_captioner, gt=None):
    track, cap = back_half_stages({"detector": "hog", "min_gap_s": 0.5},
                                  {"backend": "transformers", "model": tiny_captioner.backend.model,
                                   "limits": tiny_captioner.limits.__dict__})
    assert isinstance(track, TrackSubjects) and isinstance(cap, CaptionSequence)
    if gt is not None:  # HOG cannot see drawn figures: read the ground truth through a noisy detector
        track.setup = lambda: setattr(track, "_detector", NoisyGT(gt, step=1))
        track.sample_fps = 30.0
    cap.setup = lambda: setattr(cap, "_captioner", tiny_captioner)  # reuse the session's loaded model
    return [track, cap]


def test_generated_sequence_gets_recon_frames_and_captions(tiny_captioner):
    figs, cut = cut_scene(120)
    video, gt = render(figs, 120, cut_at=cut)
    s = _front_half_sample("seq_a", video, [[0, cut - 1], [cut, 119]])
    out = next(iter(SequentialRunner().run(_stages(tiny_captioner, gt), [s])))
    assert not out.rejected, out.errors
    tr, c = out.meta["tracking"], out.meta["captions"]
    assert [r["shot"] for r in tr["recon_frames"]] == [1, 0]  # the largest box in each shot of the cut
    for k, r in enumerate(tr["recon_frames"]):
        img = cv2.imdecode(np.frombuffer(out.blobs[f"recon{k}.jpg"], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == video.shape[1:] and r["track_id"] == tr["primary"]
        x0, y0, x1, y1 = r["box"]
        # the box lies on the red figure: its centre pixel is red in the stored jpg (BGR)
        b, g, rr = img[int((y0 + y1) / 2), int((x0 + x1) / 2)]
        assert rr > 150 and g < 90 and b < 90
    assert len(c["shots"]) == 2 and len(c["recon"]) == 2 and c["tiny_random"] is True
    assert all(0 < len(x) <= tiny_captioner.limits.shot_chars for x in c["shots"])
    json.dumps(out.meta)  # the shard writer's .json member
    assert all(MEMBER.match(k) for k in out.blobs) and not out.arrays


def test_one_shot_sequence_with_nobody(tiny_captioner):
    video = np.random.default_rng(3).integers(80, 120, (30, 128, 160, 3), dtype=np.uint8)
    s = _front_half_sample("seq_b", video, [[0, 29]], fps=10.0)
    out = next(iter(SequentialRunner().run(_stages(tiny_captioner), [s])))
    assert not out.rejected, out.errors
    assert out.meta["tracking"]["primary"] is None and out.meta["tracking"]["recon_frames"] == []
    assert out.meta["captions"]["recon"] == [] and len(out.meta["captions"]["shots"]) == 1
    assert "recon0.jpg" not in out.blobs
