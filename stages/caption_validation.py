"""Checks that Memento captions name recurring subjects explicitly (paper §3.1, stages 1-3).

A violation carries a reject slug and a sentence that is fed back to the model when the caption is
re-asked. The checks are lexical on purpose: they are cheap, explainable, and the model is told
exactly what to fix. Unknown names are found heuristically as runs of two or more capitalised
words that are not inventory names (captions are asked to write names exactly as given).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from typing import Any

PRONOUNS = frozenset(
    ["he", "she", "him", "her", "his", "hers", "himself", "herself", "they", "them", "their", "theirs", "themselves"]
)
# Generic references that hide which recurring subject is meant.
GENERIC = re.compile(
    r"\b(?:the|a|an|this|that|another)\s+(?:man|woman|boy|girl|person|guy|lady|gentleman|child|kid|figure|"
    r"individual|stranger|people)\b|\b(?:someone|somebody)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_TITLE_RUN = re.compile(r"\b[A-Z][a-z]+(?:[- ][A-Z][a-z]+)+\b")


@dataclass(frozen=True)
class Violation:
    reason: str  # reject slug
    message: str  # told to the model on the re-ask


def _strip_names(text: str, names: list[str]) -> str:
    for n in sorted(names, key=len, reverse=True):
        if n.strip():
            text = re.sub(re.escape(n.strip()), " ", text, flags=re.IGNORECASE)
    return text


_STARTERS = frozenset(["The", "A", "An", "In", "On", "At", "As", "Then", "When", "While", "Meanwhile", "Later", "Finally", "Inside", "Outside"])


def _drop_starter(run: str) -> str:
    """'The Red Woman' -> 'Red Woman'; a run that is one word once its sentence starter is gone is no name."""
    words = re.split(r"(?<=[a-z])[- ](?=[A-Z])", run)
    while words and words[0] in _STARTERS:
        words = words[1:]
    return " ".join(words) if len(words) >= 2 else ""


def check_caption(text: str, names: list[str]) -> list[Violation]:
    """Pronouns, generic references and names outside the inventory in one caption."""
    out = []
    rest = _strip_names(text, names)
    pronouns = sorted({w for w in _WORD.findall(rest) if w.lower() in PRONOUNS}, key=str.lower)
    if pronouns:
        out.append(Violation("caption_pronoun", f"it uses the pronouns {pronouns}; write the subject's inventory name "
                                                "instead of every pronoun."))
    generic = sorted({m.group(0) for m in GENERIC.finditer(rest)})
    if generic:
        out.append(Violation("caption_unnamed_reference", f"it uses unnamed references {generic}; use the exact "
                                                          f"inventory names {names} for recurring subjects."))
    unknown = sorted({n for m in _TITLE_RUN.finditer(rest) if (n := _drop_starter(m.group(0)))})
    if unknown:
        out.append(Violation("caption_unknown_name", f"it uses names that are not in the inventory: {unknown}; the "
                                                     f"only allowed names are {names}."))
    return out


def check_story(story: dict[str, Any]) -> list[Violation]:
    """Inventory names must be explicit, distinct and pronoun-free; the story text follows the caption rules."""
    names = [s["name"].strip() for s in story["subjects"]]
    out = []
    bad = [n for n in names if not n or any(w.lower() in PRONOUNS for w in _WORD.findall(n))
           or GENERIC.fullmatch(n) or n.lower() in {"man", "woman", "person", "someone"}]
    if bad:
        out.append(Violation("story_bad_subject_name", f"the subject names {bad} are not explicit names; give each "
                                                       "recurring subject a distinctive fixed name like 'Red-Coat Woman'."))
    if len({n.lower() for n in names}) != len(names):
        out.append(Violation("story_duplicate_subject_name", f"the subject names {names} repeat; make every name unique."))
    return out + check_caption(story["story"], names)


def length_stats(lengths: list[int]) -> dict[str, float]:
    """Memento Table 3 columns: count, min, max, mean, median (character counts)."""
    if not lengths:
        return {"count": 0, "min": 0, "max": 0, "mean": 0.0, "median": 0.0}
    return {"count": len(lengths), "min": min(lengths), "max": max(lengths),
            "mean": round(statistics.fmean(lengths), 1), "median": float(statistics.median(lengths))}


def caption_table(samples: list[Any]) -> dict[str, dict[str, float]]:
    """Caption length statistics per stage over accepted samples (those with ``meta['captions']``)."""
    story, shots, recon = [], [], []
    for s in samples:
        c = s.meta.get("captions") if not s.rejected else None
        if c:
            story.append(len(c["story"]))
            shots += [len(x) for x in c["shots"]]
            recon += [len(x) for x in c["recon"]]
    return {"Sequence caption": length_stats(story), "Clip caption": length_stats(shots),
            "Reconstruction caption": length_stats(recon)}


def format_caption_table(table: dict[str, dict[str, float]]) -> str:
    rows = ["| Type | Count | Min | Max | Mean | Median |", "|---|---|---|---|---|---|"]
    for name, st in table.items():
        rows.append(f"| {name} | {st['count']} | {st['min']} | {st['max']} | {st['mean']} | {st['median']} |")
    return "\n".join(rows)
