"""``text_folder``: every text file under a folder that matches a (recursive) glob.

Read like ``text_files`` (:mod:`cpcframe_text.data.files`); a missing folder or one
without matching files is a :class:`~cpcframe.UserError`.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from cpcframe import DatasetRequest, UserError, validators
from cpcframe_text.data.base import TextDataset, TextDatasetOptions, build_text_dataset
from cpcframe_text.data.files import Documents, FileSource


@attrs.frozen(kw_only=True)
class TextFolderConfig(TextDatasetOptions):
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
