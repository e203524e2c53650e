"""Steps for the paper's audio model to leave InfoNCE's chance plateau, under candidate causes.

The paper model (``recipes/cpc_librispeech.toml``: five strided convolutions of 512
channels, GRU 256, K = 12, 128 negatives, Adam 2e-4) trained on the built-in synthetic
corpus (windows of ``--window`` samples, batch ``--batch``), one variant after the other in
one process, each from the same seed and the same batches. A variant is a set of ``--set``
overrides on the recipe. The plateau is left at the first step whose mean accuracy over the
last 10 steps exceeds ``5 / (negatives + 1)`` (five times chance).

    OMP_NUM_THREADS=1 python benchmarks/plateau.py --steps 150 --variants paper,normalized

Prints one line per variant: steps to leave, final accuracy and loss, seconds per step.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np
import torch

from cpcframe.build import build_dataset, build_loader, build_view_sampler
from cpcframe.config.loader import load_recipe
from cpcframe.model import contrastive_loss
from cpcframe.plugins import default_registry
from cpcframe.training.state import create_train_state
from cpcframe.training.distributed import DistributedRuntime

RECIPE = os.path.join(os.path.dirname(__file__), "..", "recipes", "cpc_librispeech.toml")

CORPUS = ("data.dataset.name=synthetic_speech", "data.dataset.speakers=8",
          "data.dataset.utterances_per_speaker=6", "data.dataset.min_seconds=2.0",
          "data.dataset.max_seconds=3.0", "data.num_workers=0", "train.validate_every=0",
          "train.device=cpu")

#: name -> overrides on top of the paper recipe.
VARIANTS: dict[str, tuple[str, ...]] = {
    "paper": (),
    "normalized": ("model.encoder.normalize_input=true",),
    "warmup": ("train.warmup_steps=50",),
    "layernorm": ("model.encoder.norm='layer'",),
    "nonorm": ("model.encoder.norm='none'",),
    "mean_score": ("loss.temperature=512.0",),
    "sqrt_score": ("loss.temperature=22.6",),
    "lr1e-3": ("train.lr=1e-3",),
    "normalized_lr1e-3": ("model.encoder.normalize_input=true", "train.lr=1e-3"),
}


def recipe_for(variant: tuple[str, ...], args) -> object:
    sets = [s for s in CORPUS]
    sets += [f"data.views.window={args.window}", f"data.batch_size={args.batch}",
             f"model.encoder.hidden={args.hidden}", f"model.context.hidden_size={args.context}",
             f"train.steps={args.steps}"]
    sets += list(variant)
    return load_recipe(RECIPE, default_registry(), sets)


def train(recipe, steps: int, run_dir) -> dict[str, float]:
    registry = default_registry()
    view_sampler = build_view_sampler(recipe, registry)
    dataset = build_dataset(recipe, registry, split="train", run_dir=run_dir, view_sampler=view_sampler)
    state = create_train_state(recipe, registry, torch.device("cpu"), DistributedRuntime.from_environment("cpu"))
    loader = build_loader(recipe, dataset, view_sampler, start=0, stop=steps)
    chance = 1.0 / (recipe.loss.num_negatives + 1)
    accs, losses = [], []
    left = None
    started = time.perf_counter()
    for batch in loader:
        state.model.train()
        out = contrastive_loss(state.model(batch), recipe.loss)
        state.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        state.optimizer.step()
        state.scheduler.step()
        state.step += 1
        accs.append(out.metrics["acc"])
        losses.append(out.metrics["loss"])
        if left is None and len(accs) >= 10 and np.mean(accs[-10:]) > 5 * chance:
            left = state.step
    seconds = (time.perf_counter() - started) / max(len(accs), 1)
    return {"left": left, "acc": float(np.mean(accs[-10:])), "loss": float(np.mean(losses[-10:])),
            "chance_loss": math.log(recipe.loss.num_negatives + 1), "s_per_step": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--window", type=int, default=6400)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--extra", action="append", default=[], help="NAME:key=value;key=value")
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants.split(",") if name}
    for spec in args.extra:
        name, sets = spec.split(":", 1)
        variants[name] = tuple(sets.split(";"))
    print(f"threads={torch.get_num_threads()} window={args.window} batch={args.batch} "
          f"hidden={args.hidden} context={args.context} steps={args.steps}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, sets in variants.items():
            result = train(recipe_for(sets, args), args.steps, tmp)
            print(f"{name:22s} left={result['left']} acc={result['acc']:.3f} loss={result['loss']:.3f} "
                  f"(chance {result['chance_loss']:.3f}) s/step={result['s_per_step']:.2f}", flush=True)


if __name__ == "__main__":
    main()
