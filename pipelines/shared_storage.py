"""On a multi-node Ray cluster the dataset folder must be storage every node sees.

Shards are written by the workers that make the samples, and the driver commits
``dataset.json`` next to them. A local path that exists only on the head (``--out
out/dataset`` on a laptop-style command line) would scatter shards over the workers' own
disks while the index on the head lists files it cannot read. Before any work, the driver
writes a marker file with a random token into the output folder and one tiny task per alive
node reads it back; a node that cannot see it refuses the run with a message that names it.
Object stores (``s3://``, ``gs://``, ...) are shared by construction and are not probed.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

PROBE = ".memcorpus-probe"


def _read_token(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def probe_nodes(path: str, timeout_s: float = 120.0) -> dict[str, str]:
    """node id -> the text each alive Ray node reads at local ``path`` ("" when it cannot read it)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    read = ray.remote(num_cpus=0)(_read_token)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    refs = [read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(path)
            for n in nodes]
    return dict(zip(nodes, ray.get(refs, timeout=timeout_s)))


def require_shared(root: Any, local: bool) -> None:
    """Raise ``ValueError`` when ``root`` is a local folder some alive node of the cluster cannot see."""
    import ray

    if not local or len([n for n in ray.nodes() if n.get("Alive")]) < 2:
        return
    token = secrets.token_hex(8)
    marker = os.path.join(str(root), f"{PROBE}-{token}")
    with open(marker, "w") as f:
        f.write(token)
    try:
        seen = probe_nodes(marker)
    finally:
        os.remove(marker)
    blind = sorted(n[:12] for n, t in seen.items() if t != token)
    if blind:
        raise ValueError(
            f"run.out={root} is a local folder that {len(blind)} of {len(seen)} Ray nodes cannot see "
            f"(node {', '.join(blind)}): on a multi-node cluster the workers write the shards, so the output must be "
            "shared storage: an object store URI (s3://bucket/corpus, gs://...) or a shared filesystem (NFS, EFS, "
            "Lustre) mounted at the same path on every node")
