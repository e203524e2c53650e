"""Names of the probe results that validation logs (``train.validate_probe``), for the curves.

:class:`~cpcframe.training.validation.Validator` logs a probe's results as
``val/<task>/<features>`` beside the InfoNCE metrics (``val/loss``, ``val/acc``,
``val/acc/k1``, ``val/loss/k1``): ``val/abx/triphone/within/cpc`` is the ABX error of the
trained model's features in the triphone-within-context, within-speaker condition. The
training curves (``curves.png``), ``cpcframe report`` and ``cpcframe compare`` draw or list
them with these helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

INFONCE = ("val/loss", "val/acc")  # validation's own metrics, and their per-step ``val/acc/k1`` ...


def is_probe_key(key: str) -> bool:
    """Whether ``key`` is a validation probe result (``val/abx/phone/across/cpc``), not InfoNCE."""
    return (key.startswith("val/") and key not in INFONCE
            and not any(key.startswith(f"{name}/") for name in INFONCE))


def probe_keys(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The validation probe keys of ``records`` (metrics.jsonl rows), in first-seen order."""
    out: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and is_probe_key(key):
                out.setdefault(key)
    return list(out)


def task_of(key: str) -> str:
    """``"val/abx/triphone/within/cpc"`` -> ``"abx"``: the panel a key is drawn in."""
    return key.split("/")[1]


def label_of(key: str) -> str:
    """``"val/abx/triphone/within/cpc"`` -> ``"triphone/within"`` (features ``cpc`` left out:
    validation scores only the model being trained), else the key without ``val/<task>/``."""
    rest = key.split("/")[2:]
    if len(rest) > 1 and rest[-1] == "cpc":
        rest = rest[:-1]
    return "/".join(rest) or key


def is_error(key: str) -> bool:
    """ABX results are error rates (lower is better); other probes report accuracies."""
    return task_of(key) == "abx"
