"""The plugin host: entry points, duplicates, unknown names, autoload switch, listing."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import attrs
import pytest

import cpcframe
from cpcframe.errors import UnknownComponentError
from cpcframe.plugins import CORE_PLUGINS, build_registry, make_plugin_manager
from cpcframe.registry import DuplicateComponentError

from testpaths import ROOT, cli_env

BUILT_INS = {"sequence", "audio", "image", "text"}


@attrs.frozen
class Nothing:
    pass


class PluginA:
    @cpcframe.hookimpl
    def register_context_models(self, register):
        register("twin", lambda config, *, input_dim: None, Nothing)


class PluginB:
    @cpcframe.hookimpl
    def register_context_models(self, register):
        register("twin", lambda config, *, input_dim: None, Nothing)


def test_built_in_plugins_come_through_entry_points():
    names = {ep.name for ep in entry_points(group="cpcframe")}
    assert BUILT_INS <= names
    pm = make_plugin_manager(autoload=True)
    assert BUILT_INS <= {pm.get_name(p) for p in pm.get_plugins()}


def test_duplicate_name_names_both_plugins():
    pm = make_plugin_manager([], autoload=False)
    pm.register(PluginA(), name="plugin-a")
    pm.register(PluginB(), name="plugin-b")
    with pytest.raises(DuplicateComponentError, match="'twin' is registered by two plugins: 'plugin-a' and 'plugin-b'"):
        build_registry(pm)


@attrs.frozen
class HasName:
    name: str = ""


class PluginWithNameOption:
    @cpcframe.hookimpl
    def register_datasets(self, register):
        register("named", lambda config, *, context: None, HasName)


def test_a_config_option_called_name_is_refused_at_registration():
    pm = make_plugin_manager([], autoload=False)
    pm.register(PluginWithNameOption(), name="plugin-n")
    with pytest.raises(TypeError, match="dataset 'named' from plugin 'plugin-n': its config HasName has an "
                                        "option called 'name'"):
        build_registry(pm)


def test_unknown_name_lists_close_matches(registry):
    with pytest.raises(UnknownComponentError, match="did you mean 'gru'"):
        registry.get("context_model", "gur")
    with pytest.raises(UnknownComponentError, match="known: "):
        registry.get("context_model", "zzzzzz")


def test_autoload_can_be_disabled(monkeypatch):
    monkeypatch.setenv("CPCFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("CPCFRAME_PLUGINS", raising=False)
    registry = build_registry(make_plugin_manager())
    assert {c.plugin for c in registry} <= set(CORE_PLUGINS)  # only the core's own components
    registry = build_registry(make_plugin_manager([PluginA()]))
    assert registry.names("context_model") == ["twin"]


def test_components_know_their_plugin_and_version(registry):
    gru = registry.get("context_model", "gru")
    assert gru.plugin == "sequence" and gru.version == cpcframe.__version__
    toy = registry.get("encoder", "toy_conv")
    assert toy.plugin == "toy_plugin"


def test_cli_lists_every_component():
    proc = subprocess.run([sys.executable, "-m", "cpcframe", "plugins", "--json"], env=cli_env(),
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    kinds = {(r["kind"], r["name"]): r for r in rows}
    assert kinds[("critic", "cpc_steps")]["plugin"] == "sequence"
    assert kinds[("encoder", "toy_conv")]["plugin"] == "toy_plugin"
    text = subprocess.run([sys.executable, "-m", "cpcframe", "plugins"], env=cli_env(),
                          capture_output=True, text=True, cwd=ROOT).stdout
    assert "context_model" in text and f"sequence {cpcframe.__version__}" in text


def test_import_does_not_load_modality_libraries():
    code = ("import sys, cpcframe, cpcframe.cli, cpcframe.plugins; cpcframe.plugins.default_registry(); "
            "heavy = [m for m in ('torchaudio', 'torchvision', 'transformers') if m in sys.modules]; "
            "print(heavy); sys.exit(bool(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


class Misspelt:
    @cpcframe.hookimpl
    def register_encoder(self, register):  # missing "s": not a cpcframe hook
        pass


def test_misspelt_hook_is_an_error():
    import pluggy

    with pytest.raises(pluggy.PluginValidationError, match="register_encoder"):
        make_plugin_manager([Misspelt()], autoload=False)
