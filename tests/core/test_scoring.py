"""The two scoring forms of sampled negatives (``cpcframe/scoring.py``): the dense product
and the gathered one (block by block of queries for the keys' gradient, and of keys on the
CPU, ``cpcframe/key_blocks.py``) give the same losses and gradients to 1e-12 in float64;
``auto`` follows the cost model."""

from __future__ import annotations

import attrs
import pytest
import torch

from cpcframe import scoring
from cpcframe.contrast import Contrast
from cpcframe.infonce import InfoNCEConfig, info_nce
from reference_infonce import distinct_positives


# ----------------------------------------------------------- the two forms agree

def larger(dtype=torch.float64, seed=0) -> Contrast:
    """B=4 local items among N=8 key items (offset 2), L=16 locations, D=32, Q=24 queries
    with P=2 positives, masks: large enough that 40 sampled negatives repeat."""
    g = torch.Generator().manual_seed(seed)
    B, N, L, D, Q, P, K = 4, 8, 16, 32, 24, 2, 4
    keys = torch.randn(N, L, D, generator=g, dtype=dtype)
    positives = distinct_positives(Q, P, L, g)
    positives[3, 1] = -1
    queries = 0.3 * torch.randn(B, Q, D, generator=g, dtype=dtype) + keys[2:6, :1].expand(B, Q, D)
    query_mask = torch.rand(B, Q, generator=g) > 0.1
    key_mask = torch.rand(N, L, generator=g) > 0.1
    return Contrast(queries=queries.requires_grad_(), keys=keys.requires_grad_(), positives=positives,
                    steps=torch.arange(Q) % K, step_names=tuple(f"k{i}" for i in range(K)),
                    groups=torch.arange(N) % 3, query_mask=query_mask, key_mask=key_mask, item_offset=2)


def scored_both_ways(make, config, **kwargs):
    """``{scoring: (result, queries.grad, keys.grad)}`` with the same draws."""
    out = {}
    for how in ("dense", "gathered"):
        contrast = make()
        result = info_nce(contrast, attrs.evolve(config, scoring=how),
                          generator=torch.Generator().manual_seed(9), **kwargs)
        result.loss.backward()
        out[how] = (result, contrast.queries.grad, contrast.keys.grad)
    return out


@pytest.mark.parametrize("mixture", [0.0, 0.5])
@pytest.mark.parametrize("policy", ["batch", "same_group"])
def test_dense_and_gathered_scoring_agree(policy, mixture):
    config = InfoNCEConfig(negatives=policy, num_negatives=40, temperature=0.7, clip=3.0, score_penalty=0.05)
    both = scored_both_ways(lambda: attrs.evolve(larger(), mixture=mixture), config)
    (dense, *dense_grads), (gathered, *gathered_grads) = both["dense"], both["gathered"]
    assert abs(dense.loss.item() - gathered.loss.item()) < 1e-12
    assert abs(dense.penalty.item() - gathered.penalty.item()) < 1e-12
    torch.testing.assert_close(gathered.loss_per_step, dense.loss_per_step, atol=1e-12, rtol=0)
    assert torch.equal(gathered.accuracy_per_step, dense.accuracy_per_step)
    for a, b in zip(gathered_grads, dense_grads):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_gathered_scoring_with_repeated_given_negatives_and_frozen_keys():
    contrast = larger()
    B, Q, _ = contrast.queries.shape
    negatives = torch.randint(0, 8 * 16, (B, Q, 6), generator=torch.Generator().manual_seed(1))
    negatives[:, :, 1] = negatives[:, :, 0]  # every query lists a negative twice
    config = InfoNCEConfig(clip=2.0, score_penalty=0.1)
    both = scored_both_ways(larger, config, negatives=negatives)
    assert abs(both["dense"][0].loss.item() - both["gathered"][0].loss.item()) < 1e-12
    torch.testing.assert_close(both["gathered"][2], both["dense"][2], atol=1e-12, rtol=0)
    frozen = attrs.evolve(larger(), keys=larger().keys.detach())  # no gradient asked for the keys
    loss = info_nce(frozen, attrs.evolve(config, scoring="gathered"), negatives=negatives).loss
    loss.backward()
    torch.testing.assert_close(frozen.queries.grad, both["dense"][1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("block_bytes", [32 * 8, 7 * 32 * 8])
def test_gathered_keys_gradient_summed_block_by_block(monkeypatch, block_bytes):
    """The keys' gradient is summed over blocks of queries (1 and 7 rows here, the last one
    short): the same gradients as the dense product, repeated negatives included."""
    import cpcframe.scoring

    monkeypatch.setattr(cpcframe.scoring, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(cpcframe.scoring, "MIN_ENTRIES_PER_KEY", 0)  # blocks of exactly 1 and 7 rows
    contrast = larger()
    B, Q, _ = contrast.queries.shape
    negatives = torch.randint(0, 8 * 16, (B, Q, 6), generator=torch.Generator().manual_seed(2))
    negatives[:, :, 1] = negatives[:, :, 0]
    both = scored_both_ways(larger, InfoNCEConfig(clip=2.0), negatives=negatives)
    for a, b in zip(both["gathered"][1:], both["dense"][1:]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("min_entries, blocks", [(0, 96), (16, 24)])
def test_keys_gradient_blocks_grow_with_the_candidates(monkeypatch, min_entries, blocks):
    """Blocks of 1 query row grow to 4 (the cap, 4x the base) when each must hold 16
    entries per candidate (128 candidates, 8 entries per row): 24 products into the keys'
    gradient instead of 96 for the 96 queries, and the dense product's gradients either way."""
    import cpcframe.scoring

    monkeypatch.setattr(cpcframe.scoring, "BLOCK_BYTES", 32 * 8)
    monkeypatch.setattr(cpcframe.scoring, "MIN_ENTRIES_PER_KEY", min_entries)
    sizes = []
    real = torch.sparse_csr_tensor
    monkeypatch.setattr(torch, "sparse_csr_tensor", lambda *a, **k: sizes.append(a[3]) or real(*a, **k))
    contrast = larger()
    B, Q, _ = contrast.queries.shape
    negatives = torch.randint(0, 8 * 16, (B, Q, 6), generator=torch.Generator().manual_seed(2))
    both = scored_both_ways(larger, InfoNCEConfig(clip=2.0), negatives=negatives)
    # The forward pass's pattern is (B·Q, C); each block of the keys' gradient is (C, rows).
    (queries, C), *blocks_made = sizes
    assert queries == B * Q
    block_rows = [rows for keys, rows in blocks_made if keys == C]
    assert len(block_rows) == blocks and sum(block_rows) == B * Q, sizes
    for a, b in zip(both["gathered"][1:], both["dense"][1:]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("num_keys", [100, 2**15, 2**15 + 1, 40000])
def test_keys_gradient_equals_a_plain_scatter(num_keys, monkeypatch):
    """Each candidate's weighted query rows, summed: against ``index_add_`` in float64 for
    sort keys of int16 (candidates up to 2**15) and of int32, with blocks of 5 queries
    (repeated candidates within a query included)."""
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 5 * 8 * 8)
    g = torch.Generator().manual_seed(3)
    R, U, D = 23, 9, 8
    queries = torch.randn(R, D, dtype=torch.float64, generator=g)
    index = torch.randint(0, num_keys, (R, U), generator=g)
    index[:, 1] = index[:, 0]
    index[0, 2] = num_keys - 1
    grad = torch.randn(R, U, dtype=torch.float64, generator=g)
    expected = torch.zeros(num_keys, D, dtype=torch.float64)
    expected.index_add_(0, index.reshape(-1), (grad[:, :, None] * queries[:, None, :]).reshape(-1, D))
    got = scoring._keys_gradient(queries, num_keys, index, grad)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_gathered_scoring_under_bf16_autocast_scores_in_float32():
    config = InfoNCEConfig(negatives="batch", num_negatives=40, clip=3.0)
    exact = scored_both_ways(lambda: larger(torch.float32), config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = scored_both_ways(lambda: larger(torch.float32), config)
    # Dense under autocast multiplies in bf16; gathered multiplies in float32.
    assert mixed["gathered"][0].loss.item() == pytest.approx(exact["dense"][0].loss.item(), rel=1e-6)
    assert mixed["dense"][0].loss.item() == pytest.approx(exact["dense"][0].loss.item(), rel=2e-2)
    assert mixed["gathered"][1].dtype == torch.float32 and torch.isfinite(mixed["gathered"][2]).all()


CPU, CUDA = torch.device("cpu"), torch.device("cuda")
CPC_AUDIO = dict(queries=8 * 128 * 12, used=129, dim=512)  # B=8, T=128, K=12, P + M = 1 + 128, z 512-d


@pytest.mark.parametrize("candidates, device, expected", [
    (2 * 128, CPU, "dense"),          # a key batch of 2: C = 2·U, the GEMM is cheaper
    (8 * 128, CPU, "gathered"),       # the local batch of 8: C = 8·U (measured 1.7x faster gathered)
    (16 * 128, CPU, "gathered"),      # C = 16·U
    (64 * 128, CPU, "gathered"),      # 8 processes of 8 gathering negatives: C = 64·U
    (64 * 128, CUDA, "dense"),        # tensor cores: the crossover is about 65·U
    (256 * 128, CUDA, "gathered"),
    (64 * 128, torch.device("meta"), "dense"),  # no cost figures for the device: dense
])
def test_auto_scoring_follows_the_cost_model(candidates, device, expected):
    assert scoring.choose("auto", candidates=candidates, device=device, **CPC_AUDIO) == expected
    for forced in ("dense", "gathered"):
        assert scoring.choose(forced, candidates=candidates, device=device, **CPC_AUDIO) == forced


def test_auto_scoring_crosses_over_once_and_keeps_small_problems_dense():
    picks = [scoring.prefers_gathered(candidates=c, device=CPU, **CPC_AUDIO) for c in range(130, 20000, 129)]
    assert picks == sorted(picks) and picks[0] is False and picks[-1] is True
    # Few dense scores: fixed costs dominate, dense is kept whatever the ratio.
    assert not scoring.prefers_gathered(queries=8, candidates=4096, used=2, dim=256, device=CPU)
    assert not scoring.prefers_gathered(queries=10**6, candidates=100, used=100, dim=256, device=CPU)


def test_auto_scoring_takes_the_gathered_path_when_it_is_cheaper(monkeypatch):
    """B·Q·C = 4·64·2048 scores, U = 17 of C = 2048 candidates: ``auto`` gathers, and the
    result is the dense one."""
    calls = []
    real = scoring.gathered_scores
    monkeypatch.setattr(scoring, "gathered_scores", lambda *a: calls.append(a[2].shape) or real(*a))
    g = torch.Generator().manual_seed(0)

    def make():
        return Contrast(queries=torch.randn(4, 64, 16, generator=g).requires_grad_(),
                        keys=torch.randn(4, 512, 16, generator=g).requires_grad_(),
                        positives=torch.randint(0, 512, (64, 1), generator=g),
                        steps=torch.zeros(64, dtype=torch.long), step_names=("k1",))

    config = InfoNCEConfig(num_negatives=16)
    state = g.get_state()
    auto = info_nce(make(), config, generator=torch.Generator().manual_seed(3))
    assert calls == [(4, 64, 17)]
    g.set_state(state)
    dense = info_nce(make(), attrs.evolve(config, scoring="dense"), generator=torch.Generator().manual_seed(3))
    assert auto.loss.item() == pytest.approx(dense.loss.item(), abs=1e-5)


@pytest.mark.parametrize("keys_per_block", [16, 64])
@pytest.mark.parametrize("policy", ["batch", "same_group"])
def test_gathered_scoring_tiled_by_key_blocks_agrees_with_dense(monkeypatch, keys_per_block, policy):
    """A key table larger than a block (128 candidates in blocks of 16 or 64 here) is
    scored block by block (cpcframe.key_blocks): the dense product's losses and gradients."""
    from cpcframe import key_blocks

    monkeypatch.setattr(key_blocks, "KEY_BLOCK_BYTES", keys_per_block * 32 * 8)
    plans = []
    real_plan = key_blocks.plan
    monkeypatch.setattr(key_blocks, "plan", lambda *a: plans.append(a[2]) or real_plan(*a))
    config = InfoNCEConfig(negatives=policy, num_negatives=40, temperature=0.7, clip=3.0, score_penalty=0.05)
    both = scored_both_ways(larger, config)
    assert plans == [keys_per_block]  # the gathered form went through the blocks
    (dense, *dense_grads), (gathered, *gathered_grads) = both["dense"], both["gathered"]
    assert abs(dense.loss.item() - gathered.loss.item()) < 1e-12
    for a, b in zip(gathered_grads, dense_grads):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
