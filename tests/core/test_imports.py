"""What code may import: plugins see the core only through ``cpcframe`` itself, and nothing
imports ``tomllib`` bare (it is 3.11+; the package claims 3.10, where ``tomli`` stands in).

Read from the source (``ast``), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cpcframe

from testpaths import ROOT

#: The plugins shipped with cpcframe, the example third-party plugin and the tests' plugin.
PLUGIN_FILES = sorted([*ROOT.glob("plugins/cpcframe_*/**/*.py"),
                       *(ROOT / "docs" / "example-plugin").glob("cpcframe_example_sensors/**/*.py"),
                       ROOT / "tests" / "toy_plugin.py"])
#: Everything that must import on every Python version the package claims.
PYTHON_FILES = sorted({*ROOT.glob("cpcframe/**/*.py"), *PLUGIN_FILES, *ROOT.glob("tests/**/*.py")})
#: Names a plugin may take from cpcframe: the public ones (and the deprecated aliases).
PUBLIC = set(cpcframe.__all__) | set(cpcframe._RENAMED)
FORBIDDEN_CALLS = {"default_registry"}


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def core_uses(tree: ast.AST) -> list[str]:
    """Every way ``tree`` reaches the core other than a public name of ``cpcframe``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("cpcframe.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("cpcframe."):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            elif node.module == "cpcframe":
                found += [f"line {node.lineno}: from cpcframe import {a.name} (not public)"
                          for a in node.names if a.name not in PUBLIC]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cpcframe"
              and node.attr not in PUBLIC):
            found.append(f"line {node.lineno}: cpcframe.{node.attr} (not public)")
        elif isinstance(node, (ast.Name, ast.Attribute)) and (getattr(node, "id", None) or getattr(node, "attr", None)) \
                in FORBIDDEN_CALLS:
            found.append(f"line {node.lineno}: {getattr(node, 'id', None) or node.attr}")
    return sorted(found, key=lambda use: int(use.split(":")[0].split()[1]))


def test_every_public_name_is_there():
    missing = [name for name in cpcframe.__all__ if not hasattr(cpcframe, name)]
    assert not missing
    helpers = {"validators", "cache_key", "publish_dir", "exclusive", "default_cache_dir", "hold_out", "key_hash",
               "Dataset", "DatasetRequest", "UserError", "did_you_mean"}
    assert helpers <= set(cpcframe.__all__)
    assert all(callable(getattr(cpcframe.validators, v)) for v in
               ("positive", "non_negative", "probability", "fraction", "non_empty"))


def test_there_are_plugin_modules():
    names = {relative(p) for p in PLUGIN_FILES}
    assert "plugins/cpcframe_audio/plugin.py" in names and "tests/toy_plugin.py" in names
    assert any(n.endswith("cpcframe_example_sensors/data/sensor_csv.py") for n in names)


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=relative)
def test_plugins_use_the_core_only_through_cpcframe(path):
    """Validators, cache and split helpers, the Dataset interface, DatasetRequest, probe
    helpers: all are public names of ``cpcframe``; nothing else of the core is a plugin's
    business, nor is the installed registry (``default_registry()``) or ``cpcframe.build``."""
    uses = core_uses(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    assert not uses, f"{relative(path)} reaches into the core: " + "; ".join(uses)


def test_the_check_catches_each_way_in():
    code = ("import cpcframe.build\nfrom cpcframe.config.validators import positive\n"
            "from cpcframe import plugins, Dataset\nimport cpcframe\ncpcframe.errors.UserError\n"
            "cpcframe.Dataset\nfrom cpcframe.plugins import default_registry\nregistry = host.default_registry()\n")
    uses = core_uses(ast.parse(code))
    assert [u.split(":")[0] for u in uses] == ["line 1", "line 2", "line 3", "line 5", "line 7", "line 8"], uses


def bare_tomllib_imports(tree: ast.AST) -> list[int]:
    """Lines importing ``tomllib`` without a fallback: neither in a ``try`` that catches
    ImportError nor in the first branch of an ``if sys.version_info ...`` with an ``else``
    (the package's spelling, in ``cpcframe/config/toml_io.py``)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if caught & {"ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)"}:
                guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
        elif isinstance(node, ast.If) and "version_info" in ast.unparse(node.test) and node.orelse:
            guarded.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    lines = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) else [])
        if "tomllib" in names and id(node) not in guarded:
            lines.append(node.lineno)
    return lines


def test_no_bare_tomllib_import():
    offenders = {relative(p): lines for p in PYTHON_FILES
                 if (lines := bare_tomllib_imports(ast.parse(p.read_text(encoding="utf-8"), str(p))))}
    assert not offenders, ("tomllib is Python 3.11+; read TOML with cpcframe.config.toml_io "
                           f"(tomli on 3.10): {offenders}")


def test_the_tomllib_check_allows_the_fallback():
    fallback = "try:\n    import tomllib\nexcept ModuleNotFoundError:\n    import tomli as tomllib\n"
    assert bare_tomllib_imports(ast.parse(fallback)) == []
    by_version = "import sys\nif sys.version_info >= (3, 11):\n    import tomllib\nelse:\n    import tomli as tomllib\n"
    assert bare_tomllib_imports(ast.parse(by_version)) == []
    assert bare_tomllib_imports(ast.parse("import sys\nif sys.version_info >= (3, 11):\n    import tomllib\n")) == [3]
    assert bare_tomllib_imports(ast.parse("import os\nimport tomllib\n")) == [2]
    assert bare_tomllib_imports(ast.parse("def f():\n    from tomllib import loads\n")) == [2]
