"""Generate videos from a trained checkpoint, one mode per paper, logging the memory used at each step.

    memcorpus generate CHECKPOINT --mode camera|edit|story [--dataset DIR [--sample N]] --out DIR

- ``camera`` (Context-as-Memory, arXiv 2506.03141 §3.2-3.3): a long video along a camera trajectory,
  generated segment by segment; each segment conditions on context frames retrieved by VideoFOV overlap
  (Memory-V2V Alg. 1, models/fov.py) from the frames generated before it.
- ``edit`` (Memory-V2V, arXiv 2601.16296 §3.4, App. Alg. 2): a long source video edited segment by segment (one
  turn each); each turn retrieves earlier edited segments by DINOv2 similarity of their source segments,
  the most recent first, with memory RoPE reversed at inference (§0.E.2.3).
- ``story`` (Memento, arXiv 2606.14667 §3.1-3.2): a multi-shot video from a story caption and per-shot captions; from
  shot 2 on, the dual-path memory bank (Eqs. 2-5) updated with each generated shot.

Writes ``video.mp4`` and ``generation.json`` (settings, segments, and per step the retrieved memory)
into ``--out``. The sampler integrates the flow-matching ODE the trainer learns (training/losses.py
convention: x_σ = (1-σ)·x0 + σ·ε, v = ε - x0, timestep 1000·σ) with Euler steps.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipelines.config import ConfigError
from training.train import CKPT_FILE

MODES = ("camera", "edit", "story")
CORPUS_MODE = {"multicam": "camera", "senorita_long": "edit", "memento": "story"}


def find_checkpoint(path: str | Path) -> Path:
    """``state.pt`` itself, a Ray checkpoint dir holding it, or a run dir (its latest ``checkpoint_*``)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if (p / CKPT_FILE).is_file():
        return p / CKPT_FILE
    ckpts = sorted(p.glob(f"checkpoint_*/{CKPT_FILE}")) if p.is_dir() else []
    if not ckpts:
        raise ConfigError(
            f"checkpoint={str(path)!r}: no {CKPT_FILE} there, nor in a checkpoint_*/ folder under it "
            "(give what `memcorpus train` printed as 'checkpoint:', or its run folder OUT/NAME)"
        )
    return ckpts[-1]


@dataclass
class Generator:
    """A trained DiT with its VAE and text encoder, ready to sample latents and decode them."""

    dit: torch.nn.Module
    enc: object  # training.step.LatentEncoder
    text_fn: object
    cfg: object  # training.config.TrainConfig the checkpoint was trained with
    step: int
    checkpoint: Path
    device: torch.device

    @classmethod
    def load(cls, checkpoint: str | Path, backbone: str | None = None, device: str = "cpu") -> Generator:
        from training.config import TrainConfig, load_train_config, resolve_paths
        from training.train import build_objective

        path = find_checkpoint(checkpoint)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if "model" not in state or "config" not in state:
            raise ConfigError(f"{path}: not a `memcorpus train` checkpoint (no 'model'/'config' entries)")
        conf = dict(state["config"])
        keys = state["model"].keys()
        # The trained modules say which conditioning exists; the training dataset need not be on this machine.
        conf["camera"] = any(k.startswith("camera.") for k in keys)
        conf["bank"] = any(k.startswith("bank.") for k in keys)
        if backbone:
            conf["backbone"] = str(Path(backbone).expanduser().resolve())
        known = set(TrainConfig.__dataclass_fields__)  # a field the trainer no longer has is dropped
        cfg = resolve_paths(load_train_config(None, None, **{k: v for k, v in conf.items() if k in known}))
        obj, enc, text_fn = build_objective(cfg)
        obj.dit.load_state_dict(state["model"])
        dev = torch.device(device)
        dit = obj.dit.to(dev).eval()
        enc.vae.to(dev)
        return cls(dit, enc, text_fn, cfg, int(state.get("step", 0)), path, dev)

    # ---- shapes, pixels <-> latents -------------------------------------------------------
    @property
    def frames(self) -> int:
        return int(self.cfg.frames)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(int(x) for x in self.cfg.size)

    def latent_shape(self, n_frames: int) -> tuple[int, ...]:
        c = self.enc.vae.config
        s = 2 ** len(c.temperal_downsample)  # spatial: one halving per down block (8 for Wan)
        tt = 2 ** sum(bool(x) for x in c.temperal_downsample)  # temporal: 4 for Wan
        return (1, c.z_dim, 1 + (n_frames - 1) // tt, self.size[0] // s, self.size[1] // s)

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """(F, H, W, 3) uint8 -> (1, C, f, h, w) latents at the training size (F taken as given)."""
        from training.examples import to_clip

        return self.enc(to_clip(frames, len(frames), self.size)[None]).to(self.device)

    def decode(self, z: torch.Tensor) -> np.ndarray:
        """(1, C, f, h, w) latents -> (F, H, W, 3) uint8."""
        x = self.enc.decode(z)[0]  # (3, F, H, W) in [-1, 1]
        return ((x.permute(1, 2, 3, 0).float().cpu().numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)

    def text(self, captions: list[str]) -> torch.Tensor:
        return self.text_fn(captions).to(self.device)

    # ---- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        text: torch.Tensor,
        g: torch.Generator,
        steps: int = 20,
        guidance: float = 1.0,
        shift: float = 1.0,
        n_frames: int | None = None,
        **cond,
    ) -> torch.Tensor:
        """Latents of one target clip: Euler steps of dx/dσ = v from σ=1 to 0.

        ``cond``: MemoryDiT keyword conditioning (user, memory, cams, bank, layout, memory_levels, ...).
        ``guidance`` > 1: classifier-free guidance on the text (zeros = the dropped caption the trainer uses).
        ``shift``: Wan's timestep shift σ' = shift·σ / (1 + (shift-1)·σ) (1: the uniform grid).
        """
        shape = self.latent_shape(n_frames or self.frames)
        x = torch.randn(shape, generator=g).to(self.device)
        u = torch.linspace(1.0, 0.0, steps + 1)
        sig = shift * u / (1 + (shift - 1) * u)
        for a, b in itertools.pairwise(sig.tolist()):
            t = torch.full((shape[0],), a * 1000.0, device=self.device)
            v = self.dit(x, t, text, **cond)
            if guidance != 1.0:
                v0 = self.dit(x, t, torch.zeros_like(text), **cond)
                v = v0 + guidance * (v - v0)
            x = x + (b - a) * v
        return x


def write_outputs(out: str | Path, frames: np.ndarray, fps: float, record: dict) -> tuple[Path, Path]:
    """``video.mp4`` (H.264) and ``generation.json`` in ``out``."""
    from stages.video import encode_mp4

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    video = d / "video.mp4"
    video.write_bytes(encode_mp4(frames, fps))
    record = dict(
        record,
        video=video.name,
        frames=len(frames),
        height=int(frames.shape[1]),
        width=int(frames.shape[2]),
        fps=float(fps),
    )
    meta = d / "generation.json"
    meta.write_text(json.dumps(record, indent=1))
    return video, meta


def pad_to(frames: np.ndarray, n: int) -> np.ndarray:
    """The first n frames, repeating the last one when there are fewer (a short final segment)."""
    if len(frames) >= n:
        return frames[:n]
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), 0)])


def add_arguments(p) -> None:
    p.add_argument(
        "checkpoint",
        help="what `memcorpus train` printed as checkpoint (…/checkpoint_N), its "
        "run folder OUT/NAME (latest checkpoint), or a state.pt",
    )
    p.add_argument("--out", required=True, help="folder for video.mp4 and generation.json")
    p.add_argument(
        "--mode",
        choices=MODES,
        help="default: from --dataset's corpus (multicam: camera, senorita_long: edit, memento: story)",
    )
    p.add_argument("--dataset", help="dataset folder to take the inputs from (trajectory / source video / story)")
    p.add_argument("--sample", type=int, default=0, help="which usable sample of --dataset (0 = the first)")
    p.add_argument("--backbone", help="Wan folder (default: the checkpoint's)")
    p.add_argument("--dino", help="DINOv2 folder for edit-mode retrieval (memory-v2v Alg. 2)")
    p.add_argument("--video", help="edit: source video (mp4) instead of --dataset's")
    p.add_argument("--prompt", action="append", help="edit: instruction (repeat for one per turn); camera: caption")
    p.add_argument("--story", help='story: JSON file {"story": str, "shots": [str, ...]} instead of --dataset\'s')
    p.add_argument("--poses", help="camera: (T, 4, 4) OpenCV camera-to-world .npy instead of --dataset's roam")
    p.add_argument("--fov", type=float, default=52.67, help="camera: horizontal FOV for --poses (Context-as-Memory)")
    p.add_argument(
        "--length", type=int, help="camera: frames, edit: source frames, story: shots to generate (default: all)"
    )
    p.add_argument("--steps", type=int, default=20, help="Euler steps per clip")
    p.add_argument("--guidance", type=float, default=1.0, help="text classifier-free guidance scale (1: off)")
    p.add_argument("--shift", type=float, default=1.0, help="timestep shift (Wan uses 3-5 at 480p-720p)")
    p.add_argument(
        "--merge-ratio",
        type=float,
        default=None,
        help="adaptive token merging ratio (default: 0.5 for edit, the middle of training's range)",
    )
    p.add_argument(
        "--covis-threshold",
        type=float,
        default=0.05,
        help="camera: least VideoFOV score to count an earlier frame as co-visible",
    )
    p.add_argument(
        "--fov-radius",
        type=float,
        default=1.0,
        help="camera: VideoFOV sphere radius in the poses' units (Alg. 1's r; 1 = the paper's unit sphere)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")


def run(args) -> int:
    from training.generate_modes import generate

    rec = generate(args)
    print(json.dumps({k: rec[k] for k in ("mode", "video", "generation", "frames")}, indent=1))
    return 0
