"""The ABX backend (``zerospeech-libriabx2``) against a plain NumPy reference, and sanity bounds.

The features are made up (no model): phones are centroids in feature space, speakers
shift them, frames add noise. Skips where the dependency is not installed.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from cpcframe_audio.abx import backends
from cpcframe_audio.abx.items import items_from_frame_labels, write_item_file

from reference_abx import abx_error

pytestmark = pytest.mark.skipif(not backends.available("libriabx2"),
                                reason="zerospeech-libriabx2 is not installed (pip install 'cpcframe[audio,abx]')")

LEXICON = [[1, 2, 3], [3, 2, 1], [2, 4, 2], [4, 1, 3], [1, 4]]
STEP = 0.01


def corpus(tmp_path, *, speakers=3, utterances=3, separation=1.0, speaker_shift=0.5, noise=1.0,
           dim=6, seed=0):
    """``(T, D)`` ``.npy`` features of utterances of words (silence = phone 0 between them),
    with their CPC-style frame labels turned into an item file."""
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(5, dim))
    folder = tmp_path / "features"
    folder.mkdir(parents=True)
    labels, speaker_of, features = {}, {}, {}
    for s in range(speakers):
        shift = speaker_shift * rng.normal(size=dim)
        for u in range(utterances):
            key = f"{10 + s}-1-{u:04d}"
            frames = [0] * 3
            for w in rng.integers(0, len(LEXICON), 5):
                for phone in LEXICON[w]:
                    frames += [phone] * int(rng.integers(3, 7))
                frames += [0] * 2
            frames = np.array(frames)
            feats = separation * centroids[frames] + shift + noise * rng.normal(size=(len(frames), dim))
            np.save(folder / f"{key}.npy", feats.astype(np.float32))
            labels[key], speaker_of[key], features[key] = frames, str(10 + s), feats.astype(np.float32)
    items = items_from_frame_labels(labels, speaker_of, STEP, {0: "sil"})
    return folder, write_item_file(tmp_path / "test.item", items), items, features


def score(folder, item_file, **options):
    options = {"max_size_group": 10, "max_x_across": 5, "seed": 3459, "device": "cpu", **options}
    return backends.get_backend("libriabx2").score(folder, item_file, STEP, backends.CONDITIONS, **options)


def test_dependency_equals_the_numpy_reference(tmp_path):
    folder, item_file, items, features = corpus(tmp_path, noise=1.5)
    # Cells larger than any here: nothing is subsampled, so both sides see every triplet.
    got = score(folder, item_file, max_size_group=1000, max_x_across=1000)
    for (context, speaker), value in got.items():
        want = abx_error(features, items, STEP, "within" if context == "triphone" else "any", speaker)
        assert 0.05 < want < 0.45, (context, speaker, want)  # neither trivial nor chance
        assert value == pytest.approx(want, abs=1e-5), (context, speaker)


def test_separable_features_score_near_zero_and_random_ones_near_chance(tmp_path):
    folder, item_file, _, _ = corpus(tmp_path / "separable", separation=10.0, speaker_shift=0.2, noise=0.3)
    assert max(score(folder, item_file).values()) < 0.01
    folder, item_file, _, _ = corpus(tmp_path / "random", separation=0.0, speaker_shift=0.0, utterances=4)
    errors = score(folder, item_file)
    assert all(abs(e - 0.5) < 0.06 for e in errors.values()), errors


def test_scoring_leaves_python_random_alone(tmp_path):
    folder, item_file, _, _ = corpus(tmp_path, utterances=2)
    random.seed(7)
    expected = [random.random() for _ in range(3)]
    random.seed(7)
    score(folder, item_file)  # the dependency calls random.seed(3459) inside
    assert [random.random() for _ in range(3)] == expected


def test_scores_do_not_depend_on_the_number_of_worker_processes(tmp_path):
    folder, item_file, _, _ = corpus(tmp_path, utterances=2)
    backend = backends.get_backend("libriabx2")
    jobs = [(name, folder, STEP, cond) for name in ("a", "b") for cond in backends.CONDITIONS]
    options = {"max_size_group": 3, "max_x_across": 1, "seed": 3459, "device": "cpu"}  # with sampling
    serial = backends.score_jobs(backend, jobs, item_file, workers=1, **options)
    assert list(serial) == [(job[0], job[3]) for job in jobs]
    assert backends.score_jobs(backend, jobs, item_file, workers=2, **options) == serial
    assert serial[("a", ("phone", "across"))] == serial[("b", ("phone", "across"))]


@pytest.mark.parametrize("max_size_group", [3, 1000])  # with and without the dependency's sampling
def test_reusing_repeated_group_dtws_gives_the_same_scores(tmp_path, monkeypatch, max_size_group):
    import contextlib

    import zrc_abx2.ABX_src.abx_group_computation as group
    from zrc_abx2.ABX_src.ABXIterators.abx_iterators import ABXIterator

    from cpcframe_audio.abx import reuse

    folder, item_file, _, _ = corpus(tmp_path, utterances=3, noise=1.5)
    originals = group.get_distance_group_dtw, group.dtw, ABXIterator.get_group
    fast = score(folder, item_file, max_size_group=max_size_group)
    assert (group.get_distance_group_dtw, group.dtw, ABXIterator.get_group) == originals  # undone after scoring
    monkeypatch.setattr(backends, "reusing_libriabx2", contextlib.nullcontext)
    assert score(folder, item_file, max_size_group=max_size_group) == fast  # bit-identical

    computed, triplet_groups = [], []
    monkeypatch.setattr(group, "get_distance_group_dtw", lambda *a, **k: computed.append(1) or originals[0](*a, **k))
    theta = group.get_theta_group_dtw
    monkeypatch.setattr(group, "get_theta_group_dtw", lambda *a, **k: triplet_groups.append(1) or theta(*a, **k))
    with reuse.reusing_libriabx2() as cache:
        backends.get_backend("libriabx2").score(folder, item_file, STEP, [("phone", "across")], max_size_group=1000,
                                                max_x_across=5, seed=3459, device="cpu")
    # Two group DTWs are asked for per triplet group; each distinct pair was computed once.
    assert 0 < len(computed) == len(cache) < 2 * len(triplet_groups)
