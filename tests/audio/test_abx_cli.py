"""``cpcframe abx`` end to end on a tiny synthetic run: abx.json, the table, compare, the errors a
user meets, the per-file feature export, and real LibriSpeech when ``../shared/data`` has it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiodata import QUICKSTART, REAL_DATA, TINY, run_args
from cpcframe.cli import main
from cpcframe.runs import load_features, load_per_file
from cpcframe_audio.abx import backends
from cpcframe_audio.abx.items import read_item_file

pytestmark = pytest.mark.skipif(not backends.available("libriabx2"),
                                reason="zerospeech-libriabx2 is not installed (pip install 'cpcframe[audio,abx]')")

CONDITIONS = ["triphone/within", "triphone/across", "phone/within", "phone/across"]
FEATURE_SETS = ["cpc", "random_init", "mfcc"]
#: The quickstart, tiny: 3 speakers x 6 utterances of 1.5-2 s (3 each held out) from a lexicon
#: of 8 words (so triphones repeat), a small model, 3 steps; the run ends with the abx probe
#: (cells of at most 4 items, to keep the tests quick) instead of the speech probe. The audio
#: cache keeps float32 samples, so the probe encodes exactly what ``cpcframe embed`` reads.
TINY_QUICKSTART = ("data.dataset.speakers=3", "data.dataset.utterances_per_speaker=6",
                   "data.dataset.min_seconds=1.5", "data.dataset.max_seconds=2.0", "data.dataset.test_fraction=0.5",
                   "data.dataset.lexicon_size=8", "data.dataset.cache_dtype=float32", "data.batch_size=4", "model.encoder.hidden=32",
                   "model.context.hidden_size=32", "train.steps=3", "train.checkpoint_every=3",
                   "train.validate_every=0", 'probe={ name = "abx", max_size_group = 4, workers = 1 }')
GROUP = 4


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("abx")
    mp = pytest.MonkeyPatch()
    mp.setenv("CPCFRAME_CACHE", str(root / "cache"))
    try:
        assert main(run_args(QUICKSTART, root / "run", *TINY_QUICKSTART)) == 0
        yield root / "run", json.loads((root / "run" / "abx.json").read_text())
    finally:
        mp.undo()


@pytest.fixture
def run_dir(tiny_run, monkeypatch):
    monkeypatch.setenv("CPCFRAME_CACHE", str(tiny_run[0].parent / "cache"))
    return tiny_run[0]


def test_a_run_ending_with_the_abx_probe_records_errors_backend_and_convention(tiny_run, run_dir):
    report = tiny_run[1]
    assert list(report["errors"]) == CONDITIONS
    for condition in CONDITIONS:
        assert list(report["errors"][condition]) == ["cpc"]
        assert 0.0 <= report["errors"][condition]["cpc"] <= 1.0, report["errors"]
    assert report["backend"] == {"name": "libriabx2", "distribution": "zerospeech-libriabx2",
                                 "version": backends.get_backend("libriabx2").version()}
    assert report["frame_slicing"].startswith("libri-light: frames ceil(onset/step - 1/2)")
    assert report["frame_steps"] == {"cpc": 0.01} and report["options"]["max_size_group"] == GROUP
    assert report["frame_step_sources"]["cpc"] == "the encoder's downsampling 160 samples at 16000 Hz"
    assert report["level"] == "context" and report["utterances"].startswith("test split of data.dataset")
    # Items from the synthetic corpus's labels (named by its phones.txt), kept for other tools.
    items = read_item_file(run_dir / "abx.item")
    assert report["items"]["items"] == len(items) > 50 and report["items"]["speakers"] == 3
    assert report["items"]["utterances"] == 9 and "sil" not in {i.phone for i in items}
    assert {i.phone for i in items} <= {"iy", "ih", "eh", "ae", "aa", "ao", "uw", "ah", "m", "n", "s", "sh",
                                        "f", "z", "t"}
    assert 0 < report["items"]["with_frames"]["cpc"] <= len(items)
    # As the recipe's probe, its errors are also probe results.
    probe = json.loads((run_dir / "probe.json").read_text())
    assert probe == {f"abx/{c}": report["errors"][c] for c in CONDITIONS}


def test_cli_abx_prints_the_table_and_compare_shows_the_columns(run_dir, capsys):
    assert main(["abx", str(run_dir), "--baselines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    report = json.loads((run_dir / "abx.json").read_text())
    assert report["frame_steps"] == {"cpc": 0.01, "random_init": 0.01, "mfcc": 0.01}
    assert lines[0] == f"ABX error (%) of context features of {run_dir}: zerospeech-libriabx2 " \
                       f"{report['backend']['version']}"
    assert lines[1].split() == ["condition", *FEATURE_SETS]
    for line, condition in zip(lines[3:7], CONDITIONS):
        assert line.split() == [condition] + [f"{100 * report['errors'][condition][f]:.2f}" for f in FEATURE_SETS]
    assert "lower is better, 50 is chance" in lines[7]

    assert main(["compare", str(run_dir), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["abx/phone/across/mfcc"] == report["errors"]["phone/across"]["mfcc"]
    assert main(["compare", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "abx/triphone/within/cpc" in out.splitlines()[0] and "abx/phone/across/random_init" in out
    assert "(ABX errors in %: lower is better, 50 is chance)" in out


def test_latent_level_without_baselines(run_dir, capsys):
    assert main(["abx", str(run_dir), "--level", "latent", "--set", "baselines=false",
                 "--set", 'conditions=["phone/within"]']) == 0
    report = json.loads((run_dir / "abx.json").read_text())
    assert report["level"] == "latent" and list(report["errors"]) == ["phone/within"]
    assert list(report["errors"]["phone/within"]) == ["cpc"]
    assert "of latent features" in capsys.readouterr().out


def refused(argv, capfd) -> str:
    """Run the CLI on a bad input: exit status 2 and one line on stderr, no traceback (captured at
    the file descriptors, so a dependency's warning would count as a line)."""
    status = main(argv)
    out, err = capfd.readouterr()
    assert status == 2, (status, out[-2000:], err[-2000:])
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_a_wrong_frame_step_is_a_user_error(run_dir, capfd):
    err = refused(["abx", str(run_dir), "--frame-step", "0.02"], capfd)
    assert "ABX frame step mismatch: the features of " in err
    assert "(one per 10.00 ms), but the frame step is 20 ms (frame_step = 0.02)" in err


def test_an_item_past_the_end_of_its_features_is_a_frame_step_error(run_dir, tmp_path, capfd):
    # Features of the right length for their audio, but an item the features cannot hold (a step
    # wrong for the item file): one ending 5 s after the last item of a 1.5-2 s utterance.
    items = read_item_file(run_dir / "abx.item")
    last = max((i for i in items if i.file == items[0].file), key=lambda i: i.offset)
    lines = (run_dir / "abx.item").read_text().splitlines()
    late = f"{last.file} {last.offset:.4f} {last.offset + 5:.4f} a b c {last.speaker}"
    (tmp_path / "late.item").write_text("\n".join(lines + [late]) + "\n")
    err = refused(["abx", str(run_dir), "--items", str(tmp_path / "late.item"),
                   "--set", 'conditions=["triphone/within"]'], capfd)
    assert f"ABX frame step mismatch: an item of {last.file} ends at {last.offset + 5:.3f} s" in err
    assert "is the frame step right (--frame-step SECONDS)?" in err


def test_an_item_file_naming_utterances_without_audio_is_a_user_error(run_dir, tmp_path, capfd):
    items = (run_dir / "abx.item").read_text().splitlines()
    (tmp_path / "other.item").write_text("\n".join(items[:20] + ["999-1-0001 0.1 0.2 a b c 999"]) + "\n")
    err = refused(["abx", str(run_dir), "--items", str(tmp_path / "other.item")], capfd)
    assert "names 1 utterance(s) that have no audio, so no features" in err and "999-1-0001" in err


def test_audio_without_an_item_file_is_a_user_error(run_dir, tmp_path, capfd):
    err = refused(["abx", str(run_dir), "--audio", str(tmp_path)], capfd)
    assert f"ABX audio (--audio {tmp_path}) is the audio an item file names: give the item file too" in err


def test_a_corpus_without_phone_labels_is_a_user_error(run_dir, capfd):
    audio = next((run_dir.parent / "cache" / "synthetic_speech").glob("corpus-*")) / "audio"
    err = refused(["abx", str(run_dir), "--set", f'data.dataset={{ name = "librispeech", root = "{audio}" }}'], capfd)
    assert "ABX needs phone labels, and the train split of data.dataset 'librispeech' has none" in err


def test_unknown_options_and_a_missing_backend_are_user_errors(run_dir, capsys, monkeypatch):
    assert main(["abx", str(run_dir), "--set", "max_size_grup=3"]) == 2
    assert "probe.max_size_grup: unknown key (did you mean 'max_size_group'?)" in capsys.readouterr().err
    monkeypatch.setattr(backends.LibriABX2, "version", lambda self: None)
    assert main(["abx", str(run_dir)]) == 2
    assert "needs zerospeech-libriabx2, which is not installed: pip install 'cpcframe[audio,abx]'" in \
        capsys.readouterr().err


def test_per_file_export_mirrors_the_inputs_and_scores_the_same(run_dir, tmp_path, capsys):
    corpus = next((run_dir.parent / "cache" / "synthetic_speech").glob("corpus-*"))
    items = read_item_file(run_dir / "abx.item")
    keys = sorted({i.file for i in items})
    inputs = [next((corpus / "audio").rglob(f"{k}.flac")) for k in keys]
    out = tmp_path / "features"
    abx_encoding = ("--chunk", "64000")  # cpcframe abx's pieces (CPC_audio's), not the probe's window
    assert main(["embed", str(run_dir), *map(str, inputs), "--layout", "per-file", "--out", str(out),
                 *abx_encoding]) == 0
    assert main(["embed", str(run_dir), *map(str, inputs), "--out", str(tmp_path / "all.npz"), *abx_encoding]) == 0
    arrays, sidecar = load_per_file(out)
    assert sidecar["level"] == "context" and sidecar["frame_step"] == 0.01 and sidecar["layout"] == "per-file"
    for key, path in zip(keys, inputs):  # SPEAKER/CHAPTER/ID.npy, as the audio is laid out
        relative = path.relative_to(corpus / "audio").with_suffix(".npy")
        assert sidecar["files"][key] == relative.as_posix() and (out / relative).is_file()
    packed = load_features(tmp_path / "all.npz")
    assert set(arrays) == set(packed) == set(keys)
    assert all(np.array_equal(arrays[k], packed[k]) and arrays[k].ndim == 2 for k in keys)
    # The exported folder, scored by the dependency itself, gives the numbers of cpcframe abx. (With
    # no cell subsampled: which items the dependency samples depends on the order it lists files in.)
    assert main(["abx", str(run_dir), "--set", "max_size_group=1000", "--set", "max_x_across=1000"]) == 0
    report = json.loads((run_dir / "abx.json").read_text())
    direct = backends.get_backend("libriabx2").score(out, run_dir / "abx.item", 0.01, backends.CONDITIONS,
                                                     max_size_group=1000, max_x_across=1000, seed=0, device="cpu")
    for (context, speaker), value in direct.items():
        assert value == pytest.approx(report["errors"][f"{context}/{speaker}"]["cpc"], abs=1e-6)
    with pytest.raises(AssertionError):
        assert main(["embed", str(run_dir), str(inputs[0]), "--layout", "per-file",
                     "--out", str(tmp_path / "all.npz")]) == 0
    assert "is a file" in capsys.readouterr().err


@pytest.mark.skipif(not (REAL_DATA / "test_db").is_dir(), reason=f"no real LibriSpeech sample at {REAL_DATA}")
def test_real_librispeech_items_and_abx(tmp_path, capsys):
    out = tmp_path / "run"
    sets = (f"data.dataset.root={REAL_DATA / 'test_db'}", f"data.dataset.phone_labels={REAL_DATA / 'phone_labels.txt'}")
    assert main(run_args(TINY, out, *sets) + ["--no-probe"]) == 0
    assert main(["abx", str(out), "--baselines"]) == 0
    report = json.loads((out / "abx.json").read_text())
    # Only two of the nine utterances have labels here (4051-11218-0044 and 2911-12359-0007).
    assert report["items"]["utterances"] == 2 and report["items"]["speakers"] == 2
    assert report["items"]["items"] > 100 and report["utterances"] == "train split of data.dataset 'librispeech'"
    items = read_item_file(out / "abx.item")
    assert {i.file for i in items} == {"4051-11218-0044", "2911-12359-0007"}
    assert all(i.offset - i.onset >= 0.01 and round(i.onset * 100, 6).is_integer() for i in items)
    for condition in ("triphone/within", "phone/within", "phone/across"):
        assert set(report["errors"][condition]) == set(FEATURE_SETS)
        assert all(v is None or 0 <= v <= 1 for v in report["errors"][condition].values())
    assert "ABX error (%)" in capsys.readouterr().out
