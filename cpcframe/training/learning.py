"""Is the run learning? A watch on the training records that says so when it is not.

InfoNCE starts at chance: with ``M`` negatives per query the accuracy of picking the
positive is ``1 / (M + 1)`` and the loss ``log(M + 1)``. A run that is still there after
``train.plateau_steps`` steps (accuracy below twice chance) is not learning, and when its
latents are nearly the same vector for every input as well (collapse: the share of their
energy that varies between items and locations, :func:`latent_spread`, below
:data:`COLLAPSED_SPREAD`) it says so; :class:`LearningWatch` warns once, with what to try, and the status goes
to ``summary.json`` and the progress bar. The status is re-evaluated at every record, so a
run that leaves the plateau later says that too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from cpcframe.contrast import Contrast

#: ``latent_spread`` below this: the latents are nearly constant (cosine similarity of
#: any two above about 0.99).
COLLAPSED_SPREAD = 0.01
#: Accuracy below this multiple of chance counts as "at chance".
CHANCE_FACTOR = 2.0

WHAT_TO_TRY = (
    "what to try: standardise the input (model.encoder.normalize_input = true for audio), "
    "a learning-rate warm-up (train.warmup_steps = 100 or more) with a higher train.lr "
    "(1e-3 for a small model), or a narrower model first (the recipes' quickstart sizes); "
    "a large model on a CPU may simply need more steps (see the recipe's header)")


@torch.no_grad()
def latent_spread(contrasts: Sequence[Contrast]) -> float:
    """Share of the keys' energy that varies between candidates, in ``[0, 1]``.

    Keys ``(N, L, D)`` flattened to ``(N·L, D)``: ``sum_d var(k_d) / mean ||k||²``. ``1`` for
    zero-mean keys, ``0`` when every item and location has the same latent vector.
    """
    values = []
    for c in contrasts:
        keys = c.keys.detach().reshape(-1, c.keys.shape[-1]).float()
        if keys.shape[0] < 2:
            continue
        energy = keys.pow(2).sum(1).mean()
        values.append(float(keys.var(0, unbiased=False).sum() / energy.clamp(min=1e-12)))
    return min(values) if values else 1.0


class LearningWatch:
    """Follows the training records; :meth:`observe` returns a warning once, when due.

    Args:
        plateau_steps: steps after which accuracy at chance is reported (0 = never).
        num_negatives: negatives per query (``loss.num_negatives``); ``0`` = every allowed
            candidate, whose count varies: chance is then the first record's accuracy.
        start_step: the step the run starts (or resumes) at.
    """

    def __init__(self, plateau_steps: int, num_negatives: int, start_step: int = 0):
        self.plateau_steps = plateau_steps
        self.chance_acc = 1.0 / (num_negatives + 1) if num_negatives > 0 else None
        self.chance_loss = math.log(num_negatives + 1) if num_negatives > 0 else None
        self.start_step = start_step
        self.status = "starting"
        self.detail: dict[str, Any] = {}
        self.warned: set[str] = set()

    def observe(self, step: int, means: dict[str, float]) -> str | None:
        """Update the status from a record's training means; the warning text when the
        run is found not learning (or collapsed) for the first time, else ``None``."""
        acc = means.get("acc")
        if acc is None:
            return None
        if self.chance_acc is None:
            self.chance_acc = max(acc, 1e-6)  # the first record: as good as chance
        spread = means.get("latent_spread")
        at_chance = acc < CHANCE_FACTOR * self.chance_acc
        due = self.plateau_steps > 0 and step >= self.plateau_steps
        self.detail = {"step": step, "acc": round(acc, 5), "chance_acc": round(self.chance_acc, 5)}
        if "loss" in means:
            self.detail["loss"] = round(means["loss"], 5)
        if self.chance_loss is not None:
            self.detail["chance_loss"] = round(self.chance_loss, 5)
        if spread is not None:
            self.detail["latent_spread"] = round(spread, 6)
        if not at_chance:
            self.status = "learning"
        elif not due:
            self.status = "at_chance"
        elif spread is not None and spread < COLLAPSED_SPREAD:
            self.status = "collapsed"
        else:
            self.status = "not_learning"
        if self.status in ("collapsed", "not_learning") and self.status not in self.warned:
            self.warned.add(self.status)
            return self.message()
        return None

    def message(self) -> str:
        d = self.detail
        loss = (f", loss {d['loss']:.3f} (chance {d['chance_loss']:.3f})"
                if "loss" in d and "chance_loss" in d else "")
        if self.status == "collapsed":
            return (f"the latents have collapsed by step {d['step']}: they are nearly the same vector "
                    f"for every input (latent_spread {d['latent_spread']:.4f}, below {COLLAPSED_SPREAD}), "
                    f"so no negative can be told from the positive; accuracy {d['acc']:.4f}{loss}; "
                    + WHAT_TO_TRY)
        return (f"the run is not learning: after {d['step']} steps the InfoNCE accuracy is "
                f"{d['acc']:.4f}, chance is {d['chance_acc']:.4f}{loss}; " + WHAT_TO_TRY
                + " (train.plateau_steps sets when this is checked; 0 turns it off)")

    def shown(self) -> str | None:
        """A short word for the progress bar when the run is not learning."""
        return {"not_learning": "at chance", "collapsed": "collapsed"}.get(self.status)

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` records under ``learning``."""
        out: dict[str, Any] = {"status": self.status, "plateau_steps": self.plateau_steps, **self.detail}
        if self.status in ("collapsed", "not_learning"):
            out["message"] = self.message()
        return out
