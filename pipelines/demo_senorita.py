"""Señorita-format demo pairs made in code: moving objects, a visible edit, and broken pairs.

Each good pair is a 33-frame source clip and its edited target: a textured background that
pans, a moving object, and in the target the object recoloured or swapped for another
shape, as Señorita-2M's local edits are. The broken pairs each exercise one reject reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stages.video import encode_mp4

# reason each broken pair must end with (tests assert these)
BROKEN = {
    "missing_target": "missing_file",
    "zero_byte": "empty_file",
    "wrong_frame_count": "wrong_frame_count",
    "undecodable": "undecodable",
}
EDITS = [("recolour", "Turn the red ball blue."), ("swap", "Replace the red ball with a green square.")]


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w * 2]
    f1, f2 = rng.uniform(0.05, 0.2, size=2)
    base = 110 + 50 * np.sin(xx * f1) * np.cos(yy * f2)
    img = np.stack([base, base * 0.9 + 20, 160 - base * 0.3], axis=-1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def make_clip(frames: int, h: int, w: int, seed: int, edit: str | None) -> np.ndarray:
    """``(frames, h, w, 3)`` uint8: panning background, a ball moving across; ``edit`` alters it."""
    rng = np.random.default_rng(seed)
    bg = _background(h, w, rng)
    x0, y0 = rng.uniform(0.2, 0.4) * w, rng.uniform(0.3, 0.7) * h
    vx, vy = rng.uniform(0.8, 1.6), rng.uniform(-0.6, 0.6)
    r = max(3, min(h, w) // 8)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        img = bg[:, t : t + w].copy()  # the camera pans one pixel per frame
        cx, cy = x0 + vx * t, y0 + vy * t
        if edit == "swap":
            mask = (abs(xx - cx) < r) & (abs(yy - cy) < r)
            img[mask] = (40, 200, 60)
        else:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            img[mask] = (40, 60, 220) if edit == "recolour" else (220, 40, 40)
        out[t] = img
    return out


def write_demo(root: str | Path, n_pairs: int = 6, size: tuple[int, int] = (128, 96), fps: float = 16.0,
               frames: int = 33, broken: bool = True) -> Path:
    """Write clips under ``root/videos`` and the metadata list ``root/pairs.json``; returns its path."""
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    w, h = size
    records = []
    for i in range(n_pairs):
        kind, instruction = EDITS[i % len(EDITS)]
        src, tgt = f"videos/{i:04d}_source.mp4", f"videos/{i:04d}_target.mp4"
        (root / src).write_bytes(encode_mp4(make_clip(frames, h, w, seed=i, edit=None), fps))
        (root / tgt).write_bytes(encode_mp4(make_clip(frames, h, w, seed=i, edit=kind), fps))
        records.append({"source_video_path": src, "target_video_path": tgt, "instruction": instruction,
                        "enhanced_instruction": f"{instruction} Keep the background unchanged."})
    if broken:
        good_src = records[0]["source_video_path"]
        for name in BROKEN:
            tgt = f"videos/broken_{name}_target.mp4"
            if name == "zero_byte":
                (root / tgt).write_bytes(b"")
            elif name == "wrong_frame_count":
                (root / tgt).write_bytes(encode_mp4(make_clip(frames - 13, h, w, seed=99, edit="recolour"), fps))
            elif name == "undecodable":
                (root / tgt).write_bytes(np.random.default_rng(7).bytes(4096))
            records.append({"source_video_path": good_src, "target_video_path": tgt,
                            "instruction": f"broken pair: {name}", "enhanced_instruction": ""})
    pairs = root / "pairs.json"
    pairs.write_text(json.dumps(records, indent=1))
    return pairs
