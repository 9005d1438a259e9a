"""Train the memory DiT from corpus shards with Ray Train (DDP, or FSDP2 for large backbones).

    memcorpus train --config CONFIG [--set key=value ...]
    ray job submit -- python -m training.train --config CONFIG

Checkpoints go through Ray Train (``storage_path=out``, run ``name``); re-running the same
name resumes from its latest checkpoint, loaded with ``torch.load(weights_only=True)``. A checkpoint
holds full (unsharded) weights and optimiser state under both strategies (FSDP: name-keyed, gathered
to rank 0 with torch.distributed.checkpoint.state_dict), so a run resumes with its AdamW moments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from training.config import TrainConfig, add_arguments, config_from_args, resolve_paths

CKPT_FILE = "state.pt"


def build_objective(cfg: TrainConfig, weights: bool = True):
    """(FlowObjective, LatentEncoder, text_fn) on CPU; weights from cfg.backbone (one Wan expert, or Wan2.2's two).

    ``weights=False``: the DiT is built on the meta device and no transformer weight file is read; such a rank gets
    rank 0's weights when ``_wrap`` broadcasts them, so it never holds a full fp32 copy of its own.
    """
    from models.experts import build_dit
    from models.memory_dit import MemoryDiTConfig
    from models.wan_loader import load_wan_backbone
    from training.loader import corpus_default
    from training.step import FlowObjective, LatentEncoder, StepConfig
    from training.text import make_text_encoder

    wan = load_wan_backbone(cfg.backbone, key="backbone", weights=weights)
    n = len(wan.experts[0].blocks)
    merge = tuple(b for b in cfg.merge_blocks if b < n)  # the papers' 10/20 of 30 do not exist in tiny backbones
    if cfg.merge_blocks and not merge:
        merge = (n // 2,)
    dcfg = MemoryDiTConfig(
        merge_blocks=merge,
        merge_stride=cfg.merge_stride,
        merge_user=cfg.merge_user,
        memory_level=cfg.memory_level,
        camera=corpus_default(cfg.camera, cfg.dataset, "multicam"),
        bank=corpus_default(cfg.bank, cfg.dataset, "memento"),
        gradient_checkpointing=cfg.gradient_checkpointing,
    )
    dit = build_dit(wan.experts, dcfg, wan.boundary, seed=cfg.seed)  # on meta too without weights
    step = StepConfig(
        caption_dropout=cfg.caption_dropout,
        memory_noise=cfg.memory_noise,
        user_dropout=cfg.user_dropout,
        merge_range=tuple(cfg.merge_range),
        recon_weight=cfg.recon_weight,
        merge_prob=cfg.merge_prob,
        single_level_prob=cfg.single_level_prob,
    )
    text_dim = wan.experts[0].config.text_dim
    return FlowObjective(dit, step), LatentEncoder(wan.vae), make_text_encoder(cfg.text_encoder, text_dim)


def _bf16(cfg: TrainConfig, device: torch.device) -> bool:
    # auto: bf16 where it is fast (GPU); CPUs without bf16 units emulate it, and CPU runs are tests and smoke runs
    return cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")


def _wrap(obj, cfg: TrainConfig, device: torch.device, rank: int = 0, world: int = 1):
    """FSDP2 shards or DDP replicas of ``obj``, every rank holding rank 0's weights.

    Only rank 0 built ``obj`` with real weights (``build_objective``); on the other ranks it is on the meta
    device and receives them here: FSDP2 broadcasts each full tensor and keeps this rank's shard, DDP's
    constructor broadcasts parameters and buffers.
    """
    on_meta = rank != 0
    if cfg.strategy == "fsdp":
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        from models.experts import backbones

        full = {} if on_meta else obj.state_dict()  # references to rank 0's unsharded tensors, not copies
        # bf16 gathers and compute; the sharded master weights and the gradient reduction stay fp32.
        dtypes = {"param_dtype": torch.bfloat16, "reduce_dtype": torch.float32} if _bf16(cfg, device) else {}
        for bb in backbones(obj.dit):  # each block is one unit: one expert's blocks are gathered at a time
            for block in bb.blocks:
                fully_shard(block, mp_policy=MixedPrecisionPolicy(**dtypes))
        # The root's input is the raw batch: noise and loss math stay fp32, autocast casts at each matmul.
        model = fully_shard(obj, mp_policy=MixedPrecisionPolicy(**dtypes, cast_forward_inputs=False))
        if on_meta:
            model.to_empty(device=device)
        if world > 1:
            opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
            set_model_state_dict(model, full, options=opts)
            for buf in model.buffers():  # non-persistent buffers (Wan's RoPE tables) are in no state dict
                dist.broadcast(buf, src=0)
        return model
    import ray.train.torch as rtt

    if on_meta:
        obj.to_empty(device=device)  # uninitialised until DDP's constructor broadcasts rank 0's state
    # Merging, cameras and the bank are not used on every step: DDP must not wait for their grads.
    return rtt.prepare_model(obj, parallel_strategy_kwargs={"find_unused_parameters": True})


def _log_path(cfg: TrainConfig) -> Path | None:
    """Every step's metrics as JSON lines beside the run (Ray keeps only checkpointed rows); local storage only."""
    if "://" in cfg.out:
        return None
    d = Path(cfg.out).resolve() / cfg.name
    d.mkdir(parents=True, exist_ok=True)
    return d / "steps.jsonl"


def _load_state(ckpt_dir: str) -> dict:
    return torch.load(Path(ckpt_dir) / CKPT_FILE, map_location="cpu", weights_only=True)


def _full_state(model, opt, cfg: TrainConfig, rank: int) -> tuple[dict, dict]:
    """(dit weights, optimiser state) as plain CPU tensors; collective under FSDP, complete on rank 0 only."""
    if cfg.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        # Full (unsharded) dicts keyed by parameter name: a checkpoint any world size can resume.
        msd, osd = get_state_dict(model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return {k.removeprefix("dit."): v for k, v in msd.items() if k.startswith("dit.")}, osd
    core = model.module if hasattr(model, "module") else model
    return {k: v.cpu() for k, v in core.dit.state_dict().items()}, opt.state_dict()


def _restore_optim(model, opt, state: dict, cfg: TrainConfig) -> None:
    if "optim" not in state or state.get("strategy", "ddp") != cfg.strategy:
        return  # the two strategies store the optimiser differently (ids vs names): weights-only resume
    if cfg.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        # Every rank read the same full dict; each keeps its own shard.
        # strict=False: parameters unused so far (e.g. a tokenizer level never picked) have no AdamW state yet.
        opts = StateDictOptions(full_state_dict=True, strict=False)
        set_optimizer_state_dict(model, opt, state["optim"], options=opts)
    else:
        opt.load_state_dict(state["optim"])


def train_worker(cfg: TrainConfig, rank: int, world: int, device: torch.device, state: dict | None, report) -> None:
    """The loop on one rank of an initialised process group (Ray Train's, or any for ``strategy: fsdp``).

    ``state``: a loaded checkpoint to resume from, or None. ``report(stats, ckpt)`` is called on every rank
    every step; ``ckpt`` is the checkpoint dict on rank 0 at checkpoint steps, else None.
    """
    from models.experts import ExpertDiT
    from training.loader import train_batches
    from training.step import encode_batch

    torch.manual_seed(cfg.seed)  # reproducible init of the new memory modules (rank 0's are broadcast)
    # Only rank 0 reads the transformer weights (and a checkpoint's); _wrap hands them to the other ranks.
    obj, enc, text_fn = build_objective(cfg, weights=rank == 0)
    enc.vae.to(device)
    start = 0
    if state is not None:
        start = int(state["step"])
        if rank == 0:
            obj.dit.load_state_dict(state["model"])
    model = _wrap(obj, cfg, device, rank, world)
    bf16 = _bf16(cfg, device)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    if state is not None:
        _restore_optim(model, opt, state, cfg)
    data = train_batches(cfg, rank)
    fixed = encode_batch(next(data), enc, text_fn, device) if cfg.fixed_batch else None
    log = _log_path(cfg) if rank == 0 else None
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        z = fixed if fixed is not None else encode_batch(next(data), enc, text_fn, device)
        # Fixed batch: the same noise every step, so the loss curve measures fitting, not noise.
        g = torch.Generator().manual_seed(cfg.seed if fixed is not None else cfg.seed * 7919 + step * world + rank)
        if isinstance(obj.dit, ExpertDiT):
            obj.dit.set_step(step)  # this step's expert is a function of the step: the same on every rank
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, stats = model(z, g)
        if isinstance(obj.dit, ExpertDiT):
            stats["routed"] = list(obj.dit.routed)  # [high-noise, low-noise] samples: per-expert loss curves
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not np.isfinite(stats["loss"]):
            raise FloatingPointError(f"loss became {stats['loss']} at step {step}")
        stats.update(step=step + 1, step_time_s=(time.perf_counter() - t0) / (step + 1 - start), world=world)
        if log is not None:
            with open(log, "a") as f:
                f.write(json.dumps(stats) + "\n")
        ckpt = None
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            weights, optim = _full_state(model, opt, cfg, rank)  # every rank joins the FSDP gather
            if rank == 0:
                config = {k: v for k, v in asdict(cfg).items() if k != "extra"}
                ckpt = {"model": weights, "optim": optim, "step": step + 1, "strategy": cfg.strategy}
                ckpt["config"] = config
        report(stats, ckpt)


def train_loop_per_worker(config: dict) -> None:
    import ray.train
    import ray.train.torch as rtt

    cfg = TrainConfig(**config)
    ctx = ray.train.get_context()
    state = None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = _load_state(d)
    elif cfg.resume_from:
        state = _load_state(cfg.resume_from)

    def report(stats: dict, ckpt_state: dict | None) -> None:
        if ckpt_state is None:
            ray.train.report(stats)
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(ckpt_state, Path(d) / CKPT_FILE)
            ray.train.report(stats, checkpoint=ray.train.Checkpoint.from_directory(d))

    train_worker(cfg, ctx.get_world_rank(), ctx.get_world_size(), rtt.get_device(), state, report)


def fit(cfg: TrainConfig):
    """Run training on the current Ray cluster (ray.init() must have been called or be automatic)."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    cfg = resolve_paths(cfg)  # the workers run in other directories: relative paths would name nothing there
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=asdict(cfg),
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker={"CPU": cfg.cpus_per_worker}
        ),
        torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
        run_config=RunConfig(
            name=cfg.name,
            storage_path=str(Path(cfg.out).resolve()),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
        ),
    )
    return trainer.fit()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _fit_in_thread(cfg: TrainConfig):
    """``fit`` on a helper thread, the main thread waiting where SIGINT/SIGTERM reach it.

    Ray Train registers its own SIGINT handler only when ``fit`` runs on the main thread; that handler
    aborts the run and then returns normally, so the caller cannot tell an interrupt from the end.
    """
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = fit(cfg)
        except BaseException as e:  # noqa: BLE001 (handed to the main thread, which re-raises it)
            box["error"] = e

    t = threading.Thread(target=target, name="memcorpus-train-fit", daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.2)
    if "error" in box:
        raise box["error"]
    return box["result"]


def run(args: argparse.Namespace) -> int:
    """``memcorpus train``: user mistakes raise ConfigError; SIGINT/SIGTERM stop the run with status 130."""
    cfg = config_from_args(args)
    if getattr(args, "dry_run", False):
        from training.config import print_config

        print_config(cfg)
        return 0
    return train(cfg, args.ray_address)


def train(cfg: TrainConfig, ray_address: str | None = None) -> int:
    """Train on the named Ray cluster, else a new embedded one; Ctrl-C / SIGTERM stop it: exit status 130."""
    import ray

    from pipelines.ray_runner import init_ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Set explicitly: a shell starts background jobs with SIGINT ignored, and Ray's core worker puts its own
    # crash reporter on SIGTERM (it prints a stack and dies), so both are ours again once Ray is up.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not ray.is_initialized():
            # Same rule as the corpus builders: join only a named cluster, else a new Ray on 127.0.0.1 only.
            init_ray(ray_address, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
        for sig in previous:
            signal.signal(sig, _interrupt)
        result = _fit_in_thread(cfg)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the cleanup
        print(f"interrupted: checkpoints so far are in {Path(cfg.out) / cfg.name}; rerun the same command to resume",
              file=sys.stderr, flush=True)
        # Stops an embedded Ray; on a cluster the driver leaves, and Ray ends the run's actors, which it owns.
        ray.shutdown()
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print({k: v for k, v in (result.metrics or {}).items() if not k.startswith("_")})
    print(f"checkpoint: {result.checkpoint.path if result.checkpoint else None}")
    return 0 if result.error is None else 1


def main(argv: list[str] | None = None) -> int:
    from pipelines.config import exit_on_user_error

    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    add_arguments(p)
    return exit_on_user_error(run, p.parse_args(argv), prog="python -m training.train")


if __name__ == "__main__":
    sys.exit(main())
