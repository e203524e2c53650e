"""Using a trained model: ``cpcframe.load`` / ``encode`` / ``embed`` and ``cpcframe embed``."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.build import build_model
from cpcframe.cli import main
from cpcframe.config.loader import load_recipe
from cpcframe.errors import UserError
from cpcframe.runs import RunDir, load_features, load_weights
from cpcframe.runs.embedding import read_views
from cpcframe.training.trainer import Trainer
from cpcframe.views import ViewSampler

from testpaths import ROOT, TESTS, cli_env

TOY = TESTS / "core" / "toy_recipe.toml"
LATENT, CONTEXT = 32, 16  # toy_conv channels, GRU hidden_size of the toy recipe


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from cpcframe.plugins import default_registry

    registry = default_registry()
    run = tmp_path_factory.mktemp("run")
    Trainer(load_recipe(TOY, registry, ["train.steps=2"]), registry, RunDir(run), progress=False).run()
    return run


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    files = {"a": rng.standard_normal(512).astype(np.float32), "b": rng.standard_normal(320).astype(np.float32)}
    for name, signal in files.items():
        np.save(tmp_path / f"{name}.npy", signal)
    np.save(tmp_path / "matrix.npy", np.zeros((4, 64), dtype=np.float32))  # not 1-D: unusable
    (tmp_path / "torn.npy").write_bytes(b"\x93NUMPY garbage")  # unreadable
    return tmp_path, files


def expected(model, signal, level):
    return model.encode(torch.from_numpy(signal)[None, None], level=level)[0].numpy()


def test_load_needs_only_recipe_and_weights(run_dir, tmp_path):
    portable = tmp_path / "portable"
    portable.mkdir()
    for name in ("recipe.toml", "model.safetensors"):
        shutil.copy(run_dir / name, portable / name)
    original, copy = cpcframe.load(run_dir), cpcframe.load(portable)
    saved = load_weights(run_dir / "model.safetensors")
    assert all(torch.equal(v, saved[k]) for k, v in copy.model.state_dict().items())
    assert not copy.model.training
    x = torch.randn(3, 1, 256)
    for level, dim in (("latent", LATENT), ("context", CONTEXT)):
        out = copy.encode(x, level=level)
        assert out.shape == (3, 256 // 16, dim)
        assert torch.equal(out, original.encode(x, level=level))
    # A trained model, not a fresh one: its features differ from a random init's.
    torch.manual_seed(123)
    fresh = build_model(copy.recipe, copy.registry).eval()
    assert not torch.equal(copy.encode(x), fresh.encode(x))


def test_cli_embed_npz_skips_bad_files(run_dir, inputs):
    folder, signals = inputs
    out = folder / "features.npz"
    names = ["a.npy", "matrix.npy", "b.npy", "torn.npy"]
    proc = subprocess.run([sys.executable, "-m", "cpcframe", "embed", str(run_dir),
                           *[str(folder / n) for n in names], "--out", str(out)],
                          env=cli_env(), capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "skipping" in proc.stderr and "matrix.npy" in proc.stderr and "torn.npy" in proc.stderr
    assert "unreadable: 2" in proc.stdout
    features = load_features(out)
    assert list(features) == ["a", "b"]
    model = cpcframe.load(run_dir)
    for name, signal in signals.items():
        assert features[name].shape == (signal.shape[0] // 16, CONTEXT)
        np.testing.assert_allclose(features[name], expected(model, signal, "context"), rtol=1e-5, atol=1e-6)


def test_cli_embed_safetensors_latent(run_dir, inputs, capsys):
    folder, signals = inputs
    out = folder / "z.safetensors"
    status = main(["embed", str(run_dir), str(folder / "a.npy"), str(folder / "b.npy"),
                   "--out", str(out), "--level", "latent", "--device", "cpu"])
    assert status == 0
    features = load_features(out)
    model = cpcframe.load(run_dir)
    assert sorted(features) == ["a", "b"]
    for name, signal in signals.items():
        assert features[name].dtype == np.float32
        np.testing.assert_allclose(features[name], expected(model, signal, "latent"), rtol=1e-5, atol=1e-6)
    assert "2 file(s)" in capsys.readouterr().out


def test_same_shapes_are_batched_with_equal_results(run_dir, tmp_path):
    rng = np.random.default_rng(1)
    signals = {f"s{i}": rng.standard_normal(256).astype(np.float32) for i in range(5)}
    for name, signal in signals.items():
        np.save(tmp_path / f"{name}.npy", signal)
    model = cpcframe.load(run_dir)
    paths = [tmp_path / f"{n}.npy" for n in signals]
    batched = model.embed_files(paths, batch_size=4).features
    single = model.embed_files(paths, batch_size=1).features
    assert list(batched) == list(signals)
    for name in signals:
        np.testing.assert_allclose(batched[name], single[name], rtol=1e-5, atol=1e-6)


def test_python_embed_api(run_dir, inputs):
    folder, signals = inputs
    model = cpcframe.load(run_dir)
    out = model.embed(folder / "a.npy")
    assert list(out) == ["a"]
    np.testing.assert_allclose(out["a"], expected(model, signals["a"], "context"), rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="matrix.npy"):
        model.embed(folder / "matrix.npy")


@pytest.mark.parametrize("case", ["bad_suffix", "missing", "directory", "duplicate", "nothing_usable"])
def test_embed_user_errors_exit_2(run_dir, inputs, case, capsys):
    folder, _ = inputs
    out = str(folder / "f.npz")
    args = {
        "bad_suffix": [str(folder / "a.npy"), "--out", str(folder / "f.txt")],
        "missing": [str(folder / "nope.npy"), "--out", out],
        "directory": [str(folder), "--out", out],
        "duplicate": [str(folder / "a.npy"), str(_copy_to(folder, "other", "a.npy")), "--out", out],
        "nothing_usable": [str(folder / "torn.npy"), "--out", out],
    }[case]
    assert main(["embed", str(run_dir), *args, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cpcframe: error: ") or "skipping" in err
    assert "Traceback" not in err
    assert not (folder / "f.npz").exists()


def _copy_to(folder, sub, name):
    (folder / sub).mkdir()
    return shutil.copy(folder / name, folder / sub / name)


def test_sampler_without_inference_views_is_a_user_error(tmp_path):
    class NoFiles(ViewSampler):
        def sample(self, example, generator):
            return (example.data,)

    (tmp_path / "x.bin").write_bytes(b"1")
    with pytest.raises(UserError, match="does not implement ViewSampler.inference_views"):
        list(read_views(NoFiles(), [tmp_path / "x.bin"]))


# ---- the modality plugins: a tiny run of each, then embed a file of its kind -----------------

def _tiny_run(tmp_path, recipe_name, overrides):
    from cpcframe.plugins import default_registry

    registry = default_registry()
    recipe = load_recipe(ROOT / "recipes" / recipe_name, registry, overrides)
    run = tmp_path / "run"
    Trainer(recipe, registry, RunDir(run), progress=False).run()
    return run


TEXT = """The cat sat on the mat. It was a sunny day, and the cat was happy.

A dog came by. The dog barked twice! Then it ran away, and the cat slept."""


def test_embed_text_file_from_a_tiny_text_run(tmp_path):
    pytest.importorskip("tokenizers")
    run = _tiny_run(tmp_path, "quickstart_text.toml", [
        "train.steps=2", "data.batch_size=4", "data.dataset.num_documents=24", "train.log_every=1"])
    assert (run / "tokenizer").is_dir()  # the run's own tokenizer, read back by inference_views
    text = tmp_path / "story.txt"
    text.write_text(TEXT, encoding="utf-8")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    out = tmp_path / "features.npz"
    assert main(["embed", str(run), str(text), str(tmp_path / "empty.txt"), "--out", str(out),
                 "--device", "cpu"]) == 0
    features = load_features(out)
    assert list(features) == ["story"]  # the empty file is skipped
    assert features["story"].shape == (5, 128)  # one context vector per sentence (GRU 128)
    model = cpcframe.load(run)
    [(key, view)] = model.view_sampler().inference_views(text, run_dir=run)
    assert view["ids"].shape[0] == 5 and bool(view["mask"].any(-1).all())
    batched = {k: v[None] for k, v in view.items()}
    np.testing.assert_allclose(features["story"], model.encode(batched)[0].numpy(), rtol=1e-5, atol=1e-6)
    z = model.embed(text, level="latent")["story"]
    assert z.shape == (5, 128)  # sentence embeddings (sentence_conv dim 128)


def test_embed_audio_files_from_a_tiny_audio_run(tmp_path):
    sf = pytest.importorskip("soundfile")
    run = _tiny_run(tmp_path, "quickstart_speech.toml", [
        "train.steps=2", "data.batch_size=4", "data.views.window=3200", "train.log_every=1",
        "data.dataset.speakers=4", "data.dataset.utterances_per_speaker=2",
        "data.dataset.min_seconds=0.5", "data.dataset.max_seconds=0.8"])
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "one.wav", wave, 16000, subtype="FLOAT")  # exact samples
    sf.write(tmp_path / "two.flac", wave[:8000], 16000)
    out = tmp_path / "features.safetensors"
    assert main(["embed", str(run), str(tmp_path / "one.wav"), str(tmp_path / "two.flac"),
                 "--out", str(out), "--device", "cpu"]) == 0
    features = load_features(out)
    assert features["one"].shape == (100, 128) and features["two"].shape == (50, 128)  # 10 ms latents
    model = cpcframe.load(run)
    # By default a file is encoded in pieces of the training window (as the speech probe does).
    pieces = torch.from_numpy(wave).reshape(5, 1, 3200)  # 16000 samples = 5 windows of 3200
    expected_c = model.encode(pieces).reshape(100, 128).numpy()
    np.testing.assert_allclose(features["one"], expected_c, rtol=1e-4, atol=1e-5)
    whole = model.encode(torch.from_numpy(wave)[None, None])[0].numpy()
    np.testing.assert_allclose(model.embed(tmp_path / "one.wav", chunk=0)["one"], whole, rtol=1e-4, atol=1e-5)
    assert model.embed(tmp_path / "two.flac", level="latent")["two"].shape == (50, 128)


def test_torn_weights_are_a_user_error(run_dir, inputs, tmp_path, capsys):
    folder, _ = inputs
    torn = tmp_path / "torn_run"
    shutil.copytree(run_dir, torn)
    weights = torn / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # as a copy cut short
    with pytest.raises(UserError, match="cannot read weights .*model.safetensors"):
        cpcframe.load(torn)
    assert main(["embed", str(torn), str(folder / "a.npy"), "--out", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err
    assert "cannot read weights" in err and "Traceback" not in err
