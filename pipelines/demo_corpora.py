"""Small demo builds of every corpus through the real pipelines, for the consumers' tests and benchmarks.

A test of the trainer, train-check, verify or the report starts from what the producer writes: these
run the real stages on generated inputs at small settings (tiny random models built in code), so a
format change in a writer reaches its readers' tests. The Memento one lives in demo_memento_dataset.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.demo_memento_dataset import build_small_demo_corpus as build_memento_demo

__all__ = ["build_memento_demo", "build_multicam_demo", "build_senorita_demo"]


def _check(summary, what: str) -> None:
    if summary.exit_code != 0 or not summary.counts.get("accepted"):
        raise RuntimeError(f"small {what} demo build failed: exit {summary.exit_code}, counts {dict(summary.counts)}")


def build_senorita_demo(out_dir: str | Path, framepack: str, dinov2: str, pairs: int = 2) -> Path:
    """Señorita-Long from ``pairs`` generated 64x48 pairs plus the broken ones: 200 FramePack frames (2 steps)."""
    from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_senorita import write_demo

    out = Path(out_dir)
    pairs_file = write_demo(out.with_name(out.name + "_inputs"), n_pairs=pairs, size=(64, 48))
    cfg = load_config(SenoritaConfig, None, pairs=str(pairs_file), run__out=str(out), run__runner="sequential",
                      run__progress=False, extend__model=framepack, extend__num_new_frames=200, extend__steps=2,
                      descriptors__model=dinov2)
    _check(run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg)), "Señorita-Long")
    return out


def build_multicam_demo(out_dir: str | Path) -> Path:
    """Multi-camera: 2 generated scenes x 10 cameras (32 px, 21 frames), a 96-frame 2-lap roam, broken inputs."""
    from pipelines.build_multicam_corpus import MulticamConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_multicam import write_demo

    out = Path(out_dir)
    root = write_demo(out.with_name(out.name + "_inputs"), scenes=2, size=32, frames=21, roam_frames=96,
                      roam_size=(48, 32))
    cfg = load_config(MulticamConfig, None, multicam=str(root / "multicam"), roams=str(root / "cam"),
                      run__out=str(out), run__runner="sequential", run__progress=False)
    _check(run_corpus("multicam", cfg, build_inputs(cfg), build_stages(cfg)), "multi-camera")
    return out
