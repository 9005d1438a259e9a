"""memcorpus track / caption: output formats exactly as documented."""

from __future__ import annotations

import json

import numpy as np

from pipelines.cli import main
from stages.video import encode_mp4


def test_track_json_on_empty_footage(tmp_path, capsys):
    p = tmp_path / "empty.mp4"
    p.write_bytes(encode_mp4(np.full((10, 64, 96, 3), 100, np.uint8), 10))
    assert main(["track", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"tracks": [], "primary": None, "recon_frames": []}
    assert main(["track", str(tmp_path / "missing.mp4"), "--json"]) == 2


def test_track_json_on_real_footage(capsys, real_data):
    assert main(["track", str(real_data / "cuts_people_640x360.mp4"), "--json", "--sample-fps", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"tracks", "primary", "recon_frames"}
    assert out["primary"] in [t["id"] for t in out["tracks"]]
    assert all(set(t) == {"id", "frames", "mean_area", "mean_conf", "coverage"} for t in out["tracks"])
    assert [set(r) for r in out["recon_frames"]] == [{"frame", "box"}] * 2


def test_caption_json_with_tiny_model(tmp_path, capsys, tiny_qwen):
    p = tmp_path / "clip.mp4"
    p.write_bytes(encode_mp4(np.random.default_rng(0).integers(0, 255, (20, 64, 96, 3), dtype=np.uint8), 10))
    rc = main(["caption", str(p), "--backend", "transformers", "--model", tiny_qwen, "--shots", "0-9,10-19", "--json",
               "--story-chars", "60", "--caption-chars", "40"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if rc == 1:  # the random model broke a naming rule three times: a reject with its reason is the contract
        assert out["rejected"].startswith(("caption_", "story_"))
        return
    assert rc == 0
    assert set(out["story"]) == {"story", "subjects"} and len(out["shots"]) == 2 and out["recon"] == []
    assert out["tiny_random"] is True and [s["start"] for s in out["shots"]] == [0, 10]
