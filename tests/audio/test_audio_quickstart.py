"""The speech quickstart, shortened: CPC must beat the same model at random init on both probes.

The full recipe (``recipes/quickstart_speech.toml``: batch 16, 800 steps) trains about
2.7x as many windows; this version keeps its corpus (16 speakers x 12 utterances of 2-3 s),
model, optimiser and probe, and trains 400 steps of batch 8: about 45 s on 2 idle CPU
cores. Measured: phones 67.3 % (random init 49.6), speakers 65.6 % (random init 45.3)
on 64 held-out utterances, so the 5-point margin asserted below is not luck.
"""

from __future__ import annotations

import json

from audiodata import QUICKSTART, run_args
from cpcframe.cli import main

SHORT = ("data.batch_size=8", "train.steps=400", "train.checkpoint_every=400", "probe.max_frames=5000")


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
    assert details["speaker"]["test_utterances"] == 64 and details["phone"]["classes"] == 16
    # Validated on the held-out utterances every 200 steps; contrastive learning shows
    # there as well: the InfoNCE accuracy on unseen speakers rises.
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    validated = [r for r in records if "val/acc" in r]
    assert [r["step"] for r in validated] == [200, 400]
    # (Measured: val/acc 0.28 at step 200, 0.47 at 400; 0.02 at the first training record.)
    assert validated[-1]["val/acc"] > validated[0]["val/acc"] and validated[-1]["val/acc"] > 0.3
    assert validated[-1]["val/loss"] < validated[0]["val/loss"]
