"""Small corpora and dataset requests the text tests make themselves (imported as ``textdata``)."""

from __future__ import annotations

from pathlib import Path

from cpcframe import DatasetRequest

WORDS = ("river stone cloud lamp table garden window paper music letter horse road "
         "winter summer bread coffee silver forest bridge candle").split()


def make_document(index: int, sentences: int) -> str:
    """Deterministic prose: ``sentences`` sentences of 4-9 words each."""
    out = []
    for s in range(sentences):
        n = 4 + (index * 7 + s * 3) % 6
        words = [WORDS[(index * 5 + s * 11 + w * 3) % len(WORDS)] for w in range(n)]
        out.append(" ".join(words).capitalize() + (".", "?", "!")[(index + s) % 3])
    return " ".join(out)


def request(tmp_path: Path, *, run: str | None = "run", min_length: int = 4, cache: str = "cache") -> DatasetRequest:
    return DatasetRequest(cache_dir=tmp_path / cache, min_length=min_length,
                          run_dir=(tmp_path / run) if run else None)
