"""The paper's audio model (recipes/cpc_librispeech.toml at full width: 5 strided
convolutions of 512 channels, GRU 256, K = 12, 128 negatives, Adam 2e-4) leaves InfoNCE's
chance plateau within 40 steps on a small synthetic corpus (issue 17, part 1).

Only the corpus, the window (0.2 s = 20 latents instead of 1.28 s) and the step count are
changed. Measured (benchmarks/plateau.py, AMD EPYC, 1 thread): mean accuracy over 10 steps
above 5x chance from step 29, 0.05 at step 40 (chance 1/129 = 0.0078); the recipe as it was
(score summed over channels, raw waveform) stayed at 0.025 through 100 steps. About 20 s
of training on an idle core.
"""

from __future__ import annotations

import json

from audiodata import LIBRISPEECH_RECIPE
from cpcframe.config.loader import load_recipe
from cpcframe.plugins import default_registry
from cpcframe.runs import RunDir
from cpcframe.training.trainer import Trainer

STEPS = 40
CORPUS = ("data.dataset.name=synthetic_speech", "data.dataset.speakers=8",
          "data.dataset.utterances_per_speaker=6", "data.dataset.min_seconds=2.0",
          "data.dataset.max_seconds=3.0", "data.num_workers=0", "train.validate_every=0",
          "train.device=cpu", "data.views.window=3200", f"train.steps={STEPS}", "train.log_every=5",
          f"train.checkpoint_every={STEPS}", "train.plateau_steps=30", "train.threads=1")


def test_paper_model_leaves_chance_within_40_steps(tmp_path):
    registry = default_registry()
    recipe = load_recipe(LIBRISPEECH_RECIPE, registry, CORPUS)
    assert recipe.model.encoder.config.hidden == 512 and recipe.model.critic.config.steps == 12
    summary = Trainer(recipe, registry, RunDir(tmp_path), progress=False).run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    chance = 1 / (recipe.loss.num_negatives + 1)
    last10 = (records[-1]["acc"] + records[-2]["acc"]) / 2  # steps 31..40
    assert records[0]["acc"] < 3 * chance  # it starts at chance
    assert last10 > 5 * chance, [round(r["acc"], 4) for r in records]
    assert summary.learning["status"] == "learning"
