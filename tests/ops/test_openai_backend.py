"""The OpenAI-compatible caption backend through the ``openai`` client, against a fake chat-completions server
started in the test (no network): busy replies are retried by the client, a refused request is not."""

from __future__ import annotations

import http.server
import json
import threading
import typing

import numpy as np
import pytest

from models.captioner import CaptionError, Request
from models.captioner_backends import OpenAIBackend

SCHEMA = {"type": "object", "properties": {"caption": {"type": "string", "maxLength": 40}}, "required": ["caption"]}


class _Server(http.server.BaseHTTPRequestHandler):
    script: typing.ClassVar[list[int]] = []  # status of each next reply; 200 when empty
    seen: typing.ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Server.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status = _Server.script.pop(0) if _Server.script else 200
        reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": json.dumps({"caption": "a red kite"})}}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}
        data = json.dumps(reply if status == 200 else {"error": {"message": f"status {status}"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Server.script, _Server.seen = [], []
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()


def _image_request() -> Request:
    img = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    return Request(prompt="Describe.", schema=SCHEMA, image=img)


def test_answers_and_request_shape(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k123")
    b = OpenAIBackend(model="qwen", base_url=server, retries=0)
    assert b.generate([_image_request()]) == [json.dumps({"caption": "a red kite"})]
    (req,) = _Server.seen
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k123"
    body = req["body"]
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA and body["temperature"] == 0.0
    assert body["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert b.generated_tokens == 5


def test_busy_server_is_retried_by_the_client(server):
    _Server.script = [503, 429]
    out = OpenAIBackend(model="qwen", base_url=server, retries=2, timeout_s=5).generate([_image_request()])
    assert out == [json.dumps({"caption": "a red kite"})] and len(_Server.seen) == 3


def test_exhausted_retries_and_refusals_become_reject_reasons(server):
    _Server.script = [503, 503]
    (busy,) = OpenAIBackend(model="qwen", base_url=server, retries=1, timeout_s=5).generate([_image_request()])
    assert isinstance(busy, CaptionError) and busy.reason == "caption_server_unavailable"
    assert "2 tries" in str(busy) and len(_Server.seen) == 2
    _Server.script, _Server.seen = [400], []
    (bad,) = OpenAIBackend(model="qwen", base_url=server, retries=3).generate([_image_request()])
    assert isinstance(bad, CaptionError) and bad.reason == "caption_server_error" and "HTTP 400" in str(bad)
    assert len(_Server.seen) == 1  # our request is wrong: asking again would not help
