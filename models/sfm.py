"""Camera poses for footage without metadata: COLMAP structure-from-motion through pycolmap (weightless).

Static multi-view frames in, OpenCV camera-to-world poses out, in COLMAP's arbitrary world
frame and scale; callers relativise (``models.fov.relative_to``) and, if they need metres,
rescale. COLMAP's camera axes are OpenCV's (x right, y down, z forward), so only the
world-to-camera -> camera-to-world inversion is needed. No Ray code.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np


def _pycolmap():
    try:
        import pycolmap
    except ImportError as e:  # optional backend
        raise ImportError("the pycolmap pose backend needs `pip install -c constraints.txt pycolmap` "
                          "(pyproject extra: sfm)") from e
    return pycolmap


def sfm_poses(images: list[np.ndarray], k: np.ndarray | None = None, seed: int = 0,
              num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(poses (N, 4, 4) c2w, registered (N,) bool)`` for RGB uint8 frames of one static scene.

    ``k`` fixes a shared pinhole camera (else COLMAP guesses a focal length and refines it).
    Frames COLMAP could not register get NaN poses and ``registered=False``.
    """
    pycolmap = _pycolmap()
    pycolmap.logging.minloglevel = max(pycolmap.logging.minloglevel, 1)  # COLMAP's INFO floods the worker logs
    if len(images) < 2:
        raise ValueError(f"structure from motion needs at least 2 frames, got {len(images)}")
    with tempfile.TemporaryDirectory(prefix="memcorpus_sfm_") as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        names = [f"{i:06d}.png" for i in range(len(images))]
        for name, img in zip(names, images):
            cv2.imwrite(str(tmp / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        reader = pycolmap.ImageReaderOptions()
        if k is not None:
            reader.camera_model = "PINHOLE"
            reader.camera_params = ",".join(str(float(x)) for x in (k[0, 0], k[1, 1], k[0, 2], k[1, 2]))
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = num_threads
        pycolmap.extract_features(tmp / "db.db", tmp / "images", names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
        pycolmap.match_exhaustive(tmp / "db.db", device=pycolmap.Device.cpu)
        opts = pycolmap.IncrementalPipelineOptions()
        opts.random_seed, opts.num_threads, opts.multiple_models = seed, num_threads, False
        if k is not None:
            opts.ba_refine_focal_length = opts.ba_refine_principal_point = False
        (tmp / "sparse").mkdir()
        maps = pycolmap.incremental_mapping(tmp / "db.db", tmp / "images", tmp / "sparse", opts)
    poses = np.full((len(images), 4, 4), np.nan)
    if not maps:
        return poses, np.zeros(len(images), bool)
    rec = max(maps.values(), key=lambda r: r.num_reg_images())
    index = {n: i for i, n in enumerate(names)}
    for img in rec.images.values():
        if not img.has_pose:
            continue
        w2c = np.eye(4)
        w2c[:3, :4] = img.cam_from_world().matrix()
        poses[index[img.name]] = np.linalg.inv(w2c)
    return poses, np.isfinite(poses).all(axis=(1, 2))
