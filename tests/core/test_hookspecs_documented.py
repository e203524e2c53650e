"""Every plugin hook states its factory signature and is documented in docs/writing-plugins.md."""

from __future__ import annotations

import inspect
import re

import pytest

from cpcframe import hookspecs
from cpcframe.plugins import make_plugin_manager

from testpaths import ROOT

GUIDE = ROOT / "docs" / "writing-plugins.md"
#: ``factory(config, *, input_dim: int) -> cpcframe.ContextModel``
SIGNATURE = re.compile(r"factory\(([^()]*)\)\s*->\s*([\w.]+)")


def hookspec_names() -> list[str]:
    return sorted(name for name, obj in vars(hookspecs).items()
                  if callable(obj) and hasattr(obj, "cpcframe_spec"))


HOOKS = hookspec_names()


def test_there_are_hooks():
    assert len(HOOKS) >= 6, HOOKS
    assert all(name.startswith("register_") for name in HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_states_factory_signature(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    match = SIGNATURE.search(doc)
    assert match, f"{name}'s docstring must state 'factory(...) -> ReturnType', got: {doc!r}"
    assert match.group(1).split(",")[0].strip() == "config", "the config instance comes first"
    assert list(inspect.signature(getattr(hookspecs, name)).parameters) == ["register"]


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_in_the_guide(name):
    guide = GUIDE.read_text(encoding="utf-8")
    assert f"`{name}`" in guide, f"{name} is not documented in {GUIDE.name}"
    # The guide shows the same factory signature as the hookspec.
    signature = SIGNATURE.search(inspect.getdoc(getattr(hookspecs, name)) or "")
    assert signature and signature.group(0) in guide, \
        f"{GUIDE.name} must show {name}'s signature {signature.group(0) if signature else '?'!r}"


def test_every_kind_maps_to_a_hookspec_and_back():
    assert sorted(hookspecs.KINDS.values()) == HOOKS
    assert len(set(hookspecs.KINDS.values())) == len(hookspecs.KINDS)
    pm = make_plugin_manager([], autoload=False)
    for kind, hook_name in hookspecs.KINDS.items():
        hook = getattr(pm.hook, hook_name, None)
        assert hook is not None and hook.spec is not None, f"KINDS[{kind!r}] = {hook_name!r} has no hookspec"


def test_guide_mentions_the_plugin_switches():
    guide = GUIDE.read_text(encoding="utf-8")
    for needle in ("CPCFRAME_PLUGINS", "CPCFRAME_DISABLE_PLUGIN_AUTOLOAD", "cpcframe plugins",
                   "[project.entry-points.cpcframe]", "example_input", "example()", "skipped",
                   "groups", "UserError", "cache_dir", "Contrast"):
        assert needle in guide, needle
