"""A linear (softmax) classifier on frozen features: the linear-evaluation protocol of CPC and
AMDIM, trained full-batch with L-BFGS on standardised features."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor


@attrs.frozen(eq=False)
class LinearClassifier:
    """``argmax(W ((x - mean) / std) + b)``; ``weight (K, D)``, ``bias (K,)``."""

    weight: Tensor
    bias: Tensor
    mean: Tensor
    std: Tensor

    def logits(self, x: Tensor) -> Tensor:
        return ((x.float() - self.mean) / self.std) @ self.weight.T + self.bias

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        if len(y) == 0:
            return float("nan")
        return float((self.logits(x).argmax(1) == y).float().mean())


def fit_linear(x: Tensor, y: Tensor, num_classes: int, *, l2: float = 1e-4, max_iter: int = 200,
               seed: int = 0) -> LinearClassifier:
    """Multinomial logistic regression: minimise ``CE + l2·|W|²`` with L-BFGS.

    Args:
        x: ``(N, D)`` features; y: ``(N,)`` classes in ``[0, num_classes)``.
    """
    x = x.float()
    mean = x.mean(0)
    std = x.std(0, unbiased=False).clamp(min=1e-6)
    xs = (x - mean) / std
    g = torch.Generator().manual_seed(seed)
    weight = (0.01 * torch.randn(num_classes, x.shape[1], generator=g)).requires_grad_()
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xs @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearClassifier(weight.detach(), bias.detach(), mean, std)
