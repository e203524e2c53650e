"""Text datasets: ``text_files``, ``text_folder`` and ``hf_text``.

All three read raw documents, split them into sentences, tokenize the corpus once
(cached in ``cache_dir / "text"``) and yield one :class:`~cpcframe.Example` per
document (see :mod:`cpcframe_text.data.base`). A path that does not exist is a
:class:`~cpcframe.UserError`; a file that cannot be read or decoded is skipped with a
warning and counted in ``dataset.skipped``.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from cpcframe import DatasetRequest, UserError, cache_key, validators
from cpcframe_text.data.base import CorpusOptions, TextDataset, build_text_dataset
from cpcframe_text.data.splitting import normalize, split_blocks, split_sentences

log = logging.getLogger(__name__)

Documents = Literal["file", "blocks", "lines"]


@attrs.frozen(kw_only=True)
class TextFilesConfig(CorpusOptions):
    """``text_files``: plain text files.

    Attributes:
        paths: files or glob patterns (``"books/*.txt"``, ``"**"`` recurses).
        documents: ``file``: one document per file; ``blocks``: one per blank-line-separated
            block; ``lines``: one sentence a line, ``sentences_per_document`` consecutive
            lines a document, read as a stream (BookCorpus' ``books_large_p*.txt``).
        sentences_per_document: lines per document with ``documents = "lines"``.
        encoding: the files' text encoding; a file that does not decode is skipped.
    """

    paths: list[str] = attrs.field(validator=validators.non_empty)
    documents: Documents = "file"
    sentences_per_document: int = attrs.field(default=1000, validator=validators.positive)
    encoding: str = "utf-8"


@attrs.frozen(kw_only=True)
class TextFolderConfig(CorpusOptions):
    """``text_folder``: every file under ``root`` matching ``pattern`` (recursive glob).

    Attributes:
        root: the folder.
        pattern: glob relative to ``root``.
        documents: ``file``, ``blocks`` or ``lines`` (see ``text_files``).
        sentences_per_document: lines per document with ``documents = "lines"``.
        encoding: the files' text encoding.
    """

    root: str
    pattern: str = "**/*.txt"
    documents: Documents = "file"
    sentences_per_document: int = attrs.field(default=1000, validator=validators.positive)
    encoding: str = "utf-8"


@attrs.frozen(kw_only=True)
class HFTextConfig(CorpusOptions):
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


def _matching_files(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matched = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            if not matched:
                raise UserError(f"text_files: no file matches {pattern!r}")
            files.extend(matched)
            continue
        path = Path(pattern)
        if path.is_dir():
            raise UserError(f"text_files: {pattern!r} is a folder; use the text_folder dataset "
                            "(root = ..., pattern = ...) or a glob pattern")
        if not path.is_file():
            raise UserError(f"text_files: file not found: {pattern}")
        files.append(path)
    return list(dict.fromkeys(files))


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


def build_text_files(config: TextFilesConfig, *, request: DatasetRequest) -> TextDataset:
    """Plain text files: one document per file or per blank-line-separated block."""
    source = FileSource(_matching_files(config.paths), config.documents, config.encoding,
                        config.one_sentence_per_line, sentences_per_document=config.sentences_per_document)
    return build_text_dataset(config, source, request)


def build_text_folder(config: TextFolderConfig, *, request: DatasetRequest) -> TextDataset:
    """Every text file under a folder (recursive glob)."""
    root = Path(config.root)
    if not root.is_dir():
        raise UserError(f"text_folder: root folder not found: {config.root}")
    files = sorted(p for p in root.glob(config.pattern) if p.is_file())
    if not files:
        raise UserError(f"text_folder: no file under {config.root} matches {config.pattern!r}")
    source = FileSource(files, config.documents, config.encoding, config.one_sentence_per_line,
                        sentences_per_document=config.sentences_per_document)
    return build_text_dataset(config, source, request)


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
