"""The three generation loops of ``memcorpus generate`` (training/generate.py): inputs, memory, log.

Each loop keeps what it generated as the memory store the next step retrieves from, and records per
step exactly which earlier frames / turns / shots the model was conditioned on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipelines.config import ConfigError
from training.generate import CORPUS_MODE, Generator, pad_to, write_outputs
from training.generate_memory import context_for, edit_memory, story_bank


def _dataset_sample(root: str, index: int, want) -> tuple[dict, str]:
    """The ``index``-th sample of a dataset folder for which ``want(sample)`` holds, and the corpus name."""
    from training.data import open_dataset, read_index

    corpus = read_index(root).get("corpus", "")
    seen = 0
    for s in open_dataset(root, shuffle=0):
        if want(s):
            if seen == index:
                return s, corpus
            seen += 1
    raise ConfigError(f"--dataset {root}: only {seen} usable samples for this mode, --sample {index} asked")


def _caption(meta: dict) -> str:
    caps = meta.get("captions")
    if isinstance(caps, list) and caps:
        caps = caps[0]
    return caps.get("caption", "") if isinstance(caps, dict) else str(caps or "")


def _resolve_mode(args) -> str:
    if args.mode:
        return args.mode
    if not args.dataset:
        raise ConfigError("--mode is required without --dataset (camera | edit | story)")
    from training.data import read_index

    corpus = read_index(args.dataset).get("corpus", "")
    mode = next((m for c, m in CORPUS_MODE.items() if corpus.startswith(c)), None)
    if mode is None:
        raise ConfigError(f"--dataset {args.dataset}: corpus {corpus!r} has no generation mode; pass --mode")
    return mode


def generate(args) -> dict:
    """Run the mode ``args`` ask for; returns the generation record (also written as generation.json)."""
    mode = _resolve_mode(args)
    gen = Generator.load(args.checkpoint, args.backbone, args.device)
    g = torch.Generator().manual_seed(args.seed)
    frames, fps, rec = {"camera": camera, "edit": edit, "story": story}[mode](gen, args, g)
    from models.tiny import is_tiny

    rec = {
        "mode": mode,
        "checkpoint": str(gen.checkpoint.resolve()),
        "checkpoint_step": gen.step,
        "backbone": str(gen.cfg.backbone),
        "segment_frames": gen.frames,
        "size": list(gen.size),
        "sampler": {"steps": args.steps, "guidance": args.guidance, "shift": args.shift, "seed": args.seed},
        "dataset": str(Path(args.dataset).resolve()) if args.dataset else None,
        "sample": args.sample,
        **rec,
    }
    if is_tiny(gen.cfg.backbone):
        rec["warning"] = "TINY RANDOM BACKBONE: these frames exercise the code path; they show nothing"
    video, meta = write_outputs(args.out, frames, fps, rec)
    return dict(rec, video=str(video), generation=str(meta), frames=len(frames))


def _sampler(gen: Generator, args, g: torch.Generator):
    return lambda text, **cond: gen.sample(text, g, args.steps, args.guidance, args.shift, **cond)


# ---- Context-as-Memory: a trajectory, context frames by VideoFOV ---------------------------------
def camera(gen: Generator, args, g) -> tuple[np.ndarray, float, dict]:
    from models.fov import intrinsics as make_k
    from training.examples import cam_rows, to_clip

    seed_frame, caption, fps = None, " ".join(args.prompt or []), 16.0
    if args.poses:
        poses = np.load(args.poses, allow_pickle=False).astype(np.float64)
        w, h = gen.size[1], gen.size[0]
        k = make_k(args.fov, w, h)
    elif args.dataset:
        s, _ = _dataset_sample(args.dataset, args.sample, lambda s: "roam.mp4" in s and "poses.npy" in s)
        meta = s.get("json") or {}
        poses, k = s["poses.npy"].astype(np.float64), s["intrinsics.npy"].astype(np.float64)
        w, h, fps = int(meta["width"]), int(meta["height"]), float(meta.get("fps", fps))
        seed_frame = s["roam.mp4"][0]  # the first view is given; everything after it is generated
        caption = caption or _caption(meta)
    else:
        raise ConfigError("camera mode needs --poses or --dataset (a multicam dataset with a roam)")
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ConfigError(f"camera poses must be (T, 4, 4) camera-to-world, got {poses.shape}")
    n = min(args.length or len(poses), len(poses))
    f = gen.frames
    video: list[np.ndarray] = []
    if seed_frame is not None:
        video.append(to_uint8(to_clip(seed_frame[None], 1, gen.size)))
    text = gen.text([caption])
    sample = _sampler(gen, args, g)
    steps, segments, latents = [], [], {}
    while len(video) < n:
        s0 = len(video)
        idx = np.minimum(np.arange(s0, s0 + f), len(poses) - 1)  # past the end: hold the last pose
        ctx, info = context_for(poses, idx, s0, k, w, h, gen.cfg.context_size, args.covis_threshold, args.fov_radius)
        for j in ctx:  # a frame's latent never changes: encode each context frame once
            if j not in latents:
                latents[j] = gen.encode(video[j][None])  # (1, C, 1, h, w)
        memory = [latents[j] for j in ctx]
        cams = None
        if gen.dit.camera is not None:
            cams = {
                "target": cam_rows(poses[idx], f)[None].to(gen.device),
                "memory": [cam_rows(poses[j : j + 1], 1)[None].to(gen.device) for j in ctx],
            }
            cams["target"] = cams["target"][:, ::4]  # one row per latent frame (training/step.py)
        z = sample(text, memory=memory, cams=cams, layout="context", memory_levels="fine")
        new = gen.decode(z)[: n - s0]
        video.extend(new)
        segments.append([s0, s0 + len(new)])
        steps.append({"segment": len(segments) - 1, "frames": segments[-1], **info})
    rec = {
        "caption": caption,
        "segments": segments,
        "steps": steps,
        "seed_frame": seed_frame is not None,
        "poses": poses[:n].tolist(),
        "intrinsics": np.asarray(k).tolist(),
        "camera_size": [h, w],
        "videofov": {"radius": args.fov_radius, "covis_threshold": args.covis_threshold, "lambda": 0.5},
    }
    return np.stack(video), fps, rec


def to_uint8(clip: torch.Tensor) -> np.ndarray:
    """(3, 1, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((clip[:, 0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


# ---- Memory-V2V: long video editing, one segment per turn ---------------------------------------
def edit(gen: Generator, args, g) -> tuple[np.ndarray, float, dict]:
    from models.dino import DinoFeatures
    from stages.video import probe, read_frames

    fps = 16.0
    if args.video:
        source, prompts = read_frames(args.video), list(args.prompt or [])
        fps = probe(args.video).fps or fps
    elif args.dataset:
        s, _ = _dataset_sample(args.dataset, args.sample, lambda s: "source.mp4" in s)
        meta = s.get("json") or {}
        source, fps = s["source.mp4"], float(meta.get("fps", fps))
        prompts = list(args.prompt or [str(meta.get("instruction", ""))])
    else:
        raise ConfigError("edit mode needs --video (with --prompt) or --dataset (a senorita_long dataset)")
    if not prompts:
        raise ConfigError("edit mode needs an instruction: --prompt TEXT (once, or once per turn)")
    if not args.dino:
        raise ConfigError(
            "edit mode retrieves earlier turns by DINOv2 similarity (memory-v2v Alg. 2): pass --dino DIR "
            "(facebook/dinov2-base, or `memcorpus make-tiny-models DIR` -> DIR/dinov2)"
        )
    source = source[: args.length or len(source)]
    dino = DinoFeatures(args.dino, device=args.device, config_key="--dino")
    f = gen.frames
    turns = [(a, min(a + f, len(source))) for a in range(0, len(source), f)]
    merge = 0.5 if args.merge_ratio is None else args.merge_ratio
    sample = _sampler(gen, args, g)
    out, descs, latents, steps = [], [], [], []
    for i, (a, b) in enumerate(turns):
        src = pad_to(source[a:b], f)
        descs.append(dino.frame_features(src).mean(0))  # Alg. 2 Descriptor of the source segment
        pick, info = edit_memory(descs, gen.cfg.memory_k)
        prompt = prompts[min(i, len(prompts) - 1)]
        z = sample(
            gen.text([prompt]),
            user=gen.encode(src),
            memory=[latents[j] for j in pick],
            layout="editing",
            reverse_memory=bool(pick),
            merge_ratio=merge if pick else 0.0,
        )
        edited = gen.decode(z)
        latents.append(gen.encode(edited))  # Omega stores E(x_i), the VAE latents of the edited output
        out.extend(edited[: b - a])
        steps.append({"turn": i, "frames": [a, b], "instruction": prompt, **info})
    rec = {
        "instructions": prompts,
        "segments": [list(t) for t in turns],
        "steps": steps,
        "merge_ratio": merge,
        "reverse_memory": True,
        "source_frames": len(source),
    }
    return np.stack(out), fps, rec


# ---- Memento: a story, shot by shot, with the dual-path memory bank -------------------------------
def story(gen: Generator, args, g) -> tuple[np.ndarray, float, dict]:
    from training.step import cross_text

    fps = 16.0
    if args.story:
        data = json.loads(Path(args.story).read_text())
        story_text, shots = str(data.get("story", "")), [str(x) for x in data.get("shots", [])]
        characters = [str(x) for x in data.get("characters", [])]
    elif args.dataset:
        s, _ = _dataset_sample(args.dataset, args.sample, lambda s: "clip.mp4" in s)
        meta = s.get("json") or {}
        caps = meta.get("captions") or {}
        story_text, shots = str(caps.get("story", "")), [str(x) for x in caps.get("shots") or []]
        fps, characters = (
            float(meta.get("fps", fps)),
            [str(x["name"]) for x in caps.get("subjects") or [] if x.get("name")],
        )
    else:
        raise ConfigError("story mode needs --story FILE.json or --dataset (a memento dataset)")
    shots = shots[: args.length or len(shots)]
    if not shots:
        raise ConfigError("story mode needs at least one shot caption")
    if gen.dit.bank is None:
        raise ConfigError(f"{gen.checkpoint}: this checkpoint has no Memento memory bank (train on a memento corpus)")
    st = gen.text([story_text])
    sample = _sampler(gen, args, g)
    bank, prov, out, steps, segments = None, [], [], [], []
    for t, cap in enumerate(shots):
        shot_text = gen.text([cap])
        info: dict = {"bank_tokens": 0}
        if out:  # M_t = TopK([M_{t-1}; E(S_{t-1})]) with shot t's caption (Eqs. 2-5)
            new = gen.dit.bank_tokens(gen.encode(out[-1]))
            bank, prov, info = story_bank(gen.dit.bank, bank, prov, new, t - 1, st, shot_text)
        z = sample(cross_text(st, shot_text), bank=bank, layout="novel_view")
        clip = gen.decode(z)
        start = sum(len(c) for c in out)
        out.append(clip)
        segments.append([start, start + len(clip)])
        steps.append({"shot": t, "frames": segments[-1], "caption": cap, **info})
    rec = {
        "story": story_text,
        "shot_captions": shots,
        "characters": characters,
        "segments": segments,
        "shots": [a for a, _ in segments],
        "steps": steps,
    }
    return np.concatenate(out), fps, rec
