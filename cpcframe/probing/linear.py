"""Linear evaluation: logistic regression on frozen features, many models trained at once.

The linear-evaluation protocol of CPC (van den Oord et al. 2018: phone, speaker, ImageNet
and sentence classification) and AMDIM (Bachman et al. 2019), shared by every probe:
:func:`train_test` fits on a train split and scores a held-out split (audio, images, TREC);
:func:`cross_validate` is skip-thought's k-fold protocol (MR, CR, SUBJ, MPQA). The L2
penalty is chosen on held-out training data when a grid is given.

Every fold and every candidate penalty is one of ``M`` independent models fitted in a
single full-batch L-BFGS run (the objective is a sum of independent convex terms), so
there is no Python loop over folds or penalties.

Features are standardised with each model's own training statistics; the scaling is
folded into the weights so no per-model copy of the features is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor


@attrs.frozen(eq=False)
class LinearModels:
    """``M`` fitted models: ``weight (M, D, C)``, ``bias (M, C)``, feature ``mean``/``scale (M, D)``."""

    weight: Tensor
    bias: Tensor
    mean: Tensor
    scale: Tensor

    def logits(self, x: Tensor) -> Tensor:
        """``(N, D) -> (M, N, C)``."""
        w = self.weight / self.scale[:, :, None]  # (M, D, C) standardisation folded in
        offset = torch.einsum("md,mdc->mc", self.mean, w)  # (M, C)
        # (n: example, d: feature) x (m: model, d, c: class)
        return torch.einsum("nd,mdc->mnc", x, w) - offset[:, None] + self.bias[:, None]

    def predict(self, x: Tensor) -> Tensor:
        """``(N, D) -> (M, N)`` predicted class of each example under each model."""
        return self.logits(x).argmax(-1)


def fit(x: Tensor, y: Tensor, train: Tensor, l2: Tensor, num_classes: int,
        iterations: int = 100) -> LinearModels:
    """Fit ``M`` multinomial logistic regressions.

    Args:
        x: ``(N, D)`` features; y: ``(N,)`` long classes.
        train: ``(M, N)`` bool, the training examples of each model.
        l2: ``(M,)`` penalty ``λ`` of each model's ``λ·||W||²`` (added to its mean loss).
        num_classes: ``C``.
        iterations: L-BFGS iterations.
    """
    x = x.float()
    M, N = train.shape
    D = x.shape[1]
    w_train = train.float()
    count = w_train.sum(1, keepdim=True).clamp(min=1)  # (M, 1)
    mean = w_train @ x / count  # (M, D)
    var = (w_train @ x.pow(2)) / count - mean.pow(2)
    scale = var.clamp(min=0).sqrt().clamp(min=1e-6)
    # Start from the class priors (the majority baseline's model): zero weights, log-prior bias.
    onehot = F.one_hot(y, num_classes).float()  # (N, C)
    prior = (w_train @ onehot) / count  # (M, C)
    prior_bias = prior.clamp(min=1e-6).log()
    weight = torch.zeros(M, D, num_classes, device=x.device, requires_grad=True)
    bias = prior_bias.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations,
                                  history_size=20, line_search_fn="strong_wolfe")
    targets = y.repeat(M)  # (M·N,)

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits = LinearModels(weight, bias, mean, scale).logits(x)  # (M, N, C)
        ce = F.cross_entropy(logits.reshape(M * N, num_classes), targets, reduction="none").view(M, N)
        loss = ((ce * w_train).sum(1) / count[:, 0]).sum() + (l2 * weight.pow(2).sum((1, 2))).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    fitted = LinearModels(weight.detach(), bias.detach(), mean, scale)
    # A model may not end below the majority baseline on its own training data (a line
    # search that ran off, too few iterations): such a model is replaced by the prior one.
    majority = prior.max(1).values  # (M,)
    worse = _accuracy(fitted.predict(x), y, train) < majority - 1e-6
    if bool(worse.any()):
        w = torch.where(worse[:, None, None], torch.zeros_like(fitted.weight), fitted.weight)
        b = torch.where(worse[:, None], prior_bias, fitted.bias)
        fitted = LinearModels(w, b, mean, scale)
    return fitted


def _accuracy(pred: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """``(M, N)`` predictions, ``(N,)`` targets, ``(M, N)`` mask -> ``(M,)`` accuracy over the mask."""
    correct = ((pred == y[None]) & mask).sum(1).float()
    return correct / mask.sum(1).clamp(min=1).float()


def fit_selected(x: Tensor, y: Tensor, train: Tensor, l2_grid: Sequence[float], num_classes: int, *,
                 generator: torch.Generator, validation_fraction: float = 0.1,
                 iterations: int = 100) -> LinearModels:
    """One model per row of ``train`` (``(F, N)``), each with the L2 penalty of ``l2_grid``
    that scores best on a held-out ``validation_fraction`` of its own training examples."""
    Fm, N = train.shape
    device = x.device
    if len(l2_grid) == 1:
        penalties = torch.full((Fm,), l2_grid[0], device=device)
    else:
        G = len(l2_grid)
        held = (torch.rand(N, generator=generator) < validation_fraction).to(device)  # (N,)
        inner = train & ~held[None]  # (F, N)
        val = train & held[None]
        grid = torch.tensor(l2_grid, device=device)
        # Model (f, g) = fold f with penalty g, flattened f-major.
        trial = fit(x, y, inner.repeat_interleave(G, 0), grid.repeat(Fm), num_classes, iterations)
        acc = _accuracy(trial.predict(x), y, val.repeat_interleave(G, 0)).view(Fm, G)
        penalties = grid[acc.argmax(1)]  # first best: the grid's order breaks ties
    return fit(x, y, train, penalties, num_classes, iterations)


def fold_masks(n: int, folds: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Tensor:
    """``(F, N)`` bool: row ``f`` marks the test examples of fold ``f`` (stratification-free
    folds of a random permutation drawn from ``generator``)."""
    if n < folds:
        raise ValueError(f"{n} labelled examples cannot be split into {folds} folds")
    fold_of = torch.empty(n, dtype=torch.long)
    fold_of[torch.randperm(n, generator=generator)] = torch.arange(n) % folds
    fold_of = fold_of.to(device)
    return fold_of[None, :] == torch.arange(folds, device=device)[:, None]


def cross_validate(x: Tensor, y: Tensor, folds: int, l2_grid: Sequence[float], *, seed: int = 0,
                   validation_fraction: float = 0.1, iterations: int = 100) -> float:
    """Mean test accuracy over ``folds`` stratification-free folds of a random permutation."""
    generator = torch.Generator().manual_seed(seed)
    test = fold_masks(x.shape[0], folds, generator, x.device)  # (F, N)
    num_classes = int(y.max()) + 1
    models = fit_selected(x, y, ~test, l2_grid, num_classes, generator=generator,
                          validation_fraction=validation_fraction, iterations=iterations)
    return float(_accuracy(models.predict(x), y, test).mean())


@attrs.frozen(eq=False)
class LinearClassifier:
    """One fitted model of :func:`fit_classifier`."""

    models: LinearModels  # M = 1

    def predict(self, x: Tensor) -> Tensor:
        """``(N, D) -> (N,)`` predicted classes."""
        return self.models.predict(x)[0]

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        """Share of ``(N, D)`` examples whose predicted class is ``y (N,)``; NaN when ``N = 0``."""
        if len(y) == 0:
            return float("nan")
        return float((self.predict(x) == y).float().mean())


def fit_classifier(x: Tensor, y: Tensor, num_classes: int, l2_grid: Sequence[float] = (1e-4,), *,
                   seed: int = 0, validation_fraction: float = 0.1,
                   iterations: int = 100) -> LinearClassifier:
    """One multinomial logistic regression on all of ``x (N, D)``, ``y (N,)``, its L2 penalty
    chosen from ``l2_grid`` on a held-out ``validation_fraction`` when the grid has several."""
    generator = torch.Generator().manual_seed(seed)
    train = torch.ones(1, x.shape[0], dtype=torch.bool, device=x.device)
    return LinearClassifier(fit_selected(x, y, train, l2_grid, num_classes, generator=generator,
                                         validation_fraction=validation_fraction,
                                         iterations=iterations))


def train_test(x: Tensor, y: Tensor, x_test: Tensor, y_test: Tensor, l2_grid: Sequence[float], *,
               seed: int = 0, validation_fraction: float = 0.1, iterations: int = 100) -> float:
    """Accuracy on a fixed test set of one model fitted on all of ``x`` (TREC's protocol)."""
    num_classes = int(max(int(y.max()), int(y_test.max()))) + 1
    classifier = fit_classifier(x, y, num_classes, l2_grid, seed=seed,
                                validation_fraction=validation_fraction, iterations=iterations)
    return classifier.accuracy(x_test, y_test)
