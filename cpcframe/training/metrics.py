"""``metrics.jsonl``: one JSON object per logged step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cpcframe.runs.atomic import disk_full, disk_full_error


class MetricsLog:
    """Appends records; on resume drops records past the checkpoint's step."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and _step(line) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def append(self, record: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as exc:
            if disk_full(exc):
                raise disk_full_error(self.path, exc) from None
            raise

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def _step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62  # an unreadable line is dropped on resume
