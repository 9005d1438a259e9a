"""Caption -> text-encoder states for the DiT's cross-attention.

Production: UMT5 (Wan's text encoder) from a local folder or cached hub id. Offline: a
deterministic hashed embedding (each word gets a fixed random vector), so captions still
differ from each other and from a dropped caption without any weights.
"""

from __future__ import annotations

import hashlib

import torch


class HashText:
    def __init__(self, dim: int, length: int = 16):
        self.dim, self.length = dim, length

    def _word(self, w: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") & ((1 << 62) - 1)
        return torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))

    def __call__(self, captions: list[str]) -> torch.Tensor:
        out = torch.zeros(len(captions), self.length, self.dim)  # (B, L, D)
        for i, c in enumerate(captions):
            for j, w in enumerate(c.lower().split()[: self.length]):
                out[i, j] = self._word(w)
        return out


class UMT5Text:
    def __init__(self, source: str, dim: int, length: int = 512, key: str = "model.text_encoder"):
        from transformers import AutoTokenizer, UMT5EncoderModel

        try:
            self.tok = AutoTokenizer.from_pretrained(source, subfolder="tokenizer", local_files_only=True)
            self.enc = UMT5EncoderModel.from_pretrained(source, subfolder="text_encoder", local_files_only=True).eval()
        except OSError as e:
            raise ValueError(
                f"{key}={source!r}: no UMT5 tokenizer/text_encoder there ({e}); use {key}=hash offline"
            ) from e
        if self.enc.config.d_model != dim:
            raise ValueError(f"{key}: UMT5 width {self.enc.config.d_model} != backbone text_dim {dim}")
        self.length = length

    @torch.no_grad()
    def __call__(self, captions: list[str]) -> torch.Tensor:
        t = self.tok(captions, padding="max_length", truncation=True, max_length=self.length, return_tensors="pt")
        h = self.enc(input_ids=t.input_ids, attention_mask=t.attention_mask).last_hidden_state
        return h * t.attention_mask[..., None]  # Wan zeroes padded positions


def make_text_encoder(spec: str, dim: int):
    return HashText(dim) if spec == "hash" else UMT5Text(spec, dim)
