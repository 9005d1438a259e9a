"""The Memento demo: its footage folder, and a small dataset built from it through the real pipeline.

``write_demo`` is what ``make demo-memento`` reads when no ``--footage`` is given. Its film carries a
real person (pipelines/demo_people.py) in every shot, so HOG + ByteTrack find a primary subject and
each sequence gets its two reconstruction frames; the other files are rejected, each for its own reason.

``build_small_demo_corpus`` is the same footage at a quarter of every duration, through the same
stages with every duration setting scaled alike: a complete dataset folder (dataset.json, shards,
manifests) in about a minute of CPU time on two cores (most of it the tiny captioner), for tests that
start from real pipeline output.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.demo_memento import Film, Shot, memento_film, render_film

DEMO_PEOPLE = 0.6  # walker height / picture height: at 360 px the person is ~170 px tall, well above HOG's 128 px window
SMALL_SCALE = 0.25  # durations of the small corpus: sequences of 7.5-15 s, shots over 1.25 s


def write_demo(folder: str | Path, size: tuple[int, int] = (640, 360), fps: float = 24.0, scale: float = 1.0) -> Path:
    """Demo footage with the bad cases the pipeline must survive; kept if already there.

    ``film.mp4`` yields two sequences with a tracked person; ``short.mp4`` is too short for a sequence,
    ``choppy.mp4`` has no shot long enough, ``empty.mp4`` and ``truncated.mp4`` do not decode.
    ``scale`` shrinks every duration: pair it with sequence settings scaled alike.
    """
    root = Path(folder)
    marker = root / "truth.json"
    key = {"size": list(size), "fps": fps, "scale": scale, "people": DEMO_PEOPLE}
    # Compare every parameter, not just the size: an older demo folder without people must be rebuilt.
    if marker.is_file() and {k: json.loads(marker.read_text()).get(k) for k in key} == key:
        return root
    root.mkdir(parents=True, exist_ok=True)
    w, h = size

    def n(sec: float) -> int:
        return max(round(sec * fps * scale), 4)

    truth = {**key, "film.mp4": render_film(root / "film.mp4", memento_film(w, h, fps, scale=scale, people=DEMO_PEOPLE))}
    short = Film((Shot(n(6)), Shot(n(6))), w // 2, h // 2, fps, seed=5)
    truth["short.mp4"] = render_film(root / "short.mp4", short)  # 12 s: footage_too_short
    choppy = Film(tuple(Shot(n(2.5)) for _ in range(14)), w // 2, h // 2, fps, seed=6)
    truth["choppy.mp4"] = render_film(root / "choppy.mp4", choppy)  # 35 s of 2.5 s shots: no sequence
    (root / "empty.mp4").write_bytes(b"")
    data = (root / "short.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    marker.write_text(json.dumps(truth))
    return root


def small_demo_config(out_dir: str | Path, footage: str | Path, tiny_models: str | Path, runner: str = "sequential"):
    """The Memento config for the small demo: paper durations x SMALL_SCALE, a tiny random captioner."""
    from pipelines.build_memento_corpus import (
        DEMO_CAPTION_LIMITS,
        CaptionConfig,
        MementoConfig,
        SequenceConfig,
    )
    from pipelines.common import RunConfig

    s = SMALL_SCALE
    return MementoConfig(
        footage=str(footage), tiny_models=str(tiny_models),
        sequences=SequenceConfig(min_seconds=30 * s, max_seconds=60 * s, min_shot_seconds=5 * s),
        # Random weights break the naming rules now and then (a title-case run reads as an unknown name); more
        # re-asks make losing a whole sequence to that rare, so tests starting from this corpus have samples.
        captions=CaptionConfig(limits=dict(DEMO_CAPTION_LIMITS), max_retries=4),
        run=RunConfig(out=str(out_dir), runner=runner, progress=False),
    )


def small_demo_footage(out_dir: str | Path) -> Path:
    """The footage folder (with its truth.json) that ``build_small_demo_corpus(out_dir)`` reads."""
    return Path(out_dir).with_name(Path(out_dir).name + "_work") / "footage"


def build_small_demo_corpus(out_dir: str | Path, runner: str = "sequential") -> Path:
    """Build the small Memento demo dataset into ``out_dir`` and return it (the dataset folder).

    The footage (``small_demo_footage(out_dir)``) and the tiny random Qwen3-VL go to ``<out_dir>_work`` beside
    it, and are reused when already there. Raises RuntimeError if the run fails or accepts no sequence.
    """
    from dataclasses import replace

    from models.tiny import build_tiny
    from pipelines.build_memento_corpus import CaptionStats, build_inputs, build_stages
    from pipelines.common import run_corpus

    out, footage = Path(out_dir), small_demo_footage(out_dir)
    write_demo(footage, scale=SMALL_SCALE)
    cfg = small_demo_config(out, footage, footage.parent / "tiny_models", runner)
    cfg = replace(cfg, captions=replace(cfg.captions, model=str(build_tiny("qwen3vl", cfg.tiny_models))))
    stats = CaptionStats()
    summary = run_corpus("memento", cfg, build_inputs(cfg), build_stages(cfg), observe=stats, tables=stats.tables)
    if summary.exit_code != 0 or not summary.counts.get("accepted"):
        raise RuntimeError(f"small Memento demo build failed: exit {summary.exit_code}, counts {dict(summary.counts)}, "
                           f"rejects {dict(summary.reasons)}")
    return out
