"""A plugin adds a probe classifier through ``register_probe_classifiers``: the kNN of
``tests/knn_classifier_plugin.py``, used by a probe run with ``classifiers = ["linear",
"knn"]`` and checked against a plain kNN written out here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import docs_probe_plugin
import knn_classifier_plugin
from cpcframe import ProbeHarness
from cpcframe.probing.classifier import accuracy
from cpcframe.probing.run import run_probe
from cpcframe.runs.loading import load_run
from probe_testing import registry_with, train_toy_run

K, TEMPERATURE = 5, 0.1
SETS = ["probe.name=group_id", 'probe.classifiers=["linear", "knn"]', f"probe.knn.k={K}",
        f"probe.knn.temperature={TEMPERATURE}", "probe.test_fraction=0.25",
        "data.dataset.has_test_split=false"]  # the probe holds out a share of the training split


def plain_knn(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """Weighted kNN, one test example at a time, in float64."""
    bank = x / np.linalg.norm(x, axis=1, keepdims=True)
    out = []
    for q in x_test:
        similarity = bank @ (q / np.linalg.norm(q))
        nearest = np.argsort(-similarity, kind="stable")[:k]
        votes = np.zeros(int(y.max()) + 1)
        for j in nearest:
            votes[y[j]] += np.exp(similarity[j] / temperature)
        out.append(int(np.argmax(votes)))
    return np.array(out)


@pytest.fixture(scope="module")
def registry():
    return registry_with(knn_classifier_plugin, docs_probe_plugin)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_toy_run(tmp_path_factory.mktemp("knn") / "run")


def test_a_probe_run_scores_the_plugins_knn_like_a_plain_knn(run, registry):
    results = run_probe(run, baselines=True, overrides=SETS, device="cpu", registry=registry)
    assert set(results["group"]) == {"cpc", "cpc_knn", "random_init", "random_init_knn"}
    # The same features the probe scored, through its own methods, then a plain kNN.
    loaded = load_run(run, registry=registry, overrides=SETS)
    harness = ProbeHarness(run, loaded.recipe, baselines=True, registry=registry)
    probe = loaded.recipe.probe.build(registry)
    models = harness.feature_models(loaded.model)
    (train, train_items), (test, test_items) = probe.splits(harness)
    with harness.eval_mode(*models.values()):
        x, y = probe.features(harness, models, train, train_items)
        x_test, y_test = probe.features(harness, models, test, test_items)
    assert len(y) + len(y_test) == len(train) and len(y_test) == round(0.25 * len(train))
    for name in models:
        predicted = plain_knn(x[name].double().numpy(), y.numpy(), x_test[name].double().numpy(), K, TEMPERATURE)
        assert results["group"][f"{name}_knn"] == pytest.approx(float((predicted == y_test.numpy()).mean()), abs=1e-7)


def test_the_knn_classifier_itself():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    y = torch.arange(60) % 3
    x = centres[y] + 0.5 * torch.randn(60, 2, generator=g)
    knn = knn_classifier_plugin.KNNClassifier(knn_classifier_plugin.KNNOptions(k=3))
    fitted = knn.fit(x, y, 3)
    assert accuracy(fitted, x + 0.01, y) == 1.0
    assert fitted.predict(x[:5]).tolist() == y[:5].tolist()
    assert knn.cross_validate(x, y, 4, seed=1) == 1.0  # the generic protocol: one fit per fold
    # k larger than the training set: every example votes.
    assert knn_classifier_plugin.KNNClassifier(knn_classifier_plugin.KNNOptions(k=100)).fit(
        x[:4], y[:4], 3).predict(x[:2]).shape == (2,)


def test_a_misspelt_classifier_is_caught_when_the_recipe_is_read(run, registry):
    from cpcframe.errors import RecipeError

    with pytest.raises(RecipeError, match=r"probe\.classifiers\[1\]: unknown probe classifier 'knnn' "
                                          r"\(did you mean 'knn'\?\)"):
        run_probe(run, overrides=["probe.name=group_id", 'probe.classifiers=["linear", "knnn"]'],
                  device="cpu", registry=registry)
