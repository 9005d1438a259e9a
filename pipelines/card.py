"""The dataset card: ``README.md`` at the top of a dataset folder, rewritten at the end of every run.

It says which corpus the folder holds and which paper defines it, where the inputs came from
(each run's input counts and source locations, from its redacted run record), the counts and
reject reasons, the sample schema, how to load the shards, and how to read the manifest tables
(which file is authoritative, and the live rows for glob readers). Counts come from the live
manifest state (pipelines/live.py): an input rebuilt by a later run counts once, with its
latest row, and retired samples are not counted.

The card is not listed in ``dataset.json``: it is documentation, not data. Recovery leaves
it alone (it deletes only debris named after a registered run, and never top-level files the
index does not name: pipelines/recovery.py), and verify reads only what the index lists. The
licence line is the one line the user fills in; a rewrite keeps what they wrote there.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.dataset import INDEX, DatasetFolder
from pipelines.live import fully_retired, retired_pairs
from pipelines.manifest import LIVE_INPUTS_SQL, LIVE_SAMPLES_SQL, entry_table
from pipelines.schema import describe, schema_for
from pipelines.storage import Storage

__all__ = ["CARD", "LICENCE_TODO", "render_card", "write_card"]

CARD = "README.md"
LICENCE_TODO = "FILL IN — the licence of your input footage/pairs"
_LICENCE = re.compile(r"^licence:[ \t]*(.*?)[ \t]*$", re.MULTILINE)

_V2V = '"Memory-V2V: Memory-Augmented Video-to-Video Diffusion for Consistent Multi-Turn Editing", arXiv 2601.16296'
_CAM = '"Context as Memory: Scene-Consistent Interactive Long Video Generation with Memory Retrieval"'


@dataclass(frozen=True)
class CorpusInfo:
    title: str
    about: str
    sources: tuple[str, ...]  # top-level config keys that name the input locations


CORPORA = {
    "senorita_long": CorpusInfo(
        "Señorita-Long",
        f"Long-video editing pairs for Memory-V2V ({_V2V}, §3.4, App. E.2): Señorita-2M editing pairs whose "
        "33-frame target is extended by 200 FramePack frames (233 frames, frames 33–232 marked as memory), with "
        "DINOv2 segment descriptors.",
        ("pairs", "root")),
    "memento": CorpusInfo(
        "Memento",
        '"Memento: Reconstruct to Remember for Consistent Long Video Generation" (arXiv 2606.14667, §3.1): '
        "30–60 s multi-shot sequences of shots longer than 5 s cut from long footage, subtitles cropped away, "
        "with a tracked primary subject, two reconstruction frames and story / shot / reconstruction captions.",
        ("footage",)),
    "multicam": CorpusInfo(
        "Multi-camera memory",
        f"Multi-camera scenes for Memory-V2V novel view synthesis ({_V2V}, §3.2) with normalised camera poses, "
        f"VideoFOV bitsets and pairwise retrieval scores, and long single-camera roams for {_CAM} with per-frame "
        "co-visibility lists.",
        ("multicam", "roams", "views")),
}


def write_card(folder: DatasetFolder | str | Path) -> str:
    """Write ``README.md`` for the dataset in ``folder`` (a DatasetFolder or its root) atomically; return it."""
    folder = _as_folder(folder)
    old = folder.store.read_bytes(CARD).decode(errors="replace") if folder.store.is_file(CARD) else ""
    m = _LICENCE.search(old)
    text = render_card(folder, licence=m.group(1) if m and m.group(1) else LICENCE_TODO)
    folder.store.write_atomic(CARD, text.encode())
    return text


def render_card(folder: DatasetFolder, licence: str = LICENCE_TODO) -> str:
    idx = folder.index()
    status, reasons, samples = _live_counts(folder.store, idx)
    counts = {
        "inputs": sum(status.values()),
        "accepted": status.get("accepted", 0),
        "rejected": status.get("rejected", 0),
        "samples": samples,
        "shards": len(idx["shards"]),
        "shards with live samples": sum(not fully_retired(s) for s in idx["shards"]),
        "retired samples": len(retired_pairs(idx)),
        "queued for rebuild": len(idx.get("requeue") or {}),
    }
    info = CORPORA.get(folder.corpus, CorpusInfo(folder.corpus, f"Corpus `{folder.corpus}`.", ()))
    runs = [_run_line(folder, r, info.sources) for r in idx.get("runs", [])]
    out = [
        f"# {info.title} (memcorpus dataset)", "",
        info.about, "",
        ("Built by memcorpus. This card is rewritten at the end of every run of the build; the licence line "
         "is kept, edit nothing else here."), "",
        "## Licence", "",
        f"licence: {licence}", "",
        "## Counts", "",
        ("The live manifest state: an input rebuilt by a later run counts once (its latest row); samples a "
         "rebuild replaced (retired) are not counted."), "",
        "| count | value |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in counts.items()), "",
        "## Reject reasons", "",
        "| reason | inputs |", "|---|---|",
        *(f"| {_cell(k)} | {v} |" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))), "",
        "## Runs and inputs", "",
        ("Each run's counts are what that run saw; sources are the input locations from its run record "
         "(credentials redacted)."), "",
        "| run | finished | state | inputs | processed | accepted | rejected | sources |",
        "|---|---|---|---|---|---|---|---|",
        *runs, "",
        "## Schema", "",
        *_schema_lines(folder.corpus), "",
        "## Loading", "",
        *_loading_lines(str(folder.root)), "",
        "## Manifest", "",
        *_manifest_lines(),
    ]
    return "\n".join(out) + "\n"


def _live_counts(store: Storage, idx: dict[str, Any]) -> tuple[Counter, Counter, int]:
    """Live inputs by status, live reject reasons and the number of live sample keys, as
    ``DatasetFolder.live()`` defines them (pipelines/live.py), computed on Arrow columns: the card is
    written at the end of every run and must not hold every manifest row as Python objects."""
    inputs = entry_table(store, idx, "inputs", ["id", "status", "reason"])
    order = pa.array(range(len(inputs)), pa.int64())
    last = inputs.append_column("_n", order).group_by("id").aggregate([("_n", "max")])["_n_max"]
    live = inputs.take(last)
    status = Counter(dict(zip(*_value_counts(live["status"]))))
    rejected = pc.filter(pc.fill_null(live["reason"], ""), pc.equal(live["status"], "rejected"))
    reasons = Counter({k or "(none)": v for k, v in zip(*_value_counts(rejected))})
    samples = entry_table(store, idx, "samples", ["key", "shard"])
    listed = pa.array(sorted(s["path"] for s in idx.get("shards", [])), pa.string())
    keep = pc.is_in(samples["shard"], value_set=listed)
    gone = retired_pairs(idx)
    if gone:
        pair = pc.binary_join_element_wise(samples["shard"], samples["key"], "\x00")
        dead = pa.array(sorted(f"{s}\x00{k}" for s, k in gone), pa.string())
        keep = pc.and_(keep, pc.invert(pc.is_in(pair, value_set=dead)))
    n_samples = len(pc.unique(pc.filter(samples["key"], keep))) if len(samples) else 0
    return status, reasons, n_samples


def _value_counts(col: Any) -> tuple[list, list]:
    vc = pc.value_counts(col)
    return vc.field("values").to_pylist(), vc.field("counts").to_pylist()


def _as_folder(folder: DatasetFolder | str | Path) -> DatasetFolder:
    if isinstance(folder, DatasetFolder):
        return folder
    store = Storage(folder)
    if not store.is_file(INDEX):
        raise ValueError(f"{store.root}: no {INDEX}, not a dataset folder (the card describes a built dataset)")
    return DatasetFolder(folder, json.loads(store.read_bytes(INDEX))["corpus"])


def _run_line(folder: DatasetFolder, entry: Any, source_keys: tuple[str, ...]) -> str:
    if isinstance(entry, str):  # indexes from before runs carried records
        return f"| {_cell(entry)} | — | complete | — | — | — | — | not recorded |"
    name, rec = entry.get("run", ""), {}
    if entry.get("record") and folder.store.is_file(entry["record"]):
        rec = json.loads(folder.store.read_bytes(entry["record"]))
    state = ("running" if not entry.get("complete") else "interrupted (Ctrl-C), committed parts kept"
             if entry.get("interrupted") else "crashed, committed parts kept" if entry.get("crashed") else "complete")
    c = rec.get("counts") or {}
    nums = " | ".join(str(c.get(k, "—")) for k in ("inputs", "processed", "accepted", "rejected"))
    return f"| {_cell(name)} | {_cell(rec.get('finished_at', '—'))} | {state} | {nums} | " \
           f"{_cell(_sources(rec.get('config'), source_keys))} |"


def _sources(config: Any, keys: tuple[str, ...]) -> str:
    from pipelines.common import redact  # pipelines.common calls write_card: import at use, not at load

    if not isinstance(config, dict) or not keys:
        return "not recorded"
    config = redact(config)
    got = [f"{k}={config[k]}" for k in keys if config.get(k)]
    return ", ".join(got) if got else "generated demo inputs (no input location configured)"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _schema_lines(corpus: str) -> list[str]:
    schema = schema_for(corpus)
    if schema is None:
        return [f"No sample schema is recorded for corpus `{corpus}`."]
    return [(f"Sample schema `{schema.corpus}` version {schema.version} (recorded in `dataset.json` as "
             f"`{json.dumps(schema.ref)}`; a reader of another version refuses the folder). Members per layout "
             "(`{camera}` is one member per camera; shapes name shared dimensions):"), "",
            "```text", describe(corpus), "```"]


def _manifest_lines() -> list[str]:
    return [
        ("`dataset.json` is authoritative: it lists every committed shard and manifest part, and the samples later "
         "builds retired. Each folder under `manifest/` is one Parquet table, one file per commit: `inputs` (a row "
         "per input per build), `samples` (a row per written sample), `rejects` (a row per rejected sample). Read one "
         "whole with `pandas.read_parquet(\"manifest/inputs\")`, `ray.data.read_parquet(...)` or DuckDB "
         "`read_parquet('manifest/inputs/*.parquet')`; files being committed are hidden (`.`-names) until "
         "`dataset.json` lists them."), "",
        ("The tables keep every row ever committed, rows a rebuild superseded included. The live ones (what "
         "`memcorpus verify` proves and training reads), in DuckDB from this folder (samples `memcorpus repair` "
         "retired as damaged are known to `dataset.json` only):"), "",
        "```sql", f"-- live inputs\n{LIVE_INPUTS_SQL};", f"-- live samples\n{LIVE_SAMPLES_SQL};", "```",
    ]


def _loading_lines(root: str) -> list[str]:
    return [
        "With memcorpus (reads `dataset.json`, skips retired samples, decodes json / npy / mp4):", "",
        "```python", "from training.data import open_dataset", "",
        f"for sample in open_dataset({json.dumps(root)}):",
        "    print(sample[\"__key__\"], sorted(sample))", "```", "",
        "With plain `webdataset` over the shard list in `dataset.json`:", "",
        "```python", "import json", "", "import webdataset as wds", "",
        f"root = {json.dumps(root)}",
        "index = json.load(open(f\"{root}/dataset.json\"))",
        "shards = [s for s in index[\"shards\"] if not s.get(\"damaged\")]",
        "urls = [f\"{root}/{s['path']}\" for s in shards]",
        "retired = {(f\"{root}/{s['path']}\", k) for s in shards for k in s.get(\"retired\", ())}  # rebuilt since",
        "ds = wds.WebDataset(urls, shardshuffle=False).select(lambda s: (s[\"__url__\"], s[\"__key__\"]) not in retired)",
        "```", "",
        "Check the folder and the hand-over to the trainer:", "",
        "```bash", f"memcorpus verify {shlex.quote(root)}", f"memcorpus train-check {shlex.quote(root)}", "```",
    ]
