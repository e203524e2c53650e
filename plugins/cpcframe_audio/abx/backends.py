"""The ABX implementations cpcframe calls: a folder of ``(T, D)`` ``.npy`` files + an item file -> errors.

* ``libriabx2``: ``zerospeech-libriabx2`` (the ZeroSpeech 2021 revision of the
  libri-light ABX code: Cython DTW, angular distance; MIT), the default. Install it with
  ``pip install cpcframe[audio,abx]``.
* ``fastabx``: the CoML team's ``fastabx`` (needs Python 3.12+), when importable.

Both are imported only when a score is asked for. Each backend names itself, its
version and how it cuts an item's frames (the slicing convention), so that a result
says what produced it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import math
import os
import random
import sys
import warnings
from collections.abc import Sequence
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Protocol

from cpcframe import UserError, did_you_mean
from cpcframe_audio.abx.frames import LIBRI_LIGHT_SLICING, libri_light_span
from cpcframe_audio.abx.reuse import reusing_libriabx2

#: ``(context condition, speaker condition)``: "triphone" compares phones within one context
#: (prev, next phone), "phone" ignores the context (ZeroSpeech 2021's phoneme ABX).
CONDITIONS: tuple[tuple[str, str], ...] = (("triphone", "within"), ("triphone", "across"),
                                           ("phone", "within"), ("phone", "across"))
_CONTEXT_MODE = {"triphone": "within", "phone": "any"}  # the libraries' names
DISTANCE = "angular (cosine) distance between frames, DTW-aligned, averaged along the path"
INSTALL = "pip install 'cpcframe[audio,abx]'"
#: fastabx's switch to cut items as libri-light does (one frame fewer at the end).
FASTABX_LIBRILIGHT_ENV = "FASTABX_WITH_LIBRILIGHT_BUG"
FASTABX_SLICING = ("fastabx: frames ceil(onset/step - 1/2) to floor(offset/step - 1/2) inclusive "
                   "(one frame more than libri-light at the end of every item; "
                   "FASTABX_WITH_LIBRILIGHT_BUG=1 cuts as libri-light does)")


def condition_name(context: str, speaker: str) -> str:
    """``"triphone/within"``: the key of a condition in results."""
    return f"{context}/{speaker}"


class Backend(Protocol):
    """An ABX implementation."""

    name: str
    distribution: str
    install: str  # how to get it
    slicing: str

    def version(self) -> str | None:
        """The installed version (``None`` when not installed)."""

    def span(self, onset: float, offset: float, step: float, frames: int) -> tuple[int, int]:
        """``(start, end)`` frames (end exclusive) an item keeps under :attr:`slicing`."""

    def score(self, features: Path, item_file: Path, step: float, conditions: Sequence[tuple[str, str]], *,
              max_size_group: int, max_x_across: int, seed: int, device: str) -> dict[tuple[str, str], float]:
        """ABX error (0 to 1) of every condition for the ``KEY.npy`` files of ``features``."""


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet_and_isolated():
    """The libraries print progress and reseed Python's ``random``: keep both to themselves."""
    state = random.getstate()
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        random.setstate(state)


class LibriABX2:
    """``zerospeech-libriabx2`` (import name ``zrc_abx2``), through its ``EvalABX`` interface."""

    name = "libriabx2"
    distribution = "zerospeech-libriabx2"
    install = INSTALL
    slicing = LIBRI_LIGHT_SLICING

    def version(self) -> str | None:
        return _version(self.distribution)

    def span(self, onset: float, offset: float, step: float, frames: int) -> tuple[int, int]:
        return libri_light_span(onset, offset, step, frames)

    def score(self, features, item_file, step, conditions, *, max_size_group, max_x_across, seed, device):
        try:
            from zrc_abx2 import EvalABX, EvalArgs
        except ImportError as exc:
            raise UserError(f"ABX needs {self.distribution}, which is not installed ({exc}): {INSTALL}") from None
        out: dict[tuple[str, str], float] = {}
        for context, speaker in conditions:
            args = EvalArgs(path_data=str(features), path_item_file=str(item_file), file_extension=".npy",
                            feature_size=step, cuda=device.startswith("cuda"), speaker_mode=speaker,
                            context_mode=_CONTEXT_MODE[context], distance_mode="cosine",
                            max_size_group=max_size_group, max_x_across=max_x_across, seed=seed,
                            pooling="none")
            with _quiet_and_isolated(), reusing_libriabx2():
                try:
                    rows = EvalABX().eval_abx(args)
                except RuntimeError as exc:
                    if "sparse_dim = 0" not in str(exc):  # its sparse board of no triplet at all
                        raise
                    rows = [{"score": math.nan}]
            # NaN when the condition has no triplet (e.g. across speakers with one speaker).
            out[(context, speaker)] = float(rows[0]["score"])
        return out


class FastABX:
    """``fastabx`` through ``fastabx.zerospeech_abx`` (Python 3.12+; untested in cpcframe's CI, which
    runs Python 3.11: the tests drive this class with a stand-in module).

    Its slicing differs from libri-light's unless ``FASTABX_WITH_LIBRILIGHT_BUG=1`` is set: an
    item keeps one more frame (the last frame whose centre is inside it), so its numbers are
    not exactly libri-light's; :attr:`slicing` says which applied.
    """

    name = "fastabx"
    distribution = "fastabx"
    install = "pip install fastabx (it needs Python 3.12+)"

    @staticmethod
    def _as_libri_light() -> bool:
        return os.environ.get(FASTABX_LIBRILIGHT_ENV, "0") == "1"

    @property
    def slicing(self) -> str:
        if self._as_libri_light():
            return f"fastabx with {FASTABX_LIBRILIGHT_ENV}=1: " + LIBRI_LIGHT_SLICING
        return FASTABX_SLICING

    def version(self) -> str | None:
        found = _version(self.distribution)
        if found is None and available(self.name):  # importable but not installed as a distribution
            found = str(getattr(sys.modules.get("fastabx") or importlib.import_module("fastabx"),
                                "__version__", "unknown"))
        return found

    def span(self, onset: float, offset: float, step: float, frames: int) -> tuple[int, int]:
        start, end = libri_light_span(onset, offset, step, frames)
        return (start, end) if self._as_libri_light() else (start, min(frames, end + 1))

    def score(self, features, item_file, step, conditions, *, max_size_group, max_x_across, seed, device):
        try:
            import fastabx
        except ImportError as exc:
            raise UserError(f"the fastabx backend needs fastabx (Python 3.12+), which cannot be imported "
                            f"({exc}); use --backend libriabx2") from None
        import numpy as np
        import torch

        abx = fastabx.zerospeech_abx
        accepted = set(inspect.signature(abx).parameters)
        # Older releases take neither the device nor the progress switch.
        optional = {k: v for k, v in (("device", device), ("progress", False)) if k in accepted}
        out: dict[tuple[str, str], float] = {}
        for context, speaker in conditions:
            with _quiet_and_isolated():
                out[(context, speaker)] = float(abx(
                    item_file, features, max_size_group=max_size_group, max_x_across=max_x_across,
                    speaker=speaker, context=_CONTEXT_MODE[context], distance="angular",
                    frequency=frequency_of(step), extension=".npy",
                    feature_maker=lambda p: torch.from_numpy(np.load(p)), seed=seed, **optional))
        return out


def frequency_of(step: float) -> int | Decimal:
    """Frames per second of a step, exactly: an ``int`` (100 for 10 ms) when whole, else a
    :class:`~decimal.Decimal` (fastabx refuses floats, which round item boundaries)."""
    rate = Decimal(str(round(1.0 / step, 9))).normalize()
    return int(rate) if rate == rate.to_integral_value() else rate


BACKENDS: dict[str, Backend] = {b.name: b for b in (LibriABX2(), FastABX())}
MODULES = {"libriabx2": "zrc_abx2", "fastabx": "fastabx"}  # what each backend imports

#: One score to compute: ``(feature set, folder of its .npy files, frame step, condition)``.
Job = tuple[str, Path, float, tuple[str, str]]


def _score_job(backend: str, folder: Path, item_file: Path, step: float, condition: tuple[str, str],
               options: dict) -> float:
    """One job in a worker process (one thread each: the workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    return BACKENDS[backend].score(folder, item_file, step, [condition], **options)[condition]


def score_jobs(backend: Backend, jobs: Sequence[Job], item_file: Path, *, workers: int,
               **options) -> dict[tuple[str, tuple[str, str]], float]:
    """``{(feature set, condition): error}`` of every job; with ``workers > 1`` in that many
    processes (each job seeds its own sampling, so the numbers do not depend on ``workers``)."""
    if workers <= 1 or len(jobs) <= 1:
        return {(name, cond): backend.score(folder, item_file, step, [cond], **options)[cond]
                for name, folder, step, cond in jobs}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Across speakers and any context has the most triplets by far: start those first.
    order = sorted(jobs, key=lambda job: (job[3] != ("phone", "across"), job[3][1] != "across"))
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {(name, cond): pool.submit(_score_job, backend.name, folder, item_file, step, cond, options)
                   for name, folder, step, cond in order}
        return {key: futures[key].result() for key in [(job[0], job[3]) for job in jobs]}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise UserError(f"unknown ABX backend {name!r}{did_you_mean(name, BACKENDS)}; "
                        f"choose from {', '.join(BACKENDS)}")
    return BACKENDS[name]


def available(name: str) -> bool:
    """Whether backend ``name`` can be imported here (tests skip on it; a module put into
    ``sys.modules`` counts)."""
    import importlib.util

    module = MODULES[name]
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None
