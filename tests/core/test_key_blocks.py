"""Gathered scoring tiled by blocks of keys (cpcframe.key_blocks) against plain sums."""

from __future__ import annotations

import pytest
import torch

from cpcframe import key_blocks


def problem(R=37, U=9, C=100, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    queries = torch.randn(R, D, generator=g, dtype=torch.float64)
    keys = torch.randn(C, D, generator=g, dtype=torch.float64)
    index = torch.randint(0, C, (R, U), generator=g)
    index[:, 1] = index[:, 0]  # a candidate listed twice by every query
    index[5] = C - 1  # a query whose entries all sit in the short last block
    return queries, keys, index, torch.randn(R, U, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("block", [1, 8, 32, 128])
def test_plan_groups_every_entry_by_block_in_query_order(block):
    _, _, index, _ = problem()
    R, U = index.shape
    plan = key_blocks.plan(index, 100, block)
    assert plan.count == -(-100 // block) and plan.starts[-1] == R * U
    assert sorted(plan.order.tolist()) == list(range(R * U))  # a permutation
    flat = index.reshape(-1)
    for b in range(plan.count):
        lo, hi = plan.starts[b], plan.starts[b + 1]
        entries = plan.order[lo:hi]
        assert torch.equal(flat[entries] // block, torch.full_like(entries, b))
        assert torch.equal(plan.columns[lo:hi].long(), flat[entries] - b * block)
        rows = entries // U
        assert bool((rows[1:] >= rows[:-1]).all())  # CSR: each block's entries in query order
        assert torch.equal(plan.crows[b].long().diff(), torch.bincount(rows, minlength=R))


def test_plan_wants_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        key_blocks.plan(torch.zeros(2, 3, dtype=torch.long), 10, 3)


@pytest.mark.parametrize("block", [4, 32, 64])
def test_blocked_scores_and_queries_gradient_equal_plain_sums(block):
    queries, keys, index, grad = problem()
    plan = key_blocks.plan(index, keys.shape[0], block)
    expected_scores = (queries[:, None, :] * keys[index]).sum(-1)  # (R, U)
    torch.testing.assert_close(key_blocks.blocked_scores(queries, keys, plan).view_as(index).to(queries.dtype),
                               expected_scores, atol=1e-12, rtol=0)
    expected_grad = (grad[:, :, None] * keys[index]).sum(1)  # (R, D)
    torch.testing.assert_close(key_blocks.blocked_queries_gradient(keys, grad, plan), expected_grad,
                               atol=1e-12, rtol=0)


def test_blocked_results_ignore_what_fresh_memory_held(monkeypatch):
    """Garbage (NaN) in uninitialised memory stays out of the scores and the gradient: the
    first block overwrites the gradient (beta = 0), the scores' patterns hold zeros. (With
    freed memory kept, cpcframe.allocator, fresh tensors do hold old values.)"""
    queries, keys, index, grad = problem()
    plan = key_blocks.plan(index, keys.shape[0], 16)
    real_empty = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, "new_empty", lambda self, *size, **kw: real_empty(self, *size, **kw).fill_(float("nan")))
    assert torch.isfinite(key_blocks.blocked_queries_gradient(keys, grad, plan)).all()
    assert torch.isfinite(key_blocks.blocked_scores(queries, keys, plan)).all()


def test_keys_per_block_fills_the_cache_with_a_power_of_two(monkeypatch):
    monkeypatch.setattr(key_blocks, "KEY_BLOCK_BYTES", 2 << 20)
    assert key_blocks.keys_per_block(512, 4) == 1024
    assert key_blocks.keys_per_block(384, 4) == 1024  # 1365 rows fit: the power of two below
    assert key_blocks.keys_per_block(1 << 22, 4) == 1


def test_l2_cache_size_read_from_sysfs(tmp_path):
    for name, level, kind, size in (("index0", 1, "Data", "48K"), ("index1", 1, "Instruction", "64K"),
                                    ("index2", 2, "Unified", "2048K"), ("index3", 3, "Unified", "480M")):
        entry = tmp_path / name
        entry.mkdir()
        (entry / "level").write_text(f"{level}\n")
        (entry / "type").write_text(f"{kind}\n")
        (entry / "size").write_text(f"{size}\n")
    assert key_blocks.l2_cache_bytes(root=tmp_path) == 2 << 20
    assert key_blocks.l2_cache_bytes(root=tmp_path / "absent", default=12345) == 12345
