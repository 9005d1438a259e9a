"""Bad input, made in code: one Señorita pair record per defect, with the reason it must end with.

``write_bad_pairs(root)`` writes a pair list where every record carries exactly one defect
(files, paths, metadata) next to a few good pairs, and returns the expected outcome of each
record: a reject reason, or ``"accepted"`` for input the pipeline must handle correctly
(rotated phone video, a valid clip under a misleading extension). The multi-camera and
caption kinds live beside their stages' tests (camera matrices, model answers).
"""

from __future__ import annotations

import io
import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipelines.demo_senorita import make_clip
from stages.video import encode_mp4

FPS = 16.0
HUGE = 400_000  # bytes of padding: run the pipeline with validate max_bytes below this


def _encode(frames: np.ndarray, fps: float = FPS, rotation: int = 0, pts: list[int] | None = None) -> bytes:
    """Like encode_mp4, plus a display rotation or explicit (irregular) timestamps in ms."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if pts is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts[i], Fraction(1, 1000)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return buf.getvalue()


def _audio_only() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        a = c.add_stream("aac", rate=16000)
        for _ in range(8):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate = 16000
            for pkt in a.encode(fr):
                c.mux(pkt)
        for pkt in a.encode():
            c.mux(pkt)
    return buf.getvalue()


def write_bad_pairs(root: str | Path, size: tuple[int, int] = (64, 48), frames: int = 33) -> tuple[Path, list[str]]:
    """Write ``root/pairs.json`` and its files; returns the path and the expected outcome per record."""
    root = Path(root)
    v = root / "videos"
    v.mkdir(parents=True, exist_ok=True)
    w, h = size
    good = encode_mp4(make_clip(frames, h, w, seed=1, edit=None), FPS)
    (v / "good_src.mp4").write_bytes(good)
    (v / "good_tgt.mp4").write_bytes(encode_mp4(make_clip(frames, h, w, seed=1, edit="recolour"), FPS))
    records: list[dict] = []
    expect: list[str] = []

    def pair(target_name: str | None, reason: str, data: bytes | None = None, src: str = "videos/good_src.mp4",
             **overrides) -> None:
        tgt = f"videos/{target_name}" if target_name else "videos/good_tgt.mp4"
        if data is not None:
            (root / tgt).write_bytes(data)
        rec = {"source_video_path": src, "target_video_path": tgt,
               "instruction": f"edit {len(records)}", "enhanced_instruction": ""}
        rec.update(overrides)
        records.append({k: v for k, v in rec.items() if v is not None})
        expect.append(reason)

    rng = np.random.default_rng(3)
    pair(None, "accepted")
    pair("zero_byte.mp4", "empty_file", b"")
    pair("truncated.mp4", "undecodable", good[: len(good) // 2])
    pair("random.mp4", "undecodable", rng.bytes(5000))
    pair("audio_only.mp4", "no_video_stream", _audio_only())
    pair("one_frame.mp4", "wrong_frame_count", encode_mp4(make_clip(1, h, w, seed=2, edit=None), FPS))
    pair("wide.mp4", "frame_too_large", encode_mp4(np.zeros((2, 16, 10000, 3), np.uint8), FPS))
    pair("bigger.mp4", "size_mismatch", encode_mp4(make_clip(frames, h + 2, w + 2, seed=2, edit=None), FPS))
    # sizes that are no multiple of 8/16: both clips agree, so FramePack must pad and crop back
    (v / "odd_src.mp4").write_bytes(encode_mp4(make_clip(frames, h + 2, w + 6, seed=8, edit=None), FPS))
    pair("odd_tgt.mp4", "accepted", encode_mp4(make_clip(frames, h + 2, w + 6, seed=8, edit="recolour"), FPS),
         src="videos/odd_src.mp4")
    pair("fps.mp4", "fps_mismatch", encode_mp4(make_clip(frames, h, w, seed=2, edit="recolour"), 25.0))
    vfr_pts = [int(i * 62.5 + (40 if i % 5 == 0 and i else 0)) for i in range(frames)]
    pair("vfr.mp4", "variable_frame_rate", _encode(make_clip(frames, h, w, seed=2, edit="recolour"), pts=vfr_pts))
    pair("rotated_tgt.mp4", "size_mismatch", _encode(make_clip(frames, h, w, seed=2, edit="recolour"), rotation=90))
    rot = make_clip(frames, h, w, seed=4, edit=None)  # a phone clip: stored landscape, displayed portrait
    (v / "rot_src.mp4").write_bytes(_encode(rot, rotation=90))
    pair("rot_tgt.mp4", "accepted", _encode(make_clip(frames, h, w, seed=4, edit="swap"), rotation=90),
         src="videos/rot_src.mp4")
    pair("clip.mov", "accepted", encode_mp4(make_clip(frames, h, w, seed=5, edit="swap"), FPS))
    pair("long.mp4", "wrong_frame_count", encode_mp4(make_clip(frames + 1, h, w, seed=9, edit="swap"), FPS))
    (v / "notes.mp4").write_text("this is a text file with a video extension\n")
    pair(None, "undecodable", src="videos/notes.mp4")
    pair("image.mp4", "wrong_frame_count", _png(make_clip(1, h, w, seed=6, edit=None)[0]))
    pair("missing.mp4", "missing_file")
    (v / "a_dir.mp4").mkdir(exist_ok=True)
    pair("a_dir.mp4", "not_a_file")
    pair("huge.mp4", "file_too_large", good + bytes(HUGE))  # over the test's lowered ValidatePair.max_bytes
    pair(None, "path_outside_root", target_video_path="../outside.mp4")
    pair(None, "path_outside_root", target_video_path=str((v / "good_tgt.mp4").resolve()))
    for a, b in (("loop_a.mp4", "loop_b.mp4"), ("loop_b.mp4", "loop_a.mp4")):
        if not (v / a).is_symlink():
            os.symlink(v / b, v / a)
    pair(None, "symlink_loop", target_video_path="videos/loop_a.mp4")
    pair(None, "missing_keys", target_video_path="", instruction=None)
    records.append("not a record")  # type: ignore[arg-type]
    expect.append("malformed_record")
    (v / "dup_src.mp4").write_bytes((v / "good_src.mp4").read_bytes())
    (v / "dup_tgt.mp4").write_bytes((v / "good_tgt.mp4").read_bytes())
    pair("dup_tgt.mp4", "duplicate_input", src="videos/dup_src.mp4", instruction="edit 0")
    pairs = root / "pairs.json"
    pairs.write_text(json.dumps(records, indent=1))
    return pairs, expect


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()
