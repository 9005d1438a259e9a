"""LPIPS against history: a random-trunk lpips.LPIPS built offline (its linear heads ship in the wheel).

The figures of a random trunk mean nothing perceptually; these tests check the properties any LPIPS
must have and that our frame handling and backbone loading match the package's own forward.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pytest
import torch

lpips = pytest.importorskip("lpips")

from training import metrics as M
from training.evaluate import LPIPS_BACKBONE_FILES, add_arguments, evaluate_video, load_lpips, run


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return load_lpips(None, "alex", random_backbone=True)


def _video(seed: int, t: int = 3, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, size // 8, size // 8, 3)).repeat(8, 1).repeat(8, 2)  # blocky, not pure noise
    return np.repeat(base, t, 0).astype(np.uint8)


def _noisy(v: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).normal(0, sigma, v.shape)
    return np.clip(v.astype(np.float64) + n, 0, 255).astype(np.uint8)


def test_lpips_input_is_minus_one_to_one():
    x = M.lpips_input(np.array([[[[0, 255, 127]]]], np.uint8))
    assert x.shape == (1, 3, 1, 1)
    assert x.flatten().tolist() == pytest.approx([-1.0, 1.0, 127 / 127.5 - 1.0])


def test_identical_zero_noise_grows_symmetric(net):
    v = _video(0)
    assert np.allclose(M.lpips_frames(net, v, v), 0.0, atol=1e-7)
    d = [M.lpips_frames(net, v, _noisy(v, s)).mean() for s in (4, 16, 48)]
    assert 0 < d[0] < d[1] < d[2], d
    w = _noisy(v, 16)
    assert np.allclose(M.lpips_frames(net, v, w), M.lpips_frames(net, w, v), rtol=1e-5, atol=1e-7)


def test_matches_package_forward_in_both_input_conventions(net):
    a, b = _video(2), _noisy(_video(2), 20)
    ours = M.lpips_frames(net, a, b, batch=2)  # batching must not change per-frame values
    ta = torch.from_numpy(a).permute(0, 3, 1, 2).float()
    tb = torch.from_numpy(b).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        signed = net(ta / 127.5 - 1, tb / 127.5 - 1).flatten().numpy()
        unit = net(ta / 255, tb / 255, normalize=True).flatten().numpy()
        wrong = net(ta / 255, tb / 255).flatten().numpy()  # [0, 1] read as [-1, 1]: a different number
    assert ours.shape == (3,)
    assert np.allclose(ours, signed, rtol=1e-5) and np.allclose(ours, unit, rtol=1e-4)
    assert not np.allclose(ours, wrong, rtol=1e-2)


def _torch_home(tmp_path, seed: int = 3):
    import torchvision

    torch.manual_seed(seed)
    sd = torchvision.models.alexnet().state_dict()
    f = tmp_path / "hub" / "checkpoints" / LPIPS_BACKBONE_FILES["alex"]
    f.parent.mkdir(parents=True)
    torch.save(sd, f)
    return sd


def test_backbone_loads_from_local_file_or_torch_home(tmp_path):
    sd = _torch_home(tmp_path)
    for where in (tmp_path, tmp_path / "hub" / "checkpoints" / LPIPS_BACKBONE_FILES["alex"]):
        m = load_lpips(str(where), "alex")
        assert torch.equal(m.net.slice1[0].weight, sd["features.0.weight"])
        assert torch.equal(m.net.slice5._modules["10"].bias, sd["features.10.bias"])
    # the learned heads still come from the wheel, untouched by the backbone file
    heads = torch.load(lpips.__path__[0] + "/weights/v0.1/alex.pth", map_location="cpu", weights_only=True)
    assert torch.equal(m.lin0.model[1].weight, heads["lin0.model.1.weight"])


def test_missing_or_wrong_backbone_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"--lpips-backbone=.*alexnet-owt-7be5be79\.pth"):
        load_lpips(str(tmp_path / "nowhere"), "alex")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a torchvision alex state dict"):
        load_lpips(str(bad), "alex")


def test_evaluate_reports_lpips_history_or_logs_why_not(net, caplog):
    v, h = _video(4), _noisy(_video(4), 30)
    with_lp, curves = evaluate_video(v, history=h, lpips_net=net)
    assert with_lp["lpips_history"] == pytest.approx(float(M.lpips_frames(net, v, h).mean()))
    assert len(curves["history_lpips"]) == 3 and "history_psnr" in with_lp
    with caplog.at_level(logging.WARNING, logger="training.evaluate"):
        without, _ = evaluate_video(v, history=h)
    assert "lpips_history" not in without and "history_psnr" in without
    assert any("lpips_history skipped" in r.getMessage() for r in caplog.records)


def test_cli_writes_lpips_history(tmp_path):
    from stages.video import encode_mp4

    _torch_home(tmp_path)
    v = _video(5, t=4)
    (tmp_path / "gen.mp4").write_bytes(encode_mp4(v, 8.0))
    (tmp_path / "ref.mp4").write_bytes(encode_mp4(_noisy(v, 40), 8.0))
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        [str(tmp_path / "gen.mp4"), "--history", str(tmp_path / "ref.mp4"), "--lpips-backbone", str(tmp_path)]
        + ["--out", str(tmp_path / "eval")]
    )
    assert run(args) == 0
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["lpips_history"] > 0 and (tmp_path / "eval" / "history_lpips.png").exists()
