"""Cutting long recordings at voice-activity segments (``cpcframe shard --segment N``).

LibriLight ships, beside each ``.flac``, a ``.json`` whose ``"voice_activity"`` is a list
of ``[start, end]`` voiced spans in seconds (Kahn et al. 2020, "Libri-Light"). As its
``cut_by_vad.py`` does, consecutive voiced spans are packed greedily into pieces of at
most ``segment`` samples (the pauses between them kept, silence before, after and between
pieces dropped); a single voiced span longer than ``segment`` is cut into ``segment``-long
pieces; pieces shorter than ``min_piece`` are dropped.
"""

from __future__ import annotations

import json
from pathlib import Path


def find_voice_activity(root: str | Path) -> dict[str, str]:
    """``item key -> JSON path`` of every ``*.json`` under ``root`` (the key is the file
    stem, as for the audio beside it); empty when ``root`` is not a folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return {}
    return {p.stem: str(p) for p in sorted(root.rglob("*.json"))}


def voiced_spans(path: str | Path, sample_rate: int) -> list[tuple[int, int]] | None:
    """The ``voice_activity`` of a JSON file as sample spans; ``None`` when it has none
    or is not readable (the recording is then cut in fixed-length pieces)."""
    try:
        spans = json.loads(Path(path).read_text())["voice_activity"]
        return sorted((int(round(float(a) * sample_rate)), int(round(float(b) * sample_rate)))
                      for a, b in spans if float(b) > float(a))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def vad_pieces(spans: list[tuple[int, int]], length: int, segment: int, min_piece: int) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges of the pieces of a recording of ``length`` samples."""
    pieces: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for a, b in spans:
        a, b = max(0, a), min(length, b)
        if b <= a:
            continue
        if current is not None and b - current[0] <= segment:
            current = (current[0], b)  # the pause in between is kept, as in speech
            continue
        if current is not None:
            pieces.append(current)
        while b - a > segment:  # one voiced span longer than a piece
            pieces.append((a, a + segment))
            a += segment
        current = (a, b)
    if current is not None:
        pieces.append(current)
    return [(a, b) for a, b in pieces if b - a >= min_piece]
