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


def apply_overrides(data: dict[str, Any], overrides: Iterable[tuple[str, Any]],
                    notes: list[str] | None = None) -> list[Problem]:
    """Set each dotted key in ``data`` (in place), creating tables on the way.

    A component table's options belong to the component its ``name`` names, so an
    override that changes the ``name`` of a nested table (``data.dataset.name=librispeech``
    on a recipe whose ``[data.dataset]`` is ``synthetic_speech``) drops the recipe's other
    options of that table: the new component starts from its defaults plus the options
    given by ``--set`` (before or after the name). What is dropped is described in
    ``notes`` when given.
    """
    problems = []
    overrides = list(overrides)
    given = {key for key, _ in overrides}
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
            if len(parts) > 1 and parts[-1] == "name":
                _switch_component(node, ".".join(parts[:-1]), value, given, notes)
            node[parts[-1]] = value
    return problems


def _switch_component(table: dict[str, Any], path: str, name: Any, given: set[str],
                      notes: list[str] | None) -> None:
    """Drop ``table``'s options of its previous component when ``name`` changes it
    (options set by an override are kept)."""
    old = table.get("name")
    if not isinstance(old, str) or old == name:
        return
    dropped = [k for k in table if k != "name" and f"{path}.{k}" not in given
               and not isinstance(table[k], dict)]
    for key in dropped:
        del table[key]
    if dropped and notes is not None:
        notes.append(f"--set {path}.name={name}: the options of {old!r} ({', '.join(dropped)}) "
                     f"do not carry over; {name!r} starts from its defaults and the --set values")


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


def load_recipe(path: str | Path, registry: Registry, overrides: Iterable[str] = (),
                notes: list[str] | None = None) -> Recipe:
    """Read, override and validate the recipe at ``path`` (``notes``: see
    :func:`apply_overrides`)."""
    data = read_recipe_data(path)
    parsed = [parse_override(o) for o in overrides]
    problems = apply_overrides(data, parsed, notes)
    if problems:
        raise RecipeError(problems, source=str(path))
    return structure_recipe(data, registry, source=str(path))


def recipe_to_data(recipe: Recipe) -> dict[str, Any]:
    return unstructure(recipe)


def dump_recipe(recipe: Recipe, header: str = "") -> str:
    """TOML of the fully resolved recipe (every default written out)."""
    return toml_io.dumps(recipe_to_data(recipe), header=header)


