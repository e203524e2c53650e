"""The run directory: the one place that names its files.

A run directory written by ``cpcframe run`` holds:

=========================  ==========================================================
``recipe.toml``            the resolved recipe (every default filled in), plain TOML
``model.safetensors``      the weights only (no pickle); what :func:`cpcframe.load` reads
``checkpoint.pt``          the training state for ``--resume`` (tensors and plain values)
``metrics.jsonl``          one JSON record per logged step
``curves.png``             the training curves
``report.html``            the run report (``cpcframe report``)
``summary.json``           final step, metrics, seconds, skipped items (counts by reason)
``skipped.jsonl``          every item training left out: ``{"split", "reason", "key"}``
                           (``"count"`` instead of a key for items a dataset cannot name)
``probe.json``             probe accuracies, ``{task: {features: accuracy}}``, of the latest probe run
``probe_runs/probe-NNNN.json``  every probe run's own record (:meth:`RunDir.write_probe_record`):
                           its results, the overrides and baselines it ran with, when
``probe_<name>_details.json``  a probe's own details (:meth:`RunDir.probe_details`)
``abx.json``               ABX errors with the backend, slicing convention and items (``cpcframe abx``)
``<artifact>``             a plugin's own file or folder (:meth:`RunDir.artifact`), e.g.
                           the text plugin's ``tokenizer/``, the image probe's ``pictures/``
``.lock``                  held by the process writing into the directory
=========================  ==========================================================

``model.safetensors`` and ``checkpoint.pt`` both record the training step they hold
(the weights' ``step`` metadata, the checkpoint's ``step``); a checkpoint writes both
and a resume repairs weights that a kill left one checkpoint apart.

Everything that reads or writes a run goes through :class:`RunDir`; no other module
spells these names.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from cpcframe.errors import UserError
from cpcframe.runs.atomic import is_temporary, write_text_atomic
from cpcframe.runs.lock import DirectoryLock

RECIPE = "recipe.toml"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CURVES = "curves.png"
REPORT = "report.html"
SUMMARY = "summary.json"
PROBE = "probe.json"
SKIPPED = "skipped.jsonl"
ABX = "abx.json"
PROBE_RECORDS = "probe_runs"
LOCK = ".lock"
#: The files of the run itself; an artifact may not take one of these names.
RUN_FILES = (RECIPE, WEIGHTS, CHECKPOINT, METRICS, CURVES, SUMMARY, PROBE, ABX, SKIPPED, REPORT, LOCK,
             PROBE_RECORDS)
#: Files only the lock holder writes: their temporaries are orphans whatever their age.
_LOCKED_FILES = (RECIPE, WEIGHTS, CHECKPOINT, METRICS, CURVES, SUMMARY, SKIPPED)
#: Other temporaries (a probe writing without the lock) count as orphans after this long.
_ORPHAN_SECONDS = 600


def _plain_name(kind: str, name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{kind} must be a plain file or folder name, got {name!r}")
    return name


class RunDir:
    """Paths of a run directory, its lock, and reading and writing its small files.

    Attributes:
        root: the directory.
        recipe, weights, checkpoint, metrics, curves, report, summary, probe, abx,
            skipped, lock_file:
            the paths of its files (see the module docstring).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = DirectoryLock(self.root / LOCK)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    recipe = property(lambda self: self.root / RECIPE)
    weights = property(lambda self: self.root / WEIGHTS)
    checkpoint = property(lambda self: self.root / CHECKPOINT)
    metrics = property(lambda self: self.root / METRICS)
    curves = property(lambda self: self.root / CURVES)
    report = property(lambda self: self.root / REPORT)
    summary = property(lambda self: self.root / SUMMARY)
    probe = property(lambda self: self.root / PROBE)
    skipped = property(lambda self: self.root / SKIPPED)
    abx = property(lambda self: self.root / ABX)
    lock_file = property(lambda self: self.root / LOCK)
    probe_record_dir = property(lambda self: self.root / PROBE_RECORDS)

    def probe_details(self, probe: str) -> Path:
        """``probe_<probe>_details.json``: what a probe keeps beyond its accuracies."""
        return self.root / f"probe_{_plain_name('a probe name', probe)}_details.json"

    def artifact(self, name: str) -> Path:
        """A plugin's own file or folder in the run (``tokenizer``, ``pictures``).

        Raises:
            ValueError: ``name`` is not a plain name, or is one of the run's own files.
        """
        if name in RUN_FILES:
            raise ValueError(f"{name!r} is a file of the run itself, not an artifact name")
        return self.root / _plain_name("an artifact name", name)

    # ---- what is there ---------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether a run was started here (a recipe or a checkpoint exists)."""
        return self.recipe.exists() or self.checkpoint.exists()

    def remove_temporaries(self) -> list[Path]:
        """Remove what killed atomic writes left in the directory (see
        :mod:`cpcframe.runs.atomic`); call it holding the lock. Returns what was removed."""
        if not self.root.is_dir():
            return []
        removed = []
        now = time.time()
        for path in sorted(self.root.iterdir()):
            final = is_temporary(path.name)
            if final is None:
                continue
            try:
                if final not in _LOCKED_FILES and now - path.lstat().st_mtime < _ORPHAN_SECONDS:
                    continue  # perhaps another command's write in progress
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
        return removed

    def require_recipe(self) -> "RunDir":
        """This run directory, or :class:`UserError` when it has no recipe."""
        if not self.recipe.is_file():
            raise UserError(f"{self.root} is not a run directory (no {RECIPE})")
        return self

    # ---- small files -------------------------------------------------------------------
    def read_json(self, path: Path) -> Any:
        """The JSON in ``path`` (a file of this run), ``None`` when it does not exist."""
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {path}: {exc}") from None

    def write_json(self, path: Path, data: Any) -> Path:
        """Write ``data`` as indented JSON to ``path``, atomically."""
        return write_text_atomic(path, json.dumps(data, indent=2) + "\n")

    def read_summary(self) -> dict[str, Any]:
        """``summary.json`` (``{}`` before the run finished)."""
        return self.read_json(self.summary) or {}

    def read_probe_results(self) -> dict[str, dict[str, float]]:
        """``probe.json`` (``{}`` before a probe ran)."""
        return self.read_json(self.probe) or {}

    def write_probe_results(self, results: dict[str, dict[str, float]]) -> Path:
        return self.write_json(self.probe, results)

    @property
    def probe_records(self) -> list[Path]:
        """``probe_runs/probe-NNNN.json`` of every probe run, oldest first."""
        folder = self.probe_record_dir
        return sorted(folder.glob("probe-[0-9][0-9][0-9][0-9]*.json")) if folder.is_dir() else []

    def write_probe_record(self, record: dict[str, Any]) -> Path:
        """A new ``probe_runs/probe-NNNN.json`` (the next number): one probe run's own file,
        kept when later probe runs (other overrides, baselines) replace ``probe.json``."""
        folder = self.probe_record_dir
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem.split("-")[1]) for p in self.probe_records if p.stem.split("-")[1].isdigit()]
        path = folder / f"probe-{max(numbers, default=0) + 1:04d}.json"
        return self.write_json(path, record)

    def read_abx(self) -> dict[str, Any]:
        """``abx.json`` (``{}`` before ``cpcframe abx`` ran): ``{"errors": {condition:
        {features: error}}, "backend": ..., ...}``."""
        return self.read_json(self.abx) or {}

    def write_abx(self, report: dict[str, Any]) -> Path:
        return self.write_json(self.abx, report)

    def write_probe_details(self, probe: str, details: Any) -> Path:
        return self.write_json(self.probe_details(probe), details)

    # ---- the lock ----------------------------------------------------------------------
    def lock(self) -> None:
        """Take the directory's lock or fail with a clear message (released at exit)."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root} is a file, not a run directory; choose another --out")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create run directory {self.root}: {exc.strerror or exc}") from None
        self._lock.acquire()

    def unlock(self) -> None:
        self._lock.release()
