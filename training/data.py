"""Reading a dataset folder's shards as a stream of samples (WebDataset through ``dataset.json``).

The folder is a local path or any fsspec URI the pipelines write to (``file://``, ``memory://``,
``s3://`` with s3fs; endpoint and credentials the usual way, e.g. ``AWS_ENDPOINT_URL``): shards are
opened through fsspec, so what a build wrote to object storage trains without a copy.
``dataset.json`` lists only complete shards (the writer renames a shard into place before it
appends it), so reading through it never sees a half-written tar. Shards are split by
distributed rank and by DataLoader worker, so every process reads a disjoint part; with
``resampled=True`` each process instead draws shards at random forever (the usual training
mode: no epoch boundary, and ranks never run dry at different times, which would hang DDP).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from pipelines.names import check_index
from pipelines.schema import check_index_schema
from pipelines.storage import Storage
from stages.video import read_frames

# The shard side of the folder is the same in both (memcorpus/2 moved only the manifest: pipelines/manifest.py).
FORMATS = ("memcorpus/2", "memcorpus/1")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def read_index(root: str | Path) -> dict[str, Any]:
    """The parsed ``dataset.json`` of a dataset folder (local path or fsspec URI), checked for the format we read."""
    store = Storage(root)
    path = store.path("dataset.json")
    if not store.is_file("dataset.json"):
        raise ValueError(f"{root} is not a dataset folder: {path} does not exist (build a corpus first)")
    index = json.loads(store.read_bytes("dataset.json"))
    if index.get("format") not in FORMATS:
        raise ValueError(f"{path}: format {index.get('format')!r}, expected one of {list(FORMATS)}")
    check_index_schema(index, path)  # an older sample layout is one clear error, not empty examples
    # Shard paths are opened as files: one that leaves the folder (../, absolute, symlink) is refused.
    return check_index(index, path, store.root if store.local else None)


def _url(store: Storage, rel: str) -> str:
    """What ``__url__`` says for a shard: its absolute path locally, its full URI (with protocol) otherwise."""
    return str(Path(store.path(rel)).resolve()) if store.local else f"{store.root}/{rel}"


def _live_shards(root: str | Path) -> dict[str, frozenset[str]]:
    """Shard URL -> its retired sample keys, for shards that still hold live samples.

    A rebuild (new refresh key, retry, repair) never rewrites old shards: it lists the samples
    it replaced under the shard's ``retired`` keys, and repair marks unreadable shards
    ``damaged``. Training must read neither: stale samples would train on the old output.
    """
    store, out = Storage(root), {}
    for s in read_index(root).get("shards", []):
        retired = frozenset(s.get("retired", ()))
        if s.get("damaged") or (retired and len(retired) >= s.get("samples", 0)):
            continue
        out[_url(store, s["path"])] = retired
    return out


def shard_paths(root: str | Path) -> list[str]:
    """The complete shards with live samples, in the order ``dataset.json`` lists them: absolute paths for a
    local folder, URIs (``memory://…``, ``s3://…``) otherwise."""
    shards = list(_live_shards(root))
    if not shards:
        raise ValueError(f"{root}/dataset.json lists no shards yet")
    return shards


class _NotRetired:
    """webdataset ``select`` predicate: drops samples a rebuild retired (picklable for DataLoader workers)."""

    def __init__(self, retired: dict[str, frozenset[str]]) -> None:
        self.retired = {url: keys for url, keys in retired.items() if keys}

    def __call__(self, sample: dict[str, Any]) -> bool:
        return sample["__key__"] not in self.retired.get(sample.get("__url__", ""), ())


def _tar_samples(src: Iterable[dict], handler=wds.reraise_exception) -> Iterator[dict]:
    """webdataset's ``tarfile_to_samples`` with shards opened through fsspec (its own opener knows local
    files, pipes and a few URL schemes, not ``memory://`` or ``s3://``); each shard is closed when read."""

    def files() -> Iterator[dict]:
        for item in src:
            try:
                with fsspec.open(item["url"], "rb") as fh:
                    yield from tar_file_expander([{"url": item["url"], "stream": fh}], handler=handler)
            except Exception as exn:  # noqa: BLE001 - the handler decides, as webdataset's url_opener does
                exn.args = (*exn.args, item["url"])
                if not handler(exn):
                    return

    return group_by_keys(files(), handler=handler)


def decode_member(name: str, data: bytes) -> Any:
    """One tar member as a Python value: dict for json, ndarray for npy, (T,H,W,3) uint8 for mp4."""
    if name == "json" or name.endswith(".json"):
        return json.loads(data)
    if name.endswith(".npy"):
        return np.load(io.BytesIO(data), allow_pickle=False)
    if name.endswith(".mp4"):
        return read_frames(data)
    if name.endswith(IMAGE_EXTS):
        import cv2

        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"member {name!r} is not a decodable image")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if name.endswith(".txt"):
        return data.decode("utf-8")
    return data


def decode_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """Decode every member of a webdataset sample dict; ``__key__``/``__url__`` pass through."""
    return {k: v if k.startswith("__") else decode_member(k, v) for k, v in sample.items()}


def _split_by_node(rank: int | None, world_size: int | None):
    """Rank split; explicit rank/world win over what webdataset detects from torch.distributed."""
    if rank is None or world_size is None:
        return wds.split_by_node

    def split(src: Iterable) -> Iterator:
        for i, item in enumerate(src):
            if i % world_size == rank:
                yield item

    return split


def open_dataset(
    root: str | Path,
    *,
    shuffle: int = 0,
    resampled: bool = False,
    decode: bool = True,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    handler=wds.reraise_exception,
) -> wds.DataPipeline:
    """Iterate the samples of a dataset folder (local path or fsspec URI) as dicts.

    ``shuffle``: size of the sample shuffle buffer (0 keeps shard order, and the shard list
    is then not shuffled either). ``resampled``: draw shards with replacement, forever.
    ``decode``: json -> dict, npy -> ndarray, mp4 -> (T, H, W, 3) uint8, jpg/png -> (H, W, 3).
    ``rank``/``world_size`` override the distributed split (default: torch.distributed/env).
    """
    live_shards = _live_shards(root)
    urls = list(live_shards)
    if not urls:
        raise ValueError(f"{root}/dataset.json lists no shards yet")
    live = _NotRetired(live_shards)
    if resampled:
        # Each worker seeds its own draw (rank and worker enter the seed), so no split needed.
        stages: list = [wds.ResampledShards(urls, seed=seed, deterministic=True)]
    else:
        stages = [wds.SimpleShardList(urls, seed=seed if shuffle else None)]
        stages += [_split_by_node(rank, world_size), wds.split_by_worker]
    stages.append(wds.pipelinefilter(_tar_samples)(handler=handler))
    if live.retired:
        stages.append(wds.select(live))
    if shuffle:
        stages.append(wds.shuffle(shuffle, initial=min(shuffle, 100), seed=seed))
    if decode:
        stages.append(wds.map(decode_sample, handler=handler))
    return wds.DataPipeline(*stages)
