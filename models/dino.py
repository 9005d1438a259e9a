"""DINOv2 frame features, segment descriptors and the segment ranking of Memory-V2V Alg. 2.

Alg. 2 (memory-v2v.txt, supplementary): a segment's descriptor is the mean of the DINOv2
features of its frames; candidates are ranked by cosine similarity to the query descriptor,
descending; with ``enforce_recent_first`` the most recent (last) candidate is moved to the
front so consecutive edited segments stay coherent. The feature of a frame is DINOv2's CLS
token after the final layer norm (``pooler_output``), the usual global image descriptor.
No Ray here; the ranking functions are plain numpy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def segment_bounds(start: int, end: int, length: int, stride: int | None = None) -> list[tuple[int, int]]:
    """Full windows ``[s, s + length)`` inside ``[start, end)``; one shorter window if the span is shorter.

    A ragged tail is dropped rather than kept as a short segment: every memory segment then
    has the same frame count as the target segment it will condition.
    """
    if length < 1 or (stride is not None and stride < 1):
        raise ValueError(f"segment length and stride must be >= 1, got {length}, {stride}")
    if end <= start:
        return []
    if end - start < length:
        return [(start, end)]
    step = stride or length
    return [(s, s + length) for s in range(start, end - length + 1, step)]


def segment_descriptors(features: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Alg. 2 ``Descriptor``: mean of per-frame features per segment -> (n_seg, D) float32."""
    if not bounds:
        return np.zeros((0, features.shape[1]), np.float32)
    if bounds[-1][1] > len(features) or min(s for s, _ in bounds) < 0:
        raise ValueError(f"segment bounds {bounds} exceed the {len(features)} frames with features")
    return np.stack([features[s:e].mean(axis=0) for s, e in bounds]).astype(np.float32)


def cosine_similarity(query: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Alg. 2 ``Sim``: <d_q, d_k> / (|d_q| |d_k|) for each row k of ``cache`` -> (N,)."""
    q = np.asarray(query, np.float64).reshape(-1)
    c = np.asarray(cache, np.float64).reshape(len(cache), -1)
    denom = np.linalg.norm(c, axis=1) * np.linalg.norm(q)
    # A zero descriptor has no direction; similarity 0 ranks it last instead of producing NaN.
    return np.divide(c @ q, denom, out=np.zeros(len(c)), where=denom > 0)


def rank_segments(
    query_desc: np.ndarray, cache_descs: np.ndarray, enforce_recent_first: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Alg. 2: ``(order, sims)``; ``order`` indexes ``cache_descs`` (oldest first), best first.

    Ties keep the older segment first (stable sort), so the ranking is deterministic.
    """
    sims = cosine_similarity(query_desc, cache_descs)
    order = np.argsort(-sims, kind="stable")
    if enforce_recent_first and len(order):
        recent = len(cache_descs) - 1
        order = np.concatenate([[recent], order[order != recent]])
    return order.astype(np.int64), sims.astype(np.float32)


class DinoFeatures:
    """Per-frame DINOv2 CLS features from a local folder or a cached hub id (``facebook/dinov2-base``)."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        batch_size: int = 32,
        allow_download: bool = False,
        config_key: str = "senorita.descriptors.model",
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, Dinov2Model

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        local = Path(model).expanduser().exists() or model.startswith(("/", ".", "~")) or model.count("/") != 1
        if local and not (Path(model).expanduser() / "config.json").is_file():
            raise ValueError(
                f"{config_key}: no DINOv2 model at {model} (expected config.json + weights); "
                "build a tiny one with `memcorpus make-tiny-models DIR --only dinov2`"
            )
        offline = not allow_download or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        self.device = torch.device(device)
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        try:
            self.processor = AutoImageProcessor.from_pretrained(model, local_files_only=offline)
            self.model = Dinov2Model.from_pretrained(model, local_files_only=offline, torch_dtype=dtype)
        except OSError as e:
            raise ValueError(f"{config_key}: could not load DINOv2 from {model} (offline={offline}): {e}") from e
        self.model = self.model.to(self.device).eval()
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def frame_features(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, D) float32 CLS features."""
        import torch

        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frame_features needs (T, H, W, 3) frames, got {frames.shape}")
        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                px = self.processor(images=list(frames[i : i + self.batch_size]), return_tensors="pt")["pixel_values"]
                px = px.to(self.device, self.model.dtype)  # (B, 3, S, S)
                out.append(self.model(pixel_values=px).pooler_output.float().cpu().numpy())  # (B, D)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
