"""The captioner on the tiny random Qwen3-VL: real loading path, constrained JSON, frame sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.captioner import (
    Captioner,
    CaptionLimits,
    caption_schema,
    fit_size,
    parse_answer,
    sample_video,
    schema_problem,
    story_schema,
)
from models.json_constraint import char_budget


def _frames(t=40, h=72, w=128, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (t, h, w, 3), dtype=np.uint8)


def test_tiny_model_loads_through_production_classes(tiny_qwen):
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    proc = AutoProcessor.from_pretrained(tiny_qwen)
    model = Qwen3VLForConditionalGeneration.from_pretrained(tiny_qwen)
    assert type(proc).__name__ == "Qwen3VLProcessor"
    assert model.config.video_token_id == proc.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_constrained_answers_are_schema_valid(tiny_captioner, small_limits):
    frames = _frames()
    story = tiny_captioner.story(frames, 10.0)
    assert schema_problem(story, story_schema(small_limits), "$") == ""
    assert 1 <= len(story["story"]) <= small_limits.story_chars
    shots = tiny_captioner.answer([tiny_captioner.shot_request(frames[:20], 10.0, story, 0, 2),
                                   tiny_captioner.shot_request(frames[20:], 10.0, story, 1, 2)])
    assert all(isinstance(s, dict) and 1 <= len(s["caption"]) <= small_limits.shot_chars for s in shots), shots
    assert 1 <= len(tiny_captioner.recon(frames[0], story)) <= small_limits.recon_chars
    assert isinstance(tiny_captioner.caption_clip(frames, 10.0), str)
    assert tiny_captioner.info == {"backend": "transformers", "model": tiny_captioner.backend.model,
                                   "tiny_random": True}


def test_without_constraint_the_random_model_is_not_json(tiny_captioner, small_limits):
    """The grammar is what makes the tiny model's answers valid: unconstrained, they are noise."""
    b = tiny_captioner.backend
    req = tiny_captioner.story_request(_frames(), 10.0)
    texts = [b.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": req.prompt}]}],
        tokenize=False, add_generation_prompt=True)]
    inputs = b.processor(text=texts, videos=[req.video], video_metadata=[{"fps": req.fps, "total_num_frames": len(
        req.video), "frames_indices": list(range(len(req.video)))}], do_sample_frames=False, return_tensors="pt")
    out = b.net.generate(**inputs, max_new_tokens=40, do_sample=False)
    text = b.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
    assert isinstance(parse_answer(text, req.schema), Exception)


def test_sampling_respects_rate_and_pixel_budget():
    lim = CaptionLimits(total_pixels=16 * 32 * 32 * 4, max_frame_pixels=64 * 32 * 32)
    frames = _frames(t=300, h=360, w=640)  # 10 s at 30 fps
    out, fps = sample_video(frames, 30.0, lim)
    assert out.shape[0] == 20 and fps == pytest.approx(2.0)  # 2 fps over 10 s
    assert out.shape[1] % 32 == 0 and out.shape[2] % 32 == 0
    assert out.shape[0] * out.shape[1] * out.shape[2] <= lim.total_pixels
    assert abs(out.shape[2] / out.shape[1] - 640 / 360) < 0.35  # aspect kept up to 32-px rounding
    one, _ = sample_video(frames[:1], 30.0, lim)  # a one-frame shot still gives the 2 frames a patch needs
    assert one.shape[0] == 2
    assert fit_size(10, 10, 10_000, 32 * 32) == (32, 32)
    with pytest.raises(ValueError):
        sample_video(frames[..., 0], 30.0, lim)


def test_parse_answer_and_budget():
    sch = caption_schema(10)
    assert parse_answer('{"caption": "ok\\u0007"}', sch) == {"caption": "ok "}
    assert parse_answer("{caption: ok}", sch).reason == "caption_not_json"
    assert parse_answer('{"caption": "' + "x" * 11 + '"}', sch).reason == "caption_schema"
    assert parse_answer('{"text": "x"}', sch).reason == "caption_schema"
    longest = json.dumps({"caption": "é" * 10}, ensure_ascii=False)
    assert char_budget(sch) >= len(longest.encode())  # bytes bound tokens for byte-level vocabularies
    with pytest.raises(ValueError, match="maxLength"):
        char_budget({"type": "string"})


def test_backend_construction_errors():
    from models.captioner import build_captioner

    with pytest.raises(ValueError, match="captions.model"):
        build_captioner("transformers", "/nonexistent/qwen")
    with pytest.raises(ValueError, match="captions.backend"):
        build_captioner("nope")
    with pytest.raises(ImportError, match="vLLM"):
        build_captioner("vllm", "Qwen/Qwen3-VL-8B-Instruct")
    assert isinstance(Captioner(object()).limits, CaptionLimits)


def test_decode_counts_characters_like_the_grammar():
    """xgrammar counts a UTF-8-encoded surrogate (3 bytes) as one character; a tokenizer's 'replace'
    decode makes three U+FFFD of it and a maxLength-bounded string came out too long."""
    from models.json_constraint import JsonConstraint

    jc = object.__new__(JsonConstraint)  # only the byte table matters here
    jc._token_bytes = [b'{"caption": "', b"\xed\xb8\x8d", b'"}', b""]
    ids = [0, 1, 1, 2, 3]
    assert parse_answer(jc.decode(ids), caption_schema(2)) == {"caption": "\ufffd\ufffd"}
    replaced = b"".join(jc._token_bytes[i] for i in ids).decode("utf-8", "replace")
    assert parse_answer(replaced, caption_schema(2)).reason == "caption_schema"
