"""The toy world of ``make experiment-memory``: a camera at the centre of a textured cylinder turns.

Every example is a fresh scene (a new random panorama, never seen before), so the model cannot
memorise pictures; it can only learn to look things up. A scene holds one target video and six
candidate memory videos (3 frames each, FOV 52.67° as in Context-as-Memory, arXiv 2506.03141 §7):

- two *revisits* whose views cover the places the target pans over (one around its last frame,
  one around its middle), so a retrieved memory holds what the target's first frame does not show;
- four *distractors* looking at the far side of the cylinder (no overlap with the target).

Cameras only rotate (yaw), so VideoFOV scores (models/fov.py; Memory-V2V, arXiv 2601.16296, Alg. 1) depend on the yaws
*relative to the target's first frame* alone. The geometry of a training scene is drawn from a pool
whose top-k rankings were computed once with the real VideoFOV code; each use turns the whole scene
by a random global yaw, may mirror it, and paints a new panorama, none of which changes the
ranking. Held-out scenes are ranked live. Cameras given to the model are relative to the target's
first frame too (identity there), as the corpus normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

FOV_DEG, SIZE, FRAMES, REVISITS, DISTRACTORS = 52.67, 32, 3, 2, 4
WIDTH = round(SIZE * 360 / FOV_DEG)  # panorama pixels around the cylinder (219)


class PixelCodec:
    """An exact 'VAE': (B, 3, F, H, W) in [-1, 1] <-> (B, 48, F, H/4, W/4) by 4x4 space-to-depth.

    The random tiny Wan VAE cannot reconstruct, so every PSNR would measure it instead of memory use.
    No temporal compression: one latent frame per pixel frame (StepConfig.latent_time_stride = 1).
    """

    channels = 48

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        y = F.pixel_unshuffle(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), 4)
        return y.reshape(b, f, -1, h // 4, w // 4).permute(0, 2, 1, 3, 4).contiguous()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = z.shape
        y = F.pixel_shuffle(z.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), 4)
        return y.reshape(b, f, 3, h * 4, w * 4).permute(0, 2, 1, 3, 4).clamp(-1, 1)


def panorama(rng: np.random.Generator) -> np.ndarray:
    """(SIZE, WIDTH, 3) uint8: smooth colour waves (predictable) plus many landmarks (not predictable)."""
    yy, xx = np.mgrid[0:SIZE, 0:WIDTH]
    pano = np.zeros((SIZE, WIDTH, 3))
    for c in range(3):
        for _ in range(2):
            k = rng.integers(1, 5)  # whole periods around the circle: the panorama wraps seamlessly
            pano[..., c] += (
                rng.uniform(15, 35)
                * np.sin(2 * np.pi * k * xx / WIDTH + rng.uniform(0, 6))
                * np.cos(yy / rng.uniform(4, 9))
            )
    for _ in range(28):  # landmarks: what only a memory of the place can tell
        h, w = rng.integers(4, 13, 2)
        x0, y0 = rng.integers(0, WIDTH), rng.integers(0, SIZE - h + 1)
        pano[y0 : y0 + h, np.arange(x0, x0 + w) % WIDTH] = rng.uniform(-110, 110, 3)
    return (pano + 128).clip(0, 255).astype(np.uint8)


def render(pano: np.ndarray, yaws_deg: np.ndarray) -> np.ndarray:
    """(F, SIZE, SIZE, 3) views of the cylinder at the given yaws (degrees, +: turn right)."""
    cols = [np.arange(SIZE) + round(y / 360 * WIDTH) - SIZE // 2 for y in yaws_deg]
    return np.stack([pano[:, c % WIDTH] for c in cols])


def pose(yaw_deg: float) -> np.ndarray:
    """OpenCV camera-to-world (y down, z forward) for a camera at the origin turned right by yaw."""
    t = np.radians(yaw_deg)
    p = np.eye(4)
    p[:3, :3] = [[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]]
    return p


def trajectories(rng: np.random.Generator) -> np.ndarray:
    """Relative yaws (1 + REVISITS + DISTRACTORS, FRAMES) of one scene: row 0 the target (starting at 0),
    then the candidates in a random order."""
    ramp = np.arange(FRAMES)
    p = rng.choice([-1, 1]) * rng.uniform(10, 20)  # target pan per frame: frame 2 shows 12-24 px new
    target = p * ramp
    revisits = [
        2 * p + rng.uniform(-8, 8) - np.sign(p) * rng.uniform(8, 16) * ramp,  # around the end, turning back
        p + rng.uniform(-10, 10) + rng.choice([-1, 1]) * rng.uniform(5, 12) * ramp,  # around the middle
    ]
    far = [
        p + 180 + rng.uniform(-60, 60) + rng.choice([-1, 1]) * rng.uniform(5, 15) * ramp for _ in range(DISTRACTORS)
    ]
    cands = np.stack(revisits + far)[rng.permutation(REVISITS + DISTRACTORS)]
    return np.concatenate([target[None], cands])


def fov_ranking(yaws: np.ndarray) -> np.ndarray:
    """Candidates (rows 1..) ranked for the target (row 0) by the real VideoFOV Alg. 1 (models/fov.py)."""
    from models.fov import intrinsics, retrieve

    k = intrinsics(FOV_DEG, SIZE, SIZE)
    poses = [np.stack([pose(y) for y in row]) for row in yaws]
    order, _ = retrieve(poses[0], poses[1:], k, [k] * (len(poses) - 1), SIZE, SIZE)
    return np.asarray(order, np.int64)


@dataclass(frozen=True)
class Scene:
    pixels: torch.Tensor  # (1 + candidates, 3, FRAMES, SIZE, SIZE) uint8 (small to ship to workers); row 0 the target
    cams: torch.Tensor  # (1 + candidates, FRAMES, 12) [R|t] relative to the target's first frame
    ranked: np.ndarray  # candidate indices (0-based over rows 1..) by VideoFOV score, best first

    def video(self, i: int) -> torch.Tensor:
        """Row ``i`` as (3, FRAMES, SIZE, SIZE) floats in [-1, 1]."""
        return self.pixels[i].float() / 127.5 - 1.0


def paint(yaws: np.ndarray, ranked: np.ndarray, rng: np.random.Generator) -> Scene:
    """Render a scene for relative yaws on a new panorama, turned by a random global yaw."""
    pano, turn = panorama(rng), rng.uniform(0, 360)
    vids = np.stack([render(pano, row + turn) for row in yaws])  # (V, F, H, W, 3)
    x = torch.from_numpy(vids).permute(0, 4, 1, 2, 3).contiguous()
    cams = torch.from_numpy(np.stack([[pose(y)[:3, :4].ravel() for y in row] for row in yaws])).float()
    return Scene(x, cams, ranked)


class GeometryPool:
    """Scene geometries with their VideoFOV rankings, computed once; ``draw`` mirrors some of them
    (a left-right mirror of every yaw keeps all overlaps, so the ranking still holds)."""

    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng([seed, 7])
        self.yaws = [trajectories(rng) for _ in range(n)]
        self.ranked = [fov_ranking(y) for y in self.yaws]

    def draw(self, rng: np.random.Generator) -> Scene:
        i = int(rng.integers(len(self.yaws)))
        sign = rng.choice([-1.0, 1.0])
        return paint(sign * self.yaws[i], self.ranked[i], rng)


def held_out(n: int, seed: int) -> list[Scene]:
    """``n`` fresh scenes, geometry and texture from their own stream, ranked live."""
    rng = np.random.default_rng([seed, 11])
    out = []
    for _ in range(n):
        y = trajectories(rng)
        out.append(paint(y, fov_ranking(y), rng))
    return out
