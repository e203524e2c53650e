"""A run written by cpcframe 0.1.0 still loads and gives the same features.

``fixtures/golden_run`` holds what a trained model needs, as that version wrote it:
the resolved ``recipe.toml`` and ``model.safetensors`` (plus the features it gave,
``expected.npz``; see ``fixtures/make_golden_run.py``). A change that renames a config key,
a parameter, or changes what the encoder computes breaks this test: keep old runs loading
(defaults for new keys, mapped names) or say so in the release notes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import cpcframe

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "fixtures" / "golden_run"
sys.path.insert(0, str(HERE / "fixtures"))
from make_golden_run import waveform  # noqa: E402


@pytest.mark.parametrize("backend", ["auto", "conv1d", "shifted_gemm"])
def test_old_run_loads_and_gives_the_same_features(tmp_path, backend):
    run = tmp_path / "run"
    shutil.copytree(GOLDEN, run)  # read-only use: a copy, as a user would have
    model = cpcframe.load(run, overrides=[f"model.encoder.conv_backend={backend}"])
    expected = np.load(GOLDEN / "expected.npz")
    for level in ("latent", "context"):
        got = model.encode(waveform(), level=level).numpy()
        np.testing.assert_allclose(got, expected[level], rtol=1e-4, atol=1e-5)
    assert model.recipe.model.encoder.config.hidden == 16


def test_old_recipe_misses_no_key_the_current_version_needs():
    text = (GOLDEN / "recipe.toml").read_text()
    assert "cpcframe 0.1.0" in text.splitlines()[0]
    assert "conv_backend" in text  # written when the fixture was made; later keys get defaults
