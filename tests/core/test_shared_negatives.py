"""Negatives shared by a query group (``[loss] share_negatives``, ``Contrast.query_group``;
``cpcframe/shared_scores.py``): the engine matches the plain reference fed the same
shared draws, with both scoring forms; a group never draws one of its queries'
positives; the grouped kernel equals the per-query gathered form to 1e-12 (float64),
chunk by chunk; validation and the cost model."""

from __future__ import annotations

import attrs
import pytest
import torch

from cpcframe import scoring, shared_scores
from cpcframe.config.loader import structure_recipe
from cpcframe.contrast import Contrast
from cpcframe.errors import RecipeError
from cpcframe.infonce import InfoNCEConfig, info_nce, positive_terms, sampled_negatives
from cpcframe.negatives import POLICIES
from reference_infonce import reference_shared_negatives
from test_config import toy_data
from test_infonce import (OPTIONS, SAMPLED, applicable, assert_matches, cpc, generic, make_contrast,
                          run_reference)

#: Layouts and their query group: CPC's K = 3 steps of a position; the generic layout's
#: 5 queries of an item as one group (masks, padded positives, P = 2, an item offset).
SHARED_LAYOUTS = {"cpc": (cpc, 3), "generic-all": (lambda: generic("all"), 5)}
CASES = [pytest.param(lay, pol, opt, id=f"{lay}-{pol}-{opt}")
         for lay in SHARED_LAYOUTS for pol in POLICIES for opt in OPTIONS if applicable(lay, pol)]


def grouped(layout_name: str, dtype=torch.float32) -> tuple[Contrast, int]:
    make, group = SHARED_LAYOUTS[layout_name]
    return attrs.evolve(make_contrast(make(), dtype), query_group=group), group


def shared_draw(contrast: Contrast, config: InfoNCEConfig, group: int, seed: int):
    B, Q, _ = contrast.queries.shape
    N, L, _ = contrast.keys.shape
    return reference_shared_negatives(
        config.negatives, config.num_negatives, B, Q, N, L, contrast.positives, group,
        groups=contrast.groups, query_mask=contrast.query_mask, key_mask=contrast.key_mask,
        item_offset=contrast.item_offset, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------ equality with the reference

@pytest.mark.parametrize("how", ["dense", "gathered"])
@pytest.mark.parametrize("layout_name, policy, options", CASES)
def test_shared_negatives_match_reference(layout_name, policy, options, how):
    contrast, group = grouped(layout_name)
    config = InfoNCEConfig(negatives=policy, num_negatives=SAMPLED, scoring=how, share_negatives=True,
                           **OPTIONS[options])
    shared = shared_draw(contrast, config, group, seed=11)
    # The reference scores per query: each query lists its group's negatives.
    ref, *grads = run_reference(contrast, config, shared.repeat_interleave(group, dim=1))
    result = info_nce(contrast, config, generator=torch.Generator().manual_seed(11))
    assert_matches(result, ref, contrast, grads)


@pytest.mark.parametrize("how", ["dense", "gathered"])
def test_given_shared_negatives_are_used_as_given(how):
    contrast, group = grouped("cpc")
    config = InfoNCEConfig(num_negatives=6, clip=2.0, score_penalty=0.1, scoring=how, share_negatives=True)
    # No positive among them: the two forms score a positive listed as a negative with
    # different rounding, which could turn a tie (never correct) into a win.
    negatives = shared_draw(contrast, config, group, seed=2)
    negatives[:, :, 1] = negatives[:, :, 0]  # a negative listed twice
    config = attrs.evolve(config, num_negatives=3)  # ignored: the given ones are used
    ref, *grads = run_reference(contrast, config, negatives.repeat_interleave(group, dim=1))
    assert_matches(info_nce(contrast, config, negatives=negatives), ref, contrast, grads)


def test_shared_draws_differ_from_per_query_draws():
    """Not vacuous: sharing changes the draws, so the loss differs from per-query sampling."""
    config = InfoNCEConfig(num_negatives=SAMPLED, share_negatives=True)
    shared = info_nce(grouped("cpc")[0], config, generator=torch.Generator().manual_seed(11))
    alone = info_nce(grouped("cpc")[0], attrs.evolve(config, share_negatives=False),
                     generator=torch.Generator().manual_seed(11))
    assert shared.loss.item() != pytest.approx(alone.loss.item(), abs=1e-4)


def test_without_a_query_group_sharing_changes_nothing():
    contrast = make_contrast(cpc())  # query_group = 1
    config = InfoNCEConfig(num_negatives=SAMPLED, clip=2.0)
    alone = info_nce(contrast, config, generator=torch.Generator().manual_seed(4))
    shared = info_nce(make_contrast(cpc()), attrs.evolve(config, share_negatives=True),
                      generator=torch.Generator().manual_seed(4))
    assert shared.loss.item() == alone.loss.item()


# ------------------------------------------------------------------------- the draws

def test_a_group_never_draws_a_positive_of_its_queries():
    """One item, 8 locations; group 0's queries have positives 1, 2, 3, group 1's 5, 6, 7:
    group 0 draws from {0, 4, 5, 6, 7} only, and every one of them comes up."""
    keys = torch.randn(1, 8, 4)
    positives = torch.tensor([[1], [2], [3], [5], [6], [7]])
    contrast = Contrast(queries=torch.randn(1, 6, 4), keys=keys, positives=positives,
                        steps=torch.arange(6) % 3, step_names=("a", "b", "c"), query_group=3)
    terms = positive_terms(contrast)
    allowed = torch.ones(1, 8, dtype=torch.bool)
    drawn = sampled_negatives(allowed, terms, 4000, torch.Generator().manual_seed(0), group=3)
    assert drawn.shape == (1, 2, 4000)
    assert set(drawn[0, 0].tolist()) == {0, 4, 5, 6, 7}
    assert set(drawn[0, 1].tolist()) == {0, 1, 2, 3, 4}


def test_a_group_with_only_masked_queries_draws_nothing_it_needs():
    """A group whose queries are all masked has no valid term; an allowed set it could not
    draw from is then no error (``active``), and its scores do not reach the loss."""
    contrast, group = grouped("cpc")
    B, Q, _ = contrast.queries.shape
    query_mask = torch.ones(B, Q, dtype=torch.bool)
    query_mask[1, :group] = False
    masked = attrs.evolve(contrast, query_mask=query_mask)
    config = InfoNCEConfig(num_negatives=SAMPLED, scoring="gathered", share_negatives=True, clip=2.0)
    shared = shared_draw(masked, config, group, seed=3)
    ref, *grads = run_reference(masked, config, shared.repeat_interleave(group, dim=1))
    assert_matches(info_nce(masked, config, generator=torch.Generator().manual_seed(3)), ref, masked, grads)


# ------------------------------------------------------------------------- the kernel

def per_query(queries, keys, index):
    """The same scores by the per-query gathered form, each query listing its group's row."""
    B, Qg, G, D = queries.shape
    scores = scoring.gathered_scores(queries.reshape(B, Qg * G, D), keys,
                                     index.repeat_interleave(G, dim=1), 1.0)
    return scores.view(B, Qg, G, -1)


@pytest.mark.parametrize("groups_per_chunk", [1, 3, 1000])
def test_shared_kernel_equals_per_query_scores_chunk_by_chunk(monkeypatch, groups_per_chunk):
    g = torch.Generator().manual_seed(0)
    B, Qg, G, D, C, M = 2, 7, 4, 6, 30, 9
    monkeypatch.setattr(shared_scores, "CHUNK_BYTES", groups_per_chunk * M * D * 8)
    assert shared_scores.groups_per_chunk(M, D, 8) == groups_per_chunk
    queries = torch.randn(B, Qg, G, D, generator=g, dtype=torch.float64)
    keys = torch.randn(C, D, generator=g, dtype=torch.float64)
    index = torch.randint(0, C, (B, Qg, M), generator=g)
    index[:, :, 1] = index[:, :, 0]  # repeats: their gradients add up
    weights = torch.randn(B, Qg, G, M, generator=g, dtype=torch.float64)
    results = []
    for form in (shared_scores.shared_negative_scores, lambda q, k, i, t: per_query(q, k, i) / t):
        q, k = queries.clone().requires_grad_(), keys.clone().requires_grad_()
        scores = form(q, k, index, 0.5)
        (scores * weights).sum().backward()
        results.append((scores.detach(), q.grad, k.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_shared_kernel_gradcheck_and_frozen_inputs():
    g = torch.Generator().manual_seed(1)
    queries = torch.randn(1, 3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 5, (1, 3, 3), generator=g)
    assert torch.autograd.gradcheck(lambda q, k: shared_scores.shared_negative_scores(q, k, index, 1.0),
                                    (queries, keys))
    frozen_keys = shared_scores.shared_negative_scores(queries, keys.detach(), index, 1.0)
    frozen_keys.sum().backward()
    torch.testing.assert_close(queries.grad, torch.autograd.grad(
        per_query(queries, keys, index).sum(), queries)[0], atol=1e-12, rtol=0)


def test_shared_kernel_scores_in_float32_under_bf16_autocast():
    queries = torch.randn(2, 3, 2, 8, requires_grad=True)
    keys = torch.randn(10, 8, requires_grad=True)
    index = torch.randint(0, 10, (2, 3, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = shared_scores.shared_negative_scores(queries.bfloat16(), keys.bfloat16(), index, 1.0)
    assert scores.dtype == torch.float32
    scores.sum().backward()
    assert queries.grad.dtype == torch.float32 and keys.grad.dtype == torch.float32


def test_shared_kernel_rejects_a_misshapen_index():
    with pytest.raises(ValueError, match=r"index must be \(B=2, Qg=3, M\), got \(2, 4, 5\)"):
        shared_scores.shared_negative_scores(torch.randn(2, 3, 2, 8), torch.randn(10, 8),
                                             torch.zeros(2, 4, 5, dtype=torch.long), 1.0)


# --------------------------------------------------------------------- the cost model

@pytest.mark.parametrize("candidates, device, group, expected", [
    (8 * 128, "cpu", 12, True),     # CPC audio, batch 8: the grouped GEMMs
    (256, "cpu", 12, False),        # C = 2U: the dense product is cheaper
    (8 * 128, "cuda", 12, False),   # tensor cores: dense at batch 8 ...
    (64 * 128, "cuda", 12, True),   # ... grouped with 64 items' keys
    (8 * 128, "meta", 12, False),   # unknown device types stay dense
])
def test_cost_model_with_shared_negatives(candidates, device, group, expected):
    assert scoring.prefers_gathered(queries=8 * 1536, candidates=candidates, used=129, dim=512,
                                    device=torch.device(device), group=group) is expected


def test_auto_scores_shared_negatives_with_the_grouped_kernel(monkeypatch):
    calls = []
    real = shared_scores._SharedNegativeScores.apply
    monkeypatch.setattr(shared_scores._SharedNegativeScores, "apply",
                        lambda *a: calls.append(a[0].shape) or real(*a))
    g = torch.Generator().manual_seed(0)
    B, T, K, D = 4, 64, 4, 16
    contrast = Contrast(queries=torch.randn(B, T * K, D, generator=g), keys=torch.randn(B, T, D, generator=g),
                        positives=torch.randint(0, T, (T * K, 1), generator=g), steps=torch.arange(T * K) % K,
                        step_names=tuple("abcd"), query_group=K)
    info_nce(contrast, InfoNCEConfig(num_negatives=8, share_negatives=True))
    assert calls == [(B * T, K, D)]


# ------------------------------------------------------------------------- validation

def test_share_negatives_needs_sampled_negatives():
    with pytest.raises(ValueError, match="share_negatives = true needs num_negatives > 0"):
        InfoNCEConfig(share_negatives=True)


def test_share_negatives_without_sampling_is_a_located_recipe_error(registry):
    data = toy_data()
    data["loss"].update(share_negatives=True, num_negatives=0)
    with pytest.raises(RecipeError) as info:
        structure_recipe(data, registry)
    assert [p.path for p in info.value.problems] == ["loss"]
    assert "needs num_negatives > 0" in info.value.problems[0].message


@pytest.mark.parametrize("group", [0, 4, 2.0])
def test_query_group_must_divide_the_queries(group):
    with pytest.raises(ValueError, match=rf"query_group must be a positive divisor of Q=6, got {group!r}"):
        Contrast(queries=torch.randn(1, 6, 4), keys=torch.randn(1, 8, 4), positives=torch.zeros(6, 1, dtype=torch.long),
                 steps=torch.zeros(6, dtype=torch.long), step_names=("k1",), query_group=group)


def test_given_shared_negatives_are_validated():
    contrast, group = grouped("cpc")
    B, Q, _ = contrast.queries.shape
    config = InfoNCEConfig(num_negatives=3, share_negatives=True)
    with pytest.raises(ValueError, match=r"negatives must be \(B=3, Q/G=8, M>0\) \(share_negatives: one row "
                                         r"per group of 3 queries\), got shape \(3, 24, 2\)"):
        info_nce(contrast, config, negatives=torch.zeros(B, Q, 2, dtype=torch.long))


@pytest.mark.parametrize("how", ["dense", "gathered"])
@pytest.mark.parametrize("share", [False, True])
def test_a_positive_listed_as_a_negative_is_a_tie_in_every_form(how, share):
    """Given negatives may list a term's positive (CPC_audio's sampler can draw it): the
    term ties with itself and is never correct, though the positives' kernel and the
    grouped one round the two float32 scores differently (at D = 512 they differ in the
    last bits for many of these terms)."""
    g = torch.Generator().manual_seed(0)
    B, T, K, D = 2, 40, 3, 512
    keys = torch.randn(B, T, D, generator=g)
    t = torch.arange(T).repeat_interleave(K)
    target = t + torch.arange(K).repeat(T) + 1
    positives = torch.where(target < T, target, -1)[:, None]
    queries = torch.randn(B, T * K, D, generator=g) + 3 * keys[:, positives[:, 0].clamp(max=T - 1)]
    contrast = Contrast(queries=queries.requires_grad_(), keys=keys.requires_grad_(), positives=positives,
                        steps=torch.arange(K).repeat(T), step_names=("k1", "k2", "k3"), query_group=K)
    # Every position's row lists the positives of its K queries, then random candidates.
    rows = torch.randint(0, B * T, (B, T, K + 5), generator=g)
    own = (torch.arange(B) * T)[:, None, None]
    rows[:, :, :K] = own + positives.clamp(min=0).view(1, T, K)
    config = InfoNCEConfig(num_negatives=1, scoring=how, share_negatives=share)
    result = info_nce(contrast, config, negatives=rows if share else rows.repeat_interleave(K, dim=1))
    assert result.terms_per_step.sum() > 100
    assert result.accuracy_per_step.tolist() == [0.0] * K


# ------------------------------------------------------------------ in a run

def test_a_run_with_shared_negatives_trains_and_resumes_exactly(tmp_path, registry):
    """The toy recipe (``cpc_steps``, K = 3) trained 4 steps with shared negatives, and the
    same stopped at step 2 and resumed: equal final weights, and other losses than per-query
    sampling gives."""
    from cpcframe.config.loader import load_recipe
    from cpcframe.runs import RunDir
    from cpcframe.training.trainer import Trainer
    from testpaths import TESTS

    toy = TESTS / "core" / "toy_recipe.toml"

    def train(out, *settings, resume=False):
        recipe = load_recipe(toy, registry, ["train.checkpoint_every=2", *settings])
        Trainer(recipe, registry, RunDir(tmp_path / out), resume=resume, progress=False).run()
        return torch.load(tmp_path / out / "checkpoint.pt", weights_only=False)

    whole = train("whole", "loss.share_negatives=true", "train.steps=4")
    train("parts", "loss.share_negatives=true", "train.steps=2")
    resumed = train("parts", "loss.share_negatives=true", "train.steps=4", resume=True)
    alone = train("alone", "train.steps=4")
    weights = [ck["model"] for ck in (whole, resumed, alone)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_share_negatives_with_a_critic_without_query_groups_is_a_located_error(registry):
    from cpcframe.config.loader import load_recipe
    from cpcframe.preflight import _sharing_problems
    from testpaths import TESTS

    recipe = load_recipe(TESTS / "core" / "toy_recipe.toml", registry, ["loss.share_negatives=true"])
    contrast, _ = grouped("cpc")
    assert _sharing_problems(recipe, [contrast]) == []
    (problem,) = _sharing_problems(recipe, [attrs.evolve(contrast, query_group=1)])
    assert problem.path == "loss.share_negatives" and "has no effect" in problem.message
    assert _sharing_problems(attrs.evolve(recipe, loss=InfoNCEConfig(num_negatives=4)),
                             [attrs.evolve(contrast, query_group=1)]) == []


def test_a_group_left_without_negatives_is_named_in_the_error():
    """``same_sequence`` on 4 locations, a group of 3 queries with positives 1, 2, 3 and
    no other candidate but 0 ... which is masked: nothing is left to draw."""
    positives = torch.tensor([[1], [2], [3]])
    key_mask = torch.tensor([[False, True, True, True]])
    contrast = Contrast(queries=torch.randn(1, 3, 4), keys=torch.randn(1, 4, 4), positives=positives,
                        steps=torch.arange(3), step_names=("a", "b", "c"), key_mask=key_mask, query_group=3)
    config = InfoNCEConfig(negatives="same_sequence", num_negatives=2, share_negatives=True)
    with pytest.raises(ValueError, match=r"item 0, query group \(of 3 queries\) 0: the policy allows 3 "
                                         r"candidates and 3 are positives"):
        info_nce(contrast, config)
    # Each query alone still has two candidates to draw from.
    assert torch.isfinite(info_nce(contrast, attrs.evolve(config, share_negatives=False)).loss)


def test_shared_kernel_at_the_real_chunk_size_agrees_with_dense_in_float32():
    """CPC-audio-like widths (D = 512, 128 negatives, K = 12) with the module's own chunk
    size: 64 groups make two chunks and a bit; the grouped form agrees with the dense
    product to float32 rounding."""
    g = torch.Generator().manual_seed(0)
    B, T, K, D, M = 2, 36, 12, 512, 128
    assert B * T > shared_scores.groups_per_chunk(M, D, 4) * 2
    keys = torch.randn(B, T, D, generator=g) / D ** 0.25
    t = torch.arange(T).repeat_interleave(K)
    target = t + torch.arange(K).repeat(T) + 1
    positives = torch.where(target < T, target, -1)[:, None]
    queries = torch.randn(B, T * K, D, generator=g) / D ** 0.25
    out = {}
    for how in ("dense", "gathered"):
        contrast = Contrast(queries=queries.clone().requires_grad_(), keys=keys.clone().requires_grad_(),
                            positives=positives, steps=torch.arange(K).repeat(T),
                            step_names=tuple(f"k{k}" for k in range(1, K + 1)), query_group=K)
        config = InfoNCEConfig(num_negatives=M, scoring=how, share_negatives=True)
        result = info_nce(contrast, config, generator=torch.Generator().manual_seed(1))
        result.loss.backward()
        out[how] = (result.loss.item(), contrast.queries.grad, contrast.keys.grad)
    assert out["gathered"][0] == pytest.approx(out["dense"][0], rel=1e-6)
    for a, b in zip(out["gathered"][1:], out["dense"][1:]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_shared_form_scores_positives_against_the_local_keys_only(monkeypatch):
    """After a gather (7 key items, local ones at 2..4) the positives, always locations of
    the query's own item, are scored against the 3 local items' keys, not all 7."""
    tables = []
    real = scoring.gathered_scores
    monkeypatch.setattr(scoring, "gathered_scores", lambda q, keys, *a: tables.append(keys.shape[0]) or real(q, keys, *a))
    contrast, group = grouped("generic-all")
    config = InfoNCEConfig(num_negatives=SAMPLED, scoring="gathered", share_negatives=True)
    info_nce(contrast, config, generator=torch.Generator().manual_seed(0))
    assert contrast.item_offset == 2 and tables == [3 * contrast.keys.shape[1]]
