"""Camera poses from ReCamMaster MultiCamVideo and Context-as-Memory folders, in one convention.

Both datasets come from Unreal Engine: left-handed world (X forward, Y right, Z up), centimetres,
row-vector matrices whose rows are the camera's X/Y/Z axes and its position. We output
right-handed OpenCV camera-to-world matrices in metres (camera x right, y down, z forward) in a
right-handed Z-up world made by flipping Unreal's Y. ReCamMaster's own loader reorders the axes
but keeps the left-handed world, which leaves determinant -1; flipping the world fixes that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from models.fov import intrinsics, relative_to
from stages.base import Resources, Sample, Stage
from stages.video import DecodeError, encode_mp4, probe, read_frames

SENSOR_MM = 23.76  # MultiCamVideo's square sensor
CAM_FOV_DEG = 52.67  # Context-as-Memory's renders
_FLIP = np.diag([1.0, -1.0, 1.0])  # Unreal world <-> right-handed world
_AXES = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=np.float64)  # OpenCV (x,y,z) = Unreal (Y,-Z,X)


CONVENTION = "opencv_c2w_metres_zup_righthanded_world"


def unreal_to_opencv(rows: np.ndarray) -> np.ndarray:
    """(T, 4, 4) Unreal row-vector transforms (cm) -> (T, 4, 4) OpenCV camera-to-world (m)."""
    rows = np.asarray(rows, np.float64)
    out = np.zeros_like(rows)
    axes = np.swapaxes(rows[:, :3, :3], 1, 2)  # columns: Unreal X, Y, Z axes
    out[:, :3, :3] = _FLIP @ axes @ _AXES
    out[:, :3, 3] = rows[:, 3, :3] @ _FLIP / 100.0
    out[:, 3, 3] = 1.0
    return out


def opencv_to_unreal(c2w: np.ndarray) -> np.ndarray:
    """Inverse of ``unreal_to_opencv`` (used to write demo scenes in the real layouts)."""
    c2w = np.asarray(c2w, np.float64)
    out = np.zeros_like(c2w)
    out[:, :3, :3] = np.swapaxes(_FLIP @ c2w[:, :3, :3] @ _AXES.T, 1, 2)
    out[:, 3, :3] = c2w[:, :3, 3] @ _FLIP * 100.0
    out[:, 3, 3] = 1.0
    return out


def rotator_rows(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Unreal FRotator (degrees) -> (T, 3, 3) rows = the rotated X, Y, Z axes (FRotationMatrix)."""
    p, y, r = (np.radians(np.asarray(a, np.float64)) for a in (pitch, yaw, roll))
    sp, cp, sy, cy, sr, cr = np.sin(p), np.cos(p), np.sin(y), np.cos(y), np.sin(r), np.cos(r)
    x_axis = np.stack([cp * cy, cp * sy, sp], -1)
    y_axis = np.stack([sr * sp * cy - cr * sy, sr * sp * sy + cr * cy, -sr * cp], -1)
    z_axis = np.stack([-(cr * sp * cy + sr * sy), cy * sr - cr * sp * sy, cr * cp], -1)
    return np.stack([x_axis, y_axis, z_axis], 1)


def rows_to_rotator(rows: np.ndarray) -> np.ndarray:
    """Inverse of ``rotator_rows``: (T, 3) pitch, yaw, roll in degrees."""
    x_axis, y_axis, z_axis = rows[:, 0], rows[:, 1], rows[:, 2]
    pitch = np.degrees(np.arcsin(np.clip(x_axis[:, 2], -1, 1)))
    yaw = np.degrees(np.arctan2(x_axis[:, 1], x_axis[:, 0]))
    roll = np.degrees(np.arctan2(-y_axis[:, 2], z_axis[:, 2]))
    return np.stack([pitch, yaw, roll], -1)


def parse_recammaster(data: dict) -> dict[str, np.ndarray]:
    """``{"frame0": {"cam01": "[r] [r] [r] [tx ty tz 1] "}}`` -> ``{cam: (T, 4, 4) Unreal rows}``."""
    if not isinstance(data, dict) or not data:
        raise ValueError("camera_extrinsics.json must be a non-empty object of frames")
    frames = sorted(data, key=lambda k: int(re.sub(r"\D", "", k) or -1))
    if [int(re.sub(r"\D", "", k) or -1) for k in frames] != list(range(len(frames))):
        raise ValueError(f"frames must be frame0..frame{len(frames) - 1}, got {frames[:3]}...")
    cams = sorted(data[frames[0]])
    out = {c: np.zeros((len(frames), 4, 4)) for c in cams}
    for t, f in enumerate(frames):
        if sorted(data[f]) != cams:
            raise ValueError(f"{f} lists cameras {sorted(data[f])}, frame0 lists {cams}")
        for c in cams:
            vals = [float(v) for v in re.findall(r"[-+0-9.eEinfaINFA]+", data[f][c])]
            if len(vals) != 16:
                raise ValueError(f"{f}/{c}: expected 16 numbers, got {len(vals)}")
            out[c][t] = np.reshape(vals, (4, 4))
    return out


def _xyz(v, keys: tuple[str, str, str]) -> list[float]:
    if isinstance(v, dict):
        return [float(v[k]) for k in keys]
    if isinstance(v, (list, tuple)) and len(v) == 3:
        return [float(x) for x in v]
    raise ValueError(f"expected {keys} as an object or a 3-list, got {v!r}")


def parse_cam_json(data) -> tuple[np.ndarray, float | None]:
    """Context-as-Memory per-frame json -> ((T, 4, 4) Unreal rows, fov or None).

    Accepted shapes (the release's exact schema is not public): a list of frames, ``{"frames": [...]}``
    or ``{"0": {...}, "1": ...}``; each frame holds (possibly under ``"CineCameraActor"``) ``position``
    ``{x, y, z}`` in cm and ``rotation`` ``{pitch, yaw, roll}`` in degrees (or 3-lists in that order).
    """
    fov = None
    if isinstance(data, dict):
        fov = data.get("fov")
        if "frames" in data:
            data = data["frames"]
        else:
            data = [data[k] for k in sorted((k for k in data if k.isdigit()), key=int)]
    if not isinstance(data, list) or not data:
        raise ValueError("pose json holds no frames")
    pos, rot = [], []
    for i, fr in enumerate(data):
        cam = fr.get("CineCameraActor", fr) if isinstance(fr, dict) else None
        if not isinstance(cam, dict) or "position" not in cam or "rotation" not in cam:
            raise ValueError(f"frame {i}: needs position and rotation")
        pos.append(_xyz(cam["position"], ("x", "y", "z")))
        rot.append(_xyz(cam["rotation"], ("pitch", "yaw", "roll")))
    pos, rot = np.array(pos), np.array(rot)
    rows = np.zeros((len(pos), 4, 4))
    rows[:, :3, :3] = rotator_rows(rot[:, 0], rot[:, 1], rot[:, 2])
    rows[:, 3, :3], rows[:, 3, 3] = pos, 1.0
    return rows, (float(fov) if fov is not None else None)


def focal_from_folder(name: str) -> float:
    """``f24_aperture5`` / ``24_aperture2.4`` -> 24.0 (mm)."""
    m = re.fullmatch(r"f?(\d+(?:\.\d+)?)_aperture[\d.]+", name)
    if not m:
        raise ValueError(f"folder {name!r} is not <focal>_aperture<N> (e.g. f24_aperture5)")
    return float(m.group(1))


def intrinsics_from_focal(focal_mm: float, width: int, height: int, sensor_mm: float = SENSOR_MM) -> np.ndarray:
    """Square sensor: the sensor spans the image width and height alike."""
    fx, fy = focal_mm / sensor_mm * width, focal_mm / sensor_mm * height
    return np.array([[fx, 0, width / 2], [0, fy, height / 2], [0, 0, 1]], dtype=np.float64)


def pose_problem(c2w: np.ndarray, tol: float = 1e-3) -> tuple[str, str] | None:
    """``(reason, detail)`` when poses are unusable: not finite, not rigid, or mirrored."""
    c2w = np.asarray(c2w, np.float64)
    if not np.all(np.isfinite(c2w)):
        bad = np.argwhere(~np.isfinite(c2w).all(axis=(1, 2)))[:, 0]
        return "pose_not_finite", f"frames {bad[:5].tolist()}"
    r = c2w[:, :3, :3]
    err = np.abs(np.swapaxes(r, 1, 2) @ r - np.eye(3)).max(axis=(1, 2))
    if err.max() > tol:
        return "pose_not_rigid", f"frame {int(err.argmax())}: |R^T R - I| = {err.max():.3g}"
    det = np.linalg.det(r)
    if det.min() < 0:
        return "pose_reflection", f"frame {int(det.argmin())}: det(R) = {det.min():.3g} after conversion"
    return None


def load_json(path: str | Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def numbered_frames(folder: str | Path) -> list[Path]:
    """``<i>.png`` files in frame order (numeric, not lexicographic)."""
    files = [p for p in Path(folder).glob("*.png") if p.stem.isdigit()]
    return sorted(files, key=lambda p: int(p.stem))


@dataclass
class LoadPoses(Stage):
    """Read a scene's or roam's camera poses into OpenCV camera-to-world metres, checked and normalised.

    ``layout="multicam"`` (source ``scene_dir``): one sample holds the scene's cameras, because the
    per-scene score matrix needs them all. ``poses`` (C, F, 4, 4) holds every camera's trajectory in the
    order of ``meta["cameras"]``, relative to the first frame of ``reference_camera``; ``poses_self`` the
    same relative to each video's own first frame (pipelines/schema.py, multicam/2). ``layout="cam"``
    (source ``frames_dir``, ``pose_json``): one long roam, ``poses`` relative to its first frame.
    """

    reference_camera: str = "cam01"
    fov_deg: float = CAM_FOV_DEG  # Context-as-Memory renders, used when the json gives none
    include_media: bool = True  # copy scene videos / encode the roam as mp4 into the sample
    roam_fps: float = 30.0
    max_roam_media_bytes: int = 1 << 30  # decoded size above which a roam keeps its frames on disk
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "poses/2"  # 2: one stacked array per scene
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("reference_camera", "fov_deg", "include_media", "roam_fps", "max_roam_media_bytes")

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            try:
                if s.source.get("layout") == "cam":
                    self._roam(s)
                elif s.source.get("layout") == "multicam":
                    self._scene(s)
            except DecodeError as e:
                s.reject(e.reason, stage=self.name, detail=e.detail)
            except (OSError, ValueError, KeyError, TypeError) as e:
                s.reject("bad_pose_file", stage=self.name, detail=f"{type(e).__name__}: {e}")
        return batch

    def _check(self, s: Sample, what: str, c2w: np.ndarray, n_frames: int) -> bool:
        problem = pose_problem(c2w)
        if problem:
            s.reject(problem[0], stage=self.name, detail=f"{what}: {problem[1]}")
        elif len(c2w) != n_frames:
            s.reject("pose_frame_mismatch", stage=self.name, detail=f"{what}: {len(c2w)} poses, {n_frames} frames")
        return not s.rejected

    def _scene(self, s: Sample) -> None:
        scene = Path(s.source["scene_dir"])
        rows = parse_recammaster(load_json(scene / "cameras" / "camera_extrinsics.json"))
        if self.reference_camera not in rows:
            s.reject("missing_reference_camera", stage=self.name,
                     detail=f"{self.reference_camera} not in {list(rows)}")
            return
        focal = focal_from_folder(scene.parent.name)
        poses, infos, frames = {}, {}, {}
        for cam, r in rows.items():
            video = scene / "videos" / f"{cam}.mp4"
            info = probe(video)
            n = info.frames or len(read_frames(video, size=(16, 16)))
            poses[cam] = unreal_to_opencv(r)
            if not self._check(s, cam, poses[cam], n):
                return
            infos[cam] = info
            frames[cam] = n
        sizes = {(i.width, i.height) for i in infos.values()}
        if len(sizes) != 1:
            s.reject("mixed_video_sizes", stage=self.name, detail=str(sorted(sizes)))
            return
        (w, h), ref = sizes.pop(), poses[self.reference_camera][0]
        cams = sorted(poses)
        if len({len(poses[c]) for c in cams}) != 1:
            s.reject("pose_frame_mismatch", stage=self.name,
                     detail=f"cameras differ in frame count: { {c: len(poses[c]) for c in cams} }")
            return
        s.footage_s = sum(frames[c] / infos[c].fps for c in cams if infos[c].fps)  # the run's throughput counts it
        s.arrays["poses"] = np.stack([relative_to(poses[c], ref) for c in cams]).astype(np.float32)
        s.arrays["poses_self"] = np.stack([relative_to(poses[c], poses[c][0]) for c in cams]).astype(np.float32)
        if self.include_media:
            for cam in cams:
                s.blobs[f"{cam}.mp4"] = (scene / "videos" / f"{cam}.mp4").read_bytes()
        s.arrays["intrinsics"] = intrinsics_from_focal(focal, w, h).astype(np.float32)
        first = infos[self.reference_camera]
        s.meta.update(layout="multicam", scene=scene.name, split=scene.parent.name, cameras=cams,
                      reference_camera=self.reference_camera, focal_mm=focal, width=w, height=h,
                      fps=first.fps, frames=len(poses[self.reference_camera]), convention=CONVENTION)

    def _roam(self, s: Sample) -> None:
        frames = numbered_frames(s.source["frames_dir"])
        if not frames:
            s.reject("no_frames", stage=self.name, detail=str(s.source["frames_dir"]))
            return
        rows, fov = parse_cam_json(load_json(s.source["pose_json"]))
        c2w = unreal_to_opencv(rows)
        if [int(p.stem) for p in frames] != list(range(len(frames))):
            s.reject("frame_numbering_gap", stage=self.name, detail=f"{len(frames)} files, last {frames[-1].name}")
            return
        if not self._check(s, "roam", c2w, len(frames)):
            return
        s.footage_s = len(frames) / self.roam_fps
        first = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
        if first is None:
            s.reject("undecodable", stage=self.name, detail=str(frames[0]))
            return
        h, w = first.shape[:2]
        fov = fov or self.fov_deg
        s.arrays["poses"] = relative_to(c2w, c2w[0]).astype(np.float32)
        s.arrays["intrinsics"] = intrinsics(fov, w, h).astype(np.float32)
        s.meta.update(layout="cam", scene=Path(s.source["frames_dir"]).name, fov_deg=fov, width=w, height=h,
                      fps=self.roam_fps, frames=len(frames), convention=CONVENTION)
        if self.include_media and len(frames) * w * h * 3 <= self.max_roam_media_bytes and w % 2 == 0 == h % 2:
            imgs = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in frames])
            s.blobs["roam.mp4"] = encode_mp4(imgs, self.roam_fps)
        else:
            s.meta["frames_dir"] = str(s.source["frames_dir"])  # too big to hold: the sample points at it


@dataclass
class EstimatePoses(Stage):
    """Poses for static multi-view frames without metadata (source ``frames_dir`` of ``<i>.png``, layout
    ``frames``) by COLMAP structure from motion. Same convention as ``LoadPoses``, relative to the first
    registered frame; the scale is COLMAP's, not metres. Unregistered frames get NaN poses."""

    fov_deg: float | None = None  # known horizontal FOV; None lets COLMAP estimate the focal length
    min_registered: float = 0.8  # fraction of frames that must register
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "sfm_poses/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("fov_deg", "min_registered")

    def __post_init__(self) -> None:
        from models.sfm import _pycolmap

        _pycolmap()  # fail at construction, with the install hint, when the backend is missing

    def setup(self) -> None:
        from models.sfm import sfm_poses

        self._sfm = sfm_poses

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            if s.source.get("layout") != "frames":
                continue
            files = numbered_frames(s.source["frames_dir"])
            imgs = [cv2.imread(str(p)) for p in files]
            if len(imgs) < 2 or any(i is None for i in imgs):
                s.reject("undecodable" if imgs else "no_frames", stage=self.name, detail=str(s.source["frames_dir"]))
                continue
            imgs = [cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in imgs]
            h, w = imgs[0].shape[:2]
            k = intrinsics(self.fov_deg, w, h) if self.fov_deg else None
            poses, ok = self._sfm(imgs, k)
            if ok.mean() < self.min_registered:
                s.reject("sfm_failed", stage=self.name, detail=f"{int(ok.sum())}/{len(ok)} frames registered")
                continue
            s.arrays["poses"] = relative_to(poses, poses[np.flatnonzero(ok)[0]]).astype(np.float32)
            s.arrays["registered"] = ok.astype(np.uint8)
            if k is not None:
                s.arrays["intrinsics"] = k.astype(np.float32)
            s.meta.update(layout="frames", scene=Path(s.source["frames_dir"]).name, width=w, height=h,
                          frames=len(imgs), scale="arbitrary (structure from motion)",
                          convention="opencv_c2w_sfm_world")
        return batch
