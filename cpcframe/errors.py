"""Errors a user can fix. The CLI turns these into one short message and exit status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import attrs


class UserError(Exception):
    """A mistake in input the user controls: a recipe, a path, a component name."""


@attrs.frozen
class Problem:
    """One located problem in a recipe: ``path`` is a dotted key path such as ``model.encoder.strides``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<recipe>'}: {self.message}"


class RecipeError(UserError):
    """Every problem found in a recipe, reported together."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        n = len(self.problems)
        if n == 1:  # one problem, one line: "recipe.toml: train.lr: must be > 0, got -1"
            super().__init__(f"{head}{self.problems[0]}")
            return
        lines = [f"{head}{n} problems in recipe:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class UnusableItem(Exception):
    """Raised by a dataset's ``__getitem__`` for an item that cannot be used (an unreadable
    file, a recording shorter than ``request.min_length``) when it is found only on access,
    as by a dataset read once in order (``request.access == "sequential"``): the reader
    skips the item and counts it under ``reason`` (``cpcframe shard`` writes the counts to
    the corpus's ``index.json``), as a dataset that screened its items up front counts them
    in ``skipped``.

    Attributes:
        reason: the counter's name (``"unreadable"``, ``"too_short"``, ...).
    """

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class UnknownComponentError(UserError):
    """A component name that no loaded plugin registered."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x' or 'y'?)"`` or an empty string."""
    matches = close_matches(word, candidates)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def user_message(exc: UserError) -> str:
    """The message of ``exc`` for the user. A :class:`UserError` raised in a DataLoader
    worker (an unreadable corpus found while reading) reaches the training process
    re-raised by PyTorch, its message prefixed by "Caught UserError in DataLoader worker
    process N." and the worker's traceback: keep the original message only."""
    text = str(exc)
    if not (text.startswith("Caught ") and "Original Traceback" in text):
        return text
    name = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    at = text.rfind("\n" + name)
    return text[at + 1 + len(name):].strip() if at >= 0 else text.splitlines()[0]
