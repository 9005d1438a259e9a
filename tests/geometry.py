"""Small geometry helpers the tests score with: overlap of row ranges and boxes, a camera turned by yaw."""

from __future__ import annotations

import numpy as np


def iou_1d(a, b) -> float:
    """IoU of two [start, end) ranges, e.g. subtitle bands as pixel rows."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def box_iou(a, b) -> float:
    """IoU of two [x0, y0, x1, y1] boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def yaw_pose(deg: float) -> np.ndarray:
    """A 4x4 camera-to-world pose at the origin turned ``deg`` degrees about the y axis."""
    p = np.eye(4)
    t = np.radians(deg)
    p[:3, :3] = [[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]]
    return p
