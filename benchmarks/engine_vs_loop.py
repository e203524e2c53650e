"""The InfoNCE engine against a CPC_audio-style "loop over k" loss, at the CPC audio size.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/engine_vs_loop.py               # CPU, 2 threads
    .venv/bin/python benchmarks/engine_vs_loop.py --device cuda  # on a GPU
    .venv/bin/python benchmarks/engine_vs_loop.py --help

Size (van den Oord et al. 2018, CPC audio): batch 8, windows of 20480 samples -> T = 128
latents of C = 512 (encoder), context H = 256 (GRU), K = 12 steps, 128 negatives.
Only the loss head is timed (the ``W_k`` predictions and the loss, forward and
backward): the encoder and GRU are the same for both variants.

The loop reference is written the way the public CPC_audio code does it
(``CPCUnsupersivedCriterion.sampleClean`` + ``PredictionNetwork`` + cross-entropy):
negatives are drawn once per window position ``(b, t)`` anywhere in the batch and shared
by all ``k``; only the first ``W = T - K`` positions are queries; then, for each ``k``,
positive and negatives are concatenated into ``(B, 1+N, W, C)``, multiplied by ``W_k c_t``
and reduced over ``C`` (a sum, i.e. a dot product, where CPC_audio takes a mean), and
scored with cross-entropy. Both variants get the SAME negative indices (the engine through
``info_nce(..., negatives=...)``), so their losses and gradients are equal; the script
asserts that before timing. The engine takes them as CPC_audio draws them, one row per
position shared by its ``K`` queries (``[loss] share_negatives = true``, scored by small
GEMMs per position: ``cpcframe/shared_scores.py``); ``engine/per-query`` gets each query
its own copy of its position's row (the engine's form for negatives drawn per query), and
``engine+sampler`` draws its own shared negatives, as in training.

Peak memory: see ``benchmarks/README.md`` (CUDA: ``torch.cuda.max_memory_allocated``;
CPU: the peak of live bytes reported by PyTorch's CPU allocator to the profiler).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from cpcframe.contrast import Contrast
from cpcframe.infonce import InfoNCEConfig, info_nce
from measure import like_a_run, peak_memory, sync


def cpc_audio_negatives(B: int, T: int, W: int, N: int, device: torch.device,
                        generator: torch.Generator) -> Tensor:
    """``(B, N, W)`` flat indices into ``z.view(B·T, C)``, drawn as CPC_audio's ``sampleClean``:
    any item of the batch, any location but the window position ``t`` itself."""
    batch_idx = torch.randint(0, B, (N * W * B,), generator=generator)
    seq_idx = torch.randint(1, T, (N * W * B,), generator=generator)
    base = torch.arange(W).view(1, 1, W).expand(B, N, W).reshape(-1)
    seq_idx = torch.remainder(seq_idx + base, T)
    return (seq_idx + batch_idx * T).view(B, N, W).to(device)


def loop_loss(c: Tensor, z: Tensor, w: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """CPC_audio's loss: a Python loop over the K steps.

    Args: context ``c (B, T, H)``, latents ``z (B, T, C)``, predictors ``w (K, C, H)``,
    negatives ``neg (B, N, W)``. Returns the mean loss over steps, ``(K,)`` losses and
    ``(K,)`` accuracies.
    """
    B, T, C = z.shape
    K = w.shape[0]
    W = T - K
    N = neg.shape[1]
    neg_ext = z.reshape(B * T, C)[neg.reshape(-1)].view(B, N, W, C)
    labels = torch.zeros(B * W, dtype=torch.long, device=z.device)
    losses, accs = [], []
    for k in range(1, K + 1):
        pos = z[:, k:k + W].view(B, 1, W, C)
        full = torch.cat([pos, neg_ext], dim=1)  # (B, 1+N, W, C)
        pred = (c[:, :W] @ w[k - 1].T).view(B, 1, W, C)  # W_k c_t
        out = (pred * full).sum(dim=3)  # (B, 1+N, W)
        logits = out.permute(0, 2, 1).reshape(-1, N + 1)
        losses.append(F.cross_entropy(logits, labels))
        # CPC_audio uses argmax == 0, which counts a tie as correct; ties happen because its
        # sampler may draw the positive itself as a negative. The engine's accuracy is strict
        # (positive > every negative), so this reference is strict too.
        accs.append((logits[:, 0] > logits[:, 1:].amax(1)).float().mean().detach())
    losses_t = torch.stack(losses)
    return losses_t.mean(), losses_t.detach(), torch.stack(accs)


def engine_inputs(B: int, T: int, K: int, neg: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The CPC_audio layout as a Contrast: query ``q = t·K + (k-1)``, positive ``t + k``
    for ``t < W`` (other queries padded), negatives of ``(b, t)`` shared by every ``k``:
    ``(positives, steps, per-position (B, T, N), per-query (B, T·K, N))``."""
    W = T - K
    N = neg.shape[1]
    device = neg.device
    t = torch.arange(T, device=device).repeat_interleave(K)  # (T·K,)
    k = torch.arange(K, device=device).repeat(T)  # (T·K,)
    positives = torch.where(t < W, t + k + 1, torch.full_like(t, -1))[:, None]  # (Q, 1)
    per_t = torch.zeros(B, T, N, dtype=torch.long, device=device)
    per_t[:, :W] = neg.permute(0, 2, 1)  # (B, W, N); padded queries get index 0 (unused)
    negatives = per_t.repeat_interleave(K, dim=1)  # (B, T·K, N)
    return positives, k, per_t, negatives


#: Given negatives, one row per position shared by its K queries (CPC_audio's scheme).
SHARED = InfoNCEConfig(num_negatives=1, share_negatives=True)  # num_negatives: unused when given


def engine_loss(c: Tensor, z: Tensor, w: Tensor, positives: Tensor, steps: Tensor,
                negatives: Tensor | None, config: InfoNCEConfig = SHARED):
    B, T, C = z.shape
    K = w.shape[0]
    queries = torch.einsum("bth,kch->btkc", c, w).reshape(B, T * K, C)  # W_k c_t for all t, k
    contrast = Contrast(queries=queries, keys=z, positives=positives, steps=steps,
                        step_names=tuple(f"k{i}" for i in range(1, K + 1)), query_group=K)
    return info_nce(contrast, config, negatives=negatives)


def make_leaves(B, T, C, H, K, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(B, T, C, generator=g) / C ** 0.25).to(device).requires_grad_()
    c = torch.randn(B, T, H, generator=g).to(device).requires_grad_()
    w = (torch.randn(K, C, H, generator=g) / (H ** 0.5 * C ** 0.25)).to(device).requires_grad_()
    return z, c, w


def check_equal(args, device) -> tuple[float, float, float]:
    """Loss, per-step loss and accuracy, and gradients of the two variants agree."""
    B, T, C, H, K, N = args.batch, args.length, args.latent, args.hidden, args.steps, args.negatives
    neg = cpc_audio_negatives(B, T, T - K, N, device, torch.Generator().manual_seed(1))
    positives, steps, per_position, per_query = engine_inputs(B, T, K, neg)
    leaves_a = make_leaves(B, T, C, H, K, device)
    ref_loss, ref_steps, ref_acc = loop_loss(leaves_a[1], leaves_a[0], leaves_a[2], neg)
    ref_loss.backward()
    agreed = []  # (loss, |diff|) of the engine given each form of the loop's negatives
    for negatives, config in ((per_position, SHARED), (per_query, InfoNCEConfig())):
        leaves_b = make_leaves(B, T, C, H, K, device)
        res = engine_loss(leaves_b[1], leaves_b[0], leaves_b[2], positives, steps, negatives, config)
        res.loss.backward()
        diff = abs(ref_loss.item() - res.loss.item())
        assert diff < 1e-4, f"losses differ: loop {float(ref_loss)} engine {float(res.loss)}"
        assert torch.allclose(ref_steps, res.loss_per_step, atol=1e-4), (ref_steps, res.loss_per_step)
        assert torch.allclose(ref_acc, res.accuracy_per_step, atol=1e-6), (ref_acc, res.accuracy_per_step)
        for a, b, name in zip(leaves_a, leaves_b, ("z", "c", "W")):
            scale = a.grad.abs().max()
            err = (a.grad - b.grad).abs().max() / scale
            assert err < 1e-4, f"gradient of {name} differs (relative {err:.2e})"
        agreed.append((res.loss.item(), diff))
    (shared_loss, shared_diff), _ = agreed
    return ref_loss.item(), shared_loss, shared_diff


def runner(variant: str, args, device):
    B, T, C, H, K, N = args.batch, args.length, args.latent, args.hidden, args.steps, args.negatives
    neg = cpc_audio_negatives(B, T, T - K, N, device, torch.Generator().manual_seed(1))
    positives, steps, per_position, per_query = engine_inputs(B, T, K, neg)
    z, c, w = make_leaves(B, T, C, H, K, device)
    sampled = InfoNCEConfig(negatives="batch", num_negatives=N, share_negatives=True)

    def clear():
        for t in (z, c, w):
            t.grad = None

    def step():
        if variant == "loop":
            loss = loop_loss(c, z, w, neg)[0]
        elif variant == "engine":
            loss = engine_loss(c, z, w, positives, steps, per_position).loss
        elif variant == "engine/per-query":
            loss = engine_loss(c, z, w, positives, steps, per_query, InfoNCEConfig()).loss
        else:  # the engine drawing its own shared negatives (policy "batch"), as in training
            loss = engine_loss(c, z, w, positives, steps, None, sampled).loss
        loss.backward()

    return step, clear


def time_variant(variant, args, device) -> list[float]:
    step, clear = runner(variant, args, device)
    for _ in range(args.warmup):
        clear()
        step()
    times = []
    for _ in range(args.repeats):
        clear()
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def peak_memory_of(variant, args, device) -> int:
    """Peak bytes of live tensors allocated during one forward+backward, above what was
    live before it (inputs, parameters)."""
    step, clear = runner(variant, args, device)
    step()  # warm-up: lazy initialisations are not counted
    clear()
    return peak_memory(step, device)


def rss_peak(variant: str, args) -> int:
    """Cross-check of :func:`peak_memory` by another method: the growth of the peak resident
    set size (``VmHWM``) of a fresh process over one forward+backward of ``variant``,
    after its inputs are built. It includes allocator slack and library buffers (see the
    README), so it is an upper bound of the tensor peak, not the same figure."""
    import subprocess

    cmd = [sys.executable, __file__, "--rss-child", variant, "--device", str(args.device),
           "--threads", str(args.threads), "--batch", str(args.batch), "--length", str(args.length),
           "--latent", str(args.latent), "--hidden", str(args.hidden), "--steps", str(args.steps),
           "--negatives", str(args.negatives)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1])


def _peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux ``VmHWM``; unlike
    ``getrusage``'s ``ru_maxrss``, it is not inherited from the parent across fork + exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_child(variant: str, args, device) -> None:
    step, clear = runner(variant, args, device)
    before = _peak_rss()
    step()
    print(_peak_rss() - before)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128, help="T latents (20480 samples / 160)")
    p.add_argument("--latent", type=int, default=512, help="C, encoder channels")
    p.add_argument("--hidden", type=int, default=256, help="H, GRU units")
    p.add_argument("--steps", type=int, default=12, help="K")
    p.add_argument("--negatives", type=int, default=128)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-rss", action="store_true", help="skip the RSS cross-check of peak memory")
    p.add_argument("--rss-child", default="", help=argparse.SUPPRESS)
    return p


VARIANTS = ("loop", "engine", "engine/per-query", "engine+sampler")


def measure(args, echo=print) -> dict:
    """Check equality, time and measure every variant; print as it goes; return the figures."""
    torch.set_num_threads(args.threads)
    like_a_run()
    device = torch.device(args.device)
    ref, eng, diff = check_equal(args, device)
    echo(f"size: B={args.batch} T={args.length} C={args.latent} H={args.hidden} K={args.steps} "
         f"N={args.negatives} on {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    if device.type == "cpu":
        # Timings on a shared machine depend on its load: print it with the figures.
        echo("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    echo(f"loss: loop {ref:.6f}  engine {eng:.6f}  |diff| {diff:.2e}  (gradients equal too)")
    rows = {}
    for variant in VARIANTS:
        times = time_variant(variant, args, device)
        rss = rss_peak(variant, args) if device.type == "cpu" and not args.no_rss else None
        rows[variant] = (statistics.median(times), min(times), max(times), peak_memory_of(variant, args, device), rss)
    echo(f"\n{'variant':<17} {'median s':>9} {'min s':>8} {'max s':>8} {'peak MiB':>9} {'RSS+ MiB':>9}")
    for variant, (med, lo, hi, peak, rss) in rows.items():
        rss_text = f"{rss / 2**20:9.1f}" if rss is not None else f"{'-':>9}"
        echo(f"{variant:<17} {med:9.4f} {lo:8.4f} {hi:8.4f} {peak / 2**20:9.1f} {rss_text}")
    speed = rows["loop"][0] / rows["engine"][0]
    mem = rows["loop"][3] / max(rows["engine"][3], 1)
    echo(f"\nengine is {speed:.1f}x faster (median forward+backward) and uses {mem:.1f}x less peak memory")
    per_query_speed = rows["loop"][0] / rows["engine/per-query"][0]
    echo(f"(engine/per-query, the same negatives listed per query: {per_query_speed:.1f}x)")
    echo("(peak MiB: live tensor bytes from the profiler; RSS+ MiB: growth of the process's peak "
         "resident memory in a fresh process, a cross-check)")
    echo("(engine+sampler: the engine drawing its own 128 negatives per position; timing only, "
         "its negatives differ from the loop's)")
    return {"loss_loop": ref, "loss_engine": eng, "loss_diff": diff, "speedup": speed, "memory_ratio": mem,
            "per_query_speedup": per_query_speed, "rows": rows}


def main() -> None:
    args = parser().parse_args()
    if args.rss_child:
        torch.set_num_threads(args.threads)
        _rss_child(args.rss_child, args, torch.device(args.device))
        return
    measure(args)


if __name__ == "__main__":
    main()
