"""Group consecutive shots into continuous multi-shot sequences (Memento §3.1: 30-60 s, shots > 5 s).

One footage sample becomes N sequence samples (``Sample.child``); when none survives, the
footage is rejected with the rule that failed, so every input ends in the manifest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stages.base import Resources, Sample, Stage


def frame_clock(times: list[float] | None, frames: int, fps: float):
    """``t(n)``: start time of frame n in seconds; ``t(frames)`` is the end of the last frame.

    Timestamps make durations right for variable-frame-rate files; without them the nominal
    rate is used.
    """
    ok = times is not None and len(times) == frames and all(math.isfinite(t) for t in times)

    def t(n: int) -> float:
        if not ok:
            return n / fps
        return times[n] - times[0] if n < frames else times[-1] - times[0] + 1.0 / fps

    return t


def pack_sequences(
    shots: list[list[int]], t, min_s: float, max_s: float, min_shot_s: float, min_shots: int, max_shots: int
) -> tuple[list[list[list[int]]], dict[str, int]]:
    """Greedy packing of runs of long-enough consecutive shots into sequences.

    Returns the sequences (lists of ``[start, end_inclusive]`` shots) and counters of what was
    dropped by which rule.
    """
    stats = {"shots": len(shots), "short_shots": 0, "runs": 0, "runs_too_short": 0}
    runs: list[list[list[int]]] = [[]]
    for a, b in shots:
        if t(b + 1) - t(a) > min_shot_s:
            runs[-1].append([a, b])
        else:
            stats["short_shots"] += 1
            runs.append([])
    runs = [r for r in runs if r]
    stats["runs"] = len(runs)
    out = []
    for run in runs:
        k, found = 0, False
        while k < len(run):
            m = k
            while m < len(run) and m - k < max_shots and t(run[m][1] + 1) - t(run[k][0]) <= max_s:
                m += 1
            if m - k >= min_shots and t(run[m - 1][1] + 1) - t(run[k][0]) >= min_s:
                out.append(run[k:m])
                k, found = m, True
            else:
                k += 1
        stats["runs_too_short"] += not found
    return out, stats


@dataclass
class SplitSequences(Stage):
    min_seconds: float = 30.0
    max_seconds: float = 60.0
    min_shot_seconds: float = 5.0  # every shot must last longer than this
    min_shots: int = 2
    max_shots: int = 16
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.25))
    version: str = "sequences/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("min_seconds", "max_seconds", "min_shot_seconds", "min_shots", "max_shots")

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"need 0 < min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}")
        if self.min_shot_seconds < 0 or not 1 <= self.min_shots <= self.max_shots:
            raise ValueError(
                f"need min_shot_seconds >= 0 and 1 <= min_shots <= max_shots, got "
                f"{self.min_shot_seconds}, {self.min_shots}, {self.max_shots}"
            )

    def process(self, batch: list[Sample]) -> list[Sample]:
        out: list[Sample] = []
        for s in batch:
            m = s.meta
            times = s.scratch.get("times")
            t = frame_clock(times, m["frames"], m["fps"])
            if t(m["frames"]) < self.min_seconds:
                s.reject("footage_too_short", stage=self.name, detail=f"{t(m['frames']):.1f} s < {self.min_seconds} s")
                out.append(s)
                continue
            seqs, stats = pack_sequences(
                m["shots"], t, self.min_seconds, self.max_seconds, self.min_shot_seconds, self.min_shots, self.max_shots
            )
            if not seqs:
                rule = "all_shots_too_short" if stats["runs"] == 0 else "no_long_enough_shot_run"
                s.reject(rule, stage=self.name, detail=str(stats))
                out.append(s)
                continue
            for i, seq in enumerate(seqs):
                a, b = seq[0][0], seq[-1][1] + 1
                c = s.child(i, len(seqs), key=f"seq{i:03d}")
                c.meta = {
                    "fps": m["fps"], "frames": b - a, "source_frames": [a, b], "size": m["size"],
                    "rotation": m.get("rotation", 0), "duration": round(t(b) - t(a), 3),
                    "shots": [[x - a, y - a] for x, y in seq], "shot_backend": m.get("shot_backend"),
                    "split": stats,
                }
                if times:
                    c.scratch["times"] = times[a:b]
                out.append(c)
        return out
