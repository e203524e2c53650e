"""The plugin manager factory and the registry it fills.

Plugins are found through the ``cpcframe`` entry-point group, the built-in ones
included. ``CPCFRAME_DISABLE_PLUGIN_AUTOLOAD=1`` turns that off (only plugins passed in
explicitly, or named in ``CPCFRAME_PLUGINS=module.a,module.b``, are loaded).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable
from typing import Any

import pluggy

import cpcframe.hookspecs as hookspecs
from cpcframe.registry import Component, Registry

ENTRY_POINT_GROUP = "cpcframe"
DISABLE_AUTOLOAD_ENV = "CPCFRAME_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_PLUGINS_ENV = "CPCFRAME_PLUGINS"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


#: The core's own components (default context model, negative policies, probe
#: classifiers), registered through the same public hooks as any plugin's.
CORE_PLUGINS: tuple[str, ...] = ("cpcframe.identity", "cpcframe.negatives.plugin", "cpcframe.probing.classifiers",
                                  "cpcframe.shards.plugin")


def make_plugin_manager(plugins: Iterable[Any] = (), *, autoload: bool | None = None) -> pluggy.PluginManager:
    """A plugin manager with cpcframe's hookspecs, its core components, the entry-point
    plugins and ``plugins``."""
    pm = pluggy.PluginManager("cpcframe")
    pm.add_hookspecs(hookspecs)
    for module_name in CORE_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if autoload is None:
        autoload = not _truthy(os.environ.get(DISABLE_AUTOLOAD_ENV))
    if autoload:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for module_name in filter(None, (os.environ.get(EXTRA_PLUGINS_ENV) or "").split(",")):
        module = importlib.import_module(module_name.strip())
        if not pm.is_registered(module):
            pm.register(module, name=module_name.strip())
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    # A misspelt hook (register_encoder) would otherwise be ignored silently.
    pm.check_pending()
    return pm


def _plugin_versions(pm: pluggy.PluginManager) -> dict[int, tuple[str, str | None]]:
    """id(plugin object) -> (plugin name, distribution version)."""
    info: dict[int, tuple[str, str | None]] = {}
    for plugin, dist in pm.list_plugin_distinfo():
        info[id(plugin)] = (pm.get_name(plugin) or str(plugin), dist.version)
    from cpcframe._version import __version__

    for module_name in CORE_PLUGINS:  # listed as the core's: plugin "cpcframe"
        info[id(pm.get_plugin(module_name))] = ("cpcframe", __version__)
    return info


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every ``register_*`` hook and collect the components."""
    registry = Registry()
    versions = _plugin_versions(pm)
    for kind, hook_name in hookspecs.KINDS.items():
        hook = getattr(pm.hook, hook_name)
        # One call per implementation, so each component knows which plugin gave it.
        for impl in hook.get_hookimpls():
            plugin_name, version = versions.get(id(impl.plugin), (impl.plugin_name, None))

            def register(name: str, factory: Any, config: type | None = None, *,
                         description: str = "", _kind: str = kind, _plugin: str = plugin_name,
                         _version: str | None = version) -> None:
                if not description:
                    doc = (getattr(factory, "__doc__", None) or "").strip()
                    description = doc.splitlines()[0] if doc else ""
                registry.add(Component(_kind, name, factory, config, _plugin, _version, description))

            impl.function(register=register)
    return registry


@functools.lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of the installed plugins (cached: entry points are read once)."""
    return build_registry(make_plugin_manager())
