"""The negative sampler and the negative policies.

``sample_negatives`` must never draw a query's positive (any of them, listed twice or
not even allowed), must draw uniformly over the allowed, non-positive candidates, and
must fail clearly when nothing is left; ``allowed_items`` must implement each policy.
A plugin's policy (``tests/policy_plugin.py``, through ``register_negative_policies``)
is checked against a plain loop, through the engine against the reference, in recipes
and in training.
"""

from __future__ import annotations

import json

import pytest
import torch

import policy_plugin
from cpcframe.config.component import ComponentSpec
from cpcframe.config.loader import dump_recipe, load_recipe, structure_recipe
from cpcframe.config.toml_io import loads as toml_loads
from cpcframe.errors import RecipeError, UnknownComponentError
from cpcframe.infonce import InfoNCEConfig, info_nce
from cpcframe.negatives import BUILTIN_POLICIES, POLICIES, allowed_items, resolve_policy, sample_negatives
from cpcframe.plugins import CORE_PLUGINS, build_registry, make_plugin_manager
from cpcframe.runs.layout import RunDir
from cpcframe.training.trainer import Trainer
from reference_infonce import item_allowed
from test_infonce import assert_matches, generic, make_contrast, run_reference, sampled_reference_negatives
from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def random_problem(B, C, Q, P, seed, density=0.6):
    """Random allowed sets and excluded lists with padding (-1), duplicates and excluded
    candidates that are not allowed."""
    g = torch.Generator().manual_seed(seed)
    allowed = torch.rand(B, C, generator=g) < density
    allowed[:, 0] = True  # at least one allowed candidate
    excluded = torch.randint(0, C, (B, Q, P), generator=g)
    excluded[torch.rand(B, Q, P, generator=g) < 0.2] = -1
    if P > 1:
        excluded[:, :, 1] = excluded[:, :, 0]  # a positive listed twice
    # Keep something to draw: a query excluding every allowed candidate is the error case.
    for b in range(B):
        allowed_b = allowed[b].nonzero().flatten().tolist()
        for q in range(Q):
            left = set(allowed_b) - set(excluded[b, q].tolist())
            if not left:
                excluded[b, q, :] = -1
    return allowed, excluded, g


def check_draws(allowed, excluded, drawn):
    B, Q, num = drawn.shape
    assert drawn.dtype == torch.long
    assert ((drawn >= 0) & (drawn < allowed.shape[1])).all()
    # Only allowed candidates are drawn.
    assert allowed.gather(1, drawn.view(B, Q * num)).all()
    # No excluded candidate (padding -1 never matches a drawn index >= 0).
    hit = (drawn[..., :, None] == excluded[..., None, :]).any(-1)
    assert not hit.any(), f"{int(hit.sum())} draws hit a positive"


@pytest.mark.parametrize("B, C, Q, P", [(1, 1 + 1, 1, 1), (3, 10, 4, 1), (2, 37, 5, 3),
                                        (4, 64, 8, 6), (2, 200, 3, 25), (5, 12, 7, 11)])
@pytest.mark.parametrize("seed", range(4))
def test_positives_are_never_drawn(B, C, Q, P, seed):
    allowed, excluded, g = random_problem(B, C, Q, P, seed)
    drawn = sample_negatives(allowed, excluded, 300, generator=g)
    assert drawn.shape == (B, Q, 300)
    check_draws(allowed, excluded, drawn)


def test_draws_reach_every_remaining_candidate():
    """With few candidates left, every one of them is drawn (nothing is skipped)."""
    allowed, excluded, g = random_problem(3, 30, 4, 5, seed=7)
    drawn = sample_negatives(allowed, excluded, 2000, generator=g)
    for b in range(3):
        for q in range(4):
            expected = set(allowed[b].nonzero().flatten().tolist()) - set(excluded[b, q].tolist())
            assert set(drawn[b, q].tolist()) == expected


def chi_square(counts: torch.Tensor) -> float:
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


def test_draws_are_uniform_over_the_allowed_set():
    """Per query, counts over the allowed non-excluded candidates pass a chi-square test.

    Candidates 0..19, allowed: the even ones and 15 (11 candidates); query 0 excludes 4 and
    15 (and lists 4 twice), query 1 excludes 7, which is not allowed, query 2 nothing. The
    seed is fixed, so the test is deterministic; the bound is the 1e-4 tail of chi-square.
    """
    C = 20
    allowed = torch.zeros(1, C, dtype=torch.bool)
    allowed[0, 0::2] = True
    allowed[0, 15] = True
    excluded = torch.tensor([[[4, 15, 4], [7, -1, -1], [-1, -1, -1]]])
    num = 60_000
    drawn = sample_negatives(allowed, excluded, num, generator=torch.Generator().manual_seed(0))
    # chi-square critical values at p = 1e-4 for 8 and 10 degrees of freedom.
    critical = {9: 31.8, 11: 35.6}
    for q, excl in enumerate(({4, 15}, {7}, set())):
        support = [c for c in range(C) if allowed[0, c] and c not in excl]
        counts = torch.bincount(drawn[0, q], minlength=C).double()
        assert counts[[c for c in range(C) if c not in support]].sum() == 0
        stat = chi_square(counts[support])
        assert stat < critical[len(support)], (q, stat, counts[support].tolist())
        # And not suspiciously perfect either (a deterministic round-robin would be 0).
        assert stat > 0.5


def test_uniform_with_the_global_rng_is_reproducible():
    allowed, excluded, _ = random_problem(2, 16, 3, 2, seed=1)
    torch.manual_seed(123)
    first = sample_negatives(allowed, excluded, 50)
    torch.manual_seed(123)
    second = sample_negatives(allowed, excluded, 50)
    torch.manual_seed(124)
    third = sample_negatives(allowed, excluded, 50)
    assert torch.equal(first, second) and not torch.equal(first, third)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("item_offset", [0, 2])
def test_allowed_items_follow_the_policy(policy, item_offset):
    B, N = 3, 6
    groups = torch.tensor([0, 1, 1, 0, 2, 1])
    allowed = allowed_items(policy, B, N, item_offset, groups, torch.device("cpu"))
    assert allowed.shape == (B, N) and allowed.dtype == torch.bool
    for b in range(B):
        for n in range(N):
            assert bool(allowed[b, n]) == item_allowed(policy, item_offset + b, n, groups), (b, n)


@pytest.mark.parametrize("policy", POLICIES)
def test_only_allowed_items_are_drawn_per_policy(policy):
    """Through the engine's own path: item policy -> (B, C) candidates -> draws."""
    B, N, L, Q = 3, 5, 4, 6
    groups = torch.tensor([0, 1, 0, 1, 0])
    items = allowed_items(policy, B, N, 1, groups, torch.device("cpu"))
    allowed = items[:, :, None].expand(B, N, L).reshape(B, N * L)
    own = (torch.arange(B) + 1) * L
    excluded = (own[:, None] + torch.arange(Q)[None, :] % L)[:, :, None]  # one positive each
    excluded = torch.where(allowed.gather(1, excluded[..., 0])[..., None], excluded, -1)
    drawn = sample_negatives(allowed, excluded, 500, generator=torch.Generator().manual_seed(2))
    check_draws(allowed, excluded, drawn)
    drawn_items = drawn // L
    for b in range(B):
        seen = set(drawn_items[b].flatten().tolist())
        expected = {n for n in range(N) if item_allowed(policy, b + 1, n, groups)}
        assert seen == expected, (policy, b, seen, expected)


def test_nothing_left_to_draw_is_a_clear_error():
    allowed = torch.tensor([[True, False, True], [True, True, True]])
    excluded = torch.tensor([[[0, 2]], [[1, -1]]])  # item 0's query excludes both allowed
    with pytest.raises(ValueError, match=r"no negatives left to sample for item 0, query 0: "
                                         r"the policy allows 2 candidates and 2 are positives"):
        sample_negatives(allowed, excluded, 4)
    # An inactive query may have nothing left: its draws are never used.
    drawn = sample_negatives(allowed, excluded, 4, active=torch.tensor([[False], [True]]))
    assert drawn.shape == (2, 1, 4)
    assert not (drawn[1] == 1).any()


def test_same_group_needs_groups_and_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="'same_group' needs group ids"):
        allowed_items("same_group", 2, 2, 0, None, torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown negative policy 'speaker'; choose one of batch"):
        allowed_items("speaker", 2, 2, 0, None, torch.device("cpu"))


# --------------------------------------------------------------------- a plugin's policies

@pytest.fixture(scope="module")
def policy_registry():
    """The installed plugins plus ``tests/policy_plugin.py``."""
    return build_registry(make_plugin_manager([policy_plugin]))


def nearby_loop(distance):
    """``nearby`` spelt out item by item: ``|item - own| <= distance``."""
    return lambda own, item, groups: abs(item - own) <= distance


def group_others_loop(own, item, groups):
    return int(groups[item]) == int(groups[own]) and item != own


PLUGIN_POLICIES = {
    "nearby": ("nearby", nearby_loop(1)),  # by name: the default distance, 1
    "nearby-2": (ComponentSpec("negative_policy", "nearby", policy_plugin.NearbyConfig(distance=2)), nearby_loop(2)),
    "nearby-0": (ComponentSpec("negative_policy", "nearby", policy_plugin.NearbyConfig(distance=0)), nearby_loop(0)),
    "group_others": ("group_others", group_others_loop),
}


def test_policies_are_registered_through_the_hook(policy_registry):
    names = policy_registry.names("negative_policy")
    assert set(names) == set(POLICIES) | {"nearby", "group_others"}
    assert policy_registry.get("negative_policy", "nearby").plugin == "policy_plugin"
    # The built-in ones come through the same public hook, from a core plugin module.
    assert "cpcframe.negatives.plugin" in CORE_PLUGINS
    assert policy_registry.get("negative_policy", "batch").factory.__module__ == "cpcframe.negatives.plugin"
    for name, function in BUILTIN_POLICIES.items():
        assert resolve_policy(name, policy_registry) is function
    with pytest.raises(UnknownComponentError, match="did you mean 'nearby'"):
        resolve_policy("nearbi", policy_registry)


@pytest.mark.parametrize("choice", PLUGIN_POLICIES)
@pytest.mark.parametrize("item_offset", [0, 2])
def test_plugin_policy_allows_what_it_says(policy_registry, choice, item_offset):
    spec, loop = PLUGIN_POLICIES[choice]
    policy = resolve_policy(spec, policy_registry)
    B, N = 3, 7
    groups = torch.tensor([0, 1, 1, 0, 2, 1, 0])
    allowed = allowed_items(policy, B, N, item_offset, groups, torch.device("cpu"))
    expected = torch.tensor([[loop(item_offset + b, n, groups) for n in range(N)] for b in range(B)])
    assert torch.equal(allowed, expected)


@pytest.mark.parametrize("choice", PLUGIN_POLICIES)
@pytest.mark.parametrize("num_negatives", [0, 7])
def test_engine_with_a_plugin_policy_matches_the_reference(policy_registry, choice, num_negatives):
    """Every candidate, or sampled (the reference draws from its own loop-built allowed
    sets with the same seed), on 7 key items with local items at 2..4 and masks."""
    spec, loop = PLUGIN_POLICIES[choice]
    layout = generic("all")
    layout["groups"] = torch.tensor([0, 1, 0, 1, 1, 0, 0])  # every local item has a group mate
    contrast = make_contrast(layout)
    config = InfoNCEConfig(negatives=spec, num_negatives=num_negatives, clip=2.0, score_penalty=0.1)
    negatives = None
    if num_negatives:
        negatives = sampled_reference_negatives(contrast, config, torch.Generator().manual_seed(4), policy=loop)
    ref, *grads = run_reference(contrast, config, negatives, policy=loop)
    result = info_nce(contrast, config, generator=torch.Generator().manual_seed(4),
                      policy=resolve_policy(spec, policy_registry))
    assert_matches(result, ref, contrast, grads)


def test_a_plugin_policy_needs_its_registry():
    contrast = make_contrast(generic("plain"))
    with pytest.raises(ValueError, match="unknown negative policy 'nearby'.*resolve_policy"):
        info_nce(contrast, InfoNCEConfig(negatives="nearby"))


def test_a_policy_returning_the_wrong_thing_is_named():
    contrast = make_contrast(generic("plain"))
    with pytest.raises(ValueError, match=r"negative policy 'flat' must return a \(B=3, N=3\) bool tensor, "
                                         r"got \(3,\) torch.bool"):
        info_nce(contrast, InfoNCEConfig(negatives="flat"), policy=lambda own, groups, n: own >= 0)


def test_recipes_name_plugin_policies_and_are_checked(policy_registry, registry):
    assert load_recipe(TOY, policy_registry, ["loss.negatives=group_others"]).loss.negatives == "group_others"
    # By name a policy gets its default options; a table sets them.
    recipe = load_recipe(TOY, policy_registry, ["loss.negatives.name=nearby", "loss.negatives.distance=2"])
    assert recipe.loss.negatives == ComponentSpec("negative_policy", "nearby", policy_plugin.NearbyConfig(2))
    # The resolved recipe (run directories keep it) reads back the same.
    assert structure_recipe(toml_loads(dump_recipe(recipe)), policy_registry) == recipe
    problems = {
        "loss.negatives": ["loss.negatives=nearbi"],
        "loss.negatives.name": ["loss.negatives.name=nearbi"],
        "loss.negatives.distanse": ["loss.negatives.name=nearby", "loss.negatives.distanse=2"],
    }
    for path, overrides in problems.items():
        with pytest.raises(RecipeError) as info:
            load_recipe(TOY, policy_registry, overrides)
        messages = {p.path: p.message for p in info.value.problems}
        assert list(messages) == [path]
        assert "did you mean 'nearby'" in messages[path] or "did you mean 'distance'" in messages[path]
    # Without the plugin the name is unknown, and the message lists what is known.
    with pytest.raises(RecipeError, match=r"loss.negatives: unknown negative policy 'nearby'; known: batch"):
        load_recipe(TOY, registry, ["loss.negatives=nearby"])
    with pytest.raises(RecipeError, match=r"loss.negatives: expected the name of a negative policy, got 3"):
        load_recipe(TOY, registry, ["loss.negatives=3"])


def train_records(registry, run_dir, *overrides):
    """Per-step records (without timing) of a 4-step toy run with validation."""
    steps = ["train.steps=4", "train.log_every=1", "train.checkpoint_every=100", "train.validate_every=2",
             "train.validate_batches=1"]
    recipe = load_recipe(TOY, registry, steps + list(overrides))
    trainer = Trainer(recipe, registry, RunDir(run_dir), progress=False)
    trainer.run()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("items_per_s", None)
    return records, trainer


def test_a_recipe_naming_a_plugin_policy_trains_end_to_end(policy_registry, tmp_path):
    """``nearby`` with distance 0 allows exactly what ``same_sequence`` allows, and with
    distance 3 (batch of 4) what ``batch`` allows: the sampler draws the same negatives
    from the same RNG state, so the runs are identical record for record (training and
    validation), and the two pairs differ from each other."""
    near0, trainer = train_records(policy_registry, tmp_path / "near0", "loss.negatives.name=nearby",
                                   "loss.negatives.distance=0")
    assert trainer.negative_policy.__qualname__.startswith("build_nearby")
    same, _ = train_records(policy_registry, tmp_path / "same", "loss.negatives=same_sequence")
    wide, _ = train_records(policy_registry, tmp_path / "wide", "loss.negatives.name=nearby",
                            "loss.negatives.distance=3")
    batch, _ = train_records(policy_registry, tmp_path / "batch", "loss.negatives=batch")
    assert [r["step"] for r in near0] == [1, 2, 3, 4]
    assert any("val/loss" in r for r in near0)
    assert near0 == same and wide == batch
    assert near0 != wide
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in near0 + wide)
    # The run directory's recipe keeps the table and loads again with the plugin.
    saved = load_recipe(tmp_path / "near0" / "recipe.toml", policy_registry)
    assert saved.loss.negatives == ComponentSpec("negative_policy", "nearby", policy_plugin.NearbyConfig(0))
