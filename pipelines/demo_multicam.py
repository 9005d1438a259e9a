"""Multi-camera demo scenes made in code, written in the real on-disk layouts.

A textured box room (each wall its own hue and stripe pattern, a floor checker) with a few
coloured pillars, ray-cast for known OpenCV cameras. ``write_scene`` renders 10 synchronised
cameras in ReCamMaster's MultiCamVideo layout (Unreal row-vector extrinsics, cm);
``write_roam`` renders a long Context-as-Memory roam (PNG frames + per-frame position/rotation
json) that circles the room twice, so the second lap revisits the first. Broken copies
exercise the reject reasons listed in ``BROKEN``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from models.fov import intrinsics
from stages.camera_poses import SENSOR_MM, intrinsics_from_focal, opencv_to_unreal, rows_to_rotator
from stages.video import encode_mp4

ROOM = np.array([[-4.0, -4.0, 0.0], [4.0, 4.0, 3.0]])  # metres, right-handed, z up
PILLARS = [((1.5, 1.0, 0.0), (2.1, 1.6, 2.2), (220, 60, 50)), ((-2.2, -1.4, 0.0), (-1.6, -0.8, 1.5), (40, 90, 220)),
           ((-1.0, 2.4, 0.0), (-0.4, 3.0, 2.6), (240, 200, 40))]
_FACE_HUE = np.array([[200, 120, 90], [90, 170, 200], [150, 200, 110], [210, 150, 210], [120, 110, 100],
                      [235, 235, 225]])  # -x, +x, -y, +y walls, floor, ceiling
BROKEN = {"scene_nan": "pose_not_finite", "scene_short": "pose_frame_mismatch", "scene_mirror": "pose_reflection",
          "roam_short": "pose_frame_mismatch"}
EYE = 1.5  # camera height, metres


def look(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """OpenCV camera-to-world rotation looking along world yaw (0 = +x, 90 = +y), pitch up positive."""
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    fwd = np.array([np.cos(p) * np.cos(y), np.cos(p) * np.sin(y), np.sin(p)])
    right = np.array([np.sin(y), -np.cos(y), 0.0])
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd], 1)


def render(c2w: np.ndarray, k: np.ndarray, width: int, height: int) -> np.ndarray:
    """Ray-cast one (H, W, 3) uint8 frame of the room."""
    v, u = np.mgrid[0:height, 0:width] + 0.5
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1) @ c2w[:3, :3].T
    o = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        exits = np.where(rays > 0, (ROOM[1] - o) / rays, (ROOM[0] - o) / rays)
        exits = np.where(np.isfinite(exits), exits, np.inf)
        t = exits.min(-1)
        axis = exits.argmin(-1)
        face = 2 * axis + (np.take_along_axis(rays, axis[..., None], -1)[..., 0] > 0)
        color = np.zeros(rays.shape, np.float64)
        hit_box = np.full(t.shape, -1)
        for i, (lo, hi, _) in enumerate(PILLARS):
            t1, t2 = (np.array(lo) - o) / rays, (np.array(hi) - o) / rays
            near, far = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
            hit = (near < far) & (near > 0) & (near < t)
            t, hit_box = np.where(hit, near, t), np.where(hit, i, hit_box)
    p = o + rays * t[..., None]
    checker = ((np.floor(p[..., 0] * 2) + np.floor(p[..., 1] * 2) + np.floor(p[..., 2] * 2)) % 2) * 0.35 + 0.65
    stripes = 0.85 + 0.15 * np.sin(p[..., 0] * (3 + face) + p[..., 1] * (5 - face) + p[..., 2] * 7)
    # Blocky per-cell noise (20 cm cells) gives structure-from-motion distinctive corners to match.
    h = np.sin(np.floor(p * 5.0) @ np.array([12.9898, 78.233, 37.719])) * 43758.5453
    grain = 0.75 + 0.5 * (h - np.floor(h))
    color = _FACE_HUE[face] * (checker * stripes * grain)[..., None]
    for i, (_, _, rgb) in enumerate(PILLARS):
        color[hit_box == i] = np.array(rgb) * (0.7 + 0.3 * stripes[hit_box == i, None])
    return np.clip(np.nan_to_num(color), 0, 255).astype(np.uint8)  # NaN poses (broken demos) render black


def scene_trajectories(frames: int = 81, seed: int = 0) -> dict[str, np.ndarray]:
    """10 cameras, (T, 4, 4) OpenCV c2w each: pairs of opposite pans, tilts, dollies, arcs, plus two views
    facing the other way. Start positions differ by up to 0.3 m so targets do not share a first pose."""
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, frames)
    base = np.array([0.0, 0.0, EYE])
    specs = {  # name: (yaw0, yaw change, pitch change, forward move m, sideways move m)
        "cam01": (0, 20, 0, 0, 0), "cam02": (0, -20, 0, 0, 0), "cam03": (0, 0, 10, 0, 0), "cam04": (0, 0, -10, 0, 0),
        "cam05": (0, 0, 0, 1.5, 0), "cam06": (0, 0, 0, -1.5, 0), "cam07": (30, -30, 0, 0, 1.2),
        "cam08": (-30, 30, 0, 0, -1.2), "cam09": (180, 15, 0, 0, 0), "cam10": (180, -15, 0, 0.8, 0),
    }
    out = {}
    for name, (yaw0, dyaw, dpitch, fwd, side) in specs.items():
        start = base + np.append(rng.uniform(-0.15, 0.15, 2), 0.0)
        p = np.tile(np.eye(4), (frames, 1, 1))
        y0 = np.radians(yaw0)
        ahead, right = np.array([np.cos(y0), np.sin(y0), 0]), np.array([np.sin(y0), -np.cos(y0), 0])
        for t, a in enumerate(s):
            p[t, :3, :3] = look(yaw0 + dyaw * a, dpitch * a)
            p[t, :3, 3] = start + a * (fwd * ahead + side * right)
        out[name] = p
    return out


def roam_trajectory(frames: int = 240, laps: float = 2.0, radius: float = 2.0) -> np.ndarray:
    """(T, 4, 4): a circle around the room centre, facing the direction of travel, ``laps`` times."""
    a = np.linspace(0.0, 2 * np.pi * laps, frames, endpoint=False)
    p = np.tile(np.eye(4), (frames, 1, 1))
    for t, ang in enumerate(a):
        p[t, :3, :3] = look(np.degrees(ang) + 90.0)
        p[t, :3, 3] = [radius * np.cos(ang), radius * np.sin(ang), EYE]
    return p


def _extrinsics_json(trajs: dict[str, np.ndarray]) -> dict:
    rows = {c: opencv_to_unreal(p) for c, p in trajs.items()}
    n = len(next(iter(rows.values())))
    return {f"frame{t}": {c: " ".join("[" + " ".join(f"{x:.6g}" for x in r[t][i]) + "]" for i in range(4)) + " "
                          for c, r in rows.items()} for t in range(n)}


def write_scene(scene_dir: str | Path, size: int = 128, frames: int = 81, focal_mm: float = 24.0, fps: float = 15.0,
                seed: int = 0, trajs: dict[str, np.ndarray] | None = None, drop_frames: dict[str, int] | None = None,
                ) -> dict[str, np.ndarray]:
    """Render one MultiCamVideo scene into ``scene_dir`` (its parent should be ``f<focal>_aperture<N>``)."""
    scene_dir = Path(scene_dir)
    (scene_dir / "videos").mkdir(parents=True, exist_ok=True)
    (scene_dir / "cameras").mkdir(exist_ok=True)
    trajs = trajs or scene_trajectories(frames, seed)
    k = intrinsics_from_focal(focal_mm, size, size, SENSOR_MM)
    for cam, p in trajs.items():
        n = frames - (drop_frames or {}).get(cam, 0)
        imgs = np.stack([render(p[t], k, size, size) for t in range(n)])
        (scene_dir / "videos" / f"{cam}.mp4").write_bytes(encode_mp4(imgs, fps))
    (scene_dir / "cameras" / "camera_extrinsics.json").write_text(json.dumps(_extrinsics_json(trajs)))
    return trajs


def write_roam(root: str | Path, name: str, frames: int = 240, size: tuple[int, int] = (128, 72),
               fov_deg: float = 52.67, laps: float = 2.0, json_frames: int | None = None) -> np.ndarray:
    """Context-as-Memory layout: ``root/frames/<name>/<i>.png`` and ``root/jsons/<name>.json``."""
    root = Path(root)
    fdir = root / "frames" / name
    fdir.mkdir(parents=True, exist_ok=True)
    (root / "jsons").mkdir(exist_ok=True)
    poses = roam_trajectory(frames, laps)
    k = intrinsics(fov_deg, *size)
    for t in range(frames):
        cv2.imwrite(str(fdir / f"{t}.png"), cv2.cvtColor(render(poses[t], k, *size), cv2.COLOR_RGB2BGR))
    rows = opencv_to_unreal(poses)
    rot = rows_to_rotator(rows[:, :3, :3])
    entries = [{"frame": t, "CineCameraActor": {
        "position": dict(zip("xyz", map(float, rows[t, 3, :3]))),
        "rotation": dict(zip(("pitch", "yaw", "roll"), map(float, rot[t])))}} for t in range(json_frames or frames)]
    (root / "jsons" / f"{name}.json").write_text(json.dumps({"fov": fov_deg, "frames": entries}))
    return poses


def view_poses(n: int = 10, target=(1.8, 1.3, 1.1), radius: float = 2.8, step_deg: float = 6.0) -> np.ndarray:
    """(n, 4, 4): an arc of cameras around the red pillar, all looking at it (static multi-view capture)."""
    target = np.asarray(target, np.float64)
    p = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        a = np.radians(200 + step_deg * i)
        c = np.array([target[0] + radius * np.cos(a), target[1] + radius * np.sin(a), EYE])
        d = target - c
        p[i, :3, :3] = look(np.degrees(np.arctan2(d[1], d[0])), np.degrees(np.arctan2(d[2], np.hypot(d[0], d[1]))))
        p[i, :3, 3] = c
    return p


def write_views(folder: str | Path, n: int = 10, size: tuple[int, int] = (320, 240),
                fov_deg: float = 70.0) -> np.ndarray:
    """Static multi-view frames with no pose metadata, ``folder/<i>.png`` (for the SfM backend)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poses, k = view_poses(n), intrinsics(fov_deg, *size)
    for i, p in enumerate(poses):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(render(p, k, *size), cv2.COLOR_RGB2BGR))
    return poses


def write_demo(root: str | Path, scenes: int = 2, size: int = 128, frames: int = 81, roam_frames: int = 240,
               roam_size: tuple[int, int] = (128, 72), broken: bool = True) -> Path:
    """Scenes under ``root/multicam/train/f24_aperture5/sceneN``, roams under ``root/cam``; returns root."""
    root = Path(root)
    split = root / "multicam" / "train" / "f24_aperture5"
    for i in range(scenes):
        write_scene(split / f"scene{i + 1}", size=size, frames=frames, seed=i)
    write_roam(root / "cam", "roam1", frames=roam_frames, size=roam_size)
    if broken:
        bad = scene_trajectories(frames, seed=7)
        bad["cam04"][5, 0, 0] = np.nan
        write_scene(split / "scene_nan", size=32, frames=frames, trajs=bad)
        write_scene(split / "scene_short", size=32, frames=frames, seed=8, drop_frames={"cam03": 4})
        bad = scene_trajectories(frames, seed=9)
        bad["cam02"][:, :3, 0] *= -1  # a mirrored camera: det(R) = -1
        write_scene(split / "scene_mirror", size=32, frames=frames, trajs=bad)
        write_roam(root / "cam", "roam_short", frames=30, size=(32, 18), json_frames=25)
    return root
