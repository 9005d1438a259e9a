"""The driver of tests/spine/test_multinode.py: a toy build on a running Ray cluster, then what the cluster saw.

    python -m tests.spine.multinode_build ADDRESS OUT N SLEEP_S

Prints one JSON line: the summary counts, this process's pid and every node (id, alive, resources).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

from pipelines.common import RunConfig, run_corpus
from stages.base import Sample, Stage
from tests.spine.toy import Square, ToyConfig, toy_inputs

MODEL_NODE = "model_node"  # the custom resource only the worker node has


@dataclass
class StampNode(Stage):
    """A model stage (it has ``setup``): records the Ray node it runs on, and can be slow."""

    sleep_s: float = 0.0
    version: str = "stamp/1"

    def setup(self) -> None:
        import ray

        self.node = ray.get_runtime_context().get_node_id()

    def process(self, batch: list[Sample]) -> list[Sample]:
        time.sleep(self.sleep_s)
        for s in batch:
            s.meta["model_node"] = self.node
        return batch


def main(address: str, out: str, n: int, sleep_s: float) -> None:
    import ray

    cfg = ToyConfig(run=RunConfig(out=out, runner="ray", progress=False, ray_address=address, shard_max_samples=4,
                                  ray_model_resource=MODEL_NODE, commit_every_s=0.0))
    s = run_corpus("toy", cfg, toy_inputs(range(1, n + 1)), [Square(), StampNode(sleep_s=sleep_s, batch_size=2)])
    nodes = [{"id": x["NodeID"], "alive": x["Alive"], "resources": x.get("Resources", {})} for x in ray.nodes()]
    print(json.dumps({"counts": dict(s.counts), "pid": os.getpid(), "nodes": nodes}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
