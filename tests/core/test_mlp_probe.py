"""The MLP probe and the built-in probe classifiers (``linear``, ``mlp``)."""

from __future__ import annotations

import attrs
import pytest
import torch

from cpcframe import ProbeHarness, ProbeOptions, UserError
from cpcframe.probing.classifiers import LinearProbeClassifier, MLPProbeClassifier, result_name
from cpcframe.probing.classifier import accuracy
from cpcframe.probing.linear import LinearClassifier
from cpcframe.probing.mlp import MLPClassifier, MLPProbeConfig, fit_mlp_classifier, mlp

SMALL = MLPProbeConfig(hidden=32, epochs=30, batch_size=64, min_steps=0)


def xor(n: int, seed: int, scale: float = 1.0, offset: float = 0.0):
    """Two Gaussian features, class = whether their signs differ: no linear map does better than chance."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    return x * scale + offset, y


def test_mlp_learns_what_no_linear_probe_can():
    x, y = xor(1000, 0)
    xt, yt = xor(1000, 1)
    linear = LinearProbeClassifier((1e-4,), iterations=100).fit(x, y, 2)
    net = MLPProbeClassifier(SMALL).fit(x, y, 2)
    assert isinstance(linear, LinearClassifier) and isinstance(net, MLPClassifier)
    assert accuracy(linear, xt, yt) < 0.65
    assert accuracy(net, xt, yt) > 0.9
    assert accuracy(net, xt, yt) == net.accuracy(xt, yt)


def test_features_are_standardised_so_their_scale_does_not_matter():
    x, y = xor(1000, 0, scale=1e4, offset=-3e4)
    xt, yt = xor(1000, 1, scale=1e4, offset=-3e4)
    assert fit_mlp_classifier(x, y, 2, SMALL).accuracy(xt, yt) > 0.9


def test_seeded_and_leaves_the_global_rng_alone():
    x, y = xor(300, 0)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = fit_mlp_classifier(x, y, 2, SMALL, seed=5)
    assert torch.equal(torch.rand(3), before)
    b = fit_mlp_classifier(x, y, 2, SMALL, seed=5)
    c = fit_mlp_classifier(x, y, 2, SMALL, seed=6)
    assert torch.equal(a.logits(x), b.logits(x))
    assert not torch.equal(a.logits(x), c.logits(x))


def test_min_steps_trains_tiny_sets_enough():
    # 6 examples: one step per epoch, so 20 epochs alone would not fit them.
    x = torch.tensor([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1], [1.0, 1.0], [0.9, 0.9]])
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    clf = fit_mlp_classifier(x, y, 3, attrs.evolve(SMALL, min_steps=300))
    assert clf.accuracy(x, y) == 1.0


def test_architecture_is_amdims_mlp_classifier():
    layers = [type(m).__name__ for m in mlp(7, 3, MLPProbeConfig(hidden=16))]
    assert layers == ["Dropout", "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]


def test_bad_inputs_are_refused_with_shapes():
    with pytest.raises(ValueError, match=r"got \(4,\) and \(4,\)"):
        fit_mlp_classifier(torch.zeros(4), torch.zeros(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"classes must lie in \[0, 2\), got 0..2"):
        fit_mlp_classifier(torch.zeros(3, 2), torch.tensor([0, 1, 2]), 2)


def test_empty_test_set_gives_nan():
    clf = fit_mlp_classifier(*xor(50, 0), 2, SMALL)
    assert clf.accuracy(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)) != clf.accuracy(
        torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))  # NaN


@pytest.mark.parametrize("value, message", [((), "at least one"), (("mlp", "mlp"), "twice")])
def test_classifier_lists_name_at_least_one_classifier_once(value, message):
    with pytest.raises(ValueError, match=message):
        ProbeOptions(classifiers=value)
    assert ProbeOptions(classifiers=("linear", "mlp")).classifiers == ("linear", "mlp")


def test_result_names_and_unknown_classifiers():
    assert result_name("cpc", "linear") == "cpc" and result_name("random_init", "mlp") == "random_init_mlp"
    harness = ProbeHarness(None, None, seed=0, options=ProbeOptions(classifiers=("linear", "mpl")))
    with pytest.raises(UserError, match="unknown probe classifier 'mpl' \\(did you mean 'mlp'\\?\\)"):
        harness.classifiers()


def test_cross_validation_and_fixed_split_with_either_classifier():
    from cpcframe.probing.linear import cross_validate, fold_masks, train_test

    x, y = xor(400, 0)
    linear, net = LinearProbeClassifier((1e-4,), iterations=50), MLPProbeClassifier(SMALL)
    linear_cv = linear.cross_validate(x, y, 4, seed=3)
    assert linear_cv == cross_validate(x, y, 4, [1e-4], seed=3, validation_fraction=0.1, iterations=50)
    # The generic protocol (one fit per fold, on the same folds) for the MLP.
    masks = fold_masks(400, 4, torch.Generator().manual_seed(3))
    by_hand = [net.fit(x[~m], y[~m], 2, seed=3).accuracy(x[m], y[m]) for m in masks]
    assert net.cross_validate(x, y, 4, seed=3) == sum(by_hand) / 4
    assert sum(by_hand) / 4 > 0.85 > 0.65 > linear_cv
    assert masks.shape == (4, 400) and torch.equal(masks.sum(0), torch.ones(400, dtype=torch.long))
    xt, yt = xor(300, 1)
    assert accuracy(net.fit(x, y, 2, seed=3), xt, yt) > 0.85
    assert accuracy(linear.fit(x, y, 2, seed=3), xt, yt) == train_test(x, y, xt, yt, [1e-4], seed=3, iterations=50)
    with pytest.raises(ValueError, match="cannot be split into 5 folds"):
        fold_masks(4, 5, torch.Generator())
