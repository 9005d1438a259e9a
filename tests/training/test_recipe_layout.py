"""The Memory-V2V / Context-as-Memory recipe of the training step: RoPE layouts, tokenizer and
merging schedules, per-video cameras, and the batch contract of ``collate``."""

from __future__ import annotations

import pytest
import torch

from models.memory_dit import MemoryDiT, MemoryDiTConfig
from models.rope import MEMORY, TARGET, USER, video_times
from models.wan_loader import load_wan
from training.step import StepConfig, collate, draw_schedule, loss_on

T = 3  # latent frames of the target


def _dit(tiny_wan_dir, **kw):
    tr, _ = load_wan(tiny_wan_dir)
    return MemoryDiT(tr, MemoryDiTConfig(**{"merge_blocks": (2,), **kw}))


def _spy(dit):
    """Record each build_sequence call's arguments and result (loss_on reaches it through forward)."""
    calls, orig = [], dit.build_sequence

    def spy(*a, **kw):
        seq = orig(*a, **kw)
        calls.append({"args": a, "seq": seq})
        return seq

    dit.build_sequence = spy
    return calls


def _z(kind, n_mem=3, mem_frames=T, user=True, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    lat = lambda f: torch.randn(b, 4, f, 8, 8, generator=g)
    z = {"kind": kind, "target": lat(T), "text": torch.randn(b, 5, 32, generator=g)}
    z["user"] = lat(T) if user else None
    z["memory"] = [lat(mem_frames) for _ in range(n_mem)]
    return z


def _times(seq, kind, video=None):
    spans = [s for s in seq.spans if s.kind == kind and (video is None or s.video == video)]
    return torch.cat([seq.pos[s.start : s.stop, 0] for s in spans])


def test_editing_layout_prev_segment_and_frame_aligned_source(tiny_wan_dir):
    dit = _dit(tiny_wan_dir)
    calls = _spy(dit)
    cfg = StepConfig(user_dropout=0.0)
    loss_on(dit, _z("senorita"), cfg, torch.Generator().manual_seed(0))
    seq = calls[-1]["seq"]
    # memory-v2v §0.E.2.2: prev segment in [T, 2T), the rest in [2T, 3T); the source shares the target's times
    assert _times(seq, MEMORY, 0).min() >= T and _times(seq, MEMORY, 0).max() < 2 * T
    for j in (1, 2):
        assert _times(seq, MEMORY, j).min() >= 2 * T and _times(seq, MEMORY, j).max() < 3 * T
    assert torch.equal(_times(seq, USER).unique(), torch.arange(T, dtype=torch.float64))
    torch.testing.assert_close(seq.pos[: seq.n_target], seq.pos[_user_slice(seq)])  # same (t, h, w) per token
    # multicam keeps §0.E.1.1: user [T, 2T), every memory video [2T, 3T)
    loss_on(dit, _z("multicam"), cfg, torch.Generator().manual_seed(0))
    seq = calls[-1]["seq"]
    assert _times(seq, USER).min() == T and _times(seq, USER).max() == 2 * T - 1
    assert _times(seq, MEMORY).min() >= 2 * T and _times(seq, MEMORY).max() < 3 * T


def test_video_times_reverse_and_misuse():
    # §0.E.2.3: at inference the memory ranges are read backwards, each inside its own range
    prev = video_times("editing", MEMORY, 0, T, T, reverse=True)
    assert prev.tolist() == [2 * T - 1 - i for i in range(T)]
    assert video_times("editing", MEMORY, 1, T, T, reverse=True).min() == 2 * T
    assert video_times("context", MEMORY, 3, 2, T, offset=4).tolist() == [T + 4, T + 5]
    with pytest.raises(ValueError):
        video_times("context", USER, 0, T, T)
    with pytest.raises(ValueError):
        video_times("diagonal", MEMORY, 0, T, T)


def _user_slice(seq):
    spans = [s for s in seq.spans if s.kind == USER]
    return slice(spans[0].start, spans[-1].stop)


def test_roam_context_frames_fine_distinct_times_and_own_cameras(tiny_wan_dir):
    dit = _dit(tiny_wan_dir, camera=True, merge_blocks=())
    calls = _spy(dit)
    z = _z("roam", n_mem=5, mem_frames=1, user=False)
    rows = torch.randn(5, 1, 1, 12)
    z["cams"] = {"target": torch.randn(1, 9, 12), "memory": list(rows)}
    for seed in range(6):  # whatever the schedule draws, roam context stays at full resolution
        loss_on(dit, z, StepConfig(), torch.Generator().manual_seed(seed))
        seq = calls[-1]["seq"]
        mem = [s for s in seq.spans if s.kind == MEMORY]
        assert [s.n for s in mem] == [16] * 5  # 1x2x2 on an 8x8 latent
    assert torch.equal(_times(seq, MEMORY).unique(), torch.arange(T, T + 5, dtype=torch.float64))
    for j, s in enumerate(mem):  # each context frame carries its own camera (Eq. 17)
        assert torch.equal(seq.cams[0, s.start : s.stop], rows[j, 0].expand(16, -1))
    assert torch.equal(seq.cams[0, 0], z["cams"]["target"][0, 0])


def test_multicam_user_camera_reaches_user_tokens(tiny_wan_dir):
    dit = _dit(tiny_wan_dir, camera=True, merge_blocks=())
    calls = _spy(dit)
    z = _z("multicam", n_mem=2)
    cam = lambda: torch.randn(1, 9, 12)  # 9 pixel frames -> 3 latent frames (0, 4, 8)
    z["cams"] = {"target": cam(), "user": cam(), "memory": [cam(), cam()]}
    loss_on(dit, z, StepConfig(user_dropout=0.0), torch.Generator().manual_seed(0))
    seq = calls[-1]["seq"]
    user = [s for s in seq.spans if s.kind == USER]
    for i, s in enumerate(user):
        assert torch.equal(seq.cams[0, s.start], z["cams"]["user"][0, 4 * i])
    tgt = [s for s in seq.spans if s.kind == TARGET]
    assert not torch.equal(seq.cams[0, tgt[0].start], seq.cams[0, user[0].start])


def test_schedule_rates_over_400_draws():
    cfg, g = StepConfig(), torch.Generator().manual_seed(0)
    draws = [draw_schedule("multicam", cfg, g) for _ in range(400)]
    single = [d.levels for d in draws if d.levels is not None]
    assert 0.42 < len(single) / 400 < 0.58  # memory-v2v §4.1.1: one tokenizer on 50 % of steps
    assert all(80 > single.count(lv) > 40 for lv in ("fine", "mid", "coarse"))  # drawn uniformly
    ratios = [d.merge_ratio for d in draws if d.merge_ratio > 0]
    assert 0.42 < len(ratios) / 400 < 0.58  # merging on 50 % of steps
    assert 0.3 <= min(ratios) < 0.35 and 0.65 < max(ratios) <= 0.7
    assert {draw_schedule("roam", cfg, g).levels for _ in range(50)} == {"fine"}


def test_loss_on_follows_the_drawn_schedule(tiny_wan_dir):
    dit = _dit(tiny_wan_dir)
    calls = _spy(dit)
    merges = []
    dit.merger.register_forward_hook(lambda m, a, out: merges.append(a[2]))
    z, seen = _z("multicam", n_mem=4), set()
    for seed in range(8):
        want = draw_schedule("multicam", StepConfig(), torch.Generator().manual_seed(seed))
        n_merge = len(merges)
        _, st = loss_on(dit, z, StepConfig(user_dropout=0.0), torch.Generator().manual_seed(seed))
        assert st["merge_ratio"] == want.merge_ratio and (len(merges) > n_merge) == (want.merge_ratio > 0)
        mem = [s for s in calls[-1]["seq"].spans if s.kind == MEMORY]
        per_video = [sum(s.n for s in mem if s.video == j) for j in range(4)]
        per_frame = {"fine": 16, "mid": 4, "coarse": 1}
        expect = [per_frame[want.levels] * T] * 4 if want.levels else [4 * T] * 3 + [T]  # by-rank mix: 3 mid
        assert per_video == expect and st["tokenizer"] == (want.levels or "mixed")
        seen.add((want.levels is None, want.merge_ratio > 0))
    assert len(seen) >= 3  # the seeds exercised both halves of both draws


def test_collate_one_kind_memory_k_and_user_cams():
    v = lambda f=5: torch.zeros(3, f, 16, 16)
    cams = lambda n: {"target": torch.zeros(5, 12), "user": torch.ones(5, 12), "memory": [torch.zeros(5, 12)] * n}
    ex = lambda n: {"kind": "multicam", "target": v(), "user": v(), "memory": [v()] * n, "cams": cams(n)}
    out = collate([ex(5), ex(3)], memory_k=2)
    assert out["kind"] == "multicam" and len(out["memory"]) == 2 and len(out["cams"]["memory"]) == 2
    assert out["cams"]["user"].shape == (2, 5, 12)
    assert len(collate([ex(5), ex(3)])["memory"]) == 3
    with pytest.raises(ValueError, match="one example kind"):
        collate([ex(2), {**ex(2), "kind": "senorita"}])
