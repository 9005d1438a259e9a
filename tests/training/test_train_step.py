"""Examples from shards, one training step, the loss pieces, against hand-made ground truth."""

from __future__ import annotations

import numpy as np
import torch

from training.losses import drop_text, euler_sample, noisy
from training.retrieval import choose, rank_segments


def test_flow_pair_and_euler_recover_x0():
    x0 = torch.randn(3, 4, 2, 2)
    eps = torch.randn_like(x0)
    xt, v = noisy(x0, torch.tensor([0.0, 0.5, 1.0]), eps)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], eps[2])
    torch.testing.assert_close(xt[1] - 0.5 * v[1], x0[1])  # x_σ - σ·v = x0
    # the exact velocity field of a point mass at x0 integrates back to x0
    target = torch.full((1, 3), 2.0)
    out = euler_sample(
        lambda x, s: (x - target) / s.clamp_min(1e-6).view(-1, 1),
        (1, 3),
        steps=4,
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(out, target)


def test_caption_dropout_rate():
    text = torch.ones(4000, 2, 3)
    dropped = (drop_text(text, 0.1, torch.Generator().manual_seed(0)).sum((1, 2)) == 0).float().mean()
    assert 0.08 < float(dropped) < 0.12


def test_segment_ranking_puts_recent_first_then_similar():
    cache = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.5, 0.5]], float)  # last row = most recent
    order, _sims = rank_segments(np.array([1.0, 0.0]), cache)
    assert list(order) == [3, 0, 2, 1]
    assert choose("none", 3, 4, np.random.default_rng(0)) == []
    assert len(set(choose("random", 3, 4, np.random.default_rng(0)))) == 3
