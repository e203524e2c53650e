"""``hf_text``: a Hugging Face ``datasets`` dataset with a text column.

Each row is a document (split into sentences) or one sentence of a stream
(``rows = "sentences"``, the hub's ``bookcorpus``); rows without text are skipped and
counted. ``datasets`` is imported when the dataset is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from cpcframe import DatasetRequest, UserError, cache_key, validators
from cpcframe_text.data.base import TextDataset, TextDatasetOptions, build_text_dataset
from cpcframe_text.data.splitting import normalize, split_sentences


@attrs.frozen(kw_only=True)
class HFTextConfig(TextDatasetOptions):
    """``hf_text``: a Hugging Face ``datasets`` dataset with a text column.

    Attributes:
        path: a directory written by ``save_to_disk`` (read with ``load_from_disk``),
            a local data directory or file set ``load_dataset`` understands, or (with
            network) a hub name such as ``bookcorpus``.
        split: the split to read from a dataset dictionary.
        text_column: the column holding the text.
        rows: ``documents``: each row is a document (split into sentences);
            ``sentences``: each row is one sentence (the hub's ``bookcorpus``) and
            ``sentences_per_document`` consecutive rows form a document.
        sentences_per_document: rows per document when ``rows = "sentences"``.
    """

    path: str
    split: str = "train"
    text_column: str = "text"
    rows: Literal["documents", "sentences"] = "documents"
    sentences_per_document: int = attrs.field(default=1000, validator=validators.positive)


def _load_hf(config: HFTextConfig) -> Any:
    import datasets

    path = Path(config.path)
    if not path.exists() and (path.is_absolute() or config.path.startswith((".", "~"))
                              or len(path.parts) > 2):
        raise UserError(f"hf_text: path not found: {config.path}")
    saved = path.is_dir() and any((path / n).is_file() for n in ("state.json", "dataset_dict.json",
                                                                 "dataset_info.json"))
    try:
        if saved:
            data = datasets.load_from_disk(str(path))
        else:
            data = datasets.load_dataset(config.path, split=config.split)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise UserError(f"hf_text: cannot load {config.path!r}: {exc}") from None
    if isinstance(data, datasets.DatasetDict):
        if config.split not in data:
            raise UserError(f"hf_text: {config.path} has no split {config.split!r}; "
                            f"it has {', '.join(data)}")
        data = data[config.split]
    if config.text_column not in data.column_names:
        raise UserError(f"hf_text: {config.path} has no column {config.text_column!r}; "
                        f"it has {', '.join(data.column_names)}")
    return data.select_columns([config.text_column])


class HFSource:
    """Documents from a ``datasets.Dataset`` text column."""

    def __init__(self, data: Any, config: HFTextConfig):
        self.data = data
        self.config = config
        self.skipped: dict[str, int] = {}

    def key(self) -> str:
        c = self.config
        return cache_key([c.path, c.split, c.text_column, c.rows, c.sentences_per_document,
                          getattr(self.data, "_fingerprint", None), len(self.data)], 64)

    def __iter__(self) -> Iterator[tuple[str, list[str]]]:
        self.skipped = {}
        c = self.config
        column = c.text_column
        pending: list[str] = []
        first_row = 0
        row = 0
        for batch in self.data.iter(batch_size=1000):
            for text in batch[column]:
                if not isinstance(text, str):
                    self.skipped["rows without text"] = self.skipped.get("rows without text", 0) + 1
                    row += 1
                    continue
                if c.rows == "documents":
                    yield f"row{row}", split_sentences(text, self.config.one_sentence_per_line)
                else:
                    sentence = normalize(text)
                    if sentence:
                        pending.append(sentence)
                    if len(pending) >= c.sentences_per_document:
                        yield f"rows{first_row}-{row}", pending
                        pending, first_row = [], row + 1
                row += 1
        if pending:
            yield f"rows{first_row}-{row - 1}", pending


def build_hf_text(config: HFTextConfig, *, request: DatasetRequest) -> TextDataset:
    """A Hugging Face ``datasets`` text dataset (load_from_disk / local files / hub name)."""
    return build_text_dataset(config, HFSource(_load_hf(config), config), request)
