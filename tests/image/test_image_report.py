"""The report of a short real AMDIM run: per-pair accuracy, the probe table against the
random init, the matching-score pictures of the image probe embedded, and a feature map
of held-out images coloured by class (checked against the model's global feature)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cpcframe
from cpcframe.cli import main
from cpcframe.report import build_report
from cpcframe.report.feature_sources import feature_sample
from cpcframe_image.data.synthetic import write_shapes

from reportpage import read_page
from testpaths import ROOT

RECIPE = ROOT / "recipes" / "quickstart_image.toml"
#: 6 steps of 8 images of 4 x 15 shapes (12 held out), 2 pictures: seconds on one core.
SHORT = ("train.steps=6", "data.batch_size=8", "train.log_every=1", "train.checkpoint_every=6",
         "probe.pictures=2", "probe.iterations=20")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("image_report")
    data = write_shapes(base / "shapes", per_class=15)
    run = base / "run"
    sets = [f"data.dataset.root={data}", *SHORT]
    assert main(["run", str(RECIPE), "--out", str(run), "--quiet", *[a for s in sets for a in ("--set", s)]]) == 0
    return run


def test_report_of_an_amdim_run(image_run, tmp_path):
    _, page = read_page(build_report([image_run], tmp_path / "r.html"))
    # AMDIM's contrasts are pairs of scales and views, not steps ahead: a bar per pair.
    steps = page.table("step", within="train acc")
    last = [json.loads(line) for line in (image_run / "metrics.jsonl").read_text().splitlines()][-1]
    pairs = sorted(k[len("acc/"):] for k in last if k.startswith("acc/"))
    assert sorted(row[0] for row in steps[1:]) == pairs and "1t5_12" in pairs
    assert all(row[1] == f"{last['acc/' + row[0]]:.3f}" for row in steps[1:])
    assert len(page.image("accuracy per step at the end")) == 1

    probe = json.loads((image_run / "probe.json").read_text())["classification"]
    table = page.table("task")
    assert table[0] == ["task", "amdim", "random_init", "chance"]
    assert table[1][:3] == ["classification", f"{100 * probe['amdim']:.1f}", f"{100 * probe['random_init']:.1f}"]

    # The probe's matching-score pictures, byte for byte.
    for name in ("match_000.png", "match_001.png"):
        assert page.image(name) == [(image_run / "pictures" / name).read_bytes()]
    assert "AMDIM matching scores" in page.text
    assert len(page.image("feature map")) == 1 and "12 held-out images" in page.text


def test_image_feature_sample_is_the_global_feature_coloured_by_class(image_run):
    loaded = cpcframe.load(image_run)
    sample = feature_sample(loaded, limit=400, seed=0)
    from cpcframe.build import build_dataset

    sampler = loaded.view_sampler()
    test = build_dataset(loaded.recipe, loaded.registry, split="test", view_sampler=sampler)
    assert list(sample.colourings) == ["class"] and sorted(sample.ids) == sorted(test.keys)
    assert sorted(set(sample.colourings["class"])) == sorted(test.classes)
    index = {key: i for i, key in enumerate(test.keys)}
    for row, key, name in zip(sample.features, sample.ids, sample.colourings["class"]):
        i = index[key]
        assert name == test.classes[test.targets[i]] == key.split("/")[0]
        glob = loaded.encode(sampler.eval_view(test[i])[None])["1"]  # (1, 1, 1, D): AMDIM's global feature
        np.testing.assert_allclose(row, glob.reshape(-1).numpy(), rtol=1e-4, atol=1e-5)
