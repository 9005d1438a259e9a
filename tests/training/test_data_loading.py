"""open_dataset reads a dataset folder written here with webdataset.TarWriter in the lead's format."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from stages.video import encode_mp4
from training.data import open_dataset, read_index


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _frames(t: int, level: int) -> np.ndarray:
    f = np.zeros((t, 16, 16, 3), np.uint8)
    f[..., 0] = level
    f[:, :, :, 1] = np.arange(t, dtype=np.uint8)[:, None, None] * 7
    return f


def write_dataset(root: Path, n_shards: int = 3, per_shard: int = 2) -> dict[str, dict]:
    """Señorita-like samples; returns ground truth by key."""
    (root / "shards").mkdir(parents=True)
    truth, shards = {}, []
    for s in range(n_shards):
        rel = f"shards/senorita_long-r1-{s:06d}.tar"
        with wds.TarWriter(str(root / rel)) as w:
            for j in range(per_shard):
                key = f"k{s}_{j}"
                dino = np.full((4, 8), s * 10 + j, np.float32)
                meta = {"instruction": f"make it {key}", "extension": {"memory_frames": [3, 6]}}
                w.write(
                    {
                        "__key__": key,
                        "json": json.dumps(meta).encode(),
                        "target_dino.npy": _npy(dino),
                        "source.mp4": encode_mp4(_frames(3, 40 * j + 20), fps=8),
                    }
                )
                truth[key] = {"meta": meta, "dino": dino, "level": 40 * j + 20}
        shards.append({"path": rel, "samples": per_shard, "bytes": (root / rel).stat().st_size, "run": "r1"})
    # A stray tar not listed in dataset.json (e.g. a crashed writer's leftover) must not be read.
    with wds.TarWriter(str(root / "shards" / "senorita_long-r2-000000.tar")) as w:
        w.write({"__key__": "stray", "json": b"{}"})
    index = {"format": "memcorpus/1", "corpus": "senorita_long", "shards": shards, "manifests": [], "runs": []}
    (root / "dataset.json").write_text(json.dumps(index))
    return truth


def test_open_dataset_reads_every_listed_sample_decoded(tmp_path):
    truth = write_dataset(tmp_path)
    got = {s["__key__"]: s for s in open_dataset(tmp_path)}
    assert set(got) == set(truth)
    for key, t in truth.items():
        s = got[key]
        assert s["json"] == t["meta"]
        np.testing.assert_array_equal(s["target_dino.npy"], t["dino"])
        frames = s["source.mp4"]
        assert frames.shape == (3, 16, 16, 3) and frames.dtype == np.uint8
        assert abs(float(frames[..., 0].mean()) - t["level"]) < 6  # lossy H.264, same picture


def test_split_by_rank_is_a_disjoint_cover(tmp_path):
    truth = write_dataset(tmp_path, n_shards=4)
    parts = [{s["__key__"] for s in open_dataset(tmp_path, decode=False, rank=r, world_size=2)} for r in range(2)]
    assert parts[0] and parts[1] and not parts[0] & parts[1]
    assert parts[0] | parts[1] == set(truth)


def test_shuffle_and_resample(tmp_path):
    truth = write_dataset(tmp_path, n_shards=3, per_shard=4)
    plain = [s["__key__"] for s in open_dataset(tmp_path, decode=False)]
    shuffled = [s["__key__"] for s in open_dataset(tmp_path, decode=False, shuffle=50, seed=3)]
    assert sorted(shuffled) == sorted(plain) and shuffled != plain
    stream = iter(open_dataset(tmp_path, decode=False, resampled=True))
    drawn = [next(stream)["__key__"] for _ in range(40)]  # more than one pass: resampling never ends
    assert set(drawn) <= set(truth) and len(drawn) == 40


def test_not_a_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="dataset.json"):
        read_index(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "other/9", "shards": []}))
    with pytest.raises(ValueError, match="memcorpus/1"):
        open_dataset(tmp_path)
