"""A speech model leaves the lab: export, model card, and the s3prl upstream contract.

The contract is s3prl's (``s3prl/upstream/interfaces.py``, ``s3prl/upstream/example/expert.py``,
``s3prl/downstream/runner.py`` of s3prl 0.4): ``UpstreamExpert(ckpt=..., model_config=...,
refresh=...)`` is built from the repository's folder put on ``sys.path``; ``forward`` takes
a list of unpadded 1-D 16 kHz waveforms and returns a dict of padded ``(B, T, D)``
features, ``hidden_states`` a list of them that the ``Featurizer`` stacks for its
weighted sum (so one shape); ``get_downsample_rates(key)`` gives samples per frame, and
the ``Featurizer`` cuts item i to ``round(len_i / rate)`` frames of a padded batch whose
length is within ``TOLERABLE_SEQLEN_DIFF`` (5) of ``round(max_len / rate)``.

Where s3prl is importable (``pip install --no-deps --target DIR s3prl`` and
``CPCFRAME_TEST_S3PRL=DIR``), the exported folder is also loaded by s3prl's own runner
code for Hub upstreams (``Runner._get_upstream``, ``Runner._get_featurizer``), with only
what the runner imports for training stubbed, and its features checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

import cpcframe
from cpcframe.cli import main
from cpcframe.config.loader import dump_recipe, load_recipe
from cpcframe.export.bundle import export_run
from cpcframe.export.layout import ExportDir
from cpcframe.runs import RunDir, save_weights

from audiodata import LIBRISPEECH_RECIPE, QUICKSTART, run_args
from exporting import front_matter, markdown_tables, publish_to_cache, table_with
from testpaths import cli_env

#: The speech quickstart made tiny: 4 speakers x 6 utterances of 0.5-1 s, 4 steps, probes
#: on 500 frames (seconds on 2 cores); its probe table is what the card must show.
SHORT = ("data.dataset.speakers=4", "data.dataset.utterances_per_speaker=6", "data.dataset.min_seconds=0.5",
         "data.dataset.max_seconds=1.0", "data.views.window=1600", "data.batch_size=4", "train.steps=4",
         "train.validate_every=0", "probe.max_frames=500", "probe.iterations=10",
         "loss.num_negatives=32")  # 4 windows of 10 latents: at most 39 negatives
LENGTHS = (16000, 12345, 8000, 16000, 3210)  # two of equal length: encoded together
HOP = 160
S3PRL_TOLERABLE_SEQLEN_DIFF = 5


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """``(run_dir, export_dir)`` of the shortened speech quickstart (encoder and GRU of 128)."""
    base = tmp_path_factory.mktemp("speech")
    run = base / "run"
    assert main(run_args(QUICKSTART, run, *SHORT)) == 0
    out = base / "quickstart_speech"
    assert main(["export", str(run), str(out), "--repo-id", "org/cpc-speech"]) == 0
    return run, out


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory):
    """``(run_dir, export_dir)`` of the paper's architecture (z 512-d, c 256-d), untrained:
    the widths differ, so ``hidden_states`` cannot hold both levels."""
    from cpcframe.build import build_model
    from cpcframe.plugins import default_registry

    registry = default_registry()
    base = tmp_path_factory.mktemp("paper")
    recipe = load_recipe(LIBRISPEECH_RECIPE, registry)
    run = RunDir(base / "run")
    run.root.mkdir()
    run.recipe.write_text(dump_recipe(recipe))
    torch.manual_seed(0)
    save_weights(run.weights, build_model(recipe, registry))
    return run.root, export_run(run.root, base / "cpc_librispeech").folder


def load_expert(folder):
    """``expert.py`` of an exported folder, imported as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"expert_{abs(hash(str(folder)))}", folder / "expert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def waves(lengths=LENGTHS, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=g) for n in lengths]


# ---- export, load, card ---------------------------------------------------------------------
def test_the_export_loads_to_the_same_features(quickstart, tmp_path):
    run, out = quickstart
    original, copy = cpcframe.load(run), cpcframe.load(out)
    x = torch.randn(2, 1, 4000)
    for level in ("latent", "context"):
        assert torch.equal(copy.encode(x, level=level), original.encode(x, level=level))
    soundfile.write(tmp_path / "utt.wav", 0.1 * np.random.default_rng(0).standard_normal(8000), 16000)
    np.testing.assert_array_equal(copy.embed(tmp_path / "utt.wav")["utt"], original.embed(tmp_path / "utt.wav")["utt"])


def test_the_quickstart_card_renders_its_probe_table(quickstart):
    run, out = quickstart
    card = ExportDir(out).card.read_text()
    assert "- s3prl" in front_matter(card) and "- audio" in front_matter(card)
    tables = markdown_tables(card)
    header, rows = table_with(tables, "task")
    results = json.loads((run / "probe.json").read_text())
    assert header == ["task", "cpc", "random_init", "mfcc"] and set(rows) == {"phone", "speaker"}
    for task, scores in results.items():
        assert rows[task][1:] == [f"{100 * scores[c]:.1f}" for c in header[1:]]
    _, training = table_with(tables, "setting")
    assert training["steps"][1] == "4" and "`synthetic_speech`" in training["dataset"][1]
    assert "`speakers = 4`" in training["dataset"][1] and "`window = 1600`" in training["views"][1]
    _, keys = table_with(tables, "key")
    assert set(keys) == {"`hidden_states`", "`latent`", "`context`", "`last_hidden_state`"}
    assert "-u org/cpc-speech --upstream_model_name model.safetensors" in card
    _, files = table_with(tables, "file")
    assert files["`probe_speech_details.json`"][1] == "what a probe keeps beyond its accuracies"
    assert "(2, 1, 640) -> (2, 4, 128)" in card
    requirements = ExportDir(out).requirements.read_text().splitlines()
    assert f"cpcframe[audio]>={cpcframe.__version__}" in requirements


# ---- the s3prl contract -------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["quickstart", "paper_model"])
def test_upstream_expert_follows_the_s3prl_contract(which, request):
    run, out = request.getfixturevalue(which)
    expert_module = load_expert(out)
    # As s3prl's runner builds a Hub upstream: ckpt names a file in the folder (-k/--upstream_model_name).
    upstream = expert_module.UpstreamExpert(ckpt=str(out / "model.pt"), model_config=None, refresh=False)
    assert isinstance(upstream, torch.nn.Module)
    reference = cpcframe.load(run)
    wavs = waves()
    upstream.eval()
    with torch.no_grad():
        result = upstream(wavs)
    widths = {"latent": reference.model.encoder.output_dim, "context": reference.model.context.output_dim}
    frames = [n // HOP for n in LENGTHS]
    longest = max(frames)
    assert set(result) == {"hidden_states", "last_hidden_state", "latent", "context"}
    for key in result:
        assert upstream.get_downsample_rates(key) == HOP
    for level, width in widths.items():
        assert result[level].shape == (len(wavs), longest, width)
    hidden = result["hidden_states"]
    expected_names = ("latent", "context") if widths["latent"] == widths["context"] else ("context",)
    assert upstream.hidden_state_names == expected_names
    assert len({h.shape for h in hidden}) == 1  # s3prl stacks them for its weighted sum
    assert all(h is result[n] for h, n in zip(hidden, expected_names))
    assert torch.stack(hidden).shape == (len(hidden), len(wavs), longest, widths["context"])
    assert result["last_hidden_state"] is result["context"]
    # Each item: exactly its unpadded encoding, then zeros.
    for i, wav in enumerate(wavs):
        for level in ("latent", "context"):
            alone = reference.encode(wav[None, None], level=level)[0]
            assert alone.shape[0] == frames[i]
            torch.testing.assert_close(result[level][i, :frames[i]], alone, rtol=1e-5, atol=1e-5)
            assert not result[level][i, frames[i]:].any()
    # s3prl's Featurizer.tolist rule: the padded length matches the longest input.
    assert abs(longest - round(max(LENGTHS) / HOP)) < S3PRL_TOLERABLE_SEQLEN_DIFF


def test_padding_would_change_features_so_items_are_encoded_by_length(quickstart):
    """The check above can fail: encoding the zero-padded batch (what s3prl's own upstreams
    do) changes the shorter items' features (the quickstart normalises each input)."""
    run, _ = quickstart
    reference = cpcframe.load(run)
    wavs = waves((16000, 8000))
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)[:, None]
    short = reference.encode(padded, level="context")[1, :8000 // HOP]
    assert not torch.allclose(short, reference.encode(wavs[1][None, None], level="context")[0], atol=1e-3)


def test_upstream_loads_from_a_hub_cache_snapshot(quickstart, tmp_path):
    """In the Hugging Face cache, expert.py is a link into blobs/: the expert must load the
    snapshot folder it was imported from, with or without s3prl's ckpt argument."""
    run, out = quickstart
    sha = publish_to_cache(out, "org/cpc-speech", tmp_path)
    snapshot = tmp_path / "models--org--cpc-speech" / "snapshots" / sha
    assert (snapshot / "expert.py").is_symlink()
    module = load_expert(snapshot)
    for upstream in (module.UpstreamExpert(), module.UpstreamExpert(ckpt=str(snapshot / "model.safetensors"))):
        wav = waves((4800,))
        with torch.no_grad():
            got = upstream(wav)["context"][0]
        torch.testing.assert_close(got, cpcframe.load(run).encode(wav[0][None, None])[0], rtol=1e-5, atol=1e-5)


def test_upstream_is_differentiable_and_follows_the_device(quickstart):
    _, out = quickstart
    upstream = load_expert(out).UpstreamExpert(ckpt=str(out))
    upstream.train()
    result = upstream([torch.randn(3200), torch.randn(4800)])
    sum(h.sum() for h in result["hidden_states"]).backward()  # s3prl -f fine-tunes the upstream
    grads = [p.grad for p in upstream.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert upstream.to(torch.float32)([torch.randn(1600, dtype=torch.float64)])["context"].dtype == torch.float32
    with pytest.raises(ValueError, match="1-D waveforms"):
        upstream([torch.randn(1, 1600)])


RUNNER = """
import json, os, sys
import torch
folder = sys.argv[1]
sys.path.append(folder)                   # s3prl's Runner._get_upstream, after snapshot_download
from expert import UpstreamExpert
upstream = UpstreamExpert(ckpt=os.path.join(folder, "model.safetensors"), model_config=None, refresh=False)
print(json.dumps({"hidden_state_names": list(upstream.hidden_state_names)}))
"""

#: s3prl's own Hub loading: ``Runner._get_upstream`` (``from_hf_hub``: snapshot_download,
#: ``sys.path``, ``from expert import UpstreamExpert``, ``UpstreamExpert(ckpt=..., ...)``) and
#: ``Runner._get_featurizer`` (its weighted-sum ``Featurizer``). What the runner module
#: imports for training only (tensorboardX, the upstream zoo ``s3prl.hub``, and the
#: ``HfFolder``/``Repository`` that huggingface_hub 1.0 removed) is stubbed, and
#: ``snapshot_download`` returns the exported folder instead of downloading it.
S3PRL_RUNNER = """
import argparse, json, os, sys, types
import torch
folder, out = sys.argv[1], sys.argv[2]
sys.modules.setdefault("tensorboardX", types.SimpleNamespace(SummaryWriter=object))
sys.modules["s3prl.hub"] = types.ModuleType("s3prl.hub")
import huggingface_hub
for name in ("HfFolder", "Repository"):
    if not hasattr(huggingface_hub, name):
        setattr(huggingface_hub, name, object)
huggingface_hub.snapshot_download = lambda repo_id, revision=None, **kwargs: folder
from s3prl.downstream.runner import Runner
g = torch.Generator().manual_seed(0)
wavs = [0.1 * torch.randn(n, generator=g) for n in (16000, 12345, 8000)]
report = {}
for selection in ("hidden_states", "latent", "context"):
    runner = Runner.__new__(Runner)
    runner.init_ckpt = {}
    runner.args = argparse.Namespace(
        from_hf_hub=True, upstream="org/cpc-speech", upstream_revision=None, upstream_model_name="model.safetensors",
        upstream_refresh=False, upstream_model_config=None, device="cpu", upstream_trainable=False,
        upstream_feature_selection=selection, upstream_layer_selection=None, upstream_feature_normalize=False)
    runner.upstream = runner._get_upstream()
    runner.featurizer = runner._get_featurizer()
    featurizer = runner.featurizer.model
    with torch.no_grad():
        features = featurizer(wavs, runner.upstream.model(wavs))
    report[selection] = {"output_dim": featurizer.output_dim, "downsample_rate": featurizer.downsample_rate,
                         "layers": getattr(featurizer, "layer_num", 1), "lengths": [f.shape[0] for f in features]}
    torch.save(features, os.path.join(out, selection + ".pt"))
print(json.dumps(report))
"""


def _runner(folder, s3prl_path=None, out=None):
    env = cli_env()
    if s3prl_path:
        env["PYTHONPATH"] = os.pathsep.join([s3prl_path, env.get("PYTHONPATH", "")])
    script = RUNNER if out is None else S3PRL_RUNNER
    args = [sys.executable, "-c", script, str(folder)] + ([str(out)] if out else [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=folder.parent, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_runner_style_import_from_the_folder_on_sys_path(paper_model):
    _, out = paper_model
    assert _runner(out) == {"hidden_state_names": ["context"]}


def _s3prl_path() -> str | None:
    path = os.environ.get("CPCFRAME_TEST_S3PRL")
    if path:
        return path
    return "" if importlib.util.find_spec("s3prl") is not None else None


@pytest.mark.parametrize("which", ["quickstart", "paper_model"])
def test_s3prl_runner_loads_the_upstream_and_its_featurizer_takes_it(which, request, tmp_path):
    path = _s3prl_path()
    if path is None:
        pytest.skip("s3prl is not importable (pip install --no-deps --target DIR s3prl; CPCFRAME_TEST_S3PRL=DIR)")
    run, out = request.getfixturevalue(which)
    report = _runner(out, path, tmp_path)
    reference = cpcframe.load(run)
    widths = {"latent": reference.model.encoder.output_dim, "context": reference.model.context.output_dim}
    both = widths["latent"] == widths["context"]
    assert report["hidden_states"]["layers"] == (2 if both else 1)
    assert report["hidden_states"]["output_dim"] == widths["context"]
    for level in ("latent", "context"):
        assert report[level] == {"output_dim": widths[level], "downsample_rate": HOP, "layers": 1,
                                 "lengths": [100, 77, 50]}  # round(len / 160): s3prl's own cut
        features = torch.load(tmp_path / f"{level}.pt")
        g = torch.Generator().manual_seed(0)
        for n, feature in zip((16000, 12345, 8000), features):
            wav = 0.1 * torch.randn(n, generator=g)
            alone = reference.encode(wav[None, None], level=level)[0]
            torch.testing.assert_close(feature[:alone.shape[0]], alone, rtol=1e-5, atol=1e-5)
