"""The options every probe shares: one base, renamed and retired keys of 0.1.0 recipes,
classifier names checked against the registry, and ``[probe.NAME]`` classifier tables."""

from __future__ import annotations

import importlib
import sys
import warnings

import attrs
import pytest

from cpcframe import ProbeOptions
from cpcframe.config.loader import dump_recipe, load_recipe, structure_recipe, recipe_to_data
from cpcframe.config.structure import Structurer, is_missing, unstructure

import knn_classifier_plugin
from probe_testing import registry_with
from testpaths import ROOT, TESTS

FIXTURE_0_1_0 = TESTS / "audio" / "fixtures" / "recipe_v0_1_0.toml"


def structure(cls, data, registry=None):
    s = Structurer()
    if registry is not None:
        s.registry = registry
    out = s.structure_class(cls, data, "probe")
    return out, [str(p) for p in s.problems]


@pytest.fixture(scope="module")
def registry():
    return registry_with(knn_classifier_plugin)


def test_the_built_in_probes_share_one_set_of_names(registry):
    shared = {f.name for f in attrs.fields(ProbeOptions)}
    assert {"level", "baselines", "classifiers", "l2", "iterations", "batch_size", "mlp"} <= shared
    for name in ("speech", "image_linear", "sentence_classification"):
        config = registry.get("probe", name).config
        assert issubclass(config, ProbeOptions), name
        assert shared <= {f.name for f in attrs.fields(config)}, name


def test_renamed_key_is_read_with_a_warning_naming_the_new_one():
    with pytest.warns(DeprecationWarning, match=r"probe\.max_iter is now probe\.iterations"):
        options, problems = structure(ProbeOptions, {"max_iter": 50})
    assert not problems and options.iterations == 50
    options, problems = structure(ProbeOptions, {"max_iter": 50, "iterations": 60})
    assert is_missing(options) and problems == ["probe.max_iter: the old name of 'iterations'; set only 'iterations'"]


def test_a_single_l2_is_a_grid_of_one():
    options, _ = structure(ProbeOptions, {"l2": 0.001})
    assert options.l2 == (0.001,) and ProbeOptions(l2=0.5).l2 == (0.5,)
    options, _ = structure(ProbeOptions, {"l2": [0, 1e-3]})
    assert options.l2 == (0.0, 1e-3)
    assert unstructure(options)["l2"] == [0.0, 1e-3]
    for bad, message in (([], "at least one penalty"), ([-1.0], ">= 0"), ("x", "expected float or tuple")):
        options, problems = structure(ProbeOptions, {"l2": bad})
        assert is_missing(options) and message in problems[0], problems


def test_retired_keys_are_ignored_with_a_warning():
    @attrs.frozen(kw_only=True)
    class Old(ProbeOptions):
        __cpcframe_retired__ = {"lr": "the linear classifier is fitted by L-BFGS"}

    with pytest.warns(DeprecationWarning, match=r"probe\.lr is no longer used \(the linear classifier"):
        options, problems = structure(Old, {"lr": 0.01, "iterations": 5})
    assert not problems and options == Old(iterations=5)


def test_classifier_names_are_checked_against_the_registry(registry):
    options, problems = structure(ProbeOptions, {"classifiers": ["linear", "knnn"]}, registry)
    assert is_missing(options)
    assert problems == ["probe.classifiers[1]: unknown probe classifier 'knnn' (did you mean 'knn'?)"]
    _, problems = structure(ProbeOptions, {"classifiers": ["linear", "linear"]}, registry)
    assert problems == ["probe.classifiers: names a classifier twice: ['linear', 'linear']"]
    options, problems = structure(ProbeOptions, {"classifiers": ["mlp", "knn"]}, registry)
    assert not problems and options.classifiers == ("mlp", "knn")


def test_a_plugin_classifier_takes_its_options_from_its_own_table(registry):
    data = {"classifiers": ["linear", "knn"], "knn": {"k": 5}, "mlp": {"hidden": 8}}
    options, problems = structure(ProbeOptions, data, registry)
    assert not problems
    assert options.classifier_options == {"knn": knn_classifier_plugin.KNNOptions(k=5)}
    assert options.mlp.hidden == 8
    written = unstructure(options)  # back in place: [probe.knn], no extra key
    assert written["knn"] == {"k": 5, "temperature": 0.07} and "classifier_options" not in written
    again, problems = structure(ProbeOptions, written, registry)
    assert not problems and again == options


@pytest.mark.parametrize("data, problem", [
    ({"classifiers": ["knn"], "knn": {"k": 0}}, "probe.knn.k: must be > 0, got 0"),
    ({"classifiers": ["knn"], "knn": {"kk": 3}}, "probe.knn.kk: unknown key (did you mean 'k'?)"),
    ({"classifiers": ["knn"], "knnn": {"k": 3}},
     "probe.knnn: unknown key: not an option, nor a probe classifier with options (did you mean 'knn'?)"),
    ({"classifiers": ["linear"], "knn": {"k": 3}}, "probe: has options for knn, which classifiers = ['linear']"),
    ({"iterationz": 3}, "probe.iterationz: unknown key (did you mean 'iterations'?)"),
])
def test_classifier_table_mistakes_are_located(registry, data, problem):
    options, problems = structure(ProbeOptions, data, registry)
    assert is_missing(options) and any(p.startswith(problem) for p in problems), problems


def test_a_probes_own_default_keeps_the_shared_checks_and_old_names():
    from cpcframe_text.probe import SentenceClassificationConfig

    assert SentenceClassificationConfig().iterations == 100 and ProbeOptions().iterations == 200
    assert SentenceClassificationConfig().level == "latent" and SentenceClassificationConfig().baselines
    with pytest.raises(ValueError, match="must be > 0"):
        SentenceClassificationConfig(iterations=0)
    with pytest.warns(DeprecationWarning):
        options, _ = structure(SentenceClassificationConfig, {"max_iter": 7})
    assert options.iterations == 7
    with pytest.raises(TypeError, match="tuple"):
        ProbeOptions.override("l2", [1e-3])


def test_a_0_1_0_probe_section_loads_and_round_trips(registry):
    with pytest.warns(DeprecationWarning, match="probe.max_iter is now probe.iterations"):
        recipe = load_recipe(FIXTURE_0_1_0, registry)
    probe = recipe.probe.config
    assert (probe.iterations, probe.l2, probe.classifiers, probe.mlp.hidden) == (100, (1e-4,), ("linear",), 1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # written with today's names
        again = structure_recipe(recipe_to_data(recipe), registry)
    assert again == recipe
    assert "iterations = 100" in dump_recipe(recipe) and "max_iter" not in dump_recipe(recipe)


def test_the_example_plugins_0_1_0_probe_keys_still_load():
    sys.path.insert(0, str(ROOT / "docs" / "example-plugin"))
    try:
        config = importlib.import_module("cpcframe_example_sensors.config").SensorActivityConfig
    finally:
        sys.path.remove(str(ROOT / "docs" / "example-plugin"))
    with pytest.warns(DeprecationWarning) as caught:
        options, problems = structure(config, {"steps": 40, "lr": 0.01, "weight_decay": 0.0, "level": "latent"})
    assert not problems and options.iterations == 40 and options.level == "latent"
    messages = " | ".join(str(w.message) for w in caught)
    assert "probe.steps is now probe.iterations" in messages and "probe.lr is no longer used" in messages
    assert "probe.weight_decay is no longer used" in messages


def test_plugins_shows_a_classifiers_section(capsys):
    from cpcframe.cli import main

    assert main(["plugins", "linear"]) == 0
    out = capsys.readouterr().out
    assert "# probe_classifier 'linear' from plugin" in out and "[probe]\nclassifiers = [\"linear\"]" in out
