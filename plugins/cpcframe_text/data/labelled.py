"""Labelled sentences for the transfer tasks of skip-thought and sentence CPC.

Formats (``format`` of a task):

* ``trec``: ``LABEL:fine rest of the sentence`` a line (TREC's ``train_5500.label``);
  the coarse label unless ``fine_labels``. ``path`` may be the SentEval ``TREC`` folder
  (``train_5500.label`` for training, ``TREC_10.label`` as the test set).
* ``label_tab``: ``label<TAB>sentence`` a line; ``tab_label``: ``sentence<TAB>label``.
* ``table``: CSV/TSV with a header row, ``text_column`` and ``label_column``
  (delimiter from ``delimiter``, else tab for ``.tsv`` and comma otherwise).
* ``class_files``: one file per class, one sentence a line: ``files = {pos = "...", neg = "..."}``.
* ``mr``, ``cr``, ``subj``, ``mpqa``: ``class_files`` with the SentEval names inside
  the folder ``path`` (``rt-polarity.pos/.neg``, ``custrev.pos/.neg``,
  ``subj.objective/.subjective``, ``mpqa.pos/.neg``).
* ``synthetic``: sentences of the run's ``synthetic_text`` corpus labelled by topic.

Files are read as UTF-8, falling back to Latin-1 (the MR and TREC files are Latin-1).
A line that does not parse is skipped and counted.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Literal

import attrs

from cpcframe import UserError, validators
from cpcframe_text.data.splitting import normalize

log = logging.getLogger(__name__)

Format = Literal["trec", "label_tab", "tab_label", "table", "class_files", "mr", "cr", "subj", "mpqa",
                 "synthetic"]

#: SentEval file names of the one-file-per-class tasks: label -> file.
SENTEVAL_FILES: dict[str, dict[str, str]] = {
    "mr": {"pos": "rt-polarity.pos", "neg": "rt-polarity.neg"},
    "cr": {"pos": "custrev.pos", "neg": "custrev.neg"},
    "subj": {"objective": "subj.objective", "subjective": "subj.subjective"},
    "mpqa": {"pos": "mpqa.pos", "neg": "mpqa.neg"},
}
TREC_FILES = ("train_5500.label", "TREC_10.label")


@attrs.frozen(kw_only=True)
class TaskConfig:
    """One transfer task: ``{name = "MR", format = "mr", path = "data/senteval/MR"}``.

    Attributes:
        name: the task's name in the results.
        format: how the data is stored (see the module docstring).
        path: the file (line and table formats) or folder (``mr``, ``cr``, ``subj``,
            ``mpqa``, ``trec``).
        files: ``class_files``: label -> file.
        test_file: a fixed test set in the same format (TREC); empty: k-fold cross-validation.
        fine_labels: ``trec``: use fine labels (``NUM:date``) instead of coarse ones (``NUM``).
        text_column, label_column, delimiter: ``table`` settings.
        size: ``synthetic``: number of labelled sentences generated.
    """

    name: str
    format: Format
    path: str = ""
    files: dict[str, str] = attrs.field(factory=dict)
    test_file: str = ""
    fine_labels: bool = False
    text_column: str = "sentence"
    label_column: str = "label"
    delimiter: str = ""
    size: int = attrs.field(default=800, validator=validators.positive)

    def __attrs_post_init__(self) -> None:
        if self.format == "class_files" and len(self.files) < 2:
            raise ValueError(f"task {self.name!r}: format 'class_files' needs files = "
                             "{label = path, ...} with at least two classes")
        if self.format in ("trec", "label_tab", "tab_label", "table", "mr", "cr", "subj", "mpqa") \
                and not self.path:
            raise ValueError(f"task {self.name!r}: format {self.format!r} needs a path")
        if len(self.delimiter) > 1:
            raise ValueError(f"task {self.name!r}: delimiter must be one character, got {self.delimiter!r}")


@attrs.frozen
class LabelledSet:
    """Sentences and their string labels; ``skipped`` counts unparsable lines."""

    sentences: list[str]
    labels: list[str]
    skipped: int = 0


def read_text(path: str | Path, task: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"probe task {task!r}: file not found: {path}")
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_trec(text: str, fine: bool = False) -> LabelledSet:
    sentences, labels, bad = [], [], 0
    for line in _lines(text):
        label, _, rest = line.partition(" ")
        coarse, colon, fine_label = label.partition(":")
        if not colon or not coarse or not rest.strip():
            bad += 1
            continue
        sentences.append(normalize(rest))
        labels.append(label if fine else coarse)
    return LabelledSet(sentences, labels, bad)


def parse_tab(text: str, label_first: bool) -> LabelledSet:
    sentences, labels, bad = [], [], 0
    for line in _lines(text):
        if "\t" not in line:
            bad += 1
            continue
        if label_first:
            label, sentence = line.split("\t", 1)
        else:
            sentence, label = line.rsplit("\t", 1)
        if not label.strip() or not sentence.strip():
            bad += 1
            continue
        sentences.append(normalize(sentence))
        labels.append(label.strip())
    return LabelledSet(sentences, labels, bad)


def parse_table(text: str, text_column: str, label_column: str, delimiter: str, task: str) -> LabelledSet:
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = reader.fieldnames or []
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise UserError(f"probe task {task!r}: no column {', '.join(map(repr, missing))} in the header "
                        f"({', '.join(header)}); set text_column / label_column")
    sentences, labels, bad = [], [], 0
    for row in reader:
        sentence, label = row.get(text_column), row.get(label_column)
        if not sentence or not sentence.strip() or label is None or not label.strip():
            bad += 1
            continue
        sentences.append(normalize(sentence))
        labels.append(label.strip())
    return LabelledSet(sentences, labels, bad)


def parse_class_files(files: dict[str, str], task: str) -> LabelledSet:
    sentences, labels = [], []
    for label, path in files.items():
        lines = _lines(read_text(path, task))
        sentences.extend(normalize(s) for s in lines)
        labels.extend([label] * len(lines))
    return LabelledSet(sentences, labels)


def _read_file(task: TaskConfig, path: str) -> LabelledSet:
    if task.format == "trec":
        return parse_trec(read_text(path, task.name), task.fine_labels)
    if task.format in ("label_tab", "tab_label"):
        return parse_tab(read_text(path, task.name), task.format == "label_tab")
    if task.format == "table":
        delimiter = task.delimiter or ("\t" if path.lower().endswith(".tsv") else ",")
        return parse_table(read_text(path, task.name), task.text_column, task.label_column,
                           delimiter, task.name)
    raise AssertionError(task.format)


def read_task(task: TaskConfig) -> tuple[LabelledSet, LabelledSet | None]:
    """``(data, test)``: the labelled set and the fixed test set (``None``: cross-validate).

    ``synthetic`` tasks are made by the probe from the run's corpus, not read here.
    """
    if task.format in SENTEVAL_FILES:
        folder = Path(task.path)
        if not folder.is_dir():
            raise UserError(f"probe task {task.name!r}: folder not found: {task.path} "
                            f"(expected the SentEval {task.format.upper()} folder with "
                            f"{', '.join(SENTEVAL_FILES[task.format].values())})")
        data = parse_class_files({k: str(folder / v) for k, v in SENTEVAL_FILES[task.format].items()},
                                 task.name)
        test = None
    elif task.format == "class_files":
        data, test = parse_class_files(task.files, task.name), None
    else:
        path, test_path = task.path, task.test_file
        if task.format == "trec" and Path(path).is_dir():
            path, default_test = str(Path(path) / TREC_FILES[0]), str(Path(path) / TREC_FILES[1])
            test_path = test_path or default_test
        data = _read_file(task, path)
        test = _read_file(task, test_path) if test_path else None
    for part in (data, test):
        if part is not None and part.skipped:
            log.warning("probe task %r: skipped %d lines that do not parse as %s",
                        task.name, part.skipped, task.format)
    if len(data.sentences) == 0:
        raise UserError(f"probe task {task.name!r}: no labelled sentence could be read")
    if len(set(data.labels)) < 2:
        raise UserError(f"probe task {task.name!r}: needs at least two classes, found "
                        f"{sorted(set(data.labels))}")
    return data, test
