"""FramePack F1 extension on the tiny random model: shapes, exactness of the kept frames, the loop
against diffusers' own vanilla sampler, determinism, loading errors and the ExtendTarget stage."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from models.framepack import FramePackExtender, fit_size
from models.tiny import build_tiny
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.extend import ExtendTarget
from stages.video import encode_mp4, psnr, read_frames

PROMPT = "replace the dog with a cat"


def moving_clip(t: int = 33, h: int = 48, w: int = 64) -> np.ndarray:
    """A soft bright blob sliding right over a gradient: natural-video-like, so H.264 keeps it sharp."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([40 + 150 * xx / w, 60 + 120 * yy / h, np.full_like(xx, 110)], -1)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        cx, cy = 8 + (w - 16) * i / max(t - 1, 1), h / 2
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 5.0**2))[..., None]
        out[i] = np.clip(base + 90 * blob, 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return str(build_tiny("framepack", tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def extender(tiny_dir):
    return FramePackExtender(tiny_dir, steps=2, latent_window_size=3)


def test_fit_size_rounds_to_multiples_of_16():
    assert fit_size(48, 64, None) == (48, 64)
    assert fit_size(50, 70, None) == (48, 64)
    h, w = fit_size(480, 848, 640)
    assert h % 16 == 0 and w % 16 == 0 and abs(h * w - 640 * 640) / (640 * 640) < 0.05


def test_transformer_forward_shapes_with_packed_history(extender):
    tf = extender.pipe.transformer
    c, window, lh, lw = tf.config.in_channels, 3, 6, 8
    idx = torch.arange(1 + 19 + window)
    i_start, i_4x, i_2x, i_1x, i_new = idx.split([1, 16, 2, 1, window])
    with torch.inference_mode():
        out = tf(
            hidden_states=torch.randn(1, c, window, lh, lw),
            timestep=torch.tensor([500.0]),
            encoder_hidden_states=torch.randn(1, 7, tf.config.text_embed_dim),
            encoder_attention_mask=torch.ones(1, 7, dtype=torch.long),
            pooled_projections=torch.randn(1, tf.config.pooled_projection_dim),
            image_embeds=torch.randn(1, 16, tf.config.image_proj_dim),
            indices_latents=i_new,
            guidance=torch.tensor([10000.0]),
            latents_clean=torch.randn(1, c, 2, lh, lw),
            indices_latents_clean=torch.cat([i_start, i_1x]),
            latents_history_2x=torch.randn(1, c, 2, lh, lw),
            indices_latents_history_2x=i_2x,
            latents_history_4x=torch.randn(1, c, 16, lh, lw),
            indices_latents_history_4x=i_4x,
            return_dict=False,
        )[0]
    assert out.shape == (1, c, window, lh, lw)


def test_loop_equals_diffusers_vanilla_sampler_from_one_image(extender, monkeypatch):
    """With a 1-frame clip our history (zeros + image latent) is exactly diffusers' F1 start state,
    so both loops must produce the same frames: 2 sections of 3 latents = 24 new frames."""
    from PIL import Image

    frame = moving_clip(1, 32, 48)
    ours = extender.extend(frame, PROMPT, num_new_frames=24, seed=3)
    with torch.inference_mode():
        latents = extender._encode_video(frame, (32, 48))
        # diffusers samples the image posterior with the generator; give it our posterior mean
        # instead (it accepts `image` or `image_latents`, not both, and needs `image` for SigLIP).
        monkeypatch.setattr(extender.pipe, "prepare_image_latents", lambda *a, **k: latents)
        ref = extender.pipe(
            image=Image.fromarray(frame[0]),
            prompt=PROMPT,
            prompt_template=extender.prompt_template,
            height=32,
            width=48,
            num_frames=18,
            latent_window_size=3,
            num_inference_steps=2,
            guidance_scale=10.0,
            generator=torch.Generator("cpu").manual_seed(3),
            sampling_type="vanilla",
            output_type="np",
        ).frames[0]
    assert ref.shape == (25, 32, 48, 3)  # frame 0 is the re-decoded image
    ref_u8 = np.round(ref[1:] * 255.0).astype(np.int16)
    assert ours.shape == (25, 32, 48, 3)
    assert np.abs(ours[1:].astype(np.int16) - ref_u8).max() <= 1


def test_extension_233_frames_keeps_original_exactly_through_mp4(tiny_dir):
    ext = FramePackExtender(tiny_dir, steps=1)  # default window 9: 6 sections of 36 frames, trimmed to 200
    clip = moving_clip(33, 32, 40)  # 40 is not a multiple of 16: exercises resize there and back
    out = ext.extend(clip, PROMPT, num_new_frames=200, seed=0)
    assert out.shape == (233, 32, 40, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:33], clip)
    assert out[33:].std() > 1.0  # something was generated, not a frozen copy
    back = read_frames(encode_mp4(out, fps=16))
    assert back.shape == out.shape
    assert min(psnr(back[i], clip[i]) for i in range(33)) >= 35.0


def test_extension_is_deterministic_by_seed(extender):
    clip = moving_clip(9, 32, 48)
    a = extender.extend(clip, PROMPT, num_new_frames=12, seed=1)
    b = extender.extend(clip, PROMPT, num_new_frames=12, seed=1)
    c = extender.extend(clip, PROMPT, num_new_frames=12, seed=2)
    assert a.shape == (21, 32, 48, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[9:], c[9:])
    assert np.array_equal(a[:9], c[:9])


def test_decode_once_gives_the_same_frame_count_and_kept_frames(tiny_dir):
    ext = FramePackExtender(tiny_dir, steps=1, latent_window_size=3, decode_once=True)
    clip = moving_clip(9, 32, 48)
    out = ext.extend(clip, PROMPT, num_new_frames=30, seed=0)  # 3 sections of 12 frames, trimmed
    assert out.shape == (39, 32, 48, 3) and np.array_equal(out[:9], clip) and out[9:].std() > 1.0


def test_missing_model_names_config_key_and_path(tmp_path):
    with pytest.raises(ValueError, match=r"senorita\.extend\.model.*not found at .*nowhere/transformer"):
        FramePackExtender(str(tmp_path / "nowhere"))
    (tmp_path / "partial" / "transformer").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"senorita\.extend\.model.*FramePack transformer"):
        FramePackExtender(str(tmp_path / "partial"))  # a folder without config.json
    with pytest.raises(ValueError, match=r"my\.key.*local_files_only=True"):
        FramePackExtender("nobody-xyz/not-a-framepack", config_key="my.key")


def _pair_sample(clip: np.ndarray, fps: float = 16.0) -> Sample:
    return Sample(
        id="pair0",
        source={"target_video_path": "mem://t.mp4"},
        meta={"instruction": "make it red", "enhanced_instruction": PROMPT, "fps": fps},
        blobs={"target.mp4": encode_mp4(clip, fps=fps)},
    )


def test_extend_target_stage_on_sequential_runner(tiny_dir):
    stage = ExtendTarget(model=tiny_dir, num_new_frames=24, steps=2, latent_window_size=3)
    good = _pair_sample(moving_clip(33, 32, 48))
    original_bytes = good.blobs["target.mp4"]
    bad = Sample(id="bad", source={}, meta={"fps": 16.0}, blobs={"target.mp4": b"not a video at all"})
    empty = Sample(id="empty", source={}, meta={}, blobs={})
    out = {s.id: s for s in SequentialRunner().run([stage], [good, bad, empty])}

    s = out["pair0"]
    assert not s.rejected, s.errors
    assert s.blobs["target.mp4"] == original_bytes
    ext = read_frames(s.blobs["target_extended.mp4"])
    assert ext.shape == (57, 32, 48, 3)
    orig = read_frames(original_bytes)
    assert min(psnr(ext[i], orig[i]) for i in range(33)) >= 35.0
    m = s.meta["extension"]
    assert m["frames_original"] == 33 and m["frames_generated"] == 24 and m["memory_frames"] == [33, 57]
    assert m["tiny_random"] is True and m["backend"] == "framepack" and m["seconds"] > 0

    assert out["bad"].rejected and out["bad"].reason == "target_undecodable"
    assert out["empty"].rejected and out["empty"].reason == "missing_target"


def test_extend_target_rejects_failed_extension(tiny_dir):
    stage = ExtendTarget(model=tiny_dir, num_new_frames=12, steps=1, latent_window_size=3)
    stage.setup()

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory")

    stage._extender.extend = boom
    (s,) = stage([_pair_sample(moving_clip(5, 32, 48))])
    assert s.rejected and s.reason == "extension_failed" and "out of memory" in s.errors[0]["detail"]


def test_extend_target_config_errors():
    with pytest.raises(ValueError, match="senorita.extend.model"):
        ExtendTarget(model="")
    with pytest.raises(ValueError, match="num_new_frames"):
        ExtendTarget(model="x", num_new_frames=0)
    with pytest.raises(ValueError, match="dtype"):
        FramePackExtender("x", dtype="float8")
    # Settings only until setup(): the stage ships to Ray workers cheaply.
    assert len(pickle.dumps(ExtendTarget(model="/models/framepack"))) < 2000
