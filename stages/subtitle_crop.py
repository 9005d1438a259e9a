"""The crop that removes a subtitle band and the static overlays (logos, watermarks) it can afford to.

An overlay is cut off by whichever frame edge keeps the most picture, but only while that
costs at most ``overlay_budget`` of the crop it is cut from: a watermark in a corner costs a
thin strip, one in mid-frame would cost half the picture. Overlays the budget cannot pay for
stay in the crop and are reported as kept (the stage flags the sequence ``overlay_kept``:
a model trained on it learns to draw the watermark).
"""

from __future__ import annotations


def _fit(rect: list[int], target: float) -> list[int]:
    """The largest centred rectangle inside ``rect`` with aspect ``target`` (w/h), even sizes."""
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return [0, 0, 0, 0]
    if w / h > target:
        nw = int(h * target)
        x0, x1 = x0 + (w - nw) // 2, x0 + (w - nw) // 2 + nw
    else:
        nh = int(w / target)
        y0, y1 = y0 + (h - nh) // 2, y0 + (h - nh) // 2 + nh
    return [x0, y0, x1 - (x1 - x0) % 2, y1 - (y1 - y0) % 2]


def _area(r: list[int]) -> int:
    return max(0, r[2] - r[0]) * max(0, r[3] - r[1])


def _overlap(a: list[int], b: list[int]) -> int:
    return _area([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])


def plan_crop(W: int, H: int, picture: list[int], band: list[int] | None, aspect: float = 0.0,
              margin: int | None = None, overlays: list[list[int]] = (), overlay_budget: float = 0.35) -> dict:
    """Largest rectangle inside ``picture`` that avoids the subtitle band and the ``overlays`` it can afford.

    ``aspect`` (w/h) 0 keeps the picture's own aspect. Returns ``crop`` (even sizes),
    ``kept_fraction`` (of the frame) and ``kept_overlays``: indices of the overlays still inside
    the crop (cutting them would have cost more than ``overlay_budget`` of the area).
    """
    x0, y0, x1, y1 = picture
    target = aspect or (x1 - x0) / max(y1 - y0, 1)
    margin = max(4, H // 100) if margin is None else margin  # outline and glow around the letters
    if band is not None:
        if (band[0] + band[1]) / 2 > (y0 + y1) / 2:
            y1 = min(y1, band[0] - margin)
        else:
            y0 = max(y0, band[1] + margin)
    rect = [x0, y0, x1, y1]
    # Smallest first, and again after every cut: the aspect fit re-centres the crop, which can bring
    # an overlay that the previous crop left out by slack back in.
    order = sorted(range(len(overlays)), key=lambda k: _area(overlays[k]))
    given_up: set[int] = set()
    for _ in range(2 * len(overlays)):
        hit = [k for k in order if k not in given_up and _overlap(_fit(rect, target), overlays[k]) > 0]
        if not hit:
            break
        b, r = overlays[hit[0]], rect
        options = [[r[0], b[3] + margin, r[2], r[3]], [r[0], r[1], r[2], b[1] - margin],
                   [b[2] + margin, r[1], r[2], r[3]], [r[0], r[1], b[0] - margin, r[3]]]
        best = max(options, key=lambda o: _area(_fit(o, target)))
        if _area(_fit(best, target)) >= (1 - overlay_budget) * _area(_fit(rect, target)):
            rect = best
        else:
            given_up.add(hit[0])
    crop = _fit(rect, target)
    kept = [k for k in range(len(overlays)) if _overlap(crop, overlays[k]) > 0]
    return {"crop": crop, "kept_fraction": round(_area(crop) / float(W * H), 4), "kept_overlays": kept}


def crop_without_band(W: int, H: int, picture: list[int], band: list[int] | None, aspect: float = 0.0,
                      margin: int | None = None, overlays: list[list[int]] = (),
                      overlay_budget: float = 0.35) -> tuple[list[int], float]:
    """:func:`plan_crop` as ``(crop, kept_fraction)``."""
    p = plan_crop(W, H, picture, band, aspect, margin, overlays, overlay_budget)
    return p["crop"], p["kept_fraction"]
