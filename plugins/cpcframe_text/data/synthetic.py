"""``synthetic_text``: a generated corpus of topic-consistent documents, for quickstarts and tests.

Every document keeps to one topic: each of its sentences mixes words of that topic's
vocabulary with words common to all topics. Predicting a document's next sentences
(CPC) therefore rewards encoders that map a topic's words close together, which a
linear probe on "which topic is this sentence about?" can measure. The corpus is
generated from its settings in well under a second and written to the cache as a
text file of blank-line-separated documents, then read like ``text_files``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np

from cpcframe import DatasetRequest, cache_key, validators
from cpcframe_text.data.base import TextDataset, TextDatasetOptions, build_text_dataset
from cpcframe_text.data.files import FileSource

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _ordered_pair(_instance, attribute, value) -> None:
    if not 0 < value[0] <= value[1]:
        raise ValueError(f"must be (low, high) with 0 < low <= high, got {list(value)}")


@attrs.frozen(kw_only=True)
class SyntheticTextConfig(TextDatasetOptions):
    """Options of ``synthetic_text``, besides every text dataset's (:class:`TextDatasetOptions`).

    Attributes:
        num_documents: documents generated.
        sentences_per_document: ``(low, high)`` sentences per document (uniform).
        num_topics: topics; each document keeps to one.
        words_per_topic: size of each topic's own vocabulary.
        common_words: size of the vocabulary every topic uses.
        words_per_sentence: ``(low, high)`` words per sentence (uniform).
        topic_word_probability: chance that a word is drawn from the topic's vocabulary.
        seed: generation seed (the vocabularies and documents depend only on the settings).
    """

    num_documents: int = attrs.field(default=400, validator=validators.positive)
    sentences_per_document: tuple[int, int] = attrs.field(default=(10, 20), validator=_ordered_pair)
    num_topics: int = attrs.field(default=8, validator=validators.positive)
    words_per_topic: int = attrs.field(default=60, validator=validators.positive)
    common_words: int = attrs.field(default=200, validator=validators.positive)
    words_per_sentence: tuple[int, int] = attrs.field(default=(6, 12), validator=_ordered_pair)
    topic_word_probability: float = attrs.field(default=0.35, validator=validators.probability)
    seed: int = 0


def _settings(config: SyntheticTextConfig) -> dict:
    """The generator's settings (what the generated text depends on)."""
    shared = attrs.fields_dict(TextDatasetOptions)
    return {k: getattr(config, k) for k in attrs.fields_dict(SyntheticTextConfig) if k not in shared}


class SyntheticCorpus:
    """The generator behind ``synthetic_text``.

    Attributes:
        topics: ``num_topics`` lists of topic words.
        common: words shared by all topics.
    """

    def __init__(self, config: SyntheticTextConfig):
        self.config = config
        rng = np.random.default_rng([config.seed, 0x7E47])
        needed = config.num_topics * config.words_per_topic + config.common_words
        words = self._words(rng, needed)
        split = config.num_topics * config.words_per_topic
        self.topics = [words[i * config.words_per_topic:(i + 1) * config.words_per_topic]
                       for i in range(config.num_topics)]
        self.common = words[split:]

    @staticmethod
    def _words(rng: np.random.Generator, count: int) -> list[str]:
        syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
        seen: dict[str, None] = {}
        while len(seen) < count:
            n = rng.integers(2, 4)
            seen.setdefault("".join(rng.choice(syllables, n)), None)
        return list(seen)

    def sentences(self, rng: np.random.Generator, topics: np.ndarray) -> list[str]:
        """One sentence per entry of ``topics`` (topic ids)."""
        c = self.config
        lengths = rng.integers(c.words_per_sentence[0], c.words_per_sentence[1] + 1, len(topics))
        out = []
        for topic, n in zip(topics, lengths):
            from_topic = rng.random(n) < c.topic_word_probability
            topic_idx = rng.integers(0, c.words_per_topic, n)
            common_idx = rng.integers(0, c.common_words, n)
            words = [self.topics[topic][t] if f else self.common[m]
                     for f, t, m in zip(from_topic, topic_idx, common_idx)]
            end = rng.choice([".", ".", ".", "?", "!"])
            out.append(" ".join(words).capitalize() + end)
        return out

    def documents(self) -> Iterator[tuple[int, list[str]]]:
        """``(topic, sentences)`` for every document."""
        c = self.config
        rng = np.random.default_rng([c.seed, 0xD0C5])
        for _ in range(c.num_documents):
            topic = int(rng.integers(0, c.num_topics))
            n = int(rng.integers(c.sentences_per_document[0], c.sentences_per_document[1] + 1))
            yield topic, self.sentences(rng, np.full(n, topic))

    def labelled(self, size: int, seed: int = 1) -> tuple[list[str], list[str]]:
        """``size`` new sentences (balanced over topics) and their topic labels ``topicN``."""
        rng = np.random.default_rng([self.config.seed, 0x1AB, seed])
        topics = rng.permutation(np.arange(size) % self.config.num_topics)
        return self.sentences(rng, topics), [f"topic{t}" for t in topics]

    def write(self, cache_dir: Path) -> Path:
        """The corpus as a text file of blank-line-separated documents (cached by settings)."""
        key = cache_key(_settings(self.config), 16)
        path = Path(cache_dir) / "synthetic_text" / key / "corpus.txt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            text = "\n\n".join(" ".join(sentences) for _, sentences in self.documents()) + "\n"
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return path


def build_synthetic_text(config: SyntheticTextConfig, *, request: DatasetRequest) -> TextDataset:
    """Generated topic-consistent documents (quickstarts, tests); no download."""
    path = SyntheticCorpus(config).write(request.cache_dir)
    source = FileSource([path], "blocks", "utf-8", one_sentence_per_line=False, names=["synthetic"])
    return build_text_dataset(config, source, request)
