"""Recipe structuring: typed fields, every problem located by key path, all reported at once."""

from __future__ import annotations

import attrs
import pytest
import torch

from cpcframe.config import toml_io
from cpcframe.config.loader import (apply_overrides, dump_recipe, load_recipe, parse_override,
                                    structure_recipe)
from cpcframe.config.structure import Structurer, is_missing
from cpcframe.errors import RecipeError, UserError

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def toy_data() -> dict:
    return toml_io.loads(TOY.read_text())


def test_toy_recipe_loads(registry):
    recipe = load_recipe(TOY, registry)
    assert recipe.model.critic.config.steps == 3
    assert recipe.loss.num_negatives == 8
    assert recipe.data.views.config.window == 256


def test_three_mistakes_give_three_located_errors(registry):
    data = toy_data()
    data["model"]["critic"]["steps"] = -2  # validator
    data["train"]["lr"] = "fast"  # type
    data["data"]["batchsize"] = 4  # unknown key
    with pytest.raises(RecipeError) as info:
        structure_recipe(data, registry)
    paths = [p.path for p in info.value.problems]
    assert paths == ["data.batchsize", "model.critic.steps", "train.lr"]
    text = str(info.value)
    assert "3 problems" in text
    assert "did you mean 'batch_size'" in text
    assert "must be > 0" in text


def test_unknown_component_lists_close_matches(registry):
    data = toy_data()
    data["model"]["context"]["name"] = "grru"
    with pytest.raises(RecipeError) as info:
        structure_recipe(data, registry)
    (problem,) = info.value.problems
    assert problem.path == "model.context.name"
    assert "did you mean 'gru'" in problem.message


def test_component_options_validated_by_plugin_config(registry):
    data = toy_data()
    data["model"]["context"]["hiden_size"] = 3
    data["data"]["views"]["window"] = 1.5
    with pytest.raises(RecipeError) as info:
        structure_recipe(data, registry)
    messages = {p.path: p.message for p in info.value.problems}
    assert "did you mean 'hidden_size'" in messages["model.context.hiden_size"]
    assert "expected an integer" in messages["data.views.window"]


def test_missing_sections_and_literal_suggestions(registry):
    with pytest.raises(RecipeError) as info:
        structure_recipe({"train": {"schedule": "cosin", "precision": "fp8"}, "loss": {"negatives": "bach"}},
                         registry)
    messages = {p.path: p.message for p in info.value.problems}
    assert messages["data"] == "missing required key"
    assert messages["model"] == "missing required key"
    assert "did you mean 'cosine'" in messages["train.schedule"]
    assert "'bf16'" in messages["train.precision"]
    assert "did you mean 'batch'" in messages["loss.negatives"]


def test_cross_field_check_is_located(registry):
    data = toy_data()
    data["data"]["group_size"] = 3
    with pytest.raises(RecipeError) as info:
        structure_recipe(data, registry)
    assert info.value.problems[0].path == "data"
    assert "multiple of group_size=3" in info.value.problems[0].message


@pytest.mark.parametrize("text, expected", [
    ("train.lr=1e-3", ("train.lr", 1e-3)),
    ("train.steps=5", ("train.steps", 5)),
    ("train.compile=true", ("train.compile", True)),
    ("data.dataset.root=/data/LibriSpeech", ("data.dataset.root", "/data/LibriSpeech")),
    ('name="my run"', ("name", "my run")),
    ("train.betas=[0.8, 0.9]", ("train.betas", [0.8, 0.9])),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_bad_override_is_a_user_error():
    with pytest.raises(UserError):
        parse_override("train.lr")


def test_overrides_apply_and_are_validated(registry):
    recipe = load_recipe(TOY, registry, ["train.steps=7", "model.critic.steps=2"])
    assert recipe.train.steps == 7 and recipe.model.critic.config.steps == 2
    with pytest.raises(RecipeError) as info:
        load_recipe(TOY, registry, ["train.stepz=7"])
    assert info.value.problems[0].path == "train.stepz"


def test_override_through_a_value_is_reported():
    data = {"train": {"lr": 1.0}}
    problems = apply_overrides(data, [("train.lr.x", 2)])
    assert problems and problems[0].path == "train.lr"


def test_resolved_recipe_round_trips(registry, tmp_path):
    recipe = load_recipe(TOY, registry, ["train.betas=[0.8, 0.95]"])
    path = tmp_path / "resolved.toml"
    path.write_text(dump_recipe(recipe, header="resolved"))
    again = load_recipe(path, registry)
    assert again == recipe
    assert path.read_text().startswith("# resolved")


def test_invalid_toml_is_located(tmp_path, registry):
    path = tmp_path / "bad.toml"
    path.write_text("[train\nsteps = 3\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path, registry)
    assert "invalid TOML" in str(info.value)


@attrs.frozen
class Inner:
    size: int = 1


@attrs.frozen
class Outer:
    pair: tuple[int, int]
    items: list[Inner]
    table: dict[str, float]
    maybe: int | None = None


def test_structurer_types():
    s = Structurer()
    out = s.structure_class(Outer, {"pair": [1, 2], "items": [{"size": 3}], "table": {"a": 1}}, "x")
    assert out == Outer((1, 2), [Inner(3)], {"a": 1.0}) and not s.problems
    s = Structurer()
    out = s.structure_class(Outer, {"pair": [1], "items": [{"size": True}], "table": {"a": "b"},
                                    "maybe": "no"}, "x")
    assert is_missing(out)
    assert [p.path for p in s.problems] == ["x.pair", "x.items[0].size", "x.table.a", "x.maybe"]


@pytest.mark.parametrize("value, ok", [(0.5, True), (1e-3, True), (0.0, False), (1.0, False), (-0.2, False)])
def test_fraction_validator_is_open_and_names_the_value(value, ok):
    from cpcframe import validators

    @attrs.frozen
    class Holdout:
        test_fraction: float = attrs.field(default=0.2, validator=validators.fraction)

    if ok:
        assert Holdout(value).test_fraction == value
    else:
        with pytest.raises(ValueError, match=f"between 0 and 1 .exclusive., got {value!r}"):
            Holdout(value)


def test_a_recipe_without_a_context_model_gets_identity(registry):
    data = toy_data()
    del data["model"]["context"]
    data["model"]["critic"] = {"name": "cpc_steps", "steps": 2}
    recipe = structure_recipe(data, registry)
    assert (recipe.model.context.kind, recipe.model.context.name) == ("context_model", "identity")
    context = recipe.model.context.build(registry, input_dim=5)
    z = torch.randn(2, 7, 5)
    assert context.output_dim == 5 and context(z) is z
    # The saved recipe names it, and reads back the same (as runs of 0.1.0 wrote it).
    saved = toml_io.loads(dump_recipe(recipe))
    assert saved["model"]["context"] == {"name": "identity"}
    assert structure_recipe(saved, registry) == recipe
