"""``cpcframe shard --segment N`` cuts long recordings at LibriLight-style voice-activity
spans (``KEY.json`` beside ``KEY.flac``, ``"voice_activity": [[start, end], ...]`` in
seconds), on a synthetic LibriSpeech-layout corpus written in the test."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("webdataset")

from audiodata import TINY, run_args, write_utterance  # noqa: E402
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


def test_cut_shards_keep_their_phone_labels_and_the_speech_probe_reads_them(tmp_path):
    """Pieces (voice-activity ones and fixed ones) carry their 10 ms phone frames, aligned
    with their samples: on cut shards the speech probe's MFCC baseline still tells tone
    from noise frame by frame, which misaligned labels would not allow."""
    from test_audio_probe import write_labelled_corpus

    root, phones = tmp_path / "corpus", tmp_path / "phones.txt"
    write_labelled_corpus(root, phones, frames=300)  # 12 utterances of 3 s, labels one frame short
    for i, path in enumerate(sorted(root.rglob("*.flac"))):
        if i % 2:  # half with voice activity (not on 10 ms frames: snapped), half cut in fixed pieces
            path.with_suffix(".json").write_text(json.dumps({"voice_activity": [[0.0513, 1.0], [1.6, 2.99]]}))
    out = tmp_path / "shards"
    sets = [f"data.dataset.root={root}", f"data.dataset.phone_labels={phones}"]
    assert main(["shard", str(TINY), "--out", str(out), "--segment", str(RATE - 50), "--shard-items", "4",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    index = json.loads((out / "index.json").read_text())
    assert index["attributes"]["label_hop"] == 160 and index["vad_cut"] == 6

    registry = default_registry()
    original = build_dataset(load_recipe(TINY, registry, sets), registry)
    sharded = build_dataset(load_recipe(TINY, registry, ["data.dataset.name=shards", f"data.dataset.root={out}"]),
                            registry)
    starts = {}
    for i, key in enumerate(sharded.keys):
        piece, source = sharded[i], original[original.keys.index(key.split("/")[0])]
        whole = source.data[0]
        n = piece.data.shape[-1]
        # where the piece starts in its recording: a multiple of the hop
        a = next(a for a in range(0, whole.shape[0] - n + 1, 160) if torch.equal(whole[a:a + n], piece.data[0]))
        starts[key] = a
        assert piece.labels is not None and torch.equal(piece.labels, source.labels[a // 160:(a + n) // 160])
    assert starts["31-7-0001/0000"] == 800 and sharded[sharded.keys.index("31-7-0001/0000")].data.shape[-1] == 15200
    assert starts["31-7-0000/0001"] == 15840  # fixed pieces of 15950 -> 15840 samples (99 frames)

    run = tmp_path / "run"
    assert main(run_args(TINY, run, "data.dataset.name=shards", f"data.dataset.root={out}", "train.steps=2",
                         "probe.test_fraction=0.25")) == 0
    results = json.loads((run / "probe.json").read_text())
    assert set(results) == {"phone", "speaker"} and results["phone"]["mfcc"] > 0.9
