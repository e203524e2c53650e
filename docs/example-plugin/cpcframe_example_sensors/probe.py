"""``sensor_activity``: linear classification of the activity at every latent frame.

Like CPC's phone probe (van den Oord et al. 2018, section 3.1): a linear classifier
is trained on frozen features of the ``train`` recordings and scored on the ``test``
recordings. Frame ``t`` of a recording encoded into ``T`` frames covers steps
``[t·d, (t+1)·d)`` with ``d = S // T``; its label is the activity at the frame's centre.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from cpcframe import ContrastiveModel, DatasetRequest, Probe, ProbeContext, UserError
from cpcframe.probing.interface import ProbeResults
from cpcframe_example_sensors.config import SensorActivityConfig
from cpcframe_example_sensors.data.sensor_csv import SensorCSV

#: A recording ``(C, S)`` -> frame features ``(T, D)``.
FrameFeatures = Callable[[Tensor], Tensor]


def model_frames(model: ContrastiveModel, level: str, device: torch.device) -> FrameFeatures:
    def features(values: Tensor) -> Tensor:
        out = model.encode(values[None].to(device), level=level)  # (1, T, D)
        if not isinstance(out, Tensor) or out.dim() != 3:
            raise UserError("sensor_activity needs sequence features (B, T, D) from the model")
        return out[0].float()
    return features


def raw_frames(downsampling: int) -> FrameFeatures:
    """The baseline: each frame's raw samples, ``(C, T·d) -> (T, C·d)``."""
    def features(values: Tensor) -> Tensor:
        C, S = values.shape
        T = S // downsampling
        return values[:, :T * downsampling].reshape(C, T, downsampling).permute(1, 0, 2).reshape(T, -1)
    return features


def frame_table(dataset: SensorCSV, features: FrameFeatures) -> tuple[Tensor, Tensor]:
    """Features ``(F, D)`` and labels ``(F,)`` of every labelled frame of every recording."""
    xs, ys = [], []
    for i in range(len(dataset)):  # recordings differ in length: one forward each
        example = dataset[i]
        x = features(example.data).cpu()  # (T, D)
        if x.shape[0] == 0:
            continue
        d = example.data.shape[1] // x.shape[0]
        y = example.labels[d // 2::d][: x.shape[0]]  # (T,) label at each frame's centre
        keep = y >= 0
        xs.append(x[: len(y)][keep])
        ys.append(y[keep])
    if not xs:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(xs), torch.cat(ys)


def linear_accuracy(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                    config: SensorActivityConfig) -> float:
    """Fit a linear softmax classifier on ``train`` (full batch, Adam); accuracy on ``test``."""
    (x_train, y_train), (x_test, y_test) = train, test
    mean, std = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    classifier = nn.Linear(x_train.shape[1], num_classes)
    nn.init.zeros_(classifier.weight)  # a convex problem: zero init makes the probe deterministic
    nn.init.zeros_(classifier.bias)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    with torch.enable_grad():
        for _ in range(config.steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(classifier(x_train), y_train).backward()
            optimizer.step()
    with torch.no_grad():
        return float((classifier(x_test).argmax(1) == y_test).float().mean())


class SensorActivityProbe(Probe):
    """``{"activity": {"cpc": acc, "random_init": acc, "raw_frames": acc}}`` (baselines when asked)."""

    def __init__(self, config: SensorActivityConfig):
        self.config = config

    def run(self, model: ContrastiveModel, context: ProbeContext) -> ProbeResults:
        recipe = context.recipe
        if recipe.data.dataset.name != "sensor_csv":
            raise UserError(f"probe sensor_activity needs the sensor_csv dataset, "
                            f"the recipe has {recipe.data.dataset.name!r}")
        # The same recordings training could use (at least one view long).
        min_length = int(getattr(recipe.data.views.config, "window", 0))
        splits = {split: SensorCSV(recipe.data.dataset.config,
                                   request=DatasetRequest(split=split, seed=context.seed,
                                                          min_length=min_length, run_dir=context.run_dir))
                  for split in ("train", "test")}
        for split, dataset in splits.items():
            if len(dataset) == 0:
                raise UserError(f"sensor_activity: the {split} split has no usable recording")
        sets: dict[str, FrameFeatures] = {"cpc": model_frames(model, self.config.level, context.device)}
        if context.baselines:
            if context.random_model is not None:
                sets["random_init"] = model_frames(context.random_model, self.config.level, context.device)
            downsampling = int(getattr(model.encoder, "downsampling", 1))
            sets["raw_frames"] = raw_frames(downsampling)
        scores = {}
        for name, features in sets.items():
            train, test = (frame_table(splits[s], features) for s in ("train", "test"))
            if train[1].numel() == 0 or test[1].numel() == 0:
                raise UserError(f"sensor_activity: no labelled frames (is there a "
                                f"{recipe.data.dataset.config.label_column!r} column?)")
            scores[name] = linear_accuracy(train, test, self.config)
        return {"activity": scores}
