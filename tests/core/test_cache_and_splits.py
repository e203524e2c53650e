"""The core's helpers for plugin datasets (public names of ``cpcframe``): cache keys, atomic
cache folders, the preparation lock, hashed splits."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import zlib
from pathlib import Path

import pytest

from cpcframe import cache_key, exclusive, hold_out, key_hash, publish_dir


def test_cache_key_is_stable_and_sensitive():
    a = cache_key({"root": "/data", "rate": 16000, "nested": [1, 2]})
    assert a == cache_key({"nested": [1, 2], "rate": 16000, "root": "/data"})  # key order
    assert a != cache_key({"root": "/data", "rate": 8000, "nested": [1, 2]})
    assert len(a) == 20 and len(cache_key([1], 16)) == 16
    assert cache_key({"path": Path("/x")}) == cache_key({"path": "/x"})
    # The definition, fixed: cache keys name folders on disk, so they must not change
    # between versions (SHA-256 of compact, key-sorted JSON).
    assert cache_key({"b": [1, "x"], "a": 1}) == hashlib.sha256(b'{"a":1,"b":[1,"x"]}').hexdigest()[:20]


def test_publish_dir_moves_a_complete_folder_into_place(tmp_path):
    final = tmp_path / "cache" / "corpus-1"

    def fill(tmp):
        (tmp / "data.bin").write_bytes(b"x" * 10)
        (tmp / "index.json").write_text("{}")

    assert publish_dir(final, fill, marker="index.json") is True
    assert sorted(p.name for p in final.iterdir()) == ["data.bin", "index.json"]
    assert [p.name for p in final.parent.iterdir()] == ["corpus-1"]  # no temporary left


def test_publish_dir_leaves_nothing_when_fill_fails(tmp_path):
    final = tmp_path / "corpus"

    def fill(tmp):
        (tmp / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        publish_dir(final, fill)
    assert list(tmp_path.iterdir()) == []


def test_publish_dir_keeps_the_folder_another_process_published_first(tmp_path):
    final = tmp_path / "corpus"

    def fill(tmp):
        (tmp / "index.json").write_text("ours")
        final.mkdir()  # a concurrent builder wins the race while we fill
        (final / "index.json").write_text("theirs")

    assert publish_dir(final, fill, marker="index.json") is False
    assert (final / "index.json").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]


def test_publish_dir_does_not_take_an_unrelated_folder_for_a_finished_build(tmp_path):
    final = tmp_path / "corpus"
    final.mkdir()
    (final / "stray.txt").write_text("not a cache")
    with pytest.raises(OSError):
        publish_dir(final, lambda tmp: (tmp / "index.json").write_text("{}"), marker="index.json")
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]


def test_key_hash_is_crc32_of_seed_and_key():
    assert key_hash(3, "a/b.wav") == zlib.crc32(b"3:a/b.wav")
    assert key_hash("test", "x") != key_hash("train", "x")


@pytest.mark.parametrize("n, fraction, expected", [(0, 0.5, 0), (1, 0.5, 0), (2, 0.01, 1), (2, 0.99, 1),
                                                   (10, 0.2, 2), (10, 0.25, 2), (10, 0.35, 4), (100, 0.1, 10)])
def test_hold_out_size(n, fraction, expected):
    keys = [f"item{i}" for i in range(n)]
    held = hold_out(keys, fraction, seed=0)
    assert len(held) == expected and held == sorted(set(held)) and all(0 <= p < n for p in held)


def test_hold_out_is_by_key_so_adding_items_moves_few_others():
    keys = [f"utt{i:03d}" for i in range(200)]
    held = {keys[p] for p in hold_out(keys, 0.1, seed=1)}
    # Exactly the keys with the smallest hashes.
    assert held == set(sorted(keys, key=lambda k: key_hash(1, k))[:20])
    more = keys + [f"new{i}" for i in range(20)]
    held_more = {more[p] for p in hold_out(more, 0.1, seed=1)}
    assert len(held & held_more) >= 15  # 22 held now; the old choice is mostly kept
    assert hold_out(list(reversed(keys)), 0.1, seed=1) == sorted(199 - p for p in hold_out(keys, 0.1, seed=1))
    assert {keys[p] for p in hold_out(keys, 0.1, seed=2)} != held


def test_exclusive_lets_one_preparer_at_a_time(tmp_path, caplog):
    lock = tmp_path / "locks" / "corpus.lock"
    intervals = []

    def prepare(name):
        with exclusive(lock, waiting=f"{name} waits"):
            start = time.monotonic()
            time.sleep(0.3)
            intervals.append((start, time.monotonic()))

    with caplog.at_level(logging.WARNING, logger="cpcframe.data.cache_dir"):
        threads = [threading.Thread(target=prepare, args=(f"t{i}",)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    intervals.sort()
    assert len(intervals) == 3
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(intervals, intervals[1:]))
    assert sum("waits" in r.getMessage() for r in caplog.records) == 2  # the two that waited


def test_exclusive_without_a_writable_cache_prepares_unlocked(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with exclusive(blocker / "locks" / "x.lock"):  # its parent cannot be created
        pass


def test_build_dataset_prepares_one_process_at_a_time(registry, tmp_path, monkeypatch):
    """Processes of a torchrun job (here: threads) that build one dataset take turns."""
    from cpcframe import build
    from cpcframe.build import build_dataset
    from cpcframe.config.loader import load_recipe
    from testpaths import TESTS

    monkeypatch.setenv("CPCFRAME_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe(TESTS / "core" / "toy_recipe.toml", registry)
    intervals = []
    original = build.make_dataset

    def slow_make(*args, **kwargs):
        start = time.monotonic()
        time.sleep(0.3)
        result = original(*args, **kwargs)
        intervals.append((start, time.monotonic()))
        return result

    monkeypatch.setattr(build, "make_dataset", slow_make)
    threads = [threading.Thread(target=build_dataset, args=(recipe, registry)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a_start, a_end), (b_start, _) = sorted(intervals)
    assert a_end <= b_start
    assert len(list((tmp_path / "cache" / "locks").glob("toy_sequences-*.lock"))) == 1


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from cpcframe import default_cache_dir

    monkeypatch.setenv("CPCFRAME_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CPCFRAME_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "cpcframe"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "cpcframe"
