"""ZeroSpeech ``.item`` files: read them, write them, and make them from CPC frame labels.

An item file names the phone occurrences an ABX evaluation compares, one a line after a
header line::

    #file onset offset #phone prev-phone next-phone speaker
    6295-244435-0000 0.2100 0.3300 AH K N 6295

``onset`` and ``offset`` are in seconds from the start of the utterance ``#file``; the
phone's neighbours are its context (the triphone-within-context condition compares
phones only within one context). This is the format of the Libri-light and ZeroSpeech
2021 item files (``dev-clean.item``, ...) and what ``zerospeech-libriabx2`` reads.

From CPC-format labels (``converted_aligned_phones.txt``: one phone class per 10 ms
frame), every run of equal labels is one phone occurrence with onset ``start · step``
and offset ``end · step``; runs at an utterance's edges (no neighbour on one side) and
runs of silence phones (``exclude``) are not items, though silence may be a context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from cpcframe import UserError

HEADER = "#file onset offset #phone prev-phone next-phone speaker"
#: Silence and noise symbols of common phone sets (Kaldi/CMU: SIL, sp, spn; the synthetic corpus: sil).
SILENCE = ("sil", "SIL", "sp", "spn", "<sil>")


@attrs.frozen
class Item:
    """One phone occurrence of an item file (times in seconds)."""

    file: str
    onset: float
    offset: float
    phone: str
    prev: str
    next: str
    speaker: str

    def line(self) -> str:
        return (f"{self.file} {self.onset:.4f} {self.offset:.4f} {self.phone} {self.prev} "
                f"{self.next} {self.speaker}")


def read_item_file(path: str | Path) -> list[Item]:
    """The items of a ZeroSpeech item file (its first line is a header and is skipped).

    Raises:
        UserError: the file is missing, or a line has not 7 columns or bad times.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"item file {path} does not exist")
    items = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 7:
            raise UserError(f"{path}:{number}: expected 7 columns ({HEADER}), got {len(fields)}")
        try:
            onset, offset = float(fields[1]), float(fields[2])
        except ValueError:
            raise UserError(f"{path}:{number}: onset and offset must be numbers (seconds), "
                            f"got {fields[1]!r} {fields[2]!r}") from None
        if not 0 <= onset < offset:
            raise UserError(f"{path}:{number}: needs 0 <= onset < offset, got {onset} {offset}")
        items.append(Item(fields[0], onset, offset, *fields[3:]))
    if not items:
        raise UserError(f"item file {path} holds no items")
    return items


def write_item_file(path: str | Path, items: Iterable[Item]) -> Path:
    path = Path(path)
    path.write_text("\n".join([HEADER, *(item.line() for item in items)]) + "\n", encoding="utf-8")
    return path


def read_phone_names(path: str | Path) -> dict[int, str]:
    """``index name`` lines (the synthetic corpus's ``phones.txt``) -> ``{index: name}``."""
    names: dict[int, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].lstrip("-").isdigit():
            names[int(fields[0])] = fields[1]
    return names


def phone_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """``(L,)`` frame labels -> ``(start, end, label)`` of each run of equal labels (end exclusive)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.r_[0, cuts]
    ends = np.r_[cuts, labels.size]
    return [(int(s), int(e), int(labels[s])) for s, e in zip(starts, ends)]


def items_from_frame_labels(labels: Mapping[str, np.ndarray], speakers: Mapping[str, str], step: float,
                            names: Mapping[int, str] | None = None,
                            exclude: Sequence[str] = SILENCE) -> list[Item]:
    """Item file lines of every phone occurrence in frame-labelled utterances.

    Args:
        labels: utterance id -> ``(L,)`` integer phone class per frame.
        speakers: utterance id -> speaker id.
        step: seconds per label frame (CPC's labels: 0.01).
        names: class -> phone symbol (default: the class number as text).
        exclude: symbols that are never the centre phone (silence); they may be contexts.

    Returns:
        Items in utterance order, then time order.
    """
    names = names or {}
    excluded = set(exclude)
    out: list[Item] = []
    for key, frames in labels.items():
        runs = phone_runs(frames)
        symbols = [names.get(label, str(label)) for _, _, label in runs]
        for i in range(1, len(runs) - 1):
            if symbols[i] in excluded:
                continue
            start, end, _ = runs[i]
            out.append(Item(key, round(start * step, 6), round(end * step, 6), symbols[i], symbols[i - 1],
                            symbols[i + 1], speakers[key]))
    return out


def summary(items: Sequence[Item]) -> dict[str, int]:
    """Counts worth reporting: items, utterances, speakers, phones, contexts."""
    return {"items": len(items), "utterances": len({i.file for i in items}),
            "speakers": len({i.speaker for i in items}), "phones": len({i.phone for i in items}),
            "contexts": len({(i.prev, i.next) for i in items})}
