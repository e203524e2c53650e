"""The regex sentence splitter and text normalisation."""

from __future__ import annotations

import pytest

from cpcframe_text.data.splitting import normalize, split_blocks, split_sentences


@pytest.mark.parametrize("text, expected", [
    ("Hello there. How are you? I am fine!", ["Hello there.", "How are you?", "I am fine!"]),
    # abbreviations and initials do not end sentences
    ("Mr. Smith met Dr. Jones at 5 p.m. on Monday. They talked.",
     ["Mr. Smith met Dr. Jones at 5 p.m. on Monday.", "They talked."]),
    ("J. K. Rowling wrote it. It sold well.", ["J. K. Rowling wrote it.", "It sold well."]),
    ("We use tools, e.g. hammers. Then we rest.", ["We use tools, e.g. hammers.", "Then we rest."]),
    ("The U.S. Army arrived. Nobody left.", ["The U.S. Army arrived.", "Nobody left."]),
    # numbers and lower-case continuations
    ("It cost 3.50 dollars. Cheap.", ["It cost 3.50 dollars.", "Cheap."]),
    ("\"Wait!\" she said. \"Why?\" He ran.", ["\"Wait!\" she said.", "\"Why?\"", "He ran."]),
    ("Really?! Yes... Fine.", ["Really?!", "Yes...", "Fine."]),
    ("(He left.) Then she did.", ["(He left.)", "Then she did."]),
    ("Version 2 is out. 3 more to go.", ["Version 2 is out.", "3 more to go."]),
    # line wraps are spaces; blank lines end a sentence (headings without punctuation)
    ("Chapter One\n\nIt was a dark\nnight. The end", ["Chapter One", "It was a dark night.", "The end"]),
    ("", []),
    ("   \n\n  ", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_one_sentence_per_line():
    text = "first line. still first\n\n  second   line \nthird"
    assert split_sentences(text, one_sentence_per_line=True) == [
        "first line. still first", "second line", "third"]


def test_blocks_and_normalize():
    assert split_blocks("a b\nc\n\n\n d \n \nlast") == ["a b\nc", "d", "last"]
    assert normalize("  a\t b\n\nc ") == "a b c"
