"""``export_run``: a run directory -> a self-contained model folder (see :mod:`~cpcframe.export.layout`).

The run's model is loaded first (its plugins must be installed and its weights must fit
its recipe), so an export that exists is one that loads. The folder is filled under a
temporary name next to ``OUT_DIR`` and renamed into place (:func:`cpcframe.runs.publish_dir`):
an interrupted export leaves no half-written folder behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch

from cpcframe._version import __version__
from cpcframe.config.loader import read_recipe_data
from cpcframe.errors import UserError
from cpcframe.export.card import CardFacts, model_card
from cpcframe.export.layout import BUNDLE_FILES, ExportDir
from cpcframe.export.manifest import Manifest, component_sources
from cpcframe.export.plugin_check import check_plugins, check_recipe_plugins
from cpcframe.export.s3prl import s3prl_settings, write_s3prl_files
from cpcframe.plugins import default_registry
from cpcframe.registry import Registry
from cpcframe.runs.atomic import publish_dir
from cpcframe.runs.layout import RunDir
from cpcframe.runs.loading import LoadedModel, load_run


@attrs.frozen
class ExportResult:
    """What :func:`export_run` wrote.

    Attributes:
        folder: the exported folder.
        manifest: its manifest.
        files: the names in it (folders with a trailing ``/``).
        note: why an audio-like model got no s3prl part ("" otherwise).
    """

    folder: Path
    manifest: Manifest
    files: tuple[str, ...]
    note: str = ""


def export_run(run_dir: str | Path, out_dir: str | Path, *, force: bool = False, repo_id: str | None = None,
               license: str | None = None, registry: Registry | None = None) -> ExportResult:
    """Write the model of ``run_dir`` as a model repository into ``out_dir``.

    Args:
        run_dir: a run directory (recipe and trained weights), or an earlier export.
        out_dir: the folder to create; an existing one must be empty unless ``force``.
        force: replace a non-empty ``out_dir``.
        repo_id: the Hub repository it is meant for (``org/name``): used in the card's snippets.
        license: a Hub license identifier for the card's metadata (``mit``, ``cc-by-4.0``).
        registry: components to load with (default: the installed plugins).

    Raises:
        UserError: not a run directory, no weights, weights that do not fit the recipe,
            a missing plugin, or ``out_dir`` not empty (without ``force``), a file, or the
            run itself (or a folder holding it).
    """
    run = require_trained_run(run_dir)
    out = Path(out_dir)
    _check_target(run, out, force)
    registry = registry or default_registry()
    data = read_recipe_data(run.recipe)
    check_plugins(run.root, registry)  # an earlier export: its manifest says what to install
    check_recipe_plugins(data, registry, run.recipe)
    loaded = load_run(run.root, registry=registry)
    sources = component_sources(data, registry)
    views = next((s for s in sources if s.path == "data.views"), None)
    s3prl, note = s3prl_settings(loaded)
    manifest = Manifest(cpcframe_version=__version__, run=str(data.get("name") or run.root.resolve().name),
                        modality=views.plugin if views else "", components=sources,
                        levels={"latent": int(loaded.model.encoder.output_dim),
                                "context": int(loaded.model.context.output_dim)},
                        s3prl=s3prl)
    shapes = example_shapes(loaded)

    def fill(tmp: Path) -> None:
        folder = ExportDir(tmp)
        copy_run_files(run, folder, skip=out)
        folder.recipe.write_text(recipe_text(run, manifest), encoding="utf-8")
        folder.manifest.write_text(manifest.to_json(), encoding="utf-8")
        if s3prl is not None:
            write_s3prl_files(folder, manifest)
        facts = CardFacts(manifest, data, folder, shapes, repo_id=repo_id, license=license)
        folder.card.write_text(model_card(facts), encoding="utf-8")

    _publish(out, fill, force)
    files = tuple(sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()))
    audio_note = note if manifest.modality == "audio" and s3prl is None else ""
    return ExportResult(out, manifest, files, audio_note)


# ---- pieces ------------------------------------------------------------------------------
def require_trained_run(run_dir: str | Path) -> RunDir:
    """The run directory, or :class:`UserError` when it has no recipe or no weights."""
    run = RunDir(run_dir).require_recipe()
    if not run.weights.is_file():
        raise UserError(f"{run.root} has no trained weights ({run.weights.name}): nothing to export "
                        "(train it with cpcframe run first)")
    return run


def _check_target(run: RunDir, out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    source, target = run.root.resolve(), out.resolve()
    if target == source or source.is_relative_to(target):
        raise UserError(f"{out} holds the run {run.root} itself; export into another folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty (--force replaces it)")


def copy_run_files(run: RunDir, folder: ExportDir, skip: Path) -> None:
    """Copy what a user of the model may want from ``run``: everything but the training
    state (``checkpoint.pt``), the lock, hidden files, the files the export writes itself
    and ``skip`` (the target, when it lies inside the run)."""
    never = {run.checkpoint.name, run.lock_file.name, run.recipe.name, *BUNDLE_FILES}
    skip = skip.resolve()
    for path in sorted(run.root.iterdir()):
        if path.name in never or path.name.startswith(".") or path.resolve() == skip:
            continue
        # Plain copies (the umask's permissions, not the run's private 0600 temp files').
        if path.is_dir():
            shutil.copytree(path, folder.root / path.name, copy_function=shutil.copyfile)
        elif path.is_file():
            shutil.copyfile(path, folder.root / path.name)


def recipe_text(run: RunDir, manifest: Manifest) -> str:
    """The run's resolved recipe, its header comment (which names the run's own folder)
    replaced by one about the export."""
    lines = run.recipe.read_text(encoding="utf-8").splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    header = [f"# Resolved recipe of the cpcframe model {manifest.run!r} (every default filled in),",
              f"# exported by cpcframe {manifest.cpcframe_version}. Load the model with",
              "# cpcframe.load(FOLDER_OR_HUB_ID); the weights are in the safetensors file beside it.", ""]
    return "\n".join(header + lines) + "\n"


def example_shapes(loaded: LoadedModel) -> dict[str, Any]:
    """Shapes of the encoder's example input and of both levels' features (``{}`` when
    the encoder has no tensor example input)."""
    try:
        view = loaded.model.encoder.example_input(2)
    except (NotImplementedError, TypeError, ValueError):
        return {}
    if not isinstance(view, torch.Tensor):
        return {}

    def shape_of(features: Any) -> Any:
        if isinstance(features, torch.Tensor):
            return tuple(features.shape)
        return {k: tuple(v.shape) for k, v in features.items()}

    try:
        return {"input": tuple(view.shape), "latent": shape_of(loaded.encode(view, level="latent")),
                "context": shape_of(loaded.encode(view, level="context"))}
    except (RuntimeError, ValueError, TypeError):
        return {}


def _publish(out: Path, fill: Callable[[Path], None], force: bool) -> None:
    """``fill`` a temporary folder, then rename it to ``out``; with ``force`` an existing
    ``out`` is moved aside first and removed once the new one is in place (restored if
    publishing fails)."""
    old = None
    if force and out.is_dir() and any(out.iterdir()):
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        if not publish_dir(out, fill):
            raise UserError(f"{out} was created by another process while exporting")
    except BaseException:
        if old is not None and not out.exists():
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
