"""``cpcframe.json``: what an exported model is made of and where each part came from.

A recipe names its components (``model.encoder.name = "cpc_audio"``); plugins register
them. Loading the model elsewhere needs the same plugins, so the export records, for
each component, the plugin that registered it and the Python distribution (and version)
that shipped that plugin. :mod:`cpcframe.export.plugin_check` turns a missing one into
"pip install ..." advice; :mod:`cpcframe.export.s3prl` writes the same list into
``requirements.txt``.

Example (abridged)::

    {"format": "cpcframe-model", "format_version": 1, "cpcframe_version": "0.1.0",
     "run": "quickstart_speech", "modality": "audio",
     "levels": {"latent": 128, "context": 128},
     "components": [{"path": "model.encoder", "kind": "encoder", "name": "cpc_audio",
                     "plugin": "audio", "module": "cpcframe_audio",
                     "distribution": "cpcframe", "version": "0.1.0"}, ...],
     "s3prl": {"sample_rate": 16000, "downsample_rate": 160, "hidden_states": ["latent", "context"]}}
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from cpcframe.config.recipe import Recipe
from cpcframe.errors import UserError
from cpcframe.registry import Registry

FORMAT = "cpcframe-model"
FORMAT_VERSION = 1
CORE_DISTRIBUTION = "cpcframe"
#: The plugins shipped inside the cpcframe distribution: entry-point name -> the extra
#: that installs their dependencies (``None``: no extra needed).
BUILTIN_PLUGINS: dict[str, str | None] = {"cpcframe": None, "sequence": None, "audio": "audio",
                                          "image": "image", "text": "text"}
#: Top-level modules of the cpcframe distribution (used when it is not pip-installed).
BUILTIN_MODULES = frozenset({"cpcframe", "cpcframe_sequence", "cpcframe_audio", "cpcframe_image",
                             "cpcframe_text"})


@attrs.frozen
class ComponentSource:
    """One component of the recipe and what supplied it.

    Attributes:
        path: its recipe section, e.g. ``model.encoder``.
        kind, name: as registered (``encoder``, ``cpc_audio``).
        plugin: the plugin that registered it (its entry-point or module name).
        module: the top-level Python module its factory lives in (``cpcframe_audio``).
        distribution: the installed distribution that holds ``module`` (``cpcframe``,
            ``cpcframe-example-sensors``), ``None`` when it came from a plain module.
        version: that distribution's version at export time.
    """

    path: str
    kind: str
    name: str
    plugin: str
    module: str
    distribution: str | None = None
    version: str | None = None

    @property
    def builtin(self) -> bool:
        return self.distribution == CORE_DISTRIBUTION

    def requirement(self) -> str | None:
        """The pip requirement that installs it (``cpcframe[audio]>=0.1.0``), if one does."""
        if self.distribution is None:
            return None
        name = self.distribution
        if self.builtin and BUILTIN_PLUGINS.get(self.plugin):
            name = f"{name}[{BUILTIN_PLUGINS[self.plugin]}]"
        return f"{name}>={self.version}" if self.version else name

    def describe(self) -> str:
        """``encoder 'cpc_audio' (plugin 'audio' of cpcframe 0.1.0)``."""
        origin = f"plugin {self.plugin!r}"
        if self.distribution:
            origin += f" of {self.distribution}" + (f" {self.version}" if self.version else "")
        else:
            origin += f", module {self.module}"
        return f"{self.kind.replace('_', ' ')} {self.name!r} ({origin})"


@attrs.frozen
class Manifest:
    """The content of ``cpcframe.json`` (see the module docstring).

    Attributes:
        cpcframe_version: the cpcframe that exported it.
        run: the run's name (its recipe's ``name``, else its folder's).
        modality: the plugin of the view sampler (``audio``, ``image``, ``text``, ...).
        components: every component the recipe names, in recipe order.
        levels: feature widths, ``{"latent": C_z, "context": C_c}`` (empty when unknown).
        s3prl: the s3prl upstream's settings (``None``: the export has no ``expert.py``).
    """

    cpcframe_version: str
    run: str
    modality: str
    components: tuple[ComponentSource, ...]
    levels: Mapping[str, int] = attrs.field(factory=dict)
    s3prl: Mapping[str, Any] | None = None

    def requirements(self) -> list[str]:
        """pip requirements of the components: one ``cpcframe[extras]>=version`` line for the
        built-in plugins, then each other distribution (plain modules have none)."""
        extras = sorted({BUILTIN_PLUGINS[s.plugin] for s in self.components
                         if s.builtin and BUILTIN_PLUGINS.get(s.plugin)})
        core_version = next((s.version for s in self.components if s.builtin and s.version),
                            self.cpcframe_version)
        lines = [CORE_DISTRIBUTION + (f"[{','.join(extras)}]" if extras else "") + f">={core_version}"]
        for source in self.components:
            requirement = source.requirement()
            if requirement and not source.builtin and requirement not in lines:
                lines.append(requirement)
        return lines

    def to_json(self) -> str:
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **attrs.asdict(self, recurse=True)}
        data["components"] = [attrs.asdict(c) for c in self.components]
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> "Manifest":
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} manifest")
            components = tuple(ComponentSource(**c) for c in data["components"])
            return cls(str(data["cpcframe_version"]), str(data.get("run", "")), str(data.get("modality", "")),
                       components, dict(data.get("levels") or {}), data.get("s3prl"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"cannot read {source}: {exc}") from None


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path`` (``None`` when the folder has none: a plain run directory)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return Manifest.from_json(text, source=str(path))


# ---- the components a recipe names -----------------------------------------------------
def component_fields(cls: type = Recipe, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(path, kind)`` of every component section of the recipe classes, in order:
    ``("data.dataset", "dataset")``, ..., ``("probe", "probe")``."""
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        path = f"{prefix}{field.name}"
        if "kind" in field.metadata:
            yield path, field.metadata["kind"]
        elif isinstance(hints.get(field.name), type) and attrs.has(hints[field.name]):
            yield from component_fields(hints[field.name], path + ".")


def named_components(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """``(path, kind, name)`` of the components a recipe's TOML data names (sections it
    leaves out, such as an absent ``[model.context]``, are skipped)."""
    for path, kind in component_fields():
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and isinstance(node.get("name"), str):
            yield path, kind, node["name"]


@functools.lru_cache(maxsize=1)
def _distributions_of_modules() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distribution(module: str) -> tuple[str | None, str | None]:
    names = _distributions_of_modules().get(module) or []
    if not names and module in BUILTIN_MODULES:
        names = [CORE_DISTRIBUTION]
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if name == CORE_DISTRIBUTION:  # a source checkout: the running version
                from cpcframe._version import __version__

                return name, __version__
    return None, None


def component_sources(data: Mapping[str, Any], registry: Registry) -> tuple[ComponentSource, ...]:
    """What supplied each component the recipe ``data`` names (all must be registered)."""
    sources = []
    for path, kind, name in named_components(data):
        component = registry.get(kind, name)
        module = (getattr(component.factory, "__module__", None) or component.plugin).split(".")[0]
        distribution, version = _distribution(module)
        sources.append(ComponentSource(path, kind, name, component.plugin, module, distribution,
                                       version or component.version))
    return tuple(sources)
