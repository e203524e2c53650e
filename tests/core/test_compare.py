"""``cpcframe compare``: the final metrics, probe results and chosen recipe values of runs."""

from __future__ import annotations

import json

import pytest

from cpcframe.cli import main

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two toy runs that differ in K; the second validated; one gets a probe.json."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("k2", ["model.critic.steps=2"]),
                        ("k3", ["model.critic.steps=3", "train.validate_every=2", "train.validate_batches=1"])):
        sets = ["train.steps=2", *extra]
        assert main(["run", str(TOY), "--out", str(root / name), "--quiet",
                     *[a for s in sets for a in ("--set", s)]]) == 0
    (root / "k3" / "probe.json").write_text(json.dumps({"phone": {"cpc": 0.625, "cpc_mlp": 0.7}}))
    return root


def test_compare_prints_one_row_per_run(runs, capsys):
    assert main(["compare", str(runs / "k2"), str(runs / "k3"), "--show", "model.critic.steps",
                 "--show", "loss.negatives"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "step", "model.critic.steps", "loss.negatives", "loss", "acc",
                                "val/loss", "val/acc", "phone/cpc", "phone/cpc_mlp"]
    k2, k3 = lines[2].split(), lines[3].split()
    assert k2[:4] == ["k2", "2", "2", "batch"]  # the resolved recipe holds every default
    assert k2[6:] == ["-", "-", "-", "-"]  # no validation, no probe
    assert k3[:3] == ["k3", "2", "3"] and k3[-2:] == ["62.5", "70.0"]
    assert lines[-1] == "(probe accuracies in %)"


def test_compare_json_holds_the_numbers(runs, capsys):
    assert main(["compare", str(runs / "k2"), str(runs / "k3"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    summary = json.loads((runs / "k3" / "summary.json").read_text())
    assert [r["run"] for r in rows] == ["k2", "k3"]
    assert rows[1]["loss"] == summary["metrics"]["loss"] and rows[1]["val/loss"] == summary["metrics"]["val/loss"]
    assert rows[0]["val/loss"] is None and rows[1]["phone/cpc"] == 0.625


def test_compare_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "is not a run directory (no recipe.toml)" in capsys.readouterr().err
