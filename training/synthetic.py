"""Dataset folders written outside the pipelines, for the toy memory experiment only.

Trainer tests and benchmarks read what the real pipelines write (pipelines/demo_corpora.py); the
experiment generates its own scenes with known geometry, so it writes them here in the schema of
pipelines/schema.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import webdataset as wds

from pipelines.schema import schema_for


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
    schema = schema_for(corpus)
    if schema is not None:
        index["schema"] = schema.ref
    (root / "dataset.json").write_text(json.dumps(index, indent=1))
    return root
