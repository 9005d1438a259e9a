"""Memento's recipe in the training step: a bank grown shot by shot, [story ; shot] cross-attention
with its own dropout per caption, and L = L_diff + 0.5·L_recon over both reconstruction frames."""

from __future__ import annotations

import torch

from models.memento_memory import DualPathMemory
from models.memory_dit import MemoryDiT, MemoryDiTConfig
from models.wan_loader import load_wan
from training.step import StepConfig, collate, loss_on

NO_DROP = StepConfig(caption_dropout=0.0)


def _dit(tiny_wan_dir):
    tr, _ = load_wan(tiny_wan_dir)
    return MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(), bank=True, bank_k=3)).eval()


def _z(n_hist=3, n_recon=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    lat = lambda f: torch.randn(1, 4, f, 8, 8, generator=g)
    text = lambda: torch.randn(1, 5, 32, generator=g)
    z = {"kind": "memento", "target": lat(3), "text": text(), "user": None, "memory": []}
    z["history"] = [lat(2) for _ in range(n_hist)]
    z["story"] = text()
    z["history_text"] = [text() for _ in range(n_hist)]
    z["recon"] = [lat(1) for _ in range(n_recon)]
    return z


def test_bank_after_shot_t_depends_only_on_shots_up_to_t():
    torch.manual_seed(0)
    mem = DualPathMemory(dim=8, text_dim=6, k=3)
    shots = [torch.randn(1, 5, 8) for _ in range(3)]
    story, caps = torch.randn(1, 2, 6), [torch.randn(1, 2, 6) for _ in range(3)]
    banks = mem.build(shots, story, caps)
    assert len(banks) == 3 and all(b.shape == (1, 6, 8) for b in banks)
    later = mem.build(shots[:2] + [torch.randn(1, 5, 8)], story, caps)
    assert torch.equal(banks[0], later[0]) and torch.equal(banks[1], later[1])
    assert not torch.equal(banks[2], later[2])
    # the recurrence of Eq. 2: M_3 is selected from [M_2 ; E(S_3)], not from all history at once
    m3, _ = mem(banks[1], shots[2], story, caps[2])
    torch.testing.assert_close(banks[2], m3)


def test_loss_on_updates_the_bank_once_per_history_shot(tiny_wan_dir):
    dit = _dit(tiny_wan_dir)
    updates = []
    dit.bank.register_forward_hook(lambda m, a, out: updates.append(a[1].shape[1]))
    with torch.no_grad():
        _, st = loss_on(dit, _z(n_hist=3), NO_DROP, torch.Generator().manual_seed(0))
    per_shot = dit.bank_tokens(_z()["history"][0]).shape[1]
    assert st["bank_updates"] == 3 and updates == [per_shot] * 3  # each update sees one new shot only


def test_story_and_shot_captions_both_reach_cross_attention(tiny_wan_dir):
    dit = _dit(tiny_wan_dir)
    texts, orig = [], dit.forward
    dit.forward = lambda *a, **kw: (texts.append(a[2]), orig(*a, **kw))[1]
    z = _z()
    with torch.no_grad():
        loss_on(dit, z, NO_DROP, torch.Generator().manual_seed(0))
    text = texts[0]
    assert torch.equal(text, torch.cat([z["story"], z["text"]], dim=1))  # [story ; shot]
    bank = torch.randn(1, 6, dit.dim)
    x, ts = torch.randn(1, 4, 3, 8, 8), torch.tensor([500.0])
    with torch.no_grad():
        base = orig(x, ts, text, bank=bank)
        new_story = orig(x, ts, torch.cat([z["story"] + 1.0, z["text"]], dim=1), bank=bank)
        new_shot = orig(x, ts, torch.cat([z["story"], z["text"] + 1.0], dim=1), bank=bank)
    assert not torch.allclose(base, new_story) and not torch.allclose(base, new_shot)
    # caption dropout (memento §4.1) reaches both halves
    texts.clear()
    with torch.no_grad():
        loss_on(dit, z, StepConfig(caption_dropout=1.0), torch.Generator().manual_seed(0))
    assert texts[0].abs().sum() == 0
    # reconstruction (Eq. 7): story caption and bank only; the shot half is absent (zeros)
    texts.clear()
    with torch.no_grad():
        loss_on(dit, z, NO_DROP, torch.Generator().manual_seed(0))
    recon_text = texts[1]
    assert recon_text.shape[0] == 2  # both frames in one pass
    assert torch.equal(recon_text[:, :5], z["story"].expand(2, -1, -1)) and recon_text[:, 5:].abs().sum() == 0


def test_recon_loss_uses_both_frames_and_weights_half(tiny_wan_dir):
    dit = _dit(tiny_wan_dir)
    z = _z()
    run = lambda z: loss_on(dit, z, NO_DROP, torch.Generator().manual_seed(0))[1]
    with torch.no_grad():
        st = run(z)
        first = run({**z, "recon": [z["recon"][0] + 1.0, z["recon"][1]]})
        second = run({**z, "recon": [z["recon"][0], z["recon"][1] + 1.0]})
    assert abs(st["loss"] - (st["l_diff"] + 0.5 * st["l_recon"])) < 1e-5
    assert first["l_recon"] != st["l_recon"] and second["l_recon"] != st["l_recon"]
    assert first["l_diff"] == st["l_diff"] == second["l_diff"]
    loss, _ = loss_on(dit.train(), z, NO_DROP, torch.Generator().manual_seed(0))
    loss.backward()
    assert dit.bank.story.queries.grad.abs().sum() > 0  # the recon branch trains the story queries


def test_collate_memento_keeps_recent_history_and_recon_lists():
    v = lambda f, x=0: torch.full((3, f, 16, 16), float(x))
    ex = lambda n: {
        "kind": "memento",
        "target": v(5),
        "caption": "shot",
        "story": "story",
        "history": [v(5, i) for i in range(n)],
        "history_captions": [f"c{i}" for i in range(n)],
        "recon": [v(1), v(1, 1.0)],
        "recon_captions": ["a", "b"],
    }
    out = collate([ex(3), ex(2)])
    assert out["kind"] == "memento" and len(out["history"]) == 2
    assert float(out["history"][-1][0].mean()) == 2.0 and float(out["history"][-1][1].mean()) == 1.0
    assert out["history_captions"] == [["c1", "c0"], ["c2", "c1"]]
    assert len(out["recon"]) == 2 and out["recon"][1].shape == (2, 3, 1, 16, 16)
    assert out["recon_captions"] == [["a", "a"], ["b", "b"]]


def test_encode_batch_gives_each_bank_update_the_next_shots_caption(tiny_wan_dir):
    from training.step import LatentEncoder, encode_batch
    from training.text import HashText

    _, vae = load_wan(tiny_wan_dir)
    v = lambda f: torch.rand(3, f, 16, 16) * 2 - 1
    ex = {"kind": "memento", "target": v(5), "caption": "anna smiles", "story": "anna in a cafe"}
    ex.update(history=[v(5), v(5)], history_captions=["anna walks", "anna sits"], recon=[v(1), v(1)])
    text = HashText(32)
    z = encode_batch(collate([ex]), LatentEncoder(vae), text, "cpu")
    assert z["kind"] == "memento" and len(z["recon"]) == 2 and z["recon"][0].shape == (1, 4, 1, 2, 2)
    # bank after shot 1 is built for shot 2 ("anna sits"), the bank after shot 2 for the target
    assert torch.equal(z["history_text"][0], text(["anna sits"])) and torch.equal(z["history_text"][1], z["text"])
