"""Memento captions with Qwen3-VL on vLLM through ``ray.data.llm`` (the GPU path).

The Ray runner calls ``ray_apply(ds)`` instead of ``map_batches``: rows hold a ``{"sample": Sample}``
column. Two ``build_processor`` passes: stories, then every shot and recon caption as its own
prompt row (vLLM batches them), regrouped by sample id. Each sample also sends a one-token
"carrier" row through the second pass so that it travels with its prompts and the group always
exists, even when its story failed. ``should_continue_on_error`` turns one bad row into an
``__inference_error__`` instead of a dead job; that row's sample is rejected with the reason.
The row functions are plain and tested without vLLM. As in the lead's Ray runner, the ``sample``
column holds the pickled Sample; the functions also accept a Sample object (tests). Violations of the naming rules are not
re-asked on this path (a third pass would double the cost): they reject with their slug.
On the sequential runner the inherited ``process`` runs vLLM in-process (``backend="vllm"``).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from typing import Any

from models.captioner import Captioner, CaptionError, Request, parse_answer
from models.captioner_backends import chat_messages, vllm_multimodal_data, vllm_sampling_params
from stages.base import Resources, Sample
from stages.caption_validation import check_caption, check_story
from stages.captions import CaptionSequence, decode_for_captions
from stages.video import DecodeError

DEFAULT_MODEL = "Qwen/Qwen3-VL-8B-Instruct"


class _Prompts:
    """Request builders only; generation happens in the vLLM engine stage."""

    name, model, tiny_random = "vllm", DEFAULT_MODEL, False


def request_row(req: Request) -> dict[str, Any]:
    """The columns ray.data.llm's chat-template and vLLM engine stages read."""
    return {"messages": chat_messages(req), "multimodal_data": vllm_multimodal_data(req),
            "sampling_params": vllm_sampling_params(req), "schema": json.dumps(req.schema)}


def _load(x: bytes | Sample) -> Sample:
    return x if isinstance(x, Sample) else pickle.loads(x)


def _dump(s: Sample) -> bytes:
    return pickle.dumps(s, protocol=5)


def _reject(s: Sample, reason: str, detail: str) -> None:
    if not s.rejected:
        s.reject(reason, stage="CaptionWithVLLM", detail=detail)


def _answer(row: dict[str, Any]) -> dict[str, Any] | CaptionError:
    if row.get("__inference_error__"):
        return CaptionError("caption_inference_error", str(row["__inference_error__"])[:500])
    return parse_answer(row.get("generated_text", ""), json.loads(row["schema"]))


def story_preprocess(row: dict[str, Any], captioner: Captioner) -> dict[str, Any]:
    s = _load(row["sample"])
    fps = float(s.meta.get("fps") or 0)
    req = Request("OK", {"type": "object", "properties": {}})  # a rejected sample still needs a (tiny) prompt
    if not s.rejected and (not s.blobs.get("clip.mp4") or fps <= 0):
        _reject(s, "captions_no_clip", "needs blobs['clip.mp4'] and meta['fps'] > 0")
    if not s.rejected:
        try:
            frames, idx, rate = decode_for_captions(s.blobs["clip.mp4"], fps, captioner.limits)
            s.scratch["caption_frames"] = (frames, idx, rate)  # reused by the shot prompts; never written
            req = captioner.story_request(frames, rate)
        except DecodeError as e:
            _reject(s, f"captions_{e.reason}", e.detail)
    return {"sample": _dump(s), **request_row(req)}


def story_postprocess(row: dict[str, Any]) -> dict[str, Any]:
    s = _load(row["sample"])
    if not s.rejected:
        a = _answer(row)
        if isinstance(a, CaptionError):
            _reject(s, a.reason, f"story: {a.detail}")
        elif problems := check_story(a):
            _reject(s, problems[0].reason, "story: " + " ".join(p.message for p in problems))
        else:
            s.scratch["story"] = a
    return {"sample": _dump(s)}


def slot_rows(row: dict[str, Any], captioner: Captioner) -> list[dict[str, Any]]:
    """One row per shot and recon caption, plus the carrier row holding the sample itself."""
    import cv2
    import numpy as np

    s = _load(row["sample"])
    carrier = {"id": s.id, "kind": "carrier", "index": -1, "sample": None,
               **request_row(Request("OK", {"type": "string", "maxLength": 1}))}
    if s.rejected:
        return [{**carrier, "sample": _dump(s)}]
    frames, idx, rate = s.scratch["caption_frames"]
    story = s.scratch["story"]
    shots = s.meta.get("shots") or [[0, int(idx[-1])]]
    out = [carrier]
    for i, (a, b) in enumerate(shots):
        sel = (idx >= a) & (idx <= b)
        if sel.sum() == 0:
            sel = np.abs(idx - a) == np.abs(idx - a).min()
        req = captioner.shot_request(frames[sel], rate, story, i, len(shots))
        out.append({"id": s.id, "kind": "shot", "index": i, "sample": None, **request_row(req)})
    for k in sorted(b for b in s.blobs if b.startswith("recon") and b.endswith(".jpg")):
        img = cv2.imdecode(np.frombuffer(s.blobs[k], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        req = captioner.recon_request(img, story)
        out.append({"id": s.id, "kind": "recon", "index": int(k[5:-4]), "sample": None, **request_row(req)})
    s.scratch.pop("caption_frames")
    out[0]["sample"] = _dump(s)  # after the frames left scratch: they need not travel further
    return out


def slot_postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Keep only what regrouping needs; the answer is parsed here, on the CPU stage after vLLM."""
    # Every row gets the same columns: the groupby concatenates Arrow blocks, which must share a schema.
    out = {"id": row["id"], "kind": row["kind"], "index": row["index"], "sample": row["sample"], "answer": "",
           "failed": ""}
    if row["kind"] != "carrier":
        a = _answer(row)
        out["answer"] = a.reason + ": " + a.detail if isinstance(a, CaptionError) else a["caption"]
        out["failed"] = a.reason if isinstance(a, CaptionError) else ""
    return out


def merge_group(rows: list[dict[str, Any]], info: dict[str, Any]) -> Sample:
    """Reassemble one sample from its carrier and caption rows; validate names; reject on any failure."""
    s = _load(next(r["sample"] for r in rows if r["kind"] == "carrier"))
    if s.rejected:
        return s
    story = s.scratch.pop("story")
    names = [x["name"] for x in story["subjects"]]
    caps: dict[str, dict[int, str]] = {"shot": {}, "recon": {}}
    for r in sorted((r for r in rows if r["kind"] != "carrier"), key=lambda r: (r["kind"], r["index"])):
        if r["failed"]:
            _reject(s, r["failed"], f"{r['kind']} {r['index']}: {r['answer']}")
            return s
        if problems := check_caption(r["answer"], names):
            _reject(s, problems[0].reason, f"{r['kind']} {r['index']}: " + " ".join(p.message for p in problems))
            return s
        caps[r["kind"]][r["index"]] = r["answer"]
    s.meta["captions"] = {"story": story["story"], "subjects": story["subjects"],
                          "shots": [caps["shot"][i] for i in sorted(caps["shot"])],
                          "recon": [caps["recon"][i] for i in sorted(caps["recon"])], **info, "retries": 0}
    return s


@dataclass
class CaptionWithVLLM(CaptionSequence):
    """Qwen3-VL via vLLM: ``ray_apply`` on a Ray Dataset; in-process vLLM on the sequential runner."""

    backend: str = "vllm"
    model: str = DEFAULT_MODEL
    engine_kwargs: dict = field(default_factory=lambda: {"max_model_len": 32768, "gpu_memory_utilization": 0.9})
    concurrency: int = 1  # vLLM engine replicas
    vllm_batch_size: int = 16  # prompts per engine batch
    accelerator_type: str | None = None
    group_partitions: int = 8  # hash partitions of the regrouping shuffle (Ray's default of 200 is for big data)
    resources: Resources = field(default_factory=lambda: Resources(cpus=1, gpus=1))
    version: str = "captions_vllm/1"

    def processor_config(self) -> Any:
        from ray.data.llm import vLLMEngineProcessorConfig

        engine = {"limit_mm_per_prompt": {"video": 1, "image": 1}, "trust_remote_code": False, **self.engine_kwargs}
        return vLLMEngineProcessorConfig(
            model_source=self.model, engine_kwargs=engine, batch_size=self.vllm_batch_size,
            concurrency=self.concurrency, accelerator_type=self.accelerator_type, should_continue_on_error=True,
            chat_template_stage=True,  # messages -> prompt with the model's own template
            tokenize_stage=False, detokenize_stage=False,  # vLLM tokenizes and returns text itself
            prepare_multimodal_stage=False,  # rows already carry multimodal_data (frames + metadata)
        )

    def ray_apply(self, ds: Any) -> Any:
        try:
            import vllm  # noqa: F401  (the engine stage imports it on the GPU workers)
        except ImportError as e:
            raise ImportError("CaptionWithVLLM needs vLLM on the GPU workers (separate environment, see README); "
                              "use captions.backend='transformers' or 'openai' without it") from e
        from ray.data.llm import build_processor

        cap = Captioner(_Prompts(), self.limits)
        info = {"backend": "vllm", "model": self.model, "tiny_random": False}
        cfg = self.processor_config()
        stories = build_processor(cfg, preprocess=lambda r: story_preprocess(r, cap), postprocess=story_postprocess)
        slots = build_processor(cfg, preprocess=lambda r: r, postprocess=slot_postprocess)
        ds = stories(ds).flat_map(lambda r: slot_rows(r, cap))
        grouped = slots(ds).groupby("id", num_partitions=self.group_partitions).map_groups(
            lambda g: {"sample": [_dump(merge_group(g.to_dict("records"), info))]}, batch_format="pandas")
        return grouped
