"""Non-linear evaluation: a one-hidden-layer MLP on frozen features.

Both papers report it beside the linear probe: CPC (van den Oord et al. 2018, table 1)
"a single hidden layer MLP" on the context features, 72.5 % phone accuracy against 64.6 %
linear; AMDIM (Bachman et al. 2019, table 1) an MLP with one hidden layer of 1024 units on
each feature set (CIFAR-10: 93.1 % against 91.2 % linear). The network follows AMDIM's
public ``MLPClassifier``: dropout -> linear -> batch norm -> ReLU -> dropout -> linear,
trained with Adam on mini-batches and a cross-entropy loss.

Features are standardised with the training set's statistics (as the linear probe does),
so the same learning rate suits features of any scale.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cpcframe.config.validators import non_negative, positive, probability


@attrs.frozen
class MLPProbeConfig:
    """Options of the MLP probe (a ``[probe.mlp]`` table in recipes whose probe has one).

    Attributes:
        hidden: units of the hidden layer (AMDIM: 1024).
        dropout: dropout before each linear layer (AMDIM: 0.2).
        epochs: passes over the training features.
        min_steps: at least this many Adam steps, however small the training set (a few
            dozen speakers' utterances make one step an epoch).
        batch_size: examples per Adam step.
        lr: Adam's learning rate.
        weight_decay: L2 weight decay (AdamW's, decoupled).
    """

    hidden: int = attrs.field(default=1024, validator=positive)
    dropout: float = attrs.field(default=0.2, validator=probability)
    epochs: int = attrs.field(default=30, validator=positive)
    min_steps: int = attrs.field(default=500, validator=non_negative)
    batch_size: int = attrs.field(default=256, validator=positive)
    lr: float = attrs.field(default=1e-3, validator=positive)
    weight_decay: float = attrs.field(default=1e-4, validator=non_negative)


class MLPClassifier:
    """A fitted MLP probe: ``predict (N, D) -> (N,)`` and ``accuracy``, like
    :class:`cpcframe.probing.linear.LinearClassifier`."""

    def __init__(self, net: nn.Module, mean: Tensor, scale: Tensor, batch_size: int = 4096):
        self.net = net.eval()
        self.mean, self.scale = mean, scale
        self.batch_size = batch_size

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        """``(N, D) -> (N, C)``."""
        x = x.float()
        parts = [self.net((x[i:i + self.batch_size] - self.mean) / self.scale)
                 for i in range(0, len(x), self.batch_size)]
        return torch.cat(parts) if parts else x.new_zeros(0, self.net[-1].out_features)

    def predict(self, x: Tensor) -> Tensor:
        return self.logits(x).argmax(-1)

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        """Share of ``(N, D)`` examples whose predicted class is ``y (N,)``; NaN when ``N = 0``."""
        if len(y) == 0:
            return float("nan")
        return float((self.predict(x) == y.to(x.device)).float().mean())


def mlp(in_features: int, num_classes: int, config: MLPProbeConfig) -> nn.Sequential:
    """AMDIM's ``MLPClassifier`` layers: ``(N, D) -> (N, C)``."""
    return nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_features, config.hidden),
                         nn.BatchNorm1d(config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                         nn.Linear(config.hidden, num_classes))


def fit_mlp_classifier(x: Tensor, y: Tensor, num_classes: int, config: MLPProbeConfig = MLPProbeConfig(),
                       *, seed: int = 0) -> MLPClassifier:
    """Train an MLP probe on ``x (N, D)``, ``y (N,)`` long classes in ``[0, num_classes)``.

    Deterministic for a given ``seed`` on the CPU (initial weights, batch order, dropout).
    """
    if x.dim() != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"expected features (N, D) and classes (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"classes must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
    x, y = x.float(), y.long().to(x.device)
    n = len(y)
    mean = x.mean(0) if n else x.new_zeros(x.shape[1])
    scale = x.std(0, unbiased=False).clamp(min=1e-6) if n > 1 else x.new_ones(x.shape[1])
    generator = torch.Generator().manual_seed(seed)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # leave the caller's RNG as it was
        torch.manual_seed(seed)
        net = mlp(x.shape[1], num_classes, config).to(x.device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        xs = (x - mean) / scale
        net.train()
        per_epoch = -(-n // config.batch_size)
        epochs = max(config.epochs, -(-config.min_steps // per_epoch)) if n > 1 else 0
        with torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(n, generator=generator).to(x.device)
                for start in range(0, n, config.batch_size):
                    idx = order[start:start + config.batch_size]
                    if len(idx) < 2:  # batch norm needs two examples: a lone last one waits
                        continue
                    loss = F.cross_entropy(net(xs[idx]), y[idx])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
    return MLPClassifier(net, mean, scale)
