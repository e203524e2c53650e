"""``text_files``: plain text files named by paths or glob patterns.

The files are read as documents (:mod:`cpcframe_text.data.files`), split into sentences,
tokenized once (cached in ``cache_dir / "text"``) and yielded one
:class:`~cpcframe.Example` per document (:mod:`cpcframe_text.data.base`). A path that
matches nothing is a :class:`~cpcframe.UserError`; a file that cannot be read or decoded
is skipped with a warning and counted in ``dataset.skipped``.
"""

from __future__ import annotations

import glob
from pathlib import Path

import attrs

from cpcframe import DatasetRequest, UserError, validators
from cpcframe_text.data.base import TextDataset, TextDatasetOptions, build_text_dataset
from cpcframe_text.data.files import Documents, FileSource


@attrs.frozen(kw_only=True)
class TextFilesConfig(TextDatasetOptions):
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


def matching_files(patterns: list[str]) -> list[Path]:
    """The files ``patterns`` name, in order, each once; a folder, a missing file or a
    pattern matching nothing is a :class:`~cpcframe.UserError`."""
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


def build_text_files(config: TextFilesConfig, *, request: DatasetRequest) -> TextDataset:
    """Plain text files: one document per file or per blank-line-separated block."""
    source = FileSource(matching_files(config.paths), config.documents, config.encoding,
                        config.one_sentence_per_line, sentences_per_document=config.sentences_per_document)
    return build_text_dataset(config, source, request)
