"""CaptionSequence: naming checks, bounded re-asks with the violation stated, server failures, Table 3 stats."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import typing

import numpy as np
import pytest

from models.captioner import Captioner, CaptionLimits
from models.captioner_backends import OpenAIBackend
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.caption_validation import caption_table, check_caption, check_story, format_caption_table
from stages.captions import CaptionSequence
from stages.video import encode_mp4

STORY = {"story": "Red-Coat Woman crosses the square and meets Old Fisherman.",
         "subjects": [{"name": "Red-Coat Woman", "description": "a woman in a red coat"},
                      {"name": "Old Fisherman", "description": "a grey-bearded fisherman"}]}
GOOD = "Red-Coat Woman hands Old Fisherman a letter by the harbour."


class Scripted:
    """A backend that answers from a script per request kind and records every prompt it saw."""

    name, model, tiny_random = "scripted", "script", False

    def __init__(self, story=(STORY,), shot=(GOOD,), recon=(GOOD,)):
        self.script = {"story": list(story), "shot": list(shot), "recon": list(recon)}
        self.prompts: list[str] = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.prompts.append(r.prompt)
            kind = "story" if "subjects" in r.schema["properties"] else "recon" if r.image is not None else "shot"
            seq = self.script[kind]
            a = seq.pop(0) if len(seq) > 1 else seq[0]
            out.append(a if isinstance(a, str) and not a.startswith(("Red", "She", "The", "Tall")) else
                       json.dumps(a) if isinstance(a, dict) else json.dumps({"caption": a}))
        return out


def _sample(key="s", shots=((0, 9), (10, 19)), recon=1):
    video = np.random.default_rng(1).integers(0, 255, (20, 64, 96, 3), dtype=np.uint8)
    blobs = {"clip.mp4": encode_mp4(video, 10)}
    for k in range(recon):
        import cv2

        blobs[f"recon{k}.jpg"] = cv2.imencode(".jpg", video[k])[1].tobytes()
    return Sample(id=key, source={}, meta={"fps": 10.0, "shots": [list(s) for s in shots]}, blobs=blobs)


def _run(backend, samples, **kw):
    stage = CaptionSequence(limits=CaptionLimits(total_pixels=4 * 64 * 96, max_frame_pixels=64 * 96), **kw)
    stage._captioner = Captioner(backend, stage.limits)
    return [s for b in [samples] for s in stage(b)]


def test_accepts_and_fills_contract():
    out = _run(Scripted(), [_sample(shots=((0, 9), (10, 19)), recon=2)])[0]
    c = out.meta["captions"]
    assert not out.rejected and c["shots"] == [GOOD, GOOD] and c["recon"] == [GOOD, GOOD]
    assert c["story"] == STORY["story"] and c["subjects"] == STORY["subjects"] and c["retries"] == 0
    assert c["backend"] == "scripted"


def test_pronoun_is_reasked_with_violation_then_accepted():
    b = Scripted(shot=("She waves at Old Fisherman.", GOOD))
    out = _run(b, [_sample(shots=((0, 19),), recon=0)])[0]
    assert not out.rejected and out.meta["captions"]["retries"] == 1
    assert "pronouns ['She']" in b.prompts[-1] and "previous answer was rejected" in b.prompts[-1]


@pytest.mark.parametrize("bad,reason", [
    ("She waves.", "caption_pronoun"),
    ("The man waves at Old Fisherman.", "caption_unnamed_reference"),
    ("Tall Stranger waves at Old Fisherman.", "caption_unknown_name"),
    ("{not json", "caption_not_json"),
    ('{"caption": "Old Fisherman wav', "caption_not_json"),  # truncated JSON
])
def test_persistent_violation_is_rejected_after_bounded_retries(bad, reason):
    b = Scripted(shot=(bad,))
    good, bad_sample = _sample("ok", shots=((0, 19),), recon=0), _sample("bad", shots=((0, 9), (10, 19)), recon=0)
    b.script["shot"] = [GOOD, bad, bad, bad, bad]  # first shot of "ok" is fine; every other shot answer is bad
    out = _run(b, [good, bad_sample], max_retries=2)
    assert not out[0].rejected  # the run goes on for the other sample
    assert out[1].rejected and out[1].reason == reason
    assert "after 2 re-asks" in out[1].errors[-1]["detail"]
    assert sum("previous answer was rejected" in p for p in b.prompts) == 2 * 2  # two bad shots, two re-asks each


def test_story_with_pronoun_names_is_rejected():
    bad = {"story": "x", "subjects": [{"name": "he", "description": "d"}]}
    out = _run(Scripted(story=(bad,)), [_sample(recon=0)], max_retries=1)[0]
    assert out.rejected and out.reason == "story_bad_subject_name"


def test_validation_rules():
    names = ["Red-Coat Woman", "Old Fisherman"]
    assert check_caption(GOOD, names) == []
    assert check_caption("The Old Fisherman smiles; Old Fisherman's boat rocks.", names) == []
    assert [v.reason for v in check_caption("Their boat drifts; someone shouts.", names)] == [
        "caption_pronoun", "caption_unnamed_reference"]
    dup = {"story": "s", "subjects": [{"name": "Old Fisherman", "description": ""}] * 2}
    assert [v.reason for v in check_story(dup)] == ["story_duplicate_subject_name"]


class _Handler(http.server.BaseHTTPRequestHandler):
    bodies: typing.ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.bodies.append(body)
        schema = body["response_format"]["json_schema"]["schema"]
        ans = STORY if "subjects" in schema["properties"] else {"caption": GOOD}
        reply = {"choices": [{"message": {"content": json.dumps(ans)}}], "usage": {"completion_tokens": 7}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_openai_backend_against_a_local_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        b = OpenAIBackend(model="qwen", base_url=f"http://127.0.0.1:{srv.server_port}/v1", retries=0)
        out = _run(b, [_sample(shots=((0, 19),), recon=1)])[0]
    finally:
        srv.shutdown()
    assert not out.rejected and out.meta["captions"]["shots"] == [GOOD]
    video_req = next(x for x in _Handler.bodies if x["messages"][1]["content"][0]["type"] == "video_url")
    assert video_req["messages"][1]["content"][0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert video_req["response_format"]["json_schema"]["strict"] is True and video_req["temperature"] == 0.0
    assert b.generated_tokens == 7 * 3


def test_server_down_or_silent_rejects_with_reason():
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    out = _run(OpenAIBackend(model="q", base_url=f"http://127.0.0.1:{dead}/v1", retries=1), [_sample(recon=0)])[0]
    assert out.rejected and out.reason == "caption_server_unavailable" and "2 tries" in out.errors[-1]["detail"]

    silent = socket.socket()  # accepts connections, never answers: a timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        b = OpenAIBackend(model="q", base_url=f"http://127.0.0.1:{silent.getsockname()[1]}/v1", timeout_s=0.3,
                          retries=1)
        out = _run(b, [_sample(recon=0)])[0]
    finally:
        silent.close()
    assert out.rejected and out.reason == "caption_server_unavailable"


def test_caption_length_table():
    s1, s2 = _sample("a"), _sample("b")
    s1.meta["captions"] = {"story": "x" * 100, "shots": ["y" * 10, "y" * 30], "recon": ["z" * 5]}
    s2.meta["captions"] = {"story": "x" * 300, "shots": ["y" * 20], "recon": []}
    t = caption_table([s1, s2, _sample("c").reject("r", stage="t")])
    assert t["Sequence caption"] == {"count": 2, "min": 100, "max": 300, "mean": 200.0, "median": 200.0}
    assert t["Clip caption"]["median"] == 20.0 and t["Reconstruction caption"]["count"] == 1
    assert "| Clip caption | 3 | 10 | 30 | 20.0 | 20.0 |" in format_caption_table(t)


def test_bad_clip_rejected():
    s = Sample(id="x", source={}, meta={"fps": 10.0}, blobs={"clip.mp4": b"garbage"})
    out = list(SequentialRunner().run([], [s]))
    stage = CaptionSequence()
    stage._captioner = Captioner(Scripted())
    out = stage(out)[0]
    assert out.rejected and out.reason.startswith("captions_")
