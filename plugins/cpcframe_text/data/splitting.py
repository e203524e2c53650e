"""Text normalisation and a regex sentence splitter for ``.``, ``!`` and ``?``.

Sentence CPC (van den Oord et al. 2018, section 3.3) predicts whole sentences, so the
corpus must be cut into sentences first. BookCorpus as distributed is already one
sentence a line (``one_sentence_per_line``); raw books and web text need splitting.

The splitter ends a sentence at a run of ``.!?`` (plus closing quotes or brackets)
followed by whitespace and a capital letter, a digit or an opening quote, except after
a known abbreviation (``Mr.``, ``e.g.``, ``U.S.``) or a single-letter initial
(``J. K. Rowling``). Blank lines (paragraph breaks) always end a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Words that end with a period without ending a sentence (compared lower-case,
#: without their final period).
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof st jr sr sen rep gov gen col lt sgt capt cpt cmdr adm maj rev fr hon pres
mt ft ave blvd rd co corp inc ltd bros dept univ assn est approx vs etc al cf eg ie viz
e.g i.e u.s u.k u.n a.m p.m ph.d m.d b.a m.a d.c no nos vol vols fig figs pp ed eds ch sec
jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun
""".split())

_WHITESPACE = re.compile(r"\s+")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
# A candidate end: terminal punctuation, optional closers, then whitespace.
_CANDIDATE = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_STARTERS = "\"'\u201c\u2018([-\u2014"


def normalize(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WHITESPACE.sub(" ", text).strip()


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the word ending at ``text[dot] == '.'`` is an abbreviation or initial."""
    start = dot
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:dot].lstrip(_STARTERS)
    if not word:
        return False
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. K. Rowling"
    return word.lower() in ABBREVIATIONS


def _split_paragraph(text: str) -> Iterator[str]:
    start = 0
    for match in _CANDIDATE.finditer(text):
        end = match.end()
        rest = text[end:].lstrip()
        if not rest:
            break
        first = rest[0]
        if not (first.isupper() or first.isdigit() or first in _STARTERS):
            continue
        if match.group().startswith(".") and match.group().count(".") == 1 \
                and _is_abbreviation(text, match.start()):
            continue
        sentence = normalize(text[start:end])
        if sentence:
            yield sentence
        start = end
    sentence = normalize(text[start:])
    if sentence:
        yield sentence


def split_sentences(text: str, one_sentence_per_line: bool = False) -> list[str]:
    """Cut ``text`` into normalised, non-empty sentences.

    Args:
        text: a document (any whitespace; blank lines are paragraph breaks).
        one_sentence_per_line: every non-empty line is one sentence (no regex splitting),
            as in the distributed BookCorpus files.
    """
    if one_sentence_per_line:
        return [s for s in (normalize(line) for line in text.splitlines()) if s]
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        sentences.extend(_split_paragraph(paragraph))
    return sentences


def split_blocks(text: str) -> list[str]:
    """Blank-line-separated blocks of ``text`` (documents of a ``documents = "blocks"`` file)."""
    return [b for b in (block.strip() for block in _PARAGRAPH.split(text)) if b]
