"""Fixtures of the text tests (helpers live in ``textdata``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from textdata import make_document


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """Six documents of 10-15 sentences, one per file, in nested folders."""
    root = tmp_path / "corpus"
    for i in range(6):
        sub = root / ("a" if i % 2 else "b/deep")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"doc{i}.txt").write_text(make_document(i, 10 + i), encoding="utf-8")
    return root
