"""FramePack F1 forward extension of a clip, as our own sampling loop over diffusers' FramePack parts.

diffusers' ``HunyuanVideoFramepackPipeline`` conditions on one image and starts its history
from zeros. Extension needs the whole input clip as history, so this module runs the F1
("vanilla") loop itself: the clip is VAE-encoded into history latents; each section packs the
last 16 + 2 + 1 history latents as 4x / 2x / 1x compressed clean context, anchors on the
first-frame latent, denoises ``latent_window_size`` latents (distilled guidance, no real CFG),
decodes them with one window of overlap and appends. The pipeline object is kept only for its
prompt / SigLIP encoding helpers, so those stay exactly diffusers' code paths.

No Ray here. Weights come from a local folder or an already-cached hub id; nothing downloads
unless ``allow_download=True``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

# subfolder -> (library, class); the layout of hunyuanvideo-community/HunyuanVideo plus FramePack parts
COMPONENTS = {
    "transformer": ("diffusers", "HunyuanVideoFramepackTransformer3DModel"),
    "vae": ("diffusers", "AutoencoderKLHunyuanVideo"),
    "scheduler": ("diffusers", "FlowMatchEulerDiscreteScheduler"),
    "text_encoder": ("transformers", "LlamaModel"),
    "tokenizer": ("transformers", "AutoTokenizer"),
    "text_encoder_2": ("transformers", "CLIPTextModel"),
    "tokenizer_2": ("transformers", "AutoTokenizer"),
    "image_encoder": ("transformers", "SiglipVisionModel"),
    "feature_extractor": ("transformers", "SiglipImageProcessor"),
}
HISTORY_SIZES = (16, 2, 1)  # latents packed at 4x, 2x, 1x compression (F1 checkpoints are trained on this)
_WEIGHTED = {"transformer", "vae", "text_encoder", "text_encoder_2", "image_encoder"}


def _is_local(ref: str) -> bool:
    return Path(ref).expanduser().exists() or ref.startswith(("/", ".", "~")) or ref.count("/") != 1


def _load(sub: str, ref: str, subfolder: str | None, dtype, local_only: bool, key: str):
    import importlib

    lib, cls_name = COMPONENTS[sub]
    cls = getattr(importlib.import_module(lib), cls_name)
    if _is_local(ref):
        path = Path(ref).expanduser() / (subfolder or "")
        if not path.is_dir():
            raise ValueError(
                f"{key}: FramePack {sub} not found at {path}; expected a folder with subfolders "
                f"{', '.join(COMPONENTS)} (build a tiny one with `memcorpus make-tiny-models DIR --only framepack`)"
            )
        ref, subfolder = str(path), None
    kwargs = {"local_files_only": local_only}
    if subfolder:
        kwargs["subfolder"] = subfolder
    if sub in _WEIGHTED:
        kwargs["torch_dtype"] = dtype
    try:
        return cls.from_pretrained(ref, **kwargs)
    except (OSError, ValueError) as e:
        where = f"{ref} (subfolder {subfolder})" if subfolder else ref
        raise ValueError(
            f"{key}: could not load FramePack {sub} from {where} with local_files_only={local_only}: {e}. "
            "Point the key at a local folder, or pre-fetch the hub repo (`hf download ...`)."
        ) from e


def fit_size(height: int, width: int, resolution: int | None) -> tuple[int, int]:
    """Working size: multiples of 16 (VAE 8x, then transformer 2x2 patches), area ~ resolution**2 if given."""
    scale = 1.0 if resolution is None else math.sqrt(resolution * resolution / (height * width))
    return max(16, round(height * scale / 16) * 16), max(16, round(width * scale / 16) * 16)


class FramePackExtender:
    """Extend a clip forward by generated frames; the input frames are returned untouched first."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str | None = None,
        steps: int = 25,
        guidance: float = 10.0,
        latent_window_size: int = 9,
        resolution: int | None = None,
        transformer: str | None = None,
        image_encoder: str | None = None,
        vae_tiling: bool | None = None,
        decode_once: bool = False,
        allow_download: bool = False,
        config_key: str = "senorita.extend.model",
    ) -> None:
        import torch

        if not model:
            raise ValueError(f"{config_key}: empty; give a local FramePack folder or a hub id")
        if steps < 1 or latent_window_size < 1:
            raise ValueError(f"steps and latent_window_size must be >= 1, got {steps}, {latent_window_size}")
        if dtype not in (None, "float32", "float16", "bfloat16"):
            raise ValueError(f"dtype must be float32, float16 or bfloat16 (or None for auto), got {dtype!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available")
        self.device = torch.device(device)
        on_gpu = self.device.type == "cuda"
        # The F1 transformer was trained in bf16; the VAE and encoders are fine in fp16 on GPU.
        self.dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if on_gpu else torch.float32)
        aux_dtype = torch.float16 if on_gpu else torch.float32
        self.steps, self.guidance, self.window = steps, guidance, latent_window_size
        self.resolution = resolution
        self.decode_once = decode_once  # False: decode + cross-fade per section, as the F1 demo does
        local_only = not allow_download or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        prefix = config_key.rsplit(".", 1)[0]
        parts = {}
        for sub in COMPONENTS:
            ref, subfolder, key = model, sub, config_key
            if sub == "transformer" and transformer:
                ref, subfolder, key = transformer, None, f"{prefix}.transformer"
            elif sub in ("image_encoder", "feature_extractor") and image_encoder:
                key = f"{prefix}.image_encoder"
                ref = image_encoder
            dt = self.dtype if sub == "transformer" else aux_dtype
            parts[sub] = _load(sub, ref, subfolder, dt, local_only, key)

        from diffusers import HunyuanVideoFramepackPipeline
        from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import DEFAULT_PROMPT_TEMPLATE

        self.pipe = HunyuanVideoFramepackPipeline(**parts).to(self.device)
        vae = self.pipe.vae
        if on_gpu if vae_tiling is None else vae_tiling:
            vae.enable_tiling()  # bounded GPU memory at 480p+; costs ~8x time on tiny CPU models
        else:
            # diffusers decodes frame-tiles with overlap even without tiling; one pass is cheaper when it fits.
            vae.use_framewise_encoding = vae.use_framewise_decoding = False
        template = DEFAULT_PROMPT_TEMPLATE["template"]
        # crop_start = tokens of the system prefix; counted with *this* tokenizer so tiny
        # tokenizers crop correctly too (for the real Llama-3 tokenizer this should be diffusers' 95).
        prefix_ids = parts["tokenizer"](template.split("{}")[0])["input_ids"]
        self.prompt_template = {"template": template, "crop_start": len(prefix_ids)}

    # -- pieces -----------------------------------------------------------------------------

    def _to_tensor(self, frames: np.ndarray, size: tuple[int, int]):
        """(T, H, W, 3) uint8 -> (1, 3, T, h, w) in [-1, 1] at the working size."""
        import torch

        h, w = size
        resized = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        x = torch.from_numpy(resized).to(self.device).permute(3, 0, 1, 2).unsqueeze(0)  # (1, 3, T, h, w)
        return x.float() / 127.5 - 1.0

    def _encode_video(self, frames: np.ndarray, size: tuple[int, int]):
        """History latents (1, C, L, h/8, w/8) float32; L = (T' - 1) / 4 + 1."""
        vae = self.pipe.vae
        r = self.pipe.vae_scale_factor_temporal
        # The causal VAE wants 1 + r*k frames; repeat the first frame in front so latent 0 stays frame 0.
        pad = (-(len(frames) - 1)) % r
        frames = np.concatenate([np.repeat(frames[:1], pad, axis=0), frames]) if pad else frames
        x = self._to_tensor(frames, size).to(vae.dtype)
        # The posterior mean, not a sample: conditioning should not depend on encoder noise.
        z = vae.encode(x).latent_dist.mode()
        return z.float() * vae.config.scaling_factor

    def _decode(self, latents):
        vae = self.pipe.vae
        return vae.decode((latents / vae.config.scaling_factor).to(vae.dtype), return_dict=False)[0].float()

    def _denoise(self, history, start, cond, generator):
        """One F1 section: ``window`` new latents conditioned on the packed history."""
        import torch
        from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import calculate_shift

        tf, sched = self.pipe.transformer, self.pipe.scheduler
        b, c, _, lh, lw = history.shape
        need = sum(HISTORY_SIZES)
        if history.shape[2] < need:  # short inputs: zeros stand for "no history", as F1 starts
            history = torch.cat([history.new_zeros(b, c, need - history.shape[2], lh, lw), history], dim=2)
        h4x, h2x, h1x = history[:, :, -need:].split(HISTORY_SIZES, dim=2)
        clean = torch.cat([start, h1x], dim=2)  # (1, C, 2, lh, lw)
        idx = torch.arange(1 + need + self.window)
        i_start, i_4x, i_2x, i_1x, i_new = idx.split([1, *HISTORY_SIZES, self.window])
        i_clean = torch.cat([i_start, i_1x])

        noise = torch.randn((b, c, self.window, lh, lw), generator=generator, dtype=torch.float32)
        latents = noise.to(self.device)
        seq = self.window * lh * lw / tf.config.patch_size**2
        cfg = sched.config
        mu = calculate_shift(
            seq,
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        sigmas = np.linspace(1.0, 0.0, self.steps + 1)[:-1]
        sched.set_timesteps(sigmas=sigmas, device=self.device, mu=min(mu, math.log(7.0)))
        dt = self.dtype
        guidance = torch.full((b,), self.guidance * 1000.0, device=self.device, dtype=dt)
        for t in sched.timesteps:
            pred = tf(
                hidden_states=latents.to(dt),
                timestep=t.expand(b),
                encoder_hidden_states=cond["prompt_embeds"],
                encoder_attention_mask=cond["prompt_mask"],
                pooled_projections=cond["pooled"],
                image_embeds=cond["image_embeds"],
                indices_latents=i_new,
                guidance=guidance,
                latents_clean=clean.to(dt),
                indices_latents_clean=i_clean,
                latents_history_2x=h2x.to(dt),
                indices_latents_history_2x=i_2x,
                latents_history_4x=h4x.to(dt),
                indices_latents_history_4x=i_4x,
                return_dict=False,
            )[0]
            latents = sched.step(pred.float(), t, latents, return_dict=False)[0]
        return latents

    # -- public -----------------------------------------------------------------------------

    def extend(self, frames: np.ndarray, prompt: str, num_new_frames: int = 200, seed: int = 0) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 -> ``(T + num_new_frames, H, W, 3)``; the first T frames are ``frames``."""
        import torch

        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(f"extend needs (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        if num_new_frames < 1:
            raise ValueError(f"num_new_frames must be >= 1, got {num_new_frames}")
        height, width = frames.shape[1:3]
        size = fit_size(height, width, self.resolution)
        r = self.pipe.vae_scale_factor_temporal
        with torch.inference_mode():
            history = self._encode_video(frames, size)
            start = history[:, :, :1]  # the anchor: first-frame latent
            emb, pooled, mask = self.pipe.encode_prompt(
                prompt=prompt, prompt_template=self.prompt_template, device=self.device, max_sequence_length=256
            )
            # (1, 3, h, w) on the CPU, as diffusers hands it to the SigLIP processor; the clip's LAST frame
            last = self._to_tensor(frames[-1:], size)[:, :, 0].cpu()
            cond = {
                "prompt_embeds": emb.to(self.dtype),
                "prompt_mask": mask,
                "pooled": pooled.to(self.dtype),
                "image_embeds": self.pipe.encode_image(last, device=self.device).to(self.dtype),
            }
            generator = torch.Generator("cpu").manual_seed(seed)
            sections = math.ceil(num_new_frames / (self.window * r))  # each section adds window * r frames
            first = history.shape[2]
            video = None  # generated frames only, (1, 3, N, h, w) in [-1, 1]
            for _ in range(sections):
                prev = min(history.shape[2], self.window)
                history = torch.cat([history, self._denoise(history, start, cond, generator)], dim=2)
                if self.decode_once:
                    continue
                # Decode the new window with the previous one in front: the causal VAE then sees
                # context, and the previous window's frames give an overlap to cross-fade over.
                current = self._decode(history[:, :, -(prev + self.window) :])
                overlap = (prev - 1) * r + 1
                video = current[:, :, overlap:] if video is None else _cross_fade(video, current, overlap)
            if self.decode_once:
                # One causal pass over all new latents (one window of input context in front):
                # no cross-fades, and ~40% fewer decoded frames than per-section decoding.
                prev = min(first, self.window)
                video = self._decode(history[:, :, first - prev :])[:, :, (prev - 1) * r + 1 :]
        new = ((video[0, :, :num_new_frames].clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        new = new.permute(1, 2, 3, 0).cpu().numpy()  # (N, h, w, 3)
        if new.shape[1:3] != (height, width):
            new = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in new])
        return np.concatenate([frames, new], axis=0)


def _cross_fade(history, current, overlap: int):
    """Append ``current`` whose first ``overlap`` frames re-render the last ones of ``history``."""
    import torch

    assert history.shape[2] >= overlap and current.shape[2] >= overlap, (history.shape, current.shape, overlap)
    w = torch.linspace(1.0, 0.0, overlap, device=history.device).view(1, 1, -1, 1, 1)
    blended = w * history[:, :, -overlap:] + (1.0 - w) * current[:, :, :overlap]
    return torch.cat([history[:, :, :-overlap], blended, current[:, :, overlap:]], dim=2)
