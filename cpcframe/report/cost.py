"""The cost of a run, as the report lists it: steps, time, speed, memory, parameters.

Read from what the run wrote: ``summary.json`` (wall time of the training loop, steps),
``metrics.jsonl`` (``items_per_s`` of every record), the header of ``model.safetensors``
(parameter count per module), and any memory figure a run records (a key naming memory in
the summary or the last record).
"""

from __future__ import annotations

from typing import Any

from cpcframe.report.rundata import FILES, RunData


def duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def file_size(n: int) -> str:
    for size, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def count(n: float) -> str:
    """``1234567`` -> ``1.23 M``."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:g}"


def memory_entries(run: RunData) -> list[tuple[str, Any]]:
    """Memory figures recorded anywhere in ``summary.json`` or the last record (keys naming memory)."""
    sources = [run.summary or {}, (run.summary or {}).get("metrics") or {}, run.records[-1] if run.records else {}]
    found = {}
    for source in sources:
        if isinstance(source, dict):
            for key, value in source.items():
                if "mem" in key.lower() and isinstance(value, (int, float)) and key not in found:
                    found[key] = value
    return list(found.items())


def memory_text(key: str, value: float) -> str:
    """A memory figure in the unit its key names (``peak_memory_bytes``, ``max_rss_mb``)."""
    name = key.lower()
    if "byte" in name:
        return file_size(int(value))
    if name.endswith(("_mb", "_mib")):
        return f"{value:.0f} MiB"
    if name.endswith(("_gb", "_gib")):
        return f"{value:.2f} GiB"
    return f"{value:g}"


def cost(run: RunData) -> list[tuple[str, str]]:
    """``(what, value)`` pairs: steps, wall time, speed, peak memory, parameters, file sizes."""
    out: list[tuple[str, str]] = []
    target, last = run.target_steps, run.last_step
    if last is not None:
        out.append(("steps", f"{last}" + (f" of {target}" if target else "")))
    summary = run.summary if run.summary_current else {}  # a resumed run's old summary is stale
    seconds = summary.get("seconds")
    batch = ((run.recipe or {}).get("data") or {}).get("batch_size")
    if isinstance(seconds, (int, float)) and seconds > 0:
        out.append(("wall time (training loop)", duration(seconds)))
        if isinstance(summary.get("step"), int):
            out.append(("steps/s", f"{summary['step'] / seconds:.2f}"))
    speeds = sorted(r["items_per_s"] for r in run.records if isinstance(r.get("items_per_s"), (int, float)))
    if speeds:
        median = speeds[len(speeds) // 2]
        out.append(("items/s (median of records)", f"{median:.1f}"))
        if not isinstance(seconds, (int, float)) and isinstance(batch, int) and batch:
            out.append(("steps/s (items/s ÷ batch size, one process)", f"{median / batch:.2f}"))
    memory = memory_entries(run)
    for key, value in memory:
        out.append((f"peak memory ({key})", memory_text(key, value)))
    if not memory:
        out.append(("peak memory", "not recorded"))
    if run.weights is not None:
        parts = ", ".join(f"{m} {count(n)}" for m, n in run.weights.by_module.items())
        out.append(("parameters", f"{count(run.weights.parameters)} ({parts})" if parts else count(run.weights.parameters)))
        out.append((FILES.weights.name, file_size(run.weights.size_bytes)
                    + (f", step {run.weights.metadata['step']}" if "step" in run.weights.metadata else "")))
    skipped = summary.get("skipped")
    if isinstance(skipped, dict) and skipped:
        out.append(("skipped data", ", ".join(f"{k}: {v}" for k, v in skipped.items())))
    return out
