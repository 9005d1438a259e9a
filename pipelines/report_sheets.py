"""Pictures of samples for the dataset report (PIL/numpy): contact sheets, crop diagrams, boxed frames.

A contact sheet shows ``n`` evenly spaced frames of one clip. Frames are coloured by the
segment they fall in (a shot, or the original/memory part of an extended clip), a red bar
marks every cut between neighbouring thumbnails, and a timeline underneath shows all segments
at true scale, where the thumbnails were taken, and point marks such as reconstruction frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from stages.video import iter_frames, probe

PALETTE = ["#2f6fde", "#17a398", "#f3a712", "#8e5cd9", "#d63c83", "#5c946e", "#e07a1f", "#3aa0c8"]
CUT, INK, MUTED, PAPER = "#e4572e", "#1f2933", "#7b8794", "#ffffff"


@dataclass(frozen=True)
class Segment:
    start: int  # first frame
    end: int  # last frame, inclusive
    label: str
    color: str


@dataclass(frozen=True)
class Mark:
    frame: int
    label: str
    color: str = "#1f2933"


@lru_cache(maxsize=8)
def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:  # no DejaVu installed: Pillow's bundled font still renders every label
        return ImageFont.load_default(size)


def segment_of(frame: int, segments: list[Segment]) -> int | None:
    return next((k for k, s in enumerate(segments) if s.start <= frame <= s.end), None)


def pick_frames(video: bytes, n: int, width: int, total: int = 0) -> tuple[list[int], list[np.ndarray], int]:
    """``n`` evenly spaced frames scaled to ``width`` (one decode pass); returns indices, images, frame count."""
    info = probe(video)
    height = max(2, round(width * info.height / max(info.width, 1) / 2) * 2)
    total = total or info.frames
    if total <= 0:  # the container does not say: decode once at thumbnail size and pick afterwards
        frames = [img for _, _, img in iter_frames(video, size=(width, height))]
        idx = np.unique(np.linspace(0, len(frames) - 1, n).round().astype(int)).tolist()
        return idx, [frames[i] for i in idx], len(frames)
    want = np.unique(np.linspace(0, total - 1, n).round().astype(int)).tolist()
    got: dict[int, np.ndarray] = {}
    for i, _, img in iter_frames(video, size=(width, height)):
        if i in want:
            got[i] = img
        if i >= want[-1]:
            break
    idx = sorted(got)
    return idx, [got[i] for i in idx], total


def contact_sheet(video: bytes, out: Path, n: int = 12, cols: int = 6, fps: float = 0.0, total: int = 0,
                  segments: list[Segment] | None = None, marks: list[Mark] | None = None,
                  ranges: list[tuple[int, int]] | None = None, ranges_label: str = "", thumb_w: int = 160,
                  boxes: list[list[float]] | None = None) -> str:
    """Draw the sheet into ``out`` (JPEG) and return its file name. ``ranges`` are e.g. subtitle events;
    ``boxes`` (fractions of the frame, x0 y0 x1 y1) are outlined on every thumbnail, e.g. overlays left in."""
    segments, marks, ranges = segments or [], marks or [], ranges or []
    idx, imgs, total = pick_frames(video, n, thumb_w, total)
    th = imgs[0].shape[0]
    gap, pad, band, label_h = 10, 14, 6, 36
    rows = -(-len(imgs) // cols)
    width = pad * 2 + cols * thumb_w + (cols - 1) * gap
    cell_h = band + th + label_h
    timeline_h = 84 + (22 if ranges else 0)
    sheet = Image.new("RGB", (width, pad + rows * (cell_h + gap) + timeline_h), PAPER)
    d = ImageDraw.Draw(sheet)
    seg_at = [segment_of(i, segments) for i in idx]
    for k, (i, img) in enumerate(zip(idx, imgs)):
        r, c = divmod(k, cols)
        x, y = pad + c * (thumb_w + gap), pad + r * (cell_h + gap)
        color = segments[seg_at[k]].color if seg_at[k] is not None else "#cbd2d9"
        d.rectangle([x, y, x + thumb_w - 1, y + band - 1], fill=color)
        sheet.paste(Image.fromarray(img), (x, y + band))
        for b in boxes or []:
            w, h = img.shape[1], img.shape[0]
            d.rectangle([x + b[0] * w, y + band + b[1] * h, x + b[2] * w - 1, y + band + b[3] * h - 1],
                        outline="#f3a712", width=2)
        t = f" · {i / fps:.1f}s" if fps > 0 else ""
        d.text((x + 2, y + band + th + 3), f"#{i}{t}", fill=INK, font=font(14, bold=True))
        if seg_at[k] is not None:
            d.text((x + 2, y + band + th + 20), segments[seg_at[k]].label, fill=color, font=font(13, bold=True))
        if k > 0 and c > 0 and seg_at[k] != seg_at[k - 1]:
            d.rectangle([x - gap // 2 - 2, y - 2, x - gap // 2 + 1, y + band + th + 2], fill=CUT)  # a cut between
    _timeline(d, pad, sheet.height - timeline_h + 8, width - 2 * pad, total, idx, segments, marks, ranges, ranges_label)
    sheet.save(out, quality=88)
    return out.name


def _timeline(d: ImageDraw.ImageDraw, x0: int, y0: int, w: int, total: int, idx: list[int],
              segments: list[Segment], marks: list[Mark], ranges: list[tuple[int, int]], ranges_label: str) -> None:
    def fx(frame: float) -> float:
        return x0 + w * frame / max(total, 1)

    y = y0 + 14
    d.text((x0 + w, y + 26), f"{total} frames", fill=MUTED, font=font(12), anchor="ra")
    d.rectangle([x0, y, x0 + w, y + 22], fill="#e4e7eb")
    for s in segments:
        a, b = fx(s.start), fx(min(s.end + 1, total))
        d.rectangle([a, y, max(a + 1, b - 1), y + 22], fill=s.color)
        short = s.label.split()[-1] if s.label else ""
        if b - a > 8 * len(short) + 4:
            d.text(((a + b) / 2, y + 11), short, fill="white", font=font(13, bold=True), anchor="mm")
    for s in segments[1:]:
        d.line([fx(s.start), y - 3, fx(s.start), y + 25], fill=CUT, width=2)
    for i in idx:  # where the thumbnails above were taken
        d.polygon([(fx(i) - 4, y - 9), (fx(i) + 4, y - 9), (fx(i), y - 2)], fill=MUTED)
    for m in marks:
        d.polygon([(fx(m.frame), y + 24), (fx(m.frame) - 6, y + 34), (fx(m.frame) + 6, y + 34)], fill=m.color)
        d.text((fx(m.frame) + 8, y + 26), m.label, fill=m.color, font=font(13, bold=True))
    if ranges:
        ry = y + 46
        d.text((x0, ry), ranges_label, fill=MUTED, font=font(12))
        for a, b in ranges:
            d.rectangle([fx(a), ry + 16, max(fx(a) + 2, fx(b)), ry + 22], fill="#9aa5b1")


def crop_diagram(frame: np.ndarray, size: list[int], crop: list[int], out: Path, band: list[int] | None = None,
                 events: list[list[int]] | None = None, overlays: list[list[int]] | None = None,
                 width: int = 360) -> str:
    """The source picture to scale: the kept crop (filled with a clip frame), what was cut, the subtitle band."""
    W, H = size
    s = width / W
    img = Image.new("RGB", (width, max(2, round(H * s))), "#3e4c59")
    d = ImageDraw.Draw(img, "RGBA")
    for y in range(0, img.height, 12):  # hatching: this area was cropped away
        d.line([0, y, img.width, y + img.width // 3], fill=(255, 255, 255, 28), width=1)
    x0, y0, x1, y1 = (round(v * s) for v in crop)
    img.paste(Image.fromarray(frame).resize((max(1, x1 - x0), max(1, y1 - y0))), (x0, y0))
    if band:
        d.rectangle([0, band[0] * s, img.width, band[1] * s], fill=(228, 87, 46, 90))
    for b in events or []:
        d.rectangle([v * s for v in b], outline=(228, 87, 46, 255), width=1)
    for b in overlays or []:
        d.rectangle([v * s for v in b], outline=(243, 167, 18, 255), width=2)
    d.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(23, 163, 152, 255), width=3)
    img.save(out, quality=88)
    return out.name


def boxed(image: np.ndarray, boxes: list[tuple[list[float], str]], out: Path, width: int = 360) -> str:
    """A frame with labelled boxes (tracked subject), scaled to ``width``."""
    h, w = image.shape[:2]
    s = width / w
    img = Image.fromarray(image).resize((width, max(2, round(h * s))))
    d = ImageDraw.Draw(img)
    for k, (b, label) in enumerate(boxes):
        color = PALETTE[k % len(PALETTE)] if k else "#f3a712"
        x0, y0, x1, y1 = (v * s for v in b)
        d.rectangle([x0, y0, x1, y1], outline=color, width=3)
        tw = d.textlength(label, font=font(11, bold=True))
        d.rectangle([x0, max(0, y0 - 16), x0 + tw + 8, max(16, y0)], fill=color)
        d.text((x0 + 4, max(0, y0 - 16) + 2), label, fill="white", font=font(11, bold=True))
    img.save(out, quality=90)
    return out.name


def tiles(images: list[tuple[str, np.ndarray]], out: Path, tile_w: int = 200, cols: int = 5) -> str:
    """Labelled first frames side by side (e.g. the cameras of a multi-camera scene)."""
    th = max(2, round(tile_w * images[0][1].shape[0] / images[0][1].shape[1]))
    gap, lab = 8, 18
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * tile_w + (cols + 1) * gap, rows * (th + lab + gap) + gap), PAPER)
    d = ImageDraw.Draw(sheet)
    for k, (name, img) in enumerate(images):
        r, c = divmod(k, cols)
        x, y = gap + c * (tile_w + gap), gap + r * (th + lab + gap)
        sheet.paste(Image.fromarray(img).resize((tile_w, th)), (x, y))
        d.text((x, y + th + 2), name, fill=INK, font=font(12, bold=True))
    sheet.save(out, quality=88)
    return out.name
