"""The probe harness: datasets built once, the seeded random-init twin, eval mode, the
scoring of every named classifier (checked against the classifiers called directly) and
the details file."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import cpcframe
from cpcframe import ProbeHarness, ProbeOptions
from cpcframe.build import build_model
from cpcframe.config.loader import load_recipe
from cpcframe.probing.linear import cross_validate, fit_classifier
from cpcframe.probing.mlp import MLPProbeConfig, fit_mlp_classifier
from cpcframe.runs.layout import RunDir

from probe_testing import TOY, registry_with
from toy_plugin import ToySequences, ToySequencesConfig

SMALL_MLP = MLPProbeConfig(hidden=16, epochs=5, min_steps=0, batch_size=32)


class CountingData:
    """A plugin whose dataset warns (as a corpus with bad files does) and counts its builds."""

    def __init__(self):
        self.builds: list[str] = []

    @cpcframe.hookimpl
    def register_datasets(self, register):
        def build(config, *, request):
            """Toy sequences that warn."""
            self.builds.append(request.split)
            warnings.warn("1 unreadable file skipped")
            dataset = ToySequences(config, request.seed)
            dataset.test_split_available = True
            return dataset

        register("counted_toy", build, ToySequencesConfig)


@pytest.fixture
def recipe_and_registry():
    registry = registry_with()
    return load_recipe(TOY, registry), registry


def test_datasets_are_built_once_per_split_without_repeating_warnings(tmp_path):
    plugin = CountingData()
    registry = registry_with(plugin)
    recipe = load_recipe(TOY, registry, ["data.dataset.name=counted_toy"])
    harness = ProbeHarness(tmp_path, recipe, registry=registry, options=ProbeOptions())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # training already showed them
        train = harness.dataset("train")
        assert harness.dataset("train") is train and harness.has_test_split
        test = harness.dataset("test")
    assert harness.dataset("test") is test is not train
    assert plugin.builds == ["train", "test"]
    assert harness.view_sampler() is harness.view_sampler()
    everything = harness.dataset("train", min_length=0)  # a probe that picks its own items
    assert everything is not train and plugin.builds == ["train", "test", "train"]


def test_no_test_split_unless_the_dataset_says_so(tmp_path):
    registry = registry_with()
    recipe = load_recipe(TOY, registry, ["data.dataset.has_test_split=false"])
    assert not ProbeHarness(tmp_path, recipe, registry=registry, options=ProbeOptions()).has_test_split


def test_random_init_twin_is_seeded_as_in_0_1_0_and_leaves_the_rng_alone(recipe_and_registry):
    recipe, registry = recipe_and_registry
    torch.manual_seed(recipe.seed + 7919)
    reference = build_model(recipe, registry)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    harness = ProbeHarness(None, recipe, baselines=True, registry=registry, options=ProbeOptions())
    twin = harness.random_init()
    assert torch.equal(torch.get_rng_state(), before)
    assert not twin.training and harness.random_init() is twin
    for (name, a), (_, b) in zip(twin.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name
    model = build_model(recipe, registry)
    assert list(harness.feature_models(model)) == ["cpc", "random_init"]
    harness.baselines = False
    assert harness.feature_models(model, "amdim") == {"amdim": model}


def test_eval_mode_restores_every_models_own_mode(recipe_and_registry):
    recipe, registry = recipe_and_registry
    a, b = build_model(recipe, registry).train(), build_model(recipe, registry).eval()
    harness = ProbeHarness(None, recipe, registry=registry, options=ProbeOptions())
    with pytest.raises(RuntimeError):
        with harness.eval_mode(a, b):
            assert not a.training and not b.training and not a.encoder.training
            raise RuntimeError("a probe failed")
    assert a.training and a.encoder.training and not b.training


def clusters(n: int, seed: int, classes: int = 3, dim: int = 6):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    return torch.randn(classes, dim, generator=torch.Generator().manual_seed(0))[y] * 2 + torch.randn(
        n, dim, generator=g), y


def test_score_fits_every_named_classifier_on_every_feature_set():
    options = ProbeOptions(classifiers=("linear", "mlp"), l2=(1e-4, 1e-2), iterations=30, mlp=SMALL_MLP)
    harness = ProbeHarness(None, None, seed=3, options=options)
    (x, y), (xt, yt) = clusters(90, 1), clusters(60, 2)
    noise = torch.randn(90, 6, generator=torch.Generator().manual_seed(4))
    details: dict = {}
    scores = harness.score({"cpc": x, "random_init": noise}, y, {"cpc": xt, "random_init": xt}, yt,
                           details=details)
    assert list(scores) == ["cpc", "cpc_mlp", "random_init", "random_init_mlp"]
    for name, features in (("cpc", x), ("random_init", noise)):
        linear = fit_classifier(features, y, 3, (1e-4, 1e-2), seed=3, iterations=30)
        mlp = fit_mlp_classifier(features, y, 3, SMALL_MLP, seed=3)
        assert scores[name] == linear.accuracy(xt, yt)
        assert scores[f"{name}_mlp"] == mlp.accuracy(xt, yt)
        assert details[f"{name}_train_accuracy"] == linear.accuracy(features, y)
        assert details[f"{name}_mlp_train_accuracy"] == mlp.accuracy(features, y)
    assert scores["cpc"] > 0.9 and scores["random_init"] < 0.6  # clusters vs noise
    # num_classes is passed through: one more (empty) class changes the linear fit's problem.
    wider = harness.score({"cpc": x}, y, {"cpc": xt}, yt, num_classes=5)
    assert wider["cpc"] == fit_classifier(x, y, 5, (1e-4, 1e-2), seed=3, iterations=30).accuracy(xt, yt)


def test_cross_validate_uses_each_classifiers_protocol():
    options = ProbeOptions(classifiers=("linear", "mlp"), l2=(1e-3,), iterations=30, mlp=SMALL_MLP)
    harness = ProbeHarness(None, None, seed=2, options=options)
    x, y = clusters(80, 5)
    scores = harness.cross_validate({"cpc": x}, y, 4)
    assert scores["cpc"] == cross_validate(x, y, 4, (1e-3,), seed=2, iterations=30)
    assert set(scores) == {"cpc", "cpc_mlp"} and 0.0 <= scores["cpc_mlp"] <= 1.0


def test_encode_pools_every_model_over_a_stream_of_views(recipe_and_registry):
    recipe, registry = recipe_and_registry
    a, b = build_model(recipe, registry).eval(), build_model(recipe, registry).eval()
    harness = ProbeHarness(None, recipe, registry=registry, options=ProbeOptions(level="latent"))
    views = [torch.randn(3, 1, 256), torch.randn(2, 1, 512)]  # batches of different lengths
    out = harness.encode({"a": a, "b": b}, iter(views))
    assert out["a"].shape == (5, a.encoder.output_dim) and out["a"].dtype == torch.float32
    expected = torch.cat([a.encode(v, level="latent").mean(1) for v in views])
    torch.testing.assert_close(out["a"], expected)
    assert not torch.equal(out["a"], out["b"])


def test_write_details_beside_probe_json(recipe_and_registry, tmp_path):
    recipe, registry = recipe_and_registry
    harness = ProbeHarness(tmp_path, recipe, registry=registry, options=ProbeOptions())
    path = harness.write_details({"classes": 3}, "toy")
    assert path == RunDir(tmp_path).probe_details("toy") == tmp_path / "probe_toy_details.json"
    assert json.loads(path.read_text()) == {"classes": 3}
    assert ProbeHarness(None, recipe, registry=registry, options=ProbeOptions()).write_details({}, "x") is None


def test_probe_context_is_a_deprecated_name_of_the_harness():
    with pytest.warns(DeprecationWarning, match="ProbeHarness"):
        assert cpcframe.ProbeContext is ProbeHarness
