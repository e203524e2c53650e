"""Load a recipe file, apply ``--set`` overrides, structure and validate it."""

from __future__ import annotations


from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cpcframe.config import toml_io
from cpcframe.config.recipe import Recipe
from cpcframe.config.structure import Structurer, is_missing, unstructure
from cpcframe.errors import Problem, RecipeError, UserError
from cpcframe.registry import Registry


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=1e-3"`` -> ``("train.lr", 0.001)``; the value is read as TOML, else as a string."""
    if "=" not in text:
        raise UserError(f"--set expects key.path=value, got {text!r}")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise UserError(f"--set expects key.path=value, got {text!r}")
    try:
        value = toml_io.loads(f"v = {raw}")["v"]
    except toml_io.TOMLDecodeError:
        value = raw  # bare words are strings: --set data.dataset.root=/data/LibriSpeech
    return key, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[tuple[str, Any]]) -> list[Problem]:
    """Set each dotted key in ``data`` (in place), creating tables on the way."""
    problems = []
    for key, value in overrides:
        parts = key.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(Problem(".".join(parts[: i + 1]), f"--set {key}: not a table"))
                break
            node = child
        else:
            node[parts[-1]] = value
    return problems


def read_recipe_data(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        return toml_io.loads(path.read_text(encoding="utf-8"))
    except toml_io.TOMLDecodeError as exc:
        raise RecipeError([Problem("", f"invalid TOML: {exc}")], source=str(path)) from None
    except UnicodeDecodeError:
        raise UserError(f"recipe {path} is not UTF-8 text") from None


def structure_recipe(data: Mapping[str, Any], registry: Registry, source: str | None = None) -> Recipe:
    """A validated :class:`Recipe`, or a :class:`RecipeError` listing every problem."""
    structurer = Structurer()
    structurer.registry = registry  # type: ignore[attr-defined]
    recipe = structurer.structure_class(Recipe, data, "")
    if structurer.problems or is_missing(recipe):
        raise RecipeError(structurer.problems or [Problem("", "invalid recipe")], source=source)
    return recipe


def load_recipe(path: str | Path, registry: Registry, overrides: Iterable[str] = ()) -> Recipe:
    """Read, override and validate the recipe at ``path``."""
    data = read_recipe_data(path)
    parsed = [parse_override(o) for o in overrides]
    problems = apply_overrides(data, parsed)
    if problems:
        raise RecipeError(problems, source=str(path))
    return structure_recipe(data, registry, source=str(path))


def recipe_to_data(recipe: Recipe) -> dict[str, Any]:
    return unstructure(recipe)


def dump_recipe(recipe: Recipe, header: str = "") -> str:
    """TOML of the fully resolved recipe (every default written out)."""
    return toml_io.dumps(recipe_to_data(recipe), header=header)


