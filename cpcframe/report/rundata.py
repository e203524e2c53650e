"""What a run directory holds, read for the report, whatever state it is in.

The report is regenerated while a run trains and is asked for on runs that crashed,
were copied in part, or never finished. So every reader here returns what it could read
and says, in one sentence for the page, what it could not: a missing file, a torn last
line of ``metrics.jsonl`` (the trainer is writing it), an unreadable ``probe.json``,
truncated weights. Nothing is recomputed and nothing in the run directory is changed.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import attrs

from cpcframe.config import toml_io
from cpcframe.runs.layout import RunDir

#: Files of a run that the core's RunDir does not name (yet): ABX results (issue 11) and
#: the image probe's matching-score pictures. The others' names come from RunDir.
from cpcframe.runs.layout import ABX  # noqa: E402,F401  (named by the runs wing)
PICTURES = "pictures"
#: The run's file names as the runs wing spells them (``FILES.summary.name``).
FILES = RunDir("")
#: Batch-norm statistics are state, not parameters: left out of the parameter count.
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


@attrs.frozen
class WeightsInfo:
    """What ``model.safetensors`` says about the model, read from its header only.

    Attributes:
        parameters: number of learned values (tensors other than batch-norm statistics).
        by_module: the same count per top-level module (``encoder``, ``context``, ``critic``).
        size_bytes: the file's size.
        metadata: the file's metadata (``step``, ``cpcframe_version``).
    """

    parameters: int
    by_module: dict[str, int]
    size_bytes: int
    metadata: dict[str, str]


@attrs.define
class RunData:
    """Everything the report shows of one run directory.

    Attributes:
        root: the directory.
        recipe: the resolved recipe as plain TOML data, ``None`` when absent or unreadable.
        recipe_text: the text of ``recipe.toml``.
        records: the complete records of ``metrics.jsonl``, in order.
        summary, probe, abx: the JSON of ``summary.json``, ``probe.json``, ``abx.json``.
        details: the other JSON files of the run (the probes' details) by file name.
        weights: see :class:`WeightsInfo`.
        pictures: the matching-score PNGs of the image probe (``pictures/match_*.png``).
        missing: one sentence per part the report cannot show, and why.
        notes: things worth saying that are not missing parts (skipped lines).
    """

    root: Path
    recipe: dict[str, Any] | None = None
    recipe_text: str | None = None
    records: list[dict[str, Any]] = attrs.Factory(list)
    summary: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    abx: dict[str, Any] | None = None
    details: dict[str, Any] = attrs.Factory(dict)
    weights: WeightsInfo | None = None
    pictures: list[Path] = attrs.Factory(list)
    missing: list[str] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)

    @property
    def name(self) -> str:
        return self.root.resolve().name or str(self.root)

    @property
    def target_steps(self) -> int | None:
        """``train.steps`` of the recipe."""
        steps = (self.recipe or {}).get("train", {}).get("steps")
        return steps if isinstance(steps, int) else None

    @property
    def last_step(self) -> int | None:
        """The step of the last record (or of ``summary.json``)."""
        if self.records:
            return int(self.records[-1]["step"])
        step = (self.summary or {}).get("step")
        return step if isinstance(step, int) else None

    @property
    def summary_current(self) -> bool:
        """Whether ``summary.json`` describes the latest training (a resumed run trains past
        the summary of its previous session until it writes a new one)."""
        if self.summary is None:
            return False
        step = self.summary.get("step")
        return not (self.records and isinstance(step, int) and int(self.records[-1]["step"]) > step)

    @property
    def status(self) -> str:
        """``finished``, ``stopped at step ...``, ``in progress or stopped ...``, ``not started``."""
        target, last = self.target_steps, self.last_step
        of = f" of {target}" if target else ""
        if self.summary_current:
            step = self.summary.get("step", last)
            if target and isinstance(step, int) and step < target:
                return f"stopped at step {step}{of}"
            return "finished"
        if last is None:
            return "not started: nothing logged yet"
        if self.summary is not None:
            return f"in progress or stopped: step {last}{of} logged, past the step of {FILES.summary.name}"
        return f"in progress or stopped: step {last}{of} logged, no {FILES.summary.name} yet"


def _read_json(path: Path, what: str, missing: list[str], absent: str | None) -> Any:
    """The JSON in ``path``; on failure a sentence in ``missing`` (``absent`` when the file is not there)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if absent:
            missing.append(absent)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        missing.append(f"{path.name} cannot be read ({exc}): {what} left out")
    return None


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Complete records of a ``metrics.jsonl`` and sentences about the lines left out.

    A last line without its newline is the trainer writing: it is left out without
    complaint. Other unreadable lines (a crash, an edited file) are counted.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    records, bad = [], 0
    for line in lines:
        if not line.strip():
            continue
        record = _record(line)
        if record is None:
            bad += 1
        else:
            records.append(record)
    notes = []
    if tail.strip():
        record = _record(tail)
        if record is not None and tail.rstrip().endswith("}"):
            records.append(record)  # complete but for its newline
        else:
            notes.append(f"the last line of {path.name} is still being written; it is left out")
    if bad:
        notes.append(f"{bad} line(s) of {path.name} are not JSON records; they are left out")
    return records, notes


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        return None
    # JSON has no NaN; Python's json writes it anyway. Keep finite numbers and strings.
    return {k: v for k, v in record.items() if not (isinstance(v, float) and not math.isfinite(v))}


def read_weights(path: Path) -> WeightsInfo:
    """Parameter counts from a safetensors header (8-byte length, JSON), without loading tensors.

    Raises:
        ValueError: not a complete safetensors file.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, 100 << 20):
            raise ValueError("header length past the end of the file")
        header = json.loads(handle.read(length))
    metadata = header.pop("__metadata__", None) or {}
    total, by_module, end = 0, {}, 0
    for name, entry in header.items():
        count = math.prod(entry["shape"])
        end = max(end, int(entry["data_offsets"][1]))
        if name.rsplit(".", 1)[-1] in BUFFER_SUFFIXES:
            continue
        total += count
        module = name.split(".", 1)[0]
        by_module[module] = by_module.get(module, 0) + count
    if 8 + length + end > size:
        raise ValueError(f"truncated: {size} bytes of {8 + length + end}")
    return WeightsInfo(total, by_module, size, {str(k): str(v) for k, v in metadata.items()})


def read_run(root: str | Path) -> RunData:
    """Read one run directory; see :class:`RunData`. Never raises for missing or bad files."""
    run = RunDir(root)
    data = RunData(run.root)
    missing = data.missing
    recipe, metrics, summary = run.recipe.name, run.metrics.name, run.summary.name
    probe, weights = run.probe.name, run.weights.name
    if not run.recipe.is_file():
        missing.append(f"no {recipe}: not a run directory, or the run has not started")
    else:
        try:
            data.recipe_text = run.recipe.read_text(encoding="utf-8")
            data.recipe = toml_io.loads(data.recipe_text)
        except (OSError, UnicodeDecodeError, toml_io.TOMLDecodeError) as exc:
            missing.append(f"{recipe} cannot be read ({exc}): recipe and comparisons left out")
    if run.metrics.is_file():
        data.records, notes = read_records(run.metrics)
        data.notes += notes
        if not data.records:
            missing.append(f"{metrics} holds no complete record yet: no curves")
    else:
        missing.append(f"no {metrics}: no step logged yet, so no curves")
    data.summary = _read_json(run.summary, "wall time and final metrics", missing,
                              f"no {summary}: training has not finished (or was stopped); "
                              f"speed is taken from {metrics}")
    if data.summary is not None and not isinstance(data.summary, dict):
        missing.append(f"{summary} is not a JSON object: left out")
        data.summary = None
    data.probe = _read_json(run.probe, "probe table", missing,
                            f"no {probe}: no probe has run (cpcframe probe RUN_DIR --baselines)")
    if data.probe is not None and not _is_probe_table(data.probe):
        missing.append(f"{probe} is not a {{task: {{features: accuracy}}}} table: left out")
        data.probe = None
    data.abx = _read_json(run.root / ABX, "ABX table", missing, None)
    # Every other JSON file at the top of the run is a probe's (or plugin's) details file.
    known = {run.summary.name, run.probe.name, ABX}
    for path in sorted(p for p in run.root.glob("*.json") if p.name not in known):
        details = _read_json(path, "details", data.notes, None)
        if details is not None:
            data.details[path.name] = details
    if run.weights.is_file():
        try:
            data.weights = read_weights(run.weights)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            missing.append(f"{weights} cannot be read ({exc}): no parameter count, no feature map")
    else:
        missing.append(f"no {weights}: no checkpoint yet, so no parameter count and no feature map")
    data.pictures = sorted((run.root / PICTURES).glob("match_*.png"))
    return data


def _is_probe_table(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(scores, dict) and all(isinstance(v, (int, float)) for v in scores.values())
        for scores in value.values())
