"""``cpcframe plugins NAME``: every built-in component documents every option, and the
section it prints is a valid recipe section holding the defaults."""

from __future__ import annotations

import json

import pytest

from cpcframe.cli import main
from cpcframe.cli.plugins import SECTIONS, as_toml
from cpcframe.config import toml_io
from cpcframe.config.describe import REQUIRED, attribute_docs, describe_options
from cpcframe.config.structure import Structurer
from cpcframe.plugins import default_registry

# The built-in plugins' components (the tests' toy plugin is left out).
COMPONENTS = sorted(((c.kind, c.name) for c in default_registry() if not c.name.startswith("toy_")), key=str)


def component(kind, name):
    return default_registry().get(kind, name)


@pytest.mark.parametrize("kind, name", COMPONENTS, ids=[f"{k}-{n}" for k, n in COMPONENTS])
def test_every_option_is_documented(kind, name):
    undocumented = [o["key"] for o in describe_options(component(kind, name).config) if not o["description"]]
    assert not undocumented, f"{kind} {name}: add these to its config's Attributes: {undocumented}"


@pytest.mark.parametrize("kind, name", COMPONENTS, ids=[f"{k}-{n}" for k, n in COMPONENTS])
def test_printed_section_is_toml_that_gives_the_defaults(kind, name):
    c = component(kind, name)
    text = as_toml(SECTIONS[kind], name, describe_options(c.config))
    data = toml_io.loads(text)
    for part in SECTIONS[kind].strip("[]").split("."):
        data = data[part]
    assert data.pop("name") == name
    if c.config is None:
        assert data == {}
        return
    required = [o["key"] for o in describe_options(c.config) if o["default"] is REQUIRED]
    for key in required:
        assert f"# {key} = ..." in text  # shown, commented out: TOML has no "unset"
    if required:
        return
    structurer = Structurer()
    config = structurer.structure_class(c.config, data, "section")
    assert not structurer.problems, structurer.problems
    assert config == c.config()


def test_attribute_docs_reads_google_style_sections():
    class Config:
        """Options.

        Attributes:
            alpha: the first
                continued here.
            beta, gamma: shared text.

        Notes after the section.
        """

    assert attribute_docs(Config) == {"alpha": "the first continued here.", "beta": "shared text.",
                                      "gamma": "shared text."}


def test_cli_shows_options_and_refuses_unknown_names(capsys):
    assert main(["plugins", "cpc_audio"]) == 0
    out = capsys.readouterr().out
    assert "[model.encoder]" in out and "conv_backend = \"auto\"" in out and "# channels of every" in out
    assert main(["plugins", "speech", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["section"] == "[probe]" and {"mlp.hidden", "classifiers"} <= {o["key"] for o in entry["options"]}
    options = {o["key"]: o for o in entry["options"]}
    assert options["mlp.hidden"]["default"] == 1024 and options["classifiers"]["default"] == ["linear"]
    assert main(["plugins", "text_files", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    paths = next(o for o in entry["options"] if o["key"] == "paths")
    assert paths["required"] is True and paths["default"] is None
    assert main(["plugins", "cpc_audo"]) == 2
    assert "did you mean 'cpc_audio'" in capsys.readouterr().err


@pytest.mark.parametrize("section", ["data", "loss", "train"])
def test_core_recipe_sections_are_documented_in_code_and_in_docs(section):
    from cpcframe.config.recipe import DataSection, TrainSection
    from cpcframe.infonce import InfoNCEConfig
    from testpaths import ROOT

    cls = {"data": DataSection, "loss": InfoNCEConfig, "train": TrainSection}[section]
    # Own options only: [data.dataset] and [data.views] are components, described above.
    options = [o for o in describe_options(cls) if "." not in o["key"]]
    assert [o["key"] for o in options if not o["description"]] == []
    guide = (ROOT / "docs" / "recipes.md").read_text()
    assert [o["key"] for o in options if f"`{o['key']}`" not in guide] == [], "add them to docs/recipes.md"
