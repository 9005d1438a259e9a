"""Small dataset folders in the corpus builders' format, for trainer tests, benchmarks and the toy experiment.

The shards follow the dataset contract (DESIGN §4) exactly as the lead's writer emits it, so
``open_dataset`` and the example builders see what they will see from real runs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import webdataset as wds

from stages.video import encode_mp4


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def write_dataset_folder(root: str | Path, corpus: str, samples: list[dict], per_shard: int = 4) -> Path:
    """Write ``samples`` (webdataset dicts with ``__key__``) as shards + dataset.json; returns root."""
    root = Path(root)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    shards = []
    for i in range(0, len(samples), per_shard):
        rel = f"shards/{corpus}-synthetic-{i // per_shard:06d}.tar"
        with wds.TarWriter(str(root / rel)) as w:
            for s in samples[i : i + per_shard]:
                w.write(s)
        n = len(samples[i : i + per_shard])
        shards.append({"path": rel, "samples": n, "bytes": (root / rel).stat().st_size, "run": "synthetic"})
    index = {"format": "memcorpus/1", "corpus": corpus, "shards": shards, "manifests": [], "runs": ["synthetic"]}
    (root / "dataset.json").write_text(json.dumps(index, indent=1))
    return root


def _scene(t: int, size: int, rng: np.random.Generator, colour) -> np.ndarray:
    """A textured background with a square moving across it: (t, size, size, 3) uint8."""
    _yy, xx = np.mgrid[0:size, 0:size]
    base = rng.integers(40, 200, 3)
    bg = (base[None, None] + 30 * np.sin(xx[..., None] / rng.uniform(3, 9) + rng.uniform(0, 6))).clip(0, 255)
    out = np.repeat(bg[None].astype(np.uint8), t, axis=0)
    for i in range(t):
        x0 = int((i * 2 + rng.integers(0, 4)) % (size - size // 4))
        out[i, size // 3 : size // 3 + size // 4, x0 : x0 + size // 4] = colour
    return out


def senorita_samples(n: int, src_frames: int = 9, ext_frames: int = 36, size: int = 64, seed: int = 0) -> list[dict]:
    """Señorita-Long-like samples: source/target clips, an extended target, segment descriptors."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        seed_k = int(rng.integers(1 << 30))
        src = _scene(src_frames + ext_frames, size, np.random.default_rng(seed_k), (200, 40, 40))
        tgt = _scene(src_frames + ext_frames, size, np.random.default_rng(seed_k), (40, 40, 200))  # edit: red->blue
        segs = [[a, a + src_frames] for a in range(src_frames, src_frames + ext_frames - src_frames + 1, src_frames)]
        desc = lambda v, a, b: np.concatenate(
            [v[a:b].mean((0, 1, 2)), v[a:b].std((0, 1, 2)), [a / 100.0, 1.0]]
        ).astype(np.float32)
        meta = {
            "instruction": "replace the red square with a blue square",
            "extension": {"memory_frames": [src_frames, src_frames + ext_frames]},
            "segments": segs,
        }
        out.append(
            {
                "__key__": f"sen{k:04d}",
                "json": json.dumps(meta).encode(),
                "source.mp4": encode_mp4(src[:src_frames], fps=8),
                "target.mp4": encode_mp4(tgt[:src_frames], fps=8),
                "target_extended.mp4": encode_mp4(tgt, fps=8),
                "source_dino.npy": npy(np.stack([desc(src, 0, src_frames)])),
                "target_dino.npy": npy(np.stack([desc(tgt, a, b) for a, b in segs])),
            }
        )
    return out


def write_senorita(root: str | Path, n: int = 8, **kw) -> Path:
    return write_dataset_folder(root, "senorita_long", senorita_samples(n, **kw))
