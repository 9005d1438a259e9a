"""Item 9, credentials inside captions.base_url: no password or query token is recorded anywhere.

A run captions against ``http://user:secret@127.0.0.1:9/v1?token=abc`` where nothing listens,
so every sample is rejected with ``caption_server_unavailable`` and a detail quoting the URL.
The run record, the manifests and the rejects table (read back from Parquet) must hold neither
``secret`` nor ``abc``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from models.captioner import CaptionLimits
from pipelines.build_memento_corpus import CaptionConfig
from pipelines.common import RunConfig, redact, run_corpus
from pipelines.dataset import read_parquet_rows
from stages.base import Sample
from stages.captions import CaptionSequence
from stages.redact import redact_url
from stages.video import encode_mp4

URL = "http://user:secret@127.0.0.1:9/v1?token=abc"


@dataclass(frozen=True)
class CaptionRunConfig:
    captions: CaptionConfig = field(default_factory=lambda: CaptionConfig(backend="openai", model="q", base_url=URL))
    run: RunConfig = field(default_factory=RunConfig)


def _sample(key: str) -> Sample:
    video = np.random.default_rng(1).integers(0, 255, (10, 32, 48, 3), dtype=np.uint8)
    return Sample(id=key, source={"clip": key}, meta={"fps": 10.0, "shots": [[0, 9]]},
                  blobs={"clip.mp4": encode_mp4(video, 10)})


def test_credentials_in_base_url_are_recorded_nowhere(tmp_path):
    ds = tmp_path / "ds"
    cfg = CaptionRunConfig(run=RunConfig(out=str(ds), runner="sequential", progress=False))
    stage = CaptionSequence(backend="openai", model="q", backend_kwargs={"base_url": URL, "retries": 0},
                            limits=CaptionLimits(total_pixels=4 * 32 * 48, max_frame_pixels=32 * 48))
    s = run_corpus("capt", cfg, [_sample("a"), _sample("b")], [stage])
    assert s.reasons == {"caption_server_unavailable": 2}
    texts = []
    for p in sorted(ds.rglob("*")):
        if p.is_file():
            raw = p.read_bytes()
            assert b"secret" not in raw, p
            texts.append(json.dumps(read_parquet_rows(raw)) if p.suffix == ".parquet" else raw.decode("latin-1"))
    everything = "\n".join(texts).replace(s.run, "")  # a hex run id could spell "abc" by chance
    assert "caption_server_unavailable" in everything and "127.0.0.1:9/v1" in everything  # the rows are there
    assert "secret" not in everything and "abc" not in everything
    record = json.loads(next((ds / "runs").glob("*.json")).read_text())
    assert record["config"]["captions"]["base_url"] == "http://<redacted>@127.0.0.1:9/v1?token=<redacted>"


def test_credentials_redact_url_forms():
    assert (redact_url("https://u:p@h:1/v1?a=1&token=abc#frag")
            == "https://<redacted>@h:1/v1?a=<redacted>&token=<redacted>#<redacted>")
    assert redact_url("failed: http://u:pw@h/v1 after 3 tries") == "failed: http://<redacted>@h/v1 after 3 tries"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"  # nothing secret: unchanged
    assert redact_url("no url here") == "no url here"
    assert redact({"captions": {"base_url": URL, "api_key": "k"}, "urls": [URL]}) == {
        "captions": {"base_url": "http://<redacted>@127.0.0.1:9/v1?token=<redacted>", "api_key": "<redacted>"},
        "urls": ["http://<redacted>@127.0.0.1:9/v1?token=<redacted>"]}
