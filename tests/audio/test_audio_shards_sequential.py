"""``cpcframe shard`` reads ``librispeech`` with sequential access: each file decoded on
access, no sample cache built, and shards equal item for item to those written from the
cached dataset (keys, groups, samples, phone labels), split lists honoured, a corrupt and
a too-short file skipped and counted under the cached path's reasons."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

pytest.importorskip("webdataset")

from audiodata import TINY, write_speakers, write_utterance  # noqa: E402
from cpcframe import UnusableItem  # noqa: E402
from cpcframe.build import build_dataset  # noqa: E402
from cpcframe.cli import main  # noqa: E402
from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.plugins import default_registry  # noqa: E402
from cpcframe.shards.format import decode_example, safe_key  # noqa: E402
from cpcframe.shards.source import read_shard  # noqa: E402
from cpcframe.shards.writer import write_shards  # noqa: E402

SPEAKERS = {"7": 180.0, "303": 260.0, "41": 340.0}  # numeric speaker order differs from the text order


@pytest.fixture
def corpus(tmp_path):
    """12 good utterances of 3 speakers, one corrupt file, one shorter than a view
    window (1600 samples), phone labels for most, and a split list that leaves one out."""
    root = tmp_path / "LibriSpeech"
    keys = write_speakers(root, SPEAKERS, utterances=4, samples=4000)
    corrupt = root / "7" / "10" / "7-10-0099.flac"
    corrupt.write_bytes(b"fLaC" + bytes(range(256)) * 4)
    write_utterance(root, "41-11-0098", 800, seed=9)
    labels = tmp_path / "phones.txt"
    lines = [f"{k} " + " ".join(str((i + j) % 7) for j in range(4000 // 160)) for i, k in enumerate(keys[:-2])]
    lines.append(f"{keys[-2]} 1 2 x")  # malformed: that utterance has no labels
    labels.write_text("\n".join(lines) + "\n")
    split = tmp_path / "train_split.txt"
    chosen = [k for k in keys if k != keys[3]][::-1] + ["7-10-0099", "41-11-0098"]
    split.write_text("\n".join(chosen) + "\n")
    return root, labels, split


def shard_items(out):
    """``(key, group, data, labels)`` of every item of the corpus at ``out``, in order."""
    index = json.loads((out / "index.json").read_text())
    items = []
    for entry in index["shards"]:
        payloads = read_shard(out / entry["name"])
        for key, group in zip(entry["keys"], entry["groups"]):
            example = decode_example(key, payloads[safe_key(key)])
            assert example.group == group
            items.append((key, group, example.data, example.labels))
    return index, items


def test_sequential_shards_equal_cached_shards_without_a_cache(corpus, tmp_path, monkeypatch):
    root, labels, split = corpus
    cache = tmp_path / "cache"
    monkeypatch.setenv("CPCFRAME_CACHE", str(cache))
    sets = [f"data.dataset.root={root}", f"data.dataset.phone_labels={labels}",
            f"data.dataset.split_list={split}"]
    sequential = tmp_path / "sequential"
    with pytest.warns(UserWarning, match="malformed"):
        assert main(["shard", str(TINY), "--out", str(sequential), "--shard-items", "4", "--workers", "2",
                     *[a for s in sets for a in ("--set", s)]]) == 0
    assert not (cache / "audio").exists()  # nothing decoded ahead: no sample cache, no label arrays

    registry = default_registry()
    recipe = load_recipe(TINY, registry, sets)
    cached = tmp_path / "cached"
    with pytest.warns(UserWarning):
        write_shards(lambda: build_dataset(recipe, registry), cached, shard_items=4)
    assert (cache / "audio").is_dir()  # the random-access dataset did build its cache

    seq_index, seq_items = shard_items(sequential)
    ref_index, ref_items = shard_items(cached)
    assert len(ref_items) == 11  # 12 good utterances, one left out by the split list
    assert [i[0] for i in seq_items] == [i[0] for i in ref_items]
    assert [i[1] for i in seq_items] == [i[1] for i in ref_items]
    for (key, _, data, labs), (_, _, ref_data, ref_labs) in zip(seq_items, ref_items):
        assert data.dtype == ref_data.dtype == torch.float16 and data.shape == ref_data.shape == (1, 4000)
        assert torch.equal(data, ref_data), key
        assert (labs is None) == (ref_labs is None), key
        if labs is not None:
            assert labs.dtype == torch.int64 and torch.equal(labs, ref_labs), key
    assert sum(labs is not None for *_, labs in seq_items) == 9  # malformed and unlabelled ones have none
    assert seq_index["attributes"] == ref_index["attributes"]
    assert seq_index["attributes"]["group_names"] == ["7", "41", "303"]
    # the corrupt and the too-short file: skipped and counted as the cached dataset counts them
    assert seq_index["skipped"] == ref_index["skipped"] == {"unreadable": 1, "too_short": 1}
    assert sum(sum(e["skipped"].values()) for e in seq_index["shards"]) == 2


def test_a_file_unusable_on_access_raises_unusable_item(corpus, tmp_path, monkeypatch):
    root, _, _ = corpus
    monkeypatch.setenv("CPCFRAME_CACHE", str(tmp_path / "cache"))
    registry = default_registry()
    dataset = build_dataset(load_recipe(TINY, registry, [f"data.dataset.root={root}"]), registry,
                            access="sequential")
    assert len(dataset) == 14 and dict(dataset.skipped) == {}  # found only when read
    reasons = {}
    for key in ("7-10-0099", "41-11-0098"):
        with pytest.raises(UnusableItem) as caught:
            dataset[dataset.keys.index(key)]
        reasons[key] = caught.value.reason
    assert reasons == {"7-10-0099": "unreadable", "41-11-0098": "too_short"}
    assert not (tmp_path / "cache" / "audio").exists()


def test_hf_audio_rows_decoded_on_access_shard_as_the_cache_does(tmp_path):
    datasets = pytest.importorskip("datasets")
    from test_audio_hf import rows
    from cpcframe import DatasetRequest
    from cpcframe_audio.data.hf_audio import HFAudioConfig, build_hf_audio

    ids = ["s-1", "s-2", "t-1", "t-2", "t-3", "u-1"]
    data = datasets.Dataset.from_dict(rows(ids, [30, 30, 4, 4, 4, 30], [4000, 5000, 900, 6000, 3000, 4200],
                                           corrupt={"t-3"}))
    path = tmp_path / "hf"
    data.cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(path))
    labels = tmp_path / "phones.txt"
    labels.write_text("s-2 1 2 3 4\nt-2 5 6\n")
    config = HFAudioConfig(path=str(path), phone_labels=str(labels))
    written = {}
    for access in ("sequential", "random"):
        request = DatasetRequest(cache_dir=tmp_path / access, min_length=1600, access=access)
        out = tmp_path / f"{access}-shards"
        with pytest.warns(UserWarning) if access == "random" else contextlib.nullcontext():
            write_shards(lambda: build_hf_audio(config, request=request), out, shard_items=2)
        written[access] = shard_items(out)
    assert not (tmp_path / "sequential" / "audio").exists() and (tmp_path / "random" / "audio").is_dir()
    (seq_index, seq), (ref_index, ref) = written["sequential"], written["random"]
    assert [i[0] for i in seq] == [i[0] for i in ref] == ["s-1", "s-2", "t-2", "u-1"]
    assert [i[1] for i in seq] == [i[1] for i in ref] == [1, 1, 0, 1]  # speakers 4 < 30
    for (_, _, data, labs), (_, _, ref_data, ref_labs) in zip(seq, ref):
        assert torch.equal(data, ref_data) and data.dtype == torch.float16
        assert (labs is None and ref_labs is None) or torch.equal(labs, ref_labs)
    assert sum(labs is not None for *_, labs in seq) == 2
    assert seq_index["skipped"] == ref_index["skipped"] == {"unreadable": 1, "too_short": 1}
    assert seq_index["attributes"] == ref_index["attributes"]
