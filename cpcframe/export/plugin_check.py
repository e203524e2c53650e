"""Before an exported model is built: are the plugins its recipe names installed?

A recipe's components come from plugins; without the plugin, building the model fails
with "unknown encoder 'x'". For an export, :mod:`~cpcframe.export.manifest` recorded
which plugin and which distribution supplied each component, so the message can say
what to install: ``pip install 'cpcframe[audio]>=0.1.0'`` for the built-in plugins'
components, the distribution's name for a third-party plugin's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cpcframe.errors import UserError
from cpcframe.export.layout import ExportDir
from cpcframe.export.manifest import ComponentSource, Manifest, named_components, read_manifest
from cpcframe.plugins import DISABLE_AUTOLOAD_ENV, EXTRA_PLUGINS_ENV
from cpcframe.registry import Registry


def missing_components(manifest: Manifest, registry: Registry) -> list[ComponentSource]:
    """The manifest's components that no plugin in ``registry`` registers."""
    return [s for s in manifest.components if s.name not in registry.names(s.kind)]


def missing_plugins_message(missing: list[ComponentSource]) -> str:
    """One line: what is missing and the pip command (or steps) that install it."""
    what = ", ".join(s.describe() for s in missing)
    requirements = []
    for source in missing:
        requirement = source.requirement()
        if requirement and requirement not in requirements:
            requirements.append(requirement)
    advice = []
    if requirements:
        advice.append("pip install " + " ".join(f"'{r}'" for r in requirements))
    plain = sorted({s.module for s in missing if s.requirement() is None})
    if plain:
        advice.append(f"put module{'s' if len(plain) > 1 else ''} {', '.join(plain)} on the Python path and "
                      f"name {'them' if len(plain) > 1 else 'it'} in {EXTRA_PLUGINS_ENV}")
    note = (f" (plugin autoloading is off: {DISABLE_AUTOLOAD_ENV} is set)"
            if (os.environ.get(DISABLE_AUTOLOAD_ENV) or "").strip().lower() not in ("", "0", "false", "no")
            else "")
    return (f"this model needs {what}, which no installed plugin provides{note}; "
            f"install it: {'; '.join(advice)}")


def check_plugins(folder: str | Path, registry: Registry) -> None:
    """Raise :class:`UserError` naming what to install when ``folder`` is an export whose
    components are not all registered (a plain run directory has no manifest: nothing to check)."""
    manifest = read_manifest(ExportDir(folder).manifest)
    if manifest is None:
        return
    missing = missing_components(manifest, registry)
    if missing:
        raise UserError(missing_plugins_message(missing))


def check_recipe_plugins(data: Mapping[str, Any], registry: Registry, source: str | Path) -> None:
    """Raise one line of :class:`UserError` when the recipe ``data`` (from ``source``) names
    components no installed plugin registers (a run directory records no plugins, so this
    can only name them)."""
    missing = [f"{kind.replace('_', ' ')} {name!r} ({path}.name)" for path, kind, name in named_components(data)
               if name not in registry.names(kind)]
    if missing:
        raise UserError(f"{source} names what no installed plugin provides: {', '.join(missing)}; install "
                        "the plugins that register them (cpcframe plugins lists what is installed)")
