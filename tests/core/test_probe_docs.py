"""The probe that ``docs/writing-plugins.md`` shows runs as written (``tests/docs_probe_plugin.py``
registers the guide's code block), and the walk from ``cpcframe probe RUN`` to its table
never imports the training package."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import docs_probe_plugin
from cpcframe.probing.run import run_probe
from probe_testing import registry_with, train_toy_run
from testpaths import ROOT, cli_env


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_toy_run(tmp_path_factory.mktemp("docs_probe") / "run")


def test_the_documented_probe_is_about_60_lines():
    lines = docs_probe_plugin.documented_probe().splitlines()
    assert 40 <= len(lines) <= 65, len(lines)
    assert "import cpcframe" in lines and not any("cpcframe." in line and "import" in line for line in lines)


def test_the_documented_probe_runs_on_a_tiny_run(run):
    registry = registry_with(docs_probe_plugin)
    results = run_probe(run, baselines=True, overrides=["probe.name=group_id"], device="cpu", registry=registry)
    assert set(results) == {"group"} and set(results["group"]) == {"cpc", "random_init"}
    assert all(0.0 <= v <= 1.0 for v in results["group"].values())
    assert json.loads((run / "probe.json").read_text()) == results
    # Its options are the shared ones plus its own, read and checked like any probe's.
    with_mlp = run_probe(run, overrides=["probe.name=group_id", 'probe.classifiers=["linear", "mlp"]',
                                         "probe.mlp.hidden=8", "probe.mlp.min_steps=10", "probe.max_items=20"],
                         device="cpu", registry=registry)
    assert set(with_mlp["group"]) == {"cpc", "cpc_mlp"}


def test_the_guides_knn_is_the_test_plugins():
    guide = docs_probe_plugin.GUIDE.read_text(encoding="utf-8").split("\n### Probe classifiers\n", 1)[1]
    block = guide.split("```python\n", 1)[1].split("\n```", 1)[0]
    plugin = (ROOT / "tests" / "knn_classifier_plugin.py").read_text(encoding="utf-8")
    for line in block.splitlines():
        code = line.split("  # ")[0].rstrip()
        assert code in plugin, code


def test_cpcframe_probe_never_imports_the_training_package(run):
    script = ("import json, sys\n"
              "from cpcframe.cli import main\n"
              f"status = main(['probe', {str(run)!r}, '--set', 'probe.name=group_id', '--baselines',"
              " '--device', 'cpu'])\n"
              "print(json.dumps({'status': status, 'training': sorted(m for m in sys.modules"
              " if m.startswith('cpcframe.training'))}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env=cli_env(CPCFRAME_PLUGINS="toy_plugin,docs_probe_plugin"))
    assert proc.returncode == 0, proc.stderr
    *table, last = proc.stdout.strip().splitlines()
    assert json.loads(last) == {"status": 0, "training": []}
    assert table[0].startswith("probe group_id on") and any(line.startswith("group ") for line in table)
