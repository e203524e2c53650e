"""``sensor_activity``: linear classification of the activity at every latent frame.

Like CPC's phone probe (van den Oord et al. 2018, section 3.1): a linear classifier
is trained on frozen features of the ``train`` recordings and scored on the ``test``
recordings. Frame ``t`` of a recording encoded into ``T`` frames covers steps
``[t·d, (t+1)·d)`` with ``d = S // T``; its label is the activity at the frame's centre.
The harness (:class:`cpcframe.ProbeHarness`) gives the recordings, the random-init twin
and the classifiers; this file holds only what the probe measures.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from cpcframe import ContrastiveModel, Dataset, Probe, ProbeHarness, ProbeResults, UserError
from cpcframe_example_sensors.config import SensorActivityConfig

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


def frame_table(dataset: Dataset, features: FrameFeatures) -> tuple[Tensor, Tensor]:
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


class SensorActivityProbe(Probe):
    """``{"activity": {"cpc": acc, "random_init": acc, "raw_frames": acc}}`` (baselines when asked)."""

    config: SensorActivityConfig

    def run(self, model: ContrastiveModel, harness: ProbeHarness) -> ProbeResults:
        dataset = harness.recipe.data.dataset
        if dataset.name != "sensor_csv":
            raise UserError(f"probe sensor_activity needs the sensor_csv dataset, the recipe has {dataset.name!r}")
        # The recordings training could use (at least one view long), per split.
        splits = {split: harness.dataset(split) for split in ("train", "test")}
        models = harness.feature_models(model)
        sets = {name: model_frames(m, self.config.level, harness.device) for name, m in models.items()}
        if harness.baselines:
            sets["raw_frames"] = raw_frames(int(getattr(model.encoder, "downsampling", 1)))
        scores: dict[str, float] = {}
        with harness.eval_mode(*models.values()):
            for name, features in sets.items():
                (x, y), (x_test, y_test) = (frame_table(splits[s], features) for s in ("train", "test"))
                if y.numel() == 0 or y_test.numel() == 0:
                    raise UserError(f"sensor_activity: no labelled frames (is there a "
                                    f"{dataset.config.label_column!r} column?)")
                scores.update(harness.score({name: x}, y, {name: x_test}, y_test))
        return {"activity": scores}
