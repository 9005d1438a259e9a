"""Pair lists and footage listings read as streams: chunk descriptors on the driver, records on workers.

A pair list may hold millions of records (Señorita-2M). The driver reads it once, front to
back, keeping only where each chunk starts and ends (a byte range of a JSON list or JSON
Lines file, a slice of a Parquet row group); an ingest task re-reads its own range and
parses just those records. Driver memory is one read buffer plus one small tuple per chunk,
whatever the number of records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

from pipelines.ingest import CHUNK, Ingest, chunk_sizes
from stages.base import Sample

_BLOCK = 1 << 20
_WS = b" \t\r\n"


def _format(path: str) -> str:
    low = path.lower()
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    with fsspec.open(path, "rb") as f:
        head = f.read(1 << 16).lstrip()
    if head.startswith(b"["):
        return "json"
    if low.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    try:  # JSON Lines has a whole object on its first line; a dict wrapping the list does not
        first = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return "wrapped"
    return "wrapped" if isinstance(first, dict) and isinstance(first.get("pairs", first.get("data")), list) \
        else "jsonl"


def _wrapped_ranges(path: str, chunk: int) -> Iterator[tuple[int, int, list, int]]:
    """A dict wrapping the list ({"pairs": [...]}) cannot be streamed: read whole, records in the descriptors."""
    from stages.senorita import load_pairs

    records, i, sizes = load_pairs(path), 0, chunk_sizes(chunk)
    while i < len(records):
        part = records[i:i + next(sizes)]
        yield i, len(part), part, 0
        i += len(part)


def _json_list_ranges(path: str, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """(first record, count, start byte, end byte) of every ``chunk`` elements of a top-level JSON list."""
    import codecs

    dec, utf8 = json.JSONDecoder(), codecs.getincrementaldecoder("utf-8")()
    with fsspec.open(path, "rb") as f:
        text, pos, at, eof = "", 0, 0, False  # ``at``: the byte offset of text[pos]

        def fill() -> bool:
            nonlocal text, eof
            more = f.read(_BLOCK)
            eof = not more
            text += utf8.decode(more, final=eof)
            return bool(more)

        def advance(to: int) -> None:
            nonlocal pos, at
            at += len(text[pos:to].encode("utf-8"))
            pos = to

        fill()
        advance(len(text) - len(text.lstrip()))
        if text[pos:pos + 1] != "[":
            raise ValueError(f"{path}: expected a JSON list of pair records")
        advance(pos + 1)
        n, first, start, sizes = 0, 0, None, chunk_sizes(chunk)
        size = next(sizes)
        while True:
            while True:  # skip separators, reading on when the buffer runs out
                i = pos
                while i < len(text) and text[i] in " \t\r\n,":
                    i += 1
                advance(i)
                if pos < len(text) or not fill():
                    break
            if pos >= len(text):
                raise ValueError(f"{path}: the JSON list is not closed")
            if text[pos] == "]":
                break
            if start is None:
                start = at
            while True:
                try:
                    _, end = dec.raw_decode(text, pos)
                    break
                except ValueError:
                    if eof or not fill():
                        raise ValueError(f"{path}: record {n} is not valid JSON") from None
            advance(end)
            n += 1
            if n - first == size:
                yield first, n - first, start, at
                first, start, size = n, None, next(sizes)
            if pos > _BLOCK:  # drop what is behind us: memory stays about one block
                text, pos = text[pos:], 0
        if start is not None:
            yield first, n - first, start, at


def _jsonl_ranges(path: str, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    sizes = chunk_sizes(chunk)
    size = next(sizes)
    with fsspec.open(path, "rb") as f:
        n, first, start, pos = 0, 0, 0, 0
        for line in f:
            pos += len(line)
            if not line.strip():
                if n == first:
                    start = pos
                continue
            n += 1
            if n - first == size:
                yield first, n - first, start, pos
                first, start, size = n, pos, next(sizes)
        if n > first:
            yield first, n - first, start, pos


def _parquet_ranges(path: str, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """(first record, count, row group, offset inside it)."""
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as f:
        meta = pq.ParquetFile(f).metadata
    first, sizes = 0, chunk_sizes(chunk)
    for g in range(meta.num_row_groups):
        rows, k = meta.row_group(g).num_rows, 0
        while k < rows:
            size = min(next(sizes), rows - k)
            yield first + k, size, g, k
            k += size
        first += rows


def read_records(path: str, fmt: str, desc: tuple[int, int, int, int]) -> list[Any]:
    """The records of one chunk (on a worker)."""
    _, count, a, b = desc
    if fmt == "wrapped":
        return a
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as f:
            table = pq.ParquetFile(f).read_row_group(a)
        return table.slice(b, count).to_pylist()
    with fsspec.open(path, "rb") as f:
        f.seek(a)
        data = f.read(b - a)
    if fmt == "jsonl":
        return [json.loads(line) for line in data.splitlines() if line.strip()]
    dec, text, out, i = json.JSONDecoder(), data.decode("utf-8"), [], 0
    while len(out) < count:
        while text[i] in " \t\r\n,":
            i += 1
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


class PairList(Ingest):
    """Señorita-2M style pair records from a JSON list, JSON Lines or Parquet file (path or fsspec URI)."""

    def __init__(self, pairs: str, root: str, chunk: int = CHUNK) -> None:
        self.pairs, self.root, self.chunk = str(pairs), str(root), chunk
        try:
            self.fmt = _format(self.pairs)
        except OSError as e:
            raise ValueError(f"--pairs {self.pairs}: cannot read ({e})") from e

    def descriptors(self) -> Iterator[tuple[int, int, int, int]]:
        ranges = {"json": _json_list_ranges, "jsonl": _jsonl_ranges, "parquet": _parquet_ranges,
                  "wrapped": _wrapped_ranges}[self.fmt]
        try:
            yield from ranges(self.pairs, self.chunk)
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"--pairs {self.pairs}: cannot read a list of pairs ({e})") from e

    def samples(self, desc: tuple[int, int, int, int]) -> list[Sample]:
        from stages.senorita import pair_inputs

        return list(pair_inputs(read_records(self.pairs, self.fmt, desc), self.root, start=desc[0]))


class FootageListing(Ingest):
    """Every video file under a folder (local path or fsspec URI), in name order; ids from the bytes."""

    def __init__(self, root: str | Path, extensions: tuple[str, ...], chunk: int = 16) -> None:
        self.root, self.extensions, self.chunk = str(root), tuple(e.lower() for e in extensions), chunk

    def descriptors(self) -> Iterator[list[str]]:
        fs, base = fsspec.core.url_to_fs(self.root)
        names = sorted(p for p in fs.find(base) if Path(p).suffix.lower() in self.extensions)
        local, i, sizes = "://" not in self.root, 0, chunk_sizes(self.chunk)
        while i < len(names):
            part = names[i:i + next(sizes)]
            yield [p if local else fs.unstrip_protocol(p) for p in part]
            i += len(part)

    def samples(self, desc: list[str]) -> list[Sample]:
        from stages.ids import content_id

        return [Sample(id=content_id([p]), source={"path": p}) for p in desc]
