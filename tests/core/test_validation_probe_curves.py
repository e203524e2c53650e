"""ABX (any ``train.validate_probe``) measured while training, in the run's curves, in
``cpcframe report`` and in ``cpcframe compare`` (issue 11, part 5).

The probe results are written into a real toy run's ``metrics.jsonl`` and ``summary.json``
in the shape :class:`cpcframe.training.validation.Validator` logs them
(``val/<task>/<features>``), so these tests check what is drawn and listed from them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cpcframe.cli import main
from cpcframe.report import build_report
from cpcframe.training.plot import plot_curves
from cpcframe.probe_metrics import is_probe_key, label_of, probe_keys

from reportpage import read_page
from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"
WITHIN, ACROSS = "val/abx/triphone/within/cpc", "val/abx/triphone/across/cpc"


def with_abx(run: Path, errors: dict[int, tuple[float, float]]) -> Path:
    """``run`` with ABX errors logged at the given validation steps, as validation logs them."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for record in lines:
        if record.get("step") in errors:
            record[WITHIN], record[ACROSS] = errors[record["step"]]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    summary = json.loads((run / "summary.json").read_text())
    summary["metrics"][WITHIN], summary["metrics"][ACROSS] = errors[max(errors)]
    (run / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("abx_curves")
    sets = ["train.steps=4", "train.validate_every=2", "train.validate_batches=1"]
    assert main(["run", str(TOY), "--out", str(root / "a"), "--quiet", "--no-report",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    shutil.copytree(root / "a", root / "b")
    return (with_abx(root / "a", {2: (0.30, 0.40), 4: (0.20, 0.35)}),
            with_abx(root / "b", {2: (0.31, 0.41), 4: (0.25, 0.38)}))


def test_probe_keys_are_told_from_infonce_metrics():
    assert is_probe_key(WITHIN) and is_probe_key("val/phone/cpc")
    assert not any(is_probe_key(k) for k in ("val/loss", "val/acc", "val/acc/k1", "val/loss/k3", "acc", "loss"))
    records = [{"step": 1, "val/acc": 0.5}, {"step": 2, ACROSS: 0.1, WITHIN: 0.2, "val/acc/k1": 0.3}]
    assert probe_keys(records) == [ACROSS, WITHIN]
    assert label_of(WITHIN) == "triphone/within" and label_of("val/phone/cpc_mlp") == "cpc_mlp"


def test_curves_get_a_panel_for_abx(runs, tmp_path):
    import matplotlib.image

    records = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    plain = [{k: v for k, v in r.items() if not is_probe_key(k)} for r in records]
    plot_curves(records, tmp_path / "with.png")
    plot_curves(plain, tmp_path / "without.png")
    wide, narrow = (matplotlib.image.imread(tmp_path / n).shape[1] for n in ("with.png", "without.png"))
    assert (wide, narrow) == (1600, 1100)  # three panels (16 in) against two (11 in) at 100 dpi


def test_report_draws_abx_over_training_per_run_and_compared(runs, tmp_path):
    _, page = read_page(build_report(list(runs), tmp_path / "r.html", maps=False))
    alts = [alt for alt, _ in page.images]
    assert sum("the validation probe (ABX) over training" in a for a in alts) == 2
    assert sum("validation probe (ABX) of all runs" in a for a in alts) == 1


def test_report_without_validation_probe_draws_no_abx_figure(runs, tmp_path):
    run = tmp_path / "plain"
    shutil.copytree(runs[0], run)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({k: v for k, v in r.items() if not is_probe_key(k)}) + "\n" for r in lines))
    _, page = read_page(build_report([run], tmp_path / "r.html", maps=False))
    assert not any("ABX" in alt for alt, _ in page.images)


def test_compare_lists_the_last_abx_errors_lowest_is_best(runs, capsys):
    assert main(["compare", str(runs[0]), str(runs[1])]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert WITHIN in header and ACROSS in header
    a, b = lines[2].split(), lines[3].split()
    assert a[header.index(WITHIN)] == "20.0" and b[header.index(ACROSS)] == "38.0"
    assert lines[-1] == "(ABX errors in %: lower is better, 50 is chance)"
