"""The ray.data.llm path without vLLM: processor config, and the row functions around the engine."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from models.captioner import Captioner, CaptionLimits
from stages.base import Sample
from stages.captions_vllm import (
    CaptionWithVLLM,
    _Prompts,
    merge_group,
    slot_postprocess,
    slot_rows,
    story_postprocess,
    story_preprocess,
)
from stages.video import encode_mp4

STORY = {"story": "Old Fisherman mends a net.", "subjects": [{"name": "Old Fisherman", "description": "grey beard"}]}
LIM = CaptionLimits(total_pixels=4 * 64 * 96, max_frame_pixels=64 * 96)


def _sample():
    video = np.random.default_rng(2).integers(0, 255, (30, 64, 96, 3), dtype=np.uint8)
    return Sample(id="seq1", source={}, meta={"fps": 10.0, "shots": [[0, 14], [15, 29]]},
                  blobs={"clip.mp4": encode_mp4(video, 10), "recon0.jpg": cv2.imencode(".jpg", video[3])[1].tobytes()})


def test_undecodable_clip_is_rejected_not_raised():
    cap = Captioner(_Prompts(), LIM)
    bad = Sample(id="bad", source={}, meta={"fps": 10.0}, blobs={"clip.mp4": b"junk"})
    row = story_preprocess({"sample": pickle.dumps(bad)}, cap)
    s = pickle.loads(row["sample"])
    assert s.rejected and s.reason.startswith("captions_") and row["sampling_params"]["max_tokens"] <= 4


def test_processor_config_matches_ray_data_llm():
    cfg = CaptionWithVLLM(concurrency=2, vllm_batch_size=8).processor_config()
    assert cfg.model_source == "Qwen/Qwen3-VL-8B-Instruct" and cfg.batch_size == 8 and cfg.concurrency == 2
    assert cfg.should_continue_on_error is True
    assert cfg.engine_kwargs["limit_mm_per_prompt"] == {"video": 1, "image": 1}
    assert cfg.engine_kwargs["max_model_len"] == 32768


def test_ray_apply_without_vllm_names_the_fix():
    with pytest.raises(ImportError, match="vLLM"):
        CaptionWithVLLM().ray_apply(None)


def test_rows_round_trip_through_a_fake_engine():
    cap = Captioner(_Prompts(), LIM)
    row = story_preprocess({"sample": _sample()}, cap)
    (frames, meta), = row["multimodal_data"]["video"]
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[0] % 2 == 0
    assert meta["fps"] == pytest.approx(frames.shape[0] / 3.0)  # 3 s clip: timestamps come from real time
    assert row["messages"][1]["content"][0] == {"type": "video"}
    assert json.loads(row["sampling_params"]["structured_outputs"]["json"])["required"] == ["story", "subjects"]
    assert row["sampling_params"]["max_tokens"] > LIM.story_chars

    row["generated_text"] = json.dumps(STORY)  # what the vLLM engine stage adds
    row = story_postprocess(row)
    rows = slot_rows(row, cap)
    assert [r["kind"] for r in rows] == ["carrier", "shot", "shot", "recon"]
    assert isinstance(rows[0]["sample"], bytes) and rows[1]["sample"] is None  # pickled once, on the carrier
    assert rows[3]["multimodal_data"]["image"][0].shape[2] == 3
    answers = {"shot": "Old Fisherman ties a knot.", "recon": "Old Fisherman looks at the sea."}
    done = [slot_postprocess({**r, "generated_text": json.dumps({"caption": answers.get(r["kind"], "x")})})
            for r in rows]
    s = merge_group(done, {"backend": "vllm", "model": "m", "tiny_random": False})
    assert not s.rejected, s.errors
    assert s.meta["captions"]["shots"] == [answers["shot"]] * 2 and s.meta["captions"]["recon"] == [answers["recon"]]
    assert "story" not in s.scratch and "caption_frames" not in s.scratch


def test_engine_errors_and_violations_reject_the_sample():
    cap = Captioner(_Prompts(), LIM)
    row = story_postprocess({**story_preprocess({"sample": _sample()}, cap), "__inference_error__": "CUDA OOM"})
    rejected = pickle.loads(row["sample"])
    assert rejected.rejected and rejected.reason == "caption_inference_error"
    assert [r["kind"] for r in slot_rows(row, cap)] == ["carrier"]  # no prompts for a rejected sample

    row = {**story_preprocess({"sample": _sample()}, cap), "generated_text": json.dumps(STORY)}
    rows = slot_rows(story_postprocess(row), cap)
    done = [slot_postprocess({**r, "generated_text": json.dumps({"caption": "He ties a knot."})}) for r in rows]
    s = merge_group(done, {})
    assert s.rejected and s.reason == "caption_pronoun"


def test_back_half_stages_selects_the_ray_vllm_stage():
    from stages.captions import back_half_stages
    from stages.tracking import TrackSubjects

    track, cap = back_half_stages({"sample_fps": 2.0}, {"backend": "vllm_ray", "model": "/models/qwen3vl-8b"})
    assert isinstance(track, TrackSubjects) and track.sample_fps == 2.0
    assert isinstance(cap, CaptionWithVLLM) and cap.model == "/models/qwen3vl-8b" and cap.resources.gpus == 1
    assert hasattr(cap, "ray_apply")
