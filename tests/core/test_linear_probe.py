"""The shared linear evaluation (``cpcframe.probing.linear``): fits, standardisation, folds."""

from __future__ import annotations

import torch

from cpcframe.probing.linear import cross_validate, fit, train_test


def blobs(n_per_class: int, classes: int, dim: int, spread: float, seed: int):
    """Gaussian blobs around random class centres: ``(N, dim)`` features, ``(N,)`` labels."""
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(classes, dim, generator=g)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim, generator=g)
    return x, y


def test_separable_classes_are_learnt_and_noise_is_not():
    x, y = blobs(40, 4, 8, 0.5, seed=0)
    x_test, y_test = blobs(40, 4, 8, 0.5, seed=0)
    assert train_test(x, y, x_test, y_test, [1e-4]) == 1.0
    # Labels independent of the features: chance level (4 classes) on held-out data.
    g = torch.Generator().manual_seed(1)
    noise, noise_test = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    shuffled = torch.randint(0, 4, (400,), generator=g)
    acc = train_test(noise, shuffled, noise_test, torch.randint(0, 4, (400,), generator=g), [1e-2])
    assert 0.15 < acc < 0.4


def test_predictions_do_not_depend_on_feature_scale_or_offset():
    x, y = blobs(30, 3, 5, 2.0, seed=2)
    train = torch.ones(1, len(y), dtype=torch.bool)
    l2 = torch.tensor([1e-3])
    plain = fit(x, y, train, l2, 3).predict(x)
    scaled = fit(1000 * x + 7, y, train, l2, 3).predict(1000 * x + 7)
    assert torch.equal(plain, scaled)


def test_models_fitted_together_equal_models_fitted_alone():
    x, y = blobs(25, 3, 6, 2.5, seed=3)
    g = torch.Generator().manual_seed(0)
    train = torch.rand(2, len(y), generator=g) < 0.7
    l2 = torch.tensor([1e-3, 1e-1])
    together = fit(x, y, train, l2, 3, iterations=200).logits(x)
    for m in range(2):
        alone = fit(x, y, train[m:m + 1], l2[m:m + 1], 3, iterations=200).logits(x)[0]
        # Same optimum; L-BFGS's joint line search stops at a slightly different point.
        torch.testing.assert_close(together[m].softmax(-1), alone.softmax(-1), atol=5e-3, rtol=0)


def test_stronger_penalty_shrinks_the_weights():
    x, y = blobs(30, 3, 6, 1.0, seed=4)
    train = torch.ones(2, len(y), dtype=torch.bool)
    models = fit(x, y, train, torch.tensor([1e-4, 1.0]), 3)
    norms = models.weight.pow(2).sum((1, 2))
    assert norms[1] < 0.1 * norms[0]


def test_cross_validation_scores_held_out_folds():
    x, y = blobs(20, 2, 4, 0.3, seed=5)
    assert cross_validate(x, y, folds=5, l2_grid=[1e-4, 1e-2]) == 1.0
    # Half the labels flipped at random: no fold can beat chance by much.
    g = torch.Generator().manual_seed(6)
    assert cross_validate(torch.randn(200, 4, generator=g), torch.randint(0, 2, (200,), generator=g),
                          folds=5, l2_grid=[1e-2]) < 0.65
