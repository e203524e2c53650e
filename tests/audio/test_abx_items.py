"""ABX item files and frames: items from CPC phone labels, the slicing convention, the frame-step checks."""

from __future__ import annotations

import numpy as np
import pytest

from cpcframe import UserError
from cpcframe_audio.abx import backends
from cpcframe_audio.abx.frames import check_frame_count, check_items_fit, libri_light_span
from cpcframe_audio.abx.items import (Item, items_from_frame_labels, phone_runs, read_item_file,
                                      read_phone_names, summary, write_item_file)

NAMES = {0: "sil", 1: "a", 2: "b", 3: "c"}
#            sil  sil  a    a    a    b    b    sil  sil  c    c    c    c    sil
LABELS = {"19-198-0001": np.array([0, 0, 1, 1, 1, 2, 2, 0, 0, 3, 3, 3, 3, 0]),
          "103-1240-0002": np.array([1, 1, 2, 2, 2, 2, 1, 1])}
SPEAKERS = {"19-198-0001": "19", "103-1240-0002": "103"}


def test_phone_runs_are_runs_of_equal_labels():
    assert phone_runs(LABELS["19-198-0001"]) == [(0, 2, 0), (2, 5, 1), (5, 7, 2), (7, 9, 0), (9, 13, 3),
                                                 (13, 14, 0)]
    assert phone_runs(np.array([], dtype=np.int64)) == []


def test_items_from_cpc_labels_have_exact_times_contexts_and_speakers():
    items = items_from_frame_labels(LABELS, SPEAKERS, 0.01, NAMES)
    assert items == [
        Item("19-198-0001", 0.02, 0.05, "a", "sil", "b", "19"),
        Item("19-198-0001", 0.05, 0.07, "b", "a", "sil", "19"),  # silence: a context, never an item
        Item("19-198-0001", 0.09, 0.13, "c", "sil", "sil", "19"),
        Item("103-1240-0002", 0.02, 0.06, "b", "a", "a", "103"),  # edge runs have one neighbour only
    ]
    # Without names the classes are the symbols; without exclusions silence is an item too.
    plain = items_from_frame_labels({"19-198-0001": LABELS["19-198-0001"]}, SPEAKERS, 0.01, exclude=())
    assert [(i.phone, i.prev, i.next, i.onset, i.offset) for i in plain] == [
        ("1", "0", "2", 0.02, 0.05), ("2", "1", "0", 0.05, 0.07), ("0", "2", "3", 0.07, 0.09),
        ("3", "0", "0", 0.09, 0.13)]
    assert summary(items) == {"items": 4, "utterances": 2, "speakers": 2, "phones": 3, "contexts": 4}


def test_item_files_round_trip_in_the_zerospeech_format(tmp_path):
    items = items_from_frame_labels(LABELS, SPEAKERS, 0.01, NAMES)
    path = write_item_file(tmp_path / "x.item", items)
    lines = path.read_text().splitlines()
    assert lines[0] == "#file onset offset #phone prev-phone next-phone speaker"
    assert lines[1] == "19-198-0001 0.0200 0.0500 a sil b 19"
    assert read_item_file(path) == items
    (tmp_path / "phones.txt").write_text("0 sil\n1 a\n2 b\n3 c\n")
    assert read_phone_names(tmp_path / "phones.txt") == NAMES


@pytest.mark.parametrize("line, message", [
    ("u 0.1 0.2 a b c", r"bad.item:2: expected 7 columns"),
    ("u x 0.2 a b c s", r"bad.item:2: onset and offset must be numbers"),
    ("u 0.3 0.2 a b c s", r"bad.item:2: needs 0 <= onset < offset"),
])
def test_bad_item_files_are_user_errors_with_the_line(tmp_path, line, message):
    (tmp_path / "bad.item").write_text("#file onset offset #phone prev-phone next-phone speaker\n" + line + "\n")
    with pytest.raises(UserError, match=message):
        read_item_file(tmp_path / "bad.item")
    with pytest.raises(UserError, match="does not exist"):
        read_item_file(tmp_path / "missing.item")


def test_libri_light_slicing_by_hand_and_as_the_dependency_cuts():
    # [0.02, 0.05) covers frames 2, 3, 4 of 10 ms; libri-light keeps 2 and 3 (its last frame is dropped).
    assert libri_light_span(0.02, 0.05, 0.01, 100) == (2, 4)
    assert libri_light_span(0.02, 0.05, 0.01, 3) == (2, 3)  # cut at the features' end
    assert libri_light_span(0.10, 0.11, 0.01, 100) == (10, 10)  # one 10 ms frame: no frame left
    if not backends.available("libriabx2"):
        pytest.skip("zerospeech-libriabx2 is not installed (pip install 'cpcframe[audio,abx]')")
    import torch
    from zrc_abx2.ABX_src.ABXDataset.abx_feature_loader import ABXFeatureLoader

    rng = np.random.default_rng(0)
    feats = torch.zeros(300, 2)
    for step in (0.01, 0.02, 0.0125):
        for onset, length in zip(rng.uniform(0, 3, 200), rng.uniform(0.005, 0.4, 200)):
            onset, offset = round(onset, 4), round(onset + length, 4)
            assert libri_light_span(onset, offset, step, 300) == ABXFeatureLoader._start_end_indices(
                None, onset, offset, feats, 1 / step)


def test_frame_step_check_against_the_audio():
    check_frame_count("u", 150, 1.5, 0.01, "here")  # exact
    check_frame_count("u", 149, 1.5, 0.01, "here")  # an encoder drops the partial last frame
    with pytest.raises(UserError) as err:
        check_frame_count("19-198-0001", 150, 1.5, 0.02, "the encoder's downsampling 320 samples at 16000 Hz")
    assert str(err.value) == (
        "ABX frame step mismatch: the features of 19-198-0001 have 150 frames for 1.500 s of audio "
        "(one per 10.00 ms), but the frame step is 20 ms (the encoder's downsampling 320 samples at "
        "16000 Hz); set the frame step to the features' (--frame-step SECONDS)")


def test_frame_step_check_against_the_items():
    items = [Item("u", 0.5, 0.6, "a", "b", "c", "s"), Item("u", 1.40, 1.52, "a", "b", "c", "s")]
    check_items_fit(items, {"u": 150}, 0.01, "here")
    with pytest.raises(UserError, match=r"an item of u ends at 1.520 s but its 75 feature frames of 10 ms "
                                        r"\(here\) end at 0.750 s; is the frame step right"):
        check_items_fit(items, {"u": 75}, 0.01, "here")
