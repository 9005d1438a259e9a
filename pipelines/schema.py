"""One sample schema per corpus: the contract between the corpus writers and the training reader.

Each corpus names its sample layouts (a multi-camera dataset holds scenes and roams), and for
each layout the tar members (name, kind, dtype and shape for arrays, required or optional) and the
JSON fields the trainer relies on. The writer checks every sample before it is written (a
mismatch is a ``schema_violation`` reject, never a silent bad shard), ``memcorpus verify`` checks
every sample in every shard, and ``dataset.json`` records ``{"name": corpus, "version": N}`` so a
reader meets an older dataset with one clear error instead of empty conditioning.

Shapes use symbols bound per sample: ``C`` = len(meta["cameras"]), ``F`` = meta["frames"],
``N`` = any length shared by the members that name it, ``*`` = anything.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Member:
    name: str  # after the sample key; "{camera}" expands to every name in meta["cameras"]
    dtype: str | None = None  # .npy only
    shape: tuple[int | str, ...] | None = None  # .npy only
    required: bool = True


@dataclass(frozen=True)
class Layout:
    name: str
    members: tuple[Member, ...]
    fields: dict[str, type | tuple[type, ...]] = field(default_factory=dict)  # required JSON fields


@dataclass(frozen=True)
class CorpusSchema:
    corpus: str
    version: int
    layouts: dict[str, Layout]
    changes: str  # what the current version changed, for the upgrade message

    def layout_of(self, meta: dict[str, Any]) -> Layout:
        if len(self.layouts) == 1:
            return next(iter(self.layouts.values()))
        name = meta.get("layout")
        if name not in self.layouts:
            raise KeyError(f"meta.layout {name!r} is not one of {sorted(self.layouts)}")
        return self.layouts[name]

    @property
    def ref(self) -> dict[str, Any]:
        return {"name": self.corpus, "version": self.version}


_NUM = (int, float)
SENORITA = CorpusSchema("senorita_long", 1, {"pair": Layout("pair", (
    Member("source.mp4"), Member("target.mp4"), Member("target_extended.mp4"),
    Member("source_dino.npy", "float32", ("N", "*")), Member("target_dino.npy", "float32", ("M", "*")),
    Member("target_query_dino.npy", "float32", (1, "*")),
), {"instruction": str, "fps": _NUM, "frames": int, "extension": dict, "segments": dict})},
    changes="first recorded version")
MEMENTO = CorpusSchema("memento", 1, {"sequence": Layout("sequence", (
    Member("clip.mp4"), Member("recon0.jpg", required=False), Member("recon1.jpg", required=False),
), {"fps": _NUM, "frames": int, "shots": list, "captions": dict, "tracking": dict})},
    changes="first recorded version")
MULTICAM = CorpusSchema("multicam", 2, {
    "multicam": Layout("multicam", (
        Member("{camera}.mp4"), Member("poses.npy", "float32", ("C", "F", 4, 4)),
        Member("poses_self.npy", "float32", ("C", "F", 4, 4)), Member("intrinsics.npy", "float32", (3, 3)),
        Member("fov.npy", "uint8", ("C", "*")), Member("scores.npy", "float32", ("C", "C")),
    ), {"cameras": list, "frames": int, "fps": _NUM, "width": int, "height": int, "videofov": dict}),
    "cam": Layout("cam", (
        Member("roam.mp4", required=False), Member("poses.npy", "float32", ("F", 4, 4)),
        Member("intrinsics.npy", "float32", (3, 3)), Member("covis_offsets.npy", "int64", ("F+1",)),
        Member("covis_frames.npy", "int32", ("R",)), Member("covis_run_start.npy", "int32", ("R",)),
        Member("covis_run_len.npy", "int32", ("R",)),
    ), {"frames": int, "fps": _NUM, "width": int, "height": int, "covisibility": dict}),
    "frames": Layout("frames", (
        Member("poses.npy", "float32", ("F", 4, 4)), Member("registered.npy", "uint8", ("F",)),
        Member("intrinsics.npy", "float32", (3, 3), required=False),
    ), {"frames": int, "width": int, "height": int}),
}, changes="scene poses, own-frame poses and VideoFOV bitsets are one stacked array per scene "
           "(poses.npy, poses_self.npy, fov.npy) instead of one member per camera")
SCHEMAS = {s.corpus: s for s in (SENORITA, MEMENTO, MULTICAM)}


def schema_for(corpus: str) -> CorpusSchema | None:
    """The schema of a corpus name (``senorita_long``, ``memento``, ``multicam``); None for others (toys)."""
    return SCHEMAS.get(corpus)


def check_index_schema(index: dict[str, Any], where: str) -> None:
    """Refuse a dataset written under another schema version, naming both versions and what changed."""
    cur = schema_for(index.get("corpus", ""))
    if cur is None:
        return
    got = index.get("schema") or {"name": cur.corpus, "version": 1}  # datasets from before versioning
    if got.get("name") != cur.corpus or got.get("version") != cur.version:
        raise ValueError(
            f"{where}: written with sample schema {got.get('name')}/{got.get('version')}, this memcorpus reads "
            f"{cur.corpus}/{cur.version} ({cur.changes}). Rebuild it into a new --out with the same inputs "
            f"(the build reuses nothing across schema versions), or read it with the memcorpus that wrote it."
        )


def npy_header(data: bytes) -> tuple[str, tuple[int, ...]]:
    """(dtype name, shape) of a .npy payload from its header alone (no array is materialised)."""
    f = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    return np.dtype(dtype).name, tuple(shape)


def _bind(dim: int | str, size: int, env: dict[str, int]) -> bool:
    if dim == "*":
        return True
    if isinstance(dim, int):
        return dim == size
    if dim.endswith("+1"):
        dim, size = dim[:-2], size - 1
    if dim in env:
        return env[dim] == size
    env[dim] = size
    return True


def check_sample(corpus: str, meta: dict[str, Any], members: dict[str, tuple[str, tuple[int, ...]] | None]) -> list[str]:
    """Problems of one sample against its corpus schema; [] when it conforms or the corpus has no schema.

    ``members``: member name -> (dtype, shape) for .npy members, None for the others (present, opaque).
    """
    schema = schema_for(corpus)
    if schema is None:
        return []
    try:
        layout = schema.layout_of(meta)
    except KeyError as e:
        return [str(e.args[0])]
    problems = []
    for name, kind in layout.fields.items():
        if name not in meta:
            problems.append(f"json field {name!r} missing")
        elif not isinstance(meta[name], kind) or isinstance(meta[name], bool) and kind is not bool:
            problems.append(f"json field {name!r} is {type(meta[name]).__name__}")
    cams = meta.get("cameras") if isinstance(meta.get("cameras"), list) else []
    env: dict[str, int] = {"C": len(cams)} if cams else {}
    if isinstance(meta.get("frames"), int):
        env["F"] = meta["frames"]
    expected: dict[str, Member] = {}
    for m in layout.members:
        for name in ([m.name.format(camera=c) for c in cams] if "{camera}" in m.name else [m.name]):
            expected[name] = m
    for name, m in expected.items():
        if name not in members:
            if m.required:
                problems.append(f"member {name} missing")
            continue
        if m.dtype is None:
            continue
        got = members[name]
        if got is None:
            problems.append(f"member {name}: not a readable .npy")
            continue
        dtype, shape = got
        if dtype != m.dtype:
            problems.append(f"member {name}: dtype {dtype}, schema says {m.dtype}")
        if len(shape) != len(m.shape) or not all(_bind(d, n, env) for d, n in zip(m.shape, shape)):
            problems.append(f"member {name}: shape {shape}, schema says {m.shape} with {env}")
    extra = sorted(set(members) - set(expected) - {"json"})
    if extra:
        problems.append(f"members not in schema {schema.corpus}/{schema.version} layout {layout.name}: {extra}")
    return problems


def describe(corpus: str) -> str:
    """The schema as text (for the dataset card and `memcorpus schema`)."""
    s = SCHEMAS[corpus]
    lines = [f"{s.corpus}/{s.version}"]
    for lay in s.layouts.values():
        lines.append(f"  layout {lay.name}: json fields {', '.join(lay.fields)}")
        for m in lay.members:
            arr = f" {m.dtype} {m.shape}" if m.dtype else ""
            lines.append(f"    {m.name}{arr}{'' if m.required else ' (optional)'}")
    return "\n".join(lines)

