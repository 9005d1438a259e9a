"""The evaluator's models, one per metric as VBench defines them, each loaded from local files with a record.

| metric | model (VBench / the papers) | option |
|---|---|---|
| subject consistency, inter-shot subject | DINO (VBench: DINO ViT-B/16; Memento App. D.3: DINOv2 ViT-B/14) | --dino |
| background consistency | CLIP ViT-B/32 (VBench; Memento App. D.2) | --clip |
| aesthetic quality | CLIP ViT-L/14 + LAION linear head, score / 10 (VBench) | --aesthetic-clip, --aesthetic-head |
| semantic consistency, inter-shot / per-character | ViCLIP (VBench overall consistency; Memento App. D.1, D.5) | --viclip, else --clip (said so) |

Every model gets a record (path, SHA-256 of its files, whether it is a tiny random model) that
``metrics.json`` carries, so a number can always be traced to the weights that produced it.
Nothing downloads: a missing path is a ValueError naming the option.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from models.tiny import is_tiny
from pipelines.config import ConfigError

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def _need(path: str | None, key: str) -> Path:
    if not path or not Path(path).expanduser().exists():
        raise ConfigError(
            f"{key}={path!r}: give a local model folder or file (nothing is downloaded; "
            "`memcorpus make-tiny-models DIR` writes random stand-ins)"
        )
    return Path(path).expanduser().resolve()


def content_hash(path: str | Path) -> str:
    """SHA-256 over a file, or over a folder's files (relative names and bytes, in sorted order)."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    h = hashlib.sha256()
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def record(path: str | Path, what: str) -> dict:
    p = Path(path)
    tiny = is_tiny(p if p.is_dir() else p.parent)
    return {"model": what, "path": str(p), "sha256": content_hash(p), "tiny_random": tiny}


class ImageEncoder:
    """Global image features: DINO/DINOv2 CLS token (``kind="dino"``) or CLIP image embeddings (``"clip"``)."""

    def __init__(self, path: str, kind: str, key: str, device: str = "cpu", batch: int = 32):
        from transformers import AutoImageProcessor, AutoModel, CLIPModel, CLIPProcessor

        p = _need(path, key)
        self.kind, self.device, self.batch = kind, torch.device(device), batch
        if kind == "clip":
            self.proc = CLIPProcessor.from_pretrained(p, local_files_only=True)
            self.model = CLIPModel.from_pretrained(p, local_files_only=True)
        else:  # AutoModel: Dinov2Model (facebook/dinov2-base) or ViTModel (facebook/dino-vitb16, VBench's)
            self.proc = AutoImageProcessor.from_pretrained(p, local_files_only=True)
            self.model = AutoModel.from_pretrained(p, local_files_only=True)
        self.model = self.model.to(self.device).eval()
        name = getattr(self.model.config, "_name_or_path", "") or p.name
        self.record = record(p, f"{self.model.config.model_type} ({name})")

    @property
    def dim(self) -> int:
        c = self.model.config
        return int(c.projection_dim if self.kind == "clip" else c.hidden_size)

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, D) float features."""
        out = []
        for i in range(0, len(frames), self.batch):
            px = self.proc(images=list(frames[i : i + self.batch]), return_tensors="pt").pixel_values.to(self.device)
            if self.kind == "clip":
                f = self.model.get_image_features(pixel_values=px)
                f = f if isinstance(f, torch.Tensor) else f.pooler_output  # transformers 5 may return an output
            else:
                f = self.model(pixel_values=px).last_hidden_state[:, 0]  # CLS after the final norm
            out.append(f.float().cpu().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def text(self, texts: list[str]) -> np.ndarray:
        if self.kind != "clip":
            raise ConfigError("text features need a CLIP model")
        n = self.model.config.text_config.max_position_embeddings  # CLIP reads 77 tokens; longer text is cut
        t = self.proc(text=texts, return_tensors="pt", padding=True, truncation=True, max_length=n).to(self.device)
        f = self.model.get_text_features(input_ids=t.input_ids, attention_mask=t.attention_mask)
        return (f if isinstance(f, torch.Tensor) else f.pooler_output).float().cpu().numpy()

    def videos(self, clips: list[np.ndarray]) -> np.ndarray:
        """One feature per clip: the normalised mean of its frame features (the CLIP stand-in for ViCLIP)."""
        out = []
        for c in clips:
            f = self.images(c)
            f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
            out.append(f.mean(0))
        return np.stack(out)


class ViClip:
    """ViCLIP (InternVid) as VBench runs it: 8 frames at 224², CLIP normalisation, one video embedding.

    Needs the ``vbench`` package (its ``third_party/ViCLIP`` code) and the ``ViClip-InternVid-10M-FLT.pth``
    checkpoint VBench uses; both are local, nothing is fetched.
    """

    def __init__(self, path: str, device: str = "cpu", key: str = "--viclip"):
        p = _need(path, key)
        try:
            from vbench.third_party.ViCLIP.simple_tokenizer import SimpleTokenizer
            from vbench.third_party.ViCLIP.viclip import ViCLIP
        except ImportError as e:
            raise ConfigError(f"{key}: ViCLIP needs the vbench package (pip install vbench) ({e})") from e
        self.tokenizer = SimpleTokenizer()
        self.device = torch.device(device)
        self.model = ViCLIP(tokenizer=self.tokenizer, pretrain=str(p)).to(self.device).eval()
        self.record = record(p, "ViCLIP (InternVid-10M-FLT, VBench)")

    @torch.no_grad()
    def videos(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch.nn.functional as F

        out = []
        for c in clips:
            idx = np.linspace(0, len(c) - 1, 8).round().astype(int)
            x = torch.from_numpy(np.ascontiguousarray(c[idx])).permute(0, 3, 1, 2).float() / 255.0
            x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
            x = (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
            out.append(self.model.get_vid_features(x[None].to(self.device))[0].float().cpu().numpy())
        return np.stack(out)

    @torch.no_grad()
    def text(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.model.get_text_features(t, self.tokenizer, {})[0].float().cpu().numpy() for t in texts])
