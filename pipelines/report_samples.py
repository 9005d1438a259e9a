"""One card per shown sample in the dataset report. Each part appears only when its fields are there.

Corpora are recognised by what a sample carries, not by name, because the stages that write
them keep growing: ``clip.mp4`` + ``shots`` (Memento), ``source``/``target``/``target_extended``
(Señorita-Long), ``layout == "multicam"`` with ``scores`` (multi-camera scene), ``roam.mp4``
(long single-camera roam). Anything else still gets its videos, images and array shapes shown.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipelines import report_plots as plots
from pipelines.report_sheets import PALETTE, Mark, Segment, boxed, contact_sheet, crop_diagram, tiles
from stages.video import DecodeError, iter_frames

esc = html.escape


def figure(src: str, alt: str, caption: str = "", cls: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="{cls}"><img src="{esc(src)}" alt="{esc(alt)}" loading="eager">{cap}</figure>'


def chips(items: dict[str, Any]) -> str:
    return "".join(f'<span class="chip"><i>{esc(k)}</i> {esc(str(v))}</span>' for k, v in items.items() if v not in
                   (None, "", []))


def shot_segments(meta: dict) -> list[Segment]:
    shots = meta.get("shots")
    if not isinstance(shots, list):
        return []
    return [Segment(int(a), int(b), f"shot {k + 1}", PALETTE[k % len(PALETTE)]) for k, (a, b) in enumerate(shots)]


def memory_segments(meta: dict, total: int) -> list[Segment]:
    mem = (meta.get("extension") or {}).get("memory_frames")
    if not (isinstance(mem, list) and len(mem) == 2):
        return []
    a, b = int(mem[0]), int(mem[1])
    return [Segment(0, a - 1, "original", "#2f6fde"), Segment(a, (b or total) - 1, "memory (generated)", "#8e5cd9")]


def first_frame(video: bytes, width: int = 0) -> np.ndarray:
    for _, _, img in iter_frames(video):
        return img
    raise DecodeError("no_frames", "no first frame")


def _num(v, fmt: str) -> str:
    """A tracking figure for the table; '-' for samples written before it was recorded."""
    return format(float(v), fmt) if isinstance(v, (int, float)) else "-"


def overlays_in_clip(meta: dict) -> list[list[float]]:
    """Overlays the crop kept, as fractions of the clip frame (the clip is the crop, scaled)."""
    crop = meta.get("crop")
    ovs = (meta.get("subtitles") or {}).get("overlays") or []
    if not (isinstance(crop, list) and len(crop) == 4) or crop[2] <= crop[0] or crop[3] <= crop[1]:
        return []
    x0, y0, x1, y1 = crop
    out = []
    for o in ovs:
        b = o.get("box") if isinstance(o, dict) else None
        if not (isinstance(b, list) and len(b) == 4) or b[2] <= x0 or b[0] >= x1 or b[3] <= y0 or b[1] >= y1:
            continue
        out.append([max(0.0, (b[0] - x0) / (x1 - x0)), max(0.0, (b[1] - y0) / (y1 - y0)),
                    min(1.0, (b[2] - x0) / (x1 - x0)), min(1.0, (b[3] - y0) / (y1 - y0))])
    return out


def _jpg(data: bytes) -> np.ndarray | None:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if img is None else img[..., ::-1].copy()


class SampleCard:
    """Renders one sample into HTML, writing its pictures next to ``index.html`` as ``s<n>_*``."""

    def __init__(self, out: Path, n: int, key: str, members: dict[str, Any], frames: int = 12) -> None:
        self.out, self.n, self.key, self.m, self.frames = out, n, key, members, frames
        self.meta: dict = members.get("json") if isinstance(members.get("json"), dict) else {}
        self.problems: list[str] = []

    def path(self, what: str, ext: str) -> Path:
        return self.out / f"s{self.n:03d}_{what}.{ext}"

    def render(self) -> str:
        parts = []
        for part in (self._header, self._memento, self._senorita, self._multicam, self._roam, self._other_videos,
                     self._arrays):
            try:
                parts.append(part())
            except (DecodeError, ValueError, KeyError, TypeError, IndexError) as e:
                # A field in an unexpected shape costs that picture, not the report.
                self.problems.append(f"{part.__name__.strip('_')}: {type(e).__name__}: {e}")
        if self.problems:
            parts.append('<p class="warn">Not drawn: ' + esc("; ".join(self.problems)) + "</p>")
        return (f'<article class="card" id="sample-{esc(self.key)}"><h3><code>{esc(self.key)}</code></h3>'
                + "".join(p for p in parts if p) + "</article>")

    def _header(self) -> str:
        m = self.meta
        size = m.get("size") or ([m["width"], m["height"]] if "width" in m and "height" in m else None)
        info = {
            "duration": f"{m['duration']:.1f} s" if isinstance(m.get("duration"), (int, float)) else None,
            "fps": f"{m['fps']:.3g}" if isinstance(m.get("fps"), (int, float)) else None,
            "frames": m.get("frames"), "size": f"{size[0]}×{size[1]}" if size else None,
            "shots": len(m["shots"]) if isinstance(m.get("shots"), list) else None,
            "kept area": f"{100 * m['kept_fraction']:.0f} %" if isinstance(m.get("kept_fraction"), float) else None,
            "layout": m.get("layout"), "scene": m.get("scene"),
        }
        return f'<div class="chips">{chips(info)}</div>'

    # -- Memento ---------------------------------------------------------------------------
    def _memento(self) -> str:
        clip, m = self.m.get("clip.mp4"), self.meta
        if not isinstance(clip, bytes):
            return ""
        track = m.get("tracking") if isinstance(m.get("tracking"), dict) else {}
        recon = track.get("recon_frames") or []
        marks = [Mark(int(r["frame"]), f"recon {k}", "#f3a712") for k, r in enumerate(recon)]
        subs = (m.get("subtitles") or {}).get("events") or []
        left_in = overlays_in_clip(m)
        sheet = contact_sheet(clip, self.path("clip", "jpg"), n=self.frames, fps=float(m.get("fps") or 0),
                              total=int(m.get("frames") or 0), segments=shot_segments(m), marks=marks,
                              ranges=[(e["start"], e["end"]) for e in subs], ranges_label="subtitles (removed)",
                              boxes=left_in)
        left = figure(sheet, f"contact sheet of {self.key}", "Evenly spaced frames; colour = shot, red bar = cut. "
                      "Timeline: shots to scale, ▾ thumbnails, ▴ reconstruction frames."
                      + (f" Orange boxes: {len(left_in)} static overlay(s) left in the clip (overlay_kept)."
                         if left_in else ""))
        right = self._captions()
        if isinstance(m.get("crop"), list) and isinstance(m.get("size"), list):
            st = m.get("subtitles") or {}
            diag = crop_diagram(first_frame(clip), m["size"], m["crop"], self.path("crop", "jpg"), st.get("band"),
                                [e["box"] for e in st.get("events", [])], [o["box"] for o in st.get("overlays", [])],
                                width=340)
            legend = f"{m['crop']} of {m['size'][0]}×{m['size'][1]}: teal = kept, hatched = cut away"
            if st:
                kept = sum(1 for o in st.get("overlays", []) if isinstance(o, dict) and o.get("kept"))
                legend += (f", red = subtitle band and {len(st.get('events', []))} subtitle boxes, orange = "
                           f"{len(st.get('overlays', []))} overlays ({kept} left in the crop)")
            right += "<h4>Crop</h4>" + figure(diag, "crop rectangle", legend + ".")
        right += self._quality()
        return f'<div class="split"><div>{left}</div><div>{right}</div></div>' + self._tracking(track)

    def _quality(self) -> str:
        q = self.meta.get("quality")
        if not isinstance(q, dict):
            return ""
        rows = "".join(f"<tr><td>{esc(k.replace('_', ' '))}</td><td class='num'>{v:.4g}</td></tr>"
                       for k, v in q.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        return f"<h4>Quality</h4><table class='quality'>{rows}</table>" if rows else ""

    def _captions(self) -> str:
        caps = self.meta.get("captions")
        if not isinstance(caps, dict):
            return '<p class="muted">No captions in this sample.</p>'
        out = []
        if caps.get("story"):
            out.append(f'<h4>Story</h4><p class="story">{esc(str(caps["story"]))}</p>')
        subjects = caps.get("subjects")
        if isinstance(subjects, list) and subjects:
            items = "".join(f"<li><b>{esc(str(s.get('name', '?')))}</b> {esc(str(s.get('description', '')))}</li>"
                            if isinstance(s, dict) else f"<li>{esc(str(s))}</li>" for s in subjects)
            out.append(f"<h4>Subjects</h4><ul class='subjects'>{items}</ul>")
        if isinstance(caps.get("shots"), list):
            items = "".join(f'<li><span class="dot" style="background:{PALETTE[k % len(PALETTE)]}"></span>'
                            f"<b>shot {k + 1}</b> {esc(str(c))}</li>" for k, c in enumerate(caps["shots"]))
            out.append(f"<h4>Shot captions</h4><ol class='shots'>{items}</ol>")
        if "skipped" in caps:
            out.append(f'<p class="muted">{esc(str(caps["skipped"]))}</p>')
        return "".join(out)

    def _tracking(self, track: dict) -> str:
        if not track:
            return ""
        recon = track.get("recon_frames") or []
        caps = (self.meta.get("captions") or {}).get("recon") or []
        figs = []
        for k, r in enumerate(recon):
            img = _jpg(self.m.get(f"recon{k}.jpg", b"")) if isinstance(self.m.get(f"recon{k}.jpg"), bytes) else None
            if img is None:
                continue
            name = boxed(img, [(r["box"], f"subject {r.get('track_id')}")], self.path(f"recon{k}", "jpg"))
            cap = f"<b>recon {k}</b> · frame {r['frame']} · area {r.get('area', 0):.0%}"
            if k < len(caps):
                cap += f"<br>{esc(str(caps[k]))}"
            figs.append(figure(name, f"reconstruction frame {k}", cap, cls="recon"))
        rows = "".join(
            f"<tr class='{'primary' if t.get('id') == track.get('primary') else ''}'><td>{esc(str(t.get('id')))}</td>"
            f"<td>{t.get('frames')}</td><td>{float(t.get('mean_area', 0)):.1%}</td>"
            f"<td>{_num(t.get('mean_conf'), '.2f')}</td><td>{_num(t.get('coverage'), '.0%')}</td>"
            f"<td>{esc(', '.join(str(s + 1) for s in t.get('shots', [])))}</td></tr>"
            for t in track.get("tracks", [])
        )
        table = (f"<table class='tracks'><tr><th>subject</th><th>frames seen</th><th>mean box area</th>"
                 f"<th>mean score</th><th>coverage</th><th>shots</th></tr>{rows}</table>"
                 ) if rows else "<p class='muted'>Nobody was tracked.</p>"
        primary = track.get("primary")
        chosen = (f"primary: subject {esc(str(primary))}" if primary is not None else
                  "no credible subject: reconstruction frames absent")
        return (f"<h4>Tracked subjects <span class='muted'>({chosen}; "
                f"detector {esc(str(track.get('detector', '?')))})</span></h4>"
                f"<div class='row'>{''.join(figs)}<div>{table}</div></div>")

    # -- Señorita-Long ---------------------------------------------------------------------
    def _senorita(self) -> str:
        roles = [r for r in ("source", "target", "target_extended") if isinstance(self.m.get(f"{r}.mp4"), bytes)]
        if not roles:
            return ""
        m, out = self.meta, []
        if m.get("instruction"):
            out.append(f'<p class="story"><b>Instruction:</b> {esc(str(m["instruction"]))}</p>')
        for role in roles:
            video = self.m[f"{role}.mp4"]
            segs = memory_segments(m, 0) if role == "target_extended" else []
            n = max(self.frames, 16) if segs else min(self.frames, 8)  # the extension is 7x longer: more frames
            sheet = contact_sheet(video, self.path(role, "jpg"), n=n, cols=8, fps=float(m.get("fps") or 0),
                                  segments=segs, thumb_w=128)
            note = " <span class='muted'>blue = original clip, purple = generated memory frames</span>" if segs else ""
            out.append(f"<h4>{role}.mp4{note}</h4>" + figure(sheet, f"{role} of {self.key}"))
        return "".join(out)

    # -- multi-camera scene / long roam ------------------------------------------------------
    def _multicam(self) -> str:
        m = self.meta
        if m.get("layout") != "multicam":
            return ""
        cams = [c for c in m.get("cameras", []) if isinstance(c, str)]
        out = []
        scores = self.m.get("scores.npy")
        if isinstance(scores, np.ndarray) and scores.ndim == 2 and scores.shape[0] == scores.shape[1]:
            labels = cams if len(cams) == scores.shape[0] else [str(i) for i in range(scores.shape[0])]
            lam = (m.get("videofov") or {}).get("lam")
            out.append(figure(plots.heatmap(scores, labels, f"VideoFOV retrieval scores (λ = {lam})",
                                            self.path("scores", "png")), "FOV overlap heatmap", cls="plot"))
        poses = self.m.get("poses.npy")  # (C, F, 4, 4) in meta["cameras"] order (schema multicam/2)
        ok = isinstance(poses, np.ndarray) and poses.ndim == 4 and len(poses) == len(cams)
        paths = {c: poses[i][:, :3, 3] for i, c in enumerate(cams)} if ok else {}
        if paths:
            out.append(figure(plots.camera_paths(paths, "Camera paths (top view)", self.path("paths", "png")),
                              "camera paths", cls="plot"))
        firsts = [(c, first_frame(self.m[f"{c}.mp4"])) for c in cams if isinstance(self.m.get(f"{c}.mp4"), bytes)]
        html_ = f"<div class='row'>{''.join(out)}</div>" if out else ""
        if firsts:
            html_ += figure(tiles(firsts, self.path("cameras", "jpg")), "first frame of every camera",
                            "First frame of every camera")
        topk = (m.get("videofov") or {}).get("topk")
        if isinstance(topk, dict) and topk:
            rows = "".join(f"<tr><td>{esc(str(q))}</td><td>{esc(json.dumps(v))}</td></tr>" for q, v in topk.items())
            html_ += f"<details><summary>Top-k retrieval per camera</summary><table>{rows}</table></details>"
        return html_

    def _roam(self) -> str:
        m, out = self.meta, []
        if m.get("layout") != "cam":
            return ""
        poses = self.m.get("poses.npy")
        if isinstance(poses, np.ndarray) and poses.ndim == 3:
            out.append(figure(plots.camera_paths({"camera": poses[:, :3, 3]}, "Camera path (top view)",
                                                 self.path("path", "png")), "camera path", cls="plot"))
        if isinstance(self.m.get("roam.mp4"), bytes):
            out.append(figure(contact_sheet(self.m["roam.mp4"], self.path("roam", "jpg"), n=self.frames,
                                            fps=float(m.get("fps") or 0)), "roam contact sheet"))
        return "".join(out)

    def _other_videos(self) -> str:
        known = {"clip.mp4", "source.mp4", "target.mp4", "target_extended.mp4", "roam.mp4"}
        if self.meta.get("layout") == "multicam":
            return ""
        vids = [k for k, v in self.m.items() if k.endswith(".mp4") and k not in known and isinstance(v, bytes)]
        return "".join(figure(contact_sheet(self.m[k], self.path(k.split(".")[0], "jpg"), n=self.frames,
                                            fps=float(self.meta.get("fps") or 0)), k, f"<b>{esc(k)}</b>")
                       for k in vids[:4])

    def _arrays(self) -> str:
        arrays = {k: v for k, v in self.m.items() if isinstance(v, np.ndarray)}
        if not arrays:
            return ""
        rows = "".join(f"<tr><td><code>{esc(k)}</code></td><td>{v.dtype}</td><td>{'×'.join(map(str, v.shape))}</td>"
                       f"</tr>" for k, v in sorted(arrays.items()))
        return f"<details><summary>{len(arrays)} arrays</summary><table>{rows}</table></details>"
