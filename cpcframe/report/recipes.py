"""Recipes as flat key paths, and the keys where several runs' recipes differ.

An ablation is a set of runs that differ in a few settings (CPC's K, the negative policy;
AMDIM's views); the resolved ``recipe.toml`` of each run writes out every default, so the
keys that differ are exactly what the ablation varied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpcframe.config.toml_io import toml_value

MISSING = object()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"critic": {"steps": 12}}}`` -> ``{"model.critic.steps": 12}`` (arrays stay values)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def differing_keys(recipes: list[Mapping[str, Any] | None]) -> list[str]:
    """Key paths whose value is not the same in every readable recipe (a key one recipe lacks
    differs), in the order of the first recipe that has them. Fewer than two recipes: none."""
    flat = [flatten(r) for r in recipes if r is not None]
    if len(flat) < 2:
        return []
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if len({_hashable(f.get(k, MISSING)) for f in flat}) > 1]


def _hashable(value: Any) -> Any:
    if value is MISSING:
        return MISSING
    return toml_value(value) if value is not None else None


def show_value(value: Any) -> str:
    """A recipe value as written in TOML (``-`` when the recipe lacks it)."""
    if value is None or value is MISSING:
        return "-"
    try:
        return toml_value(value)
    except TypeError:
        return str(value)
