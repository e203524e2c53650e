"""Every recipe under recipes/ (recursively) is valid and says how to run it."""

from __future__ import annotations

import pytest

from cpcframe.config.loader import load_recipe

from testpaths import ROOT

RECIPES = sorted((ROOT / "recipes").rglob("*.toml"))


def test_there_are_recipes():
    assert RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_recipe_is_valid(path, registry):
    first = path.read_text().lstrip().splitlines()[0]
    assert first.startswith("#") and "cpcframe run" in first, f"{path.name} must start with '# ... cpcframe run ...'"
    load_recipe(path, registry)


def test_amdim_recipes_leave_the_context_model_to_its_default(registry):
    from cpcframe.config import toml_io

    amdim = [p for p in RECIPES if toml_io.loads(p.read_text())["model"]["critic"]["name"] == "amdim"]
    assert {p.stem for p in amdim} >= {"amdim_cifar10", "amdim_stl10", "quickstart_image"}
    for path in amdim:
        assert "context" not in toml_io.loads(path.read_text())["model"], path.name
        assert load_recipe(path, registry).model.context.name == "identity"
