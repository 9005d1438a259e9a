"""Fault campaign: kills, concurrent builds, corruptions and version bumps on a toy corpus; count the damage.

Every build is a real subprocess (``SIGKILL`` is a real kill). After each scenario the folder
is judged from the files alone, the way a trainer would read it: the shards ``dataset.json``
lists, minus retired keys and damaged shards. Against the ground truth of the toy pipeline:
  lost        accepted samples of the current version that no reader sees
  duplicated  sample keys a reader sees more than once
  stale       samples a reader sees that were built with an older version
  verify      problems ``memcorpus verify`` still reports at the end
Run: python benchmarks/fault_campaign.py [--rounds 3] [--code DIR (another checkout, e.g. the old code)]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve()
N = 40  # inputs per build


def _stages(version: str, slow: float):
    from dataclasses import dataclass

    import numpy as np

    from stages.base import Stage

    @dataclass
    class Payload(Stage):
        """n -> 1 or 2 samples holding the version that built them; multiples of 7 are rejected."""

        tag: str = "v1"
        slow: float = 0.0

        def process(self, batch):
            out = []
            for s in batch:
                time.sleep(self.slow)
                n = s.source["n"]
                if n % 7 == 0:
                    out.append(s.reject("unlucky", self.name))
                    continue
                k = 2 if n % 3 == 0 else 1
                for i in range(k):
                    c = s.child(i, k, key=f"p{i}") if k > 1 else s
                    c.meta = {"n": n, "tag": self.tag}
                    c.arrays["v"] = np.full(64, n, dtype=np.int64)
                    out.append(c)
            return out

    return [Payload(tag=version, slow=slow, version=f"payload/{version}")]


def build(out: str, version: str, slow: float) -> int:
    from dataclasses import dataclass

    from pipelines.common import RunConfig, run_corpus
    from stages.base import Sample
    from stages.ids import text_id

    @dataclass(frozen=True)
    class Cfg:
        run: RunConfig

    cfg = Cfg(RunConfig(out=out, runner="sequential", progress=False, shard_max_samples=4, commit_every_s=0.0))

    inputs = [Sample(id=text_id(f"n={n}"), source={"n": n}) for n in range(1, N + 1)]
    return run_corpus("camp", cfg, inputs, _stages(version, slow)).exit_code


def expected(version: str) -> dict[str, str]:
    from stages.ids import text_id

    keys = {}
    for n in range(1, N + 1):
        if n % 7:
            iid = text_id(f"n={n}")
            for k in ([f"{iid}_p0", f"{iid}_p1"] if n % 3 == 0 else [iid]):
                keys[k] = version
    return keys


def readable(out: Path) -> Counter:
    """(key, tag) pairs a reader sees: listed shards, minus damaged ones and retired keys."""
    idx = json.loads((out / "dataset.json").read_text())
    seen: Counter = Counter()
    for s in idx["shards"]:
        if s.get("damaged"):
            continue
        retired = set(s.get("retired", ()))
        try:
            with tarfile.open(out / s["path"]) as tar:
                for m in tar:
                    key, _, ext = m.name.partition(".")
                    if ext == "json" and key not in retired:
                        seen[(key, json.loads(tar.extractfile(m).read())["tag"])] += 1
        except (OSError, tarfile.TarError, ValueError):
            continue  # a reader fails on this shard: whatever it holds is lost
    return seen


def judge(out: Path, version: str) -> dict[str, int]:
    from pipelines.verify import verify

    seen = readable(out)
    keys = Counter(k for k, _ in seen.elements())
    want = expected(version)
    return {"lost": sum(1 for k in want if (k, version) not in seen), "duplicated": sum(n - 1 for n in keys.values()),
            "stale": sum(n for (k, tag), n in seen.items() if tag != version), "verify": len(verify(out)[0])}


class Campaign:
    def __init__(self, code: Path, rng: random.Random) -> None:
        self.code, self.rng, self.refused = code, rng, 0
        self.env = dict(os.environ, PYTHONPATH=str(code))

    def start(self, out: Path, version: str, slow: float = 0.01) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(HERE), "build", str(out), version, str(slow)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def run(self, out: Path, version: str) -> int:
        p = self.start(out, version, 0.0)
        p.communicate()
        return p.returncode

    def kill_after(self, out: Path, version: str, lo: float, hi: float) -> None:
        p = self.start(out, version)
        time.sleep(self.rng.uniform(lo, hi))
        p.send_signal(signal.SIGKILL)
        p.communicate()

    def kills(self, out: Path) -> str:
        for _ in range(3):
            self.kill_after(out, "v1", 0.5, 2.5)
        self.run(out, "v1")
        return "v1"

    def concurrent(self, out: Path) -> str:
        a, b = self.start(out, "v1"), self.start(out, "v1")
        errs = [a.communicate()[1], b.communicate()[1]]
        self.refused += sum("is being built by" in e for e in errs)
        self.run(out, "v1")  # whatever the race left, one more plain run must settle it
        return "v1"

    def corrupt(self, out: Path) -> str:
        self.run(out, "v1")
        idx = json.loads((out / "dataset.json").read_text())
        shard = out / self.rng.choice(idx["shards"])["path"]
        what = self.rng.choice(["truncate", "delete", "zero", "manifest"])
        if what == "truncate":
            shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
        elif what == "delete":
            shard.unlink()
        elif what == "zero":
            with tarfile.open(shard) as tar:
                m = next(m for m in tar.getmembers() if m.name.endswith(".v.npy"))
            data = bytearray(shard.read_bytes())
            data[m.offset_data + 128: m.offset_data + m.size] = bytes(m.size - 128)
            shard.write_bytes(bytes(data))
        else:
            (out / self.rng.choice([m for m in idx["manifests"] if m.get("samples")])["samples"]).unlink()
        subprocess.run([sys.executable, "-m", "pipelines.cli", "repair", str(out)], env=self.env, cwd=self.code,
                       capture_output=True, check=False)
        self.run(out, "v1")
        return "v1"

    def bump(self, out: Path) -> str:
        self.run(out, "v1")
        self.kill_after(out, "v2", 0.3, 1.5)
        self.run(out, "v2")
        return "v2"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "build":
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(HERE.parents[1])))
        sys.exit(build(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--code", default=str(HERE.parents[1]), help="checkout whose pipelines/ the builds use")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parents[1]))
    camp = Campaign(Path(args.code), random.Random(args.seed))
    totals = {k: Counter() for k in ("kills", "concurrent", "corrupt", "bump")}
    base = Path(tempfile.mkdtemp(prefix="campaign-"))
    for r in range(args.rounds):
        for name, totals_k in totals.items():
            out = base / f"{name}-{r}"
            version = getattr(camp, name)(out)
            totals_k.update(judge(out, version))
            totals_k["scenarios"] += 1
    shutil.rmtree(base, ignore_errors=True)
    from benchmarks.common import report

    rows = [[k, t["scenarios"], t["lost"], t["duplicated"], t["stale"], t["verify"]] for k, t in totals.items()]
    report("fault_campaign", f"Fault campaign, toy corpus of {N} inputs, {args.rounds} rounds, code {args.code}",
           ["scenario", "runs", "lost", "duplicated", "stale", "verify problems left"], rows,
           notes=f"concurrent builds refused with the holder named: {camp.refused} of {args.rounds * 2}")


if __name__ == "__main__":
    main()
