"""``sentence_windows``: windows of consecutive sentences, padded and masked in ``collate``.

Sentence CPC (van den Oord et al. 2018, section 3.3) encodes each sentence of a window
to ``z_t`` and predicts the next ``K = 3`` sentences from the GRU context ``c_t``.
One view is a window of ``S`` consecutive sentences of a document; the batched view is
``{"ids": (B, S, L) long, "mask": (B, S, L) bool}`` with ``L`` the longest (truncated)
sentence of the batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import Example, UserError, ViewSampler, validators


def _at_least_two(_instance, attribute, value) -> None:
    if value < 2:
        raise ValueError(f"must be >= 2 (a context and at least one sentence to predict), got {value}")


@attrs.frozen
class SentenceWindowsConfig:
    """Options of ``sentence_windows``.

    Attributes:
        window: ``S``, consecutive sentences per view; documents with fewer are skipped.
        max_tokens: tokens kept per sentence (the rest is cut off).
    """

    window: int = attrs.field(default=8, validator=_at_least_two)
    max_tokens: int = attrs.field(default=40, validator=validators.positive)


def ragged_gather(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate ``tokens[starts[i] : starts[i] + lengths[i]]`` for every ``i``, without a loop."""
    total = int(lengths.sum())
    # Position of each output token inside its own segment: 0, 1, ..., len-1 per segment.
    first = np.cumsum(lengths) - lengths  # (n,) output offset of each segment
    within = np.arange(total) - np.repeat(first, lengths)
    return tokens[np.repeat(starts, lengths) + within]


def pad_sentences(tokens: Tensor, lengths: Tensor, max_len: int | None = None) -> tuple[Tensor, Tensor]:
    """``(sum(lengths),)`` tokens + ``(N,)`` lengths -> ids ``(N, L)`` and mask ``(N, L)``.

    ``L`` is ``max_len`` or the longest sentence; pad ids are 0 and masked out.
    """
    L = int(lengths.max()) if lengths.numel() else 0
    L = max(L, 1) if max_len is None else max_len
    mask = torch.arange(L)[None, :] < lengths[:, None]  # (N, L)
    ids = torch.zeros(mask.shape, dtype=torch.long)
    ids[mask] = tokens  # row-major order of mask == sentence order of tokens
    return ids, mask


class SentenceWindows(ViewSampler):
    """A random window of ``S`` consecutive sentences of a document, one view per example.

    ``sample`` -> ``({"tokens": (n,) long, "lengths": (S,) long},)``;
    ``collate`` -> ``({"ids": (B, S, L) long, "mask": (B, S, L) bool},)``.
    """

    num_views = 1

    def __init__(self, config: SentenceWindowsConfig):
        self.window = config.window
        self.max_tokens = config.max_tokens

    def example(self) -> Example:
        """A document of ``window + 3`` random sentences (contract tests)."""
        from cpcframe_text.data.cache import Document

        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(1, self.max_tokens + 5, (self.window + 3,), generator=g).tolist()
        return Example(Document.from_sentences(torch.randint(2, 100, (n,), generator=g).tolist()
                                               for n in lengths), key="example")

    def min_length(self) -> int:
        """Documents need at least ``window`` sentences."""
        return self.window

    def sample(self, example: Example, generator: torch.Generator):
        doc = example.data
        n = len(doc)
        if n < self.window:
            raise ValueError(f"document {example.key!r} has {n} sentences, fewer than the window "
                             f"of {self.window}; the dataset should have skipped it")
        start = int(torch.randint(0, n - self.window + 1, (1,), generator=generator))
        offsets = np.asarray(doc.offsets[start:start + self.window + 1], dtype=np.int64)
        lengths = np.minimum(np.diff(offsets), self.max_tokens)
        tokens = ragged_gather(np.asarray(doc.tokens), offsets[:-1], lengths)
        return ({"tokens": torch.from_numpy(tokens.astype(np.int64)),
                 "lengths": torch.from_numpy(lengths)},)

    def inference_views(self, path: Path, run_dir: Path | None = None) -> list[tuple[str, Any]]:
        """A UTF-8 text file as one view: all its sentences, in order, with the run's tokenizer.

        The file is cut into sentences as a ``format = "text"`` corpus is (blank lines end
        paragraphs; see :mod:`cpcframe_text.data.splitting`), each sentence is tokenized with
        the tokenizer the run saved in ``run_dir / "tokenizer"`` and cut to ``max_tokens``
        tokens as in training. The view is ``{"ids": (S, L) long, "mask": (S, L) bool}``
        with ``S`` the file's sentences (not limited to ``window``: the encoder and GRU
        take any length), so ``cpcframe embed`` gives one vector per sentence: ``(S, C)``
        latents (sentence embeddings) or ``(S, H)`` contexts. Key: the file's stem.
        """
        from cpcframe_text.data.splitting import split_sentences
        from cpcframe_text.data.tokenizer import META_FILE, encode, load_run_tokenizer, run_tokenizer_dir

        if run_dir is None:
            raise UserError("sentence_windows needs the run directory to read text (its tokenizer/ folder)")
        cached = getattr(self, "_tokenizer", None)
        if cached is None or cached[0] != Path(run_dir):
            tokenizer = load_run_tokenizer(run_dir)
            if tokenizer is None:
                raise UserError(f"{run_dir} has no tokenizer/ folder; the text datasets save the run's "
                                "tokenizer there when a run builds them")
            meta_path = run_tokenizer_dir(run_dir) / META_FILE
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            add_special = bool((meta.get("config") or {}).get("add_special_tokens", False))
            cached = (Path(run_dir), tokenizer, add_special)
            self._tokenizer = cached
        _, tokenizer, add_special = cached
        text = Path(path).read_text(encoding="utf-8")  # UnicodeDecodeError is a ValueError
        ids = [s[:self.max_tokens] for s in encode(tokenizer, split_sentences(text), add_special)]
        ids = [s for s in ids if s]  # a sentence the tokenizer drops entirely has nothing to embed
        if not ids:
            return []
        lengths = torch.tensor([len(s) for s in ids], dtype=torch.long)
        tokens = torch.tensor([t for s in ids for t in s], dtype=torch.long)
        ids_t, mask = pad_sentences(tokens, lengths)
        return [(Path(path).stem, {"ids": ids_t, "mask": mask})]

    def collate(self, samples):
        tokens = torch.cat([s[0]["tokens"] for s in samples])
        lengths = torch.stack([s[0]["lengths"] for s in samples])  # (B, S)
        B, S = lengths.shape
        ids, mask = pad_sentences(tokens, lengths.reshape(-1))
        return ({"ids": ids.view(B, S, -1), "mask": mask.view(B, S, -1)},)


def build_sentence_windows(config: SentenceWindowsConfig) -> SentenceWindows:
    """Windows of consecutive sentences (sentence CPC), padded per batch."""
    return SentenceWindows(config)
