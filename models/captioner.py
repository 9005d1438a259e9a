"""Memento's three caption stages (story + subject inventory, shot, reconstruction) over any VLM backend.

A ``Captioner`` turns frames into ``Request``s (prompt, JSON schema, video or image) and parses
the backend's answers. Backends (``models/captioner_backends.py``) only generate text for a batch
of requests; they never see Memento. Every answer is forced to a JSON schema; strings and arrays
are bounded so that grammar-constrained decoding always terminates. No Ray code here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone surrogates cannot be written as UTF-8
PATCH = 32  # Qwen3-VL: 16-pixel patches merged 2x2, so frame sides are multiples of 32


@dataclass(frozen=True)
class CaptionLimits:
    """Lengths in characters. Defaults cover Memento Table 3's maxima (1,485 / 999 / 641)."""

    story_chars: int = 1600
    shot_chars: int = 1000
    recon_chars: int = 700
    name_chars: int = 40
    description_chars: int = 200
    max_subjects: int = 8
    video_fps: float = 2.0  # Qwen3-VL's default sampling rate
    max_frames: int = 128
    total_pixels: int = 16384 * 32 * 32  # pixel budget of all frames of one video request together
    max_frame_pixels: int = 768 * 32 * 32
    min_frame_pixels: int = 4 * 32 * 32


def story_schema(lim: CaptionLimits) -> dict[str, Any]:
    subject = {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": lim.name_chars},
        "description": {"type": "string", "maxLength": lim.description_chars}},
        "required": ["name", "description"], "additionalProperties": False}
    return {"type": "object", "properties": {
        "story": {"type": "string", "minLength": 1, "maxLength": lim.story_chars},
        "subjects": {"type": "array", "items": subject, "maxItems": lim.max_subjects}},
        "required": ["story", "subjects"], "additionalProperties": False}


def caption_schema(max_chars: int) -> dict[str, Any]:
    return {"type": "object", "properties": {"caption": {"type": "string", "minLength": 1, "maxLength": max_chars}},
            "required": ["caption"], "additionalProperties": False}


@dataclass
class Request:
    """One prompt for a VLM: text, the schema its answer must follow, and at most one video or image."""

    prompt: str
    schema: dict[str, Any]
    video: np.ndarray | None = None  # (T, H, W, 3) uint8, already sampled and resized
    fps: float = 0.0  # sampling rate of ``video`` (its frame timestamps are i / fps)
    image: np.ndarray | None = None  # (H, W, 3) uint8
    system: str = "You are a precise film annotator. Answer with JSON only."
    meta: dict[str, Any] = field(default_factory=dict)


class CaptionError(ValueError):
    """An answer that cannot be used; ``reason`` is the reject slug."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def fit_size(h: int, w: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """(h, w) rounded to multiples of 32 with the aspect kept and the area within [min, max]."""
    scale = 1.0
    if h * w > max_pixels:
        scale = math.sqrt(max_pixels / (h * w))
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (h * w))
    nh = max(PATCH, int(h * scale // PATCH) * PATCH)
    nw = max(PATCH, int(w * scale // PATCH) * PATCH)
    return nh, nw


def sample_video(frames: np.ndarray, fps: float, lim: CaptionLimits) -> tuple[np.ndarray, float]:
    """Frames at ``lim.video_fps`` (at most ``max_frames``, an even count for the 2-frame temporal
    patches), resized so that all of them fit ``total_pixels``. Returns (frames, their fps)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"need (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    t = frames.shape[0]
    n = max(2, min(lim.max_frames, round(t / fps * lim.video_fps)))
    n -= n % 2
    idx = np.linspace(0, t - 1, n).round().astype(int)
    per_frame = min(lim.max_frame_pixels, lim.total_pixels // n)
    nh, nw = fit_size(frames.shape[1], frames.shape[2], per_frame, lim.min_frame_pixels)
    out = np.stack([cv2.resize(frames[i], (nw, nh), interpolation=cv2.INTER_AREA) for i in idx])
    return out, n / (t / fps)


def resize_image(image: np.ndarray, lim: CaptionLimits) -> np.ndarray:
    nh, nw = fit_size(image.shape[0], image.shape[1], lim.max_frame_pixels, lim.min_frame_pixels)
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)


def _inventory(story: dict[str, Any]) -> str:
    subs = "\n".join(f'- "{s["name"]}": {s["description"]}' for s in story.get("subjects", []))
    return f"Story: {story.get('story', '')}\nSubject inventory:\n{subs or '- (none)'}"


NAMING_RULES = (
    "Refer to every recurring subject only by its exact inventory name, written as given. "
    "Never use pronouns (he, she, they, him, her, it, his, their...) or vague references (the man, the woman, "
    "someone) for a recurring subject; repeat the name instead."
)


class Captioner:
    """The three Memento stages plus a generic clip caption, over one text-generation backend."""

    def __init__(self, backend: Any, limits: CaptionLimits | None = None) -> None:
        self.backend, self.limits = backend, limits or CaptionLimits()

    @property
    def info(self) -> dict[str, Any]:
        return {"backend": self.backend.name, "model": self.backend.model, "tiny_random": self.backend.tiny_random}

    # -- requests ---------------------------------------------------------------------------------
    def story_request(self, frames: np.ndarray, fps: float, feedback: str = "") -> Request:
        video, vfps = sample_video(frames, fps, self.limits)
        prompt = (
            "Watch this multi-shot film sequence. Write a global story caption of what happens, and list every "
            "salient recurring subject (people, animals, important objects) with a fixed, explicit, pronoun-free "
            'name (e.g. "Red-Coat Woman", "Old Fisherman") and a short visual description. '
            'Answer as {"story": ..., "subjects": [{"name": ..., "description": ...}]}. ' + NAMING_RULES
        )
        return Request(_with_feedback(prompt, feedback), story_schema(self.limits), video=video, fps=vfps)

    def shot_request(self, frames: np.ndarray, fps: float, story: dict[str, Any], index: int, total: int,
                     feedback: str = "") -> Request:
        video, vfps = sample_video(frames, fps, self.limits)
        prompt = (
            f"{_inventory(story)}\n\nThis video is shot {index + 1} of {total} of that sequence. Describe this shot "
            'alone: subjects, actions, setting, camera. Answer as {"caption": ...}. ' + NAMING_RULES
        )
        return Request(_with_feedback(prompt, feedback), caption_schema(self.limits.shot_chars), video=video, fps=vfps)

    def recon_request(self, image: np.ndarray, story: dict[str, Any], feedback: str = "") -> Request:
        prompt = (
            f"{_inventory(story)}\n\nThis frame is from that sequence. Describe the subjects visible in it, their "
            'appearance, pose and the setting, consistent with the inventory. Answer as {"caption": ...}. '
            + NAMING_RULES
        )
        return Request(_with_feedback(prompt, feedback), caption_schema(self.limits.recon_chars),
                       image=resize_image(image, self.limits))

    def clip_request(self, frames: np.ndarray, fps: float) -> Request:
        video, vfps = sample_video(frames, fps, self.limits)
        prompt = 'Describe this video clip: subjects, actions, setting and camera motion. Answer as {"caption": ...}.'
        return Request(prompt, caption_schema(self.limits.shot_chars), video=video, fps=vfps)

    # -- answers ----------------------------------------------------------------------------------
    def answer(self, requests: list[Request]) -> list[dict[str, Any] | CaptionError]:
        """Generate a batch; each item is the parsed JSON object or the CaptionError that replaced it."""
        if not requests:
            return []
        raw = self.backend.generate(requests)
        return [r if isinstance(r, CaptionError) else parse_answer(r, q.schema) for r, q in zip(raw, requests)]

    def _one(self, request: Request) -> dict[str, Any]:
        out = self.answer([request])[0]
        if isinstance(out, CaptionError):
            raise out
        return out

    def story(self, frames: np.ndarray, fps: float) -> dict[str, Any]:
        return self._one(self.story_request(frames, fps))

    def shot(self, frames: np.ndarray, fps: float, story: dict[str, Any], index: int = 0, total: int = 1) -> str:
        return self._one(self.shot_request(frames, fps, story, index, total))["caption"]

    def recon(self, image: np.ndarray, story: dict[str, Any]) -> str:
        return self._one(self.recon_request(image, story))["caption"]

    def caption_clip(self, frames: np.ndarray, fps: float) -> str:
        """One free caption for a clip (used by the multi-camera corpus, every 77 frames)."""
        return self._one(self.clip_request(frames, fps))["caption"]


def _with_feedback(prompt: str, feedback: str) -> str:
    return f"{prompt}\n\nYour previous answer was rejected: {feedback} Fix exactly that." if feedback else prompt


def with_feedback(req: Request, feedback: str) -> Request:
    """The same request (frames already sampled) re-asked with the violation stated."""
    return dataclasses.replace(req, prompt=_with_feedback(req.prompt, feedback)) if feedback else req


def parse_answer(text: str, schema: dict[str, Any]) -> dict[str, Any] | CaptionError:
    """JSON-decode and check the answer against our (flat) schemas; never raises.

    ``strict=False`` accepts raw control characters inside strings: xgrammar's length-bounded strings
    (and so vLLM's structured outputs) allow them. They are turned into spaces, and lone surrogates
    into U+FFFD, one character each, so lengths stay those the grammar enforced."""
    try:
        obj = json.loads(text, strict=False)
    except (json.JSONDecodeError, TypeError) as e:
        return CaptionError("caption_not_json", f"{e}; answer starts {str(text)[:120]!r}")
    obj = _clean(obj)
    problem = schema_problem(obj, schema, "$")
    return CaptionError("caption_schema", problem) if problem else obj


def _clean(obj: Any) -> Any:
    if isinstance(obj, str):
        return _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", obj))
    if isinstance(obj, list):
        return [_clean(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def schema_problem(obj: Any, schema: dict[str, Any], where: str) -> str:
    """The first violation of the subset of JSON Schema our schemas use, or ''."""
    t = schema["type"]
    if t == "object":
        if not isinstance(obj, dict):
            return f"{where} is not an object"
        missing = [k for k in schema.get("required", []) if k not in obj]
        if missing:
            return f"{where} lacks {missing}"
        for k, sub in schema["properties"].items():
            if k in obj and (p := schema_problem(obj[k], sub, f"{where}.{k}")):
                return p
        return ""
    if t == "array":
        if not isinstance(obj, list):
            return f"{where} is not an array"
        if len(obj) > schema.get("maxItems", len(obj)):
            return f"{where} has more than {schema['maxItems']} items"
        return next((p for i, x in enumerate(obj) if (p := schema_problem(x, schema["items"], f"{where}[{i}]"))), "")
    if t == "string":
        if not isinstance(obj, str):
            return f"{where} is not a string"
        if not schema.get("minLength", 0) <= len(obj) <= schema.get("maxLength", len(obj)):
            return f"{where} has length {len(obj)} outside the schema bounds"
        return ""
    raise AssertionError(f"schema type {t!r} is not used by our schemas")


def build_captioner(backend: str, model: str | None = None, limits: CaptionLimits | None = None, **kw) -> Captioner:
    """``backend``: "transformers" (local folder), "openai" (a running server), "vllm" (in-process vLLM)."""
    from models import captioner_backends as cb

    makers = {"transformers": cb.TransformersBackend, "openai": cb.OpenAIBackend, "vllm": cb.VLLMBackend}
    if backend not in makers:
        raise ValueError(f"captions.backend={backend!r}: expected one of {sorted(makers)}")
    return Captioner(makers[backend](model=model, **kw), limits)
