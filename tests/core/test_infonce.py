"""The InfoNCE engine against a plain slow reference, analytic values, validation, the loss.

The reference (``reference_infonce.py``) loops over batch items, queries, positives and
explicit candidate lists in float64; the engine must agree value for value (1e-5) on the
loss, per-step loss and accuracy, and on gradients, for every negative policy, with all
candidates and with sampled negatives (same seeded draws), and with every option. Sampled
and given negatives are checked with both scoring forms forced (the dense product and the
gathered one, ``cpcframe/scoring.py``); ``test_scoring.py`` checks that the two forms agree
with each other to 1e-12 in float64, and the cost model that chooses between them.
"""

from __future__ import annotations

import math

import attrs
import pytest
import torch

from cpcframe.contrast import Contrast
from cpcframe.infonce import InfoNCEConfig, info_nce
from cpcframe.model import contrastive_loss
from cpcframe.negatives import POLICIES
from reference_infonce import distinct_positives, reference_info_nce, reference_negatives

ATOL = 1e-5
SAMPLED = 7  # negatives per query in sampled mode


# ----------------------------------------------------------------------------- layouts


def informative_queries(keys, positives, B, item_offset, g, D):
    """Queries near their first positive, so that some terms are right and some wrong."""
    Q = positives.shape[0]
    queries = torch.randn(B, Q, D, generator=g)
    for b in range(B):
        for q in range(Q):
            loc = int(positives[q, 0])
            if loc >= 0:
                queries[b, q] += 1.5 * keys[item_offset + b, loc]
    return queries


def generic(features: str = "plain", seed: int = 0) -> dict:
    """B=3 items, Q=5 queries with P=2 positives each, L=6 locations, D=8, K=3 steps.

    ``features``: ``plain``; ``masks`` (padded positives, query_mask, key_mask hiding a
    positive and a negative); ``offset`` (7 key items, local items at 2..4, as after an
    all-gather); ``all`` (masks + offset).
    """
    g = torch.Generator().manual_seed(seed)
    B, Q, P, L, D, K = 3, 5, 2, 6, 8, 3
    offset = features in ("offset", "all")
    N, item_offset = (7, 2) if offset else (3, 0)
    keys = torch.randn(N, L, D, generator=g)
    positives = distinct_positives(Q, P, L, g)
    groups = torch.tensor([0, 1, 0, 1, 2, 0, 1])[:N]
    out = dict(keys=keys, positives=positives, steps=torch.arange(Q) % K,
               step_names=("k1", "k2", "k3"), groups=groups, item_offset=item_offset)
    if features in ("masks", "all"):
        positives[1, 1] = -1
        positives[4, 0] = -1  # first positive padded, second one valid
        query_mask = torch.ones(B, Q, dtype=torch.bool)
        query_mask[0, 2] = False
        query_mask[2, 0] = False
        key_mask = torch.ones(N, L, dtype=torch.bool)
        key_mask[item_offset, int(positives[3, 1])] = False  # a positive of (0, 3) is hidden
        key_mask[item_offset + 1, (int(positives[0, 0]) + 1) % L] = False
        key_mask[N - 1, 0] = False  # a foreign location, never a negative
        out.update(query_mask=query_mask, key_mask=key_mask)
    out["queries"] = informative_queries(keys, positives, B, item_offset, g, D)
    return out


def amdim(seed: int = 0) -> dict:
    """AMDIM-style: Q=1 global query per item, every one of L=5 locations of its own item
    is a positive (P=L), 4 items."""
    g = torch.Generator().manual_seed(seed)
    B, L, D = 4, 5, 8
    keys = torch.randn(B, L, D, generator=g)
    queries = torch.randn(B, 1, D, generator=g) + keys.mean(1, keepdim=True) * 2
    return dict(queries=queries, keys=keys, positives=torch.arange(L)[None],
                steps=torch.zeros(1, dtype=torch.long), step_names=("",),
                groups=torch.tensor([0, 0, 1, 1]), name="1t5")


def cpc(seed: int = 0) -> dict:
    """CPC-style: T=8 latents, K=3 steps, query ``q = t·K + (k-1)``, positive ``t+k``
    (padded past the end), 3 items."""
    g = torch.Generator().manual_seed(seed)
    B, T, K, D = 3, 8, 3, 8
    keys = torch.randn(B, T, D, generator=g)
    t = torch.arange(T).repeat_interleave(K)
    k = torch.arange(K).repeat(T)
    target = t + k + 1
    positives = torch.where(target < T, target, torch.full_like(target, -1))[:, None]
    queries = informative_queries(keys, positives, B, 0, g, D)
    return dict(queries=queries, keys=keys, positives=positives, steps=k,
                step_names=("k1", "k2", "k3"), groups=torch.tensor([0, 1, 0]))


LAYOUTS = {
    **{f"generic-{f}": (lambda f=f: generic(f)) for f in ("plain", "masks", "all")},
    "amdim": amdim,
    "cpc": cpc,
}
OPTIONS = {
    "defaults": dict(),
    "scored": dict(temperature=0.5, clip=2.0, score_penalty=0.1),
}


def make_contrast(layout: dict, dtype=torch.float32) -> Contrast:
    fields = {f.name for f in attrs.fields(Contrast)}
    kwargs = {k: v for k, v in layout.items() if k in fields}
    kwargs["queries"] = layout["queries"].to(dtype).detach().requires_grad_()
    kwargs["keys"] = layout["keys"].to(dtype).detach().requires_grad_()
    return Contrast(**kwargs)


def run_reference(contrast: Contrast, config: InfoNCEConfig, negatives=None, policy=None):
    """The reference's result and gradients; ``policy`` overrides ``config.negatives``
    (a predicate spelling out a plugin's policy, see ``reference_infonce.item_allowed``)."""
    queries = contrast.queries.detach().double().requires_grad_()
    keys = contrast.keys.detach().double().requires_grad_()
    ref = reference_info_nce(
        queries, keys, contrast.positives, contrast.steps, contrast.num_steps,
        policy=config.negatives if policy is None else policy, temperature=config.temperature, clip=config.clip,
        score_penalty=config.score_penalty, groups=contrast.groups,
        query_mask=contrast.query_mask, key_mask=contrast.key_mask,
        item_offset=contrast.item_offset, negatives=negatives)
    ref["loss"].backward()
    return ref, queries.grad, keys.grad


def sampled_reference_negatives(contrast: Contrast, config: InfoNCEConfig, generator, policy=None):
    B, Q, _ = contrast.queries.shape
    N, L, _ = contrast.keys.shape
    return reference_negatives(
        config.negatives if policy is None else policy, config.num_negatives, B, Q, N, L, contrast.positives,
        groups=contrast.groups, query_mask=contrast.query_mask, key_mask=contrast.key_mask,
        item_offset=contrast.item_offset, generator=generator)


def assert_matches(result, ref, contrast, ref_grads):
    assert result.loss.item() == pytest.approx(ref["loss"].item(), abs=ATOL)
    assert result.penalty.item() == pytest.approx(ref["penalty"], abs=ATOL)
    assert result.loss_per_step.tolist() == pytest.approx(ref["loss_per_step"], abs=ATOL)
    assert result.accuracy_per_step.tolist() == pytest.approx(ref["accuracy_per_step"], abs=ATOL)
    assert result.terms_per_step.tolist() == ref["terms_per_step"]
    assert result.num_negatives == pytest.approx(ref["num_negatives"], abs=ATOL)
    result.loss.backward()
    torch.testing.assert_close(contrast.queries.grad.double(), ref_grads[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(contrast.keys.grad.double(), ref_grads[1], atol=ATOL, rtol=0)


def applicable(layout_name: str, policy: str) -> bool:
    # AMDIM's positives are every location of the own item: same_sequence leaves no
    # negative (tested as an error below).
    return not (layout_name == "amdim" and policy == "same_sequence")


CASES = [pytest.param(lay, pol, opt, id=f"{lay}-{pol}-{opt}")
         for lay in LAYOUTS for pol in POLICIES for opt in OPTIONS if applicable(lay, pol)]


# ------------------------------------------------------------------ equality with reference

@pytest.mark.parametrize("layout_name, policy, options", CASES)
def test_all_candidates_match_reference(layout_name, policy, options):
    contrast = make_contrast(LAYOUTS[layout_name]())
    config = InfoNCEConfig(negatives=policy, num_negatives=0, **OPTIONS[options])
    ref, *grads = run_reference(contrast, config)
    assert_matches(info_nce(contrast, config), ref, contrast, grads)


@pytest.mark.parametrize("how", ["dense", "gathered"])
@pytest.mark.parametrize("layout_name, policy, options", CASES)
def test_sampled_negatives_match_reference(layout_name, policy, options, how):
    contrast = make_contrast(LAYOUTS[layout_name]())
    config = InfoNCEConfig(negatives=policy, num_negatives=SAMPLED, scoring=how, **OPTIONS[options])
    negatives = sampled_reference_negatives(contrast, config, torch.Generator().manual_seed(11))
    ref, *grads = run_reference(contrast, config, negatives)
    result = info_nce(contrast, config, generator=torch.Generator().manual_seed(11))
    assert_matches(result, ref, contrast, grads)


def test_sampled_negatives_use_the_global_rng_when_no_generator():
    contrast = make_contrast(generic("all"))
    config = InfoNCEConfig(negatives="same_group", num_negatives=SAMPLED, clip=3.0)
    torch.manual_seed(5)
    negatives = sampled_reference_negatives(contrast, config, None)
    ref, *grads = run_reference(contrast, config, negatives)
    torch.manual_seed(5)
    assert_matches(info_nce(contrast, config), ref, contrast, grads)
    # Different seeds draw different negatives (the comparison above is not vacuous).
    torch.manual_seed(6)
    other = info_nce(make_contrast(generic("all")), config)
    assert other.loss.item() != pytest.approx(ref["loss"].item(), abs=1e-4)


@pytest.mark.parametrize("how", ["dense", "gathered"])
@pytest.mark.parametrize("layout_name", ["generic-all", "cpc", "amdim"])
def test_given_negatives_are_used_as_given(layout_name, how):
    """``info_nce(..., negatives=)`` scores exactly those candidates, even a positive
    among them (the caller's responsibility), and ignores the policy."""
    contrast = make_contrast(LAYOUTS[layout_name]())
    B, Q, _ = contrast.queries.shape
    C = contrast.keys.shape[0] * contrast.keys.shape[1]
    negatives = torch.randint(0, C, (B, Q, 5), generator=torch.Generator().manual_seed(3))
    negatives[0, :, 0] = contrast.item_offset * contrast.keys.shape[1]  # may hit a positive
    config = InfoNCEConfig(negatives="same_sequence", num_negatives=3, clip=2.0, score_penalty=0.1,
                           scoring=how)
    ref, *grads = run_reference(contrast, attrs.evolve(config, num_negatives=5), negatives)
    assert_matches(info_nce(contrast, config, negatives=negatives), ref, contrast, grads)


@pytest.mark.parametrize("bad, message", [
    (lambda B, Q, C: torch.zeros(B, Q, dtype=torch.long), r"negatives must be \(B=3, Q=5, M>0\)"),
    (lambda B, Q, C: torch.zeros(B, Q + 1, 2, dtype=torch.long), r"got shape \(3, 6, 2\)"),
    (lambda B, Q, C: torch.zeros(B, Q, 0, dtype=torch.long), r"M>0"),
    (lambda B, Q, C: torch.zeros(B, Q, 2), r"negatives must be torch.long, got torch.float32"),
    (lambda B, Q, C: torch.full((B, Q, 2), C), r"candidate indices in \[0, C=18\), got range \[18, 18\]"),
    (lambda B, Q, C: torch.full((B, Q, 2), -1), r"got range \[-1, -1\]"),
])
def test_given_negatives_are_validated(bad, message):
    contrast = make_contrast(generic("plain"))
    with pytest.raises(ValueError, match=message):
        info_nce(contrast, negatives=bad(3, 5, 18))


def test_float64_inputs_are_scored_in_float64():
    contrast = make_contrast(generic("all"), dtype=torch.float64)
    config = InfoNCEConfig(negatives="batch", clip=2.0, score_penalty=0.1, temperature=0.7)
    result = info_nce(contrast, config)
    ref, *grads = run_reference(contrast, config)
    assert result.loss.dtype == torch.float64
    assert abs(result.loss.item() - ref["loss"].item()) < 1e-12
    result.loss.backward()
    torch.testing.assert_close(contrast.queries.grad, grads[0], atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- analytic values

def uninformative(kind: str) -> Contrast:
    """B=4 items of L=6 locations, groups of 2 items, Q=3 queries with one positive each.

    ``zero``: all-zero queries; ``same``: every key equal (exact small integers, so every
    score of a query is the same float whatever the summation order)."""
    g = torch.Generator().manual_seed(0)
    B, L, Q, D = 4, 6, 3, 5
    if kind == "zero":
        queries = torch.zeros(B, Q, D)
        keys = torch.randn(B, L, D, generator=g)
    else:
        queries = torch.randint(-3, 4, (B, Q, D), generator=g).float()
        keys = torch.randint(-2, 3, (1, 1, D), generator=g).float().expand(B, L, D).contiguous()
    return Contrast(queries=queries.requires_grad_(), keys=keys.requires_grad_(),
                    positives=torch.tensor([[0], [3], [5]]), steps=torch.tensor([0, 1, 1]),
                    step_names=("a", "b"), groups=torch.tensor([0, 1, 0, 1]))


# Negatives per query with every candidate: B=4, L=6, groups of 2, one positive in own item.
ALL_CANDIDATES = {"batch": 4 * 6 - 1, "same_sequence": 6 - 1, "same_group": 2 * 6 - 1,
                  "other_sequences": 3 * 6}


@pytest.mark.parametrize("kind", ["zero", "same"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("num_negatives", [0, 9])
def test_uninformative_scores_give_log_n_plus_one(kind, policy, num_negatives):
    contrast = uninformative(kind)
    config = InfoNCEConfig(negatives=policy, num_negatives=num_negatives, temperature=0.3, clip=5.0)
    result = info_nce(contrast, config)
    n = num_negatives or ALL_CANDIDATES[policy]
    assert result.num_negatives == n
    assert result.loss.item() == pytest.approx(math.log(n + 1), abs=1e-6)
    assert result.loss_per_step.tolist() == pytest.approx([math.log(n + 1)] * 2, abs=1e-6)
    assert result.accuracy_per_step.tolist() == [0.0, 0.0]  # ties are not correct (strict >)
    assert result.accuracy.item() == 0.0
    assert result.mutual_information_bound == pytest.approx(0.0, abs=1e-6)
    assert result.terms_per_step.tolist() == [4.0, 8.0]


# ------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("num_negatives", [0, 4])
def test_policy_without_negatives_is_a_clear_error(num_negatives):
    contrast = Contrast(queries=torch.randn(2, 1, 3), keys=torch.randn(2, 1, 3),
                        positives=torch.zeros(1, 1, dtype=torch.long),
                        steps=torch.zeros(1, dtype=torch.long), step_names=("k1",), name="x")
    config = InfoNCEConfig(negatives="same_sequence", num_negatives=num_negatives)
    with pytest.raises(ValueError, match="no negatives|without negatives"):
        info_nce(contrast, config)
    # The same problem with negatives from the batch is fine.
    assert torch.isfinite(info_nce(contrast, attrs.evolve(config, negatives="batch")).loss)


@pytest.mark.parametrize("num_negatives", [0, 4])
def test_amdim_same_sequence_leaves_no_negative(num_negatives):
    contrast = make_contrast(amdim())
    with pytest.raises(ValueError, match="no negatives|without negatives"):
        info_nce(contrast, InfoNCEConfig(negatives="same_sequence", num_negatives=num_negatives))


@pytest.mark.parametrize("num_negatives", [0, 4])
def test_same_group_without_groups_is_a_clear_error(num_negatives):
    contrast = attrs.evolve(make_contrast(generic("plain")), groups=None)
    with pytest.raises(ValueError, match="'same_group' needs group ids"):
        info_nce(contrast, InfoNCEConfig(negatives="same_group", num_negatives=num_negatives))


def test_every_positive_padded_is_an_error():
    layout = generic("plain")
    layout["positives"] = torch.full_like(layout["positives"], -1)
    with pytest.raises(ValueError, match="no valid NCE term"):
        info_nce(make_contrast(layout))


@pytest.mark.parametrize("field, value, message", [
    # Policy names are an open set (plugins add policies): a recipe's name is checked
    # against the registry when it is structured (test_negatives.py), a direct call's
    # against the built-in table (below).
    ("negatives", "", "must name a negative policy"),
    ("negatives", 3, "must name a negative policy"),
    ("num_negatives", -1, "num_negatives"),
    ("temperature", 0.0, "must be > 0"),
    ("clip", -1.0, "clip"),
    ("score_penalty", -0.1, "score_penalty"),
])
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        InfoNCEConfig(**{field: value})


def test_unknown_policy_without_a_registry_is_a_clear_error():
    contrast = make_contrast(generic("plain"))
    with pytest.raises(ValueError, match=r"unknown negative policy 'same_grup' \(did you mean 'same_group'\?\); "
                                         r"choose one of batch, same_sequence, same_group, other_sequences"):
        info_nce(contrast, InfoNCEConfig(negatives="same_grup"))


# ------------------------------------------------------------------- contrast validation

def _valid() -> dict:
    B, Q, N, L, D = 2, 3, 4, 5, 6
    return dict(queries=torch.randn(B, Q, D), keys=torch.randn(N, L, D),
                positives=torch.zeros(Q, 1, dtype=torch.long), steps=torch.zeros(Q, dtype=torch.long),
                step_names=("k1",), name="c")


@pytest.mark.parametrize("change, message", [
    (dict(queries=torch.randn(2, 6)), r"queries must be \(B, Q, D\), got shape \(2, 6\)"),
    (dict(keys=torch.randn(4, 5, 6, 1)), r"keys must be \(N, L, D\), got shape \(4, 5, 6, 1\)"),
    (dict(keys=torch.randn(4, 5, 7)), r"queries have D=6 but keys have D=7"),
    (dict(item_offset=3), r"item_offset=3 places 2 local items outside 4 key items"),
    (dict(item_offset=-1), r"item_offset=-1 places 2 local items outside 4 key items"),
    (dict(keys=torch.randn(1, 5, 6)), r"item_offset=0 places 2 local items outside 1 key items"),
    (dict(positives=torch.zeros(3, dtype=torch.long)), r"positives must be \(Q=3, P\), got shape \(3,\)"),
    (dict(positives=torch.zeros(2, 1, dtype=torch.long)), r"positives must be \(Q=3, P\), got shape \(2, 1\)"),
    (dict(positives=torch.zeros(3, 1)), r"positives must be torch.long, got torch.float32"),
    (dict(positives=torch.tensor([[0], [5], [1]])), r"positives must lie in \[-1, L=5\), got range \[0, 5\]"),
    (dict(positives=torch.tensor([[0], [-2], [1]])), r"positives must lie in \[-1, L=5\), got range \[-2, 1\]"),
    (dict(steps=torch.zeros(2, dtype=torch.long)), r"steps must be \(Q=3,\), got shape \(2,\)"),
    (dict(steps=torch.tensor([0, 1, 0])), r"steps must lie in \[0, 1\)"),
    (dict(steps=torch.tensor([0, -1, 0])), r"steps must lie in \[0, 1\)"),
    (dict(step_names=()), r"step_names must name at least one step"),
    (dict(groups=torch.zeros(2, dtype=torch.long)), r"groups must be \(N=4,\), got shape \(2,\)"),
    (dict(query_mask=torch.ones(3, 2, dtype=torch.bool)), r"query_mask must be \(B=2, Q=3\), got \(3, 2\)"),
    (dict(key_mask=torch.ones(4, 4, dtype=torch.bool)), r"key_mask must be \(N=4, L=5\), got \(4, 4\)"),
    (dict(key_mask=torch.ones(20, dtype=torch.bool)), r"key_mask must be \(N=4, L=5\), got \(20,\)"),
])
def test_malformed_contrast_is_rejected(change, message):
    with pytest.raises(ValueError, match=r"^Contrast 'c': " + message):
        Contrast(**{**_valid(), **change})


def test_valid_contrast_and_metric_names():
    contrast = Contrast(**_valid())
    assert contrast.batch_size == 2 and contrast.num_steps == 1
    assert contrast.metric_name(0) == "c/k1"
    assert attrs.evolve(contrast, name="").metric_name(0) == "k1"
    assert attrs.evolve(contrast, name="", step_names=("",)).metric_name(0) == "all"


# -------------------------------------------------------------------------- contrastive_loss

def test_contrastive_loss_sums_weighted_contrasts_and_reports_metrics():
    config = InfoNCEConfig(negatives="batch", score_penalty=0.05)
    named = attrs.evolve(make_contrast(generic("plain")), name="g", weight=0.5)
    steps = attrs.evolve(make_contrast(cpc()), weight=2.0)  # unnamed: metrics "k1".."k3"
    out = contrastive_loss([named, steps], config)
    a, b = info_nce(named, config), info_nce(steps, config)
    assert out.loss.item() == pytest.approx(0.5 * a.loss.item() + 2.0 * b.loss.item(), abs=1e-6)
    assert out.metrics["loss"] == pytest.approx(out.loss.item(), abs=1e-6)
    terms_a, terms_b = a.terms_per_step.sum().item(), b.terms_per_step.sum().item()
    acc = (a.accuracy.item() * terms_a + b.accuracy.item() * terms_b) / (terms_a + terms_b)
    assert out.metrics["acc"] == pytest.approx(acc, abs=1e-6)
    for k, name in enumerate(("k1", "k2", "k3")):
        assert out.metrics[f"acc/g/{name}"] == pytest.approx(a.accuracy_per_step[k].item())
        assert out.metrics[f"loss/g/{name}"] == pytest.approx(a.loss_per_step[k].item())
        assert out.metrics[f"acc/{name}"] == pytest.approx(b.accuracy_per_step[k].item())
        assert out.metrics[f"loss/{name}"] == pytest.approx(b.loss_per_step[k].item())
    assert out.metrics["penalty/g"] == pytest.approx(a.penalty.item())
    assert out.metrics["penalty"] == pytest.approx(b.penalty.item())
    out.loss.backward()
    assert named.queries.grad is not None and steps.keys.grad is not None


def test_contrastive_loss_applies_transform_and_rejects_nothing():
    seen = []

    def transform(contrast):
        seen.append(contrast.name)
        return attrs.evolve(contrast, weight=0.0)

    out = contrastive_loss([make_contrast(amdim())], InfoNCEConfig(negatives="other_sequences"), transform)
    assert seen == ["1t5"] and out.loss.item() == 0.0
    assert set(out.metrics) == {"loss", "acc", "acc/1t5", "loss/1t5"}
    with pytest.raises(ValueError, match="the critic returned no contrast"):
        contrastive_loss([], InfoNCEConfig())


# ------------------------------------------------------------------------------ smoke size

def autograd_nodes(tensor: torch.Tensor) -> int:
    """Nodes of the backward graph that produced ``tensor``."""
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(f for f, _ in node.next_functions)
    return len(seen)


def test_cpc_audio_size_is_one_vectorised_pass():
    """CPC audio (B=8, T=128, K=12, C=512, 128 negatives): one vectorised pass, no Python
    loop over steps, negatives or items, checked by the size of its backward graph (15
    nodes; a loop over the 12 steps alone would add dozens). Its speed is measured in
    benchmarks/ (``head_scaling.py``, ``engine_vs_loop.py``), not here: a timed test fails
    on a loaded machine."""
    g = torch.Generator().manual_seed(0)
    B, T, K, C = 8, 128, 12, 512
    t = torch.arange(T).repeat_interleave(K)
    k = torch.arange(K).repeat(T)
    positives = torch.where(t + k + 1 < T, t + k + 1, torch.full_like(t, -1))[:, None]
    queries = (torch.randn(B, T * K, C, generator=g) / C ** 0.5).requires_grad_()
    keys = torch.randn(B, T, C, generator=g).requires_grad_()
    contrast = Contrast(queries=queries, keys=keys, positives=positives, steps=k,
                        step_names=tuple(f"k{i}" for i in range(1, K + 1)), groups=torch.arange(B) // 2)
    config = InfoNCEConfig(negatives="batch", num_negatives=128)
    result = info_nce(contrast, config, generator=g)
    assert autograd_nodes(result.loss) <= 2 * K
    result.loss.backward()
    assert torch.isfinite(result.loss) and result.num_negatives == 128
    assert result.terms_per_step.tolist() == [B * (T - i) for i in range(1, K + 1)]
    assert queries.grad is not None and torch.isfinite(keys.grad).all()
