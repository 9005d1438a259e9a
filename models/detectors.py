"""Subject detectors for tracking: plain RGB frames in, boxes out. No Ray code here.

Backends:
- ``hog``: OpenCV 4's built-in HOG + linear SVM people detector. Weightless (the SVM ships inside
  OpenCV), CPU only, people only. OpenCV 5 removed it, hence the ``<5`` pin in constraints.txt.
- ``yolo``: ultralytics YOLO from a local weights file; never downloads (``YOLO_OFFLINE=1``).
  Only ONNX is loaded by default: ultralytics reads ``.pt`` (and TorchScript) files with pickle,
  so a weights file from a stranger could run any code. ``trust_weights=True`` (config key
  ``tracking.trust_weights``) lifts that for files you made or verified yourself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Detections:
    """Boxes of one frame in the shape ultralytics' BYTETracker reads (``conf``, ``cls``, ``xywh``, masks)."""

    xyxy: np.ndarray  # (N, 4) float32, pixels
    conf: np.ndarray  # (N,) float32 in [0, 1]
    cls: np.ndarray  # (N,) float32 class ids

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32))

    @property
    def xywh(self) -> np.ndarray:  # (N, 4) centre x, centre y, width, height
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: np.ndarray) -> Detections:
        return Detections(self.xyxy[mask], self.conf[mask], self.cls[mask])

    def scaled(self, factor: float) -> Detections:
        return Detections(self.xyxy * np.float32(factor), self.conf, self.cls)


class HogPeopleDetector:
    """OpenCV's Dalal-Triggs people detector, run on a downscaled frame (it is slow at full size).

    HOG returns SVM margins, not probabilities; ``1 - exp(-margin)`` maps them into [0, 1) so that
    ByteTrack's high/low thresholds (0.25 / 0.1) split confident and weak detections sensibly
    (a margin of 0.3 is ~0.26, 1.0 is ~0.63).
    """

    name = "hog"

    def __init__(self, max_width: int = 640, scale: float = 1.05, win_stride: int = 8, min_margin: float = 0.0):
        import cv2

        if cv2.__version__.split(".")[0] != "4":
            raise ImportError(f"the hog detector needs OpenCV 4 (found {cv2.__version__}); pin opencv-python-headless<5")
        self._cv2 = cv2
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.max_width, self.scale, self.win_stride, self.min_margin = max_width, scale, win_stride, min_margin

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        # Frames smaller than the 64x128 detection window crash OpenCV's HOG; enlarge those instead.
        f = max(min(1.0, self.max_width / w), 64 / w, 128 / h)
        img = frame if f == 1.0 else self._cv2.resize(frame, (round(w * f), round(h * f)), interpolation=3)
        gray = self._cv2.cvtColor(img, self._cv2.COLOR_RGB2GRAY)
        s = self.win_stride
        rects, margins = self._hog.detectMultiScale(gray, winStride=(s, s), padding=(8, 8), scale=self.scale)
        if len(rects) == 0:  # OpenCV returns empty tuples, not empty arrays
            return Detections.empty()
        margins = np.asarray(margins, np.float32).reshape(-1)
        keep = margins > self.min_margin
        r = np.asarray(rects, np.float32)[keep]
        xyxy = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], axis=1)
        conf = (1.0 - np.exp(-margins[keep])).astype(np.float32)
        return Detections(xyxy, conf, np.zeros(len(conf), np.float32)).scaled(1.0 / f)


@dataclass(frozen=True)
class PersonShape:
    """Which boxes can be a person worth following: tall, of a person's size, and whole.

    Both detectors fire on scenery: HOG's 1:2 window on storefronts, shelves and the blurred side bars
    of phone video, YOLO on posters. Those boxes are often cut by the frame edge (a window that
    reaches past the picture) or far taller than anyone in the scene could be. A box touching the
    left, right or top edge is dropped (a person half out of the picture is a poor reconstruction
    target anyway); the bottom edge is allowed, since medium shots cut people at the knees.
    """

    min_aspect: float = 1.2  # height / width: standing or sitting people are taller than wide
    max_aspect: float = 4.5
    min_height: float = 0.08  # box height / frame height
    max_height: float = 0.95
    edge_margin: float = 0.005  # of the frame size: closer to the left/right/top edge counts as touching

    def __post_init__(self) -> None:
        if not 0 < self.min_aspect < self.max_aspect or not 0 <= self.min_height < self.max_height <= 1:
            raise ValueError(f"PersonShape needs 0 < min_aspect < max_aspect and 0 <= min_height < max_height <= 1,"
                             f" got {self}")

    def keep(self, dets: Detections, width: int, height: int) -> np.ndarray:
        """(N,) bool: the boxes that pass."""
        x0, y0, x1, y1 = dets.xyxy.T
        w, h = x1 - x0, y1 - y0
        with np.errstate(divide="ignore", invalid="ignore"):
            aspect = h / w
        mx, my = self.edge_margin * width, self.edge_margin * height
        whole = (x0 > mx) & (x1 < width - mx) & (y0 > my)
        sized = (h >= self.min_height * height) & (h <= self.max_height * height)
        return whole & sized & (aspect >= self.min_aspect) & (aspect <= self.max_aspect)


SAFE_WEIGHTS = (".onnx",)  # read by onnxruntime (metadata via ast.literal_eval): data, not code


def check_weights(weights: str, trust: bool = False) -> None:
    """Refuse YOLO weights whose loading can run code (pickle) unless the user trusts the file."""
    if not weights:
        raise ValueError("tracking.yolo_weights is empty: give the path of a local YOLO weights file (e.g. yolo11n.onnx)")
    if not trust and not weights.lower().endswith(SAFE_WEIGHTS):
        raise ValueError(
            f"tracking.yolo_weights={weights!r}: only ONNX weights are loaded by default, because ultralytics "
            "unpickles .pt/TorchScript files and a pickle can run any code. Export once on a trusted machine "
            f"(yolo export model={Path(weights).name} format=onnx) and use the .onnx, or set "
            "tracking.trust_weights=true if you made or verified this file yourself")


class YoloDetector:
    """ultralytics YOLO from a local ``.onnx`` (or trusted ``.pt``) file; ``classes`` are COCO ids (0 = person)."""

    name = "yolo"

    def __init__(self, weights: str, classes: tuple[int, ...] = (0,), conf: float = 0.1, device: str | None = None,
                 trust_weights: bool = False):
        check_weights(weights, trust_weights)
        if not Path(weights).is_file():
            raise ValueError(f"tracking.yolo_weights={weights!r} is not a file; YOLO weights are never downloaded here")
        os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics must not phone home for fonts, assets, updates
        from ultralytics import YOLO

        self._model = YOLO(weights)
        # conf is kept low on purpose: ByteTrack's second association uses the weak boxes.
        self.classes, self.conf, self.device = list(classes), conf, device

    def detect(self, frame: np.ndarray) -> Detections:
        # ultralytics expects BGR numpy images.
        res = self._model.predict(frame[..., ::-1], classes=self.classes, conf=self.conf, device=self.device,
                                  verbose=False)[0]
        b = res.boxes.cpu().numpy()
        return Detections(b.xyxy.astype(np.float32), b.conf.astype(np.float32), b.cls.astype(np.float32))


def make_detector(backend: str, yolo_weights: str = "", classes: tuple[int, ...] = (0,), max_width: int = 640,
                  trust_weights: bool = False):
    if backend == "hog":
        if tuple(classes) != (0,):
            raise ValueError(f"tracking.classes={classes}: the hog backend detects people only (class 0)")
        return HogPeopleDetector(max_width=max_width)
    if backend == "yolo":
        return YoloDetector(yolo_weights, classes=tuple(classes), trust_weights=trust_weights)
    raise ValueError(f"tracking.detector={backend!r}: expected 'hog' or 'yolo'")
