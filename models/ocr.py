"""Text-box detectors for subtitle finding: RapidOCR (offline, ONNX in the wheel) and PaddleOCR 3.x.

Both take an RGB ``(H, W, 3)`` uint8 image and return axis-aligned boxes ``[x0, y0, x1, y1]``
in that image's pixels with their scores. Only detection runs: no angle classifier, no
recogniser (we need where text is, not what it says). No Ray code here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _axis_boxes(polys, scores) -> list[tuple[list[int], float]]:
    out = []
    for poly, sc in zip(polys if polys is not None else [], scores if scores is not None else []):
        p = np.asarray(poly, dtype=np.float32).reshape(-1, 2)
        out.append(([int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()), int(p[:, 1].max())], float(sc)))
    return out


@dataclass
class RapidOCRDetector:
    """PP-OCR detection through RapidOCR; ``max_side`` bounds the network input (speed)."""

    max_side: int = 640
    # Below PP-OCR's 0.5 / 0.3: thin captions a few pixels high score 0.5-0.65 and their bitmap is faint.
    box_thresh: float = 0.4
    thresh: float = 0.2  # text-probability level of the DB bitmap
    # PP-OCR's 1.6 pads boxes for the recogniser; we want the text's extent (1.1: best band IoU, stacked strips)
    unclip_ratio: float = 1.1
    threads: int = 2

    def __post_init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise ValueError("subtitles backend 'rapidocr' needs the rapidocr and onnxruntime packages") from e
        self._engine = RapidOCR(params={
            "Global.use_cls": False, "Global.use_rec": False, "Global.log_level": "error",
            # 'max' keeps small strips small; the default 'min' would upscale a band to 736 px high.
            "Det.limit_type": "max", "Det.limit_side_len": self.max_side,
            "Det.box_thresh": self.box_thresh, "Det.thresh": self.thresh, "Det.unclip_ratio": self.unclip_ratio,
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })

    def detect(self, img: np.ndarray) -> list[tuple[list[int], float]]:
        res = self._engine(np.ascontiguousarray(img[..., ::-1]), use_det=True, use_cls=False, use_rec=False)
        return _axis_boxes(res.boxes, res.scores)


@dataclass
class PaddleTextDetector:
    """PaddleOCR 3.x ``TextDetection`` (PP-OCRv5 det) from a local ``model_dir``; never downloads."""

    model_dir: str = ""
    model_name: str = "PP-OCRv5_server_det"

    def __post_init__(self) -> None:
        if not self.model_dir or not Path(self.model_dir).is_dir():
            raise ValueError(
                f"subtitles backend 'paddle' needs subtitles.model_dir: a local {self.model_name} folder "
                f"(got {self.model_dir!r})"
            )
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        try:
            from paddleocr import TextDetection
        except ImportError as e:
            raise ValueError("subtitles backend 'paddle' needs `pip install paddleocr paddlepaddle`") from e
        self._model = TextDetection(model_name=self.model_name, model_dir=self.model_dir)

    def detect(self, img: np.ndarray) -> list[tuple[list[int], float]]:
        out = []
        for res in self._model.predict(np.ascontiguousarray(img[..., ::-1])):
            out += _axis_boxes(res["dt_polys"], res["dt_scores"])
        return out


def make_text_detector(backend: str, model_dir: str = "", max_side: int = 640):
    if backend == "rapidocr":
        return RapidOCRDetector(max_side=max_side)
    if backend == "paddle":
        return PaddleTextDetector(model_dir=model_dir)
    raise ValueError(f"subtitles backend must be 'rapidocr' or 'paddle', got {backend!r}")
