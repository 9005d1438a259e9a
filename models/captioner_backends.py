"""Text generation backends for the captioner: a batch of ``Request``s in, one answer string (or a
``CaptionError``) per request out. Each backend names what it needs and fails at construction
with the config key to fix. No Ray code here (the ray.data.llm path lives in stages/captions.py).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.captioner import CaptionError, Request
from models.json_constraint import char_budget
from stages.redact import redact_url


def chat_messages(req: Request) -> list[dict[str, Any]]:
    """Chat messages in the transformers/vLLM multimodal shape; media placeholders only."""
    content: list[dict[str, Any]] = []
    if req.video is not None:
        content.append({"type": "video"})
    if req.image is not None:
        content.append({"type": "image"})
    content.append({"type": "text", "text": req.prompt})
    return [{"role": "system", "content": [{"type": "text", "text": req.system}]}, {"role": "user", "content": content}]


def video_metadata(req: Request) -> dict[str, Any]:
    """What Qwen3-VL needs to print frame timestamps: without it, it assumes 24 fps."""
    n = len(req.video)
    return {"fps": req.fps, "frames_indices": list(range(n)), "total_num_frames": n, "duration": n / req.fps}


class TransformersBackend:
    """``Qwen3VLForConditionalGeneration`` from a local folder, greedy, JSON forced by xgrammar."""

    name = "transformers"

    def __init__(self, model: str | None = None, device: str = "cpu", dtype: str = "auto", batch_size: int = 8,
                 max_new_tokens: int = 4096) -> None:
        if not model or not Path(model).is_dir():
            raise ValueError(f"captions.model={model!r} must be a local Qwen3-VL folder (weights are never downloaded; "
                             "for tests build one with `memcorpus make-tiny-models DIR --only qwen3vl`)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

        from models.json_constraint import JsonConstraint
        from models.tiny import is_tiny

        self._torch = torch
        self.model, self.tiny_random = str(model), is_tiny(model)
        self.processor = AutoProcessor.from_pretrained(model)
        self.processor.tokenizer.padding_side = "left"  # batched generation appends on the right
        self.net = Qwen3VLForConditionalGeneration.from_pretrained(model, dtype=dtype).to(device).eval()
        self.device, self.batch_size, self.max_new_tokens = device, batch_size, max_new_tokens
        tok = self.processor.tokenizer
        stop = sorted({i for i in [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")] if i is not None})
        self.constraint = JsonConstraint(tok, self.net.config.text_config.vocab_size, stop)
        self.generated_tokens = 0  # running total, for throughput figures

    def generate(self, requests: list[Request]) -> list[str | CaptionError]:
        out: list[str | CaptionError] = [""] * len(requests)
        # One modality per forward: the processor takes videos and images as separate lists.
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault("video" if r.video is not None else "image" if r.image is not None else "text", []).append(i)
        for idx in groups.values():
            for k in range(0, len(idx), self.batch_size):
                chunk = idx[k : k + self.batch_size]
                try:
                    texts = self._generate([requests[i] for i in chunk])
                except (RuntimeError, ValueError) as e:  # OOM, a processor refusing an input
                    texts = [CaptionError("caption_backend_error", f"{type(e).__name__}: {e}")] * len(chunk)
                for i, t in zip(chunk, texts):
                    out[i] = t
        return out

    def _generate(self, reqs: list[Request]) -> list[str]:
        texts = [self.processor.apply_chat_template(chat_messages(r), tokenize=False, add_generation_prompt=True)
                 for r in reqs]
        kw: dict[str, Any] = {}
        if reqs[0].video is not None:
            kw.update(videos=[r.video for r in reqs], video_metadata=[video_metadata(r) for r in reqs],
                      do_sample_frames=False, cap_pixels_per_frame=False)  # already sampled and sized
        elif reqs[0].image is not None:
            kw.update(images=[r.image for r in reqs])
        inputs = self.processor(text=texts, padding=True, return_tensors="pt", **kw).to(self.device)
        budget = min(self.max_new_tokens, max(char_budget(r.schema) for r in reqs))
        with self._torch.inference_mode():
            seqs = self.net.generate(**inputs, max_new_tokens=budget, do_sample=False,
                                     logits_processor=[self.constraint.logits_processor([r.schema for r in reqs])])
        new = seqs[:, inputs["input_ids"].shape[1] :]
        pad = self.processor.tokenizer.pad_token_id
        self.generated_tokens += int((new != pad).sum())
        return [self.constraint.decode(row.tolist()) for row in new]  # special tokens decode to nothing


def _jpeg_b64(img: np.ndarray) -> str:
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


class OpenAIBackend:
    """Any OpenAI-compatible chat server (e.g. ``vllm serve Qwen/Qwen3-VL-8B-Instruct``) through the ``openai``
    client, JSON-schema response format. Videos go as an MP4 data URL encoded at the sampled fps, so the server
    reads the right timestamps. The client retries connection failures, timeouts, 408/409/429 and 5xx with
    exponential backoff (``retries`` times); what is still failing then becomes a retryable reject."""

    name = "openai"
    tiny_random = False
    _RETRIED_STATUS = (408, 409, 429)  # the client retries these besides 5xx: the server is busy, not our request

    def __init__(self, model: str | None = None, base_url: str = "http://127.0.0.1:8000/v1", timeout_s: float = 120.0,
                 retries: int = 2, concurrency: int = 8, api_key_env: str = "OPENAI_API_KEY") -> None:
        if not model:
            raise ValueError("captions.model must name the model the server serves (e.g. Qwen/Qwen3-VL-8B-Instruct)")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"captions.base_url={redact_url(base_url)!r} must be an http(s) URL ending in /v1")
        try:
            import openai
        except ImportError as e:
            raise ImportError("captions.backend='openai' needs the openai client: pip install -e '.[openai]'") from e
        # httpx logs every request URL at INFO, credentials in captions.base_url included: keep it to warnings.
        logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))
        self._openai = openai
        self.model, self.base_url, self.timeout_s, self.retries = model, base_url.rstrip("/"), timeout_s, retries
        self.shown_url = redact_url(self.base_url)  # what errors and logs may quote
        self.concurrency = concurrency
        self.client = openai.OpenAI(base_url=self.base_url, api_key=os.environ.get(api_key_env, "EMPTY"),
                                    timeout=timeout_s, max_retries=retries)
        self.generated_tokens = 0

    def payload(self, req: Request) -> dict[str, Any]:
        from stages.video import encode_mp4

        content: list[dict[str, Any]] = []
        if req.video is not None:
            url = "data:video/mp4;base64," + base64.b64encode(encode_mp4(req.video, req.fps)).decode()
            content.append({"type": "video_url", "video_url": {"url": url}})
        if req.image is not None:
            content.append({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + _jpeg_b64(req.image)}})
        content.append({"type": "text", "text": req.prompt})
        return {"model": self.model, "temperature": 0.0, "max_tokens": char_budget(req.schema),
                "messages": [{"role": "system", "content": req.system}, {"role": "user", "content": content}],
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "answer", "schema": req.schema, "strict": True}}}

    def _post(self, body: dict[str, Any]) -> str | CaptionError:
        oa = self._openai
        tries = f"{self.shown_url} after {self.retries + 1} tries"
        try:
            reply = self.client.chat.completions.create(**body)
        except oa.APIStatusError as e:
            if e.status_code >= 500 or e.status_code in self._RETRIED_STATUS:
                return CaptionError("caption_server_unavailable", f"{tries}: HTTP {e.status_code}")
            # our request is wrong; asking again will not help
            return CaptionError("caption_server_error", f"HTTP {e.status_code}: {redact_url(str(e.message))[:300]}")
        except oa.APIConnectionError as e:  # refused, reset, timed out (APITimeoutError)
            return CaptionError("caption_server_unavailable", f"{tries}: {type(e).__name__}: {redact_url(str(e))}")
        except oa.APIResponseValidationError as e:
            return CaptionError("caption_server_error", f"malformed reply: {e}")
        try:
            text = reply.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as e:  # 200 with a body that is no chat completion
            return CaptionError("caption_server_error", f"malformed reply: {type(e).__name__}: {e}")
        usage = getattr(reply, "usage", None)
        self.generated_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        return text

    def generate(self, requests: list[Request]) -> list[str | CaptionError]:
        bodies = [self.payload(r) for r in requests]
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(bodies)))) as pool:
            return list(pool.map(self._post, bodies))


def vllm_sampling_params(req: Request) -> dict[str, Any]:
    """Per-row sampling parameters as plain data (ray.data.llm converts ``structured_outputs``). The schema
    travels as a JSON string: Arrow would merge the differently shaped schema dicts of a block into one
    struct type, adding null keys that vLLM would then read as schema keywords."""
    return {"temperature": 0.0, "max_tokens": char_budget(req.schema),
            "structured_outputs": {"json": json.dumps(req.schema)}}


def vllm_multimodal_data(req: Request) -> dict[str, Any] | None:
    if req.video is not None:
        return {"video": [(req.video, video_metadata(req))]}
    if req.image is not None:
        return {"image": [req.image]}
    return None


class VLLMBackend:
    """In-process ``vllm.LLM`` (one GPU node, no Ray Data); the Ray path is stages.captions.CaptionWithVLLM."""

    name = "vllm"
    tiny_random = False

    def __init__(self, model: str | None = None, max_model_len: int = 32768, gpu_memory_utilization: float = 0.9,
                 limit_mm_per_prompt: dict[str, int] | None = None) -> None:
        try:
            import vllm
        except ImportError as e:
            raise ImportError("captions.backend='vllm' needs vLLM, which pins its own torch: install it in a separate "
                              "GPU environment (see README), or use backend 'openai' against `vllm serve`") from e
        from transformers import AutoProcessor

        self.model = model or "Qwen/Qwen3-VL-8B-Instruct"
        self._vllm = vllm
        self.processor = AutoProcessor.from_pretrained(self.model)
        self.llm = vllm.LLM(model=self.model, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                            limit_mm_per_prompt=limit_mm_per_prompt or {"video": 1, "image": 1})
        self.generated_tokens = 0

    def generate(self, requests: list[Request]) -> list[str | CaptionError]:
        from vllm.sampling_params import SamplingParams, StructuredOutputsParams

        prompts, params = [], []
        for r in requests:
            text = self.processor.apply_chat_template(chat_messages(r), tokenize=False, add_generation_prompt=True)
            p: dict[str, Any] = {"prompt": text}
            if (mm := vllm_multimodal_data(r)) is not None:
                p["multi_modal_data"] = mm
            prompts.append(p)
            sp = vllm_sampling_params(r)
            params.append(SamplingParams(temperature=0.0, max_tokens=sp["max_tokens"],
                                         structured_outputs=StructuredOutputsParams(json=r.schema)))
        outs = self.llm.generate(prompts, sampling_params=params)
        self.generated_tokens += sum(len(o.outputs[0].token_ids) for o in outs)
        return [o.outputs[0].text for o in outs]
