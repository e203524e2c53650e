"""The CPC authors' file formats: split lists and frame-level phone labels.

* Split list (``train_split.txt``, ``test_split.txt``): one utterance id a line
  (``6476-57446-0019``).
* Phone labels (``converted_aligned_phones.txt``): an utterance id, then one integer
  phone class per 10 ms frame, separated by spaces (41 classes in the published file,
  from a Kaldi forced alignment of LibriSpeech train-clean-100).

Parsed labels are stored next to the audio cache as memory-mapped arrays, keyed by a
hash of the label file, so a 100 MB label file is parsed once (:func:`load_labels`).
A dataset read without a cache (sequential access, ``cpcframe shard``) reads them from the
label file itself, for its own utterances only (:class:`LabelLines`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from cpcframe import UserError, cache_key, publish_dir
from cpcframe_audio.data.cache import AudioCache

LABEL_VERSION = 1
LABEL_HOP = 160  # samples per CPC label frame (10 ms at 16 kHz; the paper encoder's downsampling)


def file_stat(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _existing_file(path: str | Path, what: str, help_text: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {p} does not exist.{(' ' + help_text) if help_text else ''}")
    return p


def read_split_list(path: str | Path, what: str, help_text: str = "") -> list[str]:
    """Utterance ids, one a line (blank lines and ``#`` comments ignored; a path or a
    ``.flac`` suffix on a line is reduced to the id)."""
    p = _existing_file(path, what, help_text)
    ids = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ids.append(Path(line.split()[0]).name.split(".")[0])
    return ids


class LabelStore:
    """Frame labels of a cache's items: ``labels(i)`` is ``(L,)`` int64 or ``None``.

    Attributes:
        without_audio: label lines whose utterance is not in the corpus.
        classes: ``1 + max label`` over the file.
        source: the label file that was parsed (``None`` for stores of older caches).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        info = json.loads((self.path / "info.json").read_text())
        self.without_audio: int = info["without_audio"]
        self.without_audio_examples: list[str] = info["without_audio_examples"]
        self.classes: int = info["classes"]
        self.source: str | None = info.get("source")
        self.offsets = np.load(self.path / "offsets.npy")
        self.lengths = np.load(self.path / "lengths.npy")
        self._values: np.ndarray | None = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_values"] = None
        return state

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = np.load(self.path / "values.npy", mmap_mode="r")
        return self._values

    def has(self, i: int) -> bool:
        return bool(self.lengths[i] >= 0)

    def labels(self, i: int) -> np.ndarray | None:
        n = int(self.lengths[i])
        if n < 0:
            return None
        off = int(self.offsets[i])
        return np.asarray(self.values[off:off + n], dtype=np.int64)


def _parse(line: str) -> tuple[str, np.ndarray | None]:
    """``(utterance id, (L,) int64 labels)`` of one label line; labels ``None`` when it is
    malformed."""
    head, _, rest = line.strip().partition(" ")
    try:
        return head, np.array(rest.split(), dtype=np.int64)
    except ValueError:
        return head, None


def load_labels(cache: AudioCache, labels_path: str | Path, help_text: str = "") -> LabelStore:
    """Parse ``labels_path`` for ``cache``'s items (once; later calls reuse the stored arrays)."""
    p = _existing_file(labels_path, "phone label file", help_text)
    key = cache_key({"version": LABEL_VERSION, "labels": file_stat(p)})
    final = cache.path / f"labels-{key}"
    if (final / "info.json").is_file():
        return LabelStore(final)
    n = len(cache)
    offsets = np.zeros(n, dtype=np.int64)
    lengths = np.full(n, -1, dtype=np.int64)
    parts: list[np.ndarray] = []
    total = 0
    without: list[str] = []
    bad_lines = 0
    top = -1
    with open(p, encoding="utf-8") as f:
        for line in f:
            head, values = _parse(line)
            if not head:
                continue
            if values is None:
                bad_lines += 1
                continue
            i = cache.position(head)
            if values.size:
                top = max(top, int(values.max()))
            if i is None:
                without.append(head)
                continue
            offsets[i], lengths[i] = total, values.size
            parts.append(values.astype(np.int16))
            total += values.size
    if bad_lines:
        warnings.warn(f"{p}: {bad_lines} malformed line(s) ignored (expected an id and integers)",
                      stacklevel=3)

    def fill(tmp: Path) -> None:
        np.save(tmp / "values.npy", np.concatenate(parts) if parts else np.zeros(0, np.int16))
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "lengths.npy", lengths)
        (tmp / "info.json").write_text(json.dumps({
            "without_audio": len(without), "without_audio_examples": without[:5],
            "classes": top + 1, "source": str(p)}))

    publish_dir(final, fill, marker="info.json")
    return LabelStore(final)


class LabelLines:
    """Frame labels of some utterances, read from the label file on access (no cache).

    Built by one pass over the file that keeps, for each utterance of ``keys``, the byte
    offset of its last well-formed line (what :func:`load_labels` keeps), so memory is
    one integer per labelled utterance however large the file; ``labels(key)`` reads and
    parses that one line. Gives the same labels as the cached :class:`LabelStore`.

    Attributes:
        path: the label file.
        offsets: utterance id -> byte offset of its line.
    """

    def __init__(self, path: str | Path, keys: set[str] | frozenset[str], help_text: str = ""):
        self.path = _existing_file(path, "phone label file", help_text)
        self.offsets: dict[str, int] = {}
        bad_lines = offset = 0
        with open(self.path, "rb") as f:
            for raw in f:
                at, offset = offset, offset + len(raw)
                line = raw.decode("utf-8")
                head = line.strip().partition(" ")[0]
                if not head or head not in keys:
                    continue
                if _parse(line)[1] is None:
                    bad_lines += 1
                    continue
                self.offsets[head] = at
        if bad_lines:
            warnings.warn(f"{self.path}: {bad_lines} malformed line(s) ignored (expected an id and integers)",
                          stacklevel=3)

    def labels(self, key: str) -> np.ndarray | None:
        """``(L,)`` int64 labels of utterance ``key``, or ``None`` when it has none."""
        at = self.offsets.get(key)
        if at is None:
            return None
        with open(self.path, "rb") as f:  # once per utterance, beside decoding its audio
            f.seek(at)
            values = _parse(f.readline().decode("utf-8"))[1]
        # Through int16, as the cached LabelStore stores them: the same values.
        return None if values is None else values.astype(np.int16).astype(np.int64)
