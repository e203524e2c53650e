"""The token cache: a tokenized corpus in compact arrays, built once and cached on disk.

Layout (one directory per corpus, tokenizer and settings):

* ``ids.bin``: every token id of every sentence, back to back (``uint16`` when the
  vocabulary fits, else ``int32``), memory-mapped so loader workers share it;
* ``sentence_lengths.npy``: ``(num_sentences,)`` tokens per sentence;
* ``document_sizes.npy``: ``(num_documents,)`` sentences per document;
* ``keys.json``: one name per document; ``meta.json``: dtype, counts, skipped items.

A :class:`Document` is a cheap view of one document's sentences.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cpcframe import publish_dir
from cpcframe_text.data.tokenizer import encode, vocabulary_size

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CHUNK_SENTENCES = 20000  # sentences tokenized per batched call


class Document(Sequence):
    """A document as a sequence of token-id arrays, one per sentence.

    Attributes:
        tokens: ``(n_tokens,)`` the document's token ids back to back.
        offsets: ``(n_sentences + 1,)`` int64; sentence ``i`` is ``tokens[offsets[i]:offsets[i+1]]``.
    """

    __slots__ = ("tokens", "offsets")

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray):
        self.tokens = tokens
        self.offsets = offsets

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[int]]) -> "Document":
        arrays = [np.asarray(s, dtype=np.int64) for s in sentences]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(tokens, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sentence {index} of a {len(self)}-sentence document")
        return np.asarray(self.tokens[self.offsets[index]:self.offsets[index + 1]])

    def lengths(self) -> np.ndarray:
        """``(n_sentences,)`` tokens per sentence."""
        return np.diff(self.offsets)


class TokenCache:
    """The token cache of one corpus (its cached arrays); reopens its memory map after pickling.

    Attributes:
        directory: where the arrays live.
        sentence_offsets: ``(num_sentences + 1,)`` int64 token offset of each sentence.
        document_offsets: ``(num_documents + 1,)`` int64 sentence offset of each document.
        keys: one name per document.
        vocab_size: the tokenizer's vocabulary size.
        skipped: reason -> count of items dropped while reading and tokenizing.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        meta = json.loads((self.directory / "meta.json").read_text())
        self.dtype = np.dtype(meta["dtype"])
        self.vocab_size = int(meta["vocab_size"])
        self.skipped: dict[str, int] = dict(meta["skipped"])
        lengths = np.load(self.directory / "sentence_lengths.npy")
        sizes = np.load(self.directory / "document_sizes.npy")
        self.sentence_offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.document_offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.keys: list[str] = json.loads((self.directory / "keys.json").read_text())
        self._ids: np.ndarray | None = None

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            total = int(self.sentence_offsets[-1])
            path = self.directory / "ids.bin"
            self._ids = (np.memmap(path, dtype=self.dtype, mode="r", shape=(total,)) if total
                         else np.zeros(0, dtype=self.dtype))
        return self._ids

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ids"] = None  # never pickle the whole corpus into a worker
        return state

    @property
    def num_documents(self) -> int:
        return len(self.keys)

    @property
    def num_sentences(self) -> int:
        return len(self.sentence_offsets) - 1

    def document(self, first_sentence: int, num_sentences: int) -> Document:
        """Sentences ``first_sentence .. first_sentence + num_sentences - 1`` as a :class:`Document`."""
        offsets = self.sentence_offsets[first_sentence:first_sentence + num_sentences + 1]
        return Document(self.ids[offsets[0]:offsets[-1]], offsets - offsets[0])


def _chunks(documents: Iterator[tuple[str, list[str]]]) -> Iterator[list[tuple[str, list[str]]]]:
    batch: list[tuple[str, list[str]]] = []
    count = 0
    for key, sentences in documents:
        batch.append((key, sentences))
        count += len(sentences)
        if count >= _CHUNK_SENTENCES:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def build_token_cache(directory: Path, documents: Callable[[], Iterator[tuple[str, list[str]]]],
                      tokenizer: Any, *, add_special_tokens: bool, min_sentence_tokens: int,
                      skipped: Callable[[], dict[str, int]]) -> TokenCache:
    """Tokenize every document once and write the arrays to ``directory`` (atomically).

    ``documents()`` yields ``(key, sentences)``; ``skipped()`` returns the reader's skip
    counts after the pass. Sentences with fewer than ``min_sentence_tokens`` tokens and
    documents left without sentences are dropped and counted.
    """
    if (directory / "meta.json").is_file():
        return TokenCache(directory)
    vocab = vocabulary_size(tokenizer)
    dtype = np.dtype(np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.int32)

    def fill(tmp: Path) -> None:
        sentence_lengths: list[np.ndarray] = []
        document_sizes: list[int] = []
        keys: list[str] = []
        short_sentences = empty_documents = 0
        with open(tmp / "ids.bin", "wb") as out:
            for batch in _chunks(documents()):
                flat = [s for _, sentences in batch for s in sentences]
                encoded = encode(tokenizer, flat, add_special_tokens)
                lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
                keep = lengths >= min_sentence_tokens
                short_sentences += int((~keep).sum())
                kept = [e for e, k in zip(encoded, keep) if k]
                if kept:
                    np.fromiter((t for e in kept for t in e), dtype=dtype,
                                count=int(lengths[keep].sum())).tofile(out)
                sentence_lengths.append(lengths[keep].astype(np.int32))
                # Sentences kept per document: split the keep mask by document sizes.
                ends = np.cumsum([len(s) for _, s in batch], dtype=np.int64)
                kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
                per_doc = np.diff(np.concatenate([[0], kept_before[ends]]))
                for (key, _), n in zip(batch, per_doc):
                    if n == 0:
                        empty_documents += 1
                        continue
                    keys.append(key)
                    document_sizes.append(int(n))
        counts = dict(skipped())
        if short_sentences:
            counts[f"sentences with fewer than {min_sentence_tokens} tokens"] = short_sentences
        if empty_documents:
            counts["documents without sentences"] = empty_documents
        lengths_all = np.concatenate(sentence_lengths) if sentence_lengths else np.zeros(0, np.int32)
        np.save(tmp / "sentence_lengths.npy", lengths_all)
        np.save(tmp / "document_sizes.npy", np.asarray(document_sizes, dtype=np.int64))
        (tmp / "keys.json").write_text(json.dumps(keys))
        meta = {"format": FORMAT_VERSION, "dtype": dtype.name, "vocab_size": vocab, "skipped": counts,
                "documents": len(keys), "sentences": int(len(lengths_all)),
                "tokens": int(lengths_all.sum(dtype=np.int64))}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    publish_dir(directory, fill, marker="meta.json")  # a concurrent build of the same corpus wins
    log.info("token cache written to %s", directory)
    return TokenCache(directory)
