"""Alg. 2 segment ranking, DINOv2 descriptors on a tiny random model, the SegmentDescriptors stage,
and the tiny CLIP folder the evaluator loads."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from models.dino import DinoFeatures, cosine_similarity, rank_segments, segment_bounds, segment_descriptors
from models.tiny import build_tiny
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.descriptors import SegmentDescriptors
from stages.video import encode_mp4


def test_rank_segments_hand_computed_with_recent_first():
    q = np.array([1.0, 0.0])
    cache = np.array(
        [
            [1.0, 1.0],  # cos 1/sqrt2 = 0.7071
            [0.0, 2.0],  # cos 0
            [3.0, 0.0],  # cos 1 (scale must not matter)
            [-1.0, 0.0],  # cos -1
            [1.0, 3.0],  # cos 1/sqrt10 = 0.3162; the most recent segment
        ]
    )
    order, sims = rank_segments(q, cache, enforce_recent_first=False)
    np.testing.assert_allclose(sims, [2**-0.5, 0.0, 1.0, -1.0, 10**-0.5], atol=1e-6)
    assert order.tolist() == [2, 0, 4, 1, 3]
    order, sims2 = rank_segments(q, cache, enforce_recent_first=True)
    assert order.tolist() == [4, 2, 0, 1, 3]  # index N moved to the front, the rest keep their order
    np.testing.assert_array_equal(sims, sims2)
    # When the most recent is already the best, nothing moves and nothing is duplicated.
    order, _ = rank_segments(q, cache[[0, 1, 3, 2]], enforce_recent_first=True)
    assert order.tolist() == [3, 0, 1, 2]


def test_rank_segments_ties_and_zero_descriptors_are_deterministic():
    q = np.array([0.0, 1.0])
    cache = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 5.0], [1.0, 0.0]])
    order, sims = rank_segments(q, cache, enforce_recent_first=False)
    np.testing.assert_allclose(sims, [1.0, 0.0, 1.0, 0.0])
    assert order.tolist() == [0, 2, 1, 3]  # ties: older first
    assert cosine_similarity(q, np.zeros((1, 2))).tolist() == [0.0]


def test_segment_bounds_and_mean_descriptors():
    assert segment_bounds(33, 233, 33) == [(33 + 33 * k, 66 + 33 * k) for k in range(6)]
    assert segment_bounds(0, 10, 4, stride=3) == [(0, 4), (3, 7), (6, 10)]
    assert segment_bounds(0, 20, 33) == [(0, 20)]
    assert segment_bounds(5, 5, 33) == []
    with pytest.raises(ValueError):
        segment_bounds(0, 10, 0)
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)  # rows (0,1),(2,3),...
    d = segment_descriptors(feats, [(0, 2), (2, 6)])
    np.testing.assert_allclose(d, [[1.0, 2.0], [7.0, 8.0]])  # mean of rows 0-1; rows 2-5
    assert d.dtype == np.float32
    with pytest.raises(ValueError):
        segment_descriptors(feats, [(4, 8)])


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_enc")
    build_tiny("dinov2", root)
    return root


def _scene(t: int, colour: tuple[int, int, int], h: int = 32, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.zeros((t, h, w, 3), np.uint8) + np.array(colour, np.uint8)
    for i in range(t):
        base[i, (yy - h // 2) ** 2 + (xx - 5 - i % (w - 10)) ** 2 < 30] = 255
    return base


def test_dino_features_shape_cls_and_batch_invariance(tiny_root):
    dino = DinoFeatures(str(tiny_root / "dinov2"), batch_size=4)
    frames = _scene(6, (20, 120, 200))
    f = dino.frame_features(frames)
    assert f.shape == (6, dino.dim) and f.dtype == np.float32
    one = np.concatenate([dino.frame_features(frames[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(f, one, atol=1e-5)
    # The feature is the normed CLS token.
    with torch.inference_mode():
        px = dino.processor(images=list(frames[:1]), return_tensors="pt")["pixel_values"]
        h = dino.model(pixel_values=px, output_hidden_states=True).hidden_states[-1]  # last block, pre-norm
        cls = dino.model.layernorm(h)[:, 0]
    np.testing.assert_allclose(f[0], cls[0].numpy(), atol=1e-5)
    assert not np.allclose(f[0], dino.frame_features(_scene(1, (200, 30, 30)))[0])


def test_dino_missing_model_names_key(tmp_path):
    with pytest.raises(ValueError, match=r"senorita\.descriptors\.model.*nowhere"):
        DinoFeatures(str(tmp_path / "nowhere"))


def _extended_sample(n_orig: int = 9, n_new: int = 20) -> Sample:
    target = np.concatenate([_scene(n_orig, (20, 120, 200)), _scene(n_new, (200, 60, 20))])
    return Sample(
        id="pair1",
        source={},
        meta={"fps": 8.0, "extension": {"memory_frames": [n_orig, n_orig + n_new]}},
        blobs={
            "source.mp4": encode_mp4(_scene(n_orig, (90, 90, 90)), fps=8.0),
            "target_extended.mp4": encode_mp4(target, fps=8.0),
        },
    )


def test_segment_descriptors_stage_on_sequential_runner(tiny_root):
    stage = SegmentDescriptors(model=str(tiny_root / "dinov2"), segment_frames=6)
    no_memory = _extended_sample()
    no_memory.id = "nomem"
    no_memory.meta.pop("extension")
    broken = _extended_sample()
    broken.id = "broken"
    broken.blobs["source.mp4"] = b"\x00" * 100
    out = {s.id: s for s in SequentialRunner().run([stage], [_extended_sample(), no_memory, broken])}

    s = out["pair1"]
    assert not s.rejected, s.errors
    seg = s.meta["segments"]
    assert seg["target"] == [[9, 15], [15, 21], [21, 27]]  # extended part only; 2-frame tail dropped
    assert seg["source"] == [[0, 6]] and seg["target_query"] == [0, 9]
    assert s.arrays["target_dino"].shape == (3, seg["dim"]) and s.arrays["target_dino"].dtype == np.float32
    assert s.arrays["source_dino"].shape == (1, seg["dim"])
    assert s.arrays["target_query_dino"].shape == (1, seg["dim"])
    # Descriptors are the means of the per-frame features of exactly those frames.
    from stages.video import read_frames

    frames = read_frames(s.blobs["target_extended.mp4"])
    feats = stage._dino.frame_features(frames)
    np.testing.assert_allclose(s.arrays["target_dino"][1], feats[15:21].mean(0), atol=1e-5)

    assert out["nomem"].rejected and out["nomem"].reason == "no_memory_frames"
    assert out["broken"].rejected and out["broken"].reason.startswith("source_")


def test_tiny_clip_loads_and_scores(tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    path = build_tiny("clip", tmp_path)
    model, proc = CLIPModel.from_pretrained(path), CLIPProcessor.from_pretrained(path)
    img = _scene(2, (10, 200, 10))
    inputs = proc(text=["a red car", "a green field at night"], images=list(img), return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model(**inputs)
    assert out.logits_per_image.shape == (2, 2)
    assert out.image_embeds.shape == (2, model.config.projection_dim)
    ids = proc.tokenizer("a red car")["input_ids"]
    assert ids[0] == proc.tokenizer.bos_token_id and ids[-1] == proc.tokenizer.eos_token_id and len(ids) < 10
