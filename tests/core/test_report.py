"""``cpcframe report``: the page of real toy runs, compared with what the runs wrote;
partial and broken run directories; the feature map's PCA against a NumPy reference; the
page in headless Chromium."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.cli import main
from cpcframe.errors import UserError
from cpcframe.report import build_report, write_report
from cpcframe.report import projection
from cpcframe.report.feature_sources import feature_sample
from cpcframe.report.rundata import read_records, read_run, read_weights
from cpcframe.report.steps import natural_key, split_name, step_names

from reportpage import Page, read_page
from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def toy_run(out: Path, *sets: str) -> Path:
    assert main(["run", str(TOY), "--out", str(out), "--quiet", *[a for s in sets for a in ("--set", s)]]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real toy runs that differ in K; the second validates every 4 steps."""
    root = tmp_path_factory.mktemp("report_runs")
    return (toy_run(root / "k3"),
            toy_run(root / "k2", "model.critic.steps=2", "train.validate_every=4", "train.validate_batches=1"))


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def snapshot(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir()) if p.is_file()}


def test_report_of_two_runs_shows_their_numbers_side_by_side(runs, tmp_path):
    k3, k2 = runs
    before = [snapshot(k3), snapshot(k2)]
    html, page = read_page(build_report([k3, k2], tmp_path / "r.html"))
    assert [snapshot(k3), snapshot(k2)] == before  # the report only reads the runs

    # Curves: one figure per run, one of both, each a PNG in the page.
    assert len(page.image("loss and accuracy curves")) == 2
    assert len(page.image("loss and accuracy curves of all runs")) == 1
    assert len(page.image("per-step accuracy of all runs")) == 1
    assert len(page.image("accuracy per step at the end")) == 2
    assert len(page.image("accuracy per step over training")) == 2

    # Per-step table of each run: the last record's acc/k and loss/k, k in order.
    for run, steps in ((k3, 3), (k2, 2)):
        last = records(run)[-1]
        table = page.table("step", within="train acc", nth=0 if run == k3 else 1)
        assert [row[0] for row in table[1:]] == [f"k{k}" for k in range(1, steps + 1)]
        for row in table[1:]:
            assert row[1] == f"{last['acc/' + row[0]]:.3f}" and row[2] == f"{last['loss/' + row[0]]:.3f}"
    val = [r for r in records(k2) if "val/acc" in r][-1]
    assert page.table("step", within="train acc", nth=1)[1][3] == f"{val['val/acc/k1']:.3f}"

    # The comparison: final metrics of summary.json, and exactly the recipe keys that differ.
    metrics = page.table("run")
    for row, run in zip(metrics[1:], (k3, k2)):
        summary = json.loads((run / "summary.json").read_text())
        assert row[0] == run.name and row[metrics[0].index("loss")] == f"{summary['metrics']['loss']:.4f}"
    default_batches = read_run(k3).recipe["train"]["validate_batches"]  # the resolved default
    assert page.table("recipe key") == [["recipe key", "k3", "k2"], ["model.critic.steps", "3", "2"],
                                        ["train.validate_every", "0", "4"],
                                        ["train.validate_batches", str(default_batches), "1"]]

    # Cost: steps, wall time, speed, parameters counted from the weights.
    section = page.section("k3")
    model = cpcframe.load(k3).model
    parameters = sum(p.numel() for p in model.parameters())
    assert read_weights(k3 / "model.safetensors").parameters == parameters
    assert "steps 12 of 12" in section and "wall time (training loop)" in section and "steps/s" in section
    assert "peak memory not recorded" in section
    # Missing parts are named; the resolved recipe is shown.
    assert "no probe.json: no probe has run" in section
    assert 'name = "cpc_steps"' in section and "[model.critic]" in section
    # The feature map, drawn with the method that is installed (PCA here).
    assert len(page.image("feature map")) == 2
    method = projection.resolve_method("auto")
    assert {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[method] in section
    assert "held-out items" in section


def test_probe_abx_and_baselines_tables(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    probe = {"phone": {"cpc": 0.6125, "random_init": 0.276, "mfcc": 0.397, "cpc_mlp": 0.7},
             "speaker": {"cpc": 0.974, "random_init": 0.0187, "mfcc": 0.176}}
    (run / "probe.json").write_text(json.dumps(probe))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "peak_memory_bytes": 3 * 2**30}))
    (run / "probe_speech_details.json").write_text(json.dumps(
        {"phone": {"majority_baseline": 0.125}, "speaker": {"chance": 0.04}}))
    (run / "abx.json").write_text(json.dumps({  # as cpcframe abx writes it (issue 11)
        "errors": {"within_speaker": {"cpc": 0.081, "random_init": 0.21},
                   "across_speaker": {"cpc": 0.105, "random_init": 0.25}},
        "backend": {"name": "libriabx2", "version": "0.9.8"}, "max_items": 1000}))
    _, page = read_page(build_report([run], tmp_path / "r.html", maps=False))
    table = page.table("task")
    # The trained feature sets first, then the baselines, then chance; accuracies in %.
    assert table[0] == ["task", "cpc", "cpc_mlp", "random_init", "mfcc", "chance"]
    assert table[1] == ["phone", "61.3", "70.0", "27.6", "39.7", "12.5"]
    assert table[2] == ["speaker", "97.4", "-", "1.9", "17.6", "4.0"]
    abx = page.table("condition")
    assert abx == [["condition", "cpc", "random_init"], ["within_speaker", "8.10", "21.00"],
                   ["across_speaker", "10.50", "25.00"]]
    assert "backend / name: libriabx2" in page.text and "max_items: 1000" in page.text
    assert "no probe.json" not in page.text and "Feature maps were not asked for" in page.text
    assert "peak memory (peak_memory_bytes) 3.0 GiB" in page.text


def test_a_broken_or_partial_run_gives_a_report_of_what_is_there(runs, tmp_path):
    only_recipe = tmp_path / "only_recipe"
    only_recipe.mkdir()
    shutil.copy(runs[0] / "recipe.toml", only_recipe)

    torn = tmp_path / "torn"
    shutil.copytree(runs[0], torn)
    lines = (torn / "metrics.jsonl").read_text().splitlines(keepends=True)
    complete = len(lines) - 1
    # A crash left a garbage line; the trainer is writing the next record.
    (torn / "metrics.jsonl").write_text("".join(lines[:3]) + "not json\n" + "".join(lines[3:]) + '{"step": 13, "lo')
    (torn / "summary.json").unlink()
    (torn / "probe.json").write_text("{broken")

    bad_weights = tmp_path / "bad_weights"
    shutil.copytree(runs[0], bad_weights)
    weights = (bad_weights / "model.safetensors").read_bytes()
    (bad_weights / "model.safetensors").write_bytes(weights[: len(weights) // 2])

    empty = tmp_path / "empty"
    empty.mkdir()

    dirs = [only_recipe, torn, bad_weights, empty]
    _, page = read_page(build_report(dirs, tmp_path / "r.html"))
    text = page.section("only_recipe")
    for said in ("no metrics.jsonl", "no summary.json", "no probe.json", "no model.safetensors",
                 "not started", "No curves", "no feature map"):
        assert said in text, said
    text = page.section("torn")
    assert "the last line of metrics.jsonl is still being written; it is left out" in text
    assert "1 line(s) of metrics.jsonl are not JSON records" in text
    assert "probe.json cannot be read" in text and "in progress or stopped: step 12 of 12 logged" in text
    assert len(read_run(torn).records) == complete + 1 == len(records(runs[0]))
    text = page.section("bad_weights")
    assert "model.safetensors cannot be read (truncated" in text
    assert "no feature map" in text
    assert "no recipe.toml" in page.section("empty")
    # The comparison still holds the runs it can read.
    metrics = page.table("run")
    assert [row[:3] for row in metrics[1:]] == [["only_recipe", "not started", "-"],
                                                ["torn *", "in progress or stopped", "12"],
                                                ["bad_weights", "finished", "12"], ["empty", "not started", "-"]]
    last = records(runs[0])[-1]  # a run without summary.json shows its latest record
    assert metrics[2][metrics[0].index("loss")] == f"{last['loss']:.4f}"
    assert "* not finished: its latest record" in page.text
    assert "Without a readable recipe.toml: empty" in page.text


def test_torn_last_line_is_ignored_and_a_complete_one_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}')  # complete, newline pending
    assert [r["step"] for r in read_records(path)[0]] == [1, 2]
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss"')
    kept, notes = read_records(path)
    assert [r["step"] for r in kept] == [1] and "still being written" in notes[0]


def test_report_while_a_run_trains_and_write_report(tmp_path):
    """A run stopped half way (as a live one looks: records, a checkpoint, no summary yet),
    then resumed to its end: the report follows, and write_report puts it in the run."""
    run = toy_run(tmp_path / "live", "train.steps=6")
    (run / "summary.json").unlink()  # as before the run finished
    path = write_report(run, maps=False)
    assert path == run / "report.html"
    _, page = read_page(path)
    assert "in progress or stopped: step 6 of 6 logged" in page.text
    assert main(["run", str(run), "--resume", "--quiet", "--set", "train.steps=12"]) == 0
    _, page = read_page(write_report(run, maps=False))
    assert "finished" in page.section("live") and "steps 12 of 12" in page.text
    # Resumed again: while it trains past step 12, the summary of the session before is stale.
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "step": 6}))
    data = read_run(run)
    assert not data.summary_current
    assert data.status == "in progress or stopped: step 12 of 12 logged, past the step of summary.json"


def test_cli_report(runs, tmp_path, capsys):
    out = tmp_path / "both.html"
    assert main(["report", str(runs[0]), str(runs[1]), "--out", str(out), "--no-maps"]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    _, page = read_page(out)
    assert page.table("recipe key")[0] == ["recipe key", "k3", "k2"]
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    if not projection.available("umap"):
        assert main(["report", str(runs[0]), "--map", "umap", "--out", str(out)]) == 2
        assert "umap-learn" in capsys.readouterr().err


def test_pca_map_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 12)) * np.linspace(1, 3, 12)
    points, explained = projection.pca_2d(x)
    xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    reference = xc @ vt[:2].T
    for j in range(2):  # principal axes are defined up to sign
        assert np.allclose(np.abs(np.corrcoef(points[:, j], reference[:, j])[0, 1]), 1.0)
        assert np.allclose(np.abs(points[:, j]), np.abs(reference[:, j]), atol=1e-8)
    assert explained == pytest.approx(float((s[:2] ** 2).sum() / (s ** 2).sum()))
    assert projection.project(x, "pca").method.startswith("PCA")
    with pytest.raises(UserError, match="unknown feature map method"):
        projection.resolve_method("mds")


def test_toy_feature_sample_is_the_models_pooled_features_of_held_out_items(runs):
    loaded = cpcframe.load(runs[0])
    sample = feature_sample(loaded, limit=20, seed=0)
    assert sample.features.shape == (20, loaded.model.context.output_dim) and set(sample.colourings) == {"group"}
    from cpcframe.build import build_dataset

    test = build_dataset(loaded.recipe, loaded.registry, split="test", view_sampler=loaded.view_sampler())
    keys = {test[i].key: i for i in range(len(test))}
    assert sorted(set(sample.colourings["group"])) == ["0", "1", "2", "3"]  # every group appears
    for row, key, group in zip(sample.features, sample.ids, sample.colourings["group"]):
        i = keys[key]
        view = loaded.view_sampler().sample(test[i], torch.Generator().manual_seed(i))[0]
        reference = loaded.encode(view[None]).mean(dim=1)[0]  # (1, T, C) -> (C,)
        np.testing.assert_allclose(row, reference.numpy(), rtol=1e-5, atol=1e-6)
        assert group == str(test[i].group)


def test_step_names_in_numeric_order():
    recs = [{"step": 1, **{f"acc/k{k}": 0.5 for k in (10, 2, 1, 12)}, "val/acc/k3": 0.4,
             "acc/1t5_12": 0.3, "acc/1t5_12/h0": 0.2}]
    assert step_names(recs) == ["1t5_12", "1t5_12/h0", "k1", "k2", "k3", "k10", "k12"]
    assert split_name("k3") == ("", "k3") and split_name("1t5_12") == ("1t5_12", "")
    assert split_name("1t5_12/h0") == ("1t5_12", "h0")
    assert natural_key("k9") < natural_key("k10")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Appended to a copy of the page only: the page itself has no script.
PROBE_SCRIPT = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.target.src || e)), true);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const remote = performance.getEntriesByType("resource").map(r => r.name).filter(n => !n.startsWith("data:"));
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify({images: images.length, broken, remote, errors: window.__errors,
                                    height: document.body.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str, home: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={home / 'profile'}",
             "--virtual-time-budget=10000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_loads_in_headless_chromium_with_its_images_and_no_errors(runs, tmp_path):
    page_path = build_report(list(runs), tmp_path / "r.html")
    html = page_path.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE_SCRIPT + "</body>"))
    result = chromium("--dump-dom", probed.as_uri(), home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = Page(result.stdout)
    found = [t for t in result.stdout.split('<pre id="probe-result">')[1:]]
    assert found, result.stdout[-2000:]
    state = json.loads(found[0].split("</pre>")[0].replace("&quot;", '"').replace("&amp;", "&"))
    assert state["images"] == len(Page(html).images) >= 10
    assert state["broken"] == [] and state["remote"] == [] and state["errors"] == []
    assert state["height"] > 2000  # laid out, not an empty page
    assert "Comparison of 2 runs" in dom.text
    shot = tmp_path / "shot.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1280,2000", page_path.as_uri(), home=tmp_path)
    assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # figures drawn, not a blank page


def test_watch_remakes_the_report_until_the_run_finishes(runs, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    summary = (run / "summary.json").read_text()
    (run / "summary.json").unlink()  # still training
    out = tmp_path / "watched.html"
    seen = []

    def sleep(seconds):  # instead of waiting: look at the page, then let the run finish
        seen.append(out.read_text())
        (run / "summary.json").write_text(summary)

    monkeypatch.setattr("cpcframe.cli.report.time.sleep", sleep)
    assert main(["report", str(run), "--out", str(out), "--no-maps", "--watch", "30"]) == 0
    assert len(seen) == 1 and '<meta http-equiv="refresh" content="30">' in seen[0]
    assert "in progress or stopped" in Page(seen[0]).text
    final = out.read_text()
    assert "http-equiv" not in final and "finished" in Page(final).section("run")
    assert "remade every 30 s" in capsys.readouterr().out


def test_auto_method_prefers_umap_when_importable(monkeypatch):
    """The dispatch only (umap-learn is an optional extra, not installed for the tests): a
    stand-in ``umap`` module that must receive the standardised features."""
    import importlib.machinery
    import sys
    import types

    calls = []

    class UMAP:
        def __init__(self, **options):
            calls.append(options)

        def fit_transform(self, x):
            calls.append(x)
            return x[:, :2]

    fake = types.ModuleType("umap")
    fake.UMAP = UMAP
    fake.__spec__ = importlib.machinery.ModuleSpec("umap", None)
    monkeypatch.setitem(sys.modules, "umap", fake)
    x = np.random.default_rng(1).standard_normal((30, 4)) * 5 + 3
    result = projection.project(x)
    assert result.method == "UMAP (umap-learn)" and calls[0]["n_components"] == 2
    np.testing.assert_allclose(calls[1], (x - x.mean(0)) / x.std(0))
    np.testing.assert_allclose(result.points, calls[1][:, :2])


def test_names_and_recipe_text_are_escaped(runs, tmp_path):
    run = tmp_path / "<b>run"
    shutil.copytree(runs[0], run)
    recipe = (run / "recipe.toml").read_text()
    (run / "recipe.toml").write_text(recipe.replace('name = "cpc_steps"', 'name = "cpc_steps" # <i>x</i>'))
    html, page = read_page(build_report([run], tmp_path / "r.html", maps=False))
    assert "<b>run" not in html and "<i>x</i>" not in html
    assert "<b>run" in page.text and "# <i>x</i>" in page.text
