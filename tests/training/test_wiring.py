"""Every conditioning path reaches the prediction and the loss, on batches from the real demo builds.

For each corpus: a few training steps at the paper's recipe (so zero-initialised paths such as the
camera embedding have moved), then with every random choice fixed, changing one conditioning input
must change the model's prediction, and removing it must change the loss.
"""

from __future__ import annotations

import copy

import pytest
import torch

from training.config import TrainConfig
from training.loader import batches, example_config
from training.step import StepConfig, encode_batch
from training.train import build_objective

FIXED = StepConfig(caption_dropout=0.0, memory_noise=0.0, user_dropout=0.0, merge_prob=0.0, single_level_prob=0.0)


def _trained(root, wan: str, kind: str):
    cfg = TrainConfig(dataset=str(root), backbone=wan, frames=5, size=(32, 32), merge_blocks=(1,), lr=3e-3)
    obj, enc, text_fn = build_objective(cfg)
    data = (b for b in batches(cfg.dataset, example_config(cfg), 2, seed=0) if b["kind"] == kind)
    z = encode_batch(next(data), enc, text_fn, "cpu")
    opt = torch.optim.AdamW([p for p in obj.parameters() if p.requires_grad], lr=cfg.lr)
    for step in range(3):  # the paper's recipe: dropout, noise, merging and tokenizer draws all on
        loss, _ = obj(z, torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    obj.cfg = FIXED
    return obj, z, text_fn


def _run(obj, z) -> tuple[torch.Tensor, float]:
    preds = []
    h = obj.dit.register_forward_hook(lambda _m, _i, out: preds.append(out.detach()))
    try:
        with torch.no_grad():
            loss, _ = obj(z, torch.Generator().manual_seed(123))
    finally:
        h.remove()
    return preds[0], float(loss)


def _edit(z: dict, fn) -> dict:
    z2 = copy.copy(z)
    z2["cams"] = copy.deepcopy(z.get("cams")) if z.get("cams") is not None else None
    if z2["cams"] is None:
        z2.pop("cams")
    fn(z2)
    return z2


def _cam_shift(c: torch.Tensor) -> torch.Tensor:
    c = c.clone()
    c[..., 3] += 0.7  # translate the camera by 0.7 m along x
    return c


def _set(key, value):
    return lambda z: z.__setitem__(key, value(z))


CHANGES = {
    "senorita": {
        "caption": (lambda t: _set("text", lambda z: t(["paint the ball green with stripes"] * len(z["text"]))), _set("text", lambda z: 0 * z["text"])),
        "user": (lambda t: _set("user", lambda z: z["user"].flip(-1)), _set("user", lambda z: None)),
        "memory": (lambda t: _set("memory", lambda z: [m.flip(-1) for m in z["memory"]]), _set("memory", lambda z: [])),
    },
    "multicam": {
        "user": (lambda t: _set("user", lambda z: z["user"].flip(-1)), _set("user", lambda z: None)),
        "memory": (lambda t: _set("memory", lambda z: [m.flip(-1) for m in z["memory"]]), _set("memory", lambda z: [])),
        "target camera": (lambda t: lambda z: z["cams"].__setitem__("target", _cam_shift(z["cams"]["target"])),
                          lambda z: z.pop("cams")),
        "memory camera": (lambda t: lambda z: z["cams"].__setitem__("memory", [_cam_shift(c) for c in z["cams"]["memory"]]),
                          lambda z: z["cams"].__setitem__("memory", [0 * c for c in z["cams"]["memory"]])),
    },
    "roam": {
        "context frames": (lambda t: _set("memory", lambda z: [m.flip(-1) for m in z["memory"]]), _set("memory", lambda z: [])),
        "camera": (lambda t: lambda z: z["cams"].__setitem__("target", _cam_shift(z["cams"]["target"])),
                   lambda z: z.pop("cams")),
    },
    "memento": {
        "shot caption": (lambda t: _set("text", lambda z: t(["a red kite over the harbour"] * len(z["text"]))), _set("text", lambda z: 0 * z["text"])),
        "story": (lambda t: _set("story", lambda z: t(["a long story about two sailors at sea"] * len(z["story"]))),
                  _set("story", lambda z: 0 * z["story"])),
        "memory shots": (lambda t: _set("history", lambda z: [h.flip(-1) for h in z["history"]]),
                         lambda z: z.update(history=z["history"][-1:], history_text=z["history_text"][-1:])),
        "recon frames": (lambda t: _set("recon", lambda z: [r.flip(-1) for r in z["recon"]]), lambda z: z.pop("recon")),
    },
}
CASES = [("senorita_demo_dataset", "senorita"), ("multicam_demo_dataset", "multicam"),
         ("multicam_demo_dataset", "roam"), ("memento_demo_dataset", "memento")]


@pytest.mark.parametrize(("fixture", "kind"), CASES)
def test_each_conditioning_input_reaches_prediction_and_loss(fixture, kind, request, tiny_models):
    obj, z, text_fn = _trained(request.getfixturevalue(fixture), tiny_models["wan"], kind)
    pred, loss = _run(obj, z)
    assert torch.equal(pred, _run(obj, z)[0])  # fixed draws: the same inputs give the same prediction
    for name, (change, remove) in CHANGES[kind].items():
        p2, _ = _run(obj, _edit(z, change(text_fn)))
        if name != "recon frames":  # the reconstruction frames are a second target: they move the loss only
            assert not torch.allclose(pred, p2, atol=1e-6), f"{kind}: changing the {name} left the prediction as it was"
        _, l2 = _run(obj, _edit(z, change(text_fn)) if name == "recon frames" else _edit(z, remove))
        assert abs(l2 - loss) > 1e-7, f"{kind}: the {name} does not reach the loss"
        if name == "recon frames":
            assert abs(_run(obj, _edit(z, remove))[1] - loss) > 1e-7
