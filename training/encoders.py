"""Feature encoders for the metrics, from local weights (real or the tiny random ones).

DINOv2 (``facebook/dinov2-base`` layout) for subject consistency, CLIP for background,
aesthetic (ViT-L/14 + LAION linear head) and text-video similarity. Nothing downloads: a
missing folder is a ValueError naming the option to set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _need(path: str | None, key: str) -> str:
    if not path or not Path(path).exists():
        raise ValueError(f"{key}={path!r}: give a local folder (e.g. from `memcorpus make-tiny-models DIR`)")
    return path


class DinoEncoder:
    def __init__(self, path: str, key: str = "--dino"):
        from transformers import AutoImageProcessor, Dinov2Model

        path = _need(path, key)
        self.proc = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.model = Dinov2Model.from_pretrained(path, local_files_only=True).eval()

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, D) CLS features."""
        px = self.proc(images=list(frames), return_tensors="pt").pixel_values
        return self.model(pixel_values=px).last_hidden_state[:, 0].numpy()


class ClipEncoder:
    def __init__(self, path: str, key: str = "--clip"):
        from transformers import CLIPModel, CLIPProcessor

        path = _need(path, key)
        self.proc = CLIPProcessor.from_pretrained(path, local_files_only=True)
        self.model = CLIPModel.from_pretrained(path, local_files_only=True).eval()

    @property
    def dim(self) -> int:
        return self.model.config.projection_dim

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> np.ndarray:
        px = self.proc(images=list(frames), return_tensors="pt").pixel_values
        return _tensor(self.model.get_image_features(pixel_values=px)).numpy()

    @torch.no_grad()
    def text(self, texts: list[str]) -> np.ndarray:
        t = self.proc(text=texts, return_tensors="pt", padding=True, truncation=True)
        return _tensor(self.model.get_text_features(input_ids=t.input_ids, attention_mask=t.attention_mask)).numpy()


def _tensor(out) -> torch.Tensor:
    # transformers 5 may return a model output object instead of a bare tensor
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class AestheticHead:
    """LAION linear predictor on L2-normalised CLIP ViT-L/14 image features (768 -> 1), 1-10 scale."""

    def __init__(self, path: str | None, dim: int, key: str = "--aesthetic-head"):
        self.linear = torch.nn.Linear(dim, 1)
        if path is not None:
            state = torch.load(_need(path, key), map_location="cpu", weights_only=True)
            state = {k.split(".")[-1]: v for k, v in state.items()}  # accept "weight"/"layers.0.weight"
            try:
                self.linear.load_state_dict(state)
            except RuntimeError as e:
                raise ValueError(f"{key}={path!r}: expected a {dim}->1 linear head ({e})") from e

    @torch.no_grad()
    def __call__(self, clip_feats: np.ndarray) -> np.ndarray:
        f = torch.as_tensor(clip_feats, dtype=torch.float32)
        f = f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return self.linear(f)[:, 0].numpy()
