"""The speech quickstart, shortened: CPC must beat the same model at random init on both probes.

The full recipe (``recipes/quickstart_speech.toml``) trains longer on a larger corpus;
this version keeps its model, optimiser and probe and trims the corpus and the steps,
so that it still learns, in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json

from audiodata import QUICKSTART, run_args
from cpcframe.cli import main

SHORT = ("data.dataset.speakers=8", "train.steps=250", "train.checkpoint_every=250",
         "probe.max_frames=5000")


def test_short_quickstart_cpc_beats_random_init(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(run_args(QUICKSTART, out, *SHORT)) == 0
    printed = capsys.readouterr().out
    assert "probe speech on" in printed and "random_init" in printed
    results = json.loads((out / "probe.json").read_text())
    assert set(results) == {"phone", "speaker"}
    for task in ("phone", "speaker"):
        assert set(results[task]) == {"cpc", "random_init", "mfcc"}
        assert results[task]["cpc"] > results[task]["random_init"] + 0.05, (task, results)
    details = json.loads((out / "probe_speech_details.json").read_text())
    assert details["speaker"]["test_utterances"] == 32 and details["phone"]["classes"] == 16
