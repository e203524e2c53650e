"""Pointing a shipped recipe at one's own corpus: one command, paths checked first, what was
loaded said (issue 17, part 3)."""

from __future__ import annotations

import subprocess
import sys

from audiodata import LIBRISPEECH_RECIPE, QUICKSTART, run_args, write_speakers
from cpcframe.cli import main
from cpcframe.config.loader import load_recipe
from cpcframe.plugins import default_registry


def corpus(tmp_path):
    root = tmp_path / "my_corpus"
    write_speakers(root, {"11": 150.0, "12": 260.0, "13": 330.0}, 4, 8000)
    return root


def test_set_dataset_name_drops_the_other_components_options(tmp_path, capsys):
    # The quickstart's [data.dataset] is synthetic_speech with speakers, utterances_per_speaker,
    # min_seconds, max_seconds and test_fraction: none of them are librispeech options.
    root = corpus(tmp_path)
    notes: list[str] = []
    recipe = load_recipe(QUICKSTART, default_registry(),
                         ["data.dataset.name=librispeech", f"data.dataset.root={root}"], notes=notes)
    assert recipe.data.dataset.name == "librispeech"
    assert recipe.data.dataset.config.root == str(root)
    assert recipe.data.dataset.config.split_list == ""  # librispeech's default
    assert len(notes) == 1 and "speakers" in notes[0] and "synthetic_speech" in notes[0]


def test_root_given_before_the_name_is_kept(tmp_path):
    root = corpus(tmp_path)
    recipe = load_recipe(QUICKSTART, default_registry(),
                         [f"data.dataset.root={root}", "data.dataset.name=librispeech",
                          "data.dataset.cache_dtype=float32"])
    assert recipe.data.dataset.config.root == str(root)
    assert recipe.data.dataset.config.cache_dtype == "float32"


def test_same_name_keeps_the_recipes_options(tmp_path):
    recipe = load_recipe(LIBRISPEECH_RECIPE, default_registry(), ["data.dataset.name=librispeech"])
    assert recipe.data.dataset.config.split_list == "data/LibriSpeech/train_split.txt"


def test_check_build_reports_every_missing_path_before_building(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe's relative data/LibriSpeech/... paths name nothing here
    proc = subprocess.run([sys.executable, "-m", "cpcframe", "check", str(LIBRISPEECH_RECIPE), "--build"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr
    assert "Traceback" not in err
    for key in ("data.dataset.root", "data.dataset.split_list", "data.dataset.test_split_list",
                "data.dataset.phone_labels"):
        assert key in err, err
    assert "relative to the current folder" in err and str(tmp_path) in err
    assert "openslr.org/12" in err


def test_one_command_trains_on_ones_own_corpus_and_says_what_it_loaded(tmp_path, capsys):
    root = corpus(tmp_path)
    out = tmp_path / "run"
    status = main(run_args(QUICKSTART, out, "data.dataset.name=librispeech", f"data.dataset.root={root}",
                           "data.batch_size=4", "train.steps=2", "train.log_every=1",
                           "train.checkpoint_every=2", "train.validate_every=0", "data.views.window=1600",
                           "model.encoder.hidden=16", "model.context.hidden_size=16",
                           "loss.num_negatives=16") + ["--no-probe", "--no-report"])
    assert status == 0
    err = capsys.readouterr().err
    assert "training data (librispeech): 12 utterances, 3 speakers" in err, err
    assert "no phone labels" in err
    assert "do not carry over" in err
