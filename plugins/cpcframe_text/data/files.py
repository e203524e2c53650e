"""Documents from plain text files, shared by ``text_files``, ``text_folder`` and
``synthetic_text``: :class:`FileSource` reads each file (one document, one per
blank-line-separated block, or a stream of one-sentence lines) and counts the files it
cannot read or decode in ``skipped``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from cpcframe import cache_key
from cpcframe_text.data.splitting import normalize, split_blocks, split_sentences

log = logging.getLogger(__name__)

#: How a file becomes documents: ``file`` (one), ``blocks`` (blank-line separated),
#: ``lines`` (one sentence a line, ``sentences_per_document`` lines each).
Documents = Literal["file", "blocks", "lines"]


class FileSource:
    """Documents from text files (one per file, or one per blank-line-separated block)."""

    def __init__(self, files: list[Path], documents: str, encoding: str, one_sentence_per_line: bool,
                 names: list[str] | None = None, sentences_per_document: int = 1000):
        self.files = files
        self.names = names or [str(f) for f in files]
        self.sentences_per_document = sentences_per_document
        self.documents = documents
        self.encoding = encoding
        self.one_sentence_per_line = one_sentence_per_line
        self.skipped: dict[str, int] = {}
        self._warned: set[Path] = set()

    def key(self) -> str:
        stats = []
        for f in self.files:
            try:
                st = f.stat()
                stats.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
            except OSError:
                stats.append([str(f), -1, -1])
        return cache_key([stats, self.documents, self.encoding, self.sentences_per_document], 64)

    def _skip(self, path: Path, reason: str) -> None:
        if path not in self._warned:  # the corpus is read twice when a tokenizer is trained
            self._warned.add(path)
            log.warning("skipping %s: %s", path, reason)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def read(self, path: Path) -> str | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self._skip(path, f"unreadable file ({type(exc).__name__})")
            return None
        if b"\x00" in raw:
            self._skip(path, "not a text file (NUL bytes)")
            return None
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError:
            self._skip(path, f"not {self.encoding} text")
            return None

    def lines(self, path: Path, name: str) -> Iterator[tuple[str, list[str]]]:
        """Stream a one-sentence-a-line file as documents of ``sentences_per_document`` lines."""
        n = self.sentences_per_document
        pending: list[str] = []
        first = 0
        try:
            with open(path, encoding=self.encoding) as f:
                for i, line in enumerate(f):
                    sentence = normalize(line)
                    if sentence:
                        pending.append(sentence)
                    if len(pending) >= n:
                        yield f"{name}:{first}", pending
                        pending, first = [], i + 1
        except UnicodeDecodeError:
            self._skip(path, f"not {self.encoding} text (from line {first + len(pending) + 1})")
            return  # documents completed before the bad bytes are kept
        except OSError as exc:
            self._skip(path, f"unreadable file ({type(exc).__name__})")
            return
        if pending:
            yield f"{name}:{first}", pending

    def __iter__(self) -> Iterator[tuple[str, list[str]]]:
        self.skipped = {}
        for path, name in zip(self.files, self.names):
            if self.documents == "lines":
                yield from self.lines(path, name)
                continue
            text = self.read(path)
            if text is None:
                continue
            if self.documents == "file":
                yield name, split_sentences(text, self.one_sentence_per_line)
            else:
                for i, block in enumerate(split_blocks(text)):
                    yield f"{name}:{i}", split_sentences(block, self.one_sentence_per_line)
