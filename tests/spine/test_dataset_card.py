"""The dataset card (README.md): its numbers are the live manifest's, every run rewrites it, nothing deletes it."""

from __future__ import annotations

import json
import re
import runpy
from collections import Counter

from pipelines.card import CARD, LICENCE_TODO
from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import DatasetFolder
from pipelines.verify import verify
from tests.spine.toy import Square, ToyConfig, toy_inputs


def _cfg(out):
    return ToyConfig(run=RunConfig(out=str(out), runner="sequential", progress=False, shard_max_samples=4))


def _section(card: str, title: str) -> str:
    return card.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(card: str, title: str) -> dict[str, int]:
    rows = re.findall(r"^\| (.+?) \| (\d+) \|$", _section(card, title), re.MULTILINE)
    return {k: int(v) for k, v in rows}


def _manifest(root) -> dict:
    """What the card must say, computed here from the live rows (not from the card's code)."""
    live = DatasetFolder(root, "toy").live()
    rows = list(live.inputs.values())
    return {"inputs": len(rows), "accepted": sum(r["status"] == "accepted" for r in rows),
            "rejected": sum(r["status"] == "rejected" for r in rows), "samples": len(live.samples),
            "reasons": Counter(r["reason"] for r in rows if r["status"] == "rejected")}


def _check_counts(root, card: str) -> dict[str, int]:
    counts, want = _table(card, "Counts"), _manifest(root)
    problems, stats = verify(root)
    assert problems == []
    for k in ("inputs", "accepted", "rejected", "samples"):
        assert counts[k] == want[k] == stats[k], k
    assert counts["shards"] == stats["shards"]
    assert _table(card, "Reject reasons") == dict(want["reasons"])
    return counts


def test_card_counts_are_the_live_manifest_and_every_run_refreshes_it(tmp_path):
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 21)), [Square()])
    card = (tmp_path / CARD).read_text()
    assert _check_counts(tmp_path, card)["accepted"] == 16 and _table(card, "Reject reasons") == {"unlucky": 4}
    assert f"licence: {LICENCE_TODO}" in card

    # A changed output setting rebuilds all 20 inputs: their old rows are superseded, not counted twice.
    s = run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 25)), [Square(reject_every=4)])
    card = (tmp_path / CARD).read_text()
    counts = _check_counts(tmp_path, card)
    assert counts["inputs"] == 24 and counts["accepted"] == 18 and counts["rejected"] == 6
    assert counts["retired samples"] == 16 and _table(card, "Reject reasons") == {"unlucky": 6}
    assert s.run in _section(card, "Runs and inputs") and len(re.findall(r"\| complete \|", card)) == 2
    idx = (tmp_path / "dataset.json").read_text()
    assert CARD not in idx  # documentation, not data: never listed


def test_card_webdataset_snippet_reads_exactly_the_live_samples(tmp_path):
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 13)), [Square()])
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 13)), [Square(reject_every=3)])  # retires old samples
    card = (tmp_path / CARD).read_text()
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", card, re.DOTALL) if "wds.WebDataset" in b)
    (tmp_path / "load.py").write_text(snippet)
    keys = [s["__key__"] for s in runpy.run_path(str(tmp_path / "load.py"))["ds"]]
    live = DatasetFolder(tmp_path, "toy").live()
    assert sorted(keys) == sorted(live.samples) and len(keys) == 8  # 12 minus multiples of 3
    assert f"memcorpus train-check {tmp_path}" in card and "open_dataset(" in card


def test_user_licence_survives_the_rewrite(tmp_path):
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 6)), [Square()])
    card = tmp_path / CARD
    card.write_text(card.read_text().replace(f"licence: {LICENCE_TODO}", "licence: CC BY 4.0 (our footage)"))
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 9)), [Square()])
    text = card.read_text()
    assert "licence: CC BY 4.0 (our footage)" in text and LICENCE_TODO not in text
    assert _table(text, "Counts")["inputs"] == 8


def test_recovery_keeps_the_card_and_removes_debris(tmp_path):
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 6)), [Square()])
    before = (tmp_path / CARD).read_bytes()
    folder = DatasetFolder(tmp_path, "toy")
    crashed = "20990101T000000-dead"
    folder.begin_run(crashed)  # a run that registered itself and then died mid-shard
    debris = tmp_path / "shards" / f"toy-{crashed}-000000.tar.tmp"
    debris.write_bytes(b"half a tar")
    removed = folder.recover()
    assert removed == [f"shards/{debris.name}"]
    assert (tmp_path / CARD).read_bytes() == before
    assert verify(tmp_path)[0] == []


def test_multicam_card_names_schema_version_both_layouts_and_sources(multicam_demo_dataset):
    card = (multicam_demo_dataset / CARD).read_text()
    idx = json.loads((multicam_demo_dataset / "dataset.json").read_text())
    schema = _section(card, "Schema")
    assert f"version {idx['schema']['version']}" in schema and idx["schema"]["name"] == "multicam"
    assert "layout multicam:" in schema and "layout cam:" in schema and "poses.npy" in schema
    assert "arXiv 2601.16296" in card and "Context as Memory" in card
    runs = _section(card, "Runs and inputs")
    assert "multicam=" in runs and "roams=" in runs  # the demo's generated input folders, from the run record
    problems, stats = verify(multicam_demo_dataset, quick=True)
    counts = _table(card, "Counts")
    assert problems == [] and all(counts[k] == stats[k] for k in ("inputs", "accepted", "rejected", "samples"))
    assert sum(_table(card, "Reject reasons").values()) == stats["rejected"] > 0
