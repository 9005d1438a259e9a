"""The model-stage checks of scripts/gpu_check.py: each runs one stage on tiny random models built in code.

A check takes the run context and returns ``{"device": ..., "checked": ...}`` (optionally ``"status": "SKIP"``);
it raises when the stage fails or did not really run on the requested device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REAL_CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "real" / "cuts_people_640x360.mp4"


@dataclass
class Ctx:
    device: torch.device
    quick: bool
    work: Path
    tiny: dict[str, str]
    datasets: dict[str, Path] = field(default_factory=dict)  # built by one check, trained on by others


def moving_clip(t: int, h: int = 32, w: int = 48) -> np.ndarray:
    """A bright blob sliding over a gradient: enough structure for codecs and encoders."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([40 + 150 * xx / w, 60 + 120 * yy / h, np.full_like(xx, 110)], -1)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        blob = np.exp(-((xx - 6 - (w - 12) * i / max(t - 1, 1)) ** 2 + (yy - h / 2) ** 2) / 50.0)[..., None]
        out[i] = np.clip(base + 90 * blob, 0, 255).astype(np.uint8)
    return out


def on_device(module: torch.nn.Module, ctx: Ctx, what: str) -> str:
    """The device type of ``module``'s first parameter, which must be the requested one."""
    got = next(module.parameters()).device
    if got.type != ctx.device.type:
        raise AssertionError(f"{what} parameters are on {got}, not {ctx.device}")
    return str(got)


def check_framepack(ctx: Ctx) -> dict:
    from pipelines.runner import SequentialRunner
    from stages.base import Sample
    from stages.extend import ExtendTarget
    from stages.video import encode_mp4, read_frames

    new = 12 if ctx.quick else 24
    stage = ExtendTarget(model=ctx.tiny["framepack"], num_new_frames=new, steps=2, latent_window_size=3,
                         device=str(ctx.device))
    clip = moving_clip(9)
    sample = Sample(id="p0", source={}, meta={"enhanced_instruction": "make it red", "fps": 16.0},
                    blobs={"target.mp4": encode_mp4(clip, fps=16.0)})
    (out,) = SequentialRunner().run([stage], [sample])
    assert not out.rejected, out.errors
    video = read_frames(out.blobs["target_extended.mp4"])
    assert video.shape == (9 + new, 32, 48, 3), video.shape
    assert out.meta["extension"]["memory_frames"] == [9, 9 + new]
    dev = on_device(stage._extender.pipe.transformer, ctx, "FramePack transformer")
    dtype = str(stage._extender.pipe.transformer.dtype).removeprefix("torch.")
    return {"device": dev, "checked": f"ExtendTarget 9 -> {9 + new} frames ({dtype} transformer), mp4 round trip"}


def check_dinov2(ctx: Ctx) -> dict:
    from models.dino import DinoFeatures
    from stages.base import Sample
    from stages.descriptors import SegmentDescriptors
    from stages.video import encode_mp4

    stage = SegmentDescriptors(model=ctx.tiny["dinov2"], segment_frames=6, device=str(ctx.device))
    stage.setup()
    src, tgt = moving_clip(12), moving_clip(24)
    s = Sample(id="d0", source={}, meta={"extension": {"memory_frames": [12, 24]}},
               blobs={"source.mp4": encode_mp4(src, fps=16.0), "target_extended.mp4": encode_mp4(tgt, fps=16.0)})
    (s,) = stage([s])
    assert not s.rejected, s.errors
    d = stage._dino.dim
    assert s.arrays["source_dino"].shape == (2, d) and s.arrays["target_dino"].shape == (2, d)
    dev = on_device(stage._dino.model, ctx, "DINOv2")
    # The same frames on CPU in fp32: the device run must compute the same features, not just shapes.
    ref = DinoFeatures(ctx.tiny["dinov2"], device="cpu").frame_features(src)
    got = stage._dino.frame_features(src)
    cos = float(((ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))).min())
    assert cos > 0.99, f"device features differ from CPU fp32 (min cosine {cos:.4f})"
    return {"device": dev, "checked": f"SegmentDescriptors 2+2 segments x {d}; cosine vs CPU fp32 >= {cos:.3f}"}


def check_captioner(ctx: Ctx) -> dict:
    from models.captioner import CaptionLimits, build_captioner, schema_problem, story_schema

    lim = CaptionLimits(story_chars=60, shot_chars=40, recon_chars=40, name_chars=14, description_chars=24,
                        max_subjects=2, total_pixels=8 * 64 * 64, max_frame_pixels=64 * 96)
    cap = build_captioner("transformers", ctx.tiny["qwen3vl"], limits=lim, device=str(ctx.device))
    frames = np.random.default_rng(0).integers(0, 255, (40, 72, 128, 3), dtype=np.uint8)
    story = cap.story(frames, 10.0)
    assert schema_problem(story, story_schema(lim), "$") == "", story
    recon = cap.recon(frames[0], story)
    assert 1 <= len(recon) <= lim.recon_chars, recon
    dev = on_device(cap.backend.net, ctx, "Qwen3-VL")
    return {"device": dev, "checked": f"story (video) + recon (image), xgrammar JSON valid, "
                                      f"{cap.backend.generated_tokens} tokens generated"}


def check_transnetv2(ctx: Ctx) -> dict:
    from models.shot_detectors import cut_f1, make_shot_detector
    from pipelines.demo_memento import memento_film, render_film

    film = memento_film(width=160, height=90, scale=0.1 if ctx.quick else 0.25, subtitles=False, logo=False)
    path = ctx.work / "film.mp4"
    truth = render_film(path, film)
    det = make_shot_detector("transnetv2", device=str(ctx.device))
    dev = on_device(det._model, ctx, "TransNetV2")
    res = det.detect(path)
    assert res.frames == sum(s.frames for s in film.shots), (res.frames, len(film.shots))
    f1 = cut_f1(res.cuts, truth["cuts"])
    assert f1 >= 0.5, f"cut F1 {f1:.2f} against the rendered film's cuts {truth['cuts']} (got {res.cuts})"
    return {"device": dev, "checked": f"{res.frames} frames, {len(res.cuts)} cuts, F1 {f1:.2f} vs ground truth"}


def check_yolo(ctx: Ctx) -> dict:
    return {"status": "SKIP", "device": "-", "checked": "skipped: no YOLO weights offline"}


def check_hog(ctx: Ctx) -> dict:
    from stages.tracking import TrackSubjects

    stage = TrackSubjects(detector="hog", sample_fps=1.0 if ctx.quick else 2.0)
    stage.setup()
    summary, recon, n = stage.track(str(REAL_CLIP), 25.0, None)
    assert n > 0 and summary["primary"] is not None, summary
    return {"device": "cpu (HOG is CPU-only)",
            "checked": f"HOG + ByteTrack on the vendored CCTV clip: {n} frames sampled, a primary subject, "
                       f"{len(recon)} recon frames"}


def check_evaluator(ctx: Ctx) -> dict:
    from training.evaluate import evaluate_video, load_lpips
    from training.evaluate_models import ImageEncoder

    frames, history = moving_clip(8), moving_clip(8)[::-1].copy()
    dev = str(ctx.device)
    dino = ImageEncoder(ctx.tiny["dinov2"], "dino", "--dino", dev)
    clip = ImageEncoder(ctx.tiny["clip"], "clip", "--clip", dev)
    lp = load_lpips(None, random_backbone=True)
    metrics, _ = evaluate_video(frames, dino, clip, prompt="a bright blob", shots=[(0, 4), (4, 8)],
                                history=history, lpips_net=lp)
    want = {"subject_consistency", "background_consistency", "semantic_consistency", "inter_shot_subject",
            "history_psnr", "lpips_history"}
    assert want <= metrics.keys(), sorted(metrics)
    assert all(np.isfinite(v) for k, v in metrics.items() if k in want), metrics
    where = on_device(dino.model, ctx, "DINOv2 evaluator")
    on_device(clip.model, ctx, "CLIP evaluator")
    return {"device": where, "checked": f"{len(want)} metrics finite: DINOv2/CLIP consistency, semantic, PSNR, LPIPS"}
