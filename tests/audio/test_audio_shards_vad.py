"""``cpcframe shard --segment N`` cuts long recordings at LibriLight-style voice-activity
spans (``KEY.json`` beside ``KEY.flac``, ``"voice_activity": [[start, end], ...]`` in
seconds), on a synthetic LibriSpeech-layout corpus written in the test."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("webdataset")

from audiodata import TINY, write_utterance  # noqa: E402
from cpcframe.build import build_dataset  # noqa: E402
from cpcframe.cli import main  # noqa: E402
from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.plugins import default_registry  # noqa: E402
from cpcframe.shards.vad import vad_pieces  # noqa: E402

RATE, SECONDS = 16000, 4
VAD = [[0.1, 0.9], [1.0, 1.5], [2.2, 3.9]]


def test_voiced_spans_are_packed_into_pieces():
    # close spans merge (the pause kept), a long span is cut, a tiny piece is dropped
    assert vad_pieces([(0, 300), (400, 700), (2000, 2100), (3000, 5500)], 6000, 1000, 150) == \
        [(0, 700), (3000, 4000), (4000, 5000), (5000, 5500)]
    assert vad_pieces([(5900, 6500)], 6000, 1000, 50) == [(5900, 6000)]  # clipped to the recording
    assert vad_pieces([], 6000, 1000, 50) == []


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "librilight"
    keys = ["11-10-0000", "11-10-0001", "22-10-0000", "22-10-0001"]
    for i, key in enumerate(keys):
        path = write_utterance(root, key, RATE * SECONDS, freq=200 + 50 * i, seed=i)
        if i < 3:  # the last one has no voice-activity file: cut in fixed pieces
            path.with_suffix(".json").write_text(json.dumps({"voice_activity": VAD, "snr": 12.0}))
    return root


def test_shard_cuts_at_voice_activity(corpus, tmp_path, capsys):
    out = tmp_path / "shards"
    sets = ["--set", f"data.dataset.root={corpus}"]
    assert main(["shard", str(TINY), "--out", str(out), "--segment", str(RATE), "--shard-items", "2", *sets]) == 0
    assert "3 recordings cut at voice activity" in capsys.readouterr().err
    index = json.loads((out / "index.json").read_text())
    keys = [k for e in index["shards"] for k in e["keys"]]
    lengths = dict(zip(keys, (n for e in index["shards"] for n in e["lengths"])))
    # voiced samples (1600, 14400) | (16000, 24000) | (35200, 62400) -> 4 pieces; 4 x 1 s without VAD
    assert [lengths[f"11-10-0000/{i:04d}"] for i in range(4)] == [12800, 8000, 16000, 11200]
    assert [lengths[f"22-10-0001/{i:04d}"] for i in range(4)] == [RATE] * 4 and len(keys) == 16

    registry = default_registry()
    original = build_dataset(load_recipe(TINY, registry, [f"data.dataset.root={corpus}"]), registry)
    sharded = build_dataset(load_recipe(TINY, registry, ["data.dataset.name=shards",
                                                         f"data.dataset.root={out}"]), registry)
    whole = original[original.keys.index("11-10-0000")].data
    piece = sharded[keys.index("11-10-0000/0002")].data
    assert piece.shape[-1] == 16000 and (piece == whole[..., 35200:51200]).all()

    fixed = tmp_path / "fixed"
    assert main(["shard", str(TINY), "--out", str(fixed), "--segment", str(RATE), "--voice-activity", "none",
                 *sets]) == 0
    assert json.loads((fixed / "index.json").read_text())["items"] == 16
    assert all(n == RATE for e in json.loads((fixed / "index.json").read_text())["shards"] for n in e["lengths"])
