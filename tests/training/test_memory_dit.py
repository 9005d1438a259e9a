"""The memory DiT on a tiny random Wan backbone: shapes, token budget, what conditions what."""

from __future__ import annotations

import torch

from models.memory_dit import MemoryDiT, MemoryDiTConfig
from models.wan_loader import load_wan


def _inputs(b=2, t=3):
    g = torch.Generator().manual_seed(0)
    lat = lambda f=t: torch.randn(b, 4, f, 8, 8, generator=g)
    return lat, torch.tensor([500.0] * b), torch.randn(b, 5, 32, generator=g)


def test_forward_shape_and_token_budget(tiny_wan_dir):
    tr, _ = load_wan(tiny_wan_dir)
    m = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(2,), camera=True)).eval()
    lat, ts, text = _inputs()
    mem = [lat() for _ in range(5)]
    with torch.no_grad():
        out, st = m(lat(), ts, text, user=lat(), memory=mem, merge_ratio=0.6, return_stats=True)
    assert out.shape == (2, 4, 3, 8, 8)
    # target 3*4*4 + user 3*4*4 + 3 videos x 3 frames x 2*2 (1x4x4) + 2 x 3 x 1 (1x8x8)
    assert st["tokens_in"] == 48 + 48 + 36 + 6
    assert st["tokens_per_block"][:2] == [138, 138] and st["tokens_per_block"][2] < 138
    # merging the user input too: 60 % of its 3 frames (2 of 3, 16 -> 4 tokens each) go as well
    mu = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(2,), merge_user=True)).eval()
    with torch.no_grad():
        _, st_u = mu(lat(), ts, text, user=lat(), memory=mem, merge_ratio=0.6, return_stats=True)
    assert st_u["tokens_per_block"][2] < st["tokens_per_block"][2]


def test_without_merging_matches_plain_wan_when_there_is_no_memory(tiny_wan_dir):
    tr, _ = load_wan(tiny_wan_dir)
    m = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=())).eval()
    lat, ts, text = _inputs()
    x = lat()
    with torch.no_grad():
        ours = m(x, ts, text)
        ref = tr(x, ts, text, return_dict=False)[0]
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_memory_changes_the_target_prediction_and_is_not_decoded(tiny_wan_dir):
    tr, _ = load_wan(tiny_wan_dir)
    m = MemoryDiT(tr, MemoryDiTConfig(memory_level="fine", merge_blocks=())).eval()  # Context-as-Memory style
    lat, ts, text = _inputs()
    x, ctx = lat(), lat(2)
    with torch.no_grad():
        a = m(x, ts, text, memory=[ctx])
        b = m(x, ts, text, memory=[ctx + 1.0])
        c = m(x, ts, text, memory=[ctx], reverse_memory=True)
    assert a.shape == x.shape
    assert not torch.allclose(a, b) and not torch.allclose(a, c)
