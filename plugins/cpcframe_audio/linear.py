"""Linear (multinomial logistic regression) probes on frozen features, trained on the CPU."""

from __future__ import annotations

import attrs
import torch
from torch import Tensor


@attrs.frozen(eq=False)
class LinearProbe:
    """``argmax(W · (x - mean) / std + b)``."""

    weight: Tensor  # (K, D)
    bias: Tensor  # (K,)
    mean: Tensor  # (D,)
    std: Tensor  # (D,)

    def predict(self, x: Tensor) -> Tensor:
        return (((x - self.mean) / self.std) @ self.weight.T + self.bias).argmax(1)

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        if len(y) == 0:
            return float("nan")
        return float((self.predict(x) == y).float().mean())


def train_linear(x: Tensor, y: Tensor, num_classes: int, *, l2: float = 1e-4,
                 max_iter: int = 200, seed: int = 0) -> LinearProbe:
    """Fit a softmax classifier on standardised features with full-batch L-BFGS.

    Args:
        x: ``(N, D)`` features; y: ``(N,)`` class indices in ``[0, num_classes)``.
        l2: weight of ``l2 · |W|²`` (keeps separable problems, e.g. few speakers, bounded).
        max_iter: L-BFGS iterations.
    """
    x = x.float()
    mean = x.mean(0)
    std = x.std(0, unbiased=False).clamp(min=1e-6)
    xs = (x - mean) / std
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(num_classes, x.shape[1], generator=generator) * 0.01).requires_grad_()
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6,
                                  tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        # (n, d) x (k, d) -> (n, k) logits
        loss = torch.nn.functional.cross_entropy(xs @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearProbe(weight.detach(), bias.detach(), mean, std)
