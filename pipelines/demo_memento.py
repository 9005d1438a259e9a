"""Generated "films" with ground truth, for the Memento front-half tests, benchmarks and demo.

A film is a list of :class:`Shot` specs rendered into an H.264 file. Backgrounds are tileable
sums of sinusoids (structure at every scale, so pans and jump cuts look like real camera
moves), with textured objects moving over them. The truth dict says where the hard and jump
cuts are, which spans are gradual (fades, dissolves: not cuts), where flashes, black and
static stretches, subtitles, the corner logo and the letterbox bars are. With ``Film.people`` every
shot also shows a real person (pipelines/demo_people.py) that a people detector finds; the truth
then says where that person's patch is in every frame.

Text is rendered with Pillow and a real TrueType font (DejaVu Sans when the system has it,
else Pillow's bundled scalable default font), white with a black outline like burned-in
subtitles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipelines.demo_people import Walker, walker_for_shot
from stages.clips import Mp4Writer

PHRASES = [
    "Where were you last night?", "I waited by the river.", "The train leaves at dawn.",
    "Nobody saw the letter.", "Keep the lantern lit.", "We should go back now.",
    "Your brother called again.", "It is colder than yesterday.", "Open the gate, please.",
    "I never wanted this house.", "Listen to the rain.", "She kept the old map.",
]


@dataclass(frozen=True)
class Shot:
    frames: int
    kind: str = "cut"  # how the shot begins: cut | jump | dissolve | fade
    pan: tuple[float, float] = (1.5, 0.4)  # camera speed in px/frame at 320 px width
    speed: float = 2.0  # object speed in px/frame at 320 px width
    flashes: tuple[int, ...] = ()  # local frames where a 2-frame flash starts
    black: bool = False
    static: bool = False
    transition: int = 12  # frames of the dissolve / of each half of the fade


@dataclass(frozen=True)
class Film:
    shots: tuple[Shot, ...]
    width: int = 320
    height: int = 180
    fps: float = 24.0
    letterbox: int = 0  # bar height (px) at top and bottom
    subtitles: bool = True
    logo: bool = True
    seed: int = 0
    subtitle_every: float = 2.5  # seconds between subtitle starts; each shows for 80 % of it
    subtitles_on_top: bool = False  # some films (and Japanese releases) put them at the top
    rotation: int = 0  # stored sideways with a display matrix, like phone video (decodes upright)
    vfr: bool = False  # frame durations alternate 0.5x / 1.5x of 1/fps (same mean rate)
    people: float = 0.0  # height of the real-person patch (pipelines/demo_people) in every shot / picture height; 0: none
    watermark: bool = False  # a half-transparent "PREVIEW" in the top-left corner, all film long
    copyright: bool = False  # a small centred copyright line at the bottom, all film long (subtitles sit above it)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


@lru_cache(maxsize=4)
def _texture(seed: int, th: int, tw: int) -> np.ndarray:
    """A tileable (th, tw, 3) uint8 texture: integer-frequency sinusoids wrap seamlessly.

    Returned tiled to (1.5 th, 1.5 tw) so any (th/2, tw/2) window is a plain slice.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(th, dtype=np.float32)[:, None] / th
    x = np.arange(tw, dtype=np.float32)[None, :] / tw
    out = np.zeros((th, tw, 3), np.float32)
    base = rng.uniform(60, 190, 3)
    for c in range(3):
        for fmax, amp, n in ((4, 40.0, 5), (16, 18.0, 6), (60, 9.0, 6)):
            for _ in range(n):
                fx, fy = rng.integers(-fmax, fmax + 1, 2)
                a, b = 2 * np.pi * fx * x, 2 * np.pi * fy * y + rng.uniform(0, 2 * np.pi)
                # cos(a + b) as outer products: separable, so cheap at 720p
                out[..., c] += amp / n * 2 * (np.cos(b) * np.cos(a) - np.sin(b) * np.sin(a))
        out[..., c] += base[c]
    out += rng.normal(0, 6, (th, tw, 1))  # film grain, fixed to the scene: gives real footage's sharpness
    tex = np.clip(out, 0, 255).astype(np.uint8)
    return np.tile(tex, (2, 2, 1))[: th + th // 2, : tw + tw // 2]


@dataclass
class _ShotRender:
    """State of one shot: scene texture, camera origin and objects; renders any local frame."""

    w: int
    h: int
    scene: int
    origin: tuple[float, float]
    spec: Shot
    objects: list[tuple[float, float, float, float, np.ndarray]] = field(default_factory=list)
    walker: Walker | None = None

    def frame(self, t: int) -> np.ndarray:
        if self.spec.black:
            return np.zeros((self.h, self.w, 3), np.uint8)
        tex = _texture(self.scene, 2 * self.h, 2 * self.w)
        k = 0.0 if self.spec.static else self.w / 320.0
        ox = round(self.origin[0] + self.spec.pan[0] * k * t) % (2 * self.w)
        oy = round(self.origin[1] + self.spec.pan[1] * k * t) % (2 * self.h)
        img = tex[oy : oy + self.h, ox : ox + self.w].copy()
        sp = 0.0 if self.spec.static else self.spec.speed * self.w / 320.0
        for x, y, vx, vy, patch in self.objects:
            ph, pw = patch.shape[:2]
            px = int(_bounce(x + vx * sp * t, self.w - pw))
            py = int(_bounce(y + vy * sp * t, self.h - ph))
            img[py : py + ph, px : px + pw] = patch
        if self.walker is not None:
            self.walker.paint(img, self.walker_time(t))
        return img

    def walker_time(self, t: int) -> int:
        return 0 if self.spec.static else t


def _bounce(v: float, span: int) -> float:
    v = v % (2 * span)
    return v if v <= span else 2 * span - v


def _objects(rng: np.random.Generator, w: int, h: int, palette: np.ndarray) -> list:
    out = []
    for color in palette:
        pw, ph = int(w * rng.uniform(0.08, 0.16)), int(h * rng.uniform(0.12, 0.25))
        yy, xx = np.mgrid[0:ph, 0:pw]
        checker = (((yy // max(ph // 4, 1)) + (xx // max(pw // 4, 1))) % 2)[..., None]
        patch = np.where(checker, color, 255 - color).astype(np.uint8)
        ang = rng.uniform(0, 2 * np.pi)
        out.append((rng.uniform(0, w - pw), rng.uniform(0, h - ph), np.cos(ang), np.sin(ang), patch))
    return out


@lru_cache(maxsize=32)
def _text_layer(text: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB and alpha of white outlined text, tightly cropped."""
    font = _font(size)
    l, t, r, b = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font, stroke_width=2)
    img = Image.new("RGBA", (r - l + 2, b - t + 2), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((1 - l, 1 - t), text, font=font, fill=(255, 255, 255, 255), stroke_width=2,
                            stroke_fill=(0, 0, 0, 255))
    a = np.asarray(img)
    return a[..., :3].astype(np.float32), a[..., 3:].astype(np.float32) / 255.0


def _paste(img: np.ndarray, layer: tuple[np.ndarray, np.ndarray], x: int, y: int) -> list[int]:
    rgb, alpha = layer
    x, y = max(x, 0), max(y, 0)  # text wider than a tiny frame is clipped, not an error
    h, w = min(alpha.shape[0], img.shape[0] - y), min(alpha.shape[1], img.shape[1] - x)
    roi = img[y : y + h, x : x + w].astype(np.float32)
    img[y : y + h, x : x + w] = (roi * (1 - alpha[:h, :w]) + rgb[:h, :w] * alpha[:h, :w]).astype(np.uint8)
    return [x, y, x + w, y + h]


def render_film(path: str | Path, film: Film) -> dict:
    """Write ``film`` to ``path`` (H.264 MP4) and return its ground truth."""
    W, H, lb = film.width, film.height, film.letterbox
    ah = H - 2 * lb
    rng, people_rng = np.random.default_rng(film.seed), np.random.default_rng(film.seed + 7919)
    renders: list[_ShotRender] = []
    truth: dict = {"fps": film.fps, "size": [W, H], "cuts": [], "gradual": [], "flashes": [], "shots": [],
                   "black": [], "static": [], "letterbox": [0, lb, W, H - lb], **({"people": []} if film.people else {})}
    start = 0
    scene = film.seed * 1000
    for i, spec in enumerate(film.shots):
        palette = rng.integers(0, 256, (3, 3))
        if i == 0 or spec.kind != "jump":
            scene += 1
            origin = (rng.uniform(0, 2 * W), rng.uniform(0, 2 * ah))
        else:  # same scene, camera jumped a third of the frame, objects moved
            prev = renders[-1]
            origin = (prev.origin[0] + prev.spec.pan[0] * prev.spec.frames * W / 320 + W * 0.33,
                      prev.origin[1] + ah * 0.2)
        renders.append(_ShotRender(W, ah, scene, origin, spec, _objects(rng, W, ah, palette)))
        if film.people and not spec.black:  # own generator: the rest of the film is the same with or without
            jumped = renders[-2].walker if i and spec.kind == "jump" else None
            renders[-1].walker = walker_for_shot(people_rng, W, ah, film.people, jumped,
                                                 film.shots[i - 1].frames, spec.speed / 2)
        if i > 0:
            if spec.kind in ("cut", "jump"):
                truth["cuts"].append(start)
            elif spec.kind == "dissolve":
                truth["gradual"].append([start, start + spec.transition - 1])
            elif spec.kind == "fade":
                truth["gradual"].append([start - spec.transition, start + spec.transition - 1])
        truth["shots"].append([start, start + spec.frames - 1])
        truth["flashes"] += [start + f for f in spec.flashes]
        if spec.black:
            truth["black"].append([start, start + spec.frames - 1])
        if spec.static:
            truth["static"].append([start, start + spec.frames - 1])
        start += spec.frames
    total = start

    sub_size = max(14, H // 18)
    events = []
    if film.subtitles:
        step = round(film.subtitle_every * film.fps)
        for k, s0 in enumerate(range(int(film.fps // 2), max(total - int(film.fps), 1), step)):
            events.append({"start": s0, "end": min(s0 + int(step * 0.8), total - 1), "text": PHRASES[k % len(PHRASES)]})
    logo = _text_layer("CH7", max(12, H // 20)) if film.logo else None
    mark = _text_layer("PREVIEW", max(12, H // 20)) if film.watermark else None
    mark = mark and (mark[0], mark[1] * 0.6)
    notice = _text_layer("(c) 2026 Northwind Pictures", max(10, H // 32)) if film.copyright else None
    lift = notice[1].shape[0] + int(ah * 0.03) if notice is not None else 0  # subtitles above the notice

    sideways = film.rotation in (90, 270)
    writer = Mp4Writer(film.fps, H if sideways else W, W if sideways else H, crf=20, preset="veryfast",
                       rotation=film.rotation)
    times = np.arange(total) / film.fps
    if film.vfr:
        times = np.concatenate([[0.0], np.cumsum(np.where(np.arange(total - 1) % 2, 1.5, 0.5) / film.fps)])
    truth["times"] = [round(float(t), 6) for t in times]
    bounds = np.cumsum([0] + [s.frames for s in film.shots])
    ev = 0
    for f in range(total):
        i = int(np.searchsorted(bounds, f, side="right") - 1)
        r, t = renders[i], f - bounds[i]
        img = r.frame(t)
        nxt = film.shots[i + 1] if i + 1 < len(film.shots) else None
        if r.spec.kind == "dissolve" and i > 0 and t < r.spec.transition:
            a = (t + 1) / (r.spec.transition + 1)
            img = ((1 - a) * renders[i - 1].frame(bounds[i] - bounds[i - 1] + t) + a * img).astype(np.uint8)
        if r.spec.kind == "fade" and i > 0 and t < r.spec.transition:
            img = (img * ((t + 1) / (r.spec.transition + 1))).astype(np.uint8)
        if nxt is not None and nxt.kind == "fade" and r.spec.frames - t <= nxt.transition:
            img = (img * ((r.spec.frames - t - 1) / (nxt.transition + 1))).astype(np.uint8)
        if any(0 <= t - fl < 2 for fl in r.spec.flashes):
            img = (img * 0.25 + 0.75 * 255).astype(np.uint8)
        canvas = np.zeros((H, W, 3), np.uint8)
        canvas[lb : lb + ah] = img
        if film.people:  # where the real person's patch is (None in black shots), in canvas pixels
            box = r.walker.box(r.walker_time(t), W, ah) if r.walker is not None else None
            truth["people"].append(box and [box[0], box[1] + lb, box[2], box[3] + lb])
        if logo is not None:
            lw, lh = logo[1].shape[1], logo[1].shape[0]
            truth["logo_box"] = _paste(canvas, logo, W - lw - W // 40, lb + ah // 30)
        if mark is not None:
            truth["watermark_box"] = _paste(canvas, mark, W // 40, lb + ah // 30)
        if notice is not None:
            nw, nh = notice[1].shape[1], notice[1].shape[0]
            truth["copyright_box"] = _paste(canvas, notice, (W - nw) // 2, lb + ah - nh - int(ah * 0.015))
        while ev < len(events) and events[ev]["end"] < f:
            ev += 1
        if ev < len(events) and events[ev]["start"] <= f:
            layer = _text_layer(events[ev]["text"], sub_size)
            lw, lh = layer[1].shape[1], layer[1].shape[0]
            y = lb + int(ah * 0.05) if film.subtitles_on_top else lb + ah - lh - int(ah * 0.05) - lift
            events[ev]["box"] = _paste(canvas, layer, (W - lw) // 2, y)
            rows = np.flatnonzero(layer[1][..., 0].max(axis=1) > 0.5)  # the letters' rows (with outline)
            events[ev]["ink_rows"] = [y + int(rows[0]), y + int(rows[-1]) + 1]
        stored = np.rot90(canvas, -(film.rotation // 90)) if film.rotation else canvas  # clockwise
        writer.write(stored, float(times[f]) if film.vfr else None)
    Path(path).write_bytes(writer.close())
    truth["frames"] = total
    truth["overlays"] = [truth[k] for k in ("logo_box", "watermark_box", "copyright_box") if k in truth]
    truth["subtitle_events"] = [e for e in events if "box" in e]
    boxes = [e["box"] for e in truth["subtitle_events"]]
    truth["band"] = [min(b[1] for b in boxes), max(b[3] for b in boxes)] if boxes else None
    ink = [e["ink_rows"] for e in truth["subtitle_events"]]
    truth["ink_band"] = [min(r[0] for r in ink), max(r[1] for r in ink)] if ink else None
    return truth


def hard_cases_film(width: int = 320, height: int = 180, fps: float = 24.0, seed: int = 1, **kw) -> Film:
    """~32 s of short shots exercising every trap: jump cuts under a subtitle, fades, dissolves,
    flashes, fast motion, a black and a static stretch."""
    s = int(fps)
    shots = (
        Shot(2 * s), Shot(2 * s, "jump"), Shot(2 * s, "cut", pan=(6.0, 1.0), speed=6.0),
        Shot(3 * s, "jump", flashes=(s,)), Shot(2 * s, "dissolve"), Shot(2 * s, "cut"),
        Shot(2 * s, "fade"), Shot(2 * s, "jump", pan=(-2.0, 0.5)), Shot(s, "cut", black=True),
        Shot(3 * s, "cut", flashes=(s // 2, 2 * s)), Shot(2 * s, "cut", static=True), Shot(2 * s, "dissolve"),
        Shot(2 * s, "jump"), Shot(2 * s, "cut", pan=(8.0, -2.0), speed=8.0), Shot(2 * s, "fade"), Shot(2 * s, "cut"),
    )
    return Film(shots, width, height, fps, seed=seed, **kw)


def memento_film(width: int = 320, height: int = 180, fps: float = 24.0, seed: int = 2, scale: float = 1.0,
                 **kw) -> Film:
    """Footage shaped like the paper's input: a run of > 5 s shots long enough for two 30-60 s
    sequences, interrupted by a burst of short shots. ``scale`` shrinks every duration (tests)."""
    s = fps * scale

    def n(sec: float) -> int:
        return max(round(sec * s), 4)

    run1 = tuple(Shot(n(d), "cut" if i % 3 else "jump") for i, d in enumerate((6.5, 7, 8, 6, 9, 7.5)))
    burst = (Shot(n(2), "cut"), Shot(n(1.5), "cut"), Shot(n(3), "cut"))
    run2 = tuple(Shot(n(d), "cut") for d in (7, 6.5, 8.5, 6, 7, 5.5))
    return Film(run1 + burst + run2, width, height, fps, seed=seed, **kw)

