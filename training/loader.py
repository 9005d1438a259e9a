"""From a dataset folder to training batches, and ``memcorpus train-check``, which proves the hand-over.

``iter_examples`` is the one path from shards to examples: training and train-check both use it,
so what train-check counts is what the model trains on. A dataset is a local folder or an fsspec URI
(``s3://…``, ``memory://…``), read where the build wrote it (training/data.py). Batches hold one
example kind (their keys differ) and draw the number of memory videos per batch (memory-v2v §4.1.1:
1–6 at each iteration).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import numpy as np

from training.examples import ExampleConfig, build_example

# What each kind of example must carry for its paper's conditioning (issue contract, `train-check --json`).
CONDITIONING = {
    "senorita": ("senorita_long", {"instruction": lambda e: bool(e["caption"]), "source_video": lambda e: "user" in e,
                                   "target_video": lambda e: "target" in e, "memory_videos": lambda e: bool(e["memory"])}),
    "memento": ("memento", {"story": lambda e: bool(e["story"]), "shot_captions": lambda e: bool(e["caption"]),
                            "memory_shots": lambda e: bool(e["history"]), "recon_frames": lambda e: bool(e["recon"])}),
    "multicam": ("multicam", {"camera": lambda e: "cams" in e, "user_video": lambda e: "user" in e,
                              "memory_videos": lambda e: bool(e["memory"])}),
    "roam": ("roam", {"camera": lambda e: "cams" in e, "context_frames": lambda e: bool(e["memory"])}),
}
VARIABLE_MEMORY = ("senorita", "multicam")  # kinds whose memory count is drawn per batch


def iter_examples(
    dataset: str, cfg: ExampleConfig, seed: int = 0, rank: int = 0, shuffle: int = 64, stats: Counter | None = None
) -> Iterator[dict]:
    """Endless examples from a dataset folder (resampled shards); unusable samples are counted in ``stats``."""
    from training.data import open_dataset, read_index

    corpus = read_index(dataset).get("corpus", "")
    rng = np.random.default_rng(seed * 1000 + rank)
    for s in open_dataset(dataset, shuffle=shuffle, resampled=True, seed=seed + rank):
        ex = build_example(s, corpus, cfg, rng)
        if stats is not None:
            stats["samples"] += 1
            stats["skipped" if ex is None else "examples"] += 1
        if ex is not None:
            yield ex


def batches(
    dataset: str, cfg: ExampleConfig, batch_size: int, seed: int = 0, rank: int = 0, shuffle: int = 64,
    memory_k_min: int = 1,
) -> Iterator[dict]:
    """Endless collated batches, one example kind per batch; memory count U{memory_k_min..memory_k} per batch."""
    from training.step import collate

    rng = np.random.default_rng(seed * 7717 + rank)
    bufs: dict[str, list[dict]] = {}
    for ex in iter_examples(dataset, cfg, seed, rank, shuffle):
        buf = bufs.setdefault(ex["kind"], [])
        buf.append(ex)
        if len(buf) == batch_size:
            k = None
            if ex["kind"] in VARIABLE_MEMORY and cfg.memory_k:
                k = int(rng.integers(min(memory_k_min, cfg.memory_k), cfg.memory_k + 1))
            yield collate(buf, memory_k=k)
            bufs[ex["kind"]] = []


def corpus_default(value: bool | None, dataset: str, corpus: str) -> bool:
    """An explicit setting, or on exactly when the dataset is of ``corpus`` (its paper's conditioning)."""
    if value is not None:
        return value
    from training.data import read_index

    return read_index(dataset).get("corpus", "").startswith(corpus)


def example_config(cfg) -> ExampleConfig:
    """The example settings of a TrainConfig."""
    return ExampleConfig(frames=cfg.frames, size=tuple(cfg.size), memory_k=cfg.memory_k, memory_mode=cfg.memory_mode,
                         context_size=cfg.context_size)


def train_batches(cfg, rank: int = 0) -> Iterator[dict]:
    """Endless batches for one rank of a TrainConfig's run."""
    return batches(cfg.dataset, example_config(cfg), cfg.batch_size, seed=cfg.seed, rank=rank, shuffle=cfg.shuffle,
                   memory_k_min=cfg.memory_k_min)


def train_check(dataset: str, n: int = 16, cfg: ExampleConfig | None = None, seed: int = 0,
                max_samples: int | None = None) -> dict:
    """Build ``n`` examples of every kind the dataset holds, exactly as training does, and count for each
    conditioning input how many examples carry it non-empty. ``ok`` is False when any count is short of n."""
    from training.data import read_index

    cfg = cfg or ExampleConfig()
    index = read_index(dataset)
    total = sum(int(x.get("samples", 0)) for x in index.get("shards", []))
    stats: Counter = Counter()
    got: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    limit = max_samples or 50 * n
    for ex in iter_examples(dataset, cfg, seed, shuffle=0, stats=stats):
        kept = got.setdefault(ex["kind"], [])
        if len(kept) < n:
            kept.append(_summary(ex))
        # Read at least as many samples as the dataset holds, so a kind that is there is seen.
        full = all(len(v) >= n for v in got.values()) and stats["samples"] >= min(total, limit)
        if full or stats["samples"] >= limit:
            break
    secs = time.perf_counter() - t0
    kinds = sorted(got)
    names = [CONDITIONING[k][0] for k in kinds]
    cond: dict[str, int] = {}
    for k in kinds:
        for key, present in CONDITIONING[k][1].items():
            c = sum(present(e) for e in got[k])
            cond[key] = min(cond.get(key, c), c)  # a key both kinds carry (camera) counts the weaker
    counts = {CONDITIONING[k][0]: len(got[k]) for k in kinds}
    ok = bool(kinds) and all(v >= n for v in cond.values()) and all(v >= n for v in counts.values())
    return {
        "corpus": names[0] if len(names) == 1 else names,
        "examples": min(counts.values(), default=0),  # of every kind the dataset holds
        "examples_per_kind": counts,
        "conditioning": cond,
        "samples_read": stats["samples"], "samples_skipped": stats["skipped"],
        "examples_per_s": round(sum(counts.values()) / max(secs, 1e-9), 2),
        "ok": ok,
    }


def _summary(ex: dict) -> dict:
    """What train-check needs of an example (the tensors are dropped as soon as they are counted)."""
    return {k: (v if isinstance(v, str) else [1] * len(v) if isinstance(v, list) else 1) for k, v in ex.items()}
