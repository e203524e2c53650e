"""``cpcframe export``: a run -> a self-contained model folder that loads to the same model.

On the toy plugin's run (a third-party-style plugin loaded through ``CPCFRAME_PLUGINS``)
and its sequence components (the built-in ``sequence`` plugin): the files, the manifest
of plugins, the model card, atomic writing, the refusals, and the missing-plugin advice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.cli import main
from cpcframe.errors import UserError
from cpcframe.export import bundle
from cpcframe.export.bundle import export_run
from cpcframe.export.layout import ExportDir
from cpcframe.export.manifest import ComponentSource, Manifest, read_manifest
from cpcframe.export.plugin_check import missing_plugins_message
from cpcframe.plugins import build_registry, make_plugin_manager
from cpcframe.runs import RunDir, load_weights
from cpcframe.runs.loading import load_run

from exporting import front_matter, markdown_tables, table_with, train_toy_run
from testpaths import ROOT, cli_env

#: A result file in the shape ``cpcframe abx`` (issue 11) is expected to write.
ABX = {"backend": "libriabx2", "level": "context",
       "within": {"triphone": 0.1234, "phone": 0.0812}, "across": {"triphone": 0.2011, "phone": 0.1507}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = train_toy_run(tmp_path_factory.mktemp("toy") / "run")
    RunDir(run).write_probe_results({"groups": {"cpc": 0.75, "random_init": 0.5}})
    (run / "abx.json").write_text(json.dumps(ABX))
    (run / "notes").mkdir()
    (run / "notes" / "data.txt").write_text("a plugin's artifact\n")
    return run


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "toy_model"
    return export_run(run_dir, out, repo_id="org/toy-model", license="mit")


def test_export_loads_to_the_same_model(run_dir, exported):
    original, copy = cpcframe.load(run_dir), cpcframe.load(exported.folder)
    saved = load_weights(RunDir(run_dir).weights)
    assert all(torch.equal(v, saved[k]) for k, v in copy.model.state_dict().items())
    assert copy.recipe == original.recipe
    x = torch.randn(3, 1, 256)
    for level in ("latent", "context"):
        assert torch.equal(copy.encode(x, level=level), original.encode(x, level=level))
    signal = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    np.save(exported.folder.parent / "signal.npy", signal)
    ours = copy.embed(exported.folder.parent / "signal.npy")["signal"]
    np.testing.assert_array_equal(ours, original.embed(exported.folder.parent / "signal.npy")["signal"])


def test_the_folder_holds_the_model_its_card_and_the_runs_results_not_its_training_state(run_dir, exported):
    folder = ExportDir(exported.folder)
    names = set(exported.files)
    assert {"recipe.toml", "model.safetensors", "README.md", "cpcframe.json", "summary.json",
            "metrics.jsonl", "curves.png", "probe.json", "abx.json", "notes/"} <= names
    assert "checkpoint.pt" not in names and ".lock" not in names
    assert "expert.py" not in names and "requirements.txt" not in names  # not a speech model
    assert (folder.root / "notes" / "data.txt").read_text() == "a plugin's artifact\n"
    # The recipe: the run's, with a header about the export instead of the run's folder.
    text = folder.recipe.read_text()
    assert str(run_dir) not in text and text.startswith("# Resolved recipe of the cpcframe model 'toy_model'")
    body = lambda t: [line for line in t.splitlines() if line and not line.startswith("#")]  # noqa: E731
    assert body(text) == body(RunDir(run_dir).recipe.read_text())
    assert not [p for p in folder.root.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_manifest_records_which_plugin_supplied_each_component(exported):
    manifest = read_manifest(ExportDir(exported.folder).manifest)
    assert manifest == exported.manifest
    by_path = {s.path: s for s in manifest.components}
    assert list(by_path) == ["data.dataset", "data.views", "model.encoder", "model.context", "model.critic"]
    toy = by_path["model.encoder"]
    assert (toy.kind, toy.name, toy.plugin, toy.module, toy.distribution) == \
        ("encoder", "toy_conv", "toy_plugin", "toy_plugin", None)
    gru = by_path["model.context"]
    assert (gru.name, gru.plugin, gru.module, gru.distribution, gru.version) == \
        ("gru", "sequence", "cpcframe_sequence", "cpcframe", cpcframe.__version__)
    assert manifest.levels == {"latent": 32, "context": 16} and manifest.s3prl is None
    assert manifest.run == "toy_model" and manifest.modality == "toy_plugin"
    assert manifest.requirements() == [f"cpcframe>={cpcframe.__version__}"]


def test_model_card_renders_its_tables_and_hub_metadata(exported):
    card = ExportDir(exported.folder).card.read_text()
    meta = front_matter(card)
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(meta)
    assert data["library_name"] == "cpcframe" and data["license"] == "mit"
    assert data["pipeline_tag"] == "feature-extraction" and {"cpcframe", "cpc"} <= set(data["tags"])
    from huggingface_hub import ModelCard

    assert ModelCard(card).data.to_dict()["library_name"] == "cpcframe"  # the Hub's own parser
    tables = markdown_tables(card)
    header, probe = table_with(tables, "task")
    assert header == ["task", "cpc", "random_init"] and probe["groups"] == ["groups", "75.0", "50.0"]
    header, abx = table_with(tables, "")
    assert header == ["", "triphone", "phone"]
    assert abx["within"] == ["within", "0.1234", "0.0812"] and abx["across"] == ["across", "0.2011", "0.1507"]
    assert "backend = `libriabx2`" in card
    _, model = table_with(tables, "part")
    assert [r[1] for r in model.values()] == ["`toy_conv`", "`gru`", "`cpc_steps`"]
    _, training = table_with(tables, "setting")
    assert training["steps"][1] == "2" and training["seed"][1] == "3" and "`lr = 0.001`" in training["optimiser"][1]
    assert "`toy_sequences`" in training["dataset"][1]
    _, files = table_with(tables, "file")
    assert set(files) == {f"`{name}`" for name in exported.files}
    assert 'cpcframe.load("org/toy-model")' in card and "(2, 1, 256) -> (2, 16, 16)" in card
    assert "![training curves](curves.png)" in card and "arXiv:1807.03748" in card


def test_an_exported_folder_exports_again(exported, tmp_path):
    again = export_run(exported.folder, tmp_path / "again")
    assert set(again.files) == set(exported.files)
    assert torch.equal(cpcframe.load(again.folder).encode(torch.ones(1, 1, 64)),
                       cpcframe.load(exported.folder).encode(torch.ones(1, 1, 64)))


# ---- refusals: one line, exit status 2 --------------------------------------------------
def _error(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cpcframe: error: ") and "\n" not in err, err
    return err


def test_bad_inputs_are_one_line_user_errors(run_dir, tmp_path, capsys):
    assert "is not a run directory" in _error(capsys, "export", str(tmp_path / "nothing"), str(tmp_path / "o"))
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(RunDir(run_dir).recipe, untrained)
    assert "no trained weights (model.safetensors)" in _error(capsys, "export", str(untrained), str(tmp_path / "o"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert "is not empty (--force replaces it)" in _error(capsys, "export", str(run_dir), str(busy))
    assert (busy / "keep.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in _error(capsys, "export", str(run_dir), str(tmp_path / "file"))
    assert "holds the run" in _error(capsys, "export", str(run_dir), str(run_dir))
    assert "holds the run" in _error(capsys, "export", str(run_dir), str(run_dir.parent), "--force")
    assert not (tmp_path / "o").exists()


def test_force_replaces_and_an_empty_folder_is_used(run_dir, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "stale.txt").write_text("old")
    assert main(["export", str(run_dir), str(busy), "--force"]) == 0
    assert not (busy / "stale.txt").exists() and (busy / "model.safetensors").is_file()
    assert "exported toy_model" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(run_dir), str(empty)]) == 0 and (empty / "README.md").is_file()
    inside = run_dir / "export"  # a target inside the run is not copied into itself
    try:
        assert main(["export", str(run_dir), str(inside)]) == 0
        assert main(["export", str(run_dir), str(inside), "--force"]) == 0
        assert not (inside / "export").exists()
    finally:
        shutil.rmtree(inside, ignore_errors=True)


def test_an_interrupted_export_leaves_nothing_and_keeps_what_force_would_replace(run_dir, tmp_path, monkeypatch):
    def broken(facts):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle, "model_card", broken)
    with pytest.raises(KeyboardInterrupt):
        export_run(run_dir, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "keep.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt):
        export_run(run_dir, old, force=True)
    assert [p.name for p in old.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


# ---- plugins: a missing one says what to install ------------------------------------------
def test_a_missing_third_party_plugin_is_named(exported, monkeypatch):
    monkeypatch.delenv("CPCFRAME_PLUGINS")
    without_toy = build_registry(make_plugin_manager(autoload=True))
    with pytest.raises(UserError) as info:
        load_run(exported.folder, registry=without_toy)
    message = str(info.value)
    assert "encoder 'toy_conv' (plugin 'toy_plugin', module toy_plugin)" in message
    assert "name it in CPCFRAME_PLUGINS" in message and "\n" not in message
    assert "gru" not in message  # the sequence plugin is installed


def test_a_missing_builtin_plugin_says_pip_install_cpcframe(exported, monkeypatch):
    import toy_plugin

    only_toy = build_registry(make_plugin_manager([toy_plugin], autoload=False))
    monkeypatch.setenv("CPCFRAME_DISABLE_PLUGIN_AUTOLOAD", "1")
    with pytest.raises(UserError) as info:
        load_run(exported.folder, registry=only_toy)
    message = str(info.value)
    assert "context model 'gru' (plugin 'sequence' of cpcframe" in message
    assert f"pip install 'cpcframe>={cpcframe.__version__}'" in message
    assert "CPCFRAME_DISABLE_PLUGIN_AUTOLOAD is set" in message


def test_install_advice_names_the_extra_or_the_distribution():
    audio = ComponentSource("model.encoder", "encoder", "cpc_audio", "audio", "cpcframe_audio", "cpcframe", "0.3.0")
    sensors = ComponentSource("model.encoder", "encoder", "sensor_conv", "example_sensors",
                              "cpcframe_example_sensors", "cpcframe-example-sensors", "0.1.0")
    message = missing_plugins_message([audio, sensors])
    assert "pip install 'cpcframe[audio]>=0.3.0' 'cpcframe-example-sensors>=0.1.0'" in message
    manifest = Manifest("0.3.0", "m", "audio", (audio, sensors))
    assert manifest.requirements() == ["cpcframe[audio]>=0.3.0", "cpcframe-example-sensors>=0.1.0"]
    assert Manifest.from_json(manifest.to_json()) == manifest
    with pytest.raises(UserError, match="cannot read x"):
        Manifest.from_json('{"format": "something else"}', source="x")


def test_cli_with_a_missing_plugin_exits_2_with_one_line(run_dir, exported, tmp_path):
    env = cli_env()
    env.pop("CPCFRAME_PLUGINS")
    np.save(tmp_path / "a.npy", np.zeros(256, dtype=np.float32))
    code = ("import sys; from cpcframe.cli import main; "
            "sys.exit(main(sys.argv[1:4]) * 10 + main(sys.argv[4:]))")  # two commands, one interpreter
    proc = subprocess.run([sys.executable, "-c", code, "export", str(run_dir), str(tmp_path / "out"),
                           "embed", str(exported.folder), str(tmp_path / "a.npy"), "--out", str(tmp_path / "f.npz")],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 22, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    # A run directory records no plugins: the components are named.
    assert "names what no installed plugin provides: dataset 'toy_sequences' (data.dataset.name)" in lines[0]
    assert "encoder 'toy_conv' (model.encoder.name)" in lines[0] and not (tmp_path / "out").exists()
    # An export does: the plugin, and how to install it.
    assert "toy_plugin" in lines[1] and "CPCFRAME_PLUGINS" in lines[1], proc.stderr
