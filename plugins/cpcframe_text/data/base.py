"""The map-style dataset of documents shared by every text source.

Each item is one document (or one piece of a long document) as an
:class:`~cpcframe.Example` whose ``data`` is a :class:`~cpcframe_text.data.cache.Document`
(a sequence of token-id arrays, one per sentence) and whose ``group`` is the
document's index. Documents with fewer sentences than the view sampler's window are
skipped and counted. Every ``split`` reads the same corpus: sentence CPC trains on all of
it, and the transfer probe brings its own labelled sentences.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

import attrs
import numpy as np

from cpcframe import Dataset, DatasetRequest, Example, cache_key
from cpcframe_text.data.cache import FORMAT_VERSION, TokenCache, build_token_cache
from cpcframe_text.data.tokenizer import TokenizerConfig, fingerprint, resolve_tokenizer, vocabulary_size

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class TextDatasetOptions:
    """Options every text dataset shares.

    Attributes:
        tokenizer: ``[data.dataset.tokenizer]``, see :class:`TokenizerConfig`.
        one_sentence_per_line: each non-empty line is a sentence (BookCorpus' files);
            otherwise sentences are found by the regex splitter.
        min_sentence_tokens: drop sentences with fewer tokens.
        max_document_sentences: cut longer documents into pieces of this many sentences
            (at most twice that for the last piece), each a training item of the same
            group; 0 keeps whole documents. Books are long: pieces give more windows
            per epoch.
        max_documents: read only the first documents (0 = all), for quick subsets.
    """

    tokenizer: TokenizerConfig = attrs.field(factory=TokenizerConfig)
    one_sentence_per_line: bool = False
    min_sentence_tokens: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    max_document_sentences: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_documents: int = attrs.field(default=0, validator=attrs.validators.ge(0))


class DocumentSource(Protocol):
    """Reads raw documents. ``skipped`` is reset at the start of each pass."""

    skipped: dict[str, int]

    def key(self) -> str:
        """Identifies the raw data (paths, sizes, modification times, options)."""

    def __iter__(self) -> Iterator[tuple[str, list[str]]]:
        """``(document key, sentences)`` for every document."""


class TextDataset(Dataset):
    """Documents of a :class:`TokenCache` as :class:`~cpcframe.Example` items.

    Attributes:
        cache: the token cache (memory-mapped arrays).
        tokenizer: the tokenizer that made them (``None`` after unpickling in a worker).
        vocab_size: the tokenizer's vocabulary size (an encoder's ``vocab_size`` must cover it).
        groups: document index of every item.
        skipped: reason -> count (unreadable files, empty or too short documents, ...).
        test_split_available: ``False``: every split reads the same corpus.
    """

    def __init__(self, cache: TokenCache, *, min_sentences: int, max_document_sentences: int,
                 tokenizer: Any = None):
        self.cache = cache
        self.tokenizer = tokenizer
        self.vocab_size = cache.vocab_size
        self.skipped = dict(cache.skipped)
        sizes = np.diff(cache.document_offsets)  # (D,) sentences per document
        keep = sizes >= max(min_sentences, 1)
        if (~keep).any():
            reason = f"documents shorter than {min_sentences} sentences"
            self.skipped[reason] = self.skipped.get(reason, 0) + int((~keep).sum())
            log.warning("skipped %d of %d documents with fewer than %d sentences",
                        int((~keep).sum()), len(sizes), min_sentences)
        docs = np.flatnonzero(keep)
        first = cache.document_offsets[docs]
        size = sizes[docs]
        if max_document_sentences:
            # A piece shorter than the window could never give a view.
            max_document_sentences = max(max_document_sentences, min_sentences)
            # Piece j of a document covers [j·M, (j+1)·M); the last piece takes the rest,
            # so no piece is shorter than M (>= the window when M >= window).
            pieces = np.maximum(size // max_document_sentences, 1)
            doc_of_piece = np.repeat(np.arange(len(docs)), pieces)
            j = np.arange(len(doc_of_piece)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
            start = j * max_document_sentences
            last = j == pieces[doc_of_piece] - 1
            length = np.where(last, size[doc_of_piece] - start, max_document_sentences)
            self._doc = docs[doc_of_piece]
            self._first = first[doc_of_piece] + start
            self._size = length
            self._piece = np.where(pieces[doc_of_piece] > 1, j, -1)
        else:
            self._doc, self._first, self._size = docs, first, size
            self._piece = np.full(len(docs), -1)
        self.groups: list[int] = self._doc.tolist()

    def __len__(self) -> int:
        return len(self._doc)

    def __getitem__(self, index: int) -> Example:
        doc = int(self._doc[index])
        key = self.cache.keys[doc]
        piece = int(self._piece[index])
        if piece >= 0:
            key = f"{key}#{piece}"
        return Example(self.cache.document(int(self._first[index]), int(self._size[index])),
                       group=doc, key=key)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["tokenizer"] = None  # workers only need the arrays
        return state

    def check_model(self, model: Any) -> None:
        """Raise a :class:`~cpcframe.UserError` when the model's encoder cannot embed every
        token id of this corpus (its ``vocab_size`` is smaller than the tokenizer's)."""
        check = getattr(getattr(model, "encoder", model), "check_vocabulary", None)
        if check is not None:
            check(self.vocab_size)


def build_text_dataset(options: TextDatasetOptions, source: DocumentSource, request: DatasetRequest) -> TextDataset:
    """Tokenizer (saved with the run), tokenized corpus (cached), then the dataset."""

    def documents() -> Iterator[tuple[str, list[str]]]:
        for i, item in enumerate(source):
            if options.max_documents and i >= options.max_documents:
                return
            yield item

    def sentences() -> Iterator[str]:
        for _, doc in documents():
            yield from doc

    reading = {"source": source.key(), "one_sentence_per_line": options.one_sentence_per_line,
               "max_documents": options.max_documents}
    corpus_key = cache_key(reading, 16)
    tokenizer = resolve_tokenizer(options.tokenizer, sentences=sentences, corpus_key=corpus_key,
                                  run_dir=request.run_dir, cache_dir=request.cache_dir)
    tokens_key = cache_key([FORMAT_VERSION, corpus_key, fingerprint(tokenizer, options.tokenizer.add_special_tokens),
                           options.min_sentence_tokens], 16)
    cache = build_token_cache(request.cache_dir / "text" / tokens_key, documents, tokenizer,
                              add_special_tokens=options.tokenizer.add_special_tokens,
                              min_sentence_tokens=options.min_sentence_tokens,
                              skipped=lambda: source.skipped)
    assert cache.vocab_size == vocabulary_size(tokenizer)
    return TextDataset(cache, min_sentences=request.min_length,
                       max_document_sentences=options.max_document_sentences, tokenizer=tokenizer)
