"""Footage per hour, for sizing a cluster: the run record's ``throughput``.

Hours of input video processed per wall-clock hour, and per CPU hour and GPU hour of what the run
held (the Ray cluster's CPUs and GPUs, or this machine's CPUs for the sequential runner). A user
divides the footage they have by these to size a cluster. Footage seconds are measured by the
stage that first probes each input (``Sample.footage_s``), rejected inputs included: they cost
the decode too.
"""

from __future__ import annotations

import os
from typing import Any


def throughput(footage_s: float, wall_s: float, runner_info: dict[str, Any]) -> dict[str, Any]:
    cpus = float(runner_info.get("cluster_cpus") or os.cpu_count() or 1)
    gpus = float(runner_info.get("cluster_gpus") or 0)
    hours, wall_h = footage_s / 3600.0, max(wall_s, 1e-9) / 3600.0
    return {
        "footage_hours": round(hours, 6),
        "cpus": cpus,
        "gpus": gpus,
        "footage_hours_per_wall_hour": round(hours / wall_h, 4),
        "footage_hours_per_cpu_hour": round(hours / (wall_h * cpus), 4),
        "footage_hours_per_gpu_hour": round(hours / (wall_h * gpus), 4) if gpus else None,
    }
