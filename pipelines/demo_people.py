"""Real people for the generated Memento films: a window of a real clip composited into every shot.

The drawn checkered figures of :mod:`pipelines.demo_memento` are not people to a people detector,
so demo footage made of them alone never exercised tracking or reconstruction frames. A film with
``people > 0`` carries a *walker* in each shot: a crop of the vendored real clip
``tests/data/real/cuts_people_640x360.mp4`` (Apache-2.0, SWHL/TransitionDetect) around a person
that OpenCV's HOG detector finds, played forwards then backwards (so a long shot never jumps
inside itself) and sliding across the frame like a subject the camera follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

PEOPLE_CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "real" / "cuts_people_640x360.mp4"


@dataclass(frozen=True)
class Role:
    """A person in the people clip: frames ``[first, last]`` (inside one of its shots) and a crop."""

    first: int
    last: int
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in clip pixels; clear of the clip's burned-in text


# The woman in the red coat (snowy yard, CCTV): HOG finds her in nearly every frame of that shot with
# margins ~0.8-0.9 (checked by running the detector over the clip and on contact sheets). Her crop keeps
# a band of ground under her feet and stays left of the clip's watermark, so no foreign text enters the
# film's subtitle and logo detection.
PROTAGONIST = Role(440, 629, (90, 110, 290, 360))


@lru_cache(maxsize=4)
def role_frames(role: Role, height: int) -> np.ndarray:
    """The role's crop for every frame of its span, scaled to ``height``: ``(T, height, w, 3)`` uint8."""
    import cv2

    from stages.video import read_frames

    if not PEOPLE_CLIP.is_file():
        raise FileNotFoundError(f"demo films with people need the vendored real clip {PEOPLE_CLIP} (part of the "
                                "repository: restore tests/data/real from git), or render with people=0")
    x0, y0, x1, y1 = role.crop
    clip = read_frames(PEOPLE_CLIP, start=role.first, end=role.last + 1)[:, y0:y1, x0:x1]  # (T, h, w, 3)
    width = max(2, round(height * (x1 - x0) / (y1 - y0)))
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in clip])


def _pingpong(t: int, n: int) -> int:
    """Clip frame for local time ``t``: forwards, then backwards, so time never jumps."""
    if n < 2:
        return 0
    t %= 2 * (n - 1)
    return t if t < n else 2 * (n - 1) - t


@dataclass
class Walker:
    """One role in one shot: where it starts (in the shot's picture and in the clip) and how fast it slides."""

    role: Role
    height: int  # pixels
    x: float
    y: int
    vx: float  # px per film frame
    clip_start: int  # offset into the role's frames at the shot's first frame

    def box(self, t: int, w: int, h: int) -> list[int]:
        """Where the patch is at local time ``t`` in a ``w`` x ``h`` picture: x0, y0, x1, y1 (the film's truth)."""
        ph, pw = role_frames(self.role, self.height).shape[1:3]
        # Keep a margin at the sides: the subtitle and logo crops trim the frame's edges, and a person cut in
        # half by the crop is no longer a person to HOG.
        lo, hi = 0.06 * w, 0.94 * w - pw
        px = int(lo + _bounce(self.x + self.vx * t - lo, max(hi - lo, 1.0)))
        return [px, self.y, min(px + pw, w), min(self.y + ph, h)]

    def paint(self, img: np.ndarray, t: int) -> None:
        """Composite the role's frame for local time ``t`` into ``img`` (in place)."""
        frames = role_frames(self.role, self.height)
        x0, y0, x1, y1 = self.box(t, img.shape[1], img.shape[0])
        img[y0:y1, x0:x1] = frames[_pingpong(self.clip_start + t, len(frames))][: y1 - y0, : x1 - x0]


def _bounce(v: float, span: float) -> float:
    v = v % (2 * span)
    return v if v <= span else 2 * span - v


def walker_for_shot(rng: np.random.Generator, w: int, h: int, fraction: float, jump_from: Walker | None,
                    prev_frames: int, speed: float) -> Walker:
    """A walker ``fraction`` of the picture tall. After a jump cut the same moment continues, the camera a
    third of the frame away; after any other cut a fresh position and moment."""
    if not 0 < fraction <= 0.8:  # taller, and the person's feet would sit in the subtitle band
        raise ValueError(f"Film.people must be in (0, 0.8] (height of the real clip patch / picture height), got {fraction}")
    height = max(64, round(fraction * h)) // 2 * 2
    # Top of the walker between 4 % of the picture and where its feet would meet the bottom subtitle band.
    y = int(rng.uniform(0.04 * h, max(0.04 * h, 0.86 * h - height)))
    vx = speed * w / 320.0 * (1 if rng.random() < 0.5 else -1)
    if jump_from is not None:
        return Walker(PROTAGONIST, height, jump_from.x + jump_from.vx * prev_frames + w / 3, jump_from.y,
                      jump_from.vx, jump_from.clip_start + prev_frames)
    n = len(role_frames(PROTAGONIST, height))
    return Walker(PROTAGONIST, height, rng.uniform(0, w), y, vx, int(rng.integers(0, 2 * n)))
