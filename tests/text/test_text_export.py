"""Text models leave the lab the same way: the export carries the run's tokenizer, and
the exported folder embeds a text file exactly as the run does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.config.loader import load_recipe
from cpcframe.export.bundle import export_run
from cpcframe.export.layout import ExportDir
from cpcframe.runs import RunDir
from cpcframe.training.trainer import Trainer

from testpaths import ROOT

RECIPE = ROOT / "recipes" / "quickstart_text.toml"
SHORT = ["train.steps=2", "data.dataset.num_documents=40", "data.batch_size=4", "train.checkpoint_every=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(run_dir, export)`` of the text quickstart trained 2 steps on 40 documents."""
    from cpcframe.plugins import default_registry

    registry = default_registry()
    base = tmp_path_factory.mktemp("text")
    Trainer(load_recipe(RECIPE, registry, SHORT), registry, RunDir(base / "run"), progress=False).run()
    return base / "run", export_run(base / "run", base / "export")


def test_export_carries_the_tokenizer_and_embeds_the_same(trained, tmp_path):
    run, exported = trained
    assert "tokenizer/" in exported.files
    tokenizer = RunDir(exported.folder).artifact("tokenizer")
    assert sorted(p.name for p in tokenizer.iterdir()) == sorted(p.name for p in (run / "tokenizer").iterdir())
    notes = tmp_path / "notes.txt"
    notes.write_text("The first sentence is here. A second one follows it.\n\nThen a new paragraph starts.\n")
    original, copy = cpcframe.load(run), cpcframe.load(exported.folder)
    for level in ("latent", "context"):
        ours, theirs = copy.embed(notes, level=level), original.embed(notes, level=level)
        assert ours.keys() == theirs.keys() and len(next(iter(ours.values()))) == 3
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])
    x = copy.model.encoder.example_input(2)
    assert torch.equal(copy.encode(x), original.encode(x))
    assert exported.manifest.modality == "text" and exported.manifest.s3prl is None


def test_text_card_says_how_to_load_it(trained):
    _, exported = trained
    card = ExportDir(exported.folder).card.read_text()
    assert 'pip install "cpcframe[text,hub]"' in card and 'model.embed("notes.txt")' in card
    assert "| `tokenizer/` | a plugin's folder |" in card and "- text" in card
