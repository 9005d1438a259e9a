"""Every kind of bad Señorita input ends with its own reason; the run goes on; verify passes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pipelines.bad_inputs import HUGE, write_bad_pairs
from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages
from pipelines.common import load_config, run_corpus
from pipelines.dataset import DatasetFolder
from pipelines.verify import verify
from training.data import open_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from models.tiny import build_tiny

    d = tmp_path_factory.mktemp("tiny_bad")
    return {fam: str(build_tiny(fam, d)) for fam in ("framepack", "dinov2")}


def test_each_bad_kind_gets_its_reason_and_the_run_goes_on(tmp_path, tiny):
    pairs, expect = write_bad_pairs(tmp_path / "in")
    assert len(expect) >= 25 and len(set(expect) - {"accepted"}) >= 16
    cfg = load_config(SenoritaConfig, None, pairs=str(pairs), max_clip_bytes=HUGE // 2, run__out=str(tmp_path / "o"),
                      run__runner="sequential", run__progress=False, extend__model=tiny["framepack"],
                      extend__num_new_frames=9, extend__steps=1, descriptors__model=tiny["dinov2"])
    s = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    rows = DatasetFolder(tmp_path / "o", "senorita_long").rows("inputs")
    got = {}
    for r in rows:
        rec = json.loads(r["source"])["record"]
        got[rec] = "accepted" if r["status"] == "accepted" else r["reason"]
    mismatches = {i: (expect[i], got.get(i)) for i in range(len(expect)) if got.get(i) != expect[i]}
    assert mismatches == {}, mismatches
    assert s.counts["processed"] == len(expect)
    assert Counter(got.values())["accepted"] == expect.count("accepted")
    assert verify(tmp_path / "o")[0] == []
    shapes = {smp["json"]["target_video_path"]: smp["target_extended.mp4"].shape for smp in open_dataset(str(tmp_path / "o"))}
    assert shapes["videos/rot_tgt.mp4"][1:3] == (64, 48)  # the phone clip comes out upright (portrait)
    assert shapes["videos/odd_tgt.mp4"][1:3] == (50, 70)  # no multiple of 16, size kept
    assert all(sh[0] == 33 + 9 for sh in shapes.values())
