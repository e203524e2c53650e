"""Paths a recipe names that do not exist, found before anything is built.

A component's option marked with :func:`cpcframe.validators.path_option` (a corpus
folder, a split list, a label file) is checked here: every missing one is a located
:class:`~cpcframe.RecipeError` problem, with the folder a relative path is read from,
so a recipe pointed at one's own corpus fails in a second, not after minutes of set-up,
and lists every wrong path at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from cpcframe.config.component import ComponentSpec
from cpcframe.config.validators import PATH_OPTION
from cpcframe.errors import Problem, RecipeError


def _components(value: Any, path: str) -> Iterator[tuple[str, ComponentSpec]]:
    """Every :class:`ComponentSpec` inside ``value`` (a recipe section), by key path."""
    if isinstance(value, ComponentSpec):
        yield path, value
        return
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from _components(getattr(value, field.name), f"{path}.{field.name}" if path else field.name)


def missing_paths(recipe: Any, cwd: str | Path | None = None) -> list[Problem]:
    """One problem per path option of ``recipe``'s components that names nothing there
    (or a file where a folder is expected, and the other way round)."""
    here = Path(cwd) if cwd is not None else Path(os.getcwd())
    problems = []
    for where, spec in _components(recipe, ""):
        config = spec.config
        if config is None or not attrs.has(type(config)):
            continue
        hinted = False
        for field in attrs.fields(type(config)):
            kind = field.metadata.get(PATH_OPTION)
            value = getattr(config, field.name)
            if kind is None or not isinstance(value, str) or not value:
                continue
            target = Path(value).expanduser()
            resolved = target if target.is_absolute() else here / target
            relative = "" if target.is_absolute() else f" (relative to the current folder {here})"
            if not resolved.exists():
                hint = field.metadata.get(PATH_OPTION + ".where", "")
                message = f"{value!r} does not exist{relative}"
                if hint and not hinted:
                    message, hinted = f"{message}. {hint}", True
                problems.append(Problem(f"{where}.{field.name}", message))
            elif kind == "dir" and not resolved.is_dir():
                problems.append(Problem(f"{where}.{field.name}", f"{value!r} is a file; expected a folder"))
            elif kind == "file" and resolved.is_dir():
                problems.append(Problem(f"{where}.{field.name}", f"{value!r} is a folder; expected a file"))
    return problems


def check_paths(recipe: Any, source: str | None = None) -> None:
    """Raise a :class:`RecipeError` listing :func:`missing_paths`, if any."""
    problems = missing_paths(recipe)
    if problems:
        raise RecipeError(problems, source=source)
