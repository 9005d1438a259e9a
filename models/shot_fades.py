"""Fades to and from black in a per-frame mean-luma series (the content detector's ``fades`` option).

Off by default: Memento (arXiv 2606.14667, §3.1) builds its sequences from hard cuts, and a fade is
left inside a shot. Many labelled shot-boundary sets count a fade as a boundary; with ``fades`` on a
fade is reported at its first frame, so the two can be compared. Dissolves are not fades: the
picture never goes black, and no boundary is reported for them either way.
"""

from __future__ import annotations

import numpy as np


def fade_starts(luma: list[float], black: float = 40.0, min_frames: int = 4, min_drop: float = 30.0,
                tol: float = 0.5) -> list[tuple[int, int]]:
    """``(first frame, last frame)`` of each fade to or from black in a mean-luma series.

    A run of black frames (mean luma <= ``black``) is a fade when the picture darkens into it or
    brightens out of it steadily (each frame ``tol`` darker, resp. brighter, than the one before) for
    at least ``min_frames`` frames and by at least ``min_drop``. The fade begins at the first darkened
    frame of a fade-out; a fade-in with no fade-out before it begins at its first black frame (a cut to
    black, then a fade up, is one transition). It ends with the fade-in, or with the black run.
    """
    y = np.asarray(luma, np.float64)
    n, out, i = len(y), [], 0
    while i < n:
        if y[i] > black:
            i += 1
            continue
        a = i
        while i < n and y[i] <= black:
            i += 1
        b, low = i - 1, float(y[a:i].min())
        k = a  # walk back while the frames before keep getting darker
        while k > 0 and y[k - 1] > y[k] + tol:
            k -= 1
        m = b  # walk on while the frames after keep getting brighter
        while m + 1 < n and y[m + 1] > y[m] + tol:
            m += 1
        fade_out = a - k >= min_frames and y[k] - low >= min_drop
        fade_in = m - b >= min_frames and y[m] - low >= min_drop
        if fade_out or fade_in:
            out.append((k + 1 if fade_out else a, m if fade_in else b))
    return out
