"""The report of a short real sentence-CPC run: curves, per-step accuracy, the probe table
against the random init, and a feature map of the probe task's sentences coloured by label
(each point checked against the sentence encoded alone, without padding)."""

from __future__ import annotations

import json

import numpy as np
import torch

import cpcframe
from cpcframe.cli import main
from cpcframe.report import build_report
from cpcframe.report.feature_sources import feature_sample
from cpcframe_text.data.synthetic import SyntheticCorpus
from cpcframe_text.data.tokenizer import encode, load_run_tokenizer

from reportpage import read_page
from testpaths import ROOT

RECIPE = ROOT / "recipes" / "quickstart_text.toml"
SHORT = ("data.dataset.num_documents=80", "train.steps=10", "train.log_every=2", "train.checkpoint_every=10",
         "probe.folds=2", 'probe.tasks=[{name = "topic", format = "synthetic", size = 160}]')


def test_report_of_a_text_run(tmp_path):
    run = tmp_path / "run"
    assert main(["run", str(RECIPE), "--out", str(run), "--quiet", *[a for s in SHORT for a in ("--set", s)]]) == 0
    _, page = read_page(build_report([run], tmp_path / "r.html"))
    assert len(page.image("loss and accuracy curves")) == 1
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    steps = page.table("step", within="train acc")
    assert [row[0] for row in steps[1:]] == ["k1", "k2", "k3"]
    assert [row[1] for row in steps[1:]] == [f"{last[f'acc/k{k}']:.3f}" for k in (1, 2, 3)]
    probe = json.loads((run / "probe.json").read_text())["topic"]
    assert page.table("task") == [["task", "cpc", "random_init"],
                                  ["topic", f"{100 * probe['cpc']:.1f}", f"{100 * probe['random_init']:.1f}"]]
    assert len(page.image("feature map")) == 1
    assert "latent features of 160 generated sentences of probe task 'topic'" in page.text

    loaded = cpcframe.load(run)
    sample = feature_sample(loaded, limit=40, seed=0)
    assert list(sample.colourings) == ["label"] and len(sample.ids) == 40
    sentences, labels = SyntheticCorpus(loaded.recipe.data.dataset.config).labelled(160, seed=1)
    label_of = dict(zip(sentences, labels))
    assert sorted(set(sample.colourings["label"])) == sorted(set(labels))  # every topic appears
    tokenizer = load_run_tokenizer(run)
    for row, sentence, label in zip(sample.features, sample.ids, sample.colourings["label"]):
        assert label == label_of[sentence]
        ids = torch.tensor(encode(tokenizer, [sentence], False)[0][:16])
        view = {"ids": ids[None, None], "mask": torch.ones(1, 1, len(ids), dtype=torch.bool)}
        np.testing.assert_allclose(row, loaded.encode(view, level="latent")[0, 0].numpy(), rtol=1e-4, atol=1e-5)
