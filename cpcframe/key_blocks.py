"""Gathered scoring tiled by blocks of keys, so that the keys a kernel reads stay in cache.

The gathered form (:mod:`cpcframe.scoring`) reads, for each of ``R`` queries, the ``U``
keys its index names, anywhere in the ``(C, D)`` key table. At the CPC audio size a
batch of 8 has 1024 keys (2 MiB of float32), which a core's L2 cache holds; a batch of 64
has 8192 (16 MiB), and every gathered row then comes from L3 or memory: on a 2-core Intel
Xeon (2 MiB L2 per core) the forward product costs 2.5x and the queries' gradient 3.3x
more per window at batch 64 than at batch 8.

So when the table is larger than :data:`KEY_BLOCK_BYTES`, the ``R·U`` ``(query,
candidate)`` entries are partitioned by the block of keys their candidate falls in
(a stable sort of the block numbers: within a block the entries keep the order of their
queries) and each block is one sparse product whose keys stay in cache:

* forward: ``scores[r, u] = queries[r]·keys[index[r, u]]``, one sampled dense-dense
  product (``torch.sparse.sampled_addmm``) per block;
* the queries' gradient ``Σ_u grad[r, u]·keys[index[r, u]]``: one CSR-times-dense
  product per block (``grad_q += G_block @ keys_block``), accumulated in place.

The queries are then read once per block, in order (streamed, which costs less than
gathering the keys from memory); the sort is paid once per step and shared by both
passes. The keys' gradient is already summed block by block of queries
(:func:`cpcframe.scoring._keys_gradient`). Sums over each query's entries run in another
order than the plain kernels', so results agree to rounding.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import attrs
import torch
from torch import Tensor


def l2_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache"), default: int = 1 << 20) -> int:
    """The first CPU's level-2 cache (Linux sysfs), else ``default``."""
    try:
        for entry in sorted(root.glob("index*")):
            if (entry / "level").read_text().strip() == "2" and \
                    (entry / "type").read_text().strip() in ("Unified", "Data"):
                size = (entry / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
                return int(size.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return default


#: A core's L2 cache, at least 1 MiB (2 MiB on the Xeon measured).
CACHE_BYTES = max(1 << 20, l2_cache_bytes())
#: Keys per block: as many rows as fill the L2 cache, and at least 2 MiB (on the Xeon,
#: 2 MiB L2: 1024 keys of 512 float32 features, 0.5x and 2x that were slower; on a 2-core
#: AVX2 EPYC with 512 KiB of L2 per core and a fast 32 MiB L3, 2 MiB blocks beat 1 MiB ones
#: too, per window: 33.7 against 38.4 ms at batch 8, 44.8 against 46.1 at 64, 41.7 against
#: 43.6 for a rank with the keys of 64 items; 4 MiB was no better. Interleaved, 2 threads).
KEY_BLOCK_BYTES = max(2 << 20, CACHE_BYTES)


def keys_per_block(dim: int, element_size: int) -> int:
    """The largest power of two of keys that fits :data:`KEY_BLOCK_BYTES` (a power of
    two, so that an entry's block and place in it are a shift and a mask)."""
    rows = max(1, KEY_BLOCK_BYTES // (dim * element_size))
    return 1 << (rows.bit_length() - 1)


@attrs.frozen(eq=False)
class KeyBlocks:
    """The ``(R, U)`` index's entries grouped by block of keys.

    Attributes:
        order: ``(R·U,)`` flat entry of each sorted position (block-major, then query).
        starts: ``(blocks + 1,)`` python ints, where each block's entries begin in ``order``.
        crows: ``(blocks, R + 1)`` CSR row pointers of each block's entries.
        columns: ``(R·U,)`` each sorted entry's candidate, relative to its block's first key.
        block: keys per block (a power of two).
        shape: ``(R, C)``.
    """

    order: Tensor
    starts: list[int]
    crows: Tensor
    columns: Tensor
    block: int
    shape: tuple[int, int]

    @property
    def count(self) -> int:
        return len(self.starts) - 1

    def keys(self, keys: Tensor, b: int) -> Tensor:
        """``(block, D)`` keys of block ``b`` (the last one may be shorter)."""
        return keys[b * self.block:(b + 1) * self.block]

    def matrix(self, b: int, values: Tensor, columns: int) -> Tensor:
        """The ``(R, columns)`` CSR matrix of block ``b``'s entries holding ``values``."""
        lo, hi = self.starts[b], self.starts[b + 1]
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crows[b], self.columns[lo:hi], values, (self.shape[0], columns),
                                           check_invariants=False)  # valid by construction


def plan(index: Tensor, num_keys: int, block: int) -> KeyBlocks:
    """Group the entries of ``index`` ``(R, U)`` (candidates in ``[0, num_keys)``) by
    block of ``block`` keys (a power of two)."""
    if block & (block - 1):
        raise ValueError(f"keys per block must be a power of two, got {block}")
    R, U = index.shape
    blocks = -(-num_keys // block)
    small = torch.int32 if max(num_keys, R * U, R * blocks) < 2**31 else torch.long
    flat = index.reshape(-1).to(small)
    which = flat >> (block.bit_length() - 1)  # each entry's block
    # A stable sort keeps each block's entries in query order (CSR); uint8 keys sort fastest.
    order = torch.argsort(which.to(torch.uint8) if blocks <= 256 else which, stable=True)
    columns = (flat & (block - 1))[order]
    # Entries per (query, block), then per block the running count over queries.
    per_query = torch.bincount((which.view(R, U) + torch.arange(0, R * blocks, blocks, dtype=small)[:, None]).view(-1),
                               minlength=R * blocks).view(R, blocks)
    crows = torch.zeros(blocks, R + 1, dtype=small)
    crows[:, 1:] = per_query.t().cumsum(1)
    starts = [0] + crows[:, -1].cumsum(0).tolist()
    return KeyBlocks(order, starts, crows, columns, block, (R, num_keys))


def blocked_scores(queries: Tensor, keys: Tensor, blocks: KeyBlocks) -> Tensor:
    """``(R·U,)`` ``queries[r]·keys[index[r, u]]`` in flat index order."""
    out = queries.new_empty(blocks.order.shape[0])
    for b in range(blocks.count):
        block_keys = blocks.keys(keys, b)
        lo, hi = blocks.starts[b], blocks.starts[b + 1]
        # Zeros, not empty: sampled_addmm's beta = 0 does not mask NaN in the pattern's values.
        pattern = blocks.matrix(b, queries.new_zeros(hi - lo), block_keys.shape[0])
        # (r: query, d: feature) x (d, c: candidate of the block), at the block's pairs only
        out[blocks.order[lo:hi]] = torch.sparse.sampled_addmm(pattern, queries, block_keys.t(), beta=0.0).values()
    return out


def blocked_queries_gradient(keys: Tensor, grad: Tensor, blocks: KeyBlocks) -> Tensor:
    """``(R, D)``: ``Σ_u grad[r, u]·keys[index[r, u]]`` (``grad`` ``(R, U)``)."""
    weights = grad.reshape(-1)[blocks.order]
    out = keys.new_empty(blocks.shape[0], keys.shape[1])
    for b in range(blocks.count):
        block_keys = blocks.keys(keys, b)
        lo, hi = blocks.starts[b], blocks.starts[b + 1]
        matrix = blocks.matrix(b, weights[lo:hi], block_keys.shape[0])
        # (r: query, c: candidate of the block) x (c, d: feature), summed into (r, d)
        out.addmm_(matrix, block_keys, beta=0.0 if b == 0 else 1.0)  # beta 0: out's contents ignored
    return out
