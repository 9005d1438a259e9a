"""Shapes and invariants of the memory DiT parts, with ground truth made in code."""

from __future__ import annotations

import torch

from models.camera_embed import CameraEmbed, frame_cams
from models.dynamic_tokenizer import DynamicTokenizer, levels_for
from models.memento_memory import DualPathMemory, top_k
from models.rope import MEMORY, TARGET, USER, grid_positions, memory_times, rope_cos_sin, split_dims
from models.token_layout import FrameSpan, TokenSeq
from models.token_merge import TokenMerger, frames_to_merge, responsiveness


def test_tokenizer_compression_factors():
    tok = DynamicTokenizer(in_channels=4, dim=16)
    lat = torch.randn(2, 4, 3, 16, 32)  # (B, C, F, H, W)
    counts = {lvl: tok(lat, lvl).x.shape[1] for lvl in ("fine", "mid", "coarse")}
    assert counts == {"fine": 3 * 8 * 16, "mid": 3 * 4 * 8, "coarse": 3 * 2 * 4}
    assert counts["fine"] / counts["mid"] == 4 and counts["fine"] / counts["coarse"] == 16
    assert tok(lat, "mid").x.shape == (2, 3 * 4 * 8, 16)
    assert levels_for(5) == ["mid", "mid", "mid", "coarse", "coarse"]


def test_tokenizer_init_from_backbone_averages_fine_tokens():
    fine = torch.nn.Conv3d(4, 8, (1, 2, 2), (1, 2, 2))
    tok = DynamicTokenizer(4, 8)
    tok.init_from(fine)
    lat = torch.randn(1, 4, 1, 8, 8)
    f = fine(lat)  # (1, 8, 1, 4, 4)
    want = (
        torch.nn.functional.avg_pool3d(f - fine.bias[None, :, None, None, None], (1, 2, 2))
        + fine.bias[None, :, None, None, None]
    )
    got = tok.embed["mid"](lat)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_rope_time_ranges_are_disjoint_and_reversible():
    t = 5
    tgt = torch.arange(t, dtype=torch.float64)
    usr = USER * t + torch.arange(t, dtype=torch.float64)
    mem = memory_times(t, t)
    long_mem = memory_times(3 * t, t)  # a longer memory video is squeezed, not extrapolated
    assert tgt.max() < usr.min() and usr.max() < mem.min()
    assert mem.min() == 2 * t and mem.max() == 3 * t - 1
    assert long_mem.min() >= 2 * t and long_mem.max() <= 3 * t - 1
    rev = memory_times(t, t, reverse=True)
    assert torch.equal(rev, mem.flip(0))
    assert TARGET == 0 and MEMORY == 2


def test_rope_matches_diffusers_wan_table_on_integer_grid():
    from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

    head = 12
    ref_cos, ref_sin = WanRotaryPosEmbed(head, (1, 2, 2), 32)(torch.zeros(1, 4, 3, 8, 6))  # 3 x 4 x 3 tokens
    pos = grid_positions(torch.arange(3), 4, 3)
    cos, sin = rope_cos_sin(pos, head)
    assert cos.shape == ref_cos.shape == (1, 36, 1, head)
    torch.testing.assert_close(cos, ref_cos.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sin, ref_sin.float(), rtol=1e-5, atol=1e-6)
    assert split_dims(head) == (4, 4, 4)


def _seq(n_mem_frames: int, h: int = 4, w: int = 4, d: int = 8) -> TokenSeq:
    spans = [FrameSpan(TARGET, 0, 0, h, w)]
    spans += [FrameSpan(MEMORY, i, (i + 1) * h * w, h, w) for i in range(n_mem_frames)]
    n = (n_mem_frames + 1) * h * w
    pos = torch.zeros(n, 3, dtype=torch.float64)
    pos[:, 0] = torch.arange(n) // (h * w)
    return TokenSeq(x=torch.randn(2, n, d), pos=pos, spans=spans)


def test_token_merge_keeps_high_responsive_frames_and_reduces_by_r():
    d, n_mem = 8, 10
    seq = _seq(n_mem, d=d)
    r_t = torch.tensor([[0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.95, 0.05]]).expand(2, -1)
    merger = TokenMerger(d, stride=2)
    out = merger(seq, r_t, ratio=0.4)
    merged = frames_to_merge(r_t, 0.4)
    assert merged == [1, 3, 5, 9]  # the 4 least responsive
    n_frame = 16
    assert out.x.shape[1] == seq.x.shape[1] - len(merged) * (n_frame - n_frame // 4)
    # kept frames are byte-identical, merged ones are 2x2 average-pooled at init
    for i, sp in enumerate(out.spans[1:]):
        src = seq.spans[1 + i]
        a = seq.x[:, src.start : src.stop]
        b = out.x[:, sp.start : sp.stop]
        if i in merged:
            assert sp.n == n_frame // 4
            pooled = a.reshape(2, 2, 2, 2, 2, d).permute(0, 1, 3, 2, 4, 5).reshape(2, 4, 4, d).mean(2)
            torch.testing.assert_close(b, pooled, rtol=1e-4, atol=1e-5)
        else:
            assert torch.equal(a, b)
    assert torch.equal(out.x[:, :n_frame], seq.x[:, :n_frame])  # target untouched
    assert out.pos.shape[0] == out.x.shape[1]


def test_responsiveness_prefers_the_frame_queries_attend_to():
    d = 16
    q = torch.zeros(1, 3, d)
    q[0, :, 0] = 10.0
    hot = torch.zeros(1, 4, d)
    hot[..., 0] = 5.0
    cold = torch.zeros(1, 4, d)
    cold[..., 1] = 5.0
    r = responsiveness(q, [cold, hot, cold])
    assert r.shape == (1, 3) and r.argmax().item() == 1
    assert torch.isfinite(r).all() and bool(((r > 0) & (r <= 1)).all())
    assert frames_to_merge(r, 2 / 3) == [0, 2]


def test_camera_embed_is_per_video_and_starts_as_identity():
    emb = CameraEmbed(dim=8, n_blocks=2)
    x = torch.randn(1, 6, 8)
    cams = frame_cams(torch.randn(1, 3, 3, 4), tokens_per_frame=2)
    assert cams.shape == (1, 6, 12) and torch.equal(cams[0, 0], cams[0, 1])
    assert torch.equal(emb(x, cams, 0), x)  # zero-init: a pretrained backbone starts unchanged
    torch.nn.init.normal_(emb.proj[0].weight)
    y = emb(x, cams, 0)
    assert not torch.allclose(y[:, 0] - x[:, 0], y[:, 2] - x[:, 2])  # different frames, different embedding


def test_memento_dual_path_bank_selects_top_k_and_learns_scores():
    torch.manual_seed(0)
    mem = DualPathMemory(dim=8, text_dim=6, n_story=2, n_shot=3, k=4)
    prev, new = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    bank, info = mem(prev, new, torch.randn(2, 3, 6), torch.randn(2, 4, 6))
    assert bank.shape == (2, 8, 8)
    assert info["story_idx"].shape == (2, 4) and int(info["story_idx"].max()) < 12
    bank.sum().backward()
    assert mem.story.queries.grad is not None and mem.story.queries.grad.abs().sum() > 0
    cand = torch.randn(1, 5, 3)
    kept, idx = top_k(cand, torch.tensor([[0.0, 5.0, 1.0, 4.0, 2.0]]), 2)
    assert idx.tolist() == [[1, 3]]
    torch.testing.assert_close(kept, cand[:, [1, 3]])  # straight-through: value unchanged
