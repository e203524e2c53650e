"""Sentences per second of a sentence-CPC training step at the paper's model size.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/text_sentences.py                 # CPU, 2 threads
    .venv/bin/python benchmarks/text_sentences.py --device cuda    # on a GPU
    .venv/bin/python benchmarks/text_sentences.py --help

Size (van den Oord et al. 2018, section 3.3): sentence encoder = 620-dim word embeddings
(20k vocabulary, as skip-thought) -> 1-D convolution (kernel 3) -> ReLU -> mean-pool to
2400 dims; a GRU of 2400 units over sentences; ``cpc_steps`` with K = 3; negatives are
every other sentence of the batch (``batch`` policy, all candidates). Windows of
``--window`` sentences, ``--batch`` windows a step, sentence lengths drawn uniformly in
``[--min-tokens, --max-tokens]`` and padded per batch as the ``sentence_windows`` sampler
does. One step = forward, InfoNCE, backward and an Adam update. The figure printed is
``batch * window / seconds per step`` (sentences encoded and trained on per second).
"""

from __future__ import annotations

import argparse
import itertools
import statistics

import torch

from cpcframe import Batch, ContrastiveModel, InfoNCEConfig
from cpcframe.model import contrastive_loss
from cpcframe_sequence.context_models import RecurrentConfig, build_gru
from cpcframe_sequence.critics import StepCriticConfig, build_step_critic
from cpcframe_text.encoders import SentenceConvConfig, build_sentence_conv
from measure import time_steps
from cpcframe_text.views import pad_sentences


def make_batch(batch: int, window: int, min_tokens: int, max_tokens: int, vocab: int,
               generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A collated ``{"ids", "mask"}: (B, S, L)`` view of random sentences."""
    lengths = torch.randint(min_tokens, max_tokens + 1, (batch * window,), generator=generator)
    tokens = torch.randint(0, vocab, (int(lengths.sum()),), generator=generator)
    ids, mask = pad_sentences(tokens, lengths)
    return {"ids": ids.view(batch, window, -1), "mask": mask.view(batch, window, -1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--batch", type=int, default=16, help="windows per step")
    parser.add_argument("--window", type=int, default=8, help="sentences per window")
    parser.add_argument("--min-tokens", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=30)
    parser.add_argument("--dim", type=int, default=2400, help="sentence embedding and GRU size")
    parser.add_argument("--embedding-dim", type=int, default=620)
    parser.add_argument("--vocab", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    encoder = build_sentence_conv(SentenceConvConfig(vocab_size=args.vocab, embedding_dim=args.embedding_dim,
                                                     dim=args.dim))
    context = build_gru(RecurrentConfig(hidden_size=args.dim), input_dim=args.dim)
    critic = build_step_critic(StepCriticConfig(steps=3), latent_dim=args.dim, context_dim=args.dim)
    model = ContrastiveModel(encoder, context, critic).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    loss_config = InfoNCEConfig(negatives="batch", num_negatives=0)
    params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    batches = [make_batch(args.batch, args.window, args.min_tokens, args.max_tokens, args.vocab, g)
               for _ in range(4)]

    def step(view) -> float:
        batch = Batch((view,), torch.arange(args.batch)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            out = contrastive_loss(model(batch), loss_config)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        return out.metrics["loss"]

    batch_iter = itertools.cycle(batches)
    times, _ = time_steps(lambda: step(next(batch_iter)), device, warmup=2, repeats=args.steps)
    per_step = statistics.median(times)
    sentences = args.batch * args.window
    mean_len = statistics.mean(float(b["mask"].sum(-1).float().mean()) for b in batches)
    print(f"sentence CPC training step, {params / 1e6:.1f}M parameters "
          f"(embeddings {args.vocab}x{args.embedding_dim}, conv -> {args.dim}, GRU {args.dim}, K=3)")
    print(f"device {device}, threads {torch.get_num_threads()}, bf16 {args.bf16}; "
          f"{args.batch} windows x {args.window} sentences, mean {mean_len:.1f} tokens")
    print(f"median step {per_step * 1e3:.1f} ms over {args.steps} steps "
          f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})")
    print(f"{sentences / per_step:.0f} sentences/s")


if __name__ == "__main__":
    main()
